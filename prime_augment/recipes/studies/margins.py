"""``prime-augment margins``: l2 margins of a saved model along DCT subspaces (Chapter 4 of the method).

For ``K x K`` DCT blocks slid along the diagonal of the DCT grid (stride ``T``, every channel), the
margin of each image is the norm of the subspace-constrained DeepFool perturbation; a random
subspace of the same dimension is the control. Writes ``margins.json``, ``margins.md`` and
``margins.png`` (median, percentile bands and every image per subspace) to ``--out``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .. import _common

if TYPE_CHECKING:
    from ._analysis_cli import Setup

EPILOG = """\
Example:
  prime-augment margins --model runs/cifar10 --data data/cifar10/test_images.npy \\
      --limit 100 --block 8 --step 4 --device cuda --out out/margins
  (a model trained on frequency-flipped images: add --transform flip)
"""

TRANSFORMS = ("none", "flip", "low_pass", "high_pass")


def build_parser() -> argparse.ArgumentParser:
    from ._analysis_cli import new_parser

    p = new_parser(
        "prime-augment margins",
        "Margins (distance to the decision boundary) of a saved model inside DCT subspaces, low to high "
        "frequency, with a random-subspace control; table, JSON and the margin plot.",
        EPILOG,
    )
    m = p.add_argument_group("margins")
    m.add_argument("--block", type=_common.positive_int, default=8, help="DCT block size K (default 8)")
    m.add_argument(
        "--step",
        type=_common.positive_int,
        default=4,
        help="stride T of the blocks along the diagonal (default 4)",
    )
    m.add_argument(
        "--max-iter",
        type=_common.positive_int,
        default=100,
        help="DeepFool steps before a margin counts as inf",
    )
    m.add_argument(
        "--candidates",
        type=_common.positive_int,
        default=10,
        help="classes considered by DeepFool (default 10)",
    )
    m.add_argument(
        "--overshoot", type=_common.nonneg_float, default=0.02, help="DeepFool overshoot (default 0.02)"
    )
    m.add_argument("--no-control", action="store_true", help="skip the random-subspace control")
    m.add_argument(
        "--transform",
        choices=TRANSFORMS,
        default="none",
        help="apply a DCT transform to the images first (for models trained on transformed data)",
    )
    m.add_argument(
        "--cutoff", type=_common.nonneg_int, default=16, help="frequency cutoff of low_pass / high_pass (16)"
    )
    m.add_argument(
        "--cap",
        type=_common.positive_float,
        default=None,
        help="top of the plot (default: 1.1 x the largest margin)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from ...analysis import plot_margins
    from ._analysis_cli import Setup, check_positive

    args = _common.parse_with_config(build_parser(), argv)
    check_positive(args, "block", "step", "max_iter", "candidates")
    s = Setup(args)
    transform = _transform(args)
    images, _, selection = s.select(transform)
    spaces = _subspaces(args, tuple(images.shape[1:]), s.device)
    margins, seconds = _margins(spaces, images, transform, args, s)
    per_subspace = [
        _record(name, sub, m, tuple(images.shape[1:])) for (name, sub), m in zip(spaces, margins, strict=True)
    ]
    md = _markdown(per_subspace)
    n_dct = len(spaces) - (0 if args.no_control else 1)
    plot_margins(
        margins[:n_dct], s.out / "margins.png", labels=[n for n, _ in spaces[:n_dct]],
        control=None if args.no_control else margins[-1], cap=args.cap,
        title=f"l2 margins in {args.block}x{args.block} DCT blocks ({len(images)} images)",
        xlabel="DCT frequencies (block along the diagonal, low to high)",
    )  # fmt: skip
    results = {
        "selection": selection,
        "transform": args.transform,
        "seconds": seconds,
        "subspaces": per_subspace,
    }
    s.write("margins", results, md)
    print(md)
    print(f"wrote {s.out}/margins.json, margins.md, margins.png")
    return 0


def _transform(args: argparse.Namespace) -> Callable[[torch.Tensor], torch.Tensor]:
    """The DCT transform of ``--transform`` (the identity for ``none``)."""
    from ...analysis import dct_flip, dct_high_pass, dct_low_pass

    return {
        "none": lambda x: x,
        "flip": dct_flip,
        "low_pass": lambda x: dct_low_pass(x, args.cutoff),
        "high_pass": lambda x: dct_high_pass(x, args.cutoff),
    }[args.transform]


def _subspaces(args: argparse.Namespace, shape: tuple[int, int, int], device: torch.device) -> list:
    """``(name, subspace)``: the ``--block`` DCT blocks along the diagonal (stride ``--step``), named by
    their frequencies, then (unless ``--no-control``) a random subspace of the same dimension."""
    from ...analysis import dct_diagonal_subspaces, random_subspace

    c, h, w = shape
    if args.block > min(h, w):
        raise SystemExit(f"--block {args.block} is larger than the images ({h}x{w})")
    subspaces = dct_diagonal_subspaces(h, w, block=args.block, step=args.step)
    spaces = [(f"{sub.rows[0]}-{sub.rows[1] - 1}", sub) for sub in subspaces]
    if not args.no_control:
        gen = torch.Generator().manual_seed(args.seed)
        spaces.append(("random", random_subspace(shape, c * args.block**2, generator=gen, device=device)))
    return spaces


def _margins(
    spaces: list, images: torch.Tensor, transform: Callable, args: argparse.Namespace, s: Setup
) -> tuple[torch.Tensor, float]:
    """The margins ``(subspaces, images)`` (``inf`` where DeepFool did not reach the boundary) and the
    seconds the attacks took."""
    from ...analysis import subspace_margin

    margins = torch.full((len(spaces), len(images)), float("nan"))
    seconds = 0.0
    steps = [(i, j) for j in range(0, len(images), args.batch_size) for i in range(len(spaces))]
    for i, start in s.tqdm(steps, desc="margins", unit="subspace-batch"):
        x = transform(s.to_float(images[start : start + args.batch_size]))
        m, dt = s.timed(
            lambda x=x, sub=spaces[i][1]: subspace_margin(
                s.model, x, sub, candidates=args.candidates, overshoot=args.overshoot,
                max_iter=args.max_iter,
            )
        )  # fmt: skip
        seconds += dt
        margins[i, start : start + len(x)] = m.cpu()
    return margins, seconds


def _record(name: str, sub: Any, margins: torch.Tensor, shape: tuple[int, int, int]) -> dict[str, Any]:
    """A subspace's entry of ``margins.json``: its frequencies, dimension, summary and every margin."""
    from ...analysis import margin_summary

    mv = margins.double().numpy()
    summary = margin_summary(mv)
    summary.pop("images")
    return {
        "subspace": name,
        "rows": list(getattr(sub, "rows", (None, None))),
        "cols": list(getattr(sub, "cols", (None, None))),
        "dim": sub.dim(shape),
        **summary,
        "margins": [float(v) if np.isfinite(v) else None for v in mv],
    }


def _markdown(per_subspace: list[dict[str, Any]]) -> str:
    rows = [
        [r["subspace"], r["dim"], _f(r["median"]), _f(r["p25"]), _f(r["p75"]), f"{r['unreached_pct']:.1f}"]
        for r in per_subspace
    ]
    return _common.table(rows, ["DCT frequencies", "dim", "median margin", "p25", "p75", "% unreached"])


def _f(v: float) -> str:
    return "inf" if not np.isfinite(v) else f"{v:.3f}"


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
