"""Datasets of the recipes: training/validation sets and corruption benchmarks.

Training data (``--dataset``):

* ``cifar10`` / ``cifar100`` — torchvision's CIFAR (``--download`` fetches it into ``--data-dir``);
* ``numpy`` — ``{train,test}_{images,labels}.npy`` in ``--data-dir`` (uint8 ``[N, H, W, 3]`` and integer
  labels; ``val_*`` is accepted in place of ``test_*``);
* ``folder`` — an ImageFolder tree ``PATH/train/<class>/*`` and ``PATH/val/<class>/*``;
* ``imagenet`` — the same layout with the 1000 ImageNet WNID folders;
* ``imagenet100`` — ImageNet-100 of the method: every 10th class of ImageNet in sorted WNID order
  (the list ships as ``prime_augment/data/imagenet100_wnids.txt``; ``class_list`` overrides it). The
  data folder may hold all 1000 classes (they are filtered) or only the 100.

Every dataset yields ``(image, label)`` with the image *not* transformed; :class:`DataSpec` carries
the train and eval transforms, which end in a ``uint8`` ``tv_tensors.Image`` ``(3, H, W)``. Models
take ``[0, 1]`` images and normalise inside (see :mod:`.models`).

Extra training images (``prime-augment train --extra-train-dir DIR ...``, e.g. DeepAugment's
pre-generated images, the method's Tab. 5.2 DA+PRIME): :func:`extra_train_set` reads a folder in the
ImageFolder layout ``DIR/<class>/*`` with the dataset's class names, or the array layout
``DIR/{images,labels}.npy`` (or ``train_images.npy`` / ``train_labels.npy``; an optional
``DIR/classes.txt`` names the classes, checked against the dataset's) with images of the training
images' size; :func:`union_train_set` joins them to the training set.

Corruption sets:

* the CIFAR-10-C file format (:class:`NpyCorruptions`): a folder of ``<corruption>.npy`` (uint8
  ``[S*N, H, W, 3]``, severity blocks of ``N`` images, severity 1 first) and ``labels.npy`` (``[N]`` or
  ``[S*N]``), read memory-mapped, one severity block at a time;
* the ImageNet-C layout (:class:`FolderCorruptions`): ``corruption/severity/class/*``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset
from torchvision import datasets as tvd
from torchvision import tv_tensors
from torchvision.transforms import v2

from .models import CIFAR_MEAN, CIFAR_STD, IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "BENCHMARK_CORRUPTIONS",
    "DATASETS",
    "EXTRA_CORRUPTIONS",
    "ArrayDataset",
    "DataSpec",
    "FolderCorruptions",
    "MapDataset",
    "NpyCorruptions",
    "build_data",
    "extra_train_set",
    "imagenet100_wnids",
    "open_corruptions",
    "read_class_list",
    "union_train_set",
]

DATASETS = ("cifar10", "cifar100", "numpy", "folder", "imagenet", "imagenet100")

#: the 15 corruptions of the CIFAR-10-C / ImageNet-C benchmarks (mCE is their mean)
BENCHMARK_CORRUPTIONS = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)
#: the 4 held-out ("extra") corruptions shipped with CIFAR-10-C / ImageNet-C
EXTRA_CORRUPTIONS = ("speckle_noise", "gaussian_blur", "spatter", "saturate")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


# ---------------------------------------------------------------------------------------------- datasets
class ArrayDataset(Dataset):
    """Images from a uint8 array ``[N, H, W, 3]`` (or ``[N, H, W]``) and integer labels.

    Items are ``(tv_tensors.Image uint8 (3, H, W), int)``; the array may be a read-only memory map
    (it is never written).
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, *, name: str = "array") -> None:
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim not in (3, 4):
            raise ValueError(
                f"{name}: images must be a uint8 array [N, H, W, 3] or [N, H, W], got "
                f"{getattr(images, 'dtype', type(images).__name__)} {getattr(images, 'shape', '')}"
            )
        if images.ndim == 4 and images.shape[-1] not in (1, 3):
            raise ValueError(f"{name}: images must have 1 or 3 channels last, got shape {images.shape}")
        labels = np.asarray(labels)
        if (
            labels.ndim != 1
            or labels.shape[0] != images.shape[0]
            or not np.issubdtype(labels.dtype, np.integer)
        ):
            raise ValueError(
                f"{name}: labels must be an integer vector of {images.shape[0]} entries, got "
                f"{labels.dtype} {labels.shape}"
            )
        if labels.size and labels.min() < 0:
            first = int(np.flatnonzero(labels < 0)[0])
            raise ValueError(
                f"{name}: labels must be class indices >= 0, got {labels[first]} at index {first}"
            )
        self.images = images
        self.labels = labels.astype(np.int64)
        self.name = name

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def image(self, index: int) -> tv_tensors.Image:
        a = np.asarray(self.images[index])
        if a.ndim == 2:
            a = a[:, :, None]
        if a.shape[-1] == 1:
            a = np.repeat(a, 3, axis=-1)
        return tv_tensors.Image(torch.from_numpy(np.array(a, copy=True)).permute(2, 0, 1))

    def __getitem__(self, index: int) -> tuple[tv_tensors.Image, int]:
        return self.image(index), int(self.labels[index])


