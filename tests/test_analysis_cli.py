"""Smoke tests of the analysis commands (sparsefool, margins, coverage) on tiny synthetic data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from analysis_fixtures import one_thread  # noqa: F401  (autouse)
from PIL import Image

from prime_augment import cli
from prime_augment.recipes import _common
from prime_augment.recipes.benchmark.models import build_model, model_record
from prime_augment.recipes.studies import coverage as coverage_cmd
from prime_augment.recipes.studies import margins as margins_cmd
from prime_augment.recipes.studies import sparsefool as sparsefool_cmd

N, SIZE, CLASSES = 10, 16, 3


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny saved model and images labelled with its own predictions (so all count as correct)."""
    root = tmp_path_factory.mktemp("analysis")
    torch.manual_seed(0)
    model = build_model("cifar_resnet8", CLASSES).eval()
    run = root / "run"
    _common.atomic_torch_save(model_record(model, "cifar_resnet8", CLASSES), run / "model.pt")
    x = np.random.default_rng(0).integers(0, 256, (N, SIZE, SIZE, 3), dtype=np.uint8)
    with torch.no_grad():
        y = model(torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255).argmax(1).numpy()
    np.save(root / "test_images.npy", x)
    np.save(root / "test_labels.npy", y)
    np.savez(root / "data.npz", images=x, labels=y)
    for i, (a, c) in enumerate(zip(x, y, strict=True)):
        d = root / "folder" / f"class{c}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(a).save(d / f"{i}.png")
    cdir = root / "c"
    cdir.mkdir()
    rng = np.random.default_rng(1)
    for name in ("gaussian_noise", "contrast"):
        blocks = [np.clip(x + rng.normal(0, 10 * s, x.shape), 0, 255) for s in range(1, 6)]
        np.save(cdir / f"{name}.npy", np.concatenate(blocks).astype(np.uint8))
    np.save(cdir / "labels.npy", np.tile(y, 5))
    return root


def common(files, out, data=None, limit=4):
    return [
        "--model", str(files / "run"), "--data", str(data or files / "test_images.npy"),
        "--out", str(out), "--limit", str(limit), "--batch-size", "3", "--device", "cpu", "--no-progress",
    ]  # fmt: skip


def read(path):
    return json.loads(path.read_text())


def test_sparsefool_command(files, tmp_path):
    out = tmp_path / "sf"
    assert sparsefool_cmd.main([*common(files, out), "--max-iter", "5", "--candidates", "3"]) == 0
    r = read(out / "sparsefool.json")
    assert r["summary"]["images"] == 4 and r["selection"]["correct_only"]
    assert r["environment"]["device"] == "cpu" and r["config"]["max_iter"] == 5
    assert r["model"]["arch"] == "cifar_resnet8" and "state_dict" not in r["model"]
    assert len(r["per_image"]["pixels_pct"]) == 4
    assert 0 <= r["summary"]["fooling_rate"] <= 100
    assert "fooling rate" in (out / "sparsefool.md").read_text()
    for png in ("pixels.png", "examples.png"):
        assert (out / png).stat().st_size > 1000


