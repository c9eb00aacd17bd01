"""``prime-augment make-corruptions``: build a corruption set in the CIFAR-10-C file format.

Output folder: ``labels.npy`` (int64 ``[S*N]``, the labels repeated per severity block, as in
CIFAR-10-C), one ``<corruption>.npy`` per corruption (uint8 ``[S*N, H, W, 3]``, severity 1 first),
``clean.npy`` (the ``N`` clean images that were corrupted; ``evaluate`` scores the clean accuracy on
them and never as a corruption), ``meta.json`` (backend, versions, seed, source and the ``indices`` of
the source images used, parameters) and, for an image folder, ``classes.txt``. Each file is written
under a temporary name and renamed when complete; a rerun skips finished corruptions
(``--overwrite`` redoes them). Results do not depend on ``--workers``. Every backend converts to uint8
as the reference scripts do: ``np.uint8`` of the clipped values (truncation, not rounding).

Three corruption sets (``--backend``):

* ``cifar10c``: the 19 corruptions of the CIFAR-10-C release (15 benchmark + speckle noise, gaussian
  blur, spatter, saturate), Hendrycks & Dietterich's ``make_cifar_c.py`` (github.com/hendrycks/robustness)
  step for step: its filters and resampling (SciPy, OpenCV, PIL), ImageMagick's motion blur ported to
  numpy, its random draws in its order from ``np.random.RandomState(--seed)`` per corruption (the
  script under ``np.random.seed``), impulse noise with the 2018 scikit-image draws (seeded, so a set is
  reproducible). Measured on 1,000 CIFAR-10 test images against the script itself (SciPy 1.17,
  OpenCV 4.11, Wand 0.7.2 / ImageMagick 6.9.11, Pillow 13): every corruption byte-identical at every
  severity; impulse noise equal to the script run with 2018 scikit-image (today's ignores the seed);
  see docs/corruptions.md. Needs SciPy and OpenCV, frost the frost pictures of the imagecorruptions
  package: ``pip install 'prime-augment[corruptions]'``.
* ``imagecorruptions`` (the optional extra ``pip install 'prime-augment[corruptions]'``): the 15
  ImageNet-C benchmark corruptions plus the 4 extra ones, with the ImageNet-C severity parameters
  (made for large images: on 32 px images several are harsher than CIFAR-10-C's), truncated to uint8
  as ImageNet-C; impulse noise drawn from the seeded stream as above. Its incompatibilities with
  current numpy / scikit-image / SciPy / setuptools are shimmed locally (``np.float_``,
  ``multichannel=``, ``scipy.ndimage.interpolation``, ``pkg_resources``); numpy itself is not
  patched. Images must be at least 32 px.
* ``builtin``: 12 corruptions in numpy/PIL, no extra dependency, with the CIFAR-10-C severity
  parameters (Hendrycks & Dietterich's ``make_cifar_c.py``): gaussian/shot/impulse/speckle noise,
  gaussian/defocus/zoom blur, contrast, brightness, saturate, JPEG, pixelate. Same formulas, but the
  filters and resampling are this package's (zoom blur uses bilinear zooms), so pixels differ
  from the official files.

``auto`` uses ``cifar10c`` for images up to 64 px and ``imagecorruptions`` for larger ones when
imagecorruptions imports, ``builtin`` otherwise (the choice is printed and recorded in ``meta.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .._common import PlainHelpFormatter, environment, nonneg_int, positive_int, write_json, write_text
from . import _builtin_corruptions, _cifar10c, _imagecorruptions
from ._builtin_corruptions import to_uint8
from .data import BENCHMARK_CORRUPTIONS, EXTRA_CORRUPTIONS, IMAGE_EXTENSIONS

__all__ = [
    "BACKENDS",
    "BUILTIN_CORRUPTIONS",
    "CIFAR10C_CORRUPTIONS",
    "Backend",
    "apply_corruption",
    "available_corruptions",
    "load_imagecorruptions",
    "make_corruption_set",
    "resolve_backend",
    "to_uint8",
]

EXAMPLE = """Example (a CIFAR-10-C-style set from 1000 test images of numpy arrays):
  prime-augment make-corruptions --input data/cifar10/test_images.npy --labels data/cifar10/test_labels.npy \\
      --limit 1000 --out data/cifar10-c-1k --workers 2
  prime-augment make-corruptions --input my_dataset/val --size 64 --backend builtin --out my_dataset-c
