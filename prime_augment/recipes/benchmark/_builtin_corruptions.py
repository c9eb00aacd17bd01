"""The ``builtin`` backend of :mod:`.corruptions`: 12 CIFAR-10-C corruptions in numpy/PIL, no extra package.

gaussian/shot/impulse/speckle noise, gaussian/defocus/zoom blur, contrast, brightness, saturate, JPEG,
pixelate, with the severity parameters of Hendrycks & Dietterich's ``make_cifar_c.py`` (the one table,
:data:`._cifar10c.PARAMS`). Same formulas as the script, but the filters and resampling are this
module's (a separable Gaussian with edge padding, the anti-aliased disk by numpy correlation, bilinear
zooms in torch), batched, and the random draws come from a ``np.random.default_rng(seed)`` per call:
pixels differ from the official files (the ``cifar10c`` backend is byte-identical to the script).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from ._cifar10c import PARAMS, sk_hsv2rgb, sk_rgb2hsv

__all__ = ["CORRUPTIONS", "corrupt", "to_uint8"]


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


def _hsv_shift(x: np.ndarray, channel: int, scale: float, shift: float) -> np.ndarray:
    hsv = sk_rgb2hsv(np.clip(x, 0, 1))
    hsv[..., channel] = np.clip(hsv[..., channel] * scale + shift, 0, 1)
    return sk_hsv2rgb(hsv)


#: name -> fn(x [B, H, W, 3] float in [0, 1], the severity's parameter, rng) -> x (not yet clipped)
_FUNCTIONS: dict[str, Callable[[np.ndarray, Any, np.random.Generator], np.ndarray]] = {
    "gaussian_noise": lambda x, c, r: x + r.normal(size=x.shape, scale=c),
    "shot_noise": lambda x, c, r: r.poisson(x * c) / c,
    "impulse_noise": _impulse,
    "speckle_noise": lambda x, c, r: x + x * r.normal(size=x.shape, scale=c),
    "gaussian_blur": lambda x, c, r: _gaussian_blur_arr(x, c),
    "defocus_blur": lambda x, c, r: _filter2d(x, _disk(c[0], c[1]), "reflect"),
    "zoom_blur": lambda x, c, r: (x + sum(_zoom(x, float(z)) for z in c)) / (len(c) + 1),
    "contrast": lambda x, c, r: (x - x.mean((1, 2), keepdims=True)) * c + x.mean((1, 2), keepdims=True),
    "brightness": lambda x, c, r: _hsv_shift(x, 2, 1.0, c),
    "saturate": lambda x, c, r: _hsv_shift(x, 1, c[0], c[1]),
    "jpeg_compression": lambda x, c, r: _pil_each(x, _jpeg(c)),
    "pixelate": lambda x, c, r: _pil_each(x, _pixelate(c)),
}

#: the corruptions of the builtin backend
CORRUPTIONS = tuple(_FUNCTIONS)


def to_uint8(y: np.ndarray) -> np.ndarray:
    """``[0, 255]`` floats to uint8 as CIFAR-10-C / ImageNet-C do (``np.uint8`` of the clipped values:
    truncation toward zero, so 127.9 -> 127; not rounding)."""
    return np.clip(y, 0, 255).astype(np.uint8)


def corrupt(images: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    """Corruption ``name`` at ``severity`` (1..5) of a uint8 batch ``[B, H, W, 3]``, draws from ``seed``."""
    rng = np.random.default_rng(seed)
    x = images.astype(np.float64) / 255.0
    y = _FUNCTIONS[name](x, PARAMS[name][severity - 1], rng)
    return to_uint8(np.asarray(y) * 255.0)
