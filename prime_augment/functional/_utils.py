"""Shared checks and reshaping for the functional kernels."""

from __future__ import annotations

import math

import torch


def check_image_batch(x: object, name: str = "x", *, min_dim: int = 3) -> torch.Tensor:
    """Check that ``x`` is a floating tensor of shape (..., C, H, W); return it."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim < min_dim:
        raise ValueError(f"{name} must have shape (..., C, H, W), got a tensor of shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor in [0, 1], got dtype {x.dtype}")
    return x


def flatten_batch(x: torch.Tensor) -> tuple[torch.Tensor, torch.Size]:
    """(..., C, H, W) -> (B, C, H, W) and the leading shape to restore it."""
    lead = x.shape[:-3]
    return x.reshape(math.prod(lead), *x.shape[-3:]), lead  # (not -1: C, H or W may be 0)


def check_param(t: object, name: str, shape: tuple[int | None, ...], batch: int) -> torch.Tensor:
    """Check a per-image parameter tensor: a tensor with ``batch`` rows and the given trailing shape.

    ``None`` in ``shape`` accepts any size on that axis.
    """
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    ok = t.ndim == len(shape) + 1 and t.shape[0] == batch
    ok = ok and all(s is None or s == d for s, d in zip(shape, t.shape[1:], strict=True))
    if not ok:
        want = ", ".join(["B", *("*" if s is None else str(s) for s in shape)])
        raise ValueError(f"{name} must have shape ({want}) with B={batch} images, got {tuple(t.shape)}")
    return t