class _ImageFiles(Dataset):
    """``(path, label)`` pairs read as RGB PIL images (ImageFolder without its class discovery)."""

    def __init__(self, samples: Sequence[tuple[str, int]]) -> None:
        self.samples = list(samples)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        try:
            img = tvd.folder.default_loader(path)
        except Exception as e:  # PIL raises many types for broken files
            raise ValueError(f"cannot read image file {path}: {e}") from e
        return img, label


def _find_images(folder: Path, class_to_idx: dict[str, int], what: str) -> list[tuple[str, int]]:
    """Samples of ``folder/<class>/*`` for the given classes; an error naming a missing class folder."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{what}: no folder {folder}")
    samples: list[tuple[str, int]] = []
    for cls, idx in sorted(class_to_idx.items(), key=lambda kv: kv[1]):
        d = folder / cls
        if not d.is_dir():
            raise FileNotFoundError(f"{what}: class folder {d} is missing")
        for root, _, files in sorted(os.walk(d, followlinks=True)):
            for f in sorted(files):
                if f.lower().endswith(IMAGE_EXTENSIONS):
                    samples.append((os.path.join(root, f), idx))
    if not samples:
        raise FileNotFoundError(f"{what}: no image files ({', '.join(IMAGE_EXTENSIONS)}) under {folder}")
    return samples


def _class_folders(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no folder {folder} (expected {folder.parent}/train/<class>/* and /val/<class>/*)"
        )
    classes = sorted(e.name for e in os.scandir(folder) if e.is_dir())
    if not classes:
        raise FileNotFoundError(f"{folder} holds no class folders")
    return classes


def read_class_list(path: str | os.PathLike) -> list[str]:
    """Class folder names, one a line (``#`` comments and blank lines ignored)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--class-list {p}: no such file")
    names = [ln.split("#", 1)[0].strip() for ln in p.read_text().splitlines()]
    names = [n for n in names if n]
    if not names or len(set(names)) != len(names):
        raise ValueError(
            f"--class-list {p}: expected distinct class names, one a line; got {len(names)} names"
        )
    return names


def imagenet100_wnids() -> list[str]:
    """The 100 WNIDs of ImageNet-100 (every 10th of the sorted ImageNet-1k WNIDs), in order."""
    text = resources.files("prime_augment").joinpath("data/imagenet100_wnids.txt").read_text()
    names = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    assert len(names) == 100, "the packaged ImageNet-100 class list is damaged"
    return names


# ---------------------------------------------------------------------------------------------- spec
@dataclass
class DataSpec:
    """A dataset ready for the recipes.

    Attributes:
        name: the ``--dataset`` value.
        train, val: datasets of ``(untransformed image, label)``.
        classes: class names, index = label.
        image_size: side of the (square) model input.
        mean, std: normalisation the model applies (inside the model).
        family: ``"small"`` (CIFAR-like: pad-and-crop, no resizing) or ``"large"`` (ImageNet-like).
        train_transform, eval_transform: v2 transforms to a uint8 ``tv_tensors.Image``.
        preprocessing: human-readable record of the transforms (written into results).
    """

    name: str
    train: Dataset
    val: Dataset
    classes: list[str]
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    family: str
    train_transform: Callable[[Any], Any]
    eval_transform: Callable[[Any], Any]
    preprocessing: dict[str, str] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _transforms(family: str, size: int) -> tuple[Callable, Callable, dict[str, str]]:
    if family == "small":
        train = v2.Compose([v2.ToImage(), v2.RandomCrop(size, padding=4), v2.RandomHorizontalFlip()])
        evalt = v2.Compose([v2.ToImage(), v2.Resize(size, antialias=True), v2.CenterCrop(size)])
        record = {
            "train": f"RandomCrop({size}, padding=4), RandomHorizontalFlip",
            "eval": f"none at {size}px (Resize({size}) + CenterCrop({size}) for other sizes)",
        }
    else:
        resize = round(size / 0.875)
        train = v2.Compose(
            [v2.ToImage(), v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip()]
        )
        evalt = v2.Compose([v2.ToImage(), v2.Resize(resize, antialias=True), v2.CenterCrop(size)])
        record = {
            "train": f"RandomResizedCrop({size}), RandomHorizontalFlip",
            "eval": f"Resize({resize}), CenterCrop({size})",
        }
    record["normalisation"] = "inside the model (mean/std of the model record); inputs in [0, 1]"
    return train, evalt, record


def _load_npy(path: Path, what: str, mmap: bool = True) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"{what}: missing file {path}")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except Exception as e:
        raise ValueError(f"{what}: cannot read {path} as a .npy array ({e})") from e


