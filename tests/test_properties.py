"""Hypothesis properties of the primitives: identity, range, border, pixelwise, constants, independence."""

from __future__ import annotations

import pytest
import torch
from helpers import PRIMITIVES, rand_images
from hypothesis import given
from hypothesis import strategies as st

from prime_augment import RandomDiffeomorphism, RandomSineColor, RandomSpectralFilter

sizes = st.integers(min_value=1, max_value=24)
seeds = st.integers(min_value=0, max_value=2**31 - 1)
names = st.sampled_from(sorted(PRIMITIVES))


@given(
    name=names,
    b=st.integers(0, 3),
    c=st.sampled_from([1, 3]),
    h=sizes,
    w=sizes,
    seed=seeds,
    strength=st.floats(0.0, 3.0),
)
def test_output_in_unit_range_and_shape(name, b, c, h, w, seed, strength):
    t = PRIMITIVES[name](strength=strength, generator=torch.Generator().manual_seed(seed))
    if name == "spectral_reflect" and min(h, w) <= 2:
        pytest.skip("reflect padding needs images larger than K // 2")
    x = rand_images(b, c, h, w, seed=seed)
    y = t(x)
    assert y.shape == x.shape
    assert bool(((y >= 0) & (y <= 1)).all())


@given(name=names, h=sizes, w=sizes, seed=seeds)
def test_strength_zero_identity(name, h, w, seed):
    x = rand_images(2, 3, h, w, seed=seed)
    assert torch.equal(PRIMITIVES[name](strength=0.0)(x), x)


@given(h=st.integers(3, 40), w=st.integers(3, 40), seed=seeds, cut_max=st.integers(2, 200))
def test_diffeo_border_pixels_fixed(h, w, seed, cut_max):
    t = RandomDiffeomorphism(cut_max=cut_max, strength=2.0, generator=torch.Generator().manual_seed(seed))
    x = rand_images(3, 2, h, w, seed=seed)
    y = t(x)
    for sl in ((..., 0, slice(None)), (..., -1, slice(None)), (..., slice(None), 0), (..., slice(None), -1)):
        torch.testing.assert_close(y[sl], x[sl], atol=2e-6, rtol=0)


@given(seed=seeds, bandwidth=st.one_of(st.none(), st.integers(1, 30)), cut_max=st.integers(1, 300))
def test_color_map_is_pixelwise(seed, bandwidth, cut_max):
    """Equal input values (in one channel of one image) give equal outputs, wherever they are."""
    g = torch.Generator().manual_seed(seed)
    palette = torch.rand(2, 3, 5, generator=g)
    idx = torch.randint(0, 5, (2, 1, 12, 12), generator=g).expand(2, 3, 12, 12)
    x = palette.gather(2, idx.reshape(2, 3, -1)).reshape(2, 3, 12, 12)
    t = RandomSineColor(
        cut_max=cut_max, bandwidth=bandwidth, variance_max=0.05, generator=torch.Generator().manual_seed(seed)
    )
    y = t(x)
    for v in range(5):
        mask = idx[:, :1] == v
        for n in range(2):
            for c in range(3):
                vals = y[n, c][mask[n, 0]]
                if vals.numel():
                    assert bool((vals == vals[0]).all())


@given(seed=seeds, k=st.sampled_from([1, 3, 5, 7]), value=st.floats(0.0, 1.0), h=st.integers(8, 20))
def test_fir_keeps_constants_constant_in_the_interior(seed, k, value, h):
    t = RandomSpectralFilter(k, 1.0, generator=torch.Generator().manual_seed(seed))
    x = torch.full((2, 3, h, h + 3), value)
    y = t(x)
    r = k // 2
    inner = y[..., r : h - r, r : h + 3 - r]
    for n in range(2):
        torch.testing.assert_close(inner[n], inner[n].flatten()[0].expand_as(inner[n]), atol=1e-6, rtol=0)


@given(name=names, seed=seeds)
def test_per_image_independence_of_other_images(name, seed):
    """An image's result under given parameters does not depend on the other images of the batch."""
    t = PRIMITIVES[name](generator=torch.Generator().manual_seed(seed))
    x = rand_images(4, 3, 16, 16, seed=seed)
    params = t.make_params([x])
    y = t.transform(x, params)
    x2 = x.clone()
    x2[1:] = rand_images(3, 3, 16, 16, seed=seed + 1)
    y2 = t.transform(x2, params)
    torch.testing.assert_close(y2[0], y[0], atol=1e-6, rtol=0)


@given(name=names, seed=seeds)
def test_reproducible_under_seed(name, seed):
    x = rand_images(2, 3, 12, 12, seed=seed)
    torch.manual_seed(seed)
    a = PRIMITIVES[name]()(x)
    torch.manual_seed(seed)
    b = PRIMITIVES[name]()(x)
    assert torch.equal(a, b)
