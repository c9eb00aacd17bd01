"""``prime-augment coverage``: how well augmentations cover common corruptions (§5.4.2, Eq. 5.8).

For each augmentation, the mean over images and corruptions of the smallest cosine distance, in
the embedding of a saved model (its penultimate features), between ``T`` augmented samples of an
image and its corrupted versions; plus a PCA view of the augmented samples' diversity. Writes
``coverage.json``, ``coverage.md``, ``coverage.png`` and ``diversity.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .. import _common

if TYPE_CHECKING:
    from ._analysis_cli import Setup

EPILOG = """\
Example:
  prime-augment coverage --model runs/cifar10 --data data/cifar10/test_images.npy \\
      --corruptions-dir data/cifar10-c --severities 3 --augment prime,augmix,none \\
      --samples 20 --limit 500 --device cuda --out out/coverage
  (without --corruptions-dir, seven built-in corruptions at about severity 3 are used)
"""

AUGMENTS = ("prime", "augmix", "spectral", "spatial", "color", "none")


def build_parser() -> argparse.ArgumentParser:
    from ._analysis_cli import new_parser

    p = new_parser(
        "prime-augment coverage",
        "Coverage of common corruptions by augmentations in a model's embedding space (mean minimum "
        "cosine distance, lower = better covered) and a PCA view of their diversity.",
        EPILOG,
        correct_only=False,
    )
    c = p.add_argument_group("coverage")
    c.add_argument(
        "--augment", default="prime,augmix,none", help=f"comma-separated, of {', '.join(AUGMENTS)}"
    )
    c.add_argument(
        "--samples", type=_common.positive_int, default=10, help="augmented samples T per image (default 10)"
    )
    c.add_argument(
        "--corruptions-dir",
        default=None,
        help="a CIFAR-10-C style folder (<corruption>.npy uint8 [5N,H,W,3] in severity blocks, labels.npy)"
        " aligned with --data; default: the built-in corruptions",
    )
    c.add_argument(
        "--severities", default="3", help="severities of --corruptions-dir, e.g. 1,2,3,4,5 (default 3)"
    )
    c.add_argument(
        "--embed-model", default=None, help="model whose penultimate features embed (default --model)"
    )
    c.add_argument(
        "--pca-images", type=_common.positive_int, default=4, help="images in the diversity plot (default 4)"
    )
    c.add_argument(
        "--pca-samples", type=_common.positive_int, default=50, help="augmented samples per image in it (50)"
    )
    return p


def _augmentation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    import prime_augment

    if name == "none":
        return lambda x: x
    if name == "augmix":
        from torchvision.transforms import v2

        t = v2.AugMix()
        return lambda x: t((x * 255).round().to(torch.uint8)).float() / 255
    if name == "prime":
        if not hasattr(prime_augment, "PRIME"):
            raise SystemExit("--augment prime: this version of prime_augment has no PRIME transform")
        return prime_augment.PRIME.from_preset("cifar10")
    cls = {
        "spectral": prime_augment.RandomSpectralFilter,
        "spatial": prime_augment.RandomDiffeomorphism,
        "color": prime_augment.RandomSineColor,
    }[name]
    return cls()


def _corruptions(
    args: argparse.Namespace, indices: list[int], n_clean: int
) -> dict[str, torch.Tensor | Callable]:
    """name -> uint8 tensor aligned with the selected images, or callable (built-ins)."""
    from ...analysis import builtin_corruptions

    if args.corruptions_dir is None:
        return builtin_corruptions(generator=torch.Generator().manual_seed(args.seed))
    d = Path(args.corruptions_dir)
    files = sorted(f for f in d.glob("*.npy") if f.name != "labels.npy")
    if not files:
        raise SystemExit(f"--corruptions-dir {d}: no <corruption>.npy files")
    try:
        severities = [int(v) for v in str(args.severities).split(",")]
    except ValueError as e:
        raise SystemExit(f"--severities {args.severities!r}: expected integers like 1,2,3") from e
    out: dict[str, torch.Tensor | Callable] = {}
    idx = np.asarray(indices, dtype=np.int64)
    for f in files:
        arr = np.load(f, mmap_mode="r")
        if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[0] % n_clean:
            raise SystemExit(
                f"{f}: expected uint8 [S*{n_clean},H,W,C] (severity blocks aligned with --data), "
                f"got {arr.dtype} {arr.shape}"
            )
        blocks = arr.shape[0] // n_clean
        for sev in severities:
            if not 1 <= sev <= blocks:
                raise SystemExit(f"--severities: {f.name} has severities 1..{blocks}, got {sev}")
            x = np.ascontiguousarray(arr[(sev - 1) * n_clean + idx])
            out[f"{f.stem}_s{sev}"] = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from ...analysis import PenultimateFeatures, plot_bars
    from ._analysis_cli import Setup, check_positive

    args = _common.parse_with_config(build_parser(), argv)
    check_positive(args, "samples", "pca_images", "pca_samples")
    names = _common.comma_subset(args.augment, "augment", AUGMENTS)
    s = Setup(args)
    images, _, selection = s.select()
    augments = {n: _augmentation(n) for n in names}
    embed = PenultimateFeatures(_embed_model(args, s))
    corr = _corruptions_on_device(args, s, images, selection["indices"])
    results = _coverages(embed, images.to(s.device), augments, corr, args, s)
    cnames = list(corr)
    md = _markdown(results, cnames)
    series = {n: [r["per_corruption"][c] for c in cnames] for n, r in results.items()}
    plot_bars(
        cnames,
        series,
        s.out / "coverage.png",
        ylabel="mean min cosine distance",
        title="coverage (lower = better)",
    )
    diversity = _diversity(embed, s.to_float(images[: min(args.pca_images, len(images))]), augments, args, s)
    s.write(
        "coverage",
        {
            "selection": selection,
            "corruptions": cnames,
            "corruptions_source": args.corruptions_dir or "builtin",
            "results": results,
            "diversity": diversity,
        },
        md,
    )
    print(md)
    print(f"wrote {s.out}/coverage.json, coverage.md, coverage.png, diversity.png")
    return 0


def _embed_model(args: argparse.Namespace, s: Setup) -> torch.nn.Module:
    """The model whose penultimate features embed: ``--embed-model``, else ``--model``."""
    if not args.embed_model:
        return s.model
    from ..benchmark.models import load_model

    return load_model(args.embed_model, map_location="cpu")[0].to(s.device).eval()


def _corruptions_on_device(
    args: argparse.Namespace, s: Setup, images: torch.Tensor, indices: list[int]
) -> dict[str, torch.Tensor | Callable]:
    """:func:`_corruptions` of the selected images, checked against their shape, on the run's device."""
    corr = _corruptions(args, indices, len(s.source))
    for name, c in corr.items():
        if isinstance(c, torch.Tensor) and c.shape != images.shape:
            raise SystemExit(
                f"corruption {name}: images of shape {tuple(c.shape[1:])}, "
                f"--data has {tuple(images.shape[1:])}"
            )
    return {k: (v.to(s.device) if isinstance(v, torch.Tensor) else v) for k, v in corr.items()}