def _numpy_split(root: Path, split: str) -> ArrayDataset:
    names = ("train",) if split == "train" else ("test", "val")
    for n in names:
        img, lab = root / f"{n}_images.npy", root / f"{n}_labels.npy"
        if img.exists() or n == names[-1]:
            images = _load_npy(img, "--dataset numpy")
            labels = np.asarray(_load_npy(lab, "--dataset numpy", mmap=False))
            try:
                return ArrayDataset(images, labels, name=str(img))
            except ValueError as e:
                raise ValueError(f"--dataset numpy: {e}") from e
    raise AssertionError("unreachable")  # pragma: no cover


def _folder_family(samples: list[tuple[str, int]]) -> tuple[str, int]:
    from PIL import Image

    with Image.open(samples[0][0]) as im:
        w, h = im.size
    side = min(w, h)
    return ("small", side) if side <= 64 else ("large", 224)


def build_data(
    dataset: str,
    data_dir: str | os.PathLike,
    *,
    download: bool = False,
    image_size: int | None = None,
    family: str | None = None,
    class_list: str | os.PathLike | None = None,
    train_subset: int | None = None,
    val_subset: int | None = None,
    subset_seed: int = 0,
) -> DataSpec:
    """Open a dataset (see the module docstring for the layouts).

    Args:
        dataset: one of :data:`DATASETS`.
        data_dir: its root folder.
        download: download CIFAR if it is missing.
        image_size: model input side; default 32 for CIFAR and arrays (their native size), 224 for
            ImageNet, and for ``folder`` the first training image's short side when it is at most 64 px
            (CIFAR-like handling), 224 otherwise.
        family: ``"small"`` or ``"large"`` transforms (default from the dataset, see :class:`DataSpec`).
        class_list: file of class folder names to use (one a line); replaces the packaged ImageNet-100
            list, or restricts ``folder``/``imagenet``.
        train_subset, val_subset: keep a random subset of that many images (stratification-free, seeded
            by ``subset_seed``) — for quick experiments.

    Returns:
        A :class:`DataSpec`.
    """
    if dataset not in DATASETS:
        raise ValueError(f"--dataset must be one of {DATASETS}, got {dataset!r}")
    root = Path(data_dir).expanduser()
    if family is not None and family not in ("small", "large"):
        raise ValueError(f"family must be 'small' or 'large', got {family!r}")
    if dataset in ("cifar10", "cifar100"):
        train, val, classes, fam, size = _open_cifar(dataset, root, download)
    elif dataset == "numpy":
        train, val, classes, fam, size = _open_numpy(root)
    else:
        train, val, classes, fam, size = _open_folders(dataset, root, class_list)
    fam = family or fam
    size = int(image_size or size)
    # ImageNet's statistics for ImageNet and for the large images of a folder or arrays
    imagenet = dataset in ("imagenet", "imagenet100") or (fam == "large" and dataset in ("folder", "numpy"))
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if imagenet else (CIFAR_MEAN, CIFAR_STD)
    train = _subset(train, train_subset, subset_seed, "--train-subset")
    val = _subset(val, val_subset, subset_seed + 1, "--val-subset")
    ttf, etf, record = _transforms(fam, size)
    record["dataset"] = f"{dataset} at {root}"
    return DataSpec(dataset, train, val, classes, size, tuple(mean), tuple(std), fam, ttf, etf, record)


