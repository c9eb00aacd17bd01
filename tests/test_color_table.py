"""The tabulated evaluation of the color map (``sine_color(method="table")``, ``functional._fast_color``)
against the equation."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import rand_images
from hypothesis import given
from hypothesis import strategies as st

from prime_augment.functional import _fast_color as F
from prime_augment.functional import color_lut, sine_color


def direct(v, coeffs, start, order=0):
    """``d^order/dv^order sum_m a_m sin(pi (start + m) v)`` summed term by term in float64."""
    n = (start[:, None] + torch.arange(coeffs.shape[-1])).double()  # (B, D)
    w = (math.pi * n) ** order
    phase = math.pi * n[:, None, None, :] * v.double()[..., None]  # (B, 1, N, D)
    trig = [torch.sin, torch.cos, lambda t: -torch.sin(t)][order](phase)
    return (coeffs.double()[:, :, None, :] * w[:, None, None, :] * trig).sum(-1)


def test_node_derivatives_are_exact_for_every_frequency_including_folded_ones():
    g = torch.Generator().manual_seed(0)
    grid = 64
    coeffs = torch.randn(3, 2, 9, generator=g, dtype=torch.float64)
    start = torch.tensor([1, 60, 3 * grid + 5])  # frequencies below, across and far beyond 2G = 128
    nodes = torch.stack(F.node_derivatives(coeffs, start, grid, 3))
    v = torch.arange(grid + 1, dtype=torch.float64).div(grid).expand(3, 1, grid + 1)
    for order in range(3):
        want = direct(v, coeffs, start, order)
        scale = want.abs().max()
        torch.testing.assert_close(nodes[order], want, atol=1e-11 * scale, rtol=0)


def test_table_matches_the_sum_of_sines_to_the_proven_bound():
    g = torch.Generator().manual_seed(1)
    x = rand_images(4, 3, 9, 11, seed=2)
    coeffs = 0.1 * torch.randn(4, 3, 100, generator=g)
    coeffs[3, :, 60:] = 0.0
    start = torch.tensor([1, 7, 250, 480])
    got = sine_color(x, coeffs, start, method="table", clip=False)
    want = x.double() + direct(x.reshape(4, 3, -1), coeffs, start).reshape(x.shape)
    err = (got.double() - want).abs().max()
    # interpolation <= 1e-6 (TABLE_TOLERANCE) plus float32 rounding of values of size ~1
    assert err <= F.TABLE_TOLERANCE + 5e-7, err
    # the float32 recurrence is about ten times less accurate on the same map
    series = sine_color(x, coeffs, start, method="series", clip=False)
    assert (series.double() - want).abs().max() > err


def test_table_with_one_map_for_all_channels():
    g = torch.Generator().manual_seed(3)
    x = rand_images(2, 3, 8, 8, seed=4)
    coeffs = 0.05 * torch.randn(2, 1, 40, generator=g)
    start = torch.tensor([2, 30])
    got = sine_color(x, coeffs, start, method="table")
    want = sine_color(x.double(), coeffs.double().expand(2, 3, 40), start, method="series")
    torch.testing.assert_close(got.double(), want, atol=2e-6, rtol=0)


@given(
    seed=st.integers(0, 2**16),
    d=st.integers(1, 60),
    first=st.integers(1, 500),
    scale=st.sampled_from([1e-3, 3e-2, 0.3]),
)
def test_table_error_bound_holds_for_random_maps(seed, d, first, scale):
    g = torch.Generator().manual_seed(seed)
    v = torch.rand(2, 3, 200, generator=g)
    coeffs = scale * torch.randn(2, 3, d, generator=g)
    start = torch.tensor([first, max(1, first // 3)])
    got = sine_color(v[..., None], coeffs, start, method="table", clip=False)[..., 0]
    want = v.double() + direct(v, coeffs, start)
    # the batch takes the table when every image's map fits the finest grid, else the series (1e-4)
    tol = F.TABLE_TOLERANCE + 6e-7 if F.table_grids(coeffs, start) is not None else 1e-4
    assert (got.double() - want).abs().max() <= tol


def test_batched_table_equals_per_image_exactly():
    # every image is tabulated on its own grid: a batch gives exactly its images' results
    g = torch.Generator().manual_seed(5)
    x = rand_images(6, 3, 32, 32, seed=6)
    scales = torch.tensor([1e-3, 1e-2, 0.1, 0.3, 0.1, 0.0])
    coeffs = torch.randn(6, 3, 64, generator=g) * scales[:, None, None]
    start = torch.tensor([1, 40, 200, 470, 3, 9])
    assert len(set(F.table_grids(coeffs, start))) >= 3  # several grid sizes in one batch
    assert F.choose(x.reshape(6, 3, -1), coeffs, start) == "table"
    for method in ("auto", "table"):
        batched = sine_color(x, coeffs, start, method=method)
        for i in range(6):
            single = sine_color(x[i : i + 1], coeffs[i : i + 1], start[i : i + 1], method=method)
            assert torch.equal(batched[i : i + 1], single), (method, i)


def test_values_outside_the_unit_interval_use_the_series():
    x = torch.tensor([[[[-0.25, 0.5, 1.25]]]]).expand(1, 3, 1, 3).contiguous()
    coeffs = 0.1 * torch.randn(1, 3, 30, generator=torch.Generator().manual_seed(0))
    start = torch.tensor([5])
    got = sine_color(x, coeffs, start, method="table", clip=False)
    assert torch.equal(got, sine_color(x, coeffs, start, method="series", clip=False))


def test_lut_by_fft_equals_the_direct_sum_with_folded_frequencies():
    g = torch.Generator().manual_seed(8)
    coeffs = 0.05 * torch.randn(3, 3, 20, generator=g, dtype=torch.float64)
    start = torch.tensor([1, 250, 481])  # beyond 255 the frequencies fold on the 256 levels
    lut = color_lut(coeffs, start)
    v = torch.linspace(0, 1, 256, dtype=torch.float64).expand(3, 1, 256)
    want = (v + direct(v, coeffs, start)).clamp(0, 1)
    torch.testing.assert_close(lut, want, atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match="levels"):
        color_lut(coeffs, start, levels=1)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="method"):
        sine_color(torch.rand(1, 3, 4, 4), torch.zeros(1, 3, 2), torch.ones(1, dtype=torch.int64), method="x")


def test_color_is_differentiable_in_the_values_and_coefficients():
    # autograd records the series (the table's buffers cannot be recorded): gradcheck in float64 and
    # the float32 "auto" method (which would take the table for these coefficients) backpropagates
    g = torch.Generator().manual_seed(5)
    x = (0.05 + 0.9 * torch.rand(1, 2, 3, 3, generator=g, dtype=torch.float64)).requires_grad_(True)
    a = (0.05 * torch.randn(1, 2, 40, generator=g, dtype=torch.float64)).requires_grad_(True)
    start = torch.tensor([3])
    assert torch.autograd.gradcheck(lambda x, a: sine_color(x, a, start, clip=False), (x, a))
    xf = torch.rand(1, 3, 32, 32, generator=g).requires_grad_(True)
    af = 0.1 * torch.randn(1, 3, 100, generator=g)
    sine_color(xf, af, torch.tensor([1]), clip=False).sum().backward()
    torch.testing.assert_close(
        xf.grad, 1 + _derivative(xf.detach().double(), af.double(), 1).float(), atol=1e-2, rtol=1e-3
    )


def _derivative(v, coeffs, start):
    n = start + torch.arange(coeffs.shape[-1], dtype=torch.float64)
    return (coeffs[..., None, None, :] * math.pi * n * torch.cos(math.pi * n * v[..., None])).sum(-1)
