"""Recipe data layer: datasets, the ImageNet-100 list, corruption sets (CIFAR-10-C and ImageNet-C layouts)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from recipes_fixtures import class_images, image_folder, npy_corruptions, numpy_dataset, write_pngs

from prime_augment.recipes.benchmark.data import (
    ArrayDataset,
    FolderCorruptions,
    NpyCorruptions,
    build_data,
    imagenet100_wnids,
    open_corruptions,
)


def test_imagenet100_list_is_every_tenth_sorted_wnid():
    w = imagenet100_wnids()
    assert len(w) == 100 and len(set(w)) == 100 and w == sorted(w)
    assert all(re.fullmatch(r"n\d{8}", x) for x in w)
    # sorted ImageNet-1k indices 0, 10, 20 are tench, brambling, water ouzel; 990 is buckeye
    assert w[:3] == ["n01440764", "n01530575", "n01601694"]
    assert w[-1] == "n12768682"


def test_numpy_dataset_and_transforms(tmp_path):
    root = numpy_dataset(tmp_path / "np", size=16)
    spec = build_data("numpy", root)
    assert spec.family == "small" and spec.image_size == 16 and spec.num_classes == 3
    x, y = spec.train[0]
    assert x.dtype == torch.uint8 and x.shape == (3, 16, 16) and isinstance(y, int)
    t = spec.train_transform(x)
    assert t.dtype == torch.uint8 and t.shape == (3, 16, 16)
    assert torch.equal(spec.eval_transform(x), x)  # no resizing at the native size
    assert "RandomCrop(16, padding=4)" in spec.preprocessing["train"]
    sub = build_data("numpy", root, train_subset=10)
    assert len(sub.train) == 10 and isinstance(sub.train, ArrayDataset)


def test_numpy_dataset_errors_name_the_file(tmp_path):
    root = numpy_dataset(tmp_path / "np")
    (root / "test_labels.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"test_labels.npy|val_labels.npy"):
        build_data("numpy", root)
    np.save(root / "test_labels.npy", np.zeros(5, dtype=np.int64))  # wrong length
    with pytest.raises(ValueError, match=r"test_images.npy"):
        build_data("numpy", root)
    with pytest.raises(ValueError, match="--dataset must be one of"):
        build_data("mnist", root)
    with pytest.raises(ValueError, match="uint8"):
        ArrayDataset(np.zeros((2, 4, 4, 3), np.float32), np.zeros(2, np.int64))


def test_image_folder(tmp_path):
    root = image_folder(tmp_path / "f", size=16)
    spec = build_data("folder", root)
    assert spec.classes == ["cat", "dog"] and spec.family == "small" and spec.image_size == 16
    img, label = spec.train[0]
    out = spec.eval_transform(img)
    assert out.dtype == torch.uint8 and out.shape == (3, 16, 16) and label in (0, 1)
    (root / "val" / "dog").rename(root / "val" / "wolf")
    with pytest.raises(FileNotFoundError, match="dog"):
        build_data("folder", root)


def test_imagenet100_filters_the_thousand(tmp_path):
    wnids = imagenet100_wnids()
    others = ["n01443537", "n01484850"]  # ImageNet classes outside the 100
    x, _ = class_images(1, 8, 1, 0)
    for split in ("train", "val"):
        for c in [*wnids, *others]:
            write_pngs(tmp_path / "in" / split, x, np.zeros(1, np.int64), [c])
    spec = build_data("imagenet100", tmp_path / "in")
    assert spec.classes == wnids and len(spec.train) == 100 and spec.family == "large"
    assert spec.image_size == 224 and spec.eval_transform(spec.val[0][0]).shape == (3, 224, 224)
    labels = sorted(y for _, y in spec.train.samples)
    assert labels == list(range(100))
    (tmp_path / "list.txt").write_text("# two classes\nn01443537\nn01484850\n")
    spec2 = build_data("imagenet100", tmp_path / "in", class_list=tmp_path / "list.txt")
    assert spec2.classes == others
    with pytest.raises(ValueError, match="1000 WNIDs"):
        build_data("imagenet", tmp_path / "in")


def _cset(tmp_path, n=6):
    x, y = class_images(n, 8, 3, 4)
    return npy_corruptions(tmp_path / "c", x, y), x, y


def test_npy_corruptions_lazy_blocks(tmp_path):
    root, _, y = _cset(tmp_path)
    cs = NpyCorruptions(root)
    assert cs.corruptions == ["gaussian_noise", "contrast"] and cs.severities == [1, 2, 3, 4, 5] and cs.n == 6
    assert isinstance(cs._arrays["contrast"], np.memmap)  # read lazily
    full = np.load(root / "contrast.npy")
    ds = cs.dataset("contrast", 3)
    img, label = ds[2]
    assert torch.equal(img, torch.from_numpy(full[2 * 6 + 2]).permute(2, 0, 1)) and label == y[2]
    assert len(ds) == 6
    np.save(root / "labels.npy", y)  # labels given once for all severities
    assert NpyCorruptions(root).dataset("gaussian_noise", 5)[5][1] == y[5]
    with pytest.raises(ValueError, match="severity"):
        cs.dataset("contrast", 6)


@pytest.mark.parametrize(
    "damage, match",
    [
        ("missing_labels", "labels.npy"),
        ("truncated", "contrast.npy"),
        ("float", "contrast.npy.*uint8"),
        ("blocks", "contrast.npy.*severity"),
        ("label_count", "labels.npy.*labels"),
        ("not_npy", "gaussian_noise.npy"),
    ],
)
def test_malformed_corruption_files_are_named(tmp_path, damage, match):
    root, _, _ = _cset(tmp_path)
    if damage == "missing_labels":
        (root / "labels.npy").unlink()
    elif damage == "truncated":
        data = (root / "contrast.npy").read_bytes()
        (root / "contrast.npy").write_bytes(data[: len(data) // 2])
    elif damage == "float":
        np.save(root / "contrast.npy", np.zeros((30, 8, 8, 3), np.float32))
    elif damage == "blocks":
        np.save(root / "contrast.npy", np.zeros((29, 8, 8, 3), np.uint8))
    elif damage == "label_count":
        np.save(root / "labels.npy", np.zeros(7, np.int64))
    elif damage == "not_npy":
        (root / "gaussian_noise.npy").write_text("not an array")
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        NpyCorruptions(root)


def test_imagenet_c_layout(tmp_path):
    spec = build_data("folder", image_folder(tmp_path / "f", size=16))
    x, y = class_images(4, 16, 2, 9)
    for c in ("fog", "gaussian_noise"):
        for s in (1, 2):
            write_pngs(tmp_path / "c" / c / str(s), x, y, ["cat", "dog"])
    cs = open_corruptions(tmp_path / "c", spec)
    assert isinstance(cs, FolderCorruptions)
    assert cs.corruptions == ["gaussian_noise", "fog"] and cs.severities == [1, 2]
    img, label = cs.dataset("fog", 2)[0]
    assert img.dtype == torch.uint8 and img.shape == (3, 16, 16) and label in (0, 1)
    (tmp_path / "c" / "fog" / "2").rename(tmp_path / "c" / "fog" / "3")
    with pytest.raises(ValueError, match="severities"):
        open_corruptions(tmp_path / "c", spec)


def test_atomic_writes_get_the_usual_file_permissions(tmp_path):
    import os
    import stat

    from prime_augment.recipes._common import _UMASK, write_json

    write_json(tmp_path / "r.json", {"a": 1})
    assert stat.S_IMODE(os.stat(tmp_path / "r.json").st_mode) == 0o666 & ~_UMASK


def test_comma_subset_parses_and_names_the_option_and_the_unknown_names():
    from prime_augment.recipes._common import comma_subset

    assert comma_subset(" a, c ,", "things", ("a", "b", "c")) == ["a", "c"]
    with pytest.raises(SystemExit, match=r"--things 'a,zz'.*unknown: \['zz'\]"):
        comma_subset("a,zz", "things", ("a", "b"))
    with pytest.raises(SystemExit, match="--things ' , '"):
        comma_subset(" , ", "things", ("a",))


def test_labels_are_class_indices_and_the_training_set_is_not_empty(tmp_path):
    x = np.zeros((3, 4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match=r"labels must be class indices >= 0, got -2 at index 1"):
        ArrayDataset(x, np.array([0, -2, 1]))
    assert len(ArrayDataset(x[:0], np.zeros(0, np.int64))) == 0  # an empty array is a dataset
    root = numpy_dataset(tmp_path / "np")
    np.save(root / "train_images.npy", x[:0])
    np.save(root / "train_labels.npy", np.zeros(0, np.int64))
    with pytest.raises(ValueError, match=r"train_images.npy holds no images"):
        build_data("numpy", root)


def test_number_types_name_the_bounds_and_the_value():
    import argparse

    from prime_augment.recipes._common import finite_float, nonneg_int, number, open_unit, positive_int

    assert positive_int("3") == 3 and nonneg_int("0") == 0 and finite_float("-1e3") == -1000.0
    assert open_unit("0.5") == 0.5 and number(float, 0, 1)("1") == 1.0
    for parse, text, message in [
        (positive_int, "0", "expected an integer >= 1, got '0'"),
        (positive_int, "2.5", "expected an integer >= 1, got '2.5'"),
        (positive_int, 2.5, "expected an integer >= 1, got 2.5"),  # a float from a --config file
        (finite_float, "nan", "expected a finite number, got 'nan'"),
        (finite_float, "-inf", "expected a finite number, got '-inf'"),
        (open_unit, "1", "expected a number > 0 and < 1, got '1'"),
    ]:
        with pytest.raises(argparse.ArgumentTypeError, match=re.escape(message)):
            parse(text)


def test_config_file_values_pass_the_option_types(tmp_path):
    import argparse

    from prime_augment.recipes._common import parse_with_config, positive_float

    p = argparse.ArgumentParser()
    p.add_argument("--config")
    p.add_argument("--lr", type=positive_float, default=0.1)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("lr: 0.5\n")
    assert parse_with_config(p, ["--config", str(cfg)]).lr == 0.5
    cfg.write_text("lr: .nan\n")
    with pytest.raises(SystemExit, match=r"c.yaml: lr: expected a number > 0, got nan"):
        parse_with_config(p, ["--config", str(cfg)])
    cfg.write_text("lr: [unclosed\n")
    with pytest.raises(SystemExit, match=r"c.yaml: cannot read it"):
        parse_with_config(p, ["--config", str(cfg)])


def test_plain_text_removes_the_markup():
    from prime_augment.recipes._common import plain_text

    text = "``config.json``, :func:`~prime_augment.attacks.pgd`, :mod:`prime_augment.recipes`, **bold**"
    assert plain_text(text) == "config.json, pgd, prime_augment.recipes, bold"
    assert plain_text(":ref:`the guide <guide>` and 2 * 3 * 4") == "the guide and 2 * 3 * 4"
