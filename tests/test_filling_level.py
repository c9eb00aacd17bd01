"""The filling-level recipe: synthetic containers, the manifest reader, the training command, fine-tuning,
the C-CCM converter and the resumable sweeps, on tiny images (16 px, 1 epoch, cifar_resnet8)."""

from __future__ import annotations

import csv
import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from prime_augment.recipes.benchmark.models import build_model, load_model
from prime_augment.recipes.studies import containers, filling_level, filling_level_sweep
from prime_augment.recipes.studies.containers import (
    LEVELS,
    ManifestError,
    make_containers,
    read_manifest,
    render_container,
)
from prime_augment.recipes.studies.filling_level import (
    balanced_sampler,
    carve_validation,
    freeze_blocks,
    network_blocks,
)

SHAPES, COLOURS = ("tumbler", "bottle", "wine"), ("clear", "red", "amber")
RUN = [
    "--epochs", "1", "--batch-size", "8", "--arch", "cifar_resnet8", "--device", "cpu", "--workers", "0",
    "--no-progress", "--eval-batch-size", "64",
]  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """9 containers x 4 classes x 2 images at 16 px; unseen shape 'wine', unseen colour 'amber'."""
    out = tmp_path_factory.mktemp("containers")
    return make_containers(
        out, size=16, per_level=2, shapes=SHAPES, colours=COLOURS, test_shapes=("wine",),
        test_colours=("amber",), progress=False,
    )  # fmt: skip


