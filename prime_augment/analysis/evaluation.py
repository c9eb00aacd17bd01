"""Evaluations of sparse attacks: the perceptibility sweep and transferability between models."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from .._validation import check_float, check_int
from . import _utils
from .metrics import summarize_attack
from .sparsefool import sparsefool

__all__ = ["delta_sweep", "predict", "transferability"]

Attack = Callable[[Any, torch.Tensor, torch.Tensor], torch.Tensor]


def _bar(it: Any, progress: bool, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(it, desc=desc, disable=not progress, leave=False)


def predict(model: Any, images: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """The model's classes of ``images`` ``(B, C, H, W)``, in eval mode, without gradients, in batches.

    Example:
        >>> import torch
        >>> from prime_augment.analysis import predict
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
        >>> predict(model, torch.rand(5, 3, 2, 2), batch_size=2).shape
        torch.Size([5])
    """
    model = _utils.check_model(model)
    x, _ = _utils.check_images(images)
    batch_size = check_int(batch_size, "batch_size", low=1)
    with _utils.eval_mode(model), torch.no_grad():
        outs = [_utils.logits(model, x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)]
    return torch.cat(outs) if outs else torch.zeros(0, dtype=torch.long, device=x.device)


def _sync(x: torch.Tensor) -> None:
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)


def delta_sweep(
    model: Any,
    images: torch.Tensor,
    deltas: Sequence[float | None],
    *,
    labels: torch.Tensor | None = None,
    batch_size: int = 64,
    progress: bool = False,
    **sparsefool_kwargs: Any,
) -> list[dict[str, Any]]:
    r"""SparseFool under the perceptibility box :math:`|\tilde x - x| \le \delta` for several ``delta``.

    The experiment of Fig. 3.6 of the method (SparseFool, Modas et al., CVPR 2019): a tighter
    :math:`\delta` makes each perturbed value smaller, so the attack needs more pixels (less
    sparse) and fools fewer images. Each :math:`\delta` is a full run of
    :func:`~prime_augment.analysis.sparsefool` on the same images, timed.

    Args:
        model: callable mapping ``(B, C, H, W)`` images in ``[0, 1]`` to logits.
        images: float ``(B, C, H, W)`` in the attack's ``bounds``.
        deltas: the bounds (``> 0``; ``None``: only the box ``bounds``).
        labels: optional ``(B,)`` classes (default: the predictions).
        batch_size: images per attack call (``>= 1``).
        progress: a progress bar over the batches.
        **sparsefool_kwargs: forwarded to :func:`~prime_augment.analysis.sparsefool` (``lam``,
            ``max_iter``, ``bounds`` ...; not ``delta``).

    Returns:
        one :func:`~prime_augment.analysis.summarize_attack` dict per ``delta``, in order, with the
        key ``delta`` added.

    Example:
        >>> import torch
        >>> from prime_augment.analysis import delta_sweep
        >>> _ = torch.manual_seed(0)
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 3))
        >>> rows = delta_sweep(model, torch.rand(6, 3, 4, 4), [0.05, None])
        >>> [r["delta"] for r in rows], [r["images"] for r in rows]
        ([0.05, None], [6, 6])
    """
    if "delta" in sparsefool_kwargs:
        raise TypeError("delta_sweep takes the bounds as deltas=[...], not delta=")
    x, _ = _utils.check_images(images)
    batch_size = check_int(batch_size, "batch_size", low=1)
    if isinstance(deltas, (str, bytes)) or not isinstance(deltas, Sequence) or len(deltas) == 0:
        raise TypeError(f"deltas must be a non-empty sequence of numbers (or None), got {deltas!r}")
    deltas = [None if d is None else check_float(d, "deltas", low=0.0, low_open=True) for d in deltas]
    y = _utils.check_labels(labels, x.shape[0], "labels", x.device)
    rows = []
    for d in deltas:
        adv, ok = [], []
        _sync(x)
        t0 = time.perf_counter()
        for i in _bar(range(0, len(x), batch_size), progress, f"sparsefool delta={d}"):
            res = sparsefool(
                model, x[i : i + batch_size], labels=None if y is None else y[i : i + batch_size], delta=d,
                **sparsefool_kwargs,
            )  # fmt: skip
            adv.append(res.adversarial)
            ok.append(res.success)
        _sync(x)
        seconds = time.perf_counter() - t0
        adv_t = torch.cat(adv)
        summary = summarize_attack((adv_t - x).cpu(), torch.cat(ok).cpu(), seconds=seconds)
        summary["delta"] = d
        rows.append(summary)
    return rows


def _sparsefool_attack(model: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return sparsefool(model, x, labels=y).adversarial


def transferability(
    models: Mapping[str, Any],
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    attack: Attack | None = None,
    batch_size: int = 64,
    progress: bool = False,
) -> dict[str, Any]:
    r"""How often adversarial images crafted on one model fool another (Tab. 3.3 of the method).

    Only the images that every model classifies correctly are attacked. For each source model
    :math:`A` the adversarials :math:`\tilde x_A` are computed on :math:`A`; for each target
    :math:`B`, the transfer fooling rate is the share of the images fooled on :math:`A` whose
    :math:`\tilde x_A` is also misclassified by :math:`B` (the diagonal is 100 % by construction).

    Args:
        models: name -> model (callables mapping ``[0, 1]`` images to logits), at least two.
        images: float ``(B, C, H, W)`` in ``[0, 1]``.
        labels: ``(B,)`` true classes.
        attack: ``(model, images, labels) -> adversarial images``; default SparseFool with its
            defaults (:func:`~prime_augment.analysis.sparsefool`).
        batch_size: images per attack call.
        progress: progress bars.

    Returns:
        a JSON-ready dict: ``models`` (names), ``indices`` (of the images kept), ``images`` (their
        number), ``source_fooling_rate`` (name -> % fooled on the source), ``median_pixels_pct``
        (name -> of the fooled images), and ``fooling_rate`` / ``fooling_rate_all``: ``[source][target]``
        matrices (%) over the images fooled on the source / over all kept images.

    Example:
        >>> import torch
        >>> from prime_augment.analysis import transferability
        >>> _ = torch.manual_seed(0)
        >>> a = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 3))
        >>> x = torch.rand(8, 3, 4, 4)
        >>> y = a(x).argmax(1)
        >>> r = transferability({"a": a, "a again": a}, x, y)
        >>> r["images"], r["fooling_rate"][0]            # a model transfers perfectly to itself
        (8, [100.0, 100.0])
    """
    if not isinstance(models, Mapping) or len(models) < 2:
        raise ValueError(f"models must map at least two names to models, got {type(models).__name__}")
    for name, m in models.items():
        _utils.check_model(m, f"models[{name!r}]")
    x, _ = _utils.check_images(images)
    y = _utils.check_labels(labels, x.shape[0], "labels", x.device)
    if y is None:
        raise TypeError("labels must be given (the true classes)")
    batch_size = check_int(batch_size, "batch_size", low=1)
    keep = _correct_on_all(models, x, y, batch_size)
    names = list(models)
    rows = [
        _transfer_from(models, src, x[keep], y[keep], attack or _sparsefool_attack, batch_size, progress)
        for src in names
    ]
    return {
        "models": names,
        "indices": keep.tolist(),
        "images": len(keep),
        "source_fooling_rate": {src: row["source"] for src, row in zip(names, rows, strict=True)},
        "median_pixels_pct": {src: row["pixels"] for src, row in zip(names, rows, strict=True)},
        "fooling_rate": [row["fooled"] for row in rows],
        "fooling_rate_all": [row["fooled_all"] for row in rows],
    }


def _correct_on_all(
    models: Mapping[str, Any], x: torch.Tensor, y: torch.Tensor, batch_size: int
) -> torch.Tensor:
    """The indices ``(N,)`` of the images that every model classifies as ``y``."""
    correct = torch.ones(len(x), dtype=torch.bool, device=x.device)
    for m in models.values():
        correct &= predict(m, x, batch_size=batch_size) == y
    return correct.nonzero().flatten()


def _transfer_from(
    models: Mapping[str, Any],
    src: str,
    x: torch.Tensor,
    y: torch.Tensor,
    attack: Attack,
    batch_size: int,
    progress: bool,
) -> dict[str, Any]:
    """Adversarials of ``x`` crafted on ``models[src]`` and how often they fool each model (in %).

    Returns ``source`` (% fooled on the source; ``None`` without images), ``pixels`` (the median share
    of changed pixels of the fooled ones), ``fooled`` (per target, % of the images fooled on the source;
    ``None`` where none was) and ``fooled_all`` (per target, % of all images).
    """
    n = len(x)
    adv = torch.cat(
        [attack(models[src], x[i : i + batch_size], y[i : i + batch_size]).detach()
         for i in _bar(range(0, n, batch_size), progress, f"attack on {src}")]
    ) if n else x.clone()  # fmt: skip
    fooled = {t: predict(models[t], adv, batch_size=batch_size) != y for t in models}
    ok = fooled[src]
    k = int(ok.sum())
    return {
        "source": 100.0 * float(ok.float().mean()) if n else None,
        "pixels": summarize_attack((adv - x).cpu(), ok.cpu())["median_pixels_pct"],
        "fooled": [100.0 * float(fooled[t][ok].float().mean()) if k else None for t in models],
        "fooled_all": [100.0 * float(fooled[t].float().mean()) if n else None for t in models],
    }