"""

#: names of the builtin corruptions
BUILTIN_CORRUPTIONS = _builtin_corruptions.CORRUPTIONS
#: corruptions of the ``cifar10c`` backend: the 19 of the CIFAR-10-C release (15 benchmark + 4 extra)
CIFAR10C_CORRUPTIONS = _cifar10c.CORRUPTIONS
#: ``imagecorruptions`` with local shims, or ``None`` when it is not usable
load_imagecorruptions = _imagecorruptions.load


# ---------------------------------------------------------------------------------------------- backends
@dataclass(frozen=True)
class Backend:
    """One implementation of the corruptions, as :func:`apply_corruption` and ``make-corruptions`` use it.

    Attributes:
        corruptions: the names it provides (benchmark order).
        default: what a set holds when no ``--corruptions`` are named.
        corrupt: ``(uint8 [B, H, W, 3], name, severity 1..5, seed) -> uint8``, a new array.
        check: ``(names, image shape)``: a ``ValueError`` for what cannot run here.
        record: the lines of ``meta.json`` that describe it (versions, parameters, seeding).
        severities: ``(images, name, seed) -> [severity 1 .. 5]`` when one stream runs over the five
            severities and the images in order (``cifar10c``: the script's seeding); ``None``: each
            (corruption, severity, chunk) is seeded on its own.
    """

    corruptions: tuple[str, ...]
    default: tuple[str, ...]
    corrupt: Callable[[np.ndarray, str, int, int], np.ndarray]
    check: Callable[[Sequence[str], tuple[int, ...]], None]
    record: Callable[[], dict[str, Any]]
    severities: Callable[[np.ndarray, str, int], list[np.ndarray]] | None = None


def _require_cifar10c(names: Sequence[str], shape: tuple[int, ...] = ()) -> None:
    """A ``ValueError`` naming what is missing for the ``cifar10c`` corruptions ``names``."""
    missing = {c: m for c in names if (m := _cifar10c.missing_requirements(c))}
    if missing:
        pkgs = sorted({p for m in missing.values() for p in m})
        raise ValueError(
            f"--backend cifar10c: {', '.join(missing)} need {', '.join(pkgs)}; "
            "pip install 'prime-augment[corruptions]'"
        )


def _with_cifar10c(images: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    _require_cifar10c([name])
    return _cifar10c.corrupt_batch(images, name, severity, np.random.RandomState(seed % 2**32))


def _cifar10c_severities(images: np.ndarray, name: str, seed: int) -> list[np.ndarray]:
    """The script's seeding: one ``RandomState(seed)`` over severities 1..5, the images in order."""
    rs = np.random.RandomState(seed % 2**32)
    return [_cifar10c.corrupt_batch(images, name, s, rs) for s in range(1, 6)]


def _cifar10c_record() -> dict[str, Any]:
    return {
        "imagecorruptions": _dist_version("imagecorruptions"),
        "versions": {
            k: _dist_version(k)
            for k in ("numpy", "scipy", "opencv-python-headless", "opencv-python", "pillow")
        },
        "seeding": "np.random.RandomState(seed) per corruption, severities 1..5, images in order",
        "parameters": (
            "CIFAR-10-C: Hendrycks & Dietterich's make_cifar_c.py (hendrycks/robustness) step for step "
            "(its filters, resampling, random draws and np.uint8 truncation; ImageMagick's motion blur "
            "ported to numpy)"
        ),
    }


def _check_imagecorruptions(names: Sequence[str], shape: tuple[int, ...]) -> None:
    if min(shape[:2]) < 32:
        raise ValueError(f"imagecorruptions needs images of at least 32 px, got {tuple(shape[:2])}")


def _imagecorruptions_record() -> dict[str, Any]:
    version = getattr(load_imagecorruptions(), "__version__", _dist_version("imagecorruptions"))
    return {"imagecorruptions": version, "parameters": "ImageNet-C severity parameters (imagecorruptions)"}


_BACKENDS: dict[str, Backend] = {
    "cifar10c": Backend(
        CIFAR10C_CORRUPTIONS,
        BENCHMARK_CORRUPTIONS,
        _with_cifar10c,
        _require_cifar10c,
        _cifar10c_record,
        severities=_cifar10c_severities,
    ),
    "imagecorruptions": Backend(
        BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS,
        BENCHMARK_CORRUPTIONS,
        _imagecorruptions.corrupt,
        _check_imagecorruptions,
        _imagecorruptions_record,
    ),
    "builtin": Backend(
        BUILTIN_CORRUPTIONS,
        BUILTIN_CORRUPTIONS,
        _builtin_corruptions.corrupt,
        lambda names, shape: None,
        lambda: {"parameters": "CIFAR-10-C severity parameters (make_cifar_c.py), builtin implementation"},
    ),
}

#: the ``--backend`` choices: ``auto`` and the three sets
BACKENDS = ("auto", *_BACKENDS)


def available_corruptions(backend: str) -> tuple[str, ...]:
    """Corruption names a backend provides (benchmark order)."""
    if backend not in _BACKENDS:
        raise ValueError(f"--backend must be one of {BACKENDS[1:]} here, got {backend!r}")
    return _BACKENDS[backend].corruptions


def resolve_backend(backend: str, image_size: int | None = None) -> str:
    """The backend to use; ``auto``: ``cifar10c`` for images up to 64 px and ``imagecorruptions`` for
    larger ones when imagecorruptions imports, ``builtin`` otherwise. An error if imagecorruptions is
    asked for but absent (``cifar10c``'s needs are checked per corruption when it runs)."""
    if backend not in BACKENDS:
        raise ValueError(f"--backend must be one of {BACKENDS}, got {backend!r}")
    if backend in ("builtin", "cifar10c"):  # cifar10c: what each corruption needs is checked by name
        return backend
    ok = load_imagecorruptions() is not None
    if backend != "auto" and not ok:
        why = _imagecorruptions.load_error()
        raise SystemExit(
            f"--backend {backend}: the imagecorruptions package is not usable ({why}); "
            "pip install 'prime-augment[corruptions]', or use --backend builtin"
        )
    if backend != "auto":
        return backend
    if not ok:
        return "builtin"
    return "cifar10c" if image_size is not None and image_size <= 64 else "imagecorruptions"


def apply_corruption(
    images: np.ndarray, name: str, severity: int, *, backend: str = "builtin", seed: int = 0
):
    """Corrupt a uint8 batch ``[B, H, W, 3]`` (returns a new uint8 array; the input is not modified).

    Example:
        >>> import numpy as np
        >>> x = np.full((2, 32, 32, 3), 128, dtype=np.uint8)
        >>> y = apply_corruption(x, "contrast", 5)
        >>> y.shape, y.dtype, int(y[0, 0, 0, 0])  # 127.99999...: truncated, as make_cifar_c.py does
        ((2, 32, 32, 3), dtype('uint8'), 127)
    """
    if (
        not isinstance(images, np.ndarray)
        or images.dtype != np.uint8
        or images.ndim != 4
        or images.shape[-1] != 3
    ):
        raise ValueError(
            f"images must be a uint8 array [B, H, W, 3], got {getattr(images, 'shape', images)!r}"
        )
    if severity not in (1, 2, 3, 4, 5):
        raise ValueError(f"severity must be in 1..5, got {severity!r}")
    if name not in available_corruptions(backend):
        raise ValueError(
            f"unknown corruption {name!r} for backend {backend}: {available_corruptions(backend)}"
        )
    return _BACKENDS[backend].corrupt(images, name, severity, seed)


def _task(args: tuple) -> list[tuple[str, int, int, np.ndarray]]:
    path, name, severity, start, stop, backend_name, seed = args
    images = np.ascontiguousarray(np.load(path, mmap_mode="r")[start:stop])
    if severity is None:  # the backend's one stream over severities 1..5 and the images in order
        series = _BACKENDS[backend_name].severities(images, name, seed)
        return [(name, s, start, arr) for s, arr in enumerate(series, start=1)]
    corrupted = apply_corruption(images, name, severity, backend=backend_name, seed=seed)
    return [(name, severity, start, corrupted)]


# ---------------------------------------------------------------------------------------------- inputs
def _read_input(
    path: Path, labels: str | None, size: int | None, limit: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray, list[str] | None, str, np.ndarray]:
    """Images ``[N, H, W, 3]`` uint8, labels, class names (folder input), a description and the indices
    of the images used in the source (its order: the array's rows, or the sorted class/file list)."""
    if path.is_file() and path.suffix == ".npy":
        return _read_array(path, labels, size, limit, seed)
    if not path.is_dir():
        raise FileNotFoundError(f"--input {path}: not a .npy file or a folder")
    return _read_folder(path, size, limit, seed)


def _read_array(
    path: Path, labels: str | None, size: int | None, limit: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray, None, str, np.ndarray]:
    try:
        images = np.load(path, mmap_mode="r")
    except Exception as e:
        raise ValueError(f"--input {path}: cannot read as .npy ({e})") from e
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"--input {path}: expected uint8 [N, H, W, 3], got {images.dtype} {images.shape}")
    lab_path = Path(labels) if labels else path.with_name(path.name.replace("images", "labels"))
    if lab_path == path or not lab_path.is_file():
        raise FileNotFoundError(f"--labels: no labels file for {path} (looked for {lab_path})")
    lab = np.load(lab_path, allow_pickle=False)
    if lab.ndim != 1 or lab.shape[0] != images.shape[0] or not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(
            f"--labels {lab_path}: expected {images.shape[0]} integer labels, got {lab.dtype} {lab.shape}"
        )
    desc = f"array {path} (labels {lab_path})"
    idx = _pick(images.shape[0], limit, seed)
    images = np.asarray(images[idx]) if idx is not None else np.asarray(images)
    lab = lab[idx] if idx is not None else lab
    if size is not None and images.shape[1] != size:
        images = np.stack([_resize(Image.fromarray(a), size) for a in images])
    used = idx if idx is not None else np.arange(images.shape[0])
    return images, lab.astype(np.int64), None, desc, used


