"""Helpers shared by the analysis extra: argument checks, the train/eval mode guard, logits."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import numbers
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch
from torch import nn

Model = Callable[[torch.Tensor], torch.Tensor]
Result = TypeVar("Result")


def check_model(model: Any, name: str = "model") -> Model:
    """A callable (usually an ``nn.Module``) mapping a batch ``(B, ...)`` to logits ``(B, K)``."""
    if not callable(model):
        raise TypeError(
            f"{name} must be a callable (e.g. an nn.Module), got {model!r} ({type(model).__name__})"
        )
    return model


def check_images(images: Any, name: str = "images") -> tuple[torch.Tensor, bool]:
    """A floating tensor ``(C, H, W)`` or ``(B, C, H, W)`` with finite values.

    Returns the batch view ``(B, C, H, W)`` and whether the input was a single image.
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(images).__name__}")
    if not images.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor (e.g. float32 in [0, 1]), got dtype {images.dtype}; "
            "convert uint8 images with images.float() / 255"
        )
    if images.ndim not in (3, 4):
        raise ValueError(f"{name} must have shape (C, H, W) or (B, C, H, W), got {tuple(images.shape)}")
    if not bool(torch.isfinite(images).all()):
        raise ValueError(f"{name} must be finite, got NaN or infinite values")
    single = images.ndim == 3
    return (images.unsqueeze(0) if single else images), single


def check_bounds(bounds: Any, name: str = "bounds") -> tuple[float, float] | None:
    """``None`` (no box) or a pair ``(low, high)`` of finite reals with ``low < high``."""
    if bounds is None:
        return None
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise TypeError(f"{name} must be None or a pair (low, high), got {bounds!r}")
    lo, hi = bounds
    for v in (lo, hi):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)):
            raise TypeError(f"{name} must hold two finite real numbers, got {bounds!r}")
    if not float(lo) < float(hi):
        raise ValueError(f"{name} must satisfy low < high, got {bounds!r}")
    return float(lo), float(hi)


def check_in_bounds(x: torch.Tensor, bounds: tuple[float, float] | None, name: str = "images") -> None:
    """A ValueError naming ``name`` when ``x`` lies outside the valid input range."""
    if bounds is None or x.numel() == 0:
        return
    lo, hi = bounds
    xmin, xmax = float(x.min()), float(x.max())
    if xmin < lo or xmax > hi:
        raise ValueError(
            f"{name} must lie in the valid input range bounds={bounds}, "
            f"got values in [{xmin:.4g}, {xmax:.4g}] "
            "(pass bounds=(low, high) for another range, or bounds=None for none)"
        )


def check_labels(labels: Any, batch: int, name: str, device: torch.device) -> torch.Tensor | None:
    """``None`` or an integer tensor of shape ``(batch,)``, moved to ``device``."""
    if labels is None:
        return None
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"{name} must be None or an integer torch.Tensor, got {type(labels).__name__}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor, got dtype {labels.dtype}")
    labels = labels.reshape(-1) if labels.ndim == 0 else labels
    if labels.shape != (batch,):
        raise ValueError(f"{name} must have shape ({batch},), one class per image, got {tuple(labels.shape)}")
    return labels.to(device=device, dtype=torch.long)


def check_classes(v: torch.Tensor | None, name: str, num_classes: int) -> None:
    """A ValueError naming ``name`` when a class index is outside ``[0, num_classes)``."""
    if v is not None and bool(((v < 0) | (v >= num_classes)).any()):
        raise ValueError(f"{name} must hold classes in [0, {num_classes}), got {v.tolist()}")


@contextlib.contextmanager
def eval_mode(model: Any) -> Iterator[None]:
    """Put an ``nn.Module`` in eval mode and restore every submodule's own mode afterwards."""
    if not isinstance(model, nn.Module):
        yield
        return
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def logits(model: Model, x: torch.Tensor, name: str = "model") -> torch.Tensor:
    """``model(x)`` checked to be a ``(B, K)`` tensor with ``K >= 2``."""
    out = model(x)
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != x.shape[0] or out.shape[1] < 2:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"{name} must return logits of shape (B, K) with K >= 2 for a batch of {x.shape[0]}, got {got}"
        )
    return out


def batch_norm(x: torch.Tensor) -> torch.Tensor:
    """The l2 norm of each row of ``x`` ``(B, ...)`` -> ``(B,)``."""
    return x.flatten(1).norm(dim=1)


def bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-image vector ``(B,)`` viewed as ``(B, 1, ..., 1)`` against ``like``."""
    return v.view(-1, *([1] * (like.ndim - 1)))


def first_image(result: Result) -> Result:
    """An attack's result dataclass of a batch of one with every field indexed ``[0]`` (a single image's)."""
    return type(result)(**{f.name: getattr(result, f.name)[0] for f in dataclasses.fields(result)})
