"""The laws of the sampled parameters, by statistical tests with fixed seeds.

Every test compares an empirical statistic with its exact value using a tolerance of several
standard errors; with the fixed seeds the outcomes are deterministic.
"""

from __future__ import annotations

import math

import pytest
import torch

from prime_augment.functional import (
    _random,
    folded_variance_weights,
    sample_color_params,
    sample_spatial_params,
    sample_spectral_params,
    temperature_range,
)

N = 20000


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def assert_mean_var(x, mean, var, z=5.0):
    x = x.double().flatten()
    n = x.numel()
    se_mean = math.sqrt(var / n)
    assert abs(x.mean().item() - mean) < z * se_mean + 1e-12, (x.mean().item(), mean)
    # the variance of the sample variance ~ (mu4 - var^2)/n; use a generous 3 var^2 / n bound
    se_var = math.sqrt(3 * var * var / n)
    assert abs(x.var().item() - var) < z * se_var + 1e-12, (x.var().item(), var)


def chi_square_ok(counts, probs, z=5.0):
    """Pearson chi-square against its mean k-1 and sd sqrt(2(k-1))."""
    counts = torch.as_tensor(counts, dtype=torch.float64)
    probs = torch.as_tensor(probs, dtype=torch.float64)
    keep = probs > 0
    expected = probs[keep] * counts.sum()
    stat = ((counts[keep] - expected) ** 2 / expected).sum().item()
    k = int(keep.sum())
    assert stat < (k - 1) + z * math.sqrt(2 * (k - 1)), (stat, k)
    assert counts[~keep].sum() == 0


# --------------------------------------------------------------- samplers


def test_uniform_randint_normal_exponential():
    assert_mean_var(_random.uniform((N,), 2.0, 5.0, generator=gen()), 3.5, 9 / 12)
    r = _random.randint((N,), 3, 9, generator=gen(1))
    chi_square_ok(torch.bincount(r - 3, minlength=7), [1 / 7] * 7)
    lo = torch.arange(N) % 5
    r2 = _random.randint((N,), lo, lo + 2, generator=gen(2))
    assert bool(((r2 >= lo) & (r2 <= lo + 2)).all())
    assert_mean_var(_random.normal((N,), generator=gen(3)), 0.0, 1.0)
    assert_mean_var(_random.exponential((N,), generator=gen(4)), 1.0, 1.0)


@pytest.mark.parametrize("a, b", [(1, 1), (0.5, 0.5), (5, 1), (1, 3), (6, 2), (0.3, 0.7), (2.5, 2.5)])
def test_beta_moments(a, b):
    x = _random.beta((N,), a, b, generator=gen(5))
    mean = a / (a + b)
    var = a * b / ((a + b) ** 2 * (a + b + 1))
    assert_mean_var(x, mean, var)
    assert bool(((x >= 0) & (x <= 1)).all())


@pytest.mark.parametrize("a", [0.4, 1.0, 3.7])
def test_gamma_moments(a):
    assert_mean_var(_random.gamma((N,), a, generator=gen(6)), a, a)


def test_dirichlet_ones_moments():
    k = 3
    w = _random.dirichlet_ones((N,), k, generator=gen(7))
    torch.testing.assert_close(w.sum(-1), torch.ones(N), atol=1e-6, rtol=0)
    # Dirichlet(1,1,1): mean 1/3, var (1/3)(2/3)/4 = 1/18, cov -1/36
    for i in range(k):
        assert_mean_var(w[:, i], 1 / 3, 1 / 18)
    cov = ((w[:, 0] - 1 / 3) * (w[:, 1] - 1 / 3)).mean().item()
    assert abs(cov + 1 / 36) < 5 * math.sqrt(1 / 18**2 / N) * 2


def test_samplers_reject_bad_laws():
    with pytest.raises(ValueError, match="alpha"):
        _random.beta((2,), 0.0, 1.0)
    with pytest.raises(ValueError, match="concentration"):
        _random.gamma((2,), -1.0)
    with pytest.raises(ValueError, match="high"):
        _random.randint((2,), 5, 3)
    with pytest.raises(ValueError, match="k"):
        _random.dirichlet_ones((2,), 0)


def test_same_generator_seed_gives_same_draw():
    a = _random.normal((5,), generator=gen(9), device="cpu")
    b = _random.normal((5,), generator=gen(9))
    assert torch.equal(a, b)


