"""Offline augmentation (the method's §5.4.4): ``k`` PRIME copies of every training image, made once.

:func:`generate_copies` writes ``k`` independently augmented copies of an array dataset to one uint8
``.npy`` file ``[k, N, H, W, 3]`` (atomically, in chunks, from a seeded generator, on any device);
:class:`OfflineDataset` then serves, for each image and epoch, one copy drawn uniformly among the
``k`` (or, for the JSD loss, the clean image and ``num_splits - 1`` distinct copies, as a tuple that the
geometric train transform crops identically). Training sees a fixed, finite pool of augmentations,
which costs no augmentation time per epoch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from tqdm.auto import tqdm

from ...prime import PRIME
from .._common import write_json
from .data import ArrayDataset

__all__ = ["OfflineDataset", "generate_copies"]


def generate_copies(
    dataset: ArrayDataset,
    prime: PRIME,
    k: int,
    path: str | os.PathLike,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    batch_size: int = 256,
    progress: bool = True,
) -> np.ndarray:
    """Write (or reuse) ``k`` PRIME copies of ``dataset`` at ``path`` and return them memory-mapped.

    An existing file is reused when its side-car ``.json`` records the same ``k``, seed, size and PRIME
    configuration; a partial file from an interrupted run is never mistaken for a complete one (it is
    written under a temporary name and renamed at the end).

    Args:
        dataset: the training images (:class:`~prime_augment.recipes.benchmark.data.ArrayDataset`).
        prime: the augmentation (its own generator is ignored: a generator seeded with ``seed`` on
            ``device`` draws everything).
        k: number of copies (>= 1).
        path: the ``.npy`` file to write.
        seed: seed of the copies.
        device: where PRIME runs.
        batch_size: images per PRIME call.
        progress: show a progress bar.

    Returns:
        The read-only memory map ``[k, N, H, W, 3]`` (uint8).
    """
    if not isinstance(dataset, ArrayDataset):
        raise TypeError(
            "offline augmentation needs an array dataset (cifar10, cifar100 or numpy), got "
            f"{type(dataset).__name__}"
        )
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"offline copies k must be a positive int, got {k!r}")
    path = Path(path)
    device = torch.device(device)
    images = dataset.images if dataset.images.ndim == 4 else dataset.images[..., None]
    n, h, w, c = images.shape
    meta = {"k": k, "seed": seed, "n": n, "shape": [h, w, 3], "prime": repr(prime)}
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists():
        import json

        if json.loads(meta_path.read_text()) == meta:
            return np.load(path, mmap_mode="r")
    tmp = path.with_name(f".{path.name}.partial.npy")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(k, n, h, w, 3))
    g = torch.Generator(device=device).manual_seed(seed)
    bar = tqdm(total=k * n, desc="offline PRIME copies", disable=not progress, unit="img")
    with torch.no_grad():
        for copy in range(k):
            for start in range(0, n, batch_size):
                a = np.array(images[start : start + batch_size], copy=True)
                if c == 1:
                    a = np.repeat(a, 3, axis=-1)
                x = torch.from_numpy(a).to(device).permute(0, 3, 1, 2).float().div_(255.0)
                y = prime.apply(x, prime.sample_plan(x.shape[0], 3, h, w, device=device, generator=g))
                out[copy, start : start + len(a)] = (
                    (y * 255.0).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
                )
                bar.update(len(a))
    bar.close()
    out.flush()
    del out
    os.replace(tmp, path)
    write_json(meta_path, meta)
    return np.load(path, mmap_mode="r")


class OfflineDataset(Dataset):
    """Training items drawn from pre-generated copies.

    Args:
        base: the clean :class:`ArrayDataset` (its labels are used, and its images for the clean view).
        copies: ``[k, N, H, W, 3]`` uint8 copies (from :func:`generate_copies`).
        views: ``1``: one random copy per item; ``S >= 2``: ``(clean, copy_a, ...)`` with ``S - 1``
            distinct copies (needs ``k >= S - 1``), for the JSD loss.

    The copy is drawn with torch's global RNG, seeded per DataLoader worker, so runs are reproducible.
    """

    def __init__(self, base: ArrayDataset, copies: np.ndarray, views: int = 1) -> None:
        if copies.ndim != 5 or copies.shape[1] != len(base):
            raise ValueError(f"copies must be [k, {len(base)}, H, W, 3], got {copies.shape}")
        if views > 1 and copies.shape[0] < views - 1:
            raise ValueError(
                f"{views - 1} augmented views need at least {views - 1} offline copies, got {copies.shape[0]}"
            )
        self.base, self.copies, self.views = base, copies, int(views)

    def __len__(self) -> int:
        return len(self.base)

    def _copy(self, j: int, i: int) -> tv_tensors.Image:
        return tv_tensors.Image(torch.from_numpy(np.array(self.copies[j, i], copy=True)).permute(2, 0, 1))

    def __getitem__(self, i: int) -> tuple[Any, int]:
        k = self.copies.shape[0]
        label = int(self.base.labels[i])
        if self.views == 1:
            return self._copy(int(torch.randint(k, ())), i), label
        picks = torch.randperm(k)[: self.views - 1].tolist()
        return (self.base.image(i), *(self._copy(j, i) for j in picks)), label
