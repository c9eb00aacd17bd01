"""The 19 CIFAR-10-C corruptions of Hendrycks & Dietterich's ``make_cifar_c.py``, step for step.

Reference: github.com/hendrycks/robustness, ``ImageNet-C/create_c/make_cifar_c.py`` (the script that
made the released CIFAR-10-C). Every corruption here follows that script's operations in its order:
its filters (``scipy.ndimage`` as called by scikit-image's ``gaussian``, OpenCV's ``filter2D`` /
``warpAffine`` / ``Canny`` ..., SciPy's ``zoom(order=1)``, PIL's JPEG and BOX resize), its random draws
from a legacy numpy ``RandomState`` in the order the script draws them from numpy's global stream, and
its final ``np.uint8(...)`` (truncation, not rounding). Three places where the script's behaviour is
not what its text suggests are reproduced as it behaves:

* glass blur: ``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` on numpy views only *copies* the neighbour
  into ``x[h, w]`` (the second assignment writes back the value just copied). With the script's
  ``randint(-1, 1)`` offsets (``dx, dy`` in ``{-1, 0}``) and its descending loops, no source pixel has
  been written before it is read, so one iteration is the gather ``x[h, w] = x_old[h + dy, w + dx]``.
* snow: ``clipped_zoom`` trims the centre of the zoomed layer (34x34 at zoom 2.25) *before* the
  motion blur.
* impulse noise: the script called scikit-image's ``random_noise(mode='s&p')``, which in 2018 drew
  ``np.random.choice([True, False], p=[amount, 1 - amount])`` then the salt mask from numpy's global
  stream; today's scikit-image ignores ``np.random.seed``. Here both masks come from the given
  ``RandomState`` in that order, so a set is reproducible and has the 2018 law.

ImageMagick's ``MagickMotionBlurImage`` (motion blur, snow; called through Wand by the script) is
ported to numpy in :func:`magick_motion_blur`: its kernel (``2 ceil(radius) + 1`` taps of a
one-sided Gaussian), its offsets (``ceil(i cos / sin - 0.5)``), edge virtual pixels, 16-bit quanta
(``v * 257``, the sum rounded to a quantum) and the 8-bit PNG write-back (``quantum // 257``).

Needs: numpy, PIL, SciPy (``scipy.ndimage``), and for defocus blur, snow, frost, spatter and elastic
transform OpenCV (``cv2``); frost also needs the frost pictures shipped in the ``imagecorruptions``
package (the script's ``frost1.png`` .. ``frost5.jpg``). Images of any size ``H x W``: where the
script hard-codes 32 (glass-blur loop bounds, fog's 32x32 fractal, frost crop, pixelate, elastic's
``IMSIZE``) the image size is used, which is the script at 32x32.
"""

from __future__ import annotations

import importlib
import io
import math
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

__all__ = ["CORRUPTIONS", "PARAMS", "corrupt_batch", "magick_motion_blur", "missing_requirements"]

#: make_cifar_c.py's severity parameters, in the script's order (15 benchmark + 4 extra corruptions)
PARAMS: dict[str, list[Any]] = {
    "gaussian_noise": [0.04, 0.06, 0.08, 0.09, 0.10],
    "shot_noise": [500, 250, 100, 75, 50],
    "impulse_noise": [0.01, 0.02, 0.03, 0.05, 0.07],
    "defocus_blur": [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)],
    "glass_blur": [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)],
    "motion_blur": [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)],
    "zoom_blur": [np.arange(1, 1 + 0.01 * k, 0.01) for k in (6, 11, 16, 21, 26)],
    "snow": [
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    ],
    "frost": [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)],
    "fog": [(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)],
    "brightness": [0.05, 0.1, 0.15, 0.2, 0.3],
    "contrast": [0.75, 0.5, 0.4, 0.3, 0.15],
    # fractions of the image side (32 px in the script)
    "elastic_transform": [
        (0, 0, 0.08),
        (0.05, 0.2, 0.07),
        (0.08, 0.06, 0.06),
        (0.1, 0.04, 0.05),
        (0.1, 0.03, 0.03),
    ],
    "pixelate": [0.95, 0.9, 0.85, 0.75, 0.65],
    "jpeg_compression": [80, 65, 58, 50, 40],
    "speckle_noise": [0.06, 0.1, 0.12, 0.16, 0.2],
    "gaussian_blur": [0.4, 0.6, 0.7, 0.8, 1],
    "spatter": [
        (0.62, 0.1, 0.7, 0.7, 0.5, 0),
        (0.65, 0.1, 0.8, 0.7, 0.5, 0),
        (0.65, 0.3, 1, 0.69, 0.5, 0),
        (0.65, 0.1, 0.7, 0.69, 0.6, 1),
        (0.65, 0.1, 0.5, 0.68, 0.6, 1),
    ],
    "saturate": [(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)],
}
#: the 19 corruptions of the CIFAR-10-C release
CORRUPTIONS = tuple(PARAMS)

