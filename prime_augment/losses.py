"""The Jensen-Shannon consistency loss and the helpers that make its views."""

from __future__ import annotations

import math
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

    Every term is computed in log space, in float32 at least: ``log p_i = log_softmax(z_i)``,
    ``log M = clamp(logsumexp_i(log p_i) - log S, log 1e-7, 0)`` and
    ``KL(p_i || M) = sum p_i (log p_i - log M)`` with ``p_i = exp(log p_i)``. The value equals timm's
    ``JsdCrossEntropy`` (which takes ``log`` of the clamped mixture and hands ``p_i`` to ``kl_div``), but
    the loss and its gradient stay finite for any finite logits: where a softmax probability underflows
    to 0 (a logit gap above ~100 in float32), differentiating ``p log p`` at ``p = 0`` gives NaN
    gradients under a finite loss, and the weights become NaN.

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
    # half-precision logits (autocast) are computed in float32
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    views = logits.split(split)
    ce = F.cross_entropy(views[0], target[:split], label_smoothing=label_smoothing)
    log_p = F.log_softmax(torch.stack(views), dim=-1)  # (S, B, classes)
    log_m = torch.logsumexp(log_p, dim=0) - math.log(num_splits)
    log_m = log_m.clamp(math.log(1e-7), 0.0)
    kl = F.kl_div(log_m.expand_as(log_p), log_p, reduction="sum", log_target=True)
    consistency = kl / (split * num_splits)
    loss = ce + weight * consistency
    if return_parts:
        return JSDParts(loss, ce.detach(), consistency.detach())
    return loss


class JSDLoss(nn.Module):
    """Module form of :func:`jsd_loss` (drop-in for a timm-style ``criterion(output, target)``).

    Also a drop-in for timm's ``JsdCrossEntropy``: its keyword names ``alpha`` (= ``weight``) and
    ``smoothing`` (= ``label_smoothing``) are accepted, and ``JSDLoss(num_splits=3, alpha=12,
    smoothing=0.1)`` equals ``timm.loss.JsdCrossEntropy(num_splits=3, alpha=12, smoothing=0.1)``
    wherever timm's is finite (and stays finite where timm's gradient is NaN, see :func:`jsd_loss`).
    The defaults differ in one place: timm's label smoothing is 0.1, ours is 0.0 (the method's).

    Args:
        num_splits: number of views stacked along the batch (clean first).
        weight: ``lambda`` of the consistency term (default 12); timm's name: ``alpha``.
        label_smoothing: label smoothing of the cross-entropy on the clean view (default 0); timm's
            name: ``smoothing``.
        return_parts: return a :class:`JSDParts` (loss, cross-entropy, consistency) instead of the loss.

    Example:
        >>> import torch
        >>> criterion = JSDLoss()
        >>> z = torch.randn(6, 5, generator=torch.Generator().manual_seed(0), requires_grad=True)
        >>> loss = criterion(z, torch.tensor([0, 1]))
        >>> loss.backward(); z.grad.shape
        torch.Size([6, 5])
        >>> JSDLoss(num_splits=3, alpha=12, smoothing=0.1)      # timm's keywords
        JSDLoss(num_splits=3, weight=12.0, label_smoothing=0.1)
    """

    def __init__(
        self,
        num_splits: int = 3,
        weight: float | None = None,
        *,
        label_smoothing: float | None = None,
        return_parts: bool = False,
        alpha: float | None = None,
        smoothing: float | None = None,
    ) -> None:
        super().__init__()
        self.num_splits = check_int(num_splits, "num_splits", low=2)
        weight = _one_of(weight, "weight", alpha, "alpha", 12.0)
        label_smoothing = _one_of(label_smoothing, "label_smoothing", smoothing, "smoothing", 0.0)
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


def _one_of(ours: Any, our_name: str, timms: Any, timm_name: str, default: float) -> Any:
    """The value of an argument that has our name and timm's: at most one of them may be given."""
    if ours is not None and timms is not None:
        raise TypeError(
            f"give {our_name} or its timm name {timm_name}, not both (got {ours!r} and {timms!r})"
        )
    if ours is not None:
        return ours
    return default if timms is None else timms


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
