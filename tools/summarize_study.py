"""Summarise the full-CIFAR-10 study: the run records, a markdown table, a JSON summary and a plot.

    python tools/summarize_study.py runs/study --out docs/results/cifar10_full

For every run folder of ``runs/study`` that holds ``eval/results.json`` (``prime-augment evaluate``'s
output) this copies the run's records (``config.json``, ``log.jsonl``, ``train.log``, ``eval/results.json``,
``eval/results.md``; never the weights or the data) to ``OUT/<run>/`` and writes ``OUT/summary.json``,
``OUT/summary.md`` (clean and corruption accuracy, per severity, per corruption family, training time;
the mean and the spread over seeds of an arm) and ``OUT/study.png``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
from pathlib import Path

#: Hendrycks & Dietterich's four families of the 15 benchmark corruptions
FAMILIES = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"),
    "weather": ("snow", "frost", "fog", "brightness"),
    "digital": ("contrast", "elastic_transform", "pixelate", "jpeg_compression"),
}
RECORDS = ("config.json", "log.jsonl", "train.log", "eval/results.json", "eval/results.md")
#: the method's own table (ResNet-18, full schedule; clean / CIFAR-10-C accuracy), for the comparison
PAPER = {"standard": (95.0, 74.0), "augmix": (95.2, 88.6), "prime": (94.2, 89.8)}


def arm_of(run: str) -> str:
    """``prime_s1`` -> ``prime`` (the seed suffix dropped)."""
    return re.sub(r"_s\d+$", "", run)


def load_run(run: Path) -> dict:
    res = json.loads((run / "eval" / "results.json").read_text())
    cfg = json.loads((run / "config.json").read_text())
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    per = res["per_corruption"]
    return {
        "run": run.name,
        "arm": arm_of(run.name),
        "seed": cfg["options"]["seed"],
        "augment": cfg["options"]["augment"],
        "jsd": cfg["options"]["jsd"],
        "epochs": len(log),
        "train_hours": sum(float(e["seconds"]) for e in log) / 3600.0,
        "images_per_s": statistics.median(float(e["images_per_s"]) for e in log),
        "clean": res["clean_accuracy"],
        "clean_same_images": res.get("clean_accuracy_same_images"),
        "corrupted": res["corruption_accuracy"],
        "per_severity": res["per_severity"],
        "families": {f: statistics.mean(statistics.mean(per[c]) for c in cs) for f, cs in FAMILIES.items()},
        "per_corruption": {c: statistics.mean(v) for c, v in per.items()},
        "device": cfg["environment"].get("device_name"),
        "date": cfg["environment"].get("date"),
    }


def _fmt(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def by_arm(runs: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in runs:
        out.setdefault(r["arm"], []).append(r)
    return out


def markdown(runs: list[dict]) -> str:
    arms = by_arm(runs)
    lines = [
        "| arm | seeds | clean (10,000) | clean (same 2,000) | corrupted | s1 | s2 | s3 | s4 | s5 "
        "| noise | blur "
        "| weather | digital | train h (wall clock, 1 thread, shared CPU) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arm, rs in arms.items():
        cells = [
            arm,
            ", ".join(str(r["seed"]) for r in rs),
            _fmt([r["clean"] for r in rs]),
            _fmt(
                [r["clean_same_images"] for r in rs if r["clean_same_images"] is not None] or [float("nan")]
            ),
            _fmt([r["corrupted"] for r in rs]),
            *(_fmt([r["per_severity"][k] for r in rs]) for k in range(5)),
            *(_fmt([r["families"][f] for r in rs]) for f in FAMILIES),
            _fmt([r["train_hours"] for r in rs]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "| corruption | " + " | ".join(arms) + " |",
        "|---|" + "---|" * len(arms),
    ]
    for c in runs[0]["per_corruption"]:
        lines.append(
            f"| {c} | "
            + " | ".join(_fmt([r["per_corruption"][c] for r in rs]) for rs in arms.values())
            + " |"
        )
    return "\n".join(lines) + "\n"


def plot(runs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    for arm, rs in by_arm(runs).items():
        ax1.scatter([r["clean"] for r in rs], [r["corrupted"] for r in rs], label=arm, s=40)
        sev = [statistics.mean(r["per_severity"][k] for r in rs) for k in range(5)]
        clean = statistics.mean(r["clean"] for r in rs)
        ax2.plot(range(6), [clean, *sev], marker="o", label=arm)
    ax1.set_xlabel("clean accuracy (%), 10,000 test images")
    ax1.set_ylabel("corruption accuracy (%), 15 corruptions x 5 severities")
    ax1.set_title("cifar_resnet8, 10 epochs on all of CIFAR-10 (one point per seed)", fontsize=9)
    ax1.legend(fontsize=8)
    ax2.set_xticks(range(6), ["clean", "1", "2", "3", "4", "5"])
    ax2.set_xlabel("severity")
    ax2.set_ylabel("accuracy (%)")
    ax2.set_title("accuracy by severity (mean over corruptions and seeds)", fontsize=9)
    ax2.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", help="folder of the study's run folders")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    out = Path(args.out)
    runs = []
    for run in sorted(Path(args.runs).iterdir()):
        if not (run / "eval" / "results.json").is_file():
            continue
        runs.append(load_run(run))
        for rec in RECORDS:
            if (run / rec).is_file():
                (out / run.name / rec).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(run / rec, out / run.name / rec)
    if not runs:
        raise SystemExit(f"{args.runs}: no evaluated run (RUN/eval/results.json)")
    order = ["standard", "augmix", "prime", "prime_jsd", "reference", "reference_centre"]
    runs.sort(key=lambda r: (order.index(r["arm"]) if r["arm"] in order else len(order), r["seed"]))
    (out / "summary.json").write_text(json.dumps({"runs": runs, "paper_resnet18": PAPER}, indent=2) + "\n")
    (out / "summary.md").write_text(markdown(runs))
    plot(runs, out / "study.png")
    print((out / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
