"""``prime-augment filling-level-sweep``: the filling-level studies of §5.5 as resumable sweeps.

Three sub-commands, each running ``prime-augment filling-level`` over ``--splits`` x ``--seeds`` and
writing ``OUT/<kind>.json`` (every run and the mean / std over seeds), ``OUT/<kind>.md`` (tables) and
``OUT/<kind>.png``:

* ``strategies`` — training strategies side by side (built in: ``plain`` = ``--augment none``,
  ``prime`` = ``--augment prime``, the ``ccm`` preset; more with ``--strategy NAME=OPTIONS``, e.g.
  ``--strategy "finetune=--weights w.pt --freeze-blocks 3"``, ``--strategy "at=--augment none --adversarial
  l2"``): mean accuracy per split and the
  per-container accuracy chart of the method's Fig. 5.10;
* ``depth`` — PRIME with chain depth ``m`` in ``--depths`` (the method's Tab. 5.7), accuracy vs ``m``;
* ``beta`` — PRIME with the final mix ``p ~ Beta(alpha, beta)`` over the grid ``--alphas`` x ``--betas``,
  a heat-map per split (the method's Fig. 5.9).

``--with-plain`` adds plain training to ``depth`` and ``beta`` as the reference (dashed lines, titles).

Everything after ``--`` is passed to every run (``--epochs``, ``--arch``, ``--device``, ...). A run is
identified by its resolved options: its folder ``OUT/runs/<label>-<hash>/<split>/seed<k>`` is shared by
every sweep writing to the same ``OUT`` (``prime`` of ``strategies``, ``m = 3`` of ``depth`` and
``Beta(5, 1)`` of ``beta`` are one run). Rerunning a sweep resumes it: finished runs (with a
``results.json``) are skipped, interrupted ones continue from their checkpoints.

The grids select nothing by themselves: they report test accuracy for every setting. Choosing a setting
from these numbers is tuning on the test containers; do it on a validation split instead (e.g. a manifest
whose test containers are held-out *training* containers) if the result is to be reported.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._common import PlainHelpFormatter, table, write_json, write_text
from . import filling_level
from .containers import SPLITS

EXAMPLE = """Examples (options after '--' go to every 'prime-augment filling-level' run):
  prime-augment filling-level-sweep strategies --manifest data/containers/manifest.csv --out runs/fl \\
      --splits S1,S2,S3 --seeds 0,1,2 -- --epochs 30 --device cuda
  prime-augment filling-level-sweep depth --depths 1,2,3 --with-plain --manifest ... --out runs/fl \\
      -- --epochs 30
  prime-augment filling-level-sweep beta --alphas 1,2,5,6 --betas 1,2,3 --manifest ... --out runs/fl \\
      -- --epochs 30
  ... strategies --strategy "prime-b62=--augment prime --alpha 6 --beta 2" --strategies plain,prime,prime-b62
