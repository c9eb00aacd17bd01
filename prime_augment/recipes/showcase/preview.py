"""``prime-augment preview``: see what PRIME and each primitive do to your images, in one PNG.

The picture has two parts:

* a gallery: one row per image, the original, then ``--samples`` independent random draws of the
  spectral filter, the diffeomorphism, the color map and the whole PRIME mix (the preset's laws);
* the smoothness/strength grids of the method's figures for each primitive, on one image
  (``--grid-image``): ``K`` across rows (FIR size, cut of the diffeomorphism's sine series, highest
  color frequency), the strength across columns as a multiple of the preset's largest (``0`` is the
  image itself); one random draw per row, scaled along the row.

Images are converted to RGB, resized (shorter side) and centre-cropped to ``--size`` pixels (default:
the smallest image's shorter side, at most 256). ``--preset auto`` uses the CIFAR-10 hyper-parameters
up to 64 px and the ImageNet ones above.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torchvision.transforms import v2

from ...presets import PRESETS
from .._common import PlainHelpFormatter, nonneg_int, positive_int
from .gallery import (
    DEFAULT_STRENGTHS,
    augmentation_samples,
    default_grid_k,
    plot_grids,
    primitive_grid,
)

__all__ = ["load_images", "preview"]

EXAMPLE = """Example:
  prime-augment preview photo.jpg cat.png --out preview.png
  prime-augment preview img/*.jpg --size 128 --samples 3 --preset imagenet --seed 1 --out prime.png
"""


def load_images(paths: Sequence[str | Path], size: int | None = None) -> tuple[torch.Tensor, int]:
    """Read image files as a float batch ``(N, 3, S, S)`` in ``[0, 1]``.

    Args:
        paths: image files (anything PIL reads).
        size: the side ``S`` (shorter side resized, then a centre crop); default: the smallest image's
            shorter side, at most 256.

    Returns:
        The batch and ``S``.
    """
    if not paths:
        raise ValueError("give at least one IMAGE file")
    pil = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise FileNotFoundError(f"IMAGE {p}: no such file")
        try:
            with Image.open(path) as im:
                pil.append(im.convert("RGB"))
        except (UnidentifiedImageError, OSError) as e:
            raise ValueError(f"IMAGE {p}: cannot read it as an image ({e})") from e
    if size is None:
        size = min(256, *(min(im.size) for im in pil))
    if size < 8:
        raise ValueError(f"--size must be >= 8, got {size}")
    tf = v2.Compose(
        [
            v2.ToImage(),
            v2.Resize(size, antialias=True),
            v2.CenterCrop(size),
            v2.ToDtype(torch.float32, scale=True),
        ]
    )
    return torch.stack([tf(im) for im in pil]), size


def preview(
    paths: Sequence[str | Path],
    out: str | Path,
    *,
    preset: str = "auto",
    seed: int = 0,
    samples: int = 2,
    size: int | None = None,
    grid_image: int = 0,
    strengths: Sequence[float] = DEFAULT_STRENGTHS,
) -> Path:
    """Write the preview PNG of ``paths`` to ``out`` (see the module docstring); returns its path.

    Args:
        paths: image files.
        out: the PNG file.
        preset: ``auto`` or one of :data:`~prime_augment.PRESETS`.
        seed: seeds every random draw.
        samples: draws per image and augmentation in the gallery (``>= 1``).
        size: the images' side (see :func:`load_images`).
        grid_image: index of the image of the grids.
        strengths: the grids' column strengths.
    """
    if preset != "auto" and preset not in PRESETS:
        raise ValueError(f"--preset must be auto or one of {tuple(PRESETS)}, got {preset!r}")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"--samples must be an int >= 1, got {samples!r}")
    images, size = load_images(paths, size)
    if not 0 <= grid_image < images.shape[0]:
        raise ValueError(f"--grid-image must be in [0, {images.shape[0] - 1}], got {grid_image}")
    name = preset if preset != "auto" else ("cifar10" if size <= 64 else "imagenet")
    draws = augmentation_samples(images, preset=name, samples=samples, seed=seed)
    ks = default_grid_k(size)
    grids = {
        p: primitive_grid(images[grid_image], p, k, strengths, preset=name, seed=seed) for p, k in ks.items()
    }
    labels = [Path(p).name for p in paths]
    title = (
        f"prime-augment preview: preset {name}, {size} px, seed {seed}; grids on {labels[grid_image]} "
        "(rows: smoothness K; columns: strength a, x the preset's largest)"
    )
    cell = 0.9 if size <= 64 else 1.3
    return plot_grids(
        grids, ks, strengths, out, images=images, samples=draws, names=labels, title=title, cell=cell
    )


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from e


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="prime-augment preview",
        description=__doc__,
        epilog=EXAMPLE,
        formatter_class=PlainHelpFormatter,
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    p.add_argument("--out", default="preview.png", help="the PNG to write (default: preview.png)")
    p.add_argument("--preset", default="auto", choices=("auto", *PRESETS), help="hyper-parameters")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seeds every random draw (default 0)")
    p.add_argument("--samples", type=positive_int, default=2, help="random draws per image and augmentation")
    p.add_argument(
        "--size", type=positive_int, help="side in pixels (default: smallest shorter side, at most 256)"
    )
    p.add_argument(
        "--grid-image", type=nonneg_int, default=0, help="index of the image of the K x strength grids"
    )
    p.add_argument(
        "--strengths",
        type=_floats,
        default=list(DEFAULT_STRENGTHS),
        help="grid columns, multiples of the preset's largest strength (default 0,0.1,0.25,0.5,1)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        path = preview(
            args.images,
            args.out,
            preset=args.preset,
            seed=args.seed,
            samples=args.samples,
            size=args.size,
            grid_image=args.grid_image,
            strengths=args.strengths,
        )
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"prime-augment preview: {e}") from e
    print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
