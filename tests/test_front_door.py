"""The front door: every command's help, the bundled demo data, the demo, preview and the galleries."""

from __future__ import annotations

import importlib
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from prime_augment import cli
from prime_augment.recipes.showcase import demo, gallery, preview


# ---------------------------------------------------------------------------------------------- help
@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_every_command_help_has_an_example(name, capsys):
    """``prime-augment NAME --help`` (through the dispatcher) exits 0 and shows an example."""
    module = importlib.import_module(cli.COMMANDS[name][0])
    parser = module.build_parser()
    assert parser.prog == f"prime-augment {name}"
    assert "Example" in (parser.epilog or ""), f"{name}: no 'Example' in the --help epilog"
    with pytest.raises(SystemExit) as exc:
        cli.main([name, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: prime-augment {name}" in out and "Example" in out


def test_top_level_help_lists_every_command(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name, (_, desc) in cli.COMMANDS.items():
        assert desc.strip(), f"{name} has no one-line description"
        line = next((ln for ln in out.splitlines() if ln.split()[:1] == [name]), None)
        assert line is not None and desc in line, f"{name} missing from --help"


def test_readme_quick_start_runs():
    """The README's quick-start block runs as written (and trains: the loss is finite)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    assert len(code.strip().splitlines()) <= 15
    torch.manual_seed(0)
    ns: dict = {}
    exec(compile(code, "README.md quick start", "exec"), ns)
    assert math.isfinite(ns["loss"].item())


def test_readme_lists_every_command():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## The commands", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([a-z-]+)[ `]", section, re.MULTILINE))
    assert set(cli.COMMANDS) <= listed, f"README's command table lacks {sorted(set(cli.COMMANDS) - listed)}"


# ---------------------------------------------------------------------------------------------- demo data
def test_demo_data_is_real_balanced_and_small():
    path = demo.demo_data_path()
    assert path.stat().st_size < 1024 * 1024
    d = demo.load_demo_data()
    assert d.train_images.shape == (600, 32, 32, 3) and d.test_images.shape == (2000, 32, 32, 3)
    assert d.train_images.dtype == np.uint8
    assert np.bincount(d.train_labels).tolist() == [60] * 10
    assert np.bincount(d.test_labels).tolist() == [200] * 10  # >= 1,000: standard errors <= 1.5 points
    assert d.classes[:3] == ["airplane", "automobile", "bird"] and len(d.classes) == 10
    assert "CIFAR-10" in d.source
    # natural images: varied content, no duplicates between the splits
    assert d.train_images.std() > 40
    tr = {im.tobytes() for im in d.train_images}
    assert not any(im.tobytes() in tr for im in d.test_images)


def test_package_data_fits_a_small_wheel():
    data = Path(demo.__file__).resolve().parents[1] / "data"
    assert sum(f.stat().st_size for f in data.rglob("*") if f.is_file()) < 5 * 1024 * 1024


def test_demo_images():
    x, y = demo.demo_images("train", limit=5)
    assert x.shape == (5, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert 0 <= x.min() and x.max() <= 1
    with pytest.raises(ValueError, match="split"):
        demo.demo_images("val")
    with pytest.raises(ValueError, match="limit"):
        demo.demo_images("test", limit=0)


# ---------------------------------------------------------------------------------------------- demo
def test_demo_quick_writes_a_report(tmp_path, capsys):
    out = tmp_path / "demo"
    assert demo.main(["--quick", "--out", str(out), "--device", "cpu", "--no-progress", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert f"report: {out / 'report.md'}" in printed and "95% interval" in printed
    res = json.loads((out / "results.json").read_text())
    assert res["format"] == "prime-augment-demo/2" and res["setting"]["quick"]
    assert res["setting"]["n_train"] == 100 and res["setting"]["n_test"] == 50
    assert 0 < res["standard_error"] <= 100 * math.sqrt(0.25 / 50) + 1e-9
    report = (out / "report.md").read_text()
    assert set(res["models"]) == set(demo.SHIPPED_MODELS)
    assert set(res["live"]["models"]) == {"baseline", "prime"}
    for r in (*res["models"].values(), *res["live"]["models"].values()):
        assert sorted(r["per_corruption"]) == sorted(demo._QUICK_CORRUPTIONS)
        assert all(len(v) == 5 for v in r["per_corruption"].values())
        assert 0 <= r["clean_accuracy"] <= 100 and 0 <= r["corruption_accuracy"] <= 100
        assert f"{r['clean_accuracy']:.2f}" in report
    for key in ("augmix", "prime", "prime_jsd"):  # each difference to standard, with its interval
        d, hw = res["differences"][key]["corrupted"]
        want = res["models"][key]["corruption_accuracy"] - res["models"]["standard"]["corruption_accuracy"]
        assert d == pytest.approx(want) and hw >= 0
        assert f"{d:+.2f} [{d - hw:+.2f}, {d + hw:+.2f}]" in report
    assert "What PRIME bought and cost here" in report
    assert res["models"]["prime"]["provenance"]["options"]["augment"] == "prime"
    for key in ("baseline", "prime"):  # the live runs' folders
        assert (out / "live" / key / "model.pt").is_file()
    assert set(res["gallery"]["mean_abs_change"]) == {"spectral", "spatial", "color", "PRIME"}
    for png in res["plots"]:
        with Image.open(out / png) as im:
            assert im.format == "PNG" and min(im.size) > 100
    assert not (out / "corruptions.npz").exists()  # the corrupted copies are temporary by default


def test_shipped_models_are_the_studys_trained_models():
    prov = demo.shipped_provenance()
    assert set(prov) == set(demo.SHIPPED_MODELS)
    x, y = demo.demo_images("test", limit=400)
    weights = []
    for key in demo.SHIPPED_MODELS:
        model, meta = demo.load_shipped_model(key)  # through the recipes' model loader
        assert meta["arch"] == prov[key]["options"]["arch"] and meta["num_classes"] == 10
        assert (
            meta["augment"] == prov[key]["options"]["augment"] and meta["jsd"] == prov[key]["options"]["jsd"]
        )
        assert prov[key]["options"]["dataset"] == "numpy" and prov[key]["options"]["train_subset"] is None
        assert not any("accuracy" in k for k in prov[key])  # the demo computes its numbers, never stores them
        with torch.no_grad():
            acc = (model(x).argmax(1) == y).float().mean().item()
        assert acc > 0.5, f"{key}: {acc:.2f} on 400 test images (chance 0.1): not a trained model"
        weights.append(torch.cat([p.flatten() for p in model.parameters()]))
    assert all(not torch.equal(weights[0], w) for w in weights[1:])  # four different runs
    with pytest.raises(ValueError, match="key"):
        demo.load_shipped_model("vgg")


def test_corrupt_live_and_paired_interval():
    x = demo.load_demo_data().test_images[:12]
    out, sev = demo.corrupt_live(x, ["contrast", "gaussian_noise"], seed=3)
    assert sev.tolist() == [1, 2, 3, 4, 5] * 2 + [1, 2]
    from prime_augment.recipes.benchmark.corruptions import apply_corruption

    for s in range(1, 6):  # image i at severity 1 + i mod 5, each severity its own seeded call
        idx = np.flatnonzero(sev == s)
        assert np.array_equal(
            out["gaussian_noise"][idx], apply_corruption(x[idx], "gaussian_noise", s, seed=3 + s)
        )
    a, b = np.array([1, 0, 1, 1, 0, 1]), np.array([0, 0, 1, 0, 0, 1])
    d, hw = demo.paired_difference(a, b)
    diff = 100.0 * (a - b)
    assert d == pytest.approx(diff.mean()) and hw == pytest.approx(1.96 * diff.std(ddof=1) / math.sqrt(6))
    assert demo.paired_difference(a, a) == (0.0, 0.0)


def test_demo_out_folder_rules(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "mine.txt").write_text("x")
    with pytest.raises(SystemExit, match="not a prime-augment demo folder"):
        demo._prepare_out(other)
    assert (other / "mine.txt").exists()
    ok = tmp_path / "demo"
    demo._prepare_out(ok)
    (ok / "live" / "prime").mkdir(parents=True)
    (ok / "live" / "prime" / "checkpoint.pt").write_text("old")
    (ok / "notes.txt").write_text("kept")
    demo._prepare_out(ok)  # a re-run replaces the demo's own outputs only
    assert not (ok / "live").exists() and (ok / "notes.txt").exists()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"epochs": 0}, "--epochs"), ({"arch": "vgg"}, "--arch"), ({"batch_size": 0}, "--batch-size")],
)
def test_demo_argument_errors(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        demo.run_demo(tmp_path / "d", progress=False, **kwargs)


# ---------------------------------------------------------------------------------------------- gallery
@pytest.fixture(scope="module")
def image():
    return demo.demo_images("test", limit=1)[0][0]


@pytest.mark.parametrize("primitive", ["spectral", "spatial", "color"])
def test_grid_zero_strength_is_the_image_and_changes_grow(image, primitive):
    ks = gallery.default_grid_k(32)[primitive][:3]
    g = gallery.primitive_grid(image, primitive, ks, (0.0, 0.25, 1.0), seed=3)
    assert g.shape == (3, 3, 3, 32, 32)
    assert all(torch.equal(g[r, 0], image) for r in range(3))
    assert 0 <= g.min() and g.max() <= 1
    change = (g - image).abs()
    assert (change[:, 2].flatten(1).mean(1) > 0).all()
    if primitive != "spatial":  # clip(x + a d): every pixel moves monotonically away as a grows
        assert (change[:, 2] >= change[:, 1] - 1e-6).all()
    assert torch.equal(g, gallery.primitive_grid(image, primitive, ks, (0.0, 0.25, 1.0), seed=3))


def test_grid_color_band_uses_the_preset_bandwidth(image):
    # imagenet preset: 20 frequencies ending at K; K = 20 and K = 500 give different maps
    g = gallery.primitive_grid(image, "color", (20, 500), (1.0,), preset="imagenet")
    assert not torch.equal(g[0, 0], g[1, 0])


@pytest.mark.parametrize(
    ("primitive", "ks", "strengths", "match"),
    [
        ("blur", (3,), (1.0,), "primitive"),
        ("spectral", (4,), (1.0,), "odd"),
        ("spatial", (1,), (1.0,), "cut"),
        ("color", (0,), (1.0,), "color K"),
        ("color", (), (1.0,), "ks"),
        ("color", (3,), (-1.0,), "strengths"),
    ],
)
def test_grid_errors(image, primitive, ks, strengths, match):
    with pytest.raises(ValueError, match=match):
        gallery.primitive_grid(image, primitive, ks, strengths)


def test_augmentation_samples_are_independent_and_seeded():
    x = demo.demo_images("test", limit=2)[0]
    a = gallery.augmentation_samples(x, samples=3, seed=5)
    b = gallery.augmentation_samples(x, samples=3, seed=5)
    assert list(a) == ["spectral", "spatial", "color", "PRIME"]
    for k in a:
        assert a[k].shape == (2, 3, 3, 32, 32) and torch.equal(a[k], b[k])
        assert 0 <= a[k].min() and a[k].max() <= 1
    assert not torch.equal(a["color"][0, 0], a["color"][0, 1])  # draws differ per copy
    with pytest.raises(ValueError, match="samples"):
        gallery.augmentation_samples(x, samples=0)
    with pytest.raises(ValueError, match="images"):
        gallery.augmentation_samples(x[0])


# ---------------------------------------------------------------------------------------------- preview
@pytest.fixture
def image_files(tmp_path):
    x, _ = demo.demo_images("test", limit=2)
    paths = []
    for i, img in enumerate(x):
        p = tmp_path / f"img{i}.png"
        arr = (img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(arr).resize((48, 40)).save(p)
        paths.append(str(p))
    return paths


def test_preview_writes_one_png(image_files, tmp_path, capsys):
    out = tmp_path / "p.png"
    assert preview.main([*image_files, "--out", str(out), "--samples", "1", "--strengths", "0,1"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 300


def test_preview_loads_and_crops(image_files):
    x, size = preview.load_images(image_files)
    assert size == 40 and x.shape == (2, 3, 40, 40)
    x, size = preview.load_images(image_files, size=16)
    assert x.shape == (2, 3, 16, 16)


def test_preview_errors(image_files, tmp_path, capsys):
    with pytest.raises(SystemExit, match=r"missing\.png: no such file"):
        preview.main([str(tmp_path / "missing.png"), "--out", str(tmp_path / "x.png")])
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(SystemExit, match="cannot read it as an image"):
        preview.main([str(bad)])
    with pytest.raises(SystemExit, match="--grid-image"):
        preview.main([*image_files, "--grid-image", "2", "--out", str(tmp_path / "x.png")])
    with pytest.raises(SystemExit) as e:  # argparse's error: status 2, the option and the value named
        preview.main([*image_files, "--samples", "0", "--out", str(tmp_path / "x.png")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "argument --samples: expected an integer >= 1, got '0'" in err
