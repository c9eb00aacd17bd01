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
import importlib
import io
import json
import math
import os
import sys
import types
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .._common import PlainHelpFormatter, environment, nonneg_int, positive_int, write_json, write_text
from . import _cifar10c
from .data import BENCHMARK_CORRUPTIONS, EXTRA_CORRUPTIONS, IMAGE_EXTENSIONS

__all__ = [
    "BACKENDS",
    "BUILTIN_CORRUPTIONS",
    "apply_corruption",
    "available_corruptions",
    "load_imagecorruptions",
    "make_corruption_set",
]

BACKENDS = ("auto", "cifar10c", "imagecorruptions", "builtin")

EXAMPLE = """Example (a CIFAR-10-C-style set from 1000 test images of numpy arrays):
  prime-augment make-corruptions --input data/cifar10/test_images.npy --labels data/cifar10/test_labels.npy \\
      --limit 1000 --out data/cifar10-c-1k --workers 2
  prime-augment make-corruptions --input my_dataset/val --size 64 --backend builtin --out my_dataset-c
"""


# ---------------------------------------------------------------------------------------------- builtin set
def _gauss_kernel1d(sigma: float, truncate: float = 4.0) -> np.ndarray:
    r = max(1, int(truncate * sigma + 0.5))
    t = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def _filter2d(x: np.ndarray, kernel: np.ndarray, mode: str) -> np.ndarray:
    """Correlate each channel of ``x`` ``[B, H, W, C]`` with a 2-D kernel (odd size), padded by ``mode``."""
    kh, kw = kernel.shape
    ph, pw = kh // 2, kw // 2
    p = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)), mode=mode)
    out = np.zeros_like(x)
    h, w = x.shape[1:3]
    for i in range(kh):
        for j in range(kw):
            if kernel[i, j] != 0:
                out += kernel[i, j] * p[:, i : i + h, j : j + w]
    return out


def _gaussian_blur_arr(x: np.ndarray, sigma: float) -> np.ndarray:
    k = _gauss_kernel1d(sigma)
    return _filter2d(_filter2d(x, k[None, :], "edge"), k[:, None], "edge")


def _disk(radius: float, alias_blur: float) -> np.ndarray:
    """The anti-aliased disk kernel of ImageNet-C's defocus blur (3-tap Gaussian, 5 taps past radius 8)."""
    lim = 8 if radius <= 8 else math.ceil(radius)
    t = np.arange(-lim, lim + 1)
    xx, yy = np.meshgrid(t, t)
    d = ((xx**2 + yy**2) <= radius**2).astype(np.float64)
    d /= d.sum()
    taps = np.arange(-1.0, 2.0) if radius <= 8 else np.arange(-2.0, 3.0)
    k = np.exp(-0.5 * (taps / alias_blur) ** 2)
    k = (k / k.sum())[None]
    return _filter2d(_filter2d(d[None, :, :, None], k, "reflect"), k.T, "reflect")[0, :, :, 0]


def _zoom(x: np.ndarray, factor: float) -> np.ndarray:
    """Centre crop of ``1/factor`` of each image, zoomed back to full size (bilinear)."""
    import torch
    import torch.nn.functional as F

    h, w = x.shape[1:3]
    ch, cw = math.ceil(h / factor), math.ceil(w / factor)
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = torch.from_numpy(np.ascontiguousarray(x[:, top : top + ch, left : left + cw])).permute(0, 3, 1, 2)
    zh, zw = round(ch * factor), round(cw * factor)
    z = F.interpolate(crop, size=(zh, zw), mode="bilinear", align_corners=False)
    t, lft = (zh - h) // 2, (zw - w) // 2
    return z[:, :, t : t + h, lft : lft + w].permute(0, 2, 3, 1).numpy()


