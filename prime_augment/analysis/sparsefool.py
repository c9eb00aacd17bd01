"""SparseFool: sparse adversarial perturbations from DeepFool's boundary normals (batched)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .._validation import check_float, check_int
from . import _utils
from .deepfool import _deepfool

__all__ = ["SparseFoolResult", "linear_solver", "sparsefool"]


def linear_solver(
    x: torch.Tensor,
    normal: torch.Tensor,
    point: torch.Tensor,
    lower: torch.Tensor | float,
    upper: torch.Tensor | float,
    *,
    margin: float = 0.0,
) -> torch.Tensor:
    r"""SparseFool's LinearSolver, vectorised: the box-constrained l1 step across a hyperplane.

    For each image, the hyperplane is :math:`\{z : w^\top (z - x_B) = 0\}` with ``w = normal`` and
    :math:`x_B` = ``point``. Starting at ``x`` with :math:`g_0 = w^\top (x - x_B)`, the sequential
    solver visits the coordinates in order of decreasing :math:`|w_d|` (ties: lower index first),
    skipping :math:`w_d = 0`, and moves coordinate :math:`d` towards the plane,

    .. math::
        z_d \leftarrow \mathrm{clip}_{[l_d, u_d]}\Big(z_d - \operatorname{sign}(g_0)
        \operatorname{sign}(w_d) \frac{|w^\top (z - x_B)| + \beta}{|w_d|}\Big),

    until :math:`w^\top (z - x_B)` changes sign (reaches or crosses the plane) or every coordinate
    was used. Each coordinate is visited once (the forbidden set; coordinates with no room left in
    the box contribute nothing). With :math:`c_d = |w_d| \cdot \mathrm{room}_d` in visiting order and
    :math:`C_j = \sum_{i<j} c_i`, coordinate :math:`j` moves iff :math:`C_j < |g_0|`, by
    :math:`\min(\mathrm{room}_j, (|g_0| + \beta - C_j) / |w_j|)`: one sort and one cumulative sum
    give the sequential solver's exact result for the whole batch. Unlike the published code (which
    always moves along :math:`+\operatorname{sign}(w)`), the step direction is the one that reduces
    :math:`|g|`, so the solver is correct from either side of the plane; a start exactly on the
    plane (:math:`g_0 = 0`) is returned unchanged.

    Args:
        x: ``(B, ...)`` start points, inside ``[lower, upper]``.
        normal: ``(B, ...)`` hyperplane normals :math:`w` (any scale).
        point: ``(B, ...)`` points :math:`x_B` on the hyperplanes.
        lower, upper: the box, floats or tensors broadcastable to ``x``.
        margin: :math:`\beta \ge 0`, how far (in units of :math:`w^\top z`) past the plane the last
            moved coordinate goes. Default 0 (onto the plane).

    Shape:
        all tensors ``(B, ...)``; returns ``(B, ...)``, a new tensor.

    Example:
        >>> import torch
        >>> from prime_augment.analysis import linear_solver
        >>> x = torch.zeros(1, 3)
        >>> w = torch.tensor([[1.0, 3.0, 2.0]])
        >>> xb = torch.full((1, 3), 0.5)            # the plane w.z = 3
        >>> linear_solver(x, w, xb, 0.0, 1.0)       # coordinate 1 alone reaches it
        tensor([[0., 1., 0.]])
        >>> linear_solver(x, w, torch.full((1, 3), 0.75), 0.0, 1.0)   # w.z = 4.5: coordinates 1 then 2
        tensor([[0.0000, 1.0000, 0.7500]])
    """
    _check_plane(x, normal, point)
    margin = check_float(margin, "margin", low=0.0)
    b = x.shape[0]
    xf = x.reshape(b, -1)
    w = normal.reshape(b, -1).to(xf.dtype)
    lo = torch.as_tensor(lower, dtype=xf.dtype, device=x.device).expand_as(x).reshape(b, -1)
    hi = torch.as_tensor(upper, dtype=xf.dtype, device=x.device).expand_as(x).reshape(b, -1)
    g0 = (w * (xf - point.reshape(b, -1).to(xf.dtype))).sum(1)
    side = torch.where(g0 > 0, 1.0, -1.0).to(xf.dtype)
    direction = -side[:, None] * torch.sign(w)
    room = torch.where(direction > 0, hi - xf, xf - lo).clamp_min(0)
    out = xf + direction * _greedy_amounts(g0.abs(), w.abs(), room, margin)
    return torch.minimum(torch.maximum(out, lo), hi).reshape(x.shape)


def _check_plane(x: Any, normal: Any, point: Any) -> None:
    """Three tensors of one shape ``(B, ...)`` (:func:`linear_solver`'s ``x``, ``normal``, ``point``)."""
    if not all(isinstance(t, torch.Tensor) for t in (x, normal, point)):
        raise TypeError("x, normal and point must be torch.Tensors")
    if normal.shape != x.shape or point.shape != x.shape:
        raise ValueError(
            f"x, normal and point must have the same shape, got {tuple(x.shape)}, {tuple(normal.shape)}, "
            f"{tuple(point.shape)}"
        )
    if x.ndim < 1:
        raise ValueError(f"x must have shape (B, ...), got {tuple(x.shape)}")


def _greedy_amounts(need: torch.Tensor, aw: torch.Tensor, room: torch.Tensor, margin: float) -> torch.Tensor:
    r"""How far the sequential solver moves each coordinate, for the whole batch at once.

    Coordinates are visited by decreasing :math:`|w_d|` (``aw``, ``(B, D)``; ties: lower index first;
    zeros skipped). With :math:`c_j = |w_j| \mathrm{room}_j` in that order and :math:`C_j = \sum_{i<j}
    c_i`, coordinate :math:`j` moves iff :math:`C_j <` ``need`` :math:`= |g_0|` ``(B,)``, by
    :math:`\min(\mathrm{room}_j, (|g_0| + \beta - C_j) / |w_j|)`. Returns ``(B, D)`` amounts
    :math:`\ge 0` in the original coordinate order.
    """
    aw_s, order = torch.sort(aw, dim=1, descending=True, stable=True)
    room_s = room.gather(1, order)
    cap = aw_s * room_s
    before = torch.cumsum(cap, 1) - cap
    moved = (before < need[:, None]) & (aw_s > 0)
    step = (need[:, None] + margin - before) / torch.where(aw_s > 0, aw_s, torch.ones_like(aw_s))
    amount_s = torch.where(moved, torch.minimum(room_s, step), torch.zeros_like(step))
    return torch.zeros_like(amount_s).scatter(1, order, amount_s)


@dataclass(frozen=True)
class SparseFoolResult:
    """What :func:`sparsefool` found, one row per image.

    Attributes:
        adversarial: the perturbed images (same shape as the input), inside the box.
        perturbation: ``adversarial - images``.
        success: bool ``(B,)``: the prediction on ``adversarial`` differs from ``label`` (is the
            target for a targeted attack).
        label: ``(B,)`` the attacked class (the prediction on the input by default).
        adversarial_label: ``(B,)`` the prediction on ``adversarial``.
        iterations: ``(B,)`` outer iterations used.
    """

    adversarial: torch.Tensor
    perturbation: torch.Tensor
    success: torch.Tensor
    label: torch.Tensor
    adversarial_label: torch.Tensor
    iterations: torch.Tensor


def sparsefool(
    model: Any,
    images: torch.Tensor,
    *,
    labels: torch.Tensor | None = None,
    target: torch.Tensor | None = None,
    lam: float = 3.0,
    max_iter: int = 20,
    overshoot: float = 0.02,
    delta: float | None = None,
    bounds: tuple[float, float] = (0.0, 1.0),
    candidates: int = 10,
    deepfool_max_iter: int = 50,
    deepfool_overshoot: float = 0.02,
    solver_margin: float = 1e-3,
) -> SparseFoolResult:
    r"""SparseFool (Modas et al., CVPR 2019): few-pixel adversarial perturbations, batched.

    With :math:`x^{(0)} = x` and the box :math:`Q = [l, u] \cap [x - \delta, x + \delta]`, each outer
    iteration :math:`i` runs DeepFool (l2, no box) from :math:`x^{(i)}` to get the boundary point
    :math:`x_B` and the adversarial class :math:`a`, takes the boundary normal and overshot point

    .. math::
        w = \frac{\nabla f_a(x_B) - \nabla f_k(x_B)}{\|\nabla f_a(x_B) - \nabla f_k(x_B)\|_2},
        \qquad x_B^\lambda = x^{(i)} + \lambda (x_B - x^{(i)}),

    and moves to :math:`x^{(i+1)} = \mathrm{LinearSolver}(x^{(i)}, w, x_B^\lambda, Q)` (see
    :func:`linear_solver`: the box-constrained, coordinate-by-coordinate l1 step across
    :math:`w^\top (z - x_B^\lambda) = 0`). The candidate adversarial
    :math:`\tilde x = \mathrm{clip}_Q(x + (1 + \epsilon)(x^{(i+1)} - x))` is kept as soon as its
    class is not :math:`k` (is the target). Every image stops on its own; the batch is processed
    together with no per-image Python loop. The model is put in eval mode and its modes are
    restored; ``images`` is not modified.

    Args:
        model: callable (an ``nn.Module``) mapping ``(B, C, H, W)`` images to logits ``(B, K)``.
        images: float ``(B, C, H, W)`` or ``(C, H, W)`` inside ``bounds``.
        labels: optional ``(B,)`` classes to move away from (default: the model's predictions).
        target: optional ``(B,)`` target classes (targeted SparseFool: DeepFool aims at the boundary
            of the target class, ``a`` is the target).
        lam: :math:`\lambda \ge 1`, the overshoot of the boundary point (3 for natural images, 1 on
            MNIST in the paper). Default 3.
        max_iter: maximum outer iterations (``>= 1``). Default 20 (the published code).
        overshoot: :math:`\epsilon \ge 0` of the final scaling. Default 0.02.
        delta: optional :math:`\delta > 0`, the perceptibility box :math:`|\tilde x - x| \le \delta`
            per coordinate (default: only ``bounds``).
        bounds: the valid input range :math:`[l, u]`. Default ``(0, 1)``.
        candidates: classes considered by the inner DeepFool (``>= 2``). Default 10.
        deepfool_max_iter, deepfool_overshoot: of the inner DeepFool. Defaults 50 and 0.02.
        solver_margin: :math:`\beta` of :func:`linear_solver` (with the unit normal: a distance
            past the plane). Default 1e-3 (the published code).

    Shape:
        ``images``: ``(B, C, H, W)`` or ``(C, H, W)``; result tensors follow the input.

    Returns:
        a :class:`SparseFoolResult`.

    Example:
        >>> import torch
        >>> from prime_augment.analysis import sparsefool
        >>> _ = torch.manual_seed(0)
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 4))
        >>> x = torch.rand(8, 3, 4, 4)
        >>> res = sparsefool(model, x)
        >>> bool(res.success.all()), bool((res.adversarial >= 0).all() and (res.adversarial <= 1).all())
        (True, True)
        >>> bool((res.perturbation != 0).flatten(1).float().mean(1).median() < 0.5)   # sparse
        True
    """
    model = _utils.check_model(model)
    x0, single = _utils.check_images(images)
    settings = _check_settings(x0, lam, max_iter, overshoot, delta, bounds, candidates,
                               deepfool_max_iter, deepfool_overshoot, solver_margin)  # fmt: skip
    labels = _utils.check_labels(labels, x0.shape[0], "labels", x0.device)
    target = _utils.check_labels(target, x0.shape[0], "target", x0.device)
    with _utils.eval_mode(model):
        res = _sparsefool(model, x0.detach(), labels, target, settings)
    return _utils.first_image(res) if single else res


@dataclass(frozen=True)
class _Settings:
    """The checked hyper-parameters of :func:`sparsefool` (``box``: its ``bounds``)."""

    lam: float
    max_iter: int
    overshoot: float
    delta: float | None
    box: tuple[float, float]
    candidates: int
    deepfool_max_iter: int
    deepfool_overshoot: float
    solver_margin: float


def _check_settings(
    x0, lam, max_iter, overshoot, delta, bounds, candidates, deepfool_max_iter, deepfool_overshoot,
    solver_margin,
) -> _Settings:  # fmt: skip
    """:func:`sparsefool`'s hyper-parameters checked in order (``x0`` must lie in ``bounds``)."""
    lam = check_float(lam, "lam", low=1.0)
    max_iter = check_int(max_iter, "max_iter", low=1)
    overshoot = check_float(overshoot, "overshoot", low=0.0)
    if delta is not None:
        delta = check_float(delta, "delta", low=0.0, low_open=True)
    box = _utils.check_bounds(bounds)
    if box is None:
        raise TypeError("bounds must be a pair (low, high) for SparseFool (the box is part of the method)")
    _utils.check_in_bounds(x0, box)
    return _Settings(
        lam=lam,
        max_iter=max_iter,
        overshoot=overshoot,
        delta=delta,
        box=box,
        candidates=check_int(candidates, "candidates", low=2),
        deepfool_max_iter=check_int(deepfool_max_iter, "deepfool_max_iter", low=1),
        deepfool_overshoot=check_float(deepfool_overshoot, "deepfool_overshoot", low=0.0),
        solver_margin=check_float(solver_margin, "solver_margin", low=0.0),
    )


def _normals(model, xb: torch.Tensor, adv: torch.Tensor, orig: torch.Tensor | None) -> torch.Tensor:
    r"""Unit normals :math:`\nabla (f_{adv} - f_{orig})(x_B)` per image (zero where the gradient is).

    ``orig=None``: the strongest class other than ``adv`` at :math:`x_B` (targeted attacks).
    """
    xg = xb.detach().requires_grad_(True)
    with torch.enable_grad():
        out = _utils.logits(model, xg)
        if orig is None:
            orig = out.detach().scatter(1, adv[:, None], float("-inf")).argmax(1)
        diff = out.gather(1, adv[:, None]) - out.gather(1, orig[:, None])
        (w,) = torch.autograd.grad(diff.sum(), xg)
    n = _utils.batch_norm(w)
    return w / _utils.bcast(torch.where(n > 0, n, torch.ones_like(n)), w)


def _box(
    x0: torch.Tensor, box: tuple[float, float], delta: float | None
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The bounds ``(lo, hi)`` of :math:`Q = [l, u] \cap [x - \delta, x + \delta]`, each like ``x0``."""
    lo = torch.full_like(x0, box[0])
    hi = torch.full_like(x0, box[1])
    if delta is not None:
        lo = torch.maximum(lo, x0 - delta)
        hi = torch.minimum(hi, x0 + delta)
    return lo, hi


def _linear_step(model, x, labels, target, lo, hi, s: _Settings) -> torch.Tensor:
    r"""One outer iteration: DeepFool from ``x`` to the boundary :math:`x_B`, then the l1 step
    :math:`\mathrm{LinearSolver}(x, w, x + \lambda (x_B - x), [lo, hi])` across it."""
    df = _deepfool(
        model, x, labels, target, s.candidates, s.deepfool_overshoot, s.deepfool_max_iter, None, None
    )
    # the class across the boundary: the one reached, else the one the last step aimed at
    adv = torch.where(df.success, df.adversarial_label, df.boundary_label) if target is None else target
    w = _normals(model, df.boundary, adv, labels if target is None else None)
    point = x + s.lam * (df.boundary - x)
    return linear_solver(x, w, point, lo, hi, margin=s.solver_margin)


def _sparsefool(model, x0, labels, target, s: _Settings) -> SparseFoolResult:
    """The batched loop (model already in eval mode, arguments checked)."""
    with torch.no_grad():
        out0 = _utils.logits(model, x0)
    if labels is None:
        labels = out0.argmax(1)
    _utils.check_classes(labels, "labels", out0.shape[1])
    _utils.check_classes(target, "target", out0.shape[1])
    lo, hi = _box(x0, s.box, s.delta)
    pred0 = out0.argmax(1)
    success = pred0 != labels if target is None else pred0 == target
    adv_label = pred0.clone()
    fool = x0.clone()
    xi = x0.clone()
    iterations = torch.zeros(x0.shape[0], dtype=torch.long, device=x0.device)
    active = (~success).nonzero().flatten()
    for _ in range(s.max_iter):
        if active.numel() == 0:
            break
        la, ta = labels[active], None if target is None else target[active]
        xn = _linear_step(model, xi[active], la, ta, lo[active], hi[active], s)
        xi[active] = xn
        x0a = x0[active]
        cand = torch.minimum(torch.maximum(x0a + (1 + s.overshoot) * (xn - x0a), lo[active]), hi[active])
        with torch.no_grad():
            pred = _utils.logits(model, cand).argmax(1)
        fooled = pred != la if target is None else pred == ta
        fool[active] = cand
        adv_label[active] = pred
        success[active] = fooled
        iterations[active] += 1
        active = active[~fooled]
    return SparseFoolResult(
        adversarial=fool,
        perturbation=fool - x0,
        success=success,
        label=labels,
        adversarial_label=adv_label,
        iterations=iterations,
    )