def _read_folder(
    path: Path, size: int | None, limit: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray, list[str], str, np.ndarray]:
    classes = sorted(e.name for e in os.scandir(path) if e.is_dir())
    if not classes:
        raise FileNotFoundError(f"--input {path}: expected class sub-folders <class>/<image files>")
    files = [
        (str(Path(root) / f), ci)
        for ci, c in enumerate(classes)
        for root, _, names in sorted(os.walk(path / c))
        for f in sorted(names)
        if f.lower().endswith(IMAGE_EXTENSIONS)
    ]
    if not files:
        raise FileNotFoundError(f"--input {path}: no image files")
    idx = _pick(len(files), limit, seed)
    if idx is not None:
        files = [files[i] for i in idx]
    imgs = []
    for f, _ in tqdm(files, desc="reading images", leave=False):
        try:
            with Image.open(f) as im:
                im = im.convert("RGB")
                imgs.append(np.asarray(_resize(im, size) if size is not None else im))
        except OSError as e:
            raise ValueError(f"cannot read image file {f}: {e}") from e
    shapes = {a.shape for a in imgs}
    if len(shapes) > 1:
        raise ValueError(f"--input {path}: images of several sizes {sorted(shapes)[:3]}...; pass --size S")
    used = idx if idx is not None else np.arange(len(files))
    labs = np.array([c for _, c in files], dtype=np.int64)
    return np.stack(imgs), labs, classes, f"image folder {path}", used


