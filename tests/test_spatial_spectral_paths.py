"""The spatial and spectral primitives: one sampler on every device, fixed hyper-parameters, and each
evaluation path of the displacement field against the plain product and the equation."""

from __future__ import annotations

import math

import pytest
import torch

from prime_augment import RandomDiffeomorphism
from prime_augment.functional import (
    deform,
    displacement_field,
    folded_variance_weights,
    sample_spatial_params,
    sample_spectral_params,
    spectral_filter,
    temperature_range,
)
from prime_augment.functional import spatial as S
from prime_augment.functional import spectral as SP


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------ one sampler, any device
@pytest.mark.parametrize(
    "b, h, w, cut_max",
    [
        (1, 32, 32, 100),
        (5, 224, 200, 500),
        (3, 12, 40, 7),
        (0, 32, 32, 100),
        (2, 2, 9, 10),
        (4, 16, 16, 10**6),
    ],
)
def test_sampler_shapes_are_the_same_on_cpu_and_meta(b, h, w, cut_max):
    # meta tensors hold no data: the sampler and the kernel run there only if they never read it
    cpu = sample_spatial_params(b, h, w, cut_max=cut_max, generator=gen())
    meta = sample_spatial_params(b, h, w, cut_max=cut_max, device="meta")
    ky, kx = max(0, min(cut_max, h - 2)), max(0, min(cut_max, w - 2))
    assert cpu["coeffs"].shape == (b, 2, ky, kx)
    for k, v in cpu.items():
        assert meta[k].device.type == "meta"
        assert (meta[k].shape, meta[k].dtype) == (v.shape, v.dtype), k
    x = torch.empty(b, 3, h, w, device="meta")
    assert deform(x, meta["coeffs"]).shape == x.shape
    taps = sample_spectral_params(b, kernel_size=5, device="meta")["taps"]
    assert taps.shape == (b, 5, 5) and taps.device.type == "meta"
    if b and min(h, w) > 2:
        assert spectral_filter(x, taps).shape == x.shape


def test_sampler_block_does_not_depend_on_the_batch_or_the_cuts():
    # one tensor path: the block is min(cut_max, H - 2) x min(cut_max, W - 2) for every batch size,
    # even when every cut of the batch is small
    for b in (1, 2, 17, 40):
        p = sample_spatial_params(b, 224, 224, cut_max=500, generator=gen(b))
        assert p["coeffs"].shape == (b, 2, 222, 222)
    small = sample_spatial_params(3, 224, 224, cut_min=2, cut_max=2, generator=gen())
    assert small["coeffs"].shape == (3, 2, 2, 2) and bool((small["cut"] == 2).all())
    assert int(small["coeffs"].count_nonzero()) <= 3 * 2  # only (1, 1) is on the disk of radius 2


def test_generator_on_cpu_drives_a_meta_draw():
    p = sample_spatial_params(3, 32, 32, device="meta", generator=gen())
    assert p["coeffs"].device.type == "meta" and p["coeffs"].shape == (3, 2, 30, 30)


