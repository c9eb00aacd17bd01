"""Margins inside linear subspaces (Chapter 4 of the method): subspace-constrained DeepFool."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .deepfool import deepfool
from .subspace import Subspace, as_subspace

__all__ = ["margin_summary", "subspace_margin", "subspace_margins"]


def subspace_margin(
    model: Any,
    images: torch.Tensor,
    subspace: Subspace | torch.Tensor,
    *,
    labels: torch.Tensor | None = None,
    candidates: int = 10,
    overshoot: float = 0.02,
    max_iter: int = 100,
    bounds: tuple[float, float] | None = None,
) -> torch.Tensor:
    r"""The l2 margin of each image along a subspace: the norm of DeepFool's perturbation inside ``S``.

    DeepFool with every gradient projected onto :math:`S` (see
    :func:`~prime_augment.analysis.deepfool.deepfool`), so the perturbation :math:`r \in S`; the
    margin is :math:`\|r\|_2` where the class changed, ``inf`` where it did not within ``max_iter``
    steps (the boundary is out of reach along :math:`S`). For an affine classifier
    :math:`f(x) = W x + b` it is exact:

    .. math::
        m_S(x) = \min_{l \ne k} \frac{|f_k(x) - f_l(x)|}{\|P_S (w_k - w_l)\|_2}.

    Args:
        model: callable (an ``nn.Module``) mapping ``(B, C, H, W)`` to logits ``(B, K)``.
        images: float ``(B, C, H, W)`` or ``(C, H, W)``.
        subspace: a :class:`~prime_augment.analysis.subspace.Subspace` (e.g.
            :class:`~prime_augment.analysis.dct.DCTSubspace`) or a dense ``(C*H*W, S)`` orthonormal
            basis tensor.
        labels: optional ``(B,)`` classes (default: the model's predictions).
        candidates: classes considered (top by logit, ``>= 2``). Default 10.
        overshoot: DeepFool's overshoot (pushes across the boundary; not included in the margin).
        max_iter: steps before giving up (margin ``inf``). Default 100.
        bounds: ``None`` (default): no box, the margin is a property of the classifier's geometry and
            clipping would take the perturbation out of ``S``. A pair ``(low, high)`` clips the iterates.

    Shape:
        ``(B, C, H, W) -> (B,)`` (``(C, H, W) -> ()``).

    Example:
        >>> import torch
        >>> from prime_augment.analysis import subspace_margin
        >>> lin = torch.nn.Linear(4, 2, bias=False)
        >>> with torch.no_grad():
        ...     _ = lin.weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]))
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), lin)
        >>> x = torch.tensor([[[[3.0, 0.0], [0.0, 1.0]]]])   # f = (3, 1): class 0, margin 2 / ||w0 - w1||
        >>> basis = torch.eye(4)[:, :1]                      # only the first pixel may move
        >>> subspace_margin(model, x, basis)                 # 2 / ||P_S (w0 - w1)|| = 2 / 1
        tensor([2.])
        >>> subspace_margin(model, x, torch.eye(4)[:, 1:3])  # P_S (w0 - w1) = 0: out of reach
        tensor([inf])
    """
    res = deepfool(
        model, images, labels=labels, candidates=candidates, overshoot=overshoot, max_iter=max_iter,
        bounds=bounds, subspace=as_subspace(subspace),
    )  # fmt: skip
    return torch.where(res.success, res.distance, torch.full_like(res.distance, float("inf")))


def subspace_margins(
    model: Any,
    images: torch.Tensor,
    subspaces: Sequence[Subspace | torch.Tensor],
    **kwargs: Any,
) -> torch.Tensor:
    """:func:`subspace_margin` for each of several subspaces, stacked.

    Args:
        model, images: as in :func:`subspace_margin`.
        subspaces: a sequence of subspaces (e.g. :func:`~prime_augment.analysis.dct.dct_diagonal_subspaces`).
        **kwargs: forwarded to :func:`subspace_margin`.

    Shape:
        ``(B, C, H, W) -> (len(subspaces), B)``.

    Example:
        >>> import torch
        >>> from prime_augment.analysis import dct_diagonal_subspaces, subspace_margins
        >>> _ = torch.manual_seed(0)
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3))
        >>> x = torch.rand(5, 3, 8, 8)
        >>> subspace_margins(model, x, dct_diagonal_subspaces(8, 8, block=4, step=2)).shape
        torch.Size([3, 5])
    """
    if isinstance(subspaces, (Subspace, torch.Tensor)) or not isinstance(subspaces, Sequence):
        raise TypeError(f"subspaces must be a sequence of subspaces, got {type(subspaces).__name__}")
    if len(subspaces) == 0:
        raise ValueError("subspaces must not be empty")
    return torch.stack([subspace_margin(model, images, s, **kwargs) for s in subspaces])


def margin_summary(margins: Any) -> dict[str, float]:
    """Quartiles of per-image margins, ``inf`` (out of reach) included, and the share out of reach.

    The quartiles are order statistics (numpy's ``"nearest"`` percentile), so an ``inf`` margin
    counts as the largest value and a median may be ``inf`` when more than half are out of reach.

    Args:
        margins: ``(N,)`` margins (tensor, array or sequence; ``inf`` where no boundary was reached).

    Returns:
        ``{"median", "p25", "p75", "unreached_pct", "images"}`` (``nan`` quartiles when ``N = 0``).

    Example:
        >>> from prime_augment.analysis import margin_summary
        >>> margin_summary([1.0, 2.0, 3.0, 4.0, float("inf")])
        {'median': 3.0, 'p25': 2.0, 'p75': 4.0, 'unreached_pct': 20.0, 'images': 5}
    """
    m = np.asarray(margins.detach().cpu() if isinstance(margins, torch.Tensor) else margins, dtype=np.float64)
    m = m.ravel()
    if np.isnan(m).any():
        raise ValueError("margins must not contain NaN (use inf for margins out of reach)")
    if m.size == 0:
        return {"median": float("nan"), "p25": float("nan"), "p75": float("nan"), "unreached_pct": 0.0,
                "images": 0}  # fmt: skip
    q25, q50, q75 = np.percentile(m, [25, 50, 75], method="nearest")
    return {
        "median": float(q50),
        "p25": float(q25),
        "p75": float(q75),
        "unreached_pct": 100.0 * float(np.isinf(m).mean()),
        "images": int(m.size),
    }
