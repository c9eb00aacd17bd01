"""Copy the full-CIFAR-10 study's models into ``prime_augment/data/models/`` for ``prime-augment demo``.

    python tools/make_demo_models.py standard=runs/study/standard_s0 augmix=runs/study/augmix_s0 \
        prime=runs/study/prime_s0 prime_jsd=runs/study/prime_jsd_s0

Each ``KEY=RUN_DIR`` is a finished ``prime-augment train`` run: its ``model.pt`` is copied unchanged to
``KEY.pt`` and ``provenance.json`` records, per model, the run's resolved options, environment (versions,
device, date, command line) and the training time from ``log.jsonl``. No accuracy is stored: the demo
computes every number it shows.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = (
    "dataset",
    "arch",
    "augment",
    "jsd",
    "jsd_weight",
    "preset",
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "schedule",
    "seed",
    "threads",
    "workers",
    "augment_on",
    "train_subset",
)


def provenance(run: Path) -> dict:
    cfg = json.loads((run / "config.json").read_text())
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    return {
        "run": run.name,
        "options": {k: cfg["options"].get(k) for k in OPTIONS},
        "environment": cfg["environment"],
        "train_seconds": sum(float(e["seconds"]) for e in log),
        "epochs_logged": len(log),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", metavar="KEY=RUN_DIR")
    ap.add_argument("--out", default=str(ROOT / "prime_augment" / "data" / "models"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {}
    for item in args.runs:
        key, _, run = item.partition("=")
        run_dir = Path(run)
        if not (run_dir / "model.pt").is_file():
            raise SystemExit(f"{run_dir}: no model.pt (is the run finished?)")
        shutil.copyfile(run_dir / "model.pt", out / f"{key}.pt")
        record[key] = provenance(run_dir)
        print(f"{key}: {run_dir / 'model.pt'} -> {out / (key + '.pt')}")
    (out / "provenance.json").write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
