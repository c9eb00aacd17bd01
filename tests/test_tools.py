"""The maintenance and experiment scripts in ``tools/``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from recipes_fixtures import numpy_dataset

from prime_augment.recipes.benchmark.data import build_data

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_deepaugment_standin_writes_the_training_subset_distorted(tmp_path):
    tool = _load("deepaugment_standin")
    data = numpy_dataset(tmp_path / "data", n_train=40, size=12)
    out = tmp_path / "extra"
    opts = ["--data-dir", str(data), *"--train-subset 30 --seed 3 --chunk 8 --change 0.05".split()]
    assert tool.main([*opts, "--out", str(out)]) == 0
    spec = build_data("numpy", data, train_subset=30, subset_seed=3)
    files = sorted(out.rglob("*.png"))
    assert len(files) == 30
    changes = []
    for f in files:
        i = int(f.stem)
        assert f.parent.name == spec.classes[int(spec.train.labels[i])]  # the subset's label, by name
        new = np.asarray(Image.open(f)).astype(float)
        old = np.asarray(spec.train.images[i]).astype(float)
        assert new.shape == old.shape
        changes.append(np.abs(new - old).mean() / 255)
    assert 0.02 < np.mean(changes) < 0.06  # about --change (clipping and rounding lower it a little)
    # the same seeds give the same images
    again = tmp_path / "again"
    tool.main([*opts, "--out", str(again)])
    for f in files:
        assert np.array_equal(np.asarray(Image.open(f)), np.asarray(Image.open(again / f.relative_to(out))))


def test_deepaugment_standin_distort_scale_and_input_untouched():
    tool = _load("deepaugment_standin")
    x = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25
    before = x.clone()
    y = tool.distort(x, 0.03, torch.Generator().manual_seed(1))
    assert torch.equal(x, before)
    assert y.min() >= 0 and y.max() <= 1
    assert (y - x).abs().mean().item() == pytest.approx(0.03, rel=1e-4)  # no clipping at this range


@pytest.mark.parametrize("bad", [["--change", "0"], ["--chunk", "0"]])
def test_deepaugment_standin_rejects_bad_options(tmp_path, bad):
    tool = _load("deepaugment_standin")
    data = numpy_dataset(tmp_path / "data", n_train=8, size=8)
    with pytest.raises(SystemExit, match=bad[0]):
        tool.main(["--data-dir", str(data), "--out", str(tmp_path / "o"), *bad])
