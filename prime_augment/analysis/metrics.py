"""Perturbation metrics of adversarial attacks: fooling rate, l0 / l1 / l2 / linf, perturbed pixels."""

from __future__ import annotations

from typing import Any

import torch

from .._validation import check_float

__all__ = ["perturbation_norms", "summarize_attack"]


def perturbation_norms(perturbation: torch.Tensor, *, tol: float = 0.0) -> dict[str, torch.Tensor]:
    r"""Per-image sizes of perturbations :math:`r` ``(B, C, H, W)``.

    .. math::
        \ell_0 = \#\{d : |r_d| > \tau\}, \quad
        \text{pixels} = \frac{100}{H W} \#\{(i, j) : \max_c |r_{c i j}| > \tau\}, \quad
        \ell_p = \|r\|_p \ (p = 1, 2, \infty).

    A pixel counts as perturbed when any of its channels changed (the measure of the SparseFool
    paper's "% of perturbed pixels").

    Args:
        perturbation: float ``(B, C, H, W)`` (or ``(C, H, W)``).
        tol: :math:`\tau \ge 0`, changes at most this large count as unchanged. Default 0.

    Shape:
        each value ``(B,)``.

    Example:
        >>> import torch
        >>> from prime_augment.analysis import perturbation_norms
        >>> r = torch.zeros(1, 3, 2, 2); r[0, :, 0, 0] = 0.5; r[0, 1, 1, 1] = -0.25
        >>> {k: v.tolist() for k, v in perturbation_norms(r).items()}
        {'l0': [4.0], 'pixels_pct': [50.0], 'l1': [1.75], 'l2': [0.9013878107070923], 'linf': [0.5]}
    """
    if not isinstance(perturbation, torch.Tensor) or not perturbation.is_floating_point():
        raise TypeError(f"perturbation must be a floating-point torch.Tensor, got {perturbation!r:.60}")
    if perturbation.ndim == 3:
        perturbation = perturbation.unsqueeze(0)
    if perturbation.ndim != 4:
        raise ValueError(f"perturbation must have shape (B, C, H, W), got {tuple(perturbation.shape)}")
    tol = check_float(tol, "tol", low=0.0)
    a = perturbation.abs()
    changed = a > tol
    flat = perturbation.flatten(1)
    return {
        "l0": changed.flatten(1).sum(1).to(perturbation.dtype),
        "pixels_pct": 100.0 * changed.any(1).flatten(1).to(perturbation.dtype).mean(1),
        "l1": flat.abs().sum(1),
        "l2": flat.norm(dim=1),
        "linf": a.flatten(1).amax(1) if flat.shape[1] else torch.zeros(flat.shape[0]),
    }


def summarize_attack(
    perturbation: torch.Tensor,
    success: torch.Tensor,
    *,
    seconds: float | None = None,
    tol: float = 0.0,
) -> dict[str, Any]:
    """Fooling rate and the medians / means of the perturbation sizes of the fooled images.

    Args:
        perturbation: ``(B, C, H, W)`` adversarial minus clean.
        success: bool ``(B,)``.
        seconds: optional wall time of the attack on these ``B`` images (gives ``seconds_per_image``).
        tol: see :func:`perturbation_norms`.

    Returns:
        a JSON-ready dict: ``images``, ``fooling_rate`` (%), ``median_pixels_pct``,
        ``mean_pixels_pct``, ``median_l0``, ``median_l1``, ``median_l2``, ``median_linf`` (over the
        fooled images; ``None`` when none is) and ``seconds_per_image``.

    Example:
        >>> import torch
        >>> from prime_augment.analysis import summarize_attack
        >>> r = torch.zeros(2, 1, 2, 2); r[0, 0, 0, 0] = 0.1
        >>> s = summarize_attack(r, torch.tensor([True, False]), seconds=1.0)
        >>> s["fooling_rate"], s["median_pixels_pct"], s["seconds_per_image"]
        (50.0, 25.0, 0.5)
    """
    if not isinstance(success, torch.Tensor) or success.dtype != torch.bool:
        raise TypeError(f"success must be a bool torch.Tensor, got {success!r:.60}")
    norms = perturbation_norms(perturbation, tol=tol)
    n = int(success.numel())
    if success.shape != (n,) or norms["l0"].shape != (n,):
        raise ValueError(
            f"success must have one entry per image: {n} entries for {norms['l0'].shape[0]} perturbations"
        )
    ok = success.to(perturbation.device)
    out: dict[str, Any] = {
        "images": n,
        "fooling_rate": 100.0 * float(ok.float().mean()) if n else None,
        "seconds_per_image": (float(seconds) / n if n and seconds is not None else None),
    }
    for key in ("pixels_pct", "l0", "l1", "l2", "linf"):
        vals = norms[key][ok].double().cpu()
        out[f"median_{key}"] = float(vals.quantile(0.5)) if len(vals) else None
    vals = norms["pixels_pct"][ok].double()
    out["mean_pixels_pct"] = float(vals.mean()) if len(vals) else None
    return out