_NEEDS_CV2 = {"defocus_blur", "snow", "frost", "spatter", "elastic_transform"}
_NEEDS_SCIPY = {"glass_blur", "zoom_blur", "snow", "gaussian_blur", "spatter", "elastic_transform"}


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except Exception:  # ImportError, or a broken binary (cv2 without its libraries)
        return False
    return True


def missing_requirements(name: str) -> list[str]:
    """The packages a corruption needs that do not import here (``[]``: it can run)."""
    out = []
    if name in _NEEDS_SCIPY and not _importable("scipy.ndimage"):
        out.append("scipy")
    if name in _NEEDS_CV2 and not _importable("cv2"):
        out.append("opencv-python-headless (cv2)")
    if name == "frost" and _frost_dir() is None:
        out.append("imagecorruptions (its frost pictures)")
    return out


# ---------------------------------------------------------------------------------------------- helpers
def _sk_gaussian(image: np.ndarray, sigma: float, *, channels: bool, mode: str = "nearest", truncate=4.0):
    """scikit-image's ``gaussian`` on a float image: ``scipy.ndimage.gaussian_filter``, no blur across
    channels when ``channels`` (``multichannel=True``), float32 kept as float32."""
    from scipy import ndimage

    sig = [sigma] * (image.ndim - 1) + [0] if channels else sigma
    return ndimage.gaussian_filter(image, sig, mode=mode, truncate=truncate)


def _clipped_zoom(img: np.ndarray, zoom_factor: float) -> np.ndarray:
    """The script's ``clipped_zoom``: centre crop of ``ceil(side / z)``, ``scipy.ndimage.zoom(order=1)``
    by ``z``, then the centre ``H x W`` of the zoomed array (for a 34x34 result, rows/cols 1..32)."""
    from scipy.ndimage import zoom

    h, w = img.shape[:2]
    ch, cw = math.ceil(h / zoom_factor), math.ceil(w / zoom_factor)
    top, left = (h - ch) // 2, (w - cw) // 2
    out = zoom(img[top : top + ch, left : left + cw], (zoom_factor, zoom_factor, 1), order=1)
    trim_top, trim_left = (out.shape[0] - h) // 2, (out.shape[1] - w) // 2
    return out[trim_top : trim_top + h, trim_left : trim_left + w]


