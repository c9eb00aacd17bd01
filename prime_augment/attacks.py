"""Projected gradient descent (PGD) on a batch: the attack of adversarial training and robust accuracy.

:func:`pgd` is a pure function of its arguments (it needs only torch): it never modifies the images,
the labels or the model's parameters, and it leaves the model in the mode it found it in. The
recipes build adversarial training (``prime-augment train --adversarial ...``) and the PGD accuracy of
``prime-augment evaluate --pgd-eps ...`` on it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import check_bool, check_choice, check_float, check_generator, check_int

__all__ = ["MODEL_MODES", "NORMS", "default_step_size", "pgd", "project"]

#: the threat models: l-infinity and l2 balls around the image
NORMS = ("linf", "l2")
#: how the model runs during the attack (see :func:`pgd`)
MODEL_MODES = ("eval", "train")


def default_step_size(eps: float, steps: int) -> float:
    """Madry et al.'s step size ``2.5 eps / steps`` (``eps`` for a single step).

    Example:
        >>> round(default_step_size(8 / 255, 10), 5)
        0.00784
    """
    return 2.5 * float(eps) / max(int(steps), 1)


def _norms(d: torch.Tensor) -> torch.Tensor:
    """Per-image l2 norms ``(B, 1, ..., 1)`` of a batch."""
    return d.flatten(1).norm(dim=1).view(-1, *([1] * (d.ndim - 1)))


def project(delta: torch.Tensor, x: torch.Tensor, norm: str, eps: float) -> torch.Tensor:
    r"""Project perturbations onto the ``eps`` ball of ``norm`` and keep ``x + delta`` in ``[0, 1]``.

    l-inf: :math:`\delta \mapsto \mathrm{clip}(\delta, -\epsilon, \epsilon)`; l2:
    :math:`\delta \mapsto \delta \min(1, \epsilon / \|\delta\|_2)` per image; then
    :math:`\delta \mapsto \mathrm{clip}(x + \delta, 0, 1) - x`, which moves every coordinate towards 0 and
    so stays inside the ball. Returns a new tensor.

    Args:
        delta: perturbations ``(B, ...)``.
        x: the images ``(B, ...)`` in ``[0, 1]``.
        norm: ``"linf"`` or ``"l2"``.
        eps: radius ``>= 0``.

    Example:
        >>> import torch
        >>> d = project(torch.full((1, 1, 2, 2), 0.5), torch.full((1, 1, 2, 2), 0.9), "l2", 0.2)
        >>> [round(v, 4) for v in d.flatten().tolist()]
        [0.1, 0.1, 0.1, 0.1]
    """
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        delta = delta * (eps / _norms(delta).clamp_min(1e-12)).clamp(max=1.0)
    return (x + delta).clamp(0.0, 1.0) - x


def _random_start(x: torch.Tensor, norm: str, eps: float, generator: torch.Generator | None) -> torch.Tensor:
    """A uniform draw in the ball: l-inf ``U(-eps, eps)`` per coordinate; l2 a uniform direction and the
    radius ``eps * u^(1/d)`` (uniform in volume)."""
    if norm == "linf":
        u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return (2 * u - 1) * eps
    d = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    u = torch.rand((x.shape[0],), generator=generator, device=x.device, dtype=x.dtype)
    r = eps * u.pow(1.0 / x[0].numel()).view(-1, *([1] * (x.ndim - 1)))
    return d / _norms(d).clamp_min(1e-12) * r


def _batchnorm_buffers(model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(buffer, saved copy) of every batch-norm running statistic, to undo the attack's updates."""
    out = []
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            for b in (m.running_mean, m.running_var, m.num_batches_tracked):
                if b is not None:
                    out.append((b, b.detach().clone()))
    return out