def _pick(n: int, limit: int | None, seed: int) -> np.ndarray | None:
    if limit is None or limit >= n:
        return None
    if limit < 1:
        raise ValueError(f"--limit must be >= 1, got {limit}")
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def _resize(im: Image.Image, size: int) -> np.ndarray:
    """Shorter side to ``size`` then a centre crop ``size x size``."""
    w, h = im.size
    s = size / min(w, h)
    im = im.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BILINEAR)
    w, h = im.size
    left, top = (w - size) // 2, (h - size) // 2
    return np.asarray(im.crop((left, top, left + size, top + size)))


# ---------------------------------------------------------------------------------------------- the set
def make_corruption_set(
    images: np.ndarray,
    labels: np.ndarray,
    out_dir: str | os.PathLike,
    *,
    corruptions: Sequence[str] | None = None,
    backend: str = "auto",
    seed: int = 0,
    workers: int = 0,
    chunk: int = 250,
    overwrite: bool = False,
    progress: bool = True,
    source: str = "array",
    classes: Sequence[str] | None = None,
    indices: Sequence[int] | np.ndarray | None = None,
) -> dict[str, Any]:
    """Write a CIFAR-10-C-format corruption set of ``images`` (uint8 ``[N, H, W, 3]``) into ``out_dir``.

    Besides the corruption files it writes ``clean.npy`` (the ``N`` clean images, as corrupted) and
    records in ``meta.json`` which source images they are (``indices``: positions in ``source``;
    default ``0 .. N-1``), so that ``prime-augment evaluate`` reports the clean accuracy on exactly
    these images. ``cifar10c`` uses the reference's seeding: one ``RandomState(seed)`` per corruption,
    severities 1..5 and the images in order (``np.random.seed(seed)`` before each corruption of
    ``make_cifar_c.py``); the other backends seed each (corruption, severity, chunk) on its own.

    Returns the metadata written to ``meta.json``.
    """
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(
            f"images must be a uint8 array [N, H, W, 3], got {getattr(images, 'shape', images)!r}"
        )
    name = resolve_backend(backend, min(images.shape[1:3]))
    chosen = _BACKENDS[name]
    names = list(corruptions) if corruptions else list(chosen.default)
    unknown = [c for c in names if c not in chosen.corruptions]
    if unknown:
        raise ValueError(f"--corruptions {unknown}: not in the {name} set {chosen.corruptions}")
    chosen.check(names, images.shape[1:])
    n = images.shape[0]
    used = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
    if used.shape[0] != n:
        raise ValueError(f"indices: {used.shape[0]} indices for {n} images")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": "CIFAR-10-C (severity blocks of N images, severity 1..5)",
        "backend": name,
        "corruptions": names,
        "n": int(n),
        "shape": list(images.shape[1:]),
        "seed": seed,
        "source": source,
        "indices": [int(i) for i in used],
        "clean": "clean.npy",
        "rounding": "truncation (np.uint8 of the clipped float values, as make_cifar_c.py)",
        "environment": environment(),
        **chosen.record(),
    }
    src = out / ".source_images.npy"
    np.save(src, np.ascontiguousarray(images))
    _write_labels_and_clean(out, images, labels, classes)
    todo = [c for c in names if overwrite or not (out / f"{c}.npy").exists()]
    tasks = _tasks(src, todo, names, name, n, chunk, seed)
    blocks = 5 * (1 if chosen.severities is not None else math.ceil(n / chunk))  # per corruption file
    files = _CorruptionFiles(out, todo, n, images.shape[1:], blocks)
    bar = tqdm(total=len(todo) * 5 * n, desc=f"make-corruptions ({name})", unit="img", disable=not progress)
    try:
        for results in _run(tasks, workers):
            for r in results:
                files.store(*r)
                bar.update(len(r[-1]))
    finally:
        bar.close()
        src.unlink(missing_ok=True)
    write_json(out / "meta.json", meta)
    return meta


