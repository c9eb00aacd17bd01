"""Margin studies and SparseFool evaluations: synthetic data, orthogonal controls, delta sweep,
transferability, their plots, the ``margin-studies`` command, the sparsefool evaluations and the
benchmark's extra attacks, all on tiny data."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from analysis_fixtures import one_thread  # noqa: F401  (autouse)
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from prime_augment.analysis import (
    DenseSubspace,
    dct2,
    dct_atom,
    delta_sweep,
    discriminative_dataset,
    margin_summary,
    plot_attack_comparison,
    plot_delta_sweep,
    plot_margin_profiles,
    plot_matrix,
    random_subspace,
    subspace_margin,
    summarize_attack,
    transferability,
)
from prime_augment.recipes import _common
from prime_augment.recipes.benchmark.models import build_model, load_model, model_record
from prime_augment.recipes.studies import margin_studies as studies
from prime_augment.recipes.studies import sparsefool as sparsefool_cmd

ROOT = Path(__file__).resolve().parents[1]


def linear(d: int, k: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(d, k))


# ----------------------------------------------------------------------------- synthetic data


@given(c=st.integers(1, 3), h=st.integers(2, 9), w=st.integers(2, 9), data=st.data())
def test_dct_atom_is_one_unit_coefficient(c, h, w, data):
    row, col = data.draw(st.integers(0, h - 1)), data.draw(st.integers(0, w - 1))
    ch = data.draw(st.one_of(st.none(), st.integers(0, c - 1)))
    a = dct_atom((c, h, w), row, col, channel=ch, dtype=torch.float64)
    assert a.shape == (c, h, w) and math.isclose(float(a.norm()), 1.0, rel_tol=1e-9)
    coef = dct2(a)
    expect = torch.zeros(c, h, w, dtype=torch.float64)
    if ch is None:
        expect[:, row, col] = 1 / math.sqrt(c)
    else:
        expect[ch, row, col] = 1.0
    assert torch.allclose(coef, expect, atol=1e-9)


def test_dct_atom_errors():
    with pytest.raises(ValueError, match="row"):
        dct_atom((3, 4, 4), 4, 0)
    with pytest.raises(ValueError, match="channel"):
        dct_atom((3, 4, 4), 0, 0, channel=3)
    with pytest.raises(TypeError, match="shape"):
        dct_atom((4, 4), 0, 0)


@given(seed=st.integers(0, 2**16), eps=st.floats(0.1, 5.0), sigma=st.sampled_from([0.0, 0.3, 1.0, 2.0]))
def test_discriminative_dataset_only_u_discriminates(seed, eps, sigma):
    u = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    x, y = discriminative_dataset(64, u, epsilon=eps, sigma=sigma, generator=g)
    un = (u / u.norm()).flatten()
    s = (2 * y - 1).double()
    along = x.flatten(1) @ un
    assert torch.allclose(along, eps * s, atol=1e-9)  # exactly +-eps along u
    rest = x.flatten(1) - along[:, None] * un[None]
    assert torch.allclose(rest @ un, torch.zeros(64, dtype=torch.float64), atol=1e-9)
    assert x.shape == (64, 2, 3, 4) and x.dtype == torch.float64 and set(y.tolist()) <= {0, 1}
    if sigma > 0:  # the noise has the requested spread in the complement (d - 1 dimensions)
        assert 0.5 * sigma < float(rest.std()) < 1.5 * sigma


def test_discriminative_dataset_reproducible_and_errors():
    u = dct_atom((3, 8, 8), 2, 2)
    a = discriminative_dataset(10, u, generator=torch.Generator().manual_seed(1))
    b = discriminative_dataset(10, u, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="non-zero"):
        discriminative_dataset(10, torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="epsilon"):
        discriminative_dataset(10, u, epsilon=0.0)
    with pytest.raises(TypeError, match="direction"):
        discriminative_dataset(10, torch.ones(3, 8, 8, dtype=torch.long))


def test_random_subspace_orthogonal_to():
    v = torch.stack([dct_atom((3, 4, 4), 1, 1), dct_atom((3, 4, 4), 0, 2, channel=1)])
    s = random_subspace((3, 4, 4), 10, orthogonal_to=v, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(s.basis.T @ s.basis, torch.eye(10), atol=1e-5)
    assert float((s.basis.T @ v.flatten(1).T).abs().max()) < 1e-6
    assert random_subspace((3, 4, 4), 46, orthogonal_to=v).basis.shape == (48, 46)
    with pytest.raises(ValueError, match="dim must be <= 46"):
        random_subspace((3, 4, 4), 47, orthogonal_to=v)
    with pytest.raises(ValueError, match="orthogonal_to must have shape"):
        random_subspace((3, 4, 4), 2, orthogonal_to=torch.ones(3, 4, 5))
    with pytest.raises(ValueError, match="non-zero"):
        random_subspace((3, 4, 4), 2, orthogonal_to=torch.zeros(3, 4, 4))


def test_ideal_classifier_margins_on_synthetic_data():
    """The max-margin classifier of the synthetic data: margin eps along u, out of reach orthogonally."""
    shape = (3, 6, 6)
    u = dct_atom(shape, 2, 3)
    x, y = discriminative_dataset(12, u, epsilon=1.5, sigma=0.5, generator=torch.Generator().manual_seed(0))
    lin = nn.Linear(u.numel(), 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.stack([-u.flatten(), u.flatten()]) / 2)
    model = nn.Sequential(nn.Flatten(), lin)
    assert torch.equal(model(x).argmax(1), y)
    along = subspace_margin(model, x, DenseSubspace(u.flatten()[:, None]), candidates=2)
    assert torch.allclose(along, torch.full((12,), 1.5), rtol=1e-4)
    orth = random_subspace(shape, 20, orthogonal_to=u, generator=torch.Generator().manual_seed(0))
    far = subspace_margin(model, x, orth, candidates=2, max_iter=5)  # P_S w ~ 1e-8 in float32
    assert bool((far > 1e6).all())
    rnd = subspace_margin(model, x, random_subspace(shape, 20, generator=torch.Generator().manual_seed(0)))
    assert bool((rnd > 1.5).all())  # eps / ||P u|| > eps


def test_margin_summary():
    s = margin_summary(torch.tensor([3.0, 1.0, float("inf"), 2.0, float("inf")]))
    assert s == {"median": 3.0, "p25": 2.0, "p75": math.inf, "unreached_pct": 40.0, "images": 5}
    assert math.isnan(margin_summary([])["median"])
    with pytest.raises(ValueError, match="NaN"):
        margin_summary([1.0, float("nan")])


# ----------------------------------------------------------------------------- SparseFool evaluations


def test_delta_sweep_bounds_and_sparsity():
    model = linear(48, 3)
    x = torch.rand(8, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    rows = delta_sweep(model, x, [0.02, 0.3, None], max_iter=30)
    assert [r["delta"] for r in rows] == [0.02, 0.3, None] and all(r["images"] == 8 for r in rows)
    for r in rows[:2]:
        if r["median_linf"] is not None:
            assert r["median_linf"] <= r["delta"] + 1e-6
    assert rows[2]["fooling_rate"] == 100.0  # unbounded: a linear model is always fooled
    assert rows[0]["fooling_rate"] <= rows[1]["fooling_rate"] <= 100.0
    with pytest.raises(TypeError, match="deltas"):
        delta_sweep(model, x, [0.1], delta=0.1)
    with pytest.raises(TypeError, match="non-empty"):
        delta_sweep(model, x, [])
    with pytest.raises(ValueError, match="deltas"):
        delta_sweep(model, x, [0.0])


def test_transferability_matrix():
    a, b = linear(48, 3, seed=0), linear(48, 3, seed=1)
    x = torch.rand(16, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    y = a(x).argmax(1).detach()
    both = int((b(x).argmax(1) == y).sum())
    r = transferability({"a": a, "b": b, "a2": a}, x, y)
    assert r["images"] == both and len(r["indices"]) == both
    assert r["models"] == ["a", "b", "a2"]
    for i, row in enumerate(r["fooling_rate"]):
        if r["source_fooling_rate"][r["models"][i]]:
            assert row[i] == 100.0 and all(0.0 <= v <= 100.0 for v in row)
    if r["source_fooling_rate"]["a"]:
        assert r["fooling_rate"][0][2] == 100.0  # the same model
    with pytest.raises(ValueError, match="at least two"):
        transferability({"a": a}, x, y)
    with pytest.raises(TypeError, match="labels"):
        transferability({"a": a, "b": b}, x, None)


def test_new_plots(tmp_path):
    m = torch.rand(3, 5)
    m[0, 0] = float("inf")
    path = plot_margin_profiles({"a": m, "b": m * 2}, tmp_path / "p.png", labels=["x", "y", "z"])
    assert path.stat().st_size
    with pytest.raises(ValueError, match="same S"):
        plot_margin_profiles({"a": m, "b": torch.rand(2, 5)}, tmp_path / "q.png")
    path = plot_delta_sweep([0.1, 0.5], [50.0, 90.0], [None, 1.5], tmp_path / "d.png", unbounded=(99.0, 1.0))
    assert path.stat().st_size
    with pytest.raises(ValueError, match="same length"):
        plot_delta_sweep([0.1], [50.0, 1.0], [1.0], tmp_path / "e.png")
    assert plot_matrix([[100.0, float("nan")], [3.0, 100.0]], ["a", "b"], ["a", "b"], tmp_path / "m.png",
                       title="t").stat().st_size  # fmt: skip
    with pytest.raises(ValueError, match="shape"):
        plot_matrix([[1.0]], ["a", "b"], ["a"], tmp_path / "n.png", title="t")
    r = torch.zeros(2, 1, 2, 2)
    r[0, 0, 0, 0] = 0.5
    summ = summarize_attack(r, torch.tensor([True, False]), seconds=1.0)
    none = summarize_attack(r, torch.tensor([False, False]), seconds=1.0)
    assert plot_attack_comparison({"x": summ, "y": none}, tmp_path / "c.png").stat().st_size


# ----------------------------------------------------------------------------- margin-studies command

TINY = ["--threads", "1", "--no-progress", "--epochs", "1", "--batch-size", "16", "--eval-images", "3",
        "--max-iter", "3", "--candidates", "3", "--block", "4", "--step", "4"]  # fmt: skip


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    """Tiny CIFAR-layout arrays (8x8, 3 classes)."""
    root = tmp_path_factory.mktemp("cifar")
    rng = np.random.default_rng(0)
    for split, n in (("train", 32), ("test", 12)):
        np.save(root / f"{split}_images.npy", rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8))
        np.save(root / f"{split}_labels.npy", rng.integers(0, 3, n).astype(np.int64))
    return root


def test_margin_studies_synthetic(tmp_path):
    out = tmp_path / "o"
    args = ["synthetic", "--out", str(out), "--size", "8", "--frequency", "2", "--train-size", "32", *TINY]
    assert studies.main(args) == 0
    rec = json.loads((out / "synthetic.json").read_text())
    names = [r["subspace"] for r in rec["subspaces"]]
    assert names == ["0-3", "4-7", "u", "random, orthogonal to u", "random (control)"]
    assert [r["dim"] for r in rec["subspaces"]] == [48, 48, 1, 48, 48]
    assert rec["holding_u"] == ["0-3"] and set(rec["checks"]) and isinstance(rec["reproduced"], bool)
    assert "date" in rec["environment"] and rec["config"]["study"] == "synthetic"
    assert (out / "synthetic.png").stat().st_size and "Checks:" in (out / "synthetic.md").read_text()
    model, meta = load_model(out / "synthetic_models" / "synthetic.pt")
    assert meta["num_classes"] == 2 and model(torch.zeros(1, 3, 8, 8)).shape == (1, 2)


def test_margin_studies_flipped(tmp_path, cifar_dir):
    out = tmp_path / "o"
    args = ["flipped", "--out", str(out), "--data-dir", str(cifar_dir), "--test-size", "12", *TINY]
    assert studies.main(args) == 0
    rec = json.loads((out / "flipped.json").read_text())
    assert set(rec["profiles"]) == {"standard", "frequency-flipped"}
    assert [r["subspace"] for r in rec["profiles"]["standard"]] == ["0-3", "4-7", "random (control)"]
    assert all(len(r["margins"]) == 3 for r in rec["profiles"]["standard"])
    assert set(rec["accuracy"]) == {"standard", "frequency-flipped"} and len(rec["checks"]) == 3
    assert (out / "flipped.png").stat().st_size
    assert {p.name for p in (out / "flipped_models").iterdir()} == {"standard.pt", "frequency-flipped.pt"}


def test_margin_studies_forgetting(tmp_path, cifar_dir):
    out = tmp_path / "o"
    args = ["forgetting", "--out", str(out), "--data-dir", str(cifar_dir), "--cutoff", "4",
            "--finetune-epochs", "1", "--test-size", "12", *TINY]  # fmt: skip
    assert studies.main(args) == 0
    rec = json.loads((out / "forgetting.json").read_text())
    assert list(rec["profiles"]) == ["1: low + high", "2: low-pass only", "3: low + high again"]
    assert set(rec["high_frequency_median"]) == set(rec["high_low_ratio"]) == {"stage1", "stage2", "stage3"}
    assert all(set(a) == {"full", "low_pass"} for a in rec["accuracy"].values())
    assert len(list((out / "forgetting_models").glob("stage*.pt"))) == 3 and (out / "forgetting.png").exists()
    # stage 1 from a saved model: no training, the same stage-1 margins
    out2 = tmp_path / "o2"
    init = out / "forgetting_models" / "stage1.pt"
    assert studies.main([*args[:2], str(out2), *args[3:], "--init", str(init)]) == 0
    rec2 = json.loads((out2 / "forgetting.json").read_text())
    assert rec2["history"]["1: low + high"] == [{"loaded": str(init)}]
    assert rec2["profiles"]["1: low + high"] == rec["profiles"]["1: low + high"]
    with pytest.raises(SystemExit, match="--init /nonexistent"):
        studies.main([*args, "--init", "/nonexistent"])


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["synthetic", "--size", "8", "--frequency", "8"], "--frequency 8 must be < --size 8"),
        (["flipped", "--data-dir", "/nonexistent/dir"], "missing train_images.npy"),
        (["forgetting", "--cutoff", "8", "--data-dir", "CIFAR"], "--cutoff 8 must be smaller"),
        (["synthetic", "--epsilon", "0"], "argument --epsilon: expected a number > 0, got '0'"),
        (["synthetic", "--eval-images", "0"], "argument --eval-images: expected an integer >= 1, got '0'"),
    ],
)
def test_margin_studies_errors(tmp_path, cifar_dir, extra, match, capsys):
    extra = [str(cifar_dir) if e == "CIFAR" else e for e in extra]
    with pytest.raises(SystemExit) as e:  # a recipe's message, or argparse's on stderr (status 2)
        studies.main([*extra, "--out", str(tmp_path), "--block", "4", "--threads", "1"])
    assert match in str(e.value) + capsys.readouterr().err


# ----------------------------------------------------------------------------- sparsefool evaluations


@pytest.fixture(scope="module")
def attack_files(tmp_path_factory):
    """A tiny 10-class model (saved twice), and 8x8 images labelled with its predictions."""
    root = tmp_path_factory.mktemp("attacks")
    torch.manual_seed(0)
    model = build_model("cifar_resnet8", 10).eval()
    for name in ("a", "b"):
        _common.atomic_torch_save(model_record(model, "cifar_resnet8", 10), root / name / "model.pt")
    x = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    with torch.no_grad():
        y = model(torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255).argmax(1).numpy()
    np.save(root / "test_images.npy", x)
    np.save(root / "test_labels.npy", y)
    return root


def _common_args(root, out, limit=3):
    return ["--model", str(root / "a"), "--data", str(root / "test_images.npy"), "--out", str(out),
            "--limit", str(limit), "--batch-size", "3", "--device", "cpu", "--no-progress"]  # fmt: skip


def test_sparsefool_delta_sweep_and_transfer(tmp_path, attack_files):
    out = tmp_path / "o"
    argv = [*_common_args(attack_files, out), "--max-iter", "3", "--delta-sweep", "0.5", "0.1", "0.5",
            "--transfer-model", str(attack_files / "b" / "model.pt")]  # fmt: skip
    assert sparsefool_cmd.main(argv) == 0
    sweep = json.loads((out / "delta_sweep.json").read_text())["sweep"]
    assert [r["delta"] for r in sweep] == [0.1, 0.5, None] and all(r["images"] == 3 for r in sweep)
    assert (out / "delta_sweep.png").stat().st_size and "median linf" in (out / "delta_sweep.md").read_text()
    tr = json.loads((out / "transfer.json").read_text())["transfer"]
    assert tr["models"] == ["a", "b"] and tr["images"] == 3  # the same weights: every image kept
    for i, row in enumerate(tr["fooling_rate"]):
        fooled = tr["source_fooling_rate"][tr["models"][i]]
        assert row == ([100.0, 100.0] if fooled else [None, None])
    assert (out / "transfer.png").stat().st_size


def test_sparsefool_evaluation_errors(tmp_path, attack_files, capsys):
    with pytest.raises(SystemExit):  # argparse: the option, the bound and the value, status 2
        sparsefool_cmd.main([*_common_args(attack_files, tmp_path), "--max-iter", "1", "--delta-sweep", "0"])
    assert "argument --delta-sweep: expected a number > 0, got '0'" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--transfer-model /nonexistent"):
        sparsefool_cmd.main([*_common_args(attack_files, tmp_path), "--max-iter", "1",
                             "--transfer-model", "/nonexistent"])  # fmt: skip


def _benchmark():
    spec = importlib.util.spec_from_file_location("bench_sparsefool", ROOT / "benchmarks" / "sparsefool.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_ours_only(tmp_path, attack_files):
    out = tmp_path / "b"
    argv = [*_common_args(attack_files, out), "--steps", "2", "--attacks", "sparsefool"]
    assert _benchmark().main(argv) == 0
    rec = json.loads((out / "sparsefool_benchmark.json").read_text())
    assert list(rec["results"]) == ["SparseFool (prime-augment, batched)"]
    assert (out / "sparsefool_benchmark.png").stat().st_size
    with pytest.raises(SystemExit, match="nothing to run"):
        _benchmark().main([*_common_args(attack_files, out), "--attacks", "jsma", "--skip-torchattacks"])


def test_benchmark_jsma_and_one_pixel(tmp_path, attack_files):
    pytest.importorskip("torchattacks")
    out = tmp_path / "b"
    argv = [*_common_args(attack_files, out, limit=2), "--attacks", "jsma", "onepixel",
            "--jsma-gamma", "0.02", "--onepixel-steps", "1", "--onepixel-popsize", "2"]  # fmt: skip
    assert _benchmark().main(argv) == 0
    res = json.loads((out / "sparsefool_benchmark.json").read_text())["results"]
    jsma = next(v for k, v in res.items() if k.startswith("JSMA"))
    one = next(v for k, v in res.items() if k.startswith("one-pixel"))
    assert jsma["images"] == one["images"] == 2 and jsma["in_box"] and one["in_box"]
    if one["median_pixels_pct"] is not None:  # one pixel of 64 at most
        assert one["median_pixels_pct"] <= 100 / 64 + 1e-9
    if jsma["median_l0"] is not None:  # gamma bounds the changed values: ceil(192 * 0.02 / 2) pairs
        assert jsma["median_l0"] <= 2 * math.ceil(192 * 0.02 / 2)


def test_load_cifar_split_pairs_and_mixes_a_sorted_file(tmp_path):
    """A file sorted by class still gives mixed classes first, and every image keeps its label."""
    n = 40
    labels = np.repeat(np.arange(4), n // 4)
    images = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, 2, 2, 3)).copy()
    np.save(tmp_path / "test_images.npy", images)
    np.save(tmp_path / "test_labels.npy", labels)
    for limit in (None, 12):
        x, y = studies.load_cifar_split(tmp_path, "test", limit, seed=3)
        index = (x[:, 0, 0, 0] * 255).round().long()
        assert len(y) == (limit or n) and torch.equal(y, torch.from_numpy(labels)[index])
        assert len(set(y[:8].tolist())) > 1 and len(set(index.tolist())) == len(index)
    with pytest.raises(SystemExit, match=r"missing train_images\.npy"):
        studies.load_cifar_split(tmp_path, "train", None, seed=0)