def _pil_each(x: np.ndarray, fn: Callable[[Image.Image], Image.Image]) -> np.ndarray:
    out = np.empty_like(x)
    for i, a in enumerate(x):
        img = Image.fromarray(np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8))
        out[i] = np.asarray(fn(img).convert("RGB"), dtype=np.float64) / 255.0
    return out


def _jpeg(quality: int) -> Callable[[Image.Image], Image.Image]:
    def f(img: Image.Image) -> Image.Image:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=quality)
        buf.seek(0)
        return Image.open(buf).convert("RGB")

    return f


def _pixelate(c: float) -> Callable[[Image.Image], Image.Image]:
    def f(img: Image.Image) -> Image.Image:
        w, h = img.size
        small = img.resize((max(1, int(w * c)), max(1, int(h * c))), Image.BOX)
        return small.resize((w, h), Image.BOX)

    return f


def _impulse(x: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    flip = rng.random(x.shape) < amount
    salt = rng.random(x.shape) < 0.5
    return np.where(flip, salt.astype(x.dtype), x)


#: the builtin corruptions: name -> (five severity parameters, fn(x [B,H,W,3] in [0,1], c, rng) -> x)
_BUILTIN: dict[str, tuple[list[Any], Callable[[np.ndarray, Any, np.random.Generator], np.ndarray]]] = {
    "gaussian_noise": ([0.04, 0.06, 0.08, 0.09, 0.10], lambda x, c, r: x + r.normal(size=x.shape, scale=c)),
    "shot_noise": ([500, 250, 100, 75, 50], lambda x, c, r: r.poisson(x * c) / c),
    "impulse_noise": ([0.01, 0.02, 0.03, 0.05, 0.07], _impulse),
    "speckle_noise": ([0.06, 0.1, 0.12, 0.16, 0.2], lambda x, c, r: x + x * r.normal(size=x.shape, scale=c)),
    "gaussian_blur": ([0.4, 0.6, 0.7, 0.8, 1.0], lambda x, c, r: _gaussian_blur_arr(x, c)),
    "defocus_blur": (
        [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)],
        lambda x, c, r: _filter2d(x, _disk(c[0], c[1]), "reflect"),
    ),
    "zoom_blur": (
        [
            np.arange(1, 1.06, 0.01),
            np.arange(1, 1.11, 0.01),
            np.arange(1, 1.16, 0.01),
            np.arange(1, 1.21, 0.01),
            np.arange(1, 1.26, 0.01),
        ],
        lambda x, c, r: (x + sum(_zoom(x, float(z)) for z in c)) / (len(c) + 1),
    ),
    "contrast": (
        [0.75, 0.5, 0.4, 0.3, 0.15],
        lambda x, c, r: (x - x.mean((1, 2), keepdims=True)) * c + x.mean((1, 2), keepdims=True),
    ),
    "brightness": ([0.05, 0.1, 0.15, 0.2, 0.3], lambda x, c, r: _hsv_shift(x, 2, 1.0, c)),
    "saturate": (
        [(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)],
        lambda x, c, r: _hsv_shift(x, 1, c[0], c[1]),
    ),
    "jpeg_compression": ([80, 65, 58, 50, 40], lambda x, c, r: _pil_each(x, _jpeg(c))),
    "pixelate": ([0.95, 0.9, 0.85, 0.75, 0.65], lambda x, c, r: _pil_each(x, _pixelate(c))),
}

#: names of the builtin corruptions
BUILTIN_CORRUPTIONS = tuple(_BUILTIN)


def _hsv_shift(x: np.ndarray, channel: int, scale: float, shift: float) -> np.ndarray:
    hsv = _cifar10c.sk_rgb2hsv(np.clip(x, 0, 1))
    hsv[..., channel] = np.clip(hsv[..., channel] * scale + shift, 0, 1)
    return _cifar10c.sk_hsv2rgb(hsv)