def _write_labels_and_clean(
    out: Path, images: np.ndarray, labels: np.ndarray, classes: Sequence[str] | None
) -> None:
    """``labels.npy`` (the labels per severity block), ``clean.npy`` and, for a folder, ``classes.txt``."""
    np.save(out / ".labels.tmp.npy", np.tile(labels.astype(np.int64), 5))
    os.replace(out / ".labels.tmp.npy", out / "labels.npy")
    np.save(out / ".clean.tmp.npy", np.ascontiguousarray(images))
    os.replace(out / ".clean.tmp.npy", out / "clean.npy")
    if classes is not None:
        write_text(out / "classes.txt", "\n".join(classes) + "\n")


def _tasks(
    src: Path, todo: list[str], names: list[str], backend_name: str, n: int, chunk: int, seed: int
) -> list[tuple]:
    """One task per corruption for a backend with one stream over the severities, else one per
    (corruption, severity, chunk of images), each with its own seed (a function of the three)."""
    tasks = []
    for c in todo:
        if _BACKENDS[backend_name].severities is not None:
            tasks.append((str(src), c, None, 0, n, backend_name, seed))
            continue
        for s in range(1, 6):
            for start in range(0, n, chunk):
                tseed = seed * 1_000_003 + (names.index(c) * 10 + s) * 100_003 + start
                tasks.append((str(src), c, s, start, min(n, start + chunk), backend_name, tseed))
    return tasks


