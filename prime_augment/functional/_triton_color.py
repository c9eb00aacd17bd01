"""A fused Triton kernel for the color map on CUDA: one read and one write of the batch.

The eager evaluation (:func:`prime_augment.functional.color._series`) makes two element-wise passes
over the batch per frequency; on a GPU that is memory-bound (20 frequencies = 40 passes at ImageNet
scale). This kernel keeps the whole series in registers: every program handles a block of values of
one (image, channel) row, loads that row's coefficients one by one, and runs the sine recurrence
``sin((k + 1) t) = 2 cos t sin(k t) - sin((k - 1) t)`` re-seeded every 32 frequencies with sines whose
phase is reduced exactly (the same ``m / 2048 + lo`` split as the eager path), then clips.

Only imported when Triton is available; :func:`available` tells whether it can run on a tensor.
With ``TRITON_INTERPRET=1`` in the environment the kernel runs on CPU tensors (slowly), which is how
the tests check it against the eager path on machines without a GPU.
"""

from __future__ import annotations

import math
import os

import torch

try:  # pragma: no cover - depends on the installation
    import triton
    import triton.language as tl

    HAVE_TRITON = True
except Exception:  # pragma: no cover
    HAVE_TRITON = False

INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"
BLOCK = 1024
RESEED = 32


def available(x: torch.Tensor) -> bool:
    """Whether the fused kernel can process ``x`` (CUDA float32, or any device under the interpreter)."""
    if not HAVE_TRITON or os.environ.get("PRIME_AUGMENT_DISABLE_TRITON", "0") == "1":
        return False
    if torch.is_grad_enabled() and x.requires_grad:  # the kernel has no backward: the eager series
        return False
    return x.dtype == torch.float32 and (x.device.type == "cuda" or INTERPRET)


if HAVE_TRITON:

    @triton.jit
    def _exact_sin(k, m_int, lo):
        # sin(pi k v), v = m_int / 2048 + lo: (k mod 4096) * m_int < 2**23 is exact in float32
        whole = (((k % 4096.0) * m_int) % 4096.0) * (1.0 / 2048.0)
        return tl.sin(3.141592653589793 * (whole + k * lo))

    @triton.jit
    def _sine_color_kernel(
        x_ptr, out_ptr, coeff_ptr, start_ptr, n_per_row, n_freq, clip: tl.constexpr, BLOCK_SIZE: tl.constexpr
    ):
        row = tl.program_id(0)
        offs = tl.program_id(1) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
        mask = offs < n_per_row
        base = row.to(tl.int64) * n_per_row
        v = tl.load(x_ptr + base + offs, mask=mask, other=0.0)
        m_int = tl.floor(v * 2048.0 + 0.5)
        lo = v - m_int * (1.0 / 2048.0)
        two_cos = 2.0 * tl.cos(3.141592653589793 * v)
        k_first = tl.load(start_ptr + row).to(tl.float32)
        acc = tl.zeros([BLOCK_SIZE], dtype=tl.float32)
        for blk in range(0, n_freq, 32):
            k0 = k_first + blk
            s_prev = _exact_sin(k0 - 1.0, m_int, lo)
            s_cur = _exact_sin(k0, m_int, lo)
            for j in range(0, 32):
                f = blk + j
                if f < n_freq:
                    a = tl.load(coeff_ptr + row.to(tl.int64) * n_freq + f)
                    acc += a * s_cur
                    s_next = two_cos * s_cur - s_prev
                    s_prev = s_cur
                    s_cur = s_next
        out = v + acc
        if clip:
            out = tl.minimum(tl.maximum(out, 0.0), 1.0)
        tl.store(out_ptr + base + offs, out, mask=mask)


def sine_color_fused(
    v: torch.Tensor, coeffs: torch.Tensor, start: torch.Tensor, clip: bool = True
) -> torch.Tensor:
    """``clip(v + sum_m coeffs[..., m] sin(pi (start + m) v))`` for ``v`` of shape (B, C, N), float32.

    ``coeffs``: (B, C or 1, D); ``start``: (B,). Returns a new tensor; ``v`` is not modified.
    """
    b, c, n = v.shape
    d = coeffs.shape[-1]
    v = v.contiguous()
    out = torch.empty_like(v)
    if v.numel() == 0:
        return out
    rows = b * c
    coeffs = coeffs.to(device=v.device, dtype=torch.float32).expand(b, c, d).reshape(rows, d).contiguous()
    starts = start.to(device=v.device, dtype=torch.int32)[:, None].expand(b, c).reshape(rows).contiguous()
    grid = (rows, math.ceil(n / BLOCK))
    _sine_color_kernel[grid](v, out, coeffs, starts, n, d, clip, BLOCK_SIZE=BLOCK)
    return out