def sk_rgb2hsv(arr: np.ndarray) -> np.ndarray:
    """scikit-image's ``rgb2hsv`` on float64 ``[..., 3]`` (same operations, same ties: blue over green
    over red when several channels are the maximum)."""
    out = np.empty_like(arr)
    out_v = arr.max(-1)
    delta = np.ptp(arr, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out_s = delta / out_v
        out_s[delta == 0.0] = 0.0
        idx = arr[..., 0] == out_v  # red is max
        out[idx, 0] = (arr[idx, 1] - arr[idx, 2]) / delta[idx]
        idx = arr[..., 1] == out_v  # green is max
        out[idx, 0] = 2.0 + (arr[idx, 2] - arr[idx, 0]) / delta[idx]
        idx = arr[..., 2] == out_v  # blue is max
        out[idx, 0] = 4.0 + (arr[idx, 0] - arr[idx, 1]) / delta[idx]
        out_h = (out[..., 0] / 6.0) % 1.0
    out_h[delta == 0.0] = 0.0
    out[..., 0], out[..., 1], out[..., 2] = out_h, out_s, out_v
    out[np.isnan(out)] = 0
    return out


def sk_hsv2rgb(arr: np.ndarray) -> np.ndarray:
    """scikit-image's ``hsv2rgb`` on float64 ``[..., 3]``."""
    hi = np.floor(arr[..., 0] * 6)
    f = arr[..., 0] * 6 - hi
    p = arr[..., 2] * (1 - arr[..., 1])
    q = arr[..., 2] * (1 - f * arr[..., 1])
    t = arr[..., 2] * (1 - (1 - f) * arr[..., 1])
    v = arr[..., 2]
    hi = np.stack([hi, hi, hi], axis=-1).astype(np.uint8) % 6
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    return np.choose(hi, np.stack([np.stack(c, axis=-1) for c in choices]))


def magick_motion_blur(x: np.ndarray, radius: float, sigma: float, angle: float) -> np.ndarray:
    """ImageMagick 6's ``MotionBlurImage`` on an 8-bit image ``[H, W]`` or ``[H, W, C]`` (Q16, no HDRI),
    as read from and written back to an 8-bit PNG by the script (through Wand).

    ``width = 2 ceil(radius) + 1`` taps ``k_i ∝ exp(-i² / 2σ²)`` along the direction ``angle`` (degrees),
    tap ``i`` at ``(ceil(i cos a - 0.5), ceil(i sin a - 0.5))`` (column, row) from the pixel, edge
    pixels outside the image; the sum of the 16-bit quanta ``257 v`` rounded to a quantum, then
    ``quantum // 257`` (8 bits, as the PNG round trip gives: byte-identical to Wand 0.7.2 / ImageMagick
    6.9.11-60 Q16 on the 1,000 CIFAR-10 test images of ``docs/corruptions.md``).
    """
    width = int(2.0 * math.ceil(radius) + 1.0) if radius > 1e-12 else 3
    s = sigma if abs(sigma) >= 1e-12 else 1e-12
    kernel = [math.exp(-float(i * i) / (2.0 * s * s)) / (2.50662827463100024161 * s) for i in range(width)]
    norm = 0.0
    for k in kernel:  # sequential, as the C loop
        norm += k
    kernel = [k / norm for k in kernel]
    rad = math.pi * angle / 180.0
    px, py = width * math.sin(rad), width * math.cos(rad)
    hyp = math.hypot(px, py)
    h, w = x.shape[:2]
    rows, cols = np.arange(h), np.arange(w)
    q = x.astype(np.float64) * 257.0
    acc = np.zeros_like(q)
    for i, k in enumerate(kernel):
        ox, oy = math.ceil(i * py / hyp - 0.5), math.ceil(i * px / hyp - 0.5)
        r = np.clip(rows + oy, 0, h - 1)
        c = np.clip(cols + ox, 0, w - 1)
        acc += k * q[r][:, c]
    quanta = np.where(acc <= 0.0, 0.0, np.where(acc >= 65535.0, 65535.0, np.floor(acc + 0.5))).astype(
        np.int64
    )
    return (quanta // 257).astype(np.uint8)  # the 8-bit PNG write-back truncates (measured against Wand)


@lru_cache(maxsize=1)
def _frost_dir() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("imagecorruptions")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(next(iter(spec.submodule_search_locations))) / "frost"
    return d if (d / "frost1.png").is_file() else None


@lru_cache(maxsize=16)
def _frost_picture(idx: int, scale: float) -> np.ndarray:
    import cv2

    name = ["frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg"][idx]
    frost = cv2.imread(str(_frost_dir() / name))
    frost = cv2.resize(frost, (0, 0), fx=scale, fy=scale)
    frost.setflags(write=False)
    return frost


def _plasma_fractal(rs: np.random.RandomState, mapsize: int, wibbledecay: float) -> np.ndarray:
    """The script's diamond-square height map in ``[0, 1]`` (its draws, in its order)."""
    maparray = np.zeros((mapsize, mapsize), dtype=np.float64)
    stepsize = mapsize
    wibble = 100.0

    def wibbledmean(array: np.ndarray) -> np.ndarray:
        return array / 4 + wibble * rs.uniform(-wibble, wibble, array.shape)

    while stepsize >= 2:
        half = stepsize // 2
        corner = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        square = corner + np.roll(corner, shift=-1, axis=0)
        square += np.roll(square, shift=-1, axis=1)
        maparray[half:mapsize:stepsize, half:mapsize:stepsize] = wibbledmean(square)
        dr = maparray[half:mapsize:stepsize, half:mapsize:stepsize]
        ul = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        lt = (dr + np.roll(dr, 1, axis=0)) + (ul + np.roll(ul, -1, axis=1))
        maparray[0:mapsize:stepsize, half:mapsize:stepsize] = wibbledmean(lt)
        tt = (dr + np.roll(dr, 1, axis=1)) + (ul + np.roll(ul, -1, axis=0))
        maparray[half:mapsize:stepsize, 0:mapsize:stepsize] = wibbledmean(tt)
        stepsize //= 2
        wibble /= wibbledecay
    maparray -= maparray.min()
    return maparray / maparray.max()


def glass_shuffle(x: np.ndarray, offsets: np.ndarray, delta: int = 1) -> np.ndarray:
    """One pass of the script's glass-blur "swap" loop, as it behaves on numpy views: for ``h`` from
    ``H - delta`` down to ``delta + 1`` and ``w`` likewise, ``x[h, w] = x[h + dy, w + dx]`` (a copy; the
    neighbour is left unchanged). ``offsets[i, j] = (dx, dy)`` for the ``i``-th ``h`` and ``j``-th
    ``w`` of the loop. Exact as one gather when ``dx, dy <= 0`` (the script's ``randint(-1, 1)``):
    every source pixel is read before the loop reaches it. Returns a new array."""
    h, w = x.shape[:2]
    hs, ws = np.arange(h - delta, delta, -1), np.arange(w - delta, delta, -1)
    if offsets.shape[:2] != (len(hs), len(ws)) or offsets.shape[-1] != 2:
        raise ValueError(
            f"offsets must be [{len(hs)}, {len(ws)}, 2] for a {h}x{w} image, got {offsets.shape}"
        )
    if offsets.max(initial=0) > 0:
        raise ValueError("glass_shuffle is exact only for offsets <= 0 (the script's randint(-1, 1))")
    out = x.copy()
    rr = hs[:, None] + offsets[..., 1]
    cc = ws[None, :] + offsets[..., 0]
    out[hs[:, None], ws[None, :]] = x[rr, cc]
    return out


# ---------------------------------------------------------------------------------------------- corruptions
# Each takes one uint8 image [H, W, 3], the severity parameter and the RandomState, and returns what the
# script's function returns (a float array in [0, 255] or a PIL image), before np.uint8.
def _gaussian_noise(x, c, rs):
    x = np.array(x) / 255.0
    return np.clip(x + rs.normal(size=x.shape, scale=c), 0, 1) * 255


def _shot_noise(x, c, rs):
    x = np.array(x) / 255.0
    return np.clip(rs.poisson(x * c) / c, 0, 1) * 255


def _impulse_noise(x, c, rs):
    image = np.array(x) / 255.0
    out = image.copy()
    flipped = rs.choice([True, False], size=image.shape, p=[c, 1 - c])
    salted = rs.choice([True, False], size=image.shape, p=[0.5, 0.5])
    out[flipped & salted] = 1
    out[flipped & ~salted] = 0
    return np.clip(out, 0, 1) * 255


def _speckle_noise(x, c, rs):
    x = np.array(x) / 255.0
    return np.clip(x + x * rs.normal(size=x.shape, scale=c), 0, 1) * 255


def _gaussian_blur(x, c, rs):
    return np.clip(_sk_gaussian(np.array(x) / 255.0, c, channels=True), 0, 1) * 255


def _glass_blur(x, c, rs):
    sigma, delta, iterations = c
    x = np.uint8(_sk_gaussian(np.array(x) / 255.0, sigma, channels=True) * 255)
    h, w = x.shape[:2]
    n_h, n_w = max(0, h - 2 * delta), max(0, w - 2 * delta)
    for _ in range(iterations):
        offsets = rs.randint(-delta, delta, size=(n_h * n_w, 2)).reshape(n_h, n_w, 2)
        x = glass_shuffle(x, offsets, delta)
    return np.clip(_sk_gaussian(x / 255.0, sigma, channels=True), 0, 1) * 255


def _disk(radius: float, alias_blur: float) -> np.ndarray:
    import cv2

    if radius <= 8:
        lim, ksize = np.arange(-8, 8 + 1), (3, 3)
    else:
        lim, ksize = np.arange(-radius, radius + 1), (5, 5)
    xx, yy = np.meshgrid(lim, lim)
    d = np.array((xx**2 + yy**2) <= radius**2, dtype=np.float32)
    d /= np.sum(d)
    return cv2.GaussianBlur(d, ksize=ksize, sigmaX=alias_blur)


def _defocus_blur(x, c, rs):
    import cv2

    x = np.array(x) / 255.0
    kernel = _disk(c[0], c[1])
    channels = np.array([cv2.filter2D(x[:, :, d], -1, kernel) for d in range(3)]).transpose((1, 2, 0))
    return np.clip(channels, 0, 1) * 255


def _motion_blur(x, c, rs):
    return magick_motion_blur(np.asarray(x), c[0], c[1], rs.uniform(-45, 45))


def _zoom_blur(x, c, rs):
    x = (np.array(x) / 255.0).astype(np.float32)
    out = np.zeros_like(x)
    for z in c:
        out += _clipped_zoom(x, z)
    return np.clip((x + out) / (len(c) + 1), 0, 1) * 255


def _fog(x, c, rs):
    x = np.array(x) / 255.0
    max_val = x.max()
    h, w = x.shape[:2]
    size = 1 << max(0, math.ceil(math.log2(max(h, w, 1))))
    x += c[0] * _plasma_fractal(rs, size, c[1])[:h, :w][..., np.newaxis]
    return np.clip(x * max_val / (max_val + c[0]), 0, 1) * 255


def _frost(x, c, rs):
    idx = rs.randint(5)
    h, w = np.asarray(x).shape[:2]
    base = _frost_picture(idx, 1.0).shape[:2]
    scale = (
        0.2
        if (base[0] * 0.2 > h + 1 and base[1] * 0.2 > w + 1)
        else max(1.1 * h / base[0], 1.1 * w / base[1])
    )
    frost = _frost_picture(idx, scale)
    x_start, y_start = rs.randint(0, frost.shape[0] - h), rs.randint(0, frost.shape[1] - w)
    frost = frost[x_start : x_start + h, y_start : y_start + w][..., [2, 1, 0]]
    return np.clip(c[0] * np.array(x) + c[1] * frost, 0, 255)


def _snow(x, c, rs):
    import cv2

    x = np.array(x, dtype=np.float32) / 255.0
    h, w = x.shape[:2]
    layer = rs.normal(size=x.shape[:2], loc=c[0], scale=c[1])
    layer = _clipped_zoom(layer[..., np.newaxis], c[2])
    layer[layer < c[3]] = 0
    layer = (np.clip(layer.squeeze(-1), 0, 1) * 255).astype(np.uint8)
    layer = magick_motion_blur(layer, c[4], c[5], rs.uniform(-135, -45)) / 255.0
    layer = layer[..., np.newaxis]
    gray = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).reshape(h, w, 1)
    x = c[6] * x + (1 - c[6]) * np.maximum(x, gray * 1.5 + 0.5)
    return np.clip(x + layer + np.rot90(layer, k=2), 0, 1) * 255


def _spatter(x, c, rs):
    import cv2

    x = np.array(x, dtype=np.float32) / 255.0
    liquid = rs.normal(size=x.shape[:2], loc=c[0], scale=c[1])
    liquid = _sk_gaussian(liquid, c[2], channels=False)
    liquid[liquid < c[3]] = 0
    if c[5] == 0:
        liquid = (liquid * 255).astype(np.uint8)
        dist = 255 - cv2.Canny(liquid, 50, 150)
        dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
        _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
        dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
        dist = cv2.equalizeHist(dist)
        ker = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
        dist = cv2.filter2D(dist, cv2.CV_8U, ker)
        dist = cv2.blur(dist, (3, 3)).astype(np.float32)
        m = cv2.cvtColor(liquid * dist, cv2.COLOR_GRAY2BGRA)
        m /= np.max(m, axis=(0, 1))
        m *= c[4]
        ones = np.ones_like(m[..., :1])
        color = np.concatenate((175 / 255.0 * ones, 238 / 255.0 * ones, 238 / 255.0 * ones), axis=2)
        color = cv2.cvtColor(color, cv2.COLOR_BGR2BGRA)
        x = cv2.cvtColor(x, cv2.COLOR_BGR2BGRA)
        return cv2.cvtColor(np.clip(x + m * color, 0, 1), cv2.COLOR_BGRA2BGR) * 255
    m = np.where(liquid > c[3], 1, 0)
    m = _sk_gaussian(m.astype(np.float32), c[4], channels=False)
    m[m < 0.8] = 0
    ones = np.ones_like(x[..., :1])
    color = np.concatenate((63 / 255.0 * ones, 42 / 255.0 * ones, 20 / 255.0 * ones), axis=2)
    color *= m[..., np.newaxis]
    x *= 1 - m[..., np.newaxis]
    return np.clip(x + color, 0, 1) * 255


def _contrast(x, c, rs):
    x = np.array(x) / 255.0
    means = np.mean(x, axis=(0, 1), keepdims=True)
    return np.clip((x - means) * c + means, 0, 1) * 255


def _hsv_channel(x, channel: int, scale: float, shift: float):
    x = sk_rgb2hsv(np.array(x) / 255.0)
    x[:, :, channel] = np.clip(x[:, :, channel] * scale + shift, 0, 1)
    return np.clip(sk_hsv2rgb(x), 0, 1) * 255


def _brightness(x, c, rs):
    return _hsv_channel(x, 2, 1, c)


def _saturate(x, c, rs):
    return _hsv_channel(x, 1, c[0], c[1])


def _jpeg_compression(x, c, rs):
    buf = io.BytesIO()
    Image.fromarray(np.asarray(x)).save(buf, "JPEG", quality=c)
    return Image.open(buf)


def _pixelate(x, c, rs):
    img = Image.fromarray(np.asarray(x))
    w, h = img.size
    img = img.resize((int(w * c), int(h * c)), Image.BOX)
    return img.resize((w, h), Image.BOX)


def _elastic_transform(image, c, rs):
    import cv2
    from scipy.ndimage import map_coordinates

    image = np.array(image, dtype=np.float32) / 255.0
    shape = image.shape
    size = shape[:2]
    side = min(size)
    c = (side * c[0], side * c[1], side * c[2])
    center_square = np.float32(size) // 2
    square_size = min(size) // 3
    pts1 = np.float32(
        [
            center_square + square_size,
            [center_square[0] + square_size, center_square[1] - square_size],
            center_square - square_size,
        ]
    )
    pts2 = pts1 + rs.uniform(-c[2], c[2], size=pts1.shape).astype(np.float32)
    m = cv2.getAffineTransform(pts1, pts2)
    image = cv2.warpAffine(image, m, size[::-1], borderMode=cv2.BORDER_REFLECT_101)
    dx, dy = (
        (
            _sk_gaussian(rs.uniform(-1, 1, size=size), c[1], channels=False, mode="reflect", truncate=3)
            * c[0]
        ).astype(np.float32)[..., np.newaxis]
        for _ in range(2)
    )
    xx, yy, zz = np.meshgrid(np.arange(shape[1]), np.arange(shape[0]), np.arange(shape[2]))
    idx = np.reshape(yy + dy, (-1, 1)), np.reshape(xx + dx, (-1, 1)), np.reshape(zz, (-1, 1))
    return np.clip(map_coordinates(image, idx, order=1, mode="reflect").reshape(shape), 0, 1) * 255


_FUNCS: dict[str, Callable[[np.ndarray, Any, np.random.RandomState], Any]] = {
    name: globals()[f"_{name}"] for name in CORRUPTIONS
}


def corrupt_batch(images: np.ndarray, name: str, severity: int, rs: np.random.RandomState) -> np.ndarray:
    """``np.uint8(fn(image, severity))`` for each image of ``images`` (uint8 ``[B, H, W, 3]``) in order,
    every random draw from ``rs`` in the script's order (so ``rs = RandomState(seed)`` over severities
    1..5 and the images in order is the script under ``np.random.seed(seed)``)."""
    fn, c = _FUNCS[name], PARAMS[name][severity - 1]
    out = np.empty_like(images)
    for i, img in enumerate(images):
        out[i] = np.uint8(np.asarray(fn(img, c, rs)))  # truncation, as the script's np.uint8
    return out