#: what each dataset opener returns: (train, val, classes, family, image size)
_Opened = tuple[Dataset, Dataset, list[str], str, int]


def _open_cifar(dataset: str, root: Path, download: bool) -> _Opened:
    cls = tvd.CIFAR10 if dataset == "cifar10" else tvd.CIFAR100
    try:
        tr = cls(str(root), train=True, download=download)
        va = cls(str(root), train=False, download=download)
    except RuntimeError as e:
        raise FileNotFoundError(
            f"--dataset {dataset}: not found in --data-dir {root} ({e}); pass --download to fetch it"
        ) from e
    train = ArrayDataset(tr.data, np.asarray(tr.targets), name=f"{dataset} train")
    val = ArrayDataset(va.data, np.asarray(va.targets), name=f"{dataset} test")
    return train, val, list(tr.classes), "small", 32


def _open_numpy(root: Path) -> _Opened:
    train, val = _numpy_split(root, "train"), _numpy_split(root, "test")
    if not len(train):
        raise ValueError(f"--dataset numpy: {train.name} holds no images")
    n_cls = int(np.concatenate([train.labels, val.labels]).max()) + 1
    side = train.images.shape[1]
    return train, val, [str(i) for i in range(n_cls)], *(("small", side) if side <= 64 else ("large", 224))


def _open_folders(dataset: str, root: Path, class_list: str | os.PathLike | None) -> _Opened:
    """``folder``, ``imagenet``, ``imagenet100``: ``train/<class>/*`` and ``val/<class>/*``."""
    train_dir, val_dir = root / "train", root / "val"
    found = _class_folders(train_dir)
    if class_list is not None:
        wanted = read_class_list(class_list)
    elif dataset == "imagenet100":
        wanted = imagenet100_wnids()
    else:
        wanted = found
    missing = sorted(set(wanted) - set(found))
    if missing:
        raise FileNotFoundError(
            f"--dataset {dataset}: {len(missing)} class folder(s) missing under {train_dir}, "
            f"e.g. {missing[:3]}"
        )
    if dataset == "imagenet" and class_list is None and len(found) != 1000:
        raise ValueError(
            f"--dataset imagenet: {train_dir} holds {len(found)} class folders, expected the 1000 WNIDs "
            "(use --dataset folder for other trees, or --class-list)"
        )
    classes = list(wanted)
    class_to_idx = {c: i for i, c in enumerate(classes)}
    train = _ImageFiles(_find_images(train_dir, class_to_idx, f"--dataset {dataset} train"))
    val = _ImageFiles(_find_images(val_dir, class_to_idx, f"--dataset {dataset} val"))
    fam, size = _folder_family(train.samples) if dataset == "folder" else ("large", 224)
    return train, val, classes, fam, size


