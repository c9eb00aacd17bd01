"""Every example runs on tiny synthetic data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

EXAMPLES = {
    "dataset_compose.py": ["--synthetic", "40", "--batches", "2"],
    "gpu_batch_jsd.py": ["--synthetic", "16", "--steps", "2", "--batch-size", "8", "--device", "cpu"],
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_runs(name):
    res = subprocess.run([sys.executable, str(ROOT / "examples" / name), *EXAMPLES[name]],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip()


def test_every_example_is_tested():
    assert {p.name for p in (ROOT / "examples").glob("*.py")} <= set(EXAMPLES)


BENCHMARKS = {
    "throughput.py": ["--device", "cpu", "--quick"],
    "training_overhead.py": ["--device", "cpu", "--quick"],
    "cpu_per_image.py": ["--repeats", "2", "--warmup", "1", "--sizes", "32"],
}


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_benchmark_smoke(name, tmp_path):
    """The benchmarks run (tiny settings) and write their JSON with the environment."""
    out = tmp_path / "r.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / name), *BENCHMARKS[name], "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["results"] and "device_name" in data["environment"] and "date" in data["environment"]
