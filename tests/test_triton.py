"""The fused Triton color kernel equals the eager series (checked with Triton's CPU interpreter)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

triton = pytest.importorskip("triton")

SCRIPT = textwrap.dedent(
    """
    import math, torch
    from prime_augment.functional import _fast_color as F
    from prime_augment.functional import sine_color, sample_color_params
    from prime_augment.functional.color import _series
    v = torch.rand(1, 3, 16)
    assert F.choose(v, torch.zeros(1, 3, 2), torch.ones(1, dtype=torch.int64)) == "triton", "interpreter: CPU"
    g = torch.Generator().manual_seed(0)
    for d, starts in [(1, [1, 2]), (33, [1, 7]), (77, [3, 450])]:
        v = torch.rand(2, 3, 300, generator=g)
        co = 0.05 * torch.randn(2, 3, d, generator=g)
        st = torch.tensor(starts)
        k = (st[:, None] + torch.arange(d)[None]).double()
        exact = v.double() + (co.double()[:, :, None, :] * torch.sin(math.pi * k[:, None, None, :]
                                                                      * v.double()[..., None])).sum(-1)
        fused = F.triton_map(v, co, st, clip=False)
        assert (fused.double() - exact).abs().max() < 3e-5, (d, (fused.double() - exact).abs().max())
        eager = v + _series(v, co, st)
        assert (fused - eager).abs().max() < 3e-5
        clipped = F.triton_map(v, co, st, clip=True)
        assert torch.equal(clipped, fused.clamp(0, 1))
    # through the public kernel, with shared channel coefficients and sampled parameters
    x = torch.rand(4, 3, 8, 8, generator=g)
    p = sample_color_params(4, 1, cut_max=500, bandwidth=20, variance_max=0.05, generator=g)
    y = sine_color(x, p["coeffs"], p["start"])
    flat = x.reshape(4, 3, 64)
    ref = (flat + _series(flat, p["coeffs"], p["start"])).clamp(0, 1).reshape(x.shape)
    assert (y - ref).abs().max() < 3e-5
    print("ok")
    """
)


def test_fused_color_kernel_matches_eager_under_interpreter():
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    env.pop("PRIME_AUGMENT_DISABLE_TRITON", None)
    res = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().endswith("ok")


@pytest.mark.cuda
def test_fused_color_kernel_on_cuda():
    from prime_augment.functional import _fast_color as F
    from prime_augment.functional.color import _series

    g = torch.Generator().manual_seed(0)
    v = torch.rand(8, 3, 5000, generator=g)
    co = 0.05 * torch.randn(8, 3, 100, generator=g)
    st = torch.randint(1, 400, (8,), generator=g)
    assert F.choose(v.cuda(), co.cuda(), st.cuda()) == "triton"
    fused = F.triton_map(v.cuda(), co.cuda(), st.cuda(), clip=False).cpu()
    torch.testing.assert_close(fused, v + _series(v, co, st), atol=3e-5, rtol=0)