def test_sparsefool_through_the_dispatcher_with_npz_and_config(files, tmp_path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("max_iter: 2\nlam: 2.0\n")
    out = tmp_path / "sf"
    args = ["sparsefool", *common(files, out, files / "data.npz", limit=2), "--config", str(cfg)]
    assert cli.main(args) == 0
    r = read(out / "sparsefool.json")
    assert r["config"]["max_iter"] == 2 and r["config"]["lam"] == 2.0
    assert "SparseFool" in capsys.readouterr().out


def test_margins_command_with_control_and_transform(files, tmp_path):
    out = tmp_path / "m"
    argv = [*common(files, out, files / "folder"), "--block", "4", "--step", "6", "--max-iter", "20"]
    assert margins_cmd.main([*argv, "--transform", "flip", "--candidates", "3", "--all-images"]) == 0
    r = read(out / "margins.json")
    names = [s["subspace"] for s in r["subspaces"]]
    assert names == ["0-3", "6-9", "12-15", "random"]
    assert all(s["dim"] == 3 * 16 for s in r["subspaces"])
    assert r["selection"]["source"]["kind"] == "imagefolder" and r["transform"] == "flip"
    assert all(len(s["margins"]) == 4 for s in r["subspaces"])
    assert all(m is None or m > 0 for s in r["subspaces"] for m in s["margins"])  # inf is written as null
    assert (out / "margins.png").stat().st_size > 1000
    assert "median margin" in (out / "margins.md").read_text()


def test_coverage_command_builtin_and_c_dir(files, tmp_path):
    out = tmp_path / "cov"
    base = [
        *common(files, out, limit=5),
        "--augment",
        "spectral,none",
        "--samples",
        "2",
        "--pca-samples",
        "3",
    ]
    assert coverage_cmd.main(base) == 0
    r = read(out / "coverage.json")
    assert set(r["results"]) == {"spectral", "none"} and r["corruptions_source"] == "builtin"
    assert len(r["corruptions"]) == 7
    for png in ("coverage.png", "diversity.png"):
        assert (out / png).stat().st_size > 1000
    out2 = tmp_path / "cov2"
    argv = [*common(files, out2, limit=5), "--augment", "color", "--samples", "2", "--pca-images", "2"]
    assert coverage_cmd.main([*argv, "--corruptions-dir", str(files / "c"), "--severities", "1,5"]) == 0
    r = read(out2 / "coverage.json")
    assert r["corruptions"] == ["contrast_s1", "contrast_s5", "gaussian_noise_s1", "gaussian_noise_s5"]
    cov = r["results"]["color"]["per_corruption"]
    assert cov["gaussian_noise_s5"] > cov["gaussian_noise_s1"]  # stronger noise is further away


def test_commands_report_bad_inputs(files, tmp_path, capsys):
    with pytest.raises(SystemExit, match="--model"):
        sparsefool_cmd.main(
            ["--model", str(tmp_path), "--data", str(files / "data.npz"), "--out", str(tmp_path)]
        )
    with pytest.raises(SystemExit, match="labels"):
        np.save(tmp_path / "x.npy", np.zeros((2, 4, 4, 3), np.uint8))
        margins_cmd.main(common(files, tmp_path / "o", tmp_path / "x.npy"))
    with pytest.raises(SystemExit, match="--augment"):
        coverage_cmd.main([*common(files, tmp_path / "o"), "--augment", "cutout"])
    with pytest.raises(SystemExit) as e:  # argparse's error: status 2, the option and the value named
        sparsefool_cmd.main([*common(files, tmp_path / "o"), "--limit", "0"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "argument --limit: expected an integer >= 1, got '0'" in err
    with pytest.raises(SystemExit, match=r"--bounds 1 0: expected LOW < HIGH"):
        sparsefool_cmd.main([*common(files, tmp_path / "o"), "--bounds", "1", "0"])
    with pytest.raises(SystemExit, match="--block"):
        margins_cmd.main([*common(files, tmp_path / "o"), "--block", "40"])


@pytest.mark.parametrize("mod", [sparsefool_cmd, margins_cmd, coverage_cmd])
def test_help_has_an_example(mod):
    p = mod.build_parser()
    assert p.prog.startswith("prime-augment ") and "Example:" in p.epilog
    assert mod.__name__ in {m for m, _ in cli.COMMANDS.values()}


def test_default_selection_is_a_seeded_random_order_not_the_file_order(files, tmp_path):
    """Data files are often sorted by class: by default the images are drawn in a seeded random order."""
    from prime_augment.recipes.studies._analysis_cli import Setup, new_parser

    def picked(extra):
        parser = new_parser("x", "test", "Example: x")
        args = parser.parse_args([*common(files, tmp_path / "o", limit=N), "--all-images", *extra])
        _, _, record = Setup(args).select()
        return record["indices"]

    default, again, in_order = picked([]), picked([]), picked(["--in-order"])
    assert default == again and sorted(default) == list(range(N))
    assert in_order == list(range(N)) and default != in_order
