"""Every example runs on tiny synthetic data."""

from __future__ import annotations

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