def pgd(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    norm: str = "linf",
    eps: float,
    step_size: float | None = None,
    steps: int = 10,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    model_mode: str = "eval",
) -> torch.Tensor:
    r"""Untargeted PGD (Madry et al. 2018): adversarial images in the ``eps`` ball around ``x``.

    From :math:`\delta_0` (uniform in the ball with ``random_start``, else 0), ``steps`` ascent steps on
    the cross-entropy :math:`L(x + \delta, y)`, each followed by the projection :func:`project`:

    .. math::
        \delta_{t+1} = P\big(\delta_t + \alpha\, \mathrm{sign}(\nabla_\delta L)\big) \ \ (\ell_\infty),
        \qquad
        \delta_{t+1} = P\big(\delta_t + \alpha\, \nabla_\delta L / \|\nabla_\delta L\|_2\big) \ \ (\ell_2),

    per image (the loss is summed over the batch, so an image's step does not depend on the others in
    ``"eval"`` mode). The result satisfies :math:`\|x_{adv} - x\| \le \epsilon` and
    :math:`x_{adv} \in [0, 1]`; the last iterate is returned.

    Inputs are images in ``[0, 1]`` (the model normalises inside). Mixed precision: the perturbation, the
    step and the projection stay in float32 (float64 for float64 images) and the logits are cast to
    float32 before the loss, so the attack may run inside ``torch.autocast``; gradients come only
    w.r.t. the perturbation (``.grad`` of the parameters is untouched).

    Args:
        model: the classifier, ``(B, C, H, W) -> (B, K)`` logits. An ``nn.Module`` is put in the mode of
            ``model_mode`` and every sub-module's mode is restored afterwards.
        x: floating images ``(B, C, H, W)`` in ``[0, 1]`` (not modified).
        y: integer labels ``(B,)``.
        norm: ``"linf"`` or ``"l2"``.
        eps: radius ``>= 0`` in pixel units of ``[0, 1]`` images (e.g. ``8 / 255`` l-inf, ``0.5`` l2).
        step_size: :math:`\alpha > 0`; default :func:`default_step_size` ``= 2.5 eps / steps``.
        steps: number of ascent steps ``>= 0`` (0 with ``random_start``: a random point of the ball).
        random_start: start from a uniform random point of the ball.
        generator: draws the random start (on ``x``'s device); ``None``: the global RNG.
        model_mode: ``"eval"`` (running batch-norm statistics, no dropout: the model as deployed; for
            evaluation) or ``"train"`` (train-mode layers: batch-norm normalises with the batch's
            statistics, as in the training step that follows; the running statistics are restored after
            the attack, so only that training step updates them).

    Returns:
        The adversarial images, a new tensor of ``x``'s shape, dtype and device, detached.

    Shape:
        ``x``: ``(B, C, H, W)``; ``y``: ``(B,)``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> g = torch.Generator().manual_seed(0)
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
        >>> x, y = torch.rand(4, 3, 2, 2, generator=g), torch.tensor([0, 1, 2, 0])
        >>> adv = pgd(model, x, y, norm="linf", eps=0.1, steps=5, generator=g)
        >>> bool((adv - x).abs().max() <= 0.1 + 1e-6), bool(adv.min() >= 0 and adv.max() <= 1)
        (True, True)
        >>> loss = nn.functional.cross_entropy
        >>> bool(loss(model(adv), y) > loss(model(x), y))
        True
    """
    norm, eps, step_size, steps, random_start, generator, model_mode = _check_arguments(
        x, y, norm, eps, step_size, steps, random_start, generator, model_mode
    )
    if eps == 0 or x.shape[0] == 0 or (steps == 0 and not random_start):
        return x.detach().clone()
    work = x.detach().to(torch.float64 if x.dtype == torch.float64 else torch.float32)
    with _attack_mode(model, model_mode):
        delta = _start(work, norm, eps, random_start, generator)
        for _ in range(steps):
            delta = _ascent_step(model, work, y, delta, norm, eps, step_size)
    return (work + delta).clamp_(0.0, 1.0).to(x.dtype)  # the clamp only absorbs rounding


def _check_arguments(
    x: Any,
    y: Any,
    norm: str,
    eps: float,
    step_size: float | None,
    steps: int,
    random_start: bool,
    generator: torch.Generator | None,
    model_mode: str,
) -> tuple[str, float, float, int, bool, torch.Generator | None, str]:
    """:func:`pgd`'s arguments checked in order (images, labels, options, the images' range).

    Returns ``(norm, eps, step_size, steps, random_start, generator, model_mode)``, with the default
    step size filled in.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim < 2:
        got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"x must be a floating-point tensor (B, C, H, W) of images in [0, 1], got {got}")
    if (
        not isinstance(y, torch.Tensor)
        or y.ndim != 1
        or y.shape[0] != x.shape[0]
        or y.is_floating_point()
        or y.dtype == torch.bool
    ):
        got = f"{y.dtype} {tuple(y.shape)}" if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"y must be an integer tensor of {x.shape[0]} labels, got {got}")
    norm = check_choice(norm, "norm", NORMS)
    eps = check_float(eps, "eps", low=0.0)
    steps = check_int(steps, "steps", low=0)
    step_size = default_step_size(eps, steps) if step_size is None else step_size
    step_size = check_float(step_size, "step_size", low=0.0)
    random_start = check_bool(random_start, "random_start")
    generator = check_generator(generator)
    model_mode = check_choice(model_mode, "model_mode", MODEL_MODES)
    if generator is not None and generator.device.type != x.device.type:
        raise ValueError(f"generator is on {generator.device}, the images on {x.device}")
    if x.numel():
        lo, hi = torch.aminmax(x.detach())
        if lo < 0 or hi > 1:
            raise ValueError(
                f"x must hold images in [0, 1], got values in [{float(lo):.4g}, {float(hi):.4g}]"
            )
    return norm, eps, step_size, steps, random_start, generator, model_mode


@contextlib.contextmanager
def _attack_mode(model: Callable[[torch.Tensor], torch.Tensor], model_mode: str) -> Iterator[None]:
    """Run an ``nn.Module`` in ``model_mode``; restore every sub-module's mode afterwards, and in
    ``"train"`` mode the batch-norm running statistics the attack's forward passes updated."""
    modules = list(model.modules()) if isinstance(model, nn.Module) else []
    modes = [(m, m.training) for m in modules]
    saved = _batchnorm_buffers(model) if (modules and model_mode == "train") else []
    for m in modules:
        m.train(model_mode == "train")
    try:
        yield
    finally:
        with torch.no_grad():
            for buf, copy in saved:
                buf.copy_(copy)
        for m, was in modes:
            m.train(was)


def _start(
    x: torch.Tensor, norm: str, eps: float, random_start: bool, generator: torch.Generator | None
) -> torch.Tensor:
    r""":math:`\delta_0`: a uniform point of the ball (projected into the box), or zero."""
    if not random_start:
        return torch.zeros_like(x)
    return project(_random_start(x, norm, eps, generator), x, norm, eps)


def _ascent_step(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    delta: torch.Tensor,
    norm: str,
    eps: float,
    step_size: float,
) -> torch.Tensor:
    r"""One PGD step: :math:`P(\delta + \alpha\, s)` with :math:`s` the sign of the gradient of the summed
    cross-entropy (l-inf) or the gradient over its per-image l2 norm (l2)."""
    with torch.enable_grad():
        delta = delta.detach().requires_grad_(True)
        loss = F.cross_entropy(model(x + delta).float(), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, delta)
    grad = grad.to(x.dtype)
    step = grad.sign() if norm == "linf" else grad / _norms(grad).clamp_min(1e-12)
    return project(delta.detach() + step_size * step, x, norm, eps)
