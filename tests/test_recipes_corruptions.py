"""``prime-augment make-corruptions`` (CIFAR-10-C format) and ``prime-augment strength-sweep``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from recipes_fixtures import class_images, image_folder, numpy_dataset

from prime_augment.recipes import corruptions, sweep
from prime_augment.recipes.corruptions import BUILTIN_CORRUPTIONS, apply_corruption, load_imagecorruptions
from prime_augment.recipes.data import NpyCorruptions

needs_imagecorruptions = pytest.mark.skipif(
    load_imagecorruptions() is None, reason="the optional imagecorruptions package is not usable"
)


def _arrays(tmp_path, n=6, size=32):
    x, y = class_images(n, size, 3, 0)
    np.save(tmp_path / "test_images.npy", x)
    np.save(tmp_path / "test_labels.npy", y)
    return x, y


def test_builtin_set_format_and_determinism(tmp_path):
    x, y = _arrays(tmp_path)
    names = "gaussian_noise,defocus_blur,brightness,jpeg_compression"
    args = [
        "--input",
        str(tmp_path / "test_images.npy"),
        "--backend",
        "builtin",
        "--corruptions",
        names,
        "--no-progress",
        "--chunk",
        "4",
    ]
    assert corruptions.main([*args, "--out", str(tmp_path / "a")]) == 0
    assert corruptions.main([*args, "--out", str(tmp_path / "b"), "--workers", "2"]) == 0
    out = tmp_path / "a"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["labels.npy", "meta.json", *(f"{n}.npy" for n in names.split(","))]
    )  # no temporary files left
    labels = np.load(out / "labels.npy")
    assert labels.dtype == np.int64 and np.array_equal(labels, np.tile(y, 5))
    for name in names.split(","):
        arr = np.load(out / f"{name}.npy")
        assert arr.dtype == np.uint8 and arr.shape == (30, 32, 32, 3)
        assert np.array_equal(arr, np.load(tmp_path / "b" / f"{name}.npy"))  # same with 2 worker processes
    noise = np.load(out / "gaussian_noise.npy").astype(float)
    err = [np.abs(noise[s * 6 : (s + 1) * 6] - x).mean() for s in range(5)]
    assert err == sorted(err) and err[0] > 1  # severity grows
    meta = json.loads((out / "meta.json").read_text())
    assert meta["backend"] == "builtin" and meta["n"] == 6 and "CIFAR-10-C severity" in meta["parameters"]
    cs = NpyCorruptions(out)  # readable by the evaluation
    assert cs.n == 6 and cs.dataset("brightness", 2)[0][1] == y[0]


def test_every_builtin_corruption(tmp_path):
    x, _ = class_images(3, 16, 3, 1)
    keep = x.copy()
    for name in BUILTIN_CORRUPTIONS:
        y1, y5 = apply_corruption(x, name, 1, seed=1), apply_corruption(x, name, 5, seed=1)
        assert y1.shape == x.shape and y1.dtype == np.uint8, name
        if name != "saturate":  # CIFAR-10-C's saturate severities are not ordered (s1 desaturates most)
            assert np.abs(y5.astype(float) - x).mean() > np.abs(y1.astype(float) - x).mean(), name
        assert np.array_equal(y5, apply_corruption(x, name, 5, seed=1)), name
    assert np.array_equal(x, keep)  # the input is never modified
    with pytest.raises(ValueError, match="severity"):
        apply_corruption(x, "contrast", 0)
    with pytest.raises(ValueError, match="unknown corruption"):
        apply_corruption(x, "snow", 1)


def test_folder_input_and_resume(tmp_path):
    root = image_folder(tmp_path / "f", n_train=4, n_val=6, size=20)
    out = tmp_path / "c"
    args = [
        "--input", str(root / "val"), "--backend", "builtin", "--corruptions", "contrast,pixelate",
        "--size", "16", "--out", str(out), "--no-progress",
    ]
    corruptions.main(args)
    assert (out / "classes.txt").read_text().split() == ["cat", "dog"]
    assert np.load(out / "contrast.npy").shape == (30, 16, 16, 3)
    stamp = (out / "contrast.npy").stat().st_mtime_ns
    corruptions.main(args)  # finished corruptions are kept
    assert (out / "contrast.npy").stat().st_mtime_ns == stamp


def test_input_errors(tmp_path):
    _arrays(tmp_path)
    with pytest.raises(SystemExit, match=r"not a .npy file or a folder"):
        corruptions.main(
            ["--input", str(tmp_path / "missing"), "--out", str(tmp_path / "o"), "--backend", "builtin"]
        )
    np.save(tmp_path / "test_labels.npy", np.zeros(3, np.int64))
    with pytest.raises(SystemExit, match=r"test_labels.npy"):
        corruptions.main(
            [
                "--input", str(tmp_path / "test_images.npy"), "--out", str(tmp_path / "o"), "--backend",
                "builtin",
            ]
        )


@pytest.mark.skipif(
    load_imagecorruptions() is None, reason="the optional imagecorruptions package is not usable"
)
def test_imagecorruptions_backend_with_shims(tmp_path):
    x, _ = class_images(2, 32, 2, 3)
    for name in ("frost", "fog", "glass_blur", "gaussian_blur", "elastic_transform", "motion_blur"):
        y = apply_corruption(x, name, 3, backend="imagecorruptions", seed=4)
        assert y.shape == x.shape and y.dtype == np.uint8 and not np.array_equal(x, y), name
        assert np.array_equal(y, apply_corruption(x, name, 3, backend="imagecorruptions", seed=4)), name


@needs_imagecorruptions
def test_cifar10c_backend(tmp_path):
    x, y = class_images(3, 32, 3, 5)
    for name in ("glass_blur", "motion_blur", "snow", "frost", "fog", "elastic_transform", "contrast"):
        for sev in (1, 5):
            out = apply_corruption(x, name, sev, backend="cifar10c", seed=2)
            assert out.shape == x.shape and out.dtype == np.uint8 and not np.array_equal(out, x), (name, sev)
            assert np.array_equal(out, apply_corruption(x, name, sev, backend="cifar10c", seed=2)), name
    # the CIFAR-10-C parameters are milder than ImageNet-C's on 32 px images
    c10 = apply_corruption(x, "gaussian_noise", 3, backend="cifar10c").astype(float)
    inet = apply_corruption(x, "gaussian_noise", 3, backend="imagecorruptions").astype(float)
    assert np.abs(c10 - x).mean() < np.abs(inet - x).mean()
    np.save(tmp_path / "test_images.npy", x)
    np.save(tmp_path / "test_labels.npy", y)
    corruptions.main(["--input", str(tmp_path / "test_images.npy"), "--out", str(tmp_path / "c"),
                      "--corruptions", "fog,snow", "--no-progress"])  # auto: cifar10c for 32 px images
    meta = json.loads((tmp_path / "c" / "meta.json").read_text())
    assert meta["backend"] == "cifar10c" and "make_cifar_c" in meta["parameters"]


def test_strength_sweep(tmp_path):
    data = numpy_dataset(tmp_path / "np", n_train=32, n_test=12, size=12)
    x, y = np.load(data / "test_images.npy"), np.load(data / "test_labels.npy")
    corruptions.make_corruption_set(
        x[:6], y[:6], tmp_path / "c", corruptions=["contrast"], backend="builtin", progress=False
    )
    common = [
        "--alphas", "0,1", "--out", str(tmp_path / "sw"), "--corruptions-dir", str(tmp_path / "c"), "--",
        "--dataset", "numpy", "--data-dir", str(data), "--arch", "cifar_resnet8", "--epochs", "1",
        "--batch-size", "16", "--workers", "0", "--device", "cpu", "--no-progress",
    ]
    assert sweep.main(common) == 0
    res = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert [r["alpha"] for r in res["runs"]] == [0.0, 1.0]
    assert (tmp_path / "sw" / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    cfg = json.loads((tmp_path / "sw" / "alpha_1" / "config.json").read_text())
    assert cfg["options"]["strength"] == 1.0 and cfg["options"]["augment"] == "prime"
    assert sweep.main(common) == 0  # rerun: reuses the finished runs
    with pytest.raises(SystemExit, match="--strength"):
        sweep.main([*common, "--strength", "2"])
