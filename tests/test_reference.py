"""Each kernel against a direct transcription of its equation, on explicit parameters."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import rand_images

from prime_augment.functional import (
    color_lut,
    deform,
    displacement_field,
    folded_variance_weights,
    sample_spatial_params,
    sine_color,
    spectral_filter,
    temperature_range,
)

# ---------------------------------------------------------------- spectral


def fir_reference(x, taps, padding_mode):
    """y[c, h, v] = sum_{a, b} (delta + w)[a, b] x[c, h - a + r, v - b + r], pixel by pixel."""
    b, c, h, w = x.shape
    k = taps.shape[-1]
    r = k // 2
    if taps.ndim == 3:
        taps = taps[:, None].expand(b, c, k, k)
    kern = taps.clone().double()
    kern[..., r, r] += 1
    xd = x.double()

    def pix(img, i, j):
        if padding_mode == "zeros":
            return img[i, j] if (0 <= i < h and 0 <= j < w) else 0.0
        if padding_mode == "replicate":
            return img[min(max(i, 0), h - 1), min(max(j, 0), w - 1)]
        if padding_mode == "circular":
            return img[i % h, j % w]
        if padding_mode == "reflect":
            ii = -i if i < 0 else (2 * (h - 1) - i if i >= h else i)
            jj = -j if j < 0 else (2 * (w - 1) - j if j >= w else j)
            return img[ii, jj]
        raise AssertionError

    out = torch.zeros(b, c, h, w, dtype=torch.float64)
    for n in range(b):
        for ch in range(c):
            img = xd[n, ch]
            for i in range(h):
                for j in range(w):
                    s = 0.0
                    for a in range(k):
                        for bb in range(k):
                            s += kern[n, ch, a, bb] * pix(img, i - a + r, j - bb + r)
                    out[n, ch, i, j] = s
    return out.clamp(0, 1)


@pytest.mark.parametrize("method", ["conv", "shift", "unfold"])
@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_fir_against_per_pixel_sum(padding_mode, per_channel, method):
    g = torch.Generator().manual_seed(0)
    x = rand_images(2, 2, 6, 7, dtype=torch.float64)
    taps = (
        0.3 * torch.randn(2, 2, 3, 3, generator=g, dtype=torch.float64)
        if per_channel
        else 0.3 * torch.randn(2, 5, 5, generator=g, dtype=torch.float64)
    )
    got = spectral_filter(x, taps, padding_mode=padding_mode, method=method)
    torch.testing.assert_close(got, fir_reference(x, taps, padding_mode), atol=1e-12, rtol=0)


def test_fir_identity_tap_is_centred():
    """A filter with w = e_(r, r+1) (one tap right of centre) shifts by exactly one pixel (convolution)."""
    x = rand_images(1, 1, 8, 8, dtype=torch.float64) * 0.5
    taps = torch.zeros(1, 3, 3, dtype=torch.float64)
    taps[0, 1, 2] = 1.0  # kernel = delta + delta shifted right: y = x + x(shifted)
    y = spectral_filter(x, taps)
    torch.testing.assert_close(y[..., 1:], x[..., 1:] + x[..., :-1])


# ---------------------------------------------------------------- spatial


def field_reference(coeffs, h, w):
    b, _, ky, kx = coeffs.shape
    out = torch.zeros(b, 2, h, w, dtype=torch.float64)
    for p in range(h):
        for q in range(w):
            r1, r2 = p / (h - 1), q / (w - 1)
            for i in range(1, ky + 1):
                for j in range(1, kx + 1):
                    out[:, :, p, q] += (
                        coeffs[:, :, i - 1, j - 1] * math.sin(math.pi * i * r1) * math.sin(math.pi * j * r2)
                    )
    return out


def bilinear_reference(img, py, px):
    """img (C, H, W) sampled at pixel coordinates (py, px), clamped to the image (border padding)."""
    h, w = img.shape[-2:]
    py, px = min(max(py, 0.0), h - 1.0), min(max(px, 0.0), w - 1.0)
    y0, x0 = math.floor(py), math.floor(px)
    y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
    fy, fx = py - y0, px - x0
    return (
        (1 - fy) * (1 - fx) * img[:, y0, x0]
        + (1 - fy) * fx * img[:, y0, x1]
        + fy * (1 - fx) * img[:, y1, x0]
        + fy * fx * img[:, y1, x1]
    )


def test_field_against_double_sine_sum():
    g = torch.Generator().manual_seed(0)
    coeffs = torch.randn(2, 2, 4, 6, generator=g, dtype=torch.float64)
    torch.testing.assert_close(displacement_field(coeffs, 9, 11), field_reference(coeffs, 9, 11))


def test_deform_against_bilinear_transcription():
    g = torch.Generator().manual_seed(1)
    x = rand_images(2, 3, 9, 12, dtype=torch.float64)
    coeffs = 0.05 * torch.randn(2, 2, 5, 5, generator=g, dtype=torch.float64)
    got = deform(x, coeffs)
    u = field_reference(coeffs, 9, 12)
    want = torch.zeros_like(x)
    for n in range(2):
        for p in range(9):
            for q in range(12):
                want[n, :, p, q] = bilinear_reference(x[n], p + u[n, 0, p, q] * 8, q + u[n, 1, p, q] * 11)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=0)


def test_deform_direction_is_x_of_r_plus_u():
    """A positive constant-sign bump along the width samples the image further right."""
    x = torch.linspace(0, 1, 33, dtype=torch.float64).expand(1, 1, 33, 33).clone()  # x(r) = r2
    coeffs = torch.zeros(1, 2, 1, 1, dtype=torch.float64)
    coeffs[0, 1, 0, 0] = 0.05
    y = deform(x, coeffs)
    u = field_reference(coeffs, 33, 33)[0, 1]
    torch.testing.assert_close(y[0, 0], (x[0, 0] + u).clamp(0, 1), atol=1e-12, rtol=0)


@pytest.mark.parametrize("h, w, cut_max", [(32, 32, 100), (12, 20, 40), (9, 9, 7), (224, 224, 500)])
def test_folded_sampling_has_the_exact_field_law(h, w, cut_max):
    """Var u(p) of the folded draw equals T sum_{i^2+j^2<=c^2} sin^2 sin^2 / (i^2+j^2) at every pixel."""
    cuts = torch.tensor([2, 3, cut_max // 2 + 1, cut_max])
    weights = folded_variance_weights(cuts, h, w, cut_max).double()  # (B, Ky, Kx), float32 sums
    sy_f = torch.sin(
        math.pi
        * torch.arange(1, weights.shape[1] + 1, dtype=torch.float64)[None]
        * (torch.arange(h, dtype=torch.float64)[:, None] / (h - 1))
    )
    sx_f = torch.sin(
        math.pi
        * torch.arange(1, weights.shape[2] + 1, dtype=torch.float64)[None]
        * (torch.arange(w, dtype=torch.float64)[:, None] / (w - 1))
    )
    var_folded = torch.einsum("pi,bij,qj->bpq", sy_f**2, weights, sx_f**2)
    i = torch.arange(1, cut_max + 1, dtype=torch.float64)
    sy = torch.sin(math.pi * i[None] * torch.arange(h, dtype=torch.float64)[:, None] / (h - 1))
    sx = torch.sin(math.pi * i[None] * torch.arange(w, dtype=torch.float64)[:, None] / (w - 1))
    r2 = i[:, None] ** 2 + i[None, :] ** 2
    for n, c in enumerate(cuts.tolist()):
        full = torch.where(r2 <= c * c, 1.0 / r2, 0.0)
        var_full = torch.einsum("pi,ij,qj->pq", sy**2, full, sx**2)
        torch.testing.assert_close(var_folded[n], var_full, atol=1e-9, rtol=1e-6)


def test_fold_weights_band_and_the_sampled_block():
    cuts = torch.tensor([3, 9, 12])
    full = folded_variance_weights(cuts, 40, 30, 100)
    band = folded_variance_weights(cuts, 40, 30, 100, band=(12, 12))
    torch.testing.assert_close(band, full[:, :12, :12], atol=0, rtol=0)
    assert bool((full[:, 12:] == 0).all()) and bool((full[:, :, 12:] == 0).all())
    p = sample_spatial_params(3, 40, 30, cut_min=2, cut_max=12, generator=torch.Generator().manual_seed(0))
    assert p["coeffs"].shape[2:] == (12, 12)  # min(cut_max, H - 2) x min(cut_max, W - 2), whatever the cuts


def test_disk_weights_equal_the_folded_weights_below_the_folding_limit():
    # below the folding limit the folded tables are the plain 1 / (i^2 + j^2) on the disk
    cuts = torch.tensor([2, 7, 19, 27])
    i = torch.arange(1, 28, dtype=torch.float64)
    r2 = i[:, None] ** 2 + i[None, :] ** 2
    direct = torch.where(r2 <= cuts.double().square()[:, None, None], 1.0 / r2, 0.0).float()
    folded = folded_variance_weights(cuts, 32, 29, 100, band=(27, 27))
    assert torch.equal(direct, folded)
    # and the sampled coefficients are non-zero exactly where the weights are
    g = torch.Generator().manual_seed(3)
    p = sample_spatial_params(4, 32, 29, cut_max=26, generator=g)
    assert p["coeffs"].shape[2:] == (26, 26)
    w = folded_variance_weights(p["cut"], 32, 29, 26)
    nonzero = p["coeffs"] != 0
    assert torch.equal(nonzero[:, 0], w > 0) and torch.equal(nonzero[:, 1], w > 0)


def test_temperature_range_formulas_and_empty_range():
    t_min, t_max = temperature_range(32, 5)
    assert t_min == pytest.approx(1 / (math.pi * 32**2 * math.log(5)))
    assert t_max == pytest.approx(4 / (math.pi**3 * 25 * math.log(5)))
    # empty exactly when c > 2n/pi
    n = 64
    for c in range(2, 100):
        lo, hi = temperature_range(n, c)
        assert (hi < lo) == (c > 2 * n / math.pi)
    p = sample_spatial_params(64, 64, 64, cut_min=90, cut_max=100, generator=torch.Generator().manual_seed(0))
    lo, _ = temperature_range(64, p["cut"])
    torch.testing.assert_close(p["temperature"].double(), lo, rtol=1e-6, atol=0)
    with pytest.raises(ValueError, match="cut"):
        temperature_range(32, 1)


# ---------------------------------------------------------------- color


def color_reference(x, coeffs, start):
    xd = x.double()
    out = xd.clone()
    for m in range(coeffs.shape[-1]):
        k = (start + m).double().view(-1, 1, 1, 1)
        out += coeffs[..., m].double()[..., None, None] * torch.sin(math.pi * k * xd)
    return out.clamp(0, 1)


@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-9), (torch.float32, 2e-5)])
def test_color_against_sum_of_sines(dtype, atol):
    g = torch.Generator().manual_seed(0)
    x = rand_images(3, 3, 7, 5, dtype=dtype)
    coeffs = 0.05 * torch.randn(3, 3, 100, generator=g, dtype=torch.float64)
    start = torch.tensor([1, 40, 400])
    got = sine_color(x, coeffs.to(dtype), start)
    torch.testing.assert_close(got.double(), color_reference(x, coeffs, start), atol=atol, rtol=0)


def test_color_shared_channel_coefficients():
    g = torch.Generator().manual_seed(0)
    x = rand_images(2, 3, 4, 4, dtype=torch.float64)
    coeffs = 0.1 * torch.randn(2, 1, 8, generator=g, dtype=torch.float64)
    start = torch.tensor([2, 3])
    torch.testing.assert_close(
        sine_color(x, coeffs, start), color_reference(x, coeffs.expand(2, 3, 8), start)
    )


def test_color_uint8_is_exact_table_of_the_equation():
    g = torch.Generator().manual_seed(0)
    x = rand_images(4, 3, 16, 16, dtype=torch.uint8)
    coeffs = 0.1 * torch.randn(4, 3, 20, generator=g)
    start = torch.tensor([1, 7, 100, 480])
    y = sine_color(x, coeffs, start)
    assert y.dtype == torch.uint8
    want = (color_reference(x.double() / 255, coeffs.double(), start) * 255).round().to(torch.uint8)
    assert torch.equal(y, want)
    lut = color_lut(coeffs, start)
    assert lut.shape == (4, 3, 256) and lut.dtype == torch.float64


def test_color_kernel_checks_shapes():
    x = rand_images(2, 3, 4, 4)
    with pytest.raises(ValueError, match="coeffs"):
        sine_color(x, torch.zeros(2, 2, 5), torch.ones(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="start"):
        sine_color(x, torch.zeros(2, 3, 5), torch.ones(3, dtype=torch.int64))
    with pytest.raises(TypeError, match="int32"):
        sine_color(x.to(torch.int32), torch.zeros(2, 3, 5), torch.ones(2, dtype=torch.int64))


@pytest.mark.parametrize("d", [1, 2, 3, 31, 32, 33, 77])
def test_color_series_blocks_and_skipped_frequencies(d):
    from prime_augment.functional.color import _series

    g = torch.Generator().manual_seed(3)
    v = torch.rand(5, 3, 50, generator=g)
    coeffs = 0.05 * torch.randn(5, 3, d, generator=g)
    coeffs[2] = 0.0  # an image with no active frequency
    coeffs[3, :, d // 2 :] = 0.0
    start = torch.tensor([1, 9, 3, 250, 480])
    k = (start[:, None] + torch.arange(d)[None]).double()
    sines = torch.sin(math.pi * k[:, None, None, :] * v.double()[..., None])
    want = (coeffs.double()[:, :, None, :] * sines).sum(-1)
    got = _series(v, coeffs, start)
    torch.testing.assert_close(got.double(), want, atol=2e-5, rtol=0)
    assert bool((got[2] == 0).all())
    assert bool((_series(v, torch.zeros(5, 3, d), start) == 0).all())


def test_sampled_coefficients_vanish_outside_each_image_disk():
    # unfolded cuts: zero outside the disk of the cut; folded cuts: the whole folded block
    p = sample_spatial_params(64, 40, 30, cut_min=2, cut_max=100, generator=torch.Generator().manual_seed(5))
    lim = 30 - 1
    for c, co in zip(p["cut"].tolist(), p["coeffs"], strict=True):
        live = co.ne(0).any(0)
        if c < lim:
            assert not bool(live[c:].any()) and not bool(live[:, c:].any())
            i = torch.arange(1, live.shape[0] + 1)[:, None]
            j = torch.arange(1, live.shape[1] + 1)[None, :]
            assert torch.equal(live, (i * i + j * j <= c * c) & (i <= c) & (j <= c))
    assert p["coeffs"].shape[2:] == (38, 28) and bool((p["cut"] >= lim).any())
