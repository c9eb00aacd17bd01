"""Tiny synthetic data for the recipe tests (importable as ``recipes_fixtures`` from the tests folder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def class_images(n: int, size: int, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable uint8 images: each class has its own mean colour, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_classes
    rng.shuffle(labels)
    base = np.linspace(40, 215, n_classes)[labels][:, None, None, None]
    tint = np.array([1.0, 0.6, 0.3])[None, None, None, :]
    x = base * tint + rng.normal(0, 25, size=(n, size, size, 3))
    return np.clip(x, 0, 255).astype(np.uint8), labels.astype(np.int64)


def numpy_dataset(
    root: Path, n_train: int = 48, n_test: int = 24, size: int = 16, n_classes: int = 3
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    xtr, ytr = class_images(n_train, size, n_classes, 0)
    xte, yte = class_images(n_test, size, n_classes, 1)
    np.save(root / "train_images.npy", xtr)
    np.save(root / "train_labels.npy", ytr)
    np.save(root / "test_images.npy", xte)
    np.save(root / "test_labels.npy", yte)
    return root


def npy_corruptions(
    root: Path, images: np.ndarray, labels: np.ndarray, names=("gaussian_noise", "contrast")
) -> Path:
    """A CIFAR-10-C-format set whose severity ``s`` adds noise of std ``10 s``."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    for name in names:
        blocks = [np.clip(images + rng.normal(0, 10 * s, images.shape), 0, 255) for s in range(1, 6)]
        np.save(root / f"{name}.npy", np.concatenate(blocks).astype(np.uint8))
    np.save(root / "labels.npy", np.tile(labels, 5))
    return root


def write_pngs(folder: Path, images: np.ndarray, labels: np.ndarray, classes: list[str]) -> None:
    for i, (a, y) in enumerate(zip(images, labels, strict=True)):
        d = folder / classes[int(y)]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(a).save(d / f"{i:04d}.png")


def image_folder(
    root: Path, n_train: int = 24, n_val: int = 12, size: int = 16, classes=("cat", "dog")
) -> Path:
    xtr, ytr = class_images(n_train, size, len(classes), 2)
    xva, yva = class_images(n_val, size, len(classes), 3)
    write_pngs(root / "train", xtr, ytr, list(classes))
    write_pngs(root / "val", xva, yva, list(classes))
    return root