def test_static_shapes_is_accepted_and_changes_nothing():
    a = sample_spatial_params(6, 40, 30, generator=gen(1))
    b = sample_spatial_params(6, 40, 30, generator=gen(1), static_shapes=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    t = RandomDiffeomorphism(static_shapes=True, generator=gen(2))
    u = RandomDiffeomorphism(generator=gen(2))
    x = torch.rand(3, 3, 20, 20, generator=gen(3))
    assert t.static_shapes is True and torch.equal(t(x), u(x))
    with pytest.raises(TypeError, match="static_shapes"):
        RandomDiffeomorphism(static_shapes=1)


# ------------------------------------------------------------------------------- fixed hyper-parameters
def test_fixed_cut_and_temperature_level_draw_the_chosen_law():
    h, w, c = 32, 32, 8
    p = sample_spatial_params(4, h, w, cut_min=c, cut_max=c, temperature_level=1.0, generator=gen(4))
    t_min, t_max = temperature_range(max(h, w), c)
    assert p["cut"].tolist() == [c] * 4
    torch.testing.assert_close(p["temperature"], torch.full((4,), max(t_min, t_max)), rtol=1e-6, atol=0)
    std = (p["temperature"][:, None, None] * folded_variance_weights(p["cut"], h, w, c)).sqrt()
    assert torch.equal(p["coeffs"] != 0, (std > 0)[:, None].expand_as(p["coeffs"]))
    # strength a scales the coefficients of the same draw by a (T by a^2)
    kw = {"cut_min": c, "cut_max": c, "temperature_level": 1.0}
    half = sample_spatial_params(4, h, w, **kw, strength=0.5, generator=gen(4))
    torch.testing.assert_close(half["coeffs"], 0.5 * p["coeffs"], rtol=1e-5, atol=1e-12)
    zero = sample_spatial_params(4, h, w, cut_min=c, cut_max=c, strength=0.0, generator=gen(4))
    assert bool((zero["coeffs"] == 0).all())


def test_fixed_sigma_spectral_draw():
    # sigma_min == sigma_max fixes sigma (times the strength): the same taps as any other way to it
    p = sample_spectral_params(
        3, kernel_size=5, sigma_min=4.0, sigma_max=4.0, strength=0.25, generator=gen(5)
    )
    unit = sample_spectral_params(3, kernel_size=5, sigma_min=1.0, sigma_max=1.0, generator=gen(5))
    assert p["sigma"].tolist() == [1.0] * 3 and p["taps"].shape == (3, 5, 5)
    assert torch.equal(p["taps"], unit["taps"])


@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan])
def test_temperature_level_out_of_range(bad):
    with pytest.raises(ValueError, match="temperature_level"):
        sample_spatial_params(2, 16, 16, temperature_level=bad)


# ------------------------------------------------------------------------ the field: paths and equation
def field_reference(coeffs, h, w):
    """u[b, k, p, q] = sum_ij coeffs[b, k, i, j] sin(pi (i+1) p / (h-1)) sin(pi (j+1) q / (w-1)) (float64)."""
    i = torch.arange(1, coeffs.shape[2] + 1, dtype=torch.float64)
    j = torch.arange(1, coeffs.shape[3] + 1, dtype=torch.float64)
    sy = torch.sin(math.pi * torch.arange(h, dtype=torch.float64)[:, None] / (h - 1) * i)
    sx = torch.sin(math.pi * torch.arange(w, dtype=torch.float64)[:, None] / (w - 1) * j)
    return torch.einsum("pi,bkij,qj->bkpq", sy, coeffs.double(), sx)


def staggered_blocks(shape, extents, seed=0):
    """Coefficients (B, 2, Ky, Kx), image b non-zero on its own leading block extents[b] only."""
    g = gen(seed)
    coeffs = torch.zeros(shape, dtype=torch.float64)
    for n, (ky, kx) in enumerate(extents):
        coeffs[n, :, :ky, :kx] = 0.01 * torch.randn(2, ky, kx, generator=g, dtype=torch.float64)
    return coeffs


def test_the_rule_picks_per_image_for_large_cpu_blocks_only():
    big = torch.zeros(2, 2, 65, 64)  # 4160 > 64 * 64 coefficients
    assert S._path(big) == "per_image"
    assert S._path(big[:, :, :64]) == "batched"
    assert S._path(big.to("meta")) == "batched"
    assert S._path(torch.zeros(0, 2, 0, 0)) == "batched"
    with S.forced("per_image"):
        assert S._path(big[:, :, :5, :5]) == "per_image"
        assert S._path(big.to("meta")) == "batched"  # the per-image path reads the data: CPU only
        assert displacement_field(torch.zeros(0, 2, 70, 70), 72, 72).shape == (0, 2, 72, 72)
    with S.forced("batched"):
        assert S._path(big) == "batched"
    with pytest.raises(ValueError, match="path"), S.forced("loop"):
        pass