def _run(tasks: list[tuple], workers: int):
    """The tasks' results in order, in ``workers`` processes (0: in this one)."""
    if workers > 0:
        with ProcessPoolExecutor(workers) as pool:
            yield from pool.map(_task, tasks, chunksize=1)
    else:
        for t in tasks:
            yield _task(t)


class _CorruptionFiles:
    """Assembles each corruption's ``[5 N, H, W, 3]`` file from its tasks' blocks in a ``.partial``
    memmap, renamed to ``<name>.npy`` when its last block is in."""

    def __init__(self, out: Path, names: list[str], n: int, shape: tuple[int, ...], blocks: int) -> None:
        self.out, self.n, self.shape = out, n, tuple(shape)
        self.buffers: dict[str, np.ndarray] = {}
        self.remaining = dict.fromkeys(names, blocks)

    def store(self, name: str, severity: int, start: int, arr: np.ndarray) -> None:
        if name not in self.buffers:
            self.buffers[name] = np.lib.format.open_memmap(
                self.out / f".{name}.partial.npy", mode="w+", dtype=np.uint8, shape=(5 * self.n, *self.shape)
            )
        offset = (severity - 1) * self.n + start
        self.buffers[name][offset : offset + len(arr)] = arr
        self.remaining[name] -= 1
        if self.remaining[name] == 0:
            self.buffers[name].flush()
            del self.buffers[name]
            os.replace(self.out / f".{name}.partial.npy", self.out / f"{name}.npy")


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="prime-augment make-corruptions",
        description=__doc__,
        epilog=EXAMPLE,
        formatter_class=PlainHelpFormatter,
    )
    p.add_argument("--input", help="a uint8 [N, H, W, 3] .npy file, or a folder <class>/<images>")
    p.add_argument(
        "--labels", help="labels .npy for an array input (default: the file name with images->labels)"
    )
    p.add_argument("--out", help="output folder (CIFAR-10-C format)")
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="auto: cifar10c for images up to 64 px, imagecorruptions above (both need the extra), else "
        f"builtin ({len(BUILTIN_CORRUPTIONS)} corruptions, CIFAR-10-C parameters, no extra dependency)",
    )
    p.add_argument(
        "--corruptions", help="comma-separated names (default: the 15 benchmark ones / the builtin set)"
    )
    p.add_argument("--limit", type=positive_int, help="use a random subset of that many images")
    p.add_argument("--size", type=positive_int, help="resize (shorter side, centre crop) to SIZE x SIZE")
    p.add_argument(
        "--seed",
        type=nonneg_int,
        default=0,
        help="seeds the subset of --limit and every corruption's random draws (default 0)",
    )
    p.add_argument("--workers", type=nonneg_int, default=0, help="processes (0: in this process)")
    p.add_argument("--chunk", type=positive_int, default=250, help="images per task")
    p.add_argument("--overwrite", action="store_true", help="redo corruptions whose file exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--list", action="store_true", help="print the corruptions of the chosen backend and exit")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        backend = resolve_backend(args.backend, args.size)
        print(f"{backend}: {', '.join(available_corruptions(backend))}")
        return 0
    if not args.input or not args.out:
        raise SystemExit("prime-augment make-corruptions: --input and --out are required")
    if args.chunk < 1:
        raise SystemExit(f"--chunk must be >= 1, got {args.chunk}")
    try:
        images, labels, classes, desc, used = _read_input(
            Path(args.input), args.labels, args.size, args.limit, args.seed
        )
        names = [c.strip() for c in args.corruptions.split(",") if c.strip()] if args.corruptions else None
        backend = resolve_backend(args.backend, min(images.shape[1:3]))
        print(
            f"make-corruptions: {images.shape[0]} images {images.shape[1:]} from {desc}; backend {backend}",
            file=sys.stderr,
        )
        meta = make_corruption_set(
            images,
            labels,
            args.out,
            corruptions=names,
            backend=backend,
            seed=args.seed,
            workers=args.workers,
            chunk=args.chunk,
            overwrite=args.overwrite,
            progress=not args.no_progress,
            source=desc,
            classes=classes,
            indices=used,
        )
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"prime-augment make-corruptions: {e}") from e
    print(json.dumps({k: meta[k] for k in ("backend", "corruptions", "n", "shape")}))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
