"""The transforms at the edges: empty images, huge cuts, non-finite pixels, bad overrides and
parameters, videos, and ``torch.compile`` (issue 16)."""

from __future__ import annotations

import math
import resource
import time

import pytest
import torch
from helpers import rand_images, tensors_of
from torchvision import tv_tensors

from prime_augment import PRIME, AugmentCollate, RandomDiffeomorphism, RandomSineColor, RandomSpectralFilter
from prime_augment.functional import (
    deform,
    max_cut,
    sample_spatial_params,
    sine_color,
    sine_color_levels,
    spectral_filter,
)
from prime_augment.functional import spatial as S

#: the three primitives and PRIME, each with its own seeded generator
TRANSFORMS = {
    "spectral": lambda **kw: RandomSpectralFilter(**kw),
    "spatial": lambda **kw: RandomDiffeomorphism(**kw),
    "color": lambda **kw: RandomSineColor(**kw),
    "prime": lambda **kw: PRIME(depth_mode="fixed", **kw),
}
NAMES = sorted(TRANSFORMS)


def make(name, seed=0, **kw):
    return TRANSFORMS[name](generator=torch.Generator().manual_seed(seed), **kw)


# ---------------------------------------------------------------------------------------- empty images
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(2, 0, 8, 8), (2, 3, 0, 8), (2, 3, 8, 0), (3, 0, 8), (0, 3, 0, 0)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_images_without_pixels_give_an_empty_output_of_their_shape(name, shape, dtype):
    x = torch.zeros(shape, dtype=dtype)
    y = make(name)(x)
    assert type(y) is torch.Tensor and y.shape == x.shape and y.dtype == dtype


def test_kernels_accept_images_without_pixels():
    for shape in [(2, 0, 8, 8), (2, 3, 0, 8), (2, 3, 8, 0)]:
        x = torch.zeros(shape)
        assert spectral_filter(x, torch.zeros(2, 3, 3)).shape == shape
        assert deform(x, torch.zeros(2, 2, 4, 4)).shape == shape
        assert sine_color(x, torch.zeros(2, 1, 4), torch.ones(2, dtype=torch.int64)).shape == shape


# ------------------------------------------------------------------------------------------ huge cuts
def test_a_huge_cut_max_costs_what_the_image_size_allows():
    # before: RandomDiffeomorphism(cut_max=10**6) on 16 x 16 asked for a 7 TB table
    x = rand_images(4, 3, 16, 16)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    for static in (False, True):
        g = torch.Generator().manual_seed(1)
        y = RandomDiffeomorphism(cut_max=10**6, static_shapes=static, generator=g)(x)
        assert y.shape == x.shape and bool(torch.isfinite(y).all())
    assert time.perf_counter() - start < 5.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB: < 200 MB
    cap = max_cut(16, 16)
    assert cap == 60
    r2, cum, _ = S._fold_tables(16, 16, cap, device="cpu")
    assert r2.numel() <= 16 * 16**2 and cum.shape[0] == 14 * 14
    p = sample_spatial_params(64, 16, 16, cut_max=10**6, generator=torch.Generator().manual_seed(1))
    assert int(p["cut"].max()) <= cap and p["coeffs"].shape[2:] == (14, 14)
    # a cut above the cap counts as the cap
    big = S.folded_variance_weights(torch.tensor([10**6, cap]), 16, 16, 10**6)
    assert torch.equal(big[0], big[1])