@pytest.mark.parametrize("path", S.PATHS)
def test_each_path_equals_the_double_sine_sum(path):
    # a block that enters the per-image path by the rule (70 x 66 > 64 x 64), with images whose
    # non-zero blocks differ, one of them all zero
    extents = [(70, 66), (3, 7), (0, 0), (12, 5), (70, 1)]
    coeffs = staggered_blocks((5, 2, 70, 66), extents)
    want = field_reference(coeffs, 80, 72)
    with S.forced(path):
        for dtype, atol in ((torch.float64, 1e-12), (torch.float32, 5e-6)):
            got = displacement_field(coeffs.to(dtype), 80, 72)
            assert got.dtype == dtype and got.shape == (5, 2, 80, 72)
            torch.testing.assert_close(got.double(), want, atol=atol, rtol=0)


def test_per_image_path_equals_batched_on_sampled_preset_blocks():
    # the ImageNet preset's blocks (222 x 222) and a batch whose cuts differ
    p = sample_spatial_params(6, 224, 224, cut_max=500, generator=gen(6))
    assert S._path(p["coeffs"]) == "per_image"
    with S.forced("batched"):
        plain = displacement_field(p["coeffs"], 224, 224)
        warped_plain = deform(torch.rand(6, 3, 224, 224, generator=gen(7)), p["coeffs"])
    torch.testing.assert_close(displacement_field(p["coeffs"], 224, 224), plain, atol=1e-6, rtol=0)
    warped = deform(torch.rand(6, 3, 224, 224, generator=gen(7)), p["coeffs"])
    # fields within 1e-6 of the image extent: sample points within 2.3e-4 pixels, values within that
    torch.testing.assert_close(warped, warped_plain, atol=3e-4, rtol=0)


def test_per_image_path_records_gradients():
    coeffs = staggered_blocks((3, 2, 70, 70), [(70, 70), (4, 9), (0, 0)]).requires_grad_(True)
    with S.forced("per_image"):
        displacement_field(coeffs, 75, 73).square().sum().backward()
    grad_loop = coeffs.grad.clone()
    coeffs.grad = None
    with S.forced("batched"):
        displacement_field(coeffs, 75, 73).square().sum().backward()
    torch.testing.assert_close(grad_loop, coeffs.grad, atol=1e-10, rtol=0)


def test_field_of_one_mode_and_the_border():
    c = torch.zeros(1, 2, 3, 4, dtype=torch.float64)
    c[0, 1, 2, 1] = 0.5  # u_2 = 0.5 sin(3 pi r1) sin(2 pi r2)
    u = displacement_field(c, 7, 9)
    r1 = torch.arange(7, dtype=torch.float64)[:, None] / 6
    r2 = torch.arange(9, dtype=torch.float64)[None, :] / 8
    torch.testing.assert_close(u[0, 1], 0.5 * torch.sin(3 * math.pi * r1) * torch.sin(2 * math.pi * r2))
    assert bool((u[0, 0] == 0).all())
    for edge in (u[..., 0, :], u[..., -1, :], u[..., :, 0], u[..., :, -1]):
        assert float(edge.abs().max()) == 0.0  # exact zeros on the border (integer phase reduction)


def test_sine_basis_is_a_fresh_copy():
    s = S.sine_basis(10, 4)
    s.zero_()
    assert float(S.sine_basis(10, 4).abs().max()) > 0.9


# ------------------------------------------------------------------------------------------- spectral
def test_every_method_name_is_the_grouped_convolution():
    x = torch.rand(3, 2, 9, 11, generator=gen(8), dtype=torch.float64)
    taps = 0.3 * torch.randn(3, 2, 3, 3, generator=gen(9), dtype=torch.float64)
    plain = spectral_filter(x, taps)
    for m in SP.METHODS:
        assert torch.equal(spectral_filter(x, taps, method=m), plain)
    with pytest.raises(ValueError, match="method"):
        spectral_filter(x, taps, method="fft")