class _Subset(Dataset):
    def __init__(self, base: Dataset, indices: np.ndarray) -> None:
        self.base, self.indices = base, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        return self.base[int(self.indices[i])]


def _subset(ds: Dataset, n: int | None, seed: int, what: str) -> Dataset:
    if n is None or n >= len(ds):
        return ds
    if n <= 0:
        raise ValueError(f"{what} must be positive, got {n}")
    idx = np.sort(np.random.default_rng(seed).choice(len(ds), size=n, replace=False))
    if isinstance(ds, ArrayDataset):  # stays an array (offline augmentation needs one)
        return ArrayDataset(ds.images[idx], ds.labels[idx], name=f"{ds.name}[{n}]")
    return _Subset(ds, idx)


# ---------------------------------------------------------------------------------------------- extra images
def _train_side(ds: Dataset) -> int | None:
    """The side of an array training set's images (``None`` for files)."""
    while isinstance(ds, _Subset):
        ds = ds.base
    return int(ds.images.shape[1]) if isinstance(ds, ArrayDataset) else None


def _check_classes(found: Sequence[str], spec: DataSpec, folder: Path, ignore_others: bool) -> None:
    missing = [c for c in spec.classes if c not in set(found)]
    unknown = [] if ignore_others else sorted(set(found) - set(spec.classes))
    if missing or unknown:
        raise ValueError(
            f"--extra-train-dir {folder}: its classes do not match the dataset's: missing {missing[:10]}"
            f"{' ...' if len(missing) > 10 else ''}, unknown {unknown[:10]}"
            f"{' ...' if len(unknown) > 10 else ''} (the dataset's {len(spec.classes)} classes: "
            f"{spec.classes[:10]}{' ...' if len(spec.classes) > 10 else ''}; found {sorted(found)[:10]})"
        )


def extra_train_set(
    folder: str | os.PathLike, spec: DataSpec, *, ignore_other_classes: bool = False
) -> Dataset:
    """Extra training images of a folder, labelled with the dataset's class indices.

    Args:
        folder: ``DIR/<class>/*`` image files, or ``DIR/images.npy`` + ``DIR/labels.npy`` (uint8
            ``[N, H, W, 3]``, integer labels in ``[0, num_classes)``; ``train_images.npy`` /
            ``train_labels.npy`` also work; an optional ``classes.txt`` is checked against the dataset's
            class names).
        spec: the dataset the images join (its classes, and for an array training set its image size).
        ignore_other_classes: class folders the dataset does not have are skipped (ImageNet-100 or a
            ``--class-list``: the dataset is a selection) instead of being an error.

    Returns:
        A dataset of ``(untransformed image, label)`` (:class:`ArrayDataset` for arrays).

    Raises:
        FileNotFoundError: no such folder, or neither layout in it.
        ValueError: a class mismatch (naming the folder, the missing and unknown classes), labels out of
            range or images of another size.
    """
    root = Path(folder).expanduser()
    what = f"--extra-train-dir {root}"
    if not root.is_dir():
        raise FileNotFoundError(f"{what}: no such folder")
    for img_name, lab_name in (("images.npy", "labels.npy"), ("train_images.npy", "train_labels.npy")):
        if (root / img_name).exists():
            images = _load_npy(root / img_name, what)
            labels = np.asarray(_load_npy(root / lab_name, what, mmap=False))
            try:
                ds = ArrayDataset(images, labels, name=str(root / img_name))
            except ValueError as e:
                raise ValueError(f"{what}: {e}") from e
            if (root / "classes.txt").exists():
                names = read_class_list(root / "classes.txt")
                if names != list(spec.classes):
                    _check_classes(names, spec, root, False)
                    raise ValueError(
                        f"{what}: classes.txt lists the dataset's classes in another order: {names[:10]}"
                    )
            if len(ds) and (ds.labels.min() < 0 or ds.labels.max() >= spec.num_classes):
                raise ValueError(
                    f"{what}: labels must be in [0, {spec.num_classes}), got [{ds.labels.min()}, "
                    f"{ds.labels.max()}]"
                )
            side = _train_side(spec.train) or (spec.image_size if spec.family == "small" else None)
            if side is not None and images.shape[1:3] != (side, side):
                raise ValueError(
                    f"{what}: images of {images.shape[1]}x{images.shape[2]} px, the training images are "
                    f"{side}x{side}"
                )
            return ds
    found = sorted(e.name for e in os.scandir(root) if e.is_dir())
    if not found:
        raise FileNotFoundError(
            f"{what}: expected class folders <class>/* or images.npy + labels.npy, found neither"
        )
    _check_classes(found, spec, root, ignore_other_classes)
    files = _ImageFiles(_find_images(root, {c: i for i, c in enumerate(spec.classes)}, what))
    if spec.family == "small":
        from PIL import Image

        with Image.open(files.samples[0][0]) as im:
            size = im.size
        side = _train_side(spec.train) or spec.image_size
        if size != (side, side):
            raise ValueError(
                f"{what}: {files.samples[0][0]} is {size[0]}x{size[1]} px, the training images are "
                f"{side}x{side} (small images are not resized)"
            )
    return files