def _rows(manifest: Path) -> list[dict[str, str]]:
    with open(manifest, newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------------------------------------- data
def test_make_containers_layout_splits_and_determinism(data, tmp_path):
    rows = _rows(data)
    assert list(rows[0])[:6] == ["path", "container", "filling_level", "S1", "S2", "S3"]
    assert len(rows) == 9 * 4 * 2 and {r["filling_level"] for r in rows} == set(LEVELS)
    for r in rows:
        shape, colour = r["container"].split("-")
        assert r["S1"] == ("test" if colour == "amber" else "train")
        assert r["S2"] == ("test" if shape == "wine" else "train")
        both, none = shape == "wine" and colour == "amber", shape != "wine" and colour != "amber"
        assert r["S3"] == ("test" if both else "train" if none else "none")
        im = Image.open(data.parent / r["path"])
        assert im.size == (16, 16) and im.mode == "RGB"
    assert (data.parent / "preview.png").exists()
    info = json.loads((data.parent / "containers.json").read_text())
    assert info["splits"]["S3"]["test"] == ["wine-amber"]
    # the same seed draws the same pixels; the class changes the image
    again = make_containers(
        tmp_path, size=16, per_level=2, shapes=SHAPES, colours=COLOURS, test_shapes=("wine",),
        test_colours=("amber",), progress=False,
    )  # fmt: skip
    p = rows[5]["path"]
    assert np.array_equal(np.asarray(Image.open(data.parent / p)), np.asarray(Image.open(again.parent / p)))
    a = render_container("tumbler", "red", "0", size=32, rng=np.random.default_rng(3))
    b = render_container("tumbler", "red", "90", size=32, rng=np.random.default_rng(3))
    assert a.shape == (32, 32, 3) and a.dtype == np.uint8 and not np.array_equal(a, b)


def test_fill_height_follows_the_volume():
    # a cylinder fills linearly; a bottle's 90 % stays below its neck; a flask (wide bottom) fills low
    assert containers._fill_height("tumbler", 0.5) == pytest.approx(0.5, abs=1e-3)
    assert containers._fill_height("bottle", 0.9) < 0.8
    assert containers._fill_height("flask", 0.5) < 0.35


def test_make_containers_rejects_bad_options(tmp_path):
    with pytest.raises(ValueError, match="shapes"):
        make_containers(tmp_path, shapes=("cube",), progress=False)
    with pytest.raises(ValueError, match="proper subset"):
        make_containers(tmp_path, shapes=("wine",), test_shapes=("wine",), progress=False)
    with pytest.raises(SystemExit, match="--colours"):
        containers.main(["--out", str(tmp_path), "--colours", "red,plaid"])


def _write(path: Path, header: str, lines: list[str]) -> Path:
    path.write_text(header + "\n" + "".join(line + "\n" for line in lines))
    return path


HEADER = "path,container,filling_level,S1,S2,S3"
ROW1 = r"line 2 \(data row 1\), column "


@pytest.mark.parametrize(
    "header, line, expected",
    [
        (
            "path,container,filling_level,S1,S3",
            "a.png,c,0,train,test",
            r"line 1 \(header\), column\(s\) 'S2'",
        ),
        (HEADER, "a.png,c,75,train,test,test", ROW1 + "'filling_level': unknown label '75'"),
        (HEADER, "nothere.png,c,0,train,test,test", ROW1 + "'path': no file 'nothere.png'"),
        (HEADER, "a.png,c,0,train,tset,test", ROW1 + "'S2': bad split value 'tset'"),
        (HEADER, "a.png,,0,train,test,test", ROW1 + "'container': empty"),
    ],
    ids=["missing-column", "unknown-label", "missing-file", "bad-split", "empty-container"],
)
def test_bad_manifests_name_row_and_column(tmp_path, header, line, expected):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    m = _write(tmp_path / "m.csv", header, [line])
    with pytest.raises(ManifestError, match=expected):
        read_manifest(m)
    with pytest.raises(SystemExit, match=expected):
        filling_level.main(["--manifest", str(m), "--split", "S1", "--out", str(tmp_path / "o"), *RUN])


def test_manifest_container_roles_and_later_rows(tmp_path):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    ok = "a.png,c,0,train,test,none"
    m = _write(tmp_path / "m.csv", HEADER, [ok, ok, "a.png,c,50,test,test,none"])
    with pytest.raises(ManifestError, match=r"line 4 \(data row 3\), column 'S1': container 'c' is 'test'"):
        read_manifest(m)
    m = _write(tmp_path / "n.csv", "extra," + HEADER, ["x," + ok, "y," + ok])
    man = read_manifest(m)
    assert len(man) == 2 and man.indices("S1", "train").tolist() == [0, 1] and man.labels.tolist() == [0, 0]
    (tmp_path / "broken.png").write_bytes(b"not a png")
    bad = read_manifest(_write(tmp_path / "b.csv", HEADER, [ok, "broken.png,c,0,train,test,none"]))
    with pytest.raises(ManifestError, match=r"line 3 \(data row 2\), column 'path': cannot read"):
        containers.load_images(bad, [0, 1], 8, progress=False)


def test_from_ccm_converter(tmp_path):
    root = tmp_path / "ccm"
    for cid in ("glass1", "cup2"):
        for lvl in ("empty", "half-full", "90", "opaque"):
            d = root / cid / lvl / "view1"
            d.mkdir(parents=True)
            Image.fromarray(np.full((10, 12, 3), 40, np.uint8)).save(d / "000.jpg")
    (root / "splits.csv").write_text("container,S1,S2,S3\nglass1,train,train,train\ncup2,test,test,test\n")
    assert containers.main(["--from-ccm", str(root), "--out", str(tmp_path / "m.csv")]) == 0
    m = read_manifest(tmp_path / "m.csv")
    assert len(m) == 8 and sorted(set(m.containers)) == ["cup2", "glass1"]
    assert sorted(LEVELS[i] for i in m.labels[m.indices("S1", "test")]) == sorted(LEVELS)
    (root / "cup2" / "halfish").mkdir()
    with pytest.raises(SystemExit, match="unknown level folder 'halfish'"):
        containers.main(["--from-ccm", str(root), "--out", str(tmp_path / "m2.csv")])


# ---------------------------------------------------------------------------------------------- pieces
def test_balanced_sampler_and_validation_carve(data):
    labels = np.array([0] * 30 + [1] * 6 + [2] * 4)
    idx = np.concatenate([balanced_sampler(labels)(e, torch.Generator().manual_seed(e)) for e in range(50)])
    share = np.bincount(labels[idx], minlength=3) / len(idx)
    assert np.allclose(share, 1 / 3, atol=0.04)  # inverse-frequency weights balance the classes
    m = read_manifest(data)
    train = m.indices("S1", "train")
    fit, val, names = carve_validation(m, train, "containers", 0.2, seed=0)
    assert len(names) == 1 and set(m.containers_of(val)) == set(names)
    assert not set(m.containers_of(fit)) & set(names) and len(fit) + len(val) == len(train)
    fit, val, _ = carve_validation(m, train, "images", 0.5, seed=0)
    assert set(m.containers_of(fit)) == set(m.containers_of(val)) == set(m.containers_of(train))
    assert len(val) == len(train) // 2
    with pytest.raises(ValueError, match="val-fraction"):
        carve_validation(m, train, "images", 1.0, seed=0)


def test_freeze_blocks_keeps_weights_and_batch_norm():
    model = build_model("resnet18", 4)
    assert len(network_blocks(model)) == 9  # the stem + 8 residual blocks
    n = freeze_blocks(model, 2)
    frozen = [p for mod in network_blocks(model)[:2] for m in mod for p in m.parameters()]
    assert n == sum(p.numel() for p in frozen) and not any(p.requires_grad for p in frozen)
    assert model.net.layer1[1].conv1.weight.requires_grad
    model.train()
    bn = model.net.bn1
    before = bn.running_mean.clone()
    model(torch.rand(2, 3, 32, 32))
    assert not bn.training and torch.equal(bn.running_mean, before)
    with pytest.raises(ValueError, match=r"0\.\.9"):
        freeze_blocks(build_model("resnet18", 4), 10)
    with pytest.raises(TypeError, match="ResNet"):
        network_blocks(torch.nn.Linear(2, 2))


# ---------------------------------------------------------------------------------------------- command
def test_filling_level_command_results_and_resume(data, tmp_path):
    out = tmp_path / "run"
    args = ["--manifest", str(data), "--split", "S2", "--out", str(out), *RUN, "--augment-on", "device"]
    assert filling_level.main(args) == 0
    res = json.loads((out / "results.json").read_text())
    m = read_manifest(data)
    test_rows = m.indices("S2", "test")
    wines = {"wine-clear", "wine-red", "wine-amber"}
    assert set(res["per_container"]) == wines == set(res["test_containers"])
    assert res["n_test"] == len(test_rows) == sum(sum(r) for r in res["confusion"])
    # the accuracy is the (equal-count) mean of the per-container accuracies and matches the confusion
    assert res["accuracy"] == pytest.approx(np.mean(list(res["per_container"].values())))
    assert res["accuracy"] == pytest.approx(100 * np.trace(res["confusion"]) / res["n_test"])
    assert res["model"] == "best.pt" and res["selection"]["epoch"] == 1 and len(res["val_containers"]) == 1
    assert not set(res["val_containers"]) & set(res["train_containers"])
    assert res["augmentation"]["prime"]["alpha"] == 5.0  # the ccm preset
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["options"]["lr"] == 0.05 and cfg["options"]["depth"] == 3 and "environment" in cfg
    _, meta = load_model(out / "best.pt")
    assert meta["task"] == "filling-level" and meta["classes"] == list(LEVELS)
    assert "Confusion" in (out / "results.md").read_text()
    with pytest.raises(SystemExit, match="--resume"):
        filling_level.main(args)
    with pytest.raises(SystemExit, match="depth: 3 -> 1"):
        filling_level.main([*args, "--resume", "--depth", "1"])
    assert filling_level.main([*args, "--resume"]) == 0  # finished: evaluates again, same weights
    again = json.loads((out / "results.json").read_text())
    assert again["per_container"] == res["per_container"]


def test_plain_finetune_with_frozen_blocks(data, tmp_path):
    src = tmp_path / "src"
    base = ["--manifest", str(data), "--split", "S3", *RUN]
    assert filling_level.main([*base, "--out", str(src), "--augment", "none", "--val-fraction", "0"]) == 0
    res = json.loads((src / "results.json").read_text())
    assert res["model"] == "model.pt" and res["selection"] is None and res["val_containers"] == []
    assert set(res["per_container"]) == {"wine-amber"}
    ft = tmp_path / "ft"
    argv = [*base, "--out", str(ft), "--weights", str(src / "model.pt"), "--freeze-blocks", "2"]
    assert filling_level.main([*argv, "--val-mode", "images", "--val-fraction", "0.5"]) == 0
    a, _ = load_model(src)
    b, _ = load_model(ft)
    assert json.loads((ft / "config.json").read_text())["options"]["lr"] == 0.005
    sa, sb = a.state_dict(), b.state_dict()
    frozen = ("1.stem.", "1.layers.0.")
    assert all(torch.equal(sa[k], sb[k]) for k in sa if k.startswith(frozen))
    assert not all(torch.equal(sa[k], sb[k]) for k in sa if k.startswith("1.layers.2."))
    assert json.loads((ft / "results.json").read_text())["frozen_parameters"] > 0


def test_option_errors(data, tmp_path, capsys):
    base = ["--manifest", str(data), "--split", "S1", "--out", str(tmp_path / "o"), *RUN]
    with pytest.raises(SystemExit, match="--freeze-blocks needs --weights"):
        filling_level.main([*base, "--freeze-blocks", "2"])
    with pytest.raises(SystemExit, match="--jsd needs"):
        filling_level.main([*base, "--augment", "none", "--jsd"])
    with pytest.raises(SystemExit):  # argparse: the option, the bound and the value, status 2
        filling_level.main([*base, "--alpha", "0"])
    assert "argument --alpha: expected a number > 0, got '0'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        filling_level.main([*base, "--split", "S4"])
    with pytest.raises(SystemExit, match="lower --batch-size"):
        filling_level.main([*base, "--batch-size", "500"])


# ---------------------------------------------------------------------------------------------- sweeps
def test_sweeps_write_outputs_share_runs_and_resume(data, tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    common = ["--manifest", str(data), "--out", str(out), "--splits", "S2", "--seeds", "0"]
    sweep = filling_level_sweep.main
    assert sweep(["strategies", *common, "--", *RUN]) == 0
    for f in ("strategies.json", "strategies.md", "strategies.png"):
        assert (out / f).exists(), f
    summary = json.loads((out / "strategies.json").read_text())["summary"]
    assert set(summary) == {"plain", "prime"}
    assert set(summary["prime"]["S2"]["per_container"]) == {"wine-clear", "wine-red", "wine-amber"}

    calls: list[list[str]] = []
    real = filling_level.main

    def spy(argv):
        calls.append(list(argv))
        return real(argv)

    monkeypatch.setattr(filling_level, "main", spy)
    # Beta(5, 1) is the ccm preset: the same run as 'prime', reused; Beta(1, 1) is new
    assert sweep(["beta", *common, "--alphas", "1,5", "--betas", "1", "--", *RUN]) == 0
    assert len(calls) == 1 and "--alpha" in calls[0] and calls[0][calls[0].index("--alpha") + 1] == "1"
    assert (out / "beta.png").exists() and "a=5,b=1" in (out / "beta.md").read_text()
    # an interrupted run continues from its checkpoint; finished runs are skipped
    run = Path(calls[0][calls[0].index("--out") + 1])
    (run / "results.json").unlink()
    calls.clear()
    assert sweep(["strategies", *common, "--", *RUN]) == 0 and calls == []
    assert sweep(["beta", *common, "--alphas", "1,5", "--betas", "1", "--", *RUN]) == 0
    assert len(calls) == 1 and calls[0][-1] == "--resume" and (run / "results.json").exists()
    calls.clear()
    assert sweep(["depth", *common, "--depths", "1,3", "--with-plain", "--", *RUN]) == 0
    assert len(calls) == 1 and "--depth" in calls[0]  # m = 3 is the preset and plain ran: both reused
    depth = json.loads((out / "depth.json").read_text())["summary"]
    assert depth["m=1"]["S2"]["n"] == 1 and depth["plain"]["S2"] == summary["plain"]["S2"]
    assert (out / "depth.png").exists()


def test_sweep_option_errors(data, tmp_path):
    common = ["--manifest", str(data), "--out", str(tmp_path / "s"), "--seeds", "0"]
    with pytest.raises(SystemExit, match="sets"):
        filling_level_sweep.main(["depth", *common, "--", "--depth", "2"])
    with pytest.raises(SystemExit, match="--splits"):
        filling_level_sweep.main(["strategies", *common, "--splits", "S9"])
    with pytest.raises(SystemExit, match="unknown"):
        filling_level_sweep.main(["strategies", *common, "--strategies", "plain,mystery"])
    with pytest.raises(SystemExit, match="--alphas"):
        filling_level_sweep.main(["beta", *common, "--alphas", "0,1"])
    base = ["--manifest", str(data), "--epochs", "1"]
    key = filling_level_sweep.run_key
    name = key([*base, "--split", "S1", "--out", "x"])[0]
    # split, seed and folder are not part of the key; the preset's alpha spelled out is the same setting
    assert name == key([*base, "--split", "S2", "--out", "y", "--alpha", "5", "--seed", "4"])[0]
    assert name != key([*base, "--split", "S1", "--out", "x", "--epochs", "2"])[0]


def test_cli_lists_the_three_commands_with_examples(capsys):
    from prime_augment.cli import COMMANDS, main

    for command in ("make-containers", "filling-level", "filling-level-sweep"):
        assert importlib.import_module(COMMANDS[command][0]).build_parser().epilog.startswith("Example")
        with pytest.raises(SystemExit) as e:
            main([command, "--help"])
        assert e.value.code == 0 and "Example" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["filling-level-sweep", "beta", "--help"])
    assert e.value.code == 0 and "--alphas" in capsys.readouterr().out


def test_the_train_config_comes_from_the_options(data, tmp_path):
    argv = ["--manifest", str(data), "--split", "S1", "--out", str(tmp_path / "o"), "--epochs", "3"]
    argv += ["--grad-clip", "0", "--no-amp", "--no-progress", "--adversarial", "l2", "--weights", "w.pt"]
    cfg = filling_level.resolve(filling_level.build_parser().parse_args(argv))
    config = filling_level._train_config(cfg)
    assert (config.epochs, config.lr, config.batch_size, config.schedule) == (3, 0.005, 32, "linear")
    assert (config.grad_clip, config.amp, config.progress) == (None, False, False)
    assert (config.momentum, config.weight_decay, config.workers) == (0.9, 5e-4, cfg["workers"])
    assert config.adversarial is not None and config.adversarial.norm == "l2"