@pytest.mark.parametrize("h, w, cut_max", [(32, 32, 100), (16, 16, 60), (12, 20, 40), (224, 224, 500)])
@pytest.mark.parametrize("static", [False, True])
def test_cuts_below_the_cap_draw_what_they_drew_without_it(monkeypatch, h, w, cut_max, static):
    assert cut_max <= max_cut(h, w)

    def draw():
        g = torch.Generator().manual_seed(3)
        kw = {"cut_max": cut_max, "generator": g, "static_shapes": static}
        return [sample_spatial_params(b, h, w, **kw) for b in (4, 40)]

    capped = draw()
    monkeypatch.setattr(S, "max_cut", lambda height, width: 10**9)  # no cap
    for a, b in zip(capped, draw(), strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_cap_keeps_every_preset_at_its_image_size():
    assert max_cut(32, 32) >= 100 and max_cut(224, 224) >= 500 and max_cut(8, 8) >= 10


# ------------------------------------------------------------------------------------ non-finite pixels
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_infinities_are_read_as_one_and_zero(name, dtype):
    g = torch.Generator().manual_seed(5)
    x = rand_images(3, 3, 12, 12, dtype=dtype)
    u = torch.rand(x.shape, generator=g)
    x[u < 0.1] = math.inf  # adjacent infinities too (a filter with taps of both signs made NaN)
    x[u > 0.9] = -math.inf
    t = make(name)
    params = t.make_params([x])
    y = t.transform(x, params)
    assert bool(torch.isfinite(y).all()) and bool(((y >= 0) & (y <= 1)).all())
    clamped = torch.nan_to_num(x, posinf=1.0, neginf=0.0)
    torch.testing.assert_close(y, t.transform(clamped, params), atol=0, rtol=0)
    assert bool(torch.isinf(x).any())  # the input is untouched


@pytest.mark.parametrize("name", NAMES)
def test_nan_pixels_propagate(name):
    x = rand_images(2, 3, 12, 12)
    x[:, :, 6, 6] = math.nan
    y = make(name)(x)
    assert bool(y.isnan().any()) and bool(torch.isfinite(y[:, :, :2]).all())


# --------------------------------------------------------------------------------- overrides, collate
@pytest.mark.parametrize(
    "key, value", [("color", 0), ("spatial", None), ("spatial", False), ("spectral", "K=5")]
)
def test_preset_overrides_that_are_not_dicts_are_refused(key, value):
    with pytest.raises(TypeError, match=rf"{key}=.*got {value!r}"):
        PRIME.from_preset("cifar10", **{key: value})
    assert PRIME.from_preset("cifar10", **{key: {}}).primitives == ("spectral", "spatial", "color")


def test_collate_names_an_empty_batch_and_mixed_sizes():
    with pytest.raises(ValueError, match="no samples"):
        AugmentCollate(PRIME())([])
    samples = [(torch.rand(3, 8, 8), 0), (torch.rand(3, 8, 8), 1), (torch.rand(3, 9, 8), 2)]
    with pytest.raises(ValueError, match=r"\(3, 8, 8\) \(sample 0\), \(3, 9, 8\) \(sample 2\)"):
        AugmentCollate(PRIME())(samples)
    with pytest.raises(ValueError, match=r"\(3, 9, 8\)"):
        AugmentCollate(PRIME(), image_index=None)([s[0] for s in samples])


# ------------------------------------------------------------------------------ color kernel arguments
def test_sine_color_refuses_nan_coefficients_and_band_starts_below_one():
    x = rand_images(2, 3, 4, 4)
    a = torch.full((2, 3, 5), 0.01)
    ok = torch.tensor([1, 3])
    q = (x * 255).to(torch.uint8)
    for fn, img in ((sine_color, x), (sine_color, q), (sine_color_levels, q.long())):
        with pytest.raises(ValueError, match="coeffs must not hold NaN"):
            fn(img, a.clone().index_fill_(2, torch.tensor([2]), math.nan), ok)
        for bad in ([0, 3], [1, -2]):
            with pytest.raises(ValueError, match=r"start.*>= 1"):
                fn(img, a, torch.tensor(bad))
        assert fn(img, a, ok).shape == img.shape


# ---------------------------------------------------------------------------------------------- video
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_video_frames_share_one_draw_and_videos_differ(name, dtype):
    frame = rand_images(2, 1, 3, 16, 16, dtype=dtype)  # two videos of one repeated frame each
    video = tv_tensors.Video(frame.expand(2, 4, 3, 16, 16).clone())
    t = make(name)
    params = t.make_params([video])
    assert next(v for v in _tensors(params)).shape[0] == 2  # one row per video
    out = t.transform(video, params)
    assert type(out) is tv_tensors.Video and out.shape == video.shape and out.dtype == dtype
    assert all(torch.equal(out[b, f], out[b, 0]) for b in range(2) for f in range(4))
    for f in range(4):  # every frame gets its video's draw
        frames = video[:, f].as_subclass(torch.Tensor)
        torch.testing.assert_close(out[:, f].as_subclass(torch.Tensor), t.transform(frames, params))
    # ... and two copies of one video differ
    twins = t(tv_tensors.Video(video[:1].expand(2, 4, 3, 16, 16).clone()))
    assert not torch.equal(twins[0], twins[1])


@pytest.mark.parametrize("name", NAMES)
def test_a_single_video_and_a_plain_replay(name):
    video = tv_tensors.Video(rand_images(5, 3, 12, 10))  # (T, C, H, W)
    t = make(name)
    params = t.make_params([video])
    out = t.transform(video, params)
    assert type(out) is tv_tensors.Video and out.shape == video.shape
    assert torch.equal(out, t.transform(video, params))


def _tensors(params):
    return iter(tensors_of(params))


# -------------------------------------------------------------------------------------- torch.compile
@pytest.fixture
def fallback_random():
    import torch._inductor.config as inductor_config

    torch._dynamo.reset()
    with inductor_config.patch(fallback_random=True):
        yield
    torch._dynamo.reset()


def _seeded(fn, x, seed=0):
    torch.manual_seed(seed)
    return fn(x)


@pytest.mark.slow
def test_compiled_diffeomorphism_draws_what_eager_draws(fallback_random):
    t = RandomDiffeomorphism()
    x = rand_images(4, 3, 8, 8)
    compiled = torch.compile(t)
    for seed in (0, 1):
        torch.testing.assert_close(_seeded(compiled, x, seed), _seeded(t, x, seed), atol=1e-5, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize(
    "factory",
    [RandomSpectralFilter, RandomDiffeomorphism, RandomSineColor],
    ids=["spectral", "spatial", "color"],
)
def test_the_batched_path_compiles_with_fullgraph_and_draws_what_eager_draws(fallback_random, factory):
    t = factory()
    x = rand_images(4, 3, 8, 8)

    def call(x):
        params = t.make_params([x])
        return params, t.transform(x, params)

    compiled = torch.compile(call, fullgraph=True)
    (p_c, y_c), (p_e, y_e) = _seeded(compiled, x), _seeded(call, x)
    assert p_c.keys() == p_e.keys()
    for k in p_e:  # the same draws (products of them may round differently: one ulp)
        torch.testing.assert_close(p_c[k], p_e[k], rtol=1e-6, atol=0)
    torch.testing.assert_close(y_c, y_e, atol=5e-5, rtol=0)  # compiled code fuses differently