def _coverages(
    embed: Callable,
    x: torch.Tensor,
    augments: dict[str, Callable],
    corr: dict[str, torch.Tensor | Callable],
    args: argparse.Namespace,
    s: Setup,
) -> dict[str, dict[str, Any]]:
    """Per augmentation, the coverage (Eq. 5.8) and its value per corruption (each from ``--seed``)."""
    from ...analysis import coverage

    results = {}
    for name, aug in augments.items():
        torch.manual_seed(args.seed)
        res = coverage(
            embed, x, aug, corr, num_samples=args.samples, batch_size=args.batch_size, progress=s.progress
        )
        results[name] = {
            "coverage": res.coverage,
            "per_corruption": dict(zip(res.names, res.per_corruption.tolist(), strict=True)),
        }
    return results


def _markdown(results: dict[str, dict[str, Any]], cnames: list[str]) -> str:
    header = ["augmentation", "coverage (mean min cos. distance)", *cnames]
    rows = [
        [n, f"{r['coverage']:.4f}", *(f"{r['per_corruption'][c]:.4f}" for c in cnames)]
        for n, r in results.items()
    ]
    return _common.table(rows, header)


def _diversity(
    embed: Callable, xk: torch.Tensor, augments: dict[str, Callable], args: argparse.Namespace, s: Setup
) -> dict[str, Any]:
    """PCA of the embeddings of ``--pca-samples`` augmented samples of the images ``xk`` (and of the clean
    images), fitted jointly; plotted to ``diversity.png``. Returns the explained variance and, per
    augmentation, the mean distance of the samples to their image's centroid."""
    from ...analysis import augmentation_embeddings, embedding_pca, plot_diversity

    k, t = len(xk), args.pca_samples
    torch.manual_seed(args.seed)
    embs = {n: augmentation_embeddings(embed, xk, aug, t) for n, aug in augments.items()}
    with torch.no_grad():
        clean = embed(xk).flatten(1).float()
    stacked = torch.cat([clean] + [e.reshape(-1, e.shape[-1]) for e in embs.values()])
    coords, explained = embedding_pca(stacked.cpu(), 2)
    pts = {n: coords[k + i * k * t : k + (i + 1) * k * t].reshape(k, t, 2) for i, n in enumerate(embs)}
    spread = {n: float((e - e.mean(1, keepdim=True)).norm(dim=-1).mean()) for n, e in embs.items()}
    plot_diversity(pts, coords[:k], s.out / "diversity.png", title="augmented samples, PCA of the embedding")
    return {"pca_explained": explained.tolist(), "mean_distance_to_centroid": spread}


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
