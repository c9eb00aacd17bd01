"""Plots of the analysis extra (matplotlib's object API: no global pyplot state, any backend)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "plot_attack_comparison",
    "plot_bars",
    "plot_delta_sweep",
    "plot_diversity",
    "plot_examples",
    "plot_histogram",
    "plot_margin_profiles",
    "plot_margins",
    "plot_matrix",
]


def _np(a: Any) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().double().numpy()
    return np.asarray(a, dtype=np.float64)


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=fig.dpi, bbox_inches="tight")
    return path


def plot_margins(
    margins: Any,
    path: str | os.PathLike,
    *,
    labels: Sequence[str] | None = None,
    control: Any | None = None,
    cap: float | None = None,
    title: str = "margins along DCT subspaces",
    xlabel: str = "subspace (low to high frequency)",
    seed: int = 0,
) -> Path:
    """The margin plot: per subspace, the median, 25-75 and 5-95 percentile bands and every image.

    Margins that are infinite (no boundary reached inside the subspace) or above ``cap`` are drawn
    at ``cap`` with upward triangles; the statistics use the capped values.

    Args:
        margins: ``(S, N)`` margins, one row per subspace (tensor or array).
        path: the PNG to write.
        labels: ``S`` tick labels (default ``0..S-1``).
        control: optional ``(N,)`` margins in random subspaces of the same dimension: drawn as a
            horizontal median line with its 25-75 band.
        cap: the top of the plot (default 1.1 x the largest finite margin).
        title, xlabel: texts.
        seed: of the horizontal jitter of the points.

    Returns:
        ``path``.
    """
    m = _np(margins)
    if m.ndim != 2 or m.shape[0] == 0:
        raise ValueError(f"margins must be a (S, N) array with S >= 1, got shape {m.shape}")
    finite = m[np.isfinite(m)]
    if cap is None:
        cap = 1.1 * float(finite.max()) if finite.size else 1.0
        cap = cap if cap > 0 else 1.0
    mc = np.minimum(np.where(np.isfinite(m), m, np.inf), cap)
    s, n = m.shape
    xs = np.arange(s)
    fig = Figure(figsize=(max(5.0, 0.6 * s + 2), 3.6), dpi=110)
    ax = fig.add_subplot()
    if n:
        p5, p25, p50, p75, p95 = np.percentile(mc, [5, 25, 50, 75, 95], axis=1)
        ax.fill_between(xs, p5, p95, color="C0", alpha=0.15, lw=0, label="5-95 %")
        ax.fill_between(xs, p25, p75, color="C0", alpha=0.3, lw=0, label="25-75 %")
        ax.plot(xs, p50, color="C0", lw=2, marker="o", ms=4, label="median")
        jitter = np.random.default_rng(seed).uniform(-0.18, 0.18, size=m.shape)
        capped = mc >= cap
        ax.scatter((xs[:, None] + jitter)[~capped], mc[~capped], s=3, color="k", alpha=0.25, lw=0)
        if capped.any():
            ax.scatter((xs[:, None] + jitter)[capped], mc[capped], s=10, marker="^", color="C3", alpha=0.5,
                       lw=0, label=f">= {cap:.3g} (capped)")  # fmt: skip
    if control is not None:
        c = np.minimum(_np(control), cap)
        if c.size:
            q25, q50, q75 = np.percentile(c, [25, 50, 75])
            ax.axhspan(q25, q75, color="C1", alpha=0.15, lw=0)
            ax.axhline(q50, color="C1", ls="--", lw=1.5, label="random subspace (median)")
    ax.set_xticks(xs)
    ax.set_xticklabels(list(labels) if labels is not None else [str(i) for i in xs], rotation=0, fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("l2 margin")
    ax.set_ylim(0, cap * 1.03)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_histogram(values: Any, path: str | os.PathLike, *, xlabel: str, title: str, bins: int = 30) -> Path:
    """A histogram of per-image values (e.g. % of perturbed pixels) with its median marked."""
    v = _np(values).ravel()
    v = v[np.isfinite(v)]
    fig = Figure(figsize=(5, 3.2), dpi=110)
    ax = fig.add_subplot()
    if v.size:
        ax.hist(v, bins=bins, color="C0", alpha=0.8)
        ax.axvline(float(np.median(v)), color="C3", ls="--", label=f"median {np.median(v):.3g}")
        ax.legend(fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("images")
    ax.set_title(title)
    return _save(fig, path)


def plot_examples(
    images: torch.Tensor,
    adversarial: torch.Tensor,
    path: str | os.PathLike,
    *,
    n: int = 6,
    titles: Sequence[str] = (),
) -> Path:
    """Clean images, their adversarials and the perturbed pixels (white), one column per image."""
    x = images[:n].detach().float().cpu().clamp(0, 1)
    a = adversarial[:n].detach().float().cpu().clamp(0, 1)
    k = x.shape[0]
    fig = Figure(figsize=(1.4 * max(k, 1), 4.4), dpi=110)
    for j in range(k):
        mask = ((a[j] - x[j]).abs().amax(0) > 0).float()
        for i, (img, name) in enumerate(((x[j], "clean"), (a[j], "adversarial"), (mask, "perturbed"))):
            ax = fig.add_subplot(3, k, i * k + j + 1)
            arr = img.permute(1, 2, 0).numpy() if img.ndim == 3 else img.numpy()
            gray = arr.ndim == 2 or arr.shape[-1] == 1
            ax.imshow(arr.squeeze(), cmap="gray" if gray else None, vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(name, fontsize=8)
            if i == 0 and j < len(titles):
                ax.set_title(titles[j], fontsize=7)
    return _save(fig, path)


def plot_bars(
    names: Sequence[str],
    series: Mapping[str, Sequence[float]],
    path: str | os.PathLike,
    *,
    ylabel: str,
    title: str,
) -> Path:
    """Grouped bars: one group per name, one bar per series (e.g. coverage per corruption, augmentation)."""
    k = max(len(series), 1)
    xs = np.arange(len(names))
    width = 0.8 / k
    fig = Figure(figsize=(max(5.0, 0.7 * len(names) + 2), 3.6), dpi=110)
    ax = fig.add_subplot()
    for i, (label, vals) in enumerate(series.items()):
        ax.bar(xs - 0.4 + width * (i + 0.5), _np(vals), width=width, label=label)
    ax.set_xticks(xs)
    ax.set_xticklabels(list(names), rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_diversity(
    points: Mapping[str, Any], clean: Any, path: str | os.PathLike, *, title: str = "augmented samples (PCA)"
) -> Path:
    """One panel per augmentation: 2-D PCA coordinates of augmented samples, coloured by image.

    Args:
        points: name -> ``(n_images, T, 2)`` coordinates of the augmented samples.
        clean: ``(n_images, 2)`` coordinates of the clean images (black crosses).
        path: the PNG to write.
        title: the figure title.
    """
    c = _np(clean)
    k = max(len(points), 1)
    fig = Figure(figsize=(3.4 * k, 3.4), dpi=110)
    allp = [_np(p).reshape(-1, 2) for p in points.values()] + [c.reshape(-1, 2)]
    lo, hi = np.concatenate(allp).min(0), np.concatenate(allp).max(0)
    pad = 0.05 * (hi - lo + 1e-12)
    for i, (name, p) in enumerate(points.items()):
        ax = fig.add_subplot(1, k, i + 1)
        p = _np(p)
        for j in range(p.shape[0]):
            ax.scatter(p[j, :, 0], p[j, :, 1], s=6, alpha=0.5, color=f"C{j % 10}", lw=0)
        ax.scatter(c[:, 0], c[:, 1], s=40, marker="x", color="k", label="clean")
        ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
        ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_margin_profiles(
    profiles: Mapping[str, Any],
    path: str | os.PathLike,
    *,
    labels: Sequence[str] | None = None,
    cap: float | None = None,
    title: str = "margins along DCT subspaces",
    xlabel: str = "subspace (low to high frequency)",
) -> Path:
    """Several margin profiles on one axis: per model (or training stage), the median and 25-75 band.

    Infinite margins and margins above ``cap`` count as ``cap`` (the statistics are order statistics,
    so a median at ``cap`` means at least half of the images are out of reach or beyond it).

    Args:
        profiles: name -> ``(S, N)`` margins (one row per subspace, the same ``S`` for all).
        path: the PNG to write.
        labels: ``S`` tick labels (default ``0..S-1``).
        cap: the top of the plot (default 1.2 x the largest 75th percentile of the finite margins).
        title, xlabel: texts.

    Returns:
        ``path``.
    """
    arrays = {k: _np(v) for k, v in profiles.items()}
    if not arrays:
        raise ValueError("profiles must hold at least one (S, N) array of margins")
    shapes = {a.shape[0] for a in arrays.values()}
    if any(a.ndim != 2 or a.shape[0] == 0 for a in arrays.values()) or len(shapes) != 1:
        raise ValueError(
            "profiles must be (S, N) arrays with the same S >= 1, got shapes "
            f"{[a.shape for a in arrays.values()]}"
        )
    if cap is None:
        tops = [np.nanpercentile(np.where(np.isfinite(a), a, np.nan), 75, axis=1) for a in arrays.values()
                if np.isfinite(a).any()]  # fmt: skip
        top = max((float(np.nanmax(t)) for t in tops), default=0.0)
        cap = 1.2 * top if top > 0 else 1.0
    s = shapes.pop()
    xs = np.arange(s)
    fig = Figure(figsize=(max(5.0, 0.6 * s + 2), 3.6), dpi=110)
    ax = fig.add_subplot()
    for i, (name, m) in enumerate(arrays.items()):
        if m.shape[1] == 0:
            continue
        mc = np.minimum(m, cap)
        p25, p50, p75 = np.percentile(mc, [25, 50, 75], axis=1, method="nearest")  # as margin_summary
        ax.fill_between(xs, p25, p75, color=f"C{i}", alpha=0.2, lw=0)
        ax.plot(xs, p50, color=f"C{i}", lw=2, marker="o", ms=4, label=f"{name} (median, 25-75 %)")
    ax.set_xticks(xs)
    ax.set_xticklabels(list(labels) if labels is not None else [str(i) for i in xs], fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"l2 margin (capped at {cap:.3g})")
    ax.set_ylim(0, cap * 1.03)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_delta_sweep(
    deltas: Sequence[float],
    fooling_rate: Sequence[float],
    pixels: Sequence[float | None],
    path: str | os.PathLike,
    *,
    unbounded: tuple[float, float | None] | None = None,
    title: str = "SparseFool: perceptibility bound delta",
) -> Path:
    """Fooling rate (left axis) and median % of perturbed pixels (right axis) against ``delta``.

    Args:
        deltas: the bounds delta (``|x_adv - x| <= delta`` per value).
        fooling_rate: % of images fooled at each ``delta``.
        pixels: median % of perturbed pixels of the fooled images at each ``delta`` (``None``: none fooled).
        path: the PNG to write.
        unbounded: optional ``(fooling rate, median % pixels)`` without a bound, drawn as dotted lines.
        title: the title.

    Returns:
        ``path``.
    """
    from matplotlib.ticker import NullFormatter

    d = _np(deltas)
    fr = _np(fooling_rate)
    px = np.array([np.nan if v is None else float(v) for v in pixels])
    if not (len(d) == len(fr) == len(px)) or len(d) == 0:
        raise ValueError(f"deltas, fooling_rate and pixels must have the same length >= 1, got {len(d)}, "
                         f"{len(fr)}, {len(px)}")  # fmt: skip
    fig = Figure(figsize=(5.2, 3.4), dpi=110)
    ax = fig.add_subplot()
    ax.plot(d, fr, color="C0", marker="o", lw=2, label="fooling rate")
    ax.set_xlabel("delta (max |perturbation| per value, images in [0, 1])")
    ax.set_ylabel("fooling rate (%)", color="C0")
    ax.set_ylim(0, 103)
    ax.set_xscale("log")
    ax2 = ax.twinx()
    ax2.plot(d, px, color="C3", marker="s", lw=2, ls="--", label="median % perturbed pixels")
    ax2.set_ylabel("median % perturbed pixels", color="C3")
    ax2.set_ylim(0, max(1.0, float(np.nanmax(px)) * 1.1) if np.isfinite(px).any() else 1.0)
    if unbounded is not None:
        ax.axhline(unbounded[0], color="C0", ls=":", lw=1, label="fooling rate, no bound")
        if unbounded[1] is not None:
            ax2.axhline(unbounded[1], color="C3", ls=":", lw=1, label="% pixels, no bound")
    ax.set_xticks(d)
    ax.set_xticklabels([f"{v:g}" for v in d], fontsize=8)
    ax.xaxis.set_minor_formatter(NullFormatter())
    lines = ax.get_lines() + ax2.get_lines()
    ax.legend(lines, [ln.get_label() for ln in lines], fontsize=8, loc="center right")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_matrix(
    values: Any,
    rows: Sequence[str],
    cols: Sequence[str],
    path: str | os.PathLike,
    *,
    title: str,
    xlabel: str = "",
    ylabel: str = "",
    fmt: str = "{:.1f}",
    vmax: float | None = None,
) -> Path:
    """A heat map with the value written in every cell (e.g. transfer fooling rates, source x target)."""
    v = _np(values)
    if v.shape != (len(rows), len(cols)):
        raise ValueError(f"values must have shape ({len(rows)}, {len(cols)}), got {v.shape}")
    fig = Figure(figsize=(1.3 * len(cols) + 2.2, 0.8 * len(rows) + 1.6), dpi=110)
    ax = fig.add_subplot()
    top = vmax if vmax is not None else (float(np.nanmax(v)) if np.isfinite(v).any() else 1.0)
    ax.imshow(v, cmap="viridis", vmin=0, vmax=top or 1.0, aspect="auto")
    for i in range(v.shape[0]):
        for j in range(v.shape[1]):
            txt = "n/a" if not np.isfinite(v[i, j]) else fmt.format(v[i, j])
            dark = np.isfinite(v[i, j]) and v[i, j] > 0.6 * (top or 1.0)
            ax.text(j, i, txt, ha="center", va="center", fontsize=9, color="k" if dark else "w")
    ax.set_xticks(np.arange(len(cols)))
    ax.set_xticklabels(list(cols), fontsize=8)
    ax.set_yticks(np.arange(len(rows)))
    ax.set_yticklabels(list(rows), fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def plot_attack_comparison(summaries: Mapping[str, Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Three panels of horizontal bars, one bar per attack: fooling rate, median % pixels, seconds/image.

    Args:
        summaries: attack name -> a :func:`~prime_augment.analysis.summarize_attack` dict.
        path: the PNG to write.
    """
    names = list(summaries)
    if not names:
        raise ValueError("summaries must hold at least one attack")
    panels = (
        ("fooling_rate", "fooling rate (%)", False),
        ("median_pixels_pct", "median % perturbed pixels (fooled)", True),
        ("seconds_per_image", "seconds / image", True),
    )
    fig = Figure(figsize=(11, 0.45 * len(names) + 1.4), dpi=110)
    ys = np.arange(len(names))
    for k, (key, label, log) in enumerate(panels):
        ax = fig.add_subplot(1, 3, k + 1)
        vals = np.array([np.nan if summaries[n].get(key) is None else float(summaries[n][key])
                         for n in names])  # fmt: skip
        ax.barh(ys, np.nan_to_num(vals, nan=0.0), color=[f"C{i}" for i in range(len(names))])
        for y, v in zip(ys, vals, strict=True):
            ax.text(0 if not np.isfinite(v) else v, y, " n/a" if not np.isfinite(v) else f" {v:.3g}",
                    va="center", fontsize=7)  # fmt: skip
        if log and np.isfinite(vals).any() and np.nanmin(vals) > 0:
            ax.set_xscale("log")
        ax.set_yticks(ys)
        ax.set_yticklabels(names if k == 0 else [""] * len(names), fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(label, fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)
