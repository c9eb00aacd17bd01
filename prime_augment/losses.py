"""The Jensen-Shannon consistency loss and the helpers that make its views."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import check_float, check_int

__all__ = ["JSDLoss", "JSDParts", "JSDViews", "jsd_loss", "jsd_views"]


class JSDParts(NamedTuple):
    """The loss and its two terms (the terms detached, for logging)."""

    loss: torch.Tensor
    cross_entropy: torch.Tensor
    consistency: torch.Tensor


def jsd_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    num_splits: int = 3,
    weight: float = 12.0,
    *,
    label_smoothing: float = 0.0,
    return_parts: bool = False,
) -> torch.Tensor | JSDParts:
    """Cross-entropy on the clean view plus the Jensen-Shannon consistency of all views.

    .. math::

        \\mathcal L = \\operatorname{CE}(z_0, y) + \\lambda \\frac{1}{S} \\sum_{i=0}^{S-1}
        \\operatorname{KL}(p_i \\,\\|\\, M), \\qquad
        p_i = \\operatorname{softmax}(z_i), \\quad M = \\operatorname{clamp}\\Big(\\frac{1}{S}\\sum_i p_i,
        10^{-7}, 1\\Big),

    with the KL divergences averaged over the images of a view (``batchmean``), ``S = num_splits``
    views stacked along the batch as ``[clean; aug_1; ...; aug_{S-1}]`` (timm's layout) and
    ``lambda = weight``.

    Args:
        logits: ``(S * B, num_classes)``.
        target: ``(B,)`` class indices of the clean view, or ``(S * B,)`` (only the first ``B`` are used).
        num_splits: number ``S >= 2`` of views.
        weight: ``lambda >= 0`` (the method: 12).
        label_smoothing: label smoothing of the cross-entropy, in ``[0, 1)``.
        return_parts: also return the two terms (detached) as a :class:`JSDParts`.

    Example:
        >>> import torch
        >>> z = torch.randn(4, 10, generator=torch.Generator().manual_seed(0))
        >>> y = torch.tensor([1, 2, 3, 4])
        >>> parts = jsd_loss(z.repeat(3, 1), y, return_parts=True)   # identical views
        >>> ce = torch.nn.functional.cross_entropy(z, y)
        >>> float(parts.consistency) < 1e-6, torch.allclose(parts.loss, ce)
        (True, True)
    """
    num_splits = check_int(num_splits, "num_splits", low=2)
    weight = check_float(weight, "weight", low=0.0)
    label_smoothing = check_float(label_smoothing, "label_smoothing", low=0.0, high=1.0)
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        got = getattr(logits, "shape", logits)
        raise ValueError(f"logits must have shape (num_splits * B, num_classes), got {got}")
    n = logits.shape[0]
    if n == 0 or n % num_splits != 0:
        raise ValueError(
            f"the batch of {n} logits does not split into num_splits={num_splits} views of equal size"
        )
    split = n // num_splits
    if not isinstance(target, torch.Tensor) or target.shape[0] not in (split, n):
        raise ValueError(
            f"target must hold {split} (clean view) or {n} labels, got {getattr(target, 'shape', target)}"
        )
    views = logits.split(split)
    ce = F.cross_entropy(views[0], target[:split], label_smoothing=label_smoothing)
    # half-precision logits (autocast) get their softmax in float32
    probs = [F.softmax(v.float() if v.dtype in (torch.float16, torch.bfloat16) else v, dim=1) for v in views]
    log_m = torch.clamp(torch.stack(probs).mean(0), 1e-7, 1.0).log()
    consistency = sum(F.kl_div(log_m, p, reduction="batchmean") for p in probs) / num_splits
    loss = ce + weight * consistency
    if return_parts:
        return JSDParts(loss, ce.detach(), consistency.detach())
    return loss


class JSDLoss(nn.Module):
    """Module form of :func:`jsd_loss` (drop-in for a timm-style ``criterion(output, target)``).

    Args:
        num_splits: number of views stacked along the batch (clean first).
        weight: ``lambda`` of the consistency term (default 12).
        label_smoothing: label smoothing of the cross-entropy on the clean view.
        return_parts: return a :class:`JSDParts` (loss, cross-entropy, consistency) instead of the loss.

    Example:
        >>> import torch
        >>> criterion = JSDLoss()
        >>> z = torch.randn(6, 5, generator=torch.Generator().manual_seed(0), requires_grad=True)
        >>> loss = criterion(z, torch.tensor([0, 1]))
        >>> loss.backward(); z.grad.shape
        torch.Size([6, 5])
    """

    def __init__(
        self,
        num_splits: int = 3,
        weight: float = 12.0,
        *,
        label_smoothing: float = 0.0,
        return_parts: bool = False,
    ) -> None:
        super().__init__()
        self.num_splits = check_int(num_splits, "num_splits", low=2)
        self.weight = check_float(weight, "weight", low=0.0)
        self.label_smoothing = check_float(label_smoothing, "label_smoothing", low=0.0, high=1.0)
        self.return_parts = bool(return_parts)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor | JSDParts:
        return jsd_loss(
            logits,
            target,
            self.num_splits,
            self.weight,
            label_smoothing=self.label_smoothing,
            return_parts=self.return_parts,
        )

    def extra_repr(self) -> str:
        return f"num_splits={self.num_splits}, weight={self.weight}, label_smoothing={self.label_smoothing}"


def jsd_views(transform: Callable[[torch.Tensor], torch.Tensor], batch: torch.Tensor, num_splits: int = 3):
    """``[batch; transform(batch); ...]``: the stacked views for :func:`jsd_loss` (GPU batch setting).

    Each augmented view is an independent call of ``transform``, so every image gets
    ``num_splits - 1`` independent augmentations.

    Example:
        >>> import torch
        >>> from prime_augment import PRIME
        >>> x = torch.rand(4, 3, 16, 16)
        >>> jsd_views(PRIME(), x).shape
        torch.Size([12, 3, 16, 16])
    """
    num_splits = check_int(num_splits, "num_splits", low=2)
    return torch.cat([batch, *(transform(batch) for _ in range(num_splits - 1))])


class JSDViews(nn.Module):
    """Per-sample views for :func:`jsd_loss`: ``x -> (x, transform(x), transform(x))``.

    Use it as the last step of a Dataset's transform; the default collate then yields a tuple of
    ``num_splits`` batches, to be concatenated with ``torch.cat`` before the model.

    Example:
        >>> import torch
        >>> from torchvision.transforms import v2
        >>> from prime_augment import PRIME
        >>> views = v2.Compose([v2.ToDtype(torch.float32, scale=True), JSDViews(PRIME())])
        >>> clean, a1, a2 = views(torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8))
        >>> clean.shape, a1.dtype
        (torch.Size([3, 8, 8]), torch.float32)
    """

    def __init__(self, transform: Callable[[Any], Any], num_splits: int = 3) -> None:
        super().__init__()
        if not callable(transform):
            raise TypeError(f"transform must be callable, got {transform!r}")
        self.transform = transform
        self.num_splits = check_int(num_splits, "num_splits", low=2)

    def forward(self, x: Any) -> tuple[Any, ...]:
        return (x, *(self.transform(x) for _ in range(self.num_splits - 1)))