def _builtin(images: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    params, fn = _BUILTIN[name]
    rng = np.random.default_rng(seed)
    x = images.astype(np.float64) / 255.0
    y = fn(x, params[severity - 1], rng)
    return to_uint8(np.asarray(y) * 255.0)


def to_uint8(y: np.ndarray) -> np.ndarray:
    """``[0, 255]`` floats to uint8 as CIFAR-10-C / ImageNet-C do (``np.uint8`` of the clipped values:
    truncation toward zero, so 127.9 -> 127; not rounding)."""
    return np.clip(y, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------ imagecorruptions
class _NumpyShim(types.ModuleType):
    """numpy with the aliases imagecorruptions 1.1 uses and numpy >= 2 removed (``float_``, ...)."""

    _ALIASES: ClassVar[dict[str, Any]] = {
        "float_": np.float64,
        "float": float,
        "int": int,
        "bool": bool,
        "complex_": np.complex128,
    }

    def __init__(self) -> None:
        super().__init__("numpy")

    def __getattr__(self, name: str) -> Any:
        if name in self._ALIASES and not hasattr(np, name):
            return self._ALIASES[name]
        return getattr(np, name)


def _gaussian_shim(gaussian: Callable) -> Callable:
    """skimage's ``gaussian`` accepting the removed ``multichannel=`` keyword (scikit-image >= 0.19)."""

    def wrapped(image, *args, multichannel=None, **kwargs):
        if multichannel is not None and "channel_axis" not in kwargs:
            kwargs["channel_axis"] = -1 if multichannel else None
        return gaussian(image, *args, **kwargs)

    return wrapped


_IC: Any = None


def load_imagecorruptions():
    """Import ``imagecorruptions`` with local shims for its incompatibilities; ``None`` if unusable.

    Shims: a ``pkg_resources.resource_filename`` when setuptools no longer provides ``pkg_resources``
    (it only locates the package's frost images); ``scipy.ndimage.interpolation`` when SciPy dropped that
    namespace; the module's own ``np`` replaced by a proxy that adds ``np.float_`` etc.; its ``gaussian``
    wrapped to translate ``multichannel=`` to ``channel_axis=``.
    """
    global _IC
    if _IC is not None:
        return _IC or None
    try:
        try:
            import pkg_resources  # noqa: F401
        except ImportError:
            shim = types.ModuleType("pkg_resources")

            def resource_filename(module: str, name: str) -> str:
                # pkg_resources semantics: relative to the folder of the module (or package)
                return str(Path(importlib.import_module(module).__file__).parent / name)

            shim.resource_filename = resource_filename
            sys.modules["pkg_resources"] = shim
        try:
            importlib.import_module("scipy.ndimage.interpolation")
        except ImportError:
            import scipy.ndimage

            sys.modules["scipy.ndimage.interpolation"] = scipy.ndimage
        with warnings.catch_warnings():  # its own deprecated scipy import path
            warnings.simplefilter("ignore", DeprecationWarning)
            ic = importlib.import_module("imagecorruptions")
        mod = importlib.import_module("imagecorruptions.corruptions")
        mod.np = _NumpyShim()
        mod.gaussian = _gaussian_shim(mod.gaussian)
        _IC = ic
    except Exception as e:  # ImportError, or a broken dependency (cv2 without libGL, ...)
        _IC = False
        _IC_ERROR[0] = f"{type(e).__name__}: {e}"
        return None
    return _IC


_IC_ERROR = [""]


#: ImageNet-C's impulse-noise amounts (make_imagenet_c.py, as imagecorruptions 1.1)
IMAGENET_C_IMPULSE = (0.03, 0.06, 0.09, 0.17, 0.27)


def _with_imagecorruptions(images: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    ic = load_imagecorruptions()
    if name == "impulse_noise":  # today's scikit-image ignores np.random.seed: the 2018 draws, seeded
        rs = np.random.RandomState(seed % 2**32)
        c = IMAGENET_C_IMPULSE[severity - 1]
        return np.stack([np.uint8(_cifar10c._impulse_noise(img, c, rs)) for img in images])
    np.random.seed(seed % 2**32)  # noqa: NPY002 - imagecorruptions draws from numpy's global RNG
    out = np.empty_like(images)
    for i, img in enumerate(images):
        y = np.asarray(ic.corrupt(np.ascontiguousarray(img), severity=severity, corruption_name=name))
        if y.shape != img.shape:
            raise RuntimeError(
                f"imagecorruptions {name} returned shape {y.shape} for an image of {img.shape}"
            )
        out[i] = y
    return out


# ------------------------------------------------------------ CIFAR-10-C: make_cifar_c.py step for step
def _require_cifar10c(names: Sequence[str]) -> None:
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


#: corruptions of the ``cifar10c`` backend: the 19 of the CIFAR-10-C release (15 benchmark + 4 extra)
CIFAR10C_CORRUPTIONS = _cifar10c.CORRUPTIONS


def available_corruptions(backend: str) -> tuple[str, ...]:
    """Corruption names a backend provides (benchmark order)."""
    if backend == "builtin":
        return BUILTIN_CORRUPTIONS
    if backend == "imagecorruptions":
        return BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS
    if backend == "cifar10c":
        return CIFAR10C_CORRUPTIONS
    raise ValueError(f"--backend must be one of {BACKENDS[1:]} here, got {backend!r}")


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
        raise SystemExit(
            f"--backend {backend}: the imagecorruptions package is not usable ({_IC_ERROR[0]}); "
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
    if backend == "builtin":
        return _builtin(images, name, severity, seed)
    if backend == "cifar10c":
        return _with_cifar10c(images, name, severity, seed)
    return _with_imagecorruptions(images, name, severity, seed)


def _task(args: tuple) -> list[tuple[str, int, int, np.ndarray]]:
    path, name, severity, start, stop, backend, seed = args
    images = np.ascontiguousarray(np.load(path, mmap_mode="r")[start:stop])
    if severity is None:  # cifar10c: the script's seeding, one stream over severities 1..5, images in order
        rs = np.random.RandomState(seed % 2**32)
        return [(name, s, start, _cifar10c.corrupt_batch(images, name, s, rs)) for s in range(1, 6)]
    return [(name, severity, start, apply_corruption(images, name, severity, backend=backend, seed=seed))]


# ---------------------------------------------------------------------------------------------- inputs
def _read_input(
    path: Path, labels: str | None, size: int | None, limit: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray, list[str] | None, str, np.ndarray]:
    """Images ``[N, H, W, 3]`` uint8, labels, class names (folder input), a description and the indices
    of the images used in the source (its order: the array's rows, or the sorted class/file list)."""
    classes = None
    if path.is_file() and path.suffix == ".npy":
        try:
            images = np.load(path, mmap_mode="r")
        except Exception as e:
            raise ValueError(f"--input {path}: cannot read as .npy ({e})") from e
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(
                f"--input {path}: expected uint8 [N, H, W, 3], got {images.dtype} {images.shape}"
            )
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
    if not path.is_dir():
        raise FileNotFoundError(f"--input {path}: not a .npy file or a folder")
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
    backend = resolve_backend(backend, min(images.shape[1:3]))
    names = (
        list(corruptions)
        if corruptions
        else list(BUILTIN_CORRUPTIONS if backend == "builtin" else BENCHMARK_CORRUPTIONS)
    )
    unknown = [c for c in names if c not in available_corruptions(backend)]
    if unknown:
        raise ValueError(
            f"--corruptions {unknown}: not in the {backend} set {available_corruptions(backend)}"
        )
    if backend == "imagecorruptions" and min(images.shape[1:3]) < 32:
        raise ValueError(f"imagecorruptions needs images of at least 32 px, got {images.shape[1:3]}")
    if backend == "cifar10c":
        _require_cifar10c(names)
    n = images.shape[0]
    used = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
    if used.shape[0] != n:
        raise ValueError(f"indices: {used.shape[0]} indices for {n} images")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    src = out / ".source_images.npy"
    np.save(src, np.ascontiguousarray(images))
    meta = {
        "format": "CIFAR-10-C (severity blocks of N images, severity 1..5)",
        "backend": backend,
        "corruptions": names,
        "n": int(n),
        "shape": list(images.shape[1:]),
        "seed": seed,
        "source": source,
        "indices": [int(i) for i in used],
        "clean": "clean.npy",
        "rounding": "truncation (np.uint8 of the clipped float values, as make_cifar_c.py)",
        "environment": environment(),
    }
    if backend == "cifar10c":
        meta["imagecorruptions"] = _dist_version("imagecorruptions")
        meta["versions"] = {
            k: _dist_version(k)
            for k in ("numpy", "scipy", "opencv-python-headless", "opencv-python", "pillow")
        }
        meta["seeding"] = "np.random.RandomState(seed) per corruption, severities 1..5, images in order"
        meta["parameters"] = (
            "CIFAR-10-C: Hendrycks & Dietterich's make_cifar_c.py (hendrycks/robustness) step for step "
            "(its filters, resampling, random draws and np.uint8 truncation; ImageMagick's motion blur "
            "ported to numpy)"
        )
    elif backend == "imagecorruptions":
        meta["imagecorruptions"] = getattr(
            load_imagecorruptions(), "__version__", _dist_version("imagecorruptions")
        )
        meta["parameters"] = "ImageNet-C severity parameters (imagecorruptions)"
    else:
        meta["parameters"] = "CIFAR-10-C severity parameters (make_cifar_c.py), builtin implementation"
    np.save(out / ".labels.tmp.npy", np.tile(labels.astype(np.int64), 5))
    os.replace(out / ".labels.tmp.npy", out / "labels.npy")
    np.save(out / ".clean.tmp.npy", np.ascontiguousarray(images))
    os.replace(out / ".clean.tmp.npy", out / "clean.npy")
    if classes is not None:
        write_text(out / "classes.txt", "\n".join(classes) + "\n")
    todo = [c for c in names if overwrite or not (out / f"{c}.npy").exists()]
    tasks = []
    for c in todo:
        if backend == "cifar10c":
            tasks.append((str(src), c, None, 0, n, backend, seed))
            continue
        for s in range(1, 6):
            for start in range(0, n, chunk):
                tseed = seed * 1_000_003 + (names.index(c) * 10 + s) * 100_003 + start
                tasks.append((str(src), c, s, start, min(n, start + chunk), backend, tseed))
    bar = tqdm(
        total=len(todo) * 5 * n, desc=f"make-corruptions ({backend})", unit="img", disable=not progress
    )
    buffers: dict[str, np.ndarray] = {}
    remaining = {c: 5 * (1 if backend == "cifar10c" else math.ceil(n / chunk)) for c in todo}

    def done(results) -> None:
        for r in results:
            _store(*r)

    def _store(name: str, severity: int, start: int, arr: np.ndarray) -> None:
        if name not in buffers:
            buffers[name] = np.lib.format.open_memmap(
                out / f".{name}.partial.npy", mode="w+", dtype=np.uint8, shape=(5 * n, *images.shape[1:])
            )
        buffers[name][(severity - 1) * n + start : (severity - 1) * n + start + len(arr)] = arr
        bar.update(len(arr))
        remaining[name] -= 1
        if remaining[name] == 0:
            buffers[name].flush()
            del buffers[name]
            os.replace(out / f".{name}.partial.npy", out / f"{name}.npy")

    try:
        if workers > 0:
            with ProcessPoolExecutor(workers) as pool:
                for r in pool.map(_task, tasks, chunksize=1):
                    done(r)
        else:
            for t in tasks:
                done(_task(t))
    finally:
        bar.close()
        src.unlink(missing_ok=True)
    write_json(out / "meta.json", meta)
    return meta


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
