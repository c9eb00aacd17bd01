"""Every evaluation path of the color map against the equation, and the rule that chooses among them.

The paths (``functional._fast_color.PATHS``): the series (Clenshaw's recurrence), the table (quintic
Hermite interpolant) and the Triton kernel (checked on the CPU under ``TRITON_INTERPRET=1``, in a
subprocess, when Triton is installed). Each is forced on sizes that really take it (32x32 and 64x48
images, bands of 1, 20 and 100 frequencies up to frequency 500) and compared with the sum of sines
evaluated term by term in float64.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from helpers import rand_images

from prime_augment import RandomSineColor
from prime_augment.functional import _fast_color as F
from prime_augment.functional import sine_color
from prime_augment.functional.color import _series

#: (band width, band starts of the two images, coefficient scale): frequencies up to 500
BANDS = [(1, (3, 500), 0.2), (20, (1, 481), 0.1), (100, (1, 401), 0.03)]
SIZES = [(32, 32), (64, 48)]
#: float32 error of each path (the series and the kernel: rounding grows with the frequency; the
#: table: its proven interpolation bound 1e-6 plus rounding)
TOLERANCE = {"series": 3e-5, "table": 2e-6, "triton": 3e-5}


def reference(x: torch.Tensor, coeffs: torch.Tensor, start: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """``x + sum_m a_m sin(pi (s + m) x)`` term by term in float64 (no recurrence, no table)."""
    xd = x.double()
    out = xd.clone()
    for m in range(coeffs.shape[-1]):
        n = (start + m).double().view(-1, 1, 1, 1)
        out += coeffs[..., m].double()[..., None, None] * torch.sin(math.pi * n * xd)
    return out.clamp(0, 1) if clip else out


def params(d: int, starts: tuple[int, ...], scale: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(len(starts), 3, d, generator=g), torch.tensor(starts)


# ------------------------------------------------------------------------------ the series and the table
@pytest.mark.parametrize("path", ["series", "table"])
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("band", BANDS, ids=lambda b: f"D{b[0]}")
def test_path_equals_the_sum_of_sines(path, size, band):
    d, starts, scale = band
    coeffs, start = params(d, starts, scale, seed=d)
    x = rand_images(2, 3, *size, seed=d)
    before = x.clone()
    with F.forced(path):
        assert F.choose(x.reshape(2, 3, -1), coeffs, start) == path  # the path really runs
        got = sine_color(x, coeffs, start, clip=False)
        clipped = sine_color(x, coeffs, start)
        singles = [sine_color(x[i : i + 1], coeffs[i : i + 1], start[i : i + 1]) for i in range(2)]
    assert torch.equal(x, before)  # input untouched
    want = reference(x, coeffs, start, clip=False)
    torch.testing.assert_close(got.double(), want, atol=TOLERANCE[path], rtol=0)
    torch.testing.assert_close(clipped.double(), want.clamp(0, 1), atol=TOLERANCE[path], rtol=0)
    assert torch.equal(torch.cat(singles), clipped)  # batched == per image, exactly


@pytest.mark.parametrize("path", ["series", "table"])
def test_path_with_one_map_for_all_channels(path):
    coeffs, start = params(20, (7, 300), 0.1, seed=3)
    coeffs = coeffs[:, :1]
    x = rand_images(2, 3, 32, 32, seed=4)
    with F.forced(path):
        got = sine_color(x, coeffs, start, clip=False)
    want = reference(x, coeffs.expand(2, 3, 20), start, clip=False)
    torch.testing.assert_close(got.double(), want, atol=TOLERANCE[path], rtol=0)


@pytest.mark.parametrize("path", ["series", "table"])
def test_transform_under_each_path(path):
    # the module (uint8 in, uint8 out; float in, float out) gives the same images by each path
    g = torch.Generator().manual_seed(5)
    t = RandomSineColor(cut_max=500, bandwidth=20, variance_max=0.05, generator=g)
    x = rand_images(4, 3, 32, 32, seed=5)
    params_ = t.make_params([x])
    want = reference(x, params_["coeffs"], params_["start"])
    with F.forced(path):
        y = t.transform(x, params_)
        q = t.transform((x * 255).round().to(torch.uint8), params_)  # (apply_levels: the exact levels)
    assert y.dtype == torch.float32 and q.dtype == torch.uint8 and y.shape == x.shape
    torch.testing.assert_close(y.double(), want, atol=TOLERANCE[path], rtol=0)
    qwant = reference((x * 255).round().double() / 255, params_["coeffs"], params_["start"])
    assert ((q.double() - qwant * 255).abs() <= 0.5 + 1e-3).all()  # rounded


def test_series_gradients():
    g = torch.Generator().manual_seed(6)
    x = (0.05 + 0.9 * torch.rand(2, 2, 3, 3, generator=g, dtype=torch.float64)).requires_grad_(True)
    a = (0.05 * torch.randn(2, 2, 40, generator=g, dtype=torch.float64)).requires_grad_(True)
    start = torch.tensor([3, 200])
    assert torch.autograd.gradcheck(lambda x, a: sine_color(x, a, start, clip=False), (x, a))
    # float32 with a wide band (the table's case) records the series and differentiates it
    xf = torch.rand(1, 3, 32, 32, generator=g).requires_grad_(True)
    af = 0.02 * torch.randn(1, 3, 100, generator=g)
    assert F.choose(xf.reshape(1, 3, -1), af, torch.tensor([1])) == "series"
    sine_color(xf, af, torch.tensor([1]), clip=False).sum().backward()
    n = 1 + torch.arange(100, dtype=torch.float64)
    phase = math.pi * n * xf.double()[..., None]
    slope = 1 + (af.double()[..., None, None, :] * math.pi * n * torch.cos(phase)).sum(-1)
    torch.testing.assert_close(xf.grad.double(), slope, atol=1e-3, rtol=1e-4)


# ------------------------------------------------------------------------------------ the Triton kernel
TRITON_SCRIPT = textwrap.dedent(
    """
    import math, sys, torch
    sys.path.insert(0, {tests!r})
    from test_color_paths import BANDS, SIZES, TOLERANCE, params, reference
    from helpers import rand_images
    from prime_augment.functional import _fast_color as F
    from prime_augment.functional import sine_color
    for d, starts, scale in BANDS:
        coeffs, start = params(d, starts, scale, seed=d)
        for size in SIZES:
            x = rand_images(2, 3, *size, seed=d)
            before = x.clone()
            assert F.choose(x.reshape(2, 3, -1), coeffs, start) == "triton"
            got = sine_color(x, coeffs, start, clip=False)
            assert torch.equal(x, before)
            err = (got.double() - reference(x, coeffs, start, clip=False)).abs().max()
            assert err <= TOLERANCE["triton"], (d, size, float(err))
            clipped = sine_color(x, coeffs, start)
            singles = [sine_color(x[i : i + 1], coeffs[i : i + 1], start[i : i + 1]) for i in range(2)]
            assert torch.equal(torch.cat(singles), clipped)
            assert torch.equal(clipped, got.clamp(0, 1))
    print("ok")
    """
)


def test_triton_path_equals_the_sum_of_sines_under_the_interpreter():
    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    env.pop("PRIME_AUGMENT_DISABLE_TRITON", None)
    script = TRITON_SCRIPT.format(tests=os.path.dirname(os.path.abspath(__file__)))
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().endswith("ok")


# ------------------------------------------------------------------------------------ the rule
@pytest.fixture
def no_triton(monkeypatch):
    monkeypatch.setattr(F, "INTERPRET", False)  # (a test run under TRITON_INTERPRET=1 would pick it)


def _case(d=F.TABLE_MIN_WORK // 1024, dtype=torch.float32, b=2, n=1024):
    g = torch.Generator().manual_seed(7)
    v = torch.rand(b, 3, n, generator=g, dtype=dtype)
    return v, 0.05 * torch.randn(b, 3, d, generator=g, dtype=dtype), torch.arange(1, b + 1)


def test_rule_on_the_cpu(no_triton):
    v, a, s = _case()
    assert F.choose(v, a, s) == "table"  # CPU float32, D N = TABLE_MIN_WORK (64 frequencies, 32x32)
    assert F.choose(*_case(d=F.TABLE_MIN_WORK // 1024 - 1)) == "series"  # a narrower band
    assert F.choose(*_case(d=2, n=224 * 224)) == "table"  # 2 frequencies on a 224x224 image
    assert F.choose(*_case(d=1, n=224 * 224)) == "series"
    assert F.choose(*_case(d=100, n=656)) == "table"  # 65600
    assert F.choose(*_case(d=100, n=655)) == "series"  # 65500
    assert F.choose(*_case(dtype=torch.float64)) == "series"  # float64
    assert F.choose(v.requires_grad_(True), a, s) == "series"  # autograd records the call
    with torch.no_grad():
        assert F.choose(v, a, s) == "table"
    assert F.choose(v.detach(), a.requires_grad_(True), s) == "series"
    assert F.choose(v.detach() + 1.0, a.detach(), s) == "table"  # the rule reads no value
    assert F.choose(v[:0].detach(), a[:0].detach(), s[:0]) == "series"  # nothing to compute


def test_table_hands_what_it_cannot_take_back_to_the_series():
    v, a, s = _case(d=20)
    v[1, 2, 5] = 1.5  # a value outside [0, 1]
    nan = v.clone()
    nan[0, 0, 0] = math.nan
    rough = (1e12 * a, s + 10**4)  # would need more than 65536 intervals
    for args in ((v, a, s), (nan, a, s), (v.clamp(0, 1), *rough)):
        assert F.evaluate("table", *args, clip=False) is None
        x = args[0][..., None]
        got = sine_color(x, *args[1:], method="table", clip=False)
        want = sine_color(x, *args[1:], method="series", clip=False)
        torch.testing.assert_close(got, want, atol=0, rtol=0, equal_nan=True)


def test_rule_depends_on_the_sizes_not_the_values(no_triton):
    # a batch and each of its images take the same path (the band width and image size are shapes)
    for d, want in ((63, "series"), (64, "table"), (100, "table")):
        v, a, s = _case(d=d, b=4)
        a[1:, :, d // 2 :] = 0.0  # trailing zero frequencies do not change the path
        assert F.choose(v, a, s) == want
        assert all(F.choose(v[i : i + 1], a[i : i + 1], s[i : i + 1]) == want for i in range(4))


def test_rule_when_compiling(no_triton, monkeypatch):
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert F.choose(*_case(d=100)) == "series"  # (the table reads its grids from the coefficients)


def test_rule_off_the_cpu(no_triton):
    v, a, s = _case(d=100)
    meta = [t.to("meta") for t in (v, a, s)]
    assert F.choose(*meta) == "series"  # another device without Triton: the series, no data read


def test_rule_with_triton(monkeypatch):
    # the Triton condition without a GPU: make the kernel "available" on CPU tensors (as under the
    # interpreter) and ask the rule only (the kernel itself is checked above)
    monkeypatch.setattr(F, "HAVE_TRITON", True)
    monkeypatch.setattr(F, "INTERPRET", True)
    monkeypatch.delenv("PRIME_AUGMENT_DISABLE_TRITON", raising=False)
    v, a, s = _case(d=2)
    assert F.choose(v, a, s) == "triton"  # float32, no autograd: whatever the band
    assert F.choose(*_case(dtype=torch.float64)) == "series"
    assert F.choose(v.requires_grad_(True), a, s) == "series"
    monkeypatch.setenv("PRIME_AUGMENT_DISABLE_TRITON", "1")
    assert F.choose(v.detach(), a, s) == "series"
    monkeypatch.setattr(F, "INTERPRET", False)
    monkeypatch.delenv("PRIME_AUGMENT_DISABLE_TRITON")
    assert F.choose(v.detach(), a, s) == "series"  # a CPU tensor is not CUDA


def test_forced_and_method(no_triton):
    v, a, s = _case(d=2)
    assert F.choose(v, a, s) == "series"
    with F.forced("table"):
        assert F.choose(v, a, s) == "table"
        assert F.choose(v, a, s, method="series") == "series"  # an explicit method wins
    with F.forced("triton"):
        assert F.choose(v, a, s) == "series"  # no Triton here
    assert F.choose(v, a, s, method="table") == "table"
    with pytest.raises(ValueError, match="path"):
        with F.forced("fast"):
            pass
    with pytest.raises(ValueError, match="method"):
        sine_color(v[..., None], a, s, method="triton")


def test_series_blocks_agree_across_the_reseeding_boundary():
    # bands that end just before, at and after a re-seeding block (32 frequencies)
    g = torch.Generator().manual_seed(8)
    v = torch.rand(2, 3, 50, generator=g)
    for d in (31, 32, 33, 64, 65):
        coeffs = 0.05 * torch.randn(2, 3, d, generator=g)
        start = torch.tensor([1, 430])
        want = reference(v[..., None], coeffs, start, clip=False)[..., 0] - v.double()
        torch.testing.assert_close(_series(v, coeffs, start).double(), want, atol=2e-5, rtol=0)