def union_train_set(
    spec: DataSpec, folders: Sequence[str | os.PathLike], *, ignore_other_classes: bool = False
) -> Dataset:
    """The training set joined with the images of every folder (:func:`extra_train_set`).

    Arrays of the training images' size are concatenated into one :class:`ArrayDataset` (so offline
    augmentation still works); otherwise the result is a ``ConcatDataset``. The training set comes first.
    """
    extra = [extra_train_set(f, spec, ignore_other_classes=ignore_other_classes) for f in folders]
    parts = [spec.train, *extra]
    if not extra:
        return spec.train
    if all(isinstance(p, ArrayDataset) for p in parts) and len({p.images.shape[1:] for p in parts}) == 1:
        images = np.concatenate([np.asarray(p.images) for p in parts])
        labels = np.concatenate([p.labels for p in parts])
        return ArrayDataset(images, labels, name=f"{parts[0].name} + {len(parts) - 1} extra folder(s)")
    return ConcatDataset(parts)


# ---------------------------------------------------------------------------------------------- corruptions
class _Block(Dataset):
    """Images ``start .. start + n`` of a memory-mapped corruption file, with their labels."""

    def __init__(self, images: np.ndarray, start: int, n: int, labels: np.ndarray, transform=None) -> None:
        self.images, self.start, self.n, self.labels, self.transform = images, start, n, labels, transform

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        a = np.asarray(self.images[self.start + i])
        if a.ndim == 2:
            a = np.repeat(a[:, :, None], 3, axis=-1)
        img = tv_tensors.Image(torch.from_numpy(np.array(a, copy=True)).permute(2, 0, 1))
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.labels[i])


