"""Pictures of what the primitives and PRIME do: augmentation galleries and smoothness/strength grids.

Used by ``prime-augment preview`` and ``prime-augment demo``; the tensor-producing functions need only
torch, the ``plot_*`` functions need matplotlib (the ``recipes`` extra).

* :func:`augmentation_samples`: ``samples`` independent draws of each primitive and of PRIME (with a
  preset's hyper-parameters) on every image.
* :func:`primitive_grid`: the figure of the method for one primitive — the smoothness ``K`` across
  rows, the strength across columns — on one image, with one random draw per row scaled by the
  column's strength, so a row shows the same random transform at growing strength. Each cell is a
  draw of the primitive's own sampler (the same seed along a row) with its random hyper-parameters
  fixed at the top of their laws:

  =========  =========================  ===================================================================
  primitive  ``K`` (rows)               strength ``a`` (columns, a multiple of the preset's maximum)
  =========  =========================  ===================================================================
  spectral   FIR size ``K x K``         ``sample_spectral_params``, ``sigma = a sigma_max`` (fixed)
  spatial    cut ``c`` of the series    ``sample_spatial_params``, cut ``c`` and ``T = a^2 max(T_max, T_min)``
  color      highest frequency ``K``    ``sample_color_params``, ``v = a^2 variance_max``, band ``K-D+1..K``
  =========  =========================  ===================================================================

  ``a = 0`` is the image itself; ``a = 1`` is the largest strength the preset's law draws. The color
  band holds ``D = min(K, bandwidth)`` frequencies (all of ``1..K`` when the preset's ``bandwidth`` is
  ``None``, as at CIFAR scale): the top band the preset's law can draw for that ``K``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from ...functional import (
    deform,
    sample_color_params,
    sample_spatial_params,
    sample_spectral_params,
    sine_color,
    spectral_filter,
)
from ...presets import get_preset
from ...prime import PRIME, PRIMITIVES

__all__ = [
    "DEFAULT_GRID_K",
    "DEFAULT_STRENGTHS",
    "augmentation_samples",
    "default_grid_k",
    "plot_gallery",
    "plot_grids",
    "primitive_grid",
]

#: the strengths of the grid columns, as multiples of the preset's largest strength
DEFAULT_STRENGTHS = (0.0, 0.1, 0.25, 0.5, 1.0)

#: the smoothness values of the grid rows, by image scale (``small``: up to 64 px, ``large`` above)
DEFAULT_GRID_K: dict[str, dict[str, tuple[int, ...]]] = {
    "small": {"spectral": (1, 3, 5, 7), "spatial": (2, 4, 8, 16), "color": (1, 5, 20, 100)},
    "large": {"spectral": (1, 3, 5, 7), "spatial": (2, 10, 40, 140), "color": (1, 10, 100, 500)},
}


def default_grid_k(size: int) -> dict[str, tuple[int, ...]]:
    """The rows of the grids for images of side ``size``."""
    return dict(DEFAULT_GRID_K["small" if size <= 64 else "large"])


def _check_image(image: torch.Tensor) -> torch.Tensor:
    if not isinstance(image, torch.Tensor) or image.ndim != 3 or not image.is_floating_point():
        got = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"image must be a float tensor (C, H, W) in [0, 1], got {got}")
    return image


def primitive_grid(
    image: torch.Tensor,
    primitive: str,
    ks: Sequence[int],
    strengths: Sequence[float] = DEFAULT_STRENGTHS,
    *,
    preset: str = "cifar10",
    seed: int = 0,
) -> torch.Tensor:
    """One primitive on one image, smoothness ``K`` across rows and strength across columns.

    Args:
        image: float ``(C, H, W)`` in ``[0, 1]``.
        primitive: ``"spectral"``, ``"spatial"`` or ``"color"``.
        ks: the row values of ``K`` (FIR size, odd ``>= 1``; diffeomorphism cut ``>= 2``; highest color
            frequency ``>= 1``).
        strengths: the column strengths ``a >= 0``, multiples of the preset's largest strength (see the
            module docstring).
        preset: whose hyper-parameters (``sigma_max``, ``variance_max``) set the scale.
        seed: seeds the one random draw of each row.

    Returns:
        ``(len(ks), len(strengths), C, H, W)`` images in ``[0, 1]``.

    Example:
        >>> import torch
        >>> x = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
        >>> g = primitive_grid(x, "spatial", ks=(2, 8), strengths=(0.0, 1.0))
        >>> g.shape, torch.equal(g[1, 0], x)         # strength 0 is the image itself
        (torch.Size([2, 2, 3, 32, 32]), True)
    """
    image = _check_image(image)
    if primitive not in PRIMITIVES:
        raise ValueError(f"primitive must be one of {tuple(PRIMITIVES)}, got {primitive!r}")
    if not ks:
        raise ValueError("ks must hold at least one value of K")
    bad = [a for a in strengths if not (a >= 0 and math.isfinite(a))]
    if not strengths or bad:
        raise ValueError(f"strengths must be finite numbers >= 0, got {list(strengths)}")
    cfg = get_preset(preset)[primitive]
    n_s = len(strengths)
    x = image.expand(n_s, *image.shape)
    rows = []
    for row, k in enumerate(ks):
        _check_k(primitive, k)
        # one seed per row: every column draws the same numbers at its own strength
        draws = [_draw(primitive, cfg, k, float(a), image.shape, seed * 1_000_003 + row) for a in strengths]
        if primitive == "spectral":
            rows.append(spectral_filter(x, torch.cat(draws)))
        elif primitive == "spatial":
            rows.append(deform(x, torch.cat(draws)))
        else:
            band = draws[0].shape[-1]
            rows.append(sine_color(x, torch.cat(draws), torch.full((n_s,), k - band + 1, dtype=torch.int64)))
    grid = torch.stack(rows)
    grid[:, torch.tensor([float(a) == 0 for a in strengths])] = image  # exactly the image
    return grid


def _check_k(primitive: str, k: int) -> None:
    if primitive == "spectral" and (k < 1 or k % 2 == 0):
        raise ValueError(f"spectral K must be odd and >= 1, got {k}")
    if primitive == "spatial" and k < 2:
        raise ValueError(f"spatial K (the cut) must be >= 2, got {k}")
    if primitive == "color" and k < 1:
        raise ValueError(f"color K must be >= 1, got {k}")


def _draw(primitive: str, cfg: dict, k: int, a: float, shape: torch.Size, seed: int) -> torch.Tensor:
    """One image's parameters of ``primitive`` at smoothness ``k`` and strength ``a``, the random
    hyper-parameters fixed at the top of the preset's laws (the module docstring's table)."""
    g = torch.Generator().manual_seed(seed)
    c, h, w = shape
    if primitive == "spectral":
        kw = {"kernel_size": k, "sigma_min": cfg["sigma_max"], "sigma_max": cfg["sigma_max"]}
        return sample_spectral_params(1, **kw, strength=a, generator=g)["taps"]
    if primitive == "spatial":
        kw = {"cut_min": k, "cut_max": k, "temperature_level": 1.0}
        return sample_spatial_params(1, h, w, **kw, strength=a, generator=g)["coeffs"]
    band = k if cfg["bandwidth"] is None else min(k, cfg["bandwidth"])  # the top of the band at K
    v = cfg["variance_max"]
    kw = {"cut_min": k, "cut_max": k, "bandwidth": band, "start": k - band + 1}
    kw |= {"variance_min": v, "variance_max": v}
    return sample_color_params(1, c, **kw, strength=a, generator=g)["coeffs"]


def augmentation_samples(
    images: torch.Tensor, *, preset: str = "cifar10", samples: int = 2, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Independent random draws of each primitive and of PRIME on every image.

    Args:
        images: float ``(N, C, H, W)`` in ``[0, 1]``.
        preset: hyper-parameters of the primitives and the mixer (:data:`~prime_augment.PRESETS`).
        samples: draws per image and augmentation (``>= 1``).
        seed: seeds every draw.

    Returns:
        ``{"spectral", "spatial", "color", "PRIME"}`` -> ``(N, samples, C, H, W)``.

    Example:
        >>> import torch
        >>> out = augmentation_samples(torch.rand(2, 3, 32, 32), samples=3)
        >>> list(out), tuple(out["PRIME"].shape)
        (['spectral', 'spatial', 'color', 'PRIME'], (2, 3, 3, 32, 32))
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a float tensor (N, C, H, W) in [0, 1], got {got}")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be an int >= 1, got {samples!r}")
    g = torch.Generator().manual_seed(seed)
    prime = PRIME.from_preset(preset, generator=g)
    n = images.shape[0]
    batch = images.repeat_interleave(samples, dim=0)  # image-major: every copy draws its own parameters
    out: dict[str, torch.Tensor] = {}
    for name, op in zip(prime.primitives, prime.ops, strict=True):
        params = op.sample_params(*batch.shape, device=batch.device, generator=g)
        out[name] = op.apply(batch, params).reshape(n, samples, *images.shape[1:])
    out["PRIME"] = prime(batch).reshape(n, samples, *images.shape[1:])
    return out


# ---------------------------------------------------------------------------------------------- plots
def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - the recipes extra provides it
        raise SystemExit("the pictures need matplotlib: pip install 'prime-augment[recipes]'") from e
    return plt


def _show(ax, img: torch.Tensor) -> None:
    ax.imshow(img.clamp(0, 1).permute(1, 2, 0).cpu().numpy(), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _save(plt, fig, path: str | os.PathLike, title: str | None, dpi: int) -> Path:
    if title:
        fig.suptitle(title, fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _draw_gallery(fig, images: torch.Tensor, samples: dict[str, torch.Tensor], names: Sequence[str]) -> None:
    kinds = list(samples)
    s = samples[kinds[0]].shape[1]
    cols = 1 + len(kinds) * s
    axes = fig.subplots(images.shape[0], cols, squeeze=False)
    for i in range(images.shape[0]):
        _show(axes[i, 0], images[i])
        if names:
            axes[i, 0].set_ylabel(names[i], fontsize=8)
        for k, kind in enumerate(kinds):
            for j in range(s):
                ax = axes[i, 1 + k * s + j]
                _show(ax, samples[kind][i, j])
                if i == 0:
                    ax.set_title(kind if s == 1 else f"{kind} {j + 1}", fontsize=8)
    axes[0, 0].set_title("original", fontsize=8)


def _draw_grid(
    fig, grid: torch.Tensor, primitive: str, ks: Sequence[int], strengths: Sequence[float]
) -> None:
    axes = fig.subplots(len(ks), len(strengths), squeeze=False)
    label = {"spectral": "K = FIR size", "spatial": "K = cut", "color": "K = top frequency"}[primitive]
    for r, k in enumerate(ks):
        for col, a in enumerate(strengths):
            ax = axes[r, col]
            _show(ax, grid[r, col])
            if r == 0:
                ax.set_title(f"a={a:g}", fontsize=8)
            if col == 0:
                ax.set_ylabel(f"K={k}", fontsize=8)
    fig.suptitle(f"{primitive} ({label})", fontsize=9)


def plot_gallery(
    images: torch.Tensor,
    samples: dict[str, torch.Tensor],
    path: str | os.PathLike,
    *,
    names: Sequence[str] = (),
    title: str | None = None,
    cell: float = 0.9,
    dpi: int = 100,
) -> Path:
    """Save a gallery PNG: one row per image, the original then each augmentation's samples.

    Args:
        images: ``(N, C, H, W)`` originals.
        samples: :func:`augmentation_samples`' result.
        path: the PNG file.
        names: optional row labels (e.g. class names).
        title: optional figure title.
        cell: inches per image.
        dpi: resolution.
    """
    plt = _pyplot()
    n = images.shape[0]
    cols = 1 + sum(v.shape[1] for v in samples.values())
    fig = plt.figure(figsize=(cell * cols, cell * n + (0.4 if title else 0.2)), layout="constrained")
    _draw_gallery(fig, images, samples, names)
    return _save(plt, fig, path, title, dpi)


def plot_grids(
    grids: dict[str, torch.Tensor],
    ks: dict[str, Sequence[int]],
    strengths: Sequence[float],
    path: str | os.PathLike,
    *,
    images: torch.Tensor | None = None,
    samples: dict[str, torch.Tensor] | None = None,
    names: Sequence[str] = (),
    title: str | None = None,
    cell: float = 0.9,
    dpi: int = 100,
) -> Path:
    """Save the smoothness/strength grids of the primitives (side by side) as a PNG, optionally under a
    gallery of ``images`` and their ``samples`` (one figure, as ``prime-augment preview`` writes it).

    Args:
        grids: primitive name -> :func:`primitive_grid` result.
        ks: primitive name -> the rows' ``K``.
        strengths: the columns' strengths.
        path: the PNG file.
        images, samples, names: a gallery drawn above the grids (see :func:`plot_gallery`).
        title: optional figure title.
        cell: inches per image.
        dpi: resolution.
    """
    plt = _pyplot()
    rows = max(len(ks[p]) for p in grids)
    grid_w = cell * len(grids) * len(strengths) + 0.3 * len(grids)
    grid_h = cell * rows + 0.5
    width, height, ratios = grid_w, grid_h, [grid_h]
    if images is not None and samples is not None:
        gal_cols = 1 + sum(v.shape[1] for v in samples.values())
        gal_h = cell * images.shape[0] + 0.3
        width, height, ratios = max(grid_w, cell * gal_cols), grid_h + gal_h, [gal_h, grid_h]
    fig = plt.figure(figsize=(width, height + (0.4 if title else 0)), layout="constrained")
    parts = fig.subfigures(len(ratios), 1, height_ratios=ratios, squeeze=False)[:, 0]
    if len(ratios) == 2:
        _draw_gallery(parts[0], images, samples, names)
    panels = parts[-1].subfigures(1, len(grids), squeeze=False)[0]
    for panel, (prim, grid) in zip(panels, grids.items(), strict=True):
        _draw_grid(panel, grid, prim, ks[prim], strengths)
    return _save(plt, fig, path, title, dpi)
