"""``prime-augment strength-sweep``: train with PRIME at several strengths and plot robustness vs accuracy.

For each ``alpha`` of ``--alphas`` (the strength multiplier of every primitive, the method's alpha of
§5.4.3; ``0`` is standard training), runs ``prime-augment train --augment prime --strength alpha`` into
``OUT/alpha_<alpha>`` with the other options passed through, evaluates on ``--corruptions-dir``, and
draws ``OUT/sweep.png``: clean and corruption accuracy against alpha, and corruption accuracy against
clean accuracy (the robustness-accuracy trade-off of the method's Fig. 5.4). ``OUT/sweep.json`` and
``OUT/sweep.md`` hold the numbers. Rerunning the command resumes: finished runs are reused, interrupted
ones continue from their checkpoints.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._common import PlainHelpFormatter, table, write_json, write_text

EXAMPLE = """Example:
  prime-augment strength-sweep --alphas 0,0.25,0.5,1,2 --out runs/sweep --corruptions-dir data/cifar10-c \\
      -- --dataset cifar10 --data-dir ~/data --epochs 30 --device cuda
Everything after '--' goes to 'prime-augment train' (not --augment, --strength, --out, --resume).
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="prime-augment strength-sweep",
        description=__doc__,
        epilog=EXAMPLE,
        formatter_class=PlainHelpFormatter,
    )
    p.add_argument("--alphas", required=True, help="comma-separated strengths, e.g. 0,0.5,1,2")
    p.add_argument("--out", required=True, help="sweep folder (one run per alpha inside)")
    p.add_argument("--corruptions-dir", required=True, help="corruption set for the evaluation")
    p.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then options of prime-augment train")
    return p


def parse_alphas(text: str) -> list[float]:
    try:
        alphas = [float(a) for a in text.split(",") if a.strip()]
    except ValueError as e:
        raise SystemExit(f"--alphas {text!r}: expected comma-separated numbers") from e
    if not alphas or not all(0 <= a < math.inf for a in alphas) or len(set(alphas)) != len(alphas):
        raise SystemExit(f"--alphas {text!r}: expected distinct finite numbers >= 0")
    return sorted(alphas)


FORBIDDEN = ("--augment", "--strength", "--out", "--resume", "--corruptions-dir")


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = [r["alpha"] for r in rows]
    clean = [r["clean_accuracy"] for r in rows]
    corr = [r["corruption_accuracy"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    ax1.plot(a, clean, "o-", label="clean")
    ax1.plot(a, corr, "s-", label="common corruptions")
    ax1.set_xlabel("PRIME strength alpha")
    ax1.set_ylabel("accuracy (%)")
    ax1.legend()
    ax2.plot(clean, corr, "o-", color="tab:purple")
    for x, y, al in zip(clean, corr, a, strict=True):
        ax2.annotate(f"alpha={al:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax2.set_xlabel("clean accuracy (%)")
    ax2.set_ylabel("corruption accuracy (%)")
    ax2.set_title("robustness vs accuracy")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    alphas = parse_alphas(args.alphas)
    rest = list(args.train_args)
    if rest and rest[0] == "--":
        rest = rest[1:]
    bad = [a for a in rest if a.split("=")[0] in FORBIDDEN]
    if bad:
        raise SystemExit(f"strength-sweep sets {FORBIDDEN} itself; remove {bad} from the train options")
    from ..benchmark import train

    out = Path(args.out)
    rows = []
    for alpha in alphas:
        run = out / f"alpha_{alpha:g}"
        results = run / "eval" / "results.json"
        if not results.exists():
            argv_run = [
                *rest,
                "--augment",
                "prime",
                "--strength",
                f"{alpha:g}",
                "--out",
                str(run),
                "--corruptions-dir",
                args.corruptions_dir,
            ]
            if (run / "checkpoint.pt").exists():
                argv_run.append("--resume")
            print(f"strength-sweep: alpha={alpha:g} -> {run}", file=sys.stderr)
            train.main(argv_run)
        res = json.loads(results.read_text())
        rows.append(
            {
                "alpha": alpha,
                "run": str(run),
                "clean_accuracy": res["clean_accuracy"],
                "corruption_accuracy": res["corruption_accuracy"],
                "mce": res["mce"],
            }
        )
    write_json(out / "sweep.json", {"alphas": alphas, "runs": rows, "train_options": rest})
    md = table(
        [[f"{r['alpha']:g}", r["clean_accuracy"], r["corruption_accuracy"], r["mce"]] for r in rows],
        ["alpha", "clean acc (%)", "corruption acc (%)", "mCE"],
    )
    write_text(out / "sweep.md", "# PRIME strength sweep\n\n" + md + "\n")
    _plot(rows, out / "sweep.png")
    print(md)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
