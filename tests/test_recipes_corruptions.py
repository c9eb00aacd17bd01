"""``prime-augment make-corruptions`` (CIFAR-10-C format) and ``prime-augment strength-sweep``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from recipes_fixtures import class_images, image_folder, numpy_dataset

from prime_augment.recipes.benchmark import _cifar10c, corruptions
from prime_augment.recipes.benchmark.corruptions import (
    BUILTIN_CORRUPTIONS,
    apply_corruption,
    available_corruptions,
    load_imagecorruptions,
    make_corruption_set,
    to_uint8,
)
from prime_augment.recipes.benchmark.data import BENCHMARK_CORRUPTIONS, EXTRA_CORRUPTIONS, NpyCorruptions
from prime_augment.recipes.studies import sweep

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
        ["labels.npy", "clean.npy", "meta.json", *(f"{n}.npy" for n in names.split(","))]
    )  # no temporary files left
    assert np.array_equal(np.load(out / "clean.npy"), x)
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
    assert meta["indices"] == list(range(6)) and meta["clean"] == "clean.npy"
    cs = NpyCorruptions(out)  # readable by the evaluation; clean.npy is not a corruption
    assert cs.n == 6 and cs.dataset("brightness", 2)[0][1] == y[0] and "clean" not in cs.corruptions


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


# ------------------------------------------------------------------ fidelity to make_cifar_c.py
def test_cifar10c_has_the_19_release_names():
    names = available_corruptions("cifar10c")
    assert names[:15] == BENCHMARK_CORRUPTIONS and set(names[15:]) == set(EXTRA_CORRUPTIONS)
    assert names[15:] == ("speckle_noise", "gaussian_blur", "spatter", "saturate")  # the script's order


def test_glass_blur_copies_the_neighbour_as_the_script_does():
    """``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` on numpy views copies, it does not swap."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
    offsets = rng.integers(-1, 1, size=(4, 3, 2))  # (dx, dy) in {-1, 0}, as randint(-1, 1)
    script = x.copy()
    for i, h in enumerate(range(6 - 1, 1, -1)):
        for j, w in enumerate(range(5 - 1, 1, -1)):
            dx, dy = offsets[i, j]
            script[h, w], script[h + dy, w + dx] = script[h + dy, w + dx], script[h, w]  # the script's line
    swapped = x.copy()
    for i, h in enumerate(range(6 - 1, 1, -1)):
        for j, w in enumerate(range(5 - 1, 1, -1)):
            dx, dy = offsets[i, j]
            a, b = swapped[h, w].copy(), swapped[h + dy, w + dx].copy()
            swapped[h, w], swapped[h + dy, w + dx] = b, a
    keep = x.copy()
    ours = _cifar10c.glass_shuffle(x, offsets)
    assert np.array_equal(ours, script) and not np.array_equal(ours, swapped)
    assert np.array_equal(x, keep)  # a new array
    with pytest.raises(ValueError, match="offsets"):
        _cifar10c.glass_shuffle(x, offsets[:2])


def test_uint8_conversion_truncates_like_the_script():
    assert to_uint8(np.array([127.9, 0.2, 254.999, 300.0, -3.0])).tolist() == [127, 0, 254, 255, 0]
    x = np.zeros((1, 4, 4, 3), np.uint8)
    x[:, :2] = 255  # mean 127.5: contrast 0.5 maps 0 -> 63.75 and 255 -> 191.25
    for backend in ("cifar10c", "builtin"):
        y = apply_corruption(x, "contrast", 2, backend=backend)
        assert set(np.unique(y).tolist()) == {63, 191}, backend  # rounding would give 64 and 191


def test_snow_layer_is_trimmed_at_the_centre_before_the_blur():
    ndimage = pytest.importorskip("scipy.ndimage")
    layer = np.random.default_rng(1).normal(size=(32, 32, 1))
    out = _cifar10c._clipped_zoom(layer, 2.25)  # severity 4: ceil(32 / 2.25) = 15 -> 34x34
    zoomed = ndimage.zoom(layer[8:23, 8:23], (2.25, 2.25, 1), order=1)
    assert zoomed.shape == (34, 34, 1) and out.shape == (32, 32, 1)
    assert np.array_equal(out, zoomed[1:33, 1:33]) and not np.array_equal(out, zoomed[:32, :32])


def test_cifar10c_impulse_noise_is_seeded_with_the_2018_draws():
    x = np.full((2, 8, 8, 3), 100, np.uint8)
    a = apply_corruption(x, "impulse_noise", 5, backend="cifar10c", seed=3)
    assert np.array_equal(a, apply_corruption(x, "impulse_noise", 5, backend="cifar10c", seed=3))
    assert not np.array_equal(a, apply_corruption(x, "impulse_noise", 5, backend="cifar10c", seed=4))
    rs = np.random.RandomState(3)  # scikit-image 0.14's random_noise(mode='s&p'), image by image
    for img, out in zip(x, a, strict=True):
        flipped = rs.choice([True, False], size=img.shape, p=[0.07, 0.93])
        salted = rs.choice([True, False], size=img.shape, p=[0.5, 0.5])
        expect = np.where(flipped, np.where(salted, 255, 0), 100)
        assert np.array_equal(out, expect)


def test_cifar10c_set_uses_the_script_seeding_and_records_its_source(tmp_path):
    x, y = class_images(10, 16, 3, 2)
    np.save(tmp_path / "test_images.npy", x)
    np.save(tmp_path / "test_labels.npy", y)
    base = ["--input", str(tmp_path / "test_images.npy"), "--backend", "cifar10c", "--no-progress"]
    base += ["--corruptions", "gaussian_noise,contrast", "--limit", "6", "--seed", "7"]
    assert corruptions.main([*base, "--out", str(tmp_path / "a")]) == 0
    assert corruptions.main([*base, "--out", str(tmp_path / "b"), "--workers", "2"]) == 0
    meta = json.loads((tmp_path / "a" / "meta.json").read_text())
    idx = meta["indices"]
    assert len(idx) == 6 and idx == sorted(idx) and meta["seeding"].startswith("np.random.RandomState")
    clean = np.load(tmp_path / "a" / "clean.npy")
    assert np.array_equal(clean, x[idx])
    assert np.array_equal(np.load(tmp_path / "a" / "labels.npy"), np.tile(y[idx], 5))
    np.random.seed(7)  # noqa: NPY002 - the script: np.random.seed, severities 1..5, images in order
    expect = [
        np.uint8(np.clip(im / 255.0 + np.random.normal(size=im.shape, scale=c), 0, 1) * 255)  # noqa: NPY002
        for c in _cifar10c.PARAMS["gaussian_noise"]
        for im in clean
    ]
    got = np.load(tmp_path / "a" / "gaussian_noise.npy")
    assert np.array_equal(got, np.stack(expect))
    assert np.array_equal(got, np.load(tmp_path / "b" / "gaussian_noise.npy"))  # workers do not matter


def test_magick_motion_blur_port():
    x = np.full((9, 7, 3), 77, np.uint8)
    assert np.array_equal(_cifar10c.magick_motion_blur(x, 6, 2, 30.0), x)  # a constant image is kept
    step = np.zeros((5, 12), np.uint8)
    step[:, 6:] = 200
    y = _cifar10c.magick_motion_blur(step, 2, 1, 0.0)  # angle 0: taps at columns +0..+4, edge pixels
    assert np.array_equal(y[:, :2], step[:, :2]) and np.array_equal(y[:, 6:], step[:, 6:])
    assert y[0, 2:6].tolist() == [0, 1, 16, 85]  # 200 x the tail sums of exp(-i^2 / 2), i = 0..4
    wand_image = pytest.importorskip("wand.image")
    import io

    from PIL import Image

    img = np.random.default_rng(3).integers(0, 256, size=(12, 10, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    with wand_image.Image(blob=buf.getvalue()) as w:
        w.motion_blur(radius=6, sigma=1.5, angle=17.0)
        ref = np.asarray(Image.open(io.BytesIO(w.make_blob("png"))).convert("RGB"))
    assert np.array_equal(_cifar10c.magick_motion_blur(img, 6, 1.5, 17.0), ref)


def test_cifar10c_every_corruption_runs():
    pytest.importorskip("scipy.ndimage")
    x, _ = class_images(2, 32, 2, 6)
    keep = x.copy()
    for name in available_corruptions("cifar10c"):
        if _cifar10c.missing_requirements(name):
            continue
        for sev in (1, 5):
            out = apply_corruption(x, name, sev, backend="cifar10c", seed=2)
            assert out.shape == x.shape and out.dtype == np.uint8, (name, sev)
            assert np.array_equal(out, apply_corruption(x, name, sev, backend="cifar10c", seed=2)), name
    assert np.array_equal(x, keep)


def test_cifar10c_names_missing_requirements(monkeypatch):
    monkeypatch.setattr(_cifar10c, "missing_requirements", lambda n: ["scipy"] if n == "zoom_blur" else [])
    x = np.zeros((1, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match=r"zoom_blur need scipy"):
        apply_corruption(x, "zoom_blur", 1, backend="cifar10c")
    with pytest.raises(ValueError, match=r"indices: 2 indices for 1 images"):
        make_corruption_set(x, np.zeros(1, np.int64), "unused", backend="builtin", indices=[0, 1])


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
