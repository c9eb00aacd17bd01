"""Every example runs on tiny synthetic data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

EXAMPLES = {
    "dataset_compose.py": ["--synthetic", "40", "--batches", "2"],
    "gpu_batch_jsd.py": ["--synthetic", "16", "--steps", "2", "--batch-size", "8", "--device", "cpu"],
    "jsd_training.py": ["--synthetic", "16", "--steps", "2", "--batch-size", "8", "--workers", "1",
                        "--arch", "cifar_resnet8", "--device", "cpu"],
    "timm_style_loop.py": ["--synthetic", "16", "--img-size", "32", "--preset", "cifar10", "--model",
                           "cifar_resnet8", "--epochs", "1", "--batch-size", "8", "--workers", "0",
                           "--log-interval", "1", "--device", "cpu"],
    "sparsefool_attack.py": ["--synthetic", "3", "--max-iter", "5", "--device", "cpu"],
    "margins.py": ["--synthetic", "3", "--block", "16", "--step", "16", "--max-iter", "20",
                   "--device", "cpu"],
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_runs(name):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # tiny tensors: one thread, as conftest sets in-process
    res = subprocess.run([sys.executable, str(ROOT / "examples" / name), *EXAMPLES[name]],
                         capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
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
