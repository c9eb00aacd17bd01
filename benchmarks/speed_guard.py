"""The redesign's speed guard: this checkout against a baseline commit, same machine, alternating runs.

    git worktree add /tmp/base 8fca90b        # the baseline, once
    python benchmarks/speed_guard.py --base /tmp/base [--rounds 2] [--repeats 200]

Runs ``benchmarks/cpu_per_image.py`` (this checkout's script, so both sides are measured by the same
code) ``--rounds`` times on each side, alternating baseline and this checkout, with ``PYTHONPATH``
pointing at the package under test. Each run writes its own JSON under ``--out``; the table compares
every case (image size x transform) as the ratio of medians, this checkout / baseline, per round and
over the rounds (median of the per-run medians on each side), against the limit (1.25x). The
reference-style baseline row is not compared (it does not depend on the package's speed work).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_json

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SKIP = "reference-style"


def _run(root: Path, out: Path, repeats: int) -> dict[tuple[int, str], float]:
    """One cpu_per_image run with the package at ``root``: median ms per (size, case)."""
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(HERE / "cpu_per_image.py"), "--repeats", str(repeats), "--out", str(out)]
    subprocess.run(cmd, env=env, check=True, cwd=root, stdout=subprocess.DEVNULL)
    data = json.loads(out.read_text())
    return {(r["size"], r["case"]): r["median_ms"] for r in data["results"] if SKIP not in r["case"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, type=Path, help="a checkout of the baseline commit")
    ap.add_argument("--rounds", type=int, default=2, help="runs per side, alternating (default 2)")
    ap.add_argument("--repeats", type=int, default=200, help="calls per case and run (default 200)")
    ap.add_argument("--limit", type=float, default=1.25, help="largest acceptable ratio (default 1.25)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "speed_guard")
    args = ap.parse_args(argv)
    if not (args.base / "prime_augment" / "__init__.py").is_file():
        ap.error(f"--base must be a checkout holding prime_augment/, got {args.base}")
    args.out.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[dict[tuple[int, str], float]]] = {"base": [], "new": []}
    for r in range(args.rounds):
        for side, root in (("base", args.base.resolve()), ("new", ROOT)):
            print(f"round {r + 1}/{args.rounds}: {side} ({root})", flush=True)
            runs[side].append(_run(root, args.out / f"{side}_run{r + 1}.json", args.repeats))
    rows, results = [], []
    for key in runs["base"][0]:
        base = [run[key] for run in runs["base"]]
        new = [run[key] for run in runs["new"]]
        per_round = [n / b for n, b in zip(new, base, strict=True)]
        ratio = statistics.median(new) / statistics.median(base)
        ok = ratio <= args.limit
        rows.append([f"{key[0]}x{key[0]}", key[1], statistics.median(base), statistics.median(new),
                     " / ".join(f"{x:.2f}" for x in per_round), ratio, "ok" if ok else "OVER"])  # fmt: skip
        results.append({"size": key[0], "case": key[1], "base_ms": base, "new_ms": new,
                        "ratio_per_round": per_round, "ratio": ratio, "within_limit": ok})  # fmt: skip
    header = ["image", "case", "base ms", "new ms", "ratio per round", "ratio", f"<= {args.limit}x"]
    print_table(rows, header)
    base_commit = subprocess.run(["git", "-C", str(args.base), "rev-parse", "HEAD"], capture_output=True,
                                 text=True).stdout.strip()  # fmt: skip
    new_commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                                text=True).stdout.strip()  # fmt: skip
    dirty = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "prime_augment"],
                                capture_output=True, text=True).stdout.strip())  # fmt: skip
    summary = {"base_commit": base_commit, "new_commit": new_commit, "new_uncommitted_changes": dirty,
               "rounds": args.rounds,
               "repeats": args.repeats, "limit": args.limit, "results": results}  # fmt: skip
    write_json(args.out / "summary.json", summary)
    print(f"wrote {args.out / 'summary.json'}")
    return 0 if all(r["within_limit"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