class NpyCorruptions:
    """A corruption set in the CIFAR-10-C file format, read lazily.

    Args:
        root: folder holding ``labels.npy`` and one ``<corruption>.npy`` per corruption.
        corruptions: names to use (default: every ``*.npy`` but ``labels.npy`` and ``clean.npy`` (the clean
            copy ``make-corruptions`` writes), sorted, benchmark order first).
        num_severities: number of severity blocks in each file (5 in CIFAR-10-C).
        transform: applied to each uint8 ``tv_tensors.Image`` (e.g. a resize for another model size).

    Every file is validated when the set is opened (shape, dtype, block sizes), from the ``.npy``
    header only; the pixels are read block by block through a memory map.
    """

    layout = "npy"

    def __init__(
        self,
        root: str | os.PathLike,
        corruptions: Sequence[str] | None = None,
        *,
        num_severities: int = 5,
        transform: Callable | None = None,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"--corruptions-dir {self.root}: no such folder")
        self.num_severities = int(num_severities)
        self.transform = transform
        labels = _load_npy(self.root / "labels.npy", "corruption set", mmap=False)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or labels.size == 0:
            raise ValueError(
                f"corruption set: {self.root / 'labels.npy'} must be a non-empty integer vector, "
                f"got {labels.dtype} {labels.shape}"
            )
        found = sorted(p.stem for p in self.root.glob("*.npy") if p.name not in ("labels.npy", "clean.npy"))
        names = list(corruptions) if corruptions is not None else _benchmark_order(found)
        if not names:
            raise FileNotFoundError(f"corruption set: no <corruption>.npy files in {self.root}")
        self.corruptions = names
        self._arrays: dict[str, np.ndarray] = {}
        self.n = None
        for name in names:
            arr = _load_npy(self.root / f"{name}.npy", "corruption set")
            path = self.root / f"{name}.npy"
            if (
                arr.dtype != np.uint8
                or arr.ndim not in (3, 4)
                or (arr.ndim == 4 and arr.shape[-1] not in (1, 3))
            ):
                raise ValueError(
                    f"corruption set: {path} must be uint8 [S*N, H, W, 3], got {arr.dtype} {arr.shape}"
                )
            if arr.shape[0] % self.num_severities:
                raise ValueError(
                    f"corruption set: {path} holds {arr.shape[0]} images, not {self.num_severities} equal "
                    "severity blocks"
                )
            n = arr.shape[0] // self.num_severities
            if self.n is None:
                self.n = n
            elif n != self.n:
                raise ValueError(f"corruption set: {path} has blocks of {n} images, the other files {self.n}")
            self._arrays[name] = arr
        if labels.shape[0] == self.n * self.num_severities:
            blocks = labels.reshape(self.num_severities, self.n)
            self.labels = [np.asarray(b, dtype=np.int64) for b in blocks]
        elif labels.shape[0] == self.n:
            self.labels = [np.asarray(labels, dtype=np.int64)] * self.num_severities
        else:
            raise ValueError(
                f"corruption set: {self.root / 'labels.npy'} has {labels.shape[0]} labels; the images come "
                f"in "
                f"blocks of {self.n} (expected {self.n} or {self.n * self.num_severities} labels)"
            )
        self.image_shape = tuple(next(iter(self._arrays.values())).shape[1:])

    @property
    def severities(self) -> list[int]:
        return list(range(1, self.num_severities + 1))

    def dataset(self, corruption: str, severity: int) -> Dataset:
        """The ``N`` images of one corruption at one severity (1-based)."""
        if corruption not in self._arrays:
            raise ValueError(f"unknown corruption {corruption!r}: this set has {self.corruptions}")
        if severity not in self.severities:
            raise ValueError(f"severity must be in {self.severities}, got {severity!r}")
        start = (severity - 1) * self.n
        return _Block(self._arrays[corruption], start, self.n, self.labels[severity - 1], self.transform)

    def describe(self) -> str:
        return (
            f"CIFAR-10-C format at {self.root}: {len(self.corruptions)} corruptions x "
            f"{self.num_severities} severities x {self.n} images of {self.image_shape}"
        )