# --------------------------------------------------------------- primitives' parameters


@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_spectral_laws(strength):
    p = sample_spectral_params(N, kernel_size=3, sigma_max=4.0, strength=strength, generator=gen(10))
    smax = 4.0 * strength
    assert_mean_var(p["sigma"], smax / 2, smax**2 / 12)
    z = p["taps"] / p["sigma"][:, None, None]
    assert_mean_var(z, 0.0, 1.0)
    assert p["taps"].shape == (N, 3, 3)


def test_spectral_fixed_sigma():
    kw = {"kernel_size": 5, "sigma_min": 2.0, "sigma_max": 2.0, "strength": 0.5}
    p = sample_spectral_params(N // 9, **kw, generator=gen(24))
    assert bool((p["sigma"] == 1.0).all())
    assert_mean_var(p["taps"], 0.0, 1.0)
    lo = sample_spectral_params(N, sigma_min=1.0, sigma_max=3.0, generator=gen(25))["sigma"]
    assert_mean_var(lo, 2.0, 4 / 12)
    with pytest.raises(ValueError, match="sigma_min"):
        sample_spectral_params(2, sigma_min=5.0, sigma_max=4.0)


def arcsine_cdf(x):
    x = min(max(x, 0.0), 1.0)
    return 2 / math.pi * math.asin(math.sqrt(x))


def cut_pmf(cut_min, cut_max):
    """Exact law of the cut: max cut m ~ U{cut_min+1..cut_max}, c = floor(cut_min + B (m+1-cut_min))."""
    probs = torch.zeros(cut_max + 1, dtype=torch.float64)
    tops = range(cut_min + 1, cut_max + 1)
    for m in tops:
        span = m + 1 - cut_min
        for c in range(cut_min, m + 1):
            probs[c] += (arcsine_cdf((c + 1 - cut_min) / span) - arcsine_cdf((c - cut_min) / span)) / len(
                tops
            )
    return probs


def test_spatial_cut_and_temperature_laws():
    h = w = 32
    p = sample_spatial_params(N, h, w, cut_min=2, cut_max=20, generator=gen(11))
    chi_square_ok(torch.bincount(p["cut"], minlength=21).double(), cut_pmf(2, 20))
    lo, hi = temperature_range(32, p["cut"])
    hi = torch.maximum(hi, lo)
    frac = ((p["temperature"].double() - lo) / (hi - lo)).clamp(0, 1)
    assert_mean_var(frac, 0.5, 1 / 8)  # Beta(1/2, 1/2)
    # coefficients: N(0, T W) on the folded frequencies
    weights = folded_variance_weights(p["cut"], h, w, 20)
    std = (p["temperature"].double()[:, None, None] * weights).sqrt()[:, None]
    live = std.expand_as(p["coeffs"]) > 0
    z = p["coeffs"].double()[live] / std.expand_as(p["coeffs"])[live]
    assert_mean_var(z, 0.0, 1.0)
    assert bool((p["coeffs"][~live] == 0).all())


def test_spatial_laws_in_small_batches():
    # the one sampler draws every batch size alike: batches of 4 (a DataLoader worker's few images)
    g = gen(21)
    draws = [sample_spatial_params(4, 32, 32, cut_min=2, cut_max=20, generator=g) for _ in range(N // 4)]
    cut = torch.cat([p["cut"] for p in draws])
    temperature = torch.cat([p["temperature"] for p in draws]).double()
    chi_square_ok(torch.bincount(cut, minlength=21).double(), cut_pmf(2, 20))
    lo, hi = temperature_range(32, cut)
    frac = ((temperature - lo) / (torch.maximum(hi, lo) - lo)).clamp(0, 1)
    assert_mean_var(frac, 0.5, 1 / 8)  # Beta(1/2, 1/2)
    coeffs = torch.cat([p["coeffs"] for p in draws])
    assert coeffs.shape[1:] == (2, 20, 20)  # min(cut_max, H - 2): the same block for every batch
    std = (temperature[:, None, None] * folded_variance_weights(cut, 32, 32, 20)).sqrt()[:, None]
    live = std.expand_as(coeffs) > 0
    assert_mean_var(coeffs.double()[live] / std.expand_as(coeffs)[live], 0.0, 1.0)
    assert bool((coeffs[~live] == 0).all())


@pytest.mark.parametrize("level", [0.0, 0.3, 1.0])
def test_spatial_fixed_cut_and_temperature_level(level):
    # cut_min == cut_max fixes the cut, temperature_level fixes B2: only the coefficients are random
    h, w, c = 24, 40, 30  # c > 2 n / pi = 25.5: an empty T range (T_min), the cut folds along the height
    p = sample_spatial_params(N // 10, h, w, cut_min=c, cut_max=c, temperature_level=level, generator=gen(23))
    assert bool((p["cut"] == c).all())
    for cut in (c, 9):
        kw = {"cut_min": cut, "cut_max": cut, "strength": 0.5, "temperature_level": level}
        q = sample_spatial_params(N // 10, h, w, **kw)
        t_min, t_max = temperature_range(max(h, w), cut)
        want = 0.25 * (t_min + level * max(t_max - t_min, 0.0))
        got = q["temperature"].double()
        torch.testing.assert_close(got, torch.full_like(got, want), rtol=1e-6, atol=0)
    weights = folded_variance_weights(p["cut"][:1], h, w, c)[0].double()
    std = (p["temperature"][0].double() * weights).sqrt()
    z = p["coeffs"].double()[:, :, std > 0] / std[std > 0]
    assert_mean_var(z, 0.0, 1.0)
    with pytest.raises(ValueError, match="temperature_level"):
        sample_spatial_params(2, h, w, temperature_level=1.5)


def test_spatial_strength_scales_temperature():
    a = sample_spatial_params(100, 32, 32, generator=gen(12))
    b = sample_spatial_params(100, 32, 32, strength=0.5, generator=gen(12))
    torch.testing.assert_close(b["temperature"], 0.25 * a["temperature"])
    torch.testing.assert_close(b["coeffs"], 0.5 * a["coeffs"], rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("bandwidth", [None, 5])
def test_color_laws(bandwidth):
    cut_max, vmax = 12, 0.01
    p = sample_color_params(N, 3, cut_max=cut_max, bandwidth=bandwidth, variance_max=vmax, generator=gen(13))
    chi_square_ok(torch.bincount(p["cut"] - 1, minlength=cut_max), [1 / cut_max] * cut_max)
    assert_mean_var(p["variance"], vmax / 2, vmax**2 / 12)
    cut, start = p["cut"], p["start"]
    if bandwidth is None:
        assert bool((start == 1).all())
    else:
        wide = cut > bandwidth
        assert bool((start[~wide] == 1).all())
        for k in (6, 9, 12):  # start | K ~ U{1..K}
            sel = start[cut == k]
            chi_square_ok(torch.bincount(sel - 1, minlength=k), [1 / k] * k)
    d = p["coeffs"].shape[-1]
    freq = start[:, None] + torch.arange(d)[None]
    on = (freq <= cut[:, None])[:, None].expand_as(p["coeffs"])
    z = p["coeffs"][on].double() / p["variance"].double().sqrt()[:, None, None].expand_as(p["coeffs"])[on]
    assert_mean_var(z, 0.0, 1.0)
    assert bool((p["coeffs"][~on] == 0).all())


def test_color_sampler_fixed_and_ranged_settings():
    from prime_augment.functional import sample_color_params

    kw = {"cut_min": 40, "cut_max": 60, "variance_min": 0.02, "variance_max": 0.05}
    p = sample_color_params(N, 3, **kw, generator=gen(20))
    assert int(p["cut"].min()) >= 40 and int(p["cut"].max()) <= 60
    chi_square_ok(torch.bincount(p["cut"] - 40, minlength=21), [1 / 21] * 21)
    assert_mean_var(p["variance"].double(), 0.035, 0.03**2 / 12)
    q = sample_color_params(8, 3, cut_min=30, cut_max=30, bandwidth=5, start=26, generator=gen(21))
    assert q["cut"].eq(30).all() and q["start"].eq(26).all() and q["coeffs"].ne(0).all()
    same = sample_color_params(8, 3, variance_min=0.01, variance_max=0.01, generator=gen(22))
    assert torch.allclose(same["variance"], torch.full((8,), 0.01))
    bads = ({"cut_min": 0}, {"cut_min": 101}, {"variance_min": -1.0}, {"variance_min": 0.5}, {"start": 0})
    for bad in bads:
        with pytest.raises(ValueError, match=next(iter(bad))):
            sample_color_params(2, 3, **bad)
