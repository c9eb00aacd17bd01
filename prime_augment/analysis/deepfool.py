"""DeepFool (l2), batched, optionally restricted to a linear subspace of the input space."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .._validation import check_float, check_int
from . import _utils
from .subspace import Subspace, as_subspace

__all__ = ["DeepFoolResult", "deepfool"]


@dataclass(frozen=True)
class DeepFoolResult:
    """What :func:`deepfool` found, one row per image.

    Attributes:
        adversarial: ``x + (1 + overshoot) r`` (clipped to ``bounds``), same shape as the input.
        perturbation: ``adversarial - x``.
        boundary: ``x + r``, DeepFool's estimate of the closest boundary point (clipped to ``bounds``).
        distance: ``||r||_2`` per image (the estimate of the distance to the boundary; within the
            subspace when one was given). Meaningful where ``success`` holds.
        success: bool ``(B,)``, the adversarial's class differs from ``label`` (equals ``target``
            for a targeted attack).
        label: ``(B,)`` the class the attack moves away from (the prediction on ``x`` by default).
        adversarial_label: ``(B,)`` the prediction on ``adversarial``.
        boundary_label: ``(B,)`` the class whose linearised boundary the last step aimed at.
        iterations: ``(B,)`` the number of linearisation steps taken.
    """

    adversarial: torch.Tensor
    perturbation: torch.Tensor
    boundary: torch.Tensor
    distance: torch.Tensor
    success: torch.Tensor
    label: torch.Tensor
    adversarial_label: torch.Tensor
    boundary_label: torch.Tensor
    iterations: torch.Tensor


def deepfool(
    model: Any,
    images: torch.Tensor,
    *,
    labels: torch.Tensor | None = None,
    target: torch.Tensor | None = None,
    candidates: int = 10,
    overshoot: float = 0.02,
    max_iter: int = 50,
    bounds: tuple[float, float] | None = (0.0, 1.0),
    subspace: Subspace | torch.Tensor | None = None,
) -> DeepFoolResult:
    r"""DeepFool: the smallest l2 step to the linearised decision boundary, repeated until it flips.

    At the point :math:`x_i = x + (1 + \eta) r_i` (clipped to ``bounds``), with :math:`k` the
    original class and :math:`l` running over the candidate classes,

    .. math::
        f'_l = f_l(x_i) - f_k(x_i), \quad w'_l = P_S \nabla (f_l - f_k)(x_i), \quad
        \hat l = \arg\min_l \frac{|f'_l|}{\|w'_l\|_2}, \quad
        r_{i+1} = r_i + \frac{|f'_{\hat l}|}{\|w'_{\hat l}\|_2^2} w'_{\hat l},

    until the class at :math:`x_i` changes (each image stops on its own). :math:`P_S` is the
    orthogonal projection onto ``subspace`` (the identity without one), so the perturbation stays in
    the subspace. On an affine classifier :math:`f(x) = W x + b` without box, one step lands exactly
    on the nearest pairwise boundary: :math:`\|r\| = \min_l |f_l - f_k| / \|P_S (w_l - w_k)\|`.

    All images are processed together: one forward and ``candidates`` backward passes per step over
    the images not yet fooled. The model is put in eval mode and its modes are restored; ``images``
    is not modified.

    Args:
        model: callable (an ``nn.Module``) mapping ``(B, C, H, W)`` images to logits ``(B, K)``.
        images: float ``(B, C, H, W)`` or ``(C, H, W)``, in ``bounds``.
        labels: optional ``(B,)`` classes to move away from (default: the model's predictions).
            An image whose prediction already differs counts as fooled with zero perturbation.
        target: optional ``(B,)`` target classes (targeted attack: stop when the prediction is the
            target; each step aims at the boundary between the current class and the target).
        candidates: untargeted: the original class plus the top ``candidates - 1`` other classes by
            logit on ``images`` are the classes considered (``>= 2``; capped at ``K``). Default 10.
        overshoot: :math:`\eta \ge 0`, the factor that pushes the point across the boundary. 0.02.
        max_iter: maximum number of steps (``>= 1``). Default 50.
        bounds: valid input range ``(low, high)`` the iterates are clipped to (default ``(0, 1)``),
            or ``None`` for no box (geometric margins).
        subspace: ``None``, a :class:`~prime_augment.analysis.subspace.Subspace` (e.g. a
            :class:`~prime_augment.analysis.dct.DCTSubspace`) or a dense ``(C*H*W, S)`` orthonormal
            basis tensor.

    Shape:
        ``images``: ``(B, C, H, W)`` or ``(C, H, W)``; tensors of the result ``(B, ...)`` like the
        input (``(C, H, W)`` inputs give ``(C, H, W)`` images and 0-d per-image values).

    Returns:
        a :class:`DeepFoolResult`.

    Example:
        >>> import torch
        >>> from prime_augment.analysis import deepfool
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
        >>> _ = torch.manual_seed(0)
        >>> x = torch.rand(4, 3, 2, 2)
        >>> res = deepfool(model, x, bounds=None)
        >>> bool(res.success.all()), res.iterations.tolist()
        (True, [1, 1, 1, 1])
    """
    model = _utils.check_model(model)
    x, single = _utils.check_images(images)
    candidates = check_int(candidates, "candidates", low=2)
    overshoot = check_float(overshoot, "overshoot", low=0.0)
    max_iter = check_int(max_iter, "max_iter", low=1)
    box = _utils.check_bounds(bounds)
    _utils.check_in_bounds(x, box)
    labels = _utils.check_labels(labels, x.shape[0], "labels", x.device)
    target = _utils.check_labels(target, x.shape[0], "target", x.device)
    proj = _projection(subspace, tuple(x.shape[1:]))
    with _utils.eval_mode(model):
        res = _deepfool(model, x.detach(), labels, target, candidates, overshoot, max_iter, box, proj)
    return _utils.first_image(res) if single else res


def _projection(
    subspace: Subspace | torch.Tensor | None, shape: tuple[int, ...]
) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """:math:`P_S` of ``subspace`` checked against images of ``shape`` ``(C, H, W)``; ``None`` for none."""
    if subspace is None:
        return None
    sub = as_subspace(subspace)
    sub.check_shape(shape)
    return sub.project


def _input_grads(
    out: torch.Tensor, xg: torch.Tensor, classes: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits ``out[:, classes]`` ``(A, k)`` and their gradients w.r.t. ``xg`` ``(A, k, ...)``.

    One backward pass per candidate column over the whole batch (a loop over classes, not images).
    """
    f = out.gather(1, classes)
    k = classes.shape[1]
    grads = [torch.autograd.grad(f[:, j].sum(), xg, retain_graph=j < k - 1)[0] for j in range(k)]
    return f.detach(), torch.stack(grads, 1)


def _candidates(out0: torch.Tensor, labels: torch.Tensor, candidates: int) -> torch.Tensor:
    """The classes an untargeted step considers ``(B, k)``: the label first, then the ``k - 1`` other
    classes with the largest logits ``out0``, ``k = min(candidates, K)``."""
    k = min(candidates, out0.shape[1])
    others = out0.scatter(1, labels[:, None], float("-inf")).topk(k - 1, dim=1).indices
    return torch.cat([labels[:, None], others], 1)


def _closest_boundary_step(
    f: torch.Tensor, g: torch.Tensor, proj: Callable[[torch.Tensor], torch.Tensor] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The step to the nearest linearised boundary, from the logits ``f`` ``(A, k)`` of the classes
    (the current class first) and their gradients ``g`` ``(A, k, ...)``.

    Returns ``(step (A, ...), best (A,))``: :math:`\frac{|f'_{\hat l}|}{\|w'_{\hat l}\|^2} w'_{\hat l}`
    (zero where every projected gradient difference vanishes) and :math:`\hat l - 1`, the index of the
    aimed class among the other ``k - 1``.
    """
    tiny = torch.finfo(g.dtype).tiny
    fd = f[:, 1:] - f[:, :1]  # (A, k-1)
    w = g[:, 1:] - g[:, :1]  # (A, k-1, C, H, W)
    if proj is not None:
        w = proj(w.reshape(-1, *w.shape[2:])).reshape(w.shape)
    wn = w.flatten(2).norm(dim=2)
    pert = torch.where(wn > 0, fd.abs() / wn.clamp_min(tiny), torch.full_like(fd, float("inf")))
    best = pert.argmin(1)
    rows = torch.arange(len(best), device=best.device)
    coef = fd.abs()[rows, best] / wn[rows, best].square().clamp_min(tiny)
    coef = torch.where(torch.isfinite(pert[rows, best]), coef, torch.zeros_like(coef))
    return _utils.bcast(coef, w[:, 0]) * w[rows, best], best


def _deepfool(model, x0, labels, target, candidates, overshoot, max_iter, box, proj) -> DeepFoolResult:
    """The batched loop (model already in eval mode, arguments checked)."""
    b = x0.shape[0]
    dev = x0.device
    with torch.no_grad():
        out0 = _utils.logits(model, x0)
    if labels is None:
        labels = out0.argmax(1)
    _utils.check_classes(labels, "labels", out0.shape[1])
    _utils.check_classes(target, "target", out0.shape[1])
    cand = _candidates(out0, labels, candidates) if target is None else None
    r = torch.zeros_like(x0)
    x = x0.clone()
    success = torch.zeros(b, dtype=torch.bool, device=dev)
    adv_label = labels.clone()
    aimed = labels.clone() if target is None else target.clone()
    iterations = torch.zeros(b, dtype=torch.long, device=dev)
    active = torch.arange(b, device=dev)
    for it in range(max_iter + 1):
        last = it == max_iter
        xg = x[active].requires_grad_(not last)
        with torch.set_grad_enabled(not last):
            out = _utils.logits(model, xg)
        pred = out.detach().argmax(1)
        fooled = pred != labels[active] if target is None else pred == target[active]
        adv_label[active] = pred
        success[active] = fooled
        keep = ~fooled
        if last or not bool(keep.any()):
            break
        classes = cand[active] if target is None else torch.stack([pred, target[active]], 1)
        with torch.enable_grad():
            f, g = _input_grads(out, xg, classes)
        classes, active = classes[keep], active[keep]
        step, best = _closest_boundary_step(f[keep], g[keep], proj)
        r[active] += step
        aimed[active] = classes[torch.arange(len(best), device=dev), best + 1]
        xn = x0[active] + (1 + overshoot) * r[active]
        x[active] = xn if box is None else xn.clamp(*box)
        iterations[active] += 1
    boundary = x0 + r if box is None else (x0 + r).clamp(*box)
    return DeepFoolResult(
        adversarial=x,
        perturbation=x - x0,
        boundary=boundary,
        distance=_utils.batch_norm(r),
        success=success,
        label=labels,
        adversarial_label=adv_label,
        boundary_label=aimed,
        iterations=iterations,
    )