Rerun the same command to resume (finished runs are skipped).
"""

BUILTIN_STRATEGIES = {"plain": ["--augment", "none"], "prime": ["--augment", "prime"]}
#: options every sweep sets itself
SWEEP_OWNS = ("--manifest", "--split", "--seed", "--out", "--resume", "--config")
#: the options of adversarial training (left out of a run's key when it has none)
ADVERSARIAL_KEYS = ("adversarial", "adv_eps", "adv_steps", "adv_step_size", "adv_no_random_start", "adv_bn")
#: options of the resolved config that do not change a run's result
NOT_IN_KEY = (
    "out",
    "resume",
    "seed",
    "split",
    "no_progress",
    "workers",
    "device",
    "eval_batch_size",
    "config",
)


# ---------------------------------------------------------------------------------------------- parsing
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="prime-augment filling-level-sweep",
        description=__doc__,
        epilog=EXAMPLE,
        formatter_class=PlainHelpFormatter,
    )
    sub = p.add_subparsers(dest="kind", required=True, metavar="{strategies,depth,beta}")

    def common(name: str, help_: str) -> argparse.ArgumentParser:
        q = sub.add_parser(
            name,
            help=help_,
            description=help_,
            epilog=EXAMPLE,
            formatter_class=PlainHelpFormatter,
        )
        q.add_argument("--manifest", required=True, help="the filling-level manifest CSV")
        q.add_argument("--out", required=True, help="sweep folder (runs/ inside, shared by the sweeps)")
        q.add_argument("--splits", default="S1,S2,S3", help="comma-separated splits (default S1,S2,S3)")
        q.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
        q.add_argument("run_args", nargs=argparse.REMAINDER, help="-- then options of filling-level")
        return q

    s = common("strategies", "strategies side by side: accuracy per split and per test container")
    s.add_argument("--strategies", default="plain,prime", help="names to run (default plain,prime)")
    s.add_argument(
        "--strategy",
        action="append",
        default=[],
        metavar="NAME=OPTIONS",
        help="define a strategy by its filling-level options (repeatable)",
    )
    d = common("depth", "PRIME chain depth m (Tab. 5.7)")
    d.add_argument("--depths", default="1,2,3", help="comma-separated depths (default 1,2,3)")
    b = common("beta", "PRIME Beta(alpha, beta) mixing grid, heat-map (Fig. 5.9)")
    b.add_argument("--alphas", default="1,2,5,6", help="comma-separated alpha values")
    b.add_argument("--betas", default="1,2,3", help="comma-separated beta values")
    for q in (d, b):
        q.add_argument("--with-plain", action="store_true", help="also run plain training, as the reference")
    return p


def _numbers(text: str, what: str, cast: type, low: float) -> list:
    try:
        vals = [cast(v) for v in text.split(",") if v.strip()]
    except ValueError as e:
        raise SystemExit(f"--{what} {text!r}: expected comma-separated numbers") from e
    if not vals or len(set(vals)) != len(vals) or any(not low < v < math.inf for v in vals):
        raise SystemExit(f"--{what} {text!r}: expected distinct finite values > {low:g}")
    return vals


def _splits(text: str) -> list[str]:
    vals = [v.strip() for v in text.split(",") if v.strip()]
    if not vals or any(v not in SPLITS for v in vals) or len(set(vals)) != len(vals):
        raise SystemExit(f"--splits {text!r}: expected distinct names among {SPLITS}")
    return vals


def _strategies(names: str, defs: Sequence[str]) -> list[tuple[str, list[str]]]:
    known = {k: list(v) for k, v in BUILTIN_STRATEGIES.items()}
    for d in defs:
        name, sep, opts = d.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[A-Za-z0-9_.+-]+", name):
            raise SystemExit(f"--strategy {d!r}: expected NAME=OPTIONS with NAME of letters, digits, _.+-")
        known[name] = shlex.split(opts)
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    bad = [n for n in chosen if n not in known]
    if not chosen or bad:
        raise SystemExit(
            f"--strategies {names!r}: unknown {bad} (known: {sorted(known)}; add --strategy NAME=...)"
        )
    return [(n, known[n]) for n in chosen]


def _passthrough(rest: Sequence[str], owned: Sequence[str]) -> list[str]:
    rest = list(rest)
    if rest and rest[0] == "--":
        rest = rest[1:]
    bad = [a for a in rest if a.split("=")[0] in owned]
    if bad:
        raise SystemExit(f"the sweep sets {tuple(owned)} itself; remove {bad} from the run options")
    return rest


# ---------------------------------------------------------------------------------------------- runs
def run_key(argv: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """``(folder name, resolved options)`` of a run: a readable label + a hash of what changes its result."""
    cfg = filling_level.resolve(filling_level.build_parser().parse_args(list(argv)))
    key = {k: v for k, v in cfg.items() if k not in NOT_IN_KEY}
    if key["augment"] == "none":
        label = "plain"
        for k in ("preset", "alpha", "beta", "depth", "width", "strength", "primitives", "augment_on", "jsd"):
            key.pop(k, None)
    else:
        label = f"prime_a{key['alpha']:g}_b{key['beta']:g}_m{key['depth']}"
    if key.get("adversarial", "none") == "none":  # runs without AT keep the keys (and folders) they had
        for k in ADVERSARIAL_KEYS:
            key.pop(k, None)
    else:
        label = f"at-{key['adversarial']}{key['adv_eps']:.3g}_{label}"
    digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{label}-{digest}", key


def run_grid(
    out: Path,
    manifest: str,
    settings: Sequence[tuple[str, list[str]]],
    splits: Sequence[str],
    seeds: Sequence[int],
    common: Sequence[str],
) -> list[dict[str, Any]]:
    """Run (or reuse) every (setting, split, seed); one row per run with its accuracy and per-container
    accuracy."""
    rows = []
    total = len(settings) * len(splits) * len(seeds)
    k = 0
    for name, extra in settings:
        for split in splits:
            for seed in seeds:
                k += 1
                base = [*common, *extra, "--manifest", manifest, "--split", split, "--seed", str(seed)]
                folder, _ = run_key([*base, "--out", "x"])
                run = out / "runs" / folder / split / f"seed{seed}"
                results = run / "results.json"
                if results.exists():
                    print(f"[{k}/{total}] {name} {split} seed {seed}: done ({run})", file=sys.stderr)
                else:
                    argv = [*base, "--out", str(run)]
                    if (run / "checkpoint.pt").exists():
                        argv.append("--resume")
                    print(f"[{k}/{total}] {name} {split} seed {seed} -> {run}", file=sys.stderr)
                    filling_level.main(argv)
                res = json.loads(results.read_text())
                rows.append(
                    {
                        "setting": name,
                        "split": split,
                        "seed": seed,
                        "run": str(run),
                        "accuracy": res["accuracy"],
                        "val_accuracy": (res.get("selection") or {}).get("val_accuracy"),
                        "per_container": res["per_container"],
                    }
                )
    return rows


def aggregate(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{setting: {split: {mean, std, n, per_container: {c: mean}, per_container_std}}}`` (std: ddof 1)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        d = out.setdefault(r["setting"], {}).setdefault(r["split"], {"acc": [], "val": [], "pc": []})
        d["acc"].append(r["accuracy"])
        d["pc"].append(r["per_container"])
        if r.get("val_accuracy") is not None:
            d["val"].append(r["val_accuracy"])
    for per_split in out.values():
        for split, d in per_split.items():
            acc = np.asarray(d["acc"])
            conts = sorted(d["pc"][0])
            pcs = np.asarray([[p[c] for c in conts] for p in d["pc"]])
            per_split[split] = {
                "mean": float(acc.mean()),
                "std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                "n": len(acc),
                "accuracies": acc.tolist(),
                "val_mean": float(np.mean(d["val"])) if d["val"] else None,
                "per_container": dict(zip(conts, pcs.mean(0).tolist(), strict=True)),
                "per_container_std": dict(
                    zip(conts, (pcs.std(0, ddof=1) if len(acc) > 1 else 0 * pcs[0]).tolist(), strict=True)
                ),
            }
    return out


def _pm(d: dict[str, Any]) -> str:
    return f"{d['mean']:.2f} ± {d['std']:.2f} (n={d['n']})"


def _val(d: dict[str, Any]) -> str:
    return "-" if d["val_mean"] is None else f"{d['val_mean']:.2f}"


# ---------------------------------------------------------------------------------------------- plots
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_strategies(agg: dict, splits: Sequence[str], path: Path) -> None:
    """Per-container accuracy of every strategy (bars: mean over seeds, whiskers: std), a panel per split."""
    plt = _plt()
    names = list(agg)
    fig, axes = plt.subplots(
        len(splits),
        1,
        figsize=(
            max(6.0, 0.9 * max(len(agg[names[0]][s]["per_container"]) for s in splits) + 2),
            2.8 * len(splits),
        ),
        layout="constrained",
        squeeze=False,
    )
    width = 0.8 / len(names)
    for ax, split in zip(axes[:, 0], splits, strict=True):
        conts = list(agg[names[0]][split]["per_container"])
        x = np.arange(len(conts))
        for i, n in enumerate(names):
            d = agg[n][split]
            ax.bar(
                x + (i - (len(names) - 1) / 2) * width,
                [d["per_container"][c] for c in conts],
                width,
                yerr=[d["per_container_std"][c] for c in conts],
                capsize=2,
                label=f"{n} ({d['mean']:.1f}%)",
            )
        ax.set_xticks(x, conts, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 100)
        ax.set_ylabel("accuracy (%)")
        ax.set_title(f"split {split}: test containers", fontsize=10, loc="right")
        ax.legend(fontsize=8, ncols=len(names), loc="lower left", bbox_to_anchor=(0, 1), frameon=False)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_depth(agg: dict, depths: Sequence[int], splits: Sequence[str], path: Path) -> None:
    """Accuracy (mean, std whiskers) against the depth, a line per split; plain training dashed."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
    for split in splits:
        m = [agg[f"m={d}"][split]["mean"] for d in depths]
        s = [agg[f"m={d}"][split]["std"] for d in depths]
        line = ax.errorbar(depths, m, yerr=s, marker="o", capsize=3, label=split)
        if "plain" in agg:
            ax.axhline(agg["plain"][split]["mean"], ls="--", lw=1, color=line[0].get_color())
    ax.set_xticks(list(depths))
    ax.set_xlabel("PRIME depth m")
    ax.set_ylabel("test accuracy (%)")
    ax.legend()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_beta(
    agg: dict, alphas: Sequence[float], betas: Sequence[float], splits: Sequence[str], path: Path
) -> None:
    """Heat-maps of the mean test accuracy over the (alpha, beta) grid, one per split."""
    plt = _plt()
    fig, axes = plt.subplots(
        1, len(splits), figsize=(1.0 + 3.2 * len(splits), 3.4), layout="constrained", squeeze=False
    )
    grids = {
        s: np.array([[agg[f"a={a:g},b={b:g}"][s]["mean"] for b in betas] for a in alphas]) for s in splits
    }
    lo = min(g.min() for g in grids.values())
    hi = max(g.max() for g in grids.values())
    im = None
    for ax, split in zip(axes[0], splits, strict=True):
        g = grids[split]
        im = ax.imshow(g, cmap="viridis", vmin=lo, vmax=hi, origin="lower", aspect="auto")
        for i in range(len(alphas)):
            for j in range(len(betas)):
                ax.text(
                    j,
                    i,
                    f"{g[i, j]:.1f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if g[i, j] < (lo + hi) / 2 else "black",
                )
        ax.set_xticks(range(len(betas)), [f"{b:g}" for b in betas])
        ax.set_yticks(range(len(alphas)), [f"{a:g}" for a in alphas])
        ax.set_xlabel("beta")
        ax.set_ylabel("alpha")
        ref = f" (plain {agg['plain'][split]['mean']:.1f})" if "plain" in agg else ""
        ax.set_title(f"{split}: test accuracy (%){ref}", fontsize=10)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.9)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    splits = _splits(args.splits)
    seeds = _numbers(args.seeds, "seeds", int, -1)
    out = Path(args.out)
    manifest = str(Path(args.manifest).resolve())
    kind = args.kind
    if kind == "strategies":
        common = _passthrough(args.run_args, SWEEP_OWNS)
        settings = _strategies(args.strategies, args.strategy)
        for _, opts in settings:
            _passthrough(opts, SWEEP_OWNS)  # a strategy may not set the sweep's own options either
    elif kind == "depth":
        common = _passthrough(args.run_args, (*SWEEP_OWNS, "--depth", "--augment"))
        depths = _numbers(args.depths, "depths", int, 0)
        settings = [(f"m={d}", ["--augment", "prime", "--depth", str(d)]) for d in depths]
    else:
        common = _passthrough(args.run_args, (*SWEEP_OWNS, "--alpha", "--beta", "--augment"))
        alphas = _numbers(args.alphas, "alphas", float, 0)
        betas = _numbers(args.betas, "betas", float, 0)
        settings = [
            (f"a={a:g},b={b:g}", ["--augment", "prime", "--alpha", f"{a:g}", "--beta", f"{b:g}"])
            for a in alphas
            for b in betas
        ]
    if kind != "strategies" and args.with_plain:
        settings.append(("plain", ["--augment", "none"]))
    rows = run_grid(out, manifest, settings, splits, seeds, common)
    agg = aggregate(rows)
    header = ["setting", *splits]
    summary = table([[name, *(_pm(agg[name][s]) for s in splits)] for name, _ in settings], header)
    val = table([[name, *(_val(agg[name][s]) for s in splits)] for name, _ in settings], header)
    md = [
        f"# Filling-level sweep: {kind}",
        "",
        "Test accuracy (%) on the unseen containers, mean ± std over seeds:",
        "",
        summary,
        "",
        "Validation accuracy (%) of the selected epochs (held-out *training* containers), mean over seeds;",
        "choose settings on this table, not on the test accuracy:",
        "",
        val,
        "",
    ]
    if kind == "strategies":
        for split in splits:
            conts = list(agg[settings[0][0]][split]["per_container"])
            rows_pc = [[c, *(agg[n][split]["per_container"][c] for n, _ in settings)] for c in conts]
            md += [
                f"## {split}: per test container (mean over seeds)",
                "",
                table(rows_pc, ["container", *(n for n, _ in settings)]),
                "",
            ]
        plot_strategies(agg, splits, out / "strategies.png")
    elif kind == "depth":
        plot_depth(agg, depths, splits, out / "depth.png")
    else:
        plot_beta(agg, alphas, betas, splits, out / "beta.png")
    md += [f"Runs under {out / 'runs'}; options of every run: {' '.join(common) or '(defaults)'}.", ""]
    write_json(
        out / f"{kind}.json",
        {
            "kind": kind,
            "manifest": manifest,
            "splits": splits,
            "seeds": seeds,
            "settings": {n: opts for n, opts in settings},
            "run_options": common,
            "summary": agg,
            "runs": rows,
        },
    )
    write_text(out / f"{kind}.md", "\n".join(md))
    print(f"test accuracy (%):\n{summary}\nvalidation accuracy (%):\n{val}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