class FolderCorruptions:
    """A corruption set in the ImageNet-C layout ``root/<corruption>/<severity>/<class>/*``.

    Args:
        root: the folder.
        class_to_idx: the model's classes (the class folders must be among them; other classes, e.g.
            the 900 others for ImageNet-100, are ignored).
        transform: applied to each PIL image (the eval preprocessing; it must end in a uint8 image).
        corruptions: names to use (default: every sub-folder, benchmark order first).
    """

    layout = "folder"

    def __init__(
        self,
        root: str | os.PathLike,
        class_to_idx: dict[str, int],
        *,
        transform: Callable | None = None,
        corruptions: Sequence[str] | None = None,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"--corruptions-dir {self.root}: no such folder")
        found = sorted(e.name for e in os.scandir(self.root) if e.is_dir())
        self.corruptions = list(corruptions) if corruptions is not None else _benchmark_order(found)
        if not self.corruptions:
            raise FileNotFoundError(
                f"corruption set: no <corruption>/<severity>/<class>/ folders in {self.root}"
            )
        self.class_to_idx = dict(class_to_idx)
        self.transform = transform
        sev: set[int] | None = None
        for c in self.corruptions:
            d = self.root / c
            if not d.is_dir():
                raise FileNotFoundError(f"corruption set: missing folder {d}")
            s = {int(e.name) for e in os.scandir(d) if e.is_dir() and e.name.isdigit()}
            if not s:
                raise FileNotFoundError(f"corruption set: {d} has no severity folders 1..5")
            if sev is not None and s != sev:
                raise ValueError(
                    f"corruption set: {d} has severities {sorted(s)}, other corruptions {sorted(sev)}"
                )
            sev = s
        self._severities = sorted(sev or [])

    @property
    def severities(self) -> list[int]:
        return list(self._severities)

    def dataset(self, corruption: str, severity: int) -> Dataset:
        if corruption not in self.corruptions:
            raise ValueError(f"unknown corruption {corruption!r}: this set has {self.corruptions}")
        d = self.root / corruption / str(severity)
        present = {e.name for e in os.scandir(d) if e.is_dir()} if d.is_dir() else set()
        classes = {c: i for c, i in self.class_to_idx.items() if c in present}
        if not classes:
            raise FileNotFoundError(f"corruption set: {d} holds none of the model's class folders")
        ds = _ImageFiles(_find_images(d, classes, "corruption set"))
        return MapDataset(ds, self.transform)

    def describe(self) -> str:
        n = len(self.corruptions)
        return f"ImageNet-C layout at {self.root}: {n} corruptions x severities {self._severities}"


class MapDataset(Dataset):
    """``(transform(x), y)`` over a dataset of ``(x, y)`` (``transform=None``: unchanged)."""

    def __init__(self, base: Dataset, transform: Callable | None) -> None:
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        x, y = self.base[i]
        return (self.transform(x) if self.transform is not None else x), y


def _benchmark_order(names: Sequence[str]) -> list[str]:
    order = {n: i for i, n in enumerate(BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS)}
    return sorted(names, key=lambda n: (order.get(n, len(order)), n))


def open_corruptions(
    root: str | os.PathLike,
    spec: DataSpec | None = None,
    *,
    corruptions: Sequence[str] | None = None,
    num_severities: int = 5,
) -> NpyCorruptions | FolderCorruptions:
    """Open a corruption set, detecting its layout (``labels.npy`` present: CIFAR-10-C format).

    For the folder layout ``spec`` supplies the classes and the eval preprocessing; for the ``.npy``
    format images of another size than the model's are resized (and the resize is recorded).
    """
    root = Path(root)
    if (root / "labels.npy").exists() or any(root.glob("*.npy")):
        tf = None
        ds = NpyCorruptions(root, corruptions, num_severities=num_severities)
        if spec is not None and ds.image_shape[0] != spec.image_size:
            tf = v2.Compose([v2.Resize(spec.image_size, antialias=True), v2.CenterCrop(spec.image_size)])
            ds.transform = tf
        return ds
    if spec is None:
        raise ValueError(f"{root}: the ImageNet-C folder layout needs the dataset's classes (a DataSpec)")
    class_to_idx = {c: i for i, c in enumerate(spec.classes)}
    if spec.family == "large":
        # ImageNet-C images are stored centre-cropped at 224 px: a centre crop (no resize) as in the benchmark
        tf = v2.Compose([v2.ToImage(), v2.CenterCrop(spec.image_size)])
    else:
        tf = spec.eval_transform
    return FolderCorruptions(root, class_to_idx, transform=tf, corruptions=corruptions)
