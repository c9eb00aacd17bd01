"""Random spectral (FIR) filtering: ``omega(x) = clip(x * (delta + w), 0, 1)``."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from . import _random
from ._utils import check_image_batch, check_param, flatten_batch

__all__ = ["METHODS", "PADDING_MODES", "sample_spectral_params", "spectral_filter"]

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


METHODS = ("auto", "conv", "shift", "unfold")
#: ``method="auto"`` on the CPU contracts an unfolded view up to this many pixels, then shifts
_UNFOLD_MAX_PIXELS = 64 * 64


def spectral_filter(
    x: torch.Tensor,
    taps: torch.Tensor,
    *,
    padding_mode: str = "zeros",
    clip: bool = True,
    method: str = "auto",
) -> torch.Tensor:
    """Filter each image with its own FIR filter ``delta + w`` (a true 2-D convolution).

    .. math::

        \\omega(x)[c, h, v] = \\operatorname{clip}\\Big(\\sum_{a, b} (\\delta + w)[a, b]\\,
        x[c, h - a + r, v - b + r]\\Big), \\qquad r = K // 2,

    where ``delta`` is the identity filter, one at the **centre** tap ``(r, r)``, so ``w = 0`` leaves
    the image unchanged (no shift). Every image of the batch is filtered by one grouped convolution.

    Padding: ``"zeros"`` (default, as in the method's code: pixels outside the image count as black,
    so border pixels of a filtered image are darkened or brightened when the taps do not sum to one),
    ``"reflect"``, ``"replicate"`` or ``"circular"``; pixels at least ``K // 2`` from every border are
    unaffected by the choice.

    Args:
        x: images in ``[0, 1]``, floating point, shape ``(..., C, H, W)``.
        taps: the random part ``w`` of the filter, one per image: ``(B, K, K)`` (the same filter on
            every channel, as in the method) or ``(B, C, K, K)`` (one per channel); ``K`` odd and ``B``
            the number of images (the product of the leading dimensions of ``x``).
        padding_mode: one of ``"zeros"``, ``"reflect"``, ``"replicate"``, ``"circular"``.
        clip: clip the result to ``[0, 1]`` (the method always does).
        method: ``"conv"`` (one grouped convolution; the default on accelerators), ``"shift"``
            (a sum of ``K^2`` shifted, per-image-weighted copies; the CPU default above 64 x 64
            pixels, where grouped convolutions with one group per image and channel are slow),
            ``"unfold"`` (one contraction over an unfolded view; the CPU default up to 64 x 64, where
            the cost is the number of operations) or ``"auto"``. All compute the same sum (up to the
            order of floating-point additions).

    Returns:
        The filtered images, same shape, dtype and device as ``x``. ``x`` is not modified.

    Shape:
        ``x``: ``(..., C, H, W)``; ``taps``: ``(B, K, K)`` or ``(B, C, K, K)``.

    Example:
        >>> import torch
        >>> from prime_augment.functional import spectral_filter
        >>> x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> torch.equal(spectral_filter(x, torch.zeros(2, 3, 3)), x)  # w = 0 is the identity
        True
        >>> y = spectral_filter(x, 0.1 * torch.randn(2, 3, 3, generator=torch.Generator().manual_seed(1)))
        >>> y.shape, bool(y.min() >= 0), bool(y.max() <= 1)
        (torch.Size([2, 3, 8, 8]), True, True)
    """
    x = check_image_batch(x)
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    xb, lead = flatten_batch(x)
    b, c, h, w = xb.shape
    if not isinstance(taps, torch.Tensor):
        raise TypeError(f"taps must be a torch.Tensor, got {type(taps).__name__}")
    shared = taps.ndim == 3  # one filter for all channels of an image
    if shared:
        taps = check_param(taps, "taps", (None, None), b)
    else:
        taps = check_param(taps, "taps", (c, None, None), b)
    k = taps.shape[-1]
    if taps.shape[-2] != k or k % 2 == 0:
        raise ValueError(f"taps must hold odd square K x K filters, got {tuple(taps.shape[-2:])}")
    r = k // 2
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if xb.numel() == 0:
        return x.clone()
    if padding_mode == "reflect" and r >= min(h, w):
        raise ValueError(f"reflect padding needs images larger than K // 2 = {r}, got {h}x{w}")
    # True convolution = correlation with the flipped kernel; identity at the centre tap.
    kernel = taps.to(device=xb.device, dtype=xb.dtype).flip(-1, -2).add_(_delta(k, xb.device, xb.dtype))
    if method == "auto":
        method = ("unfold" if h * w <= _UNFOLD_MAX_PIXELS else "shift") if xb.device.type == "cpu" else "conv"
    pad_mode = "constant" if padding_mode == "zeros" else padding_mode
    if method == "unfold":  # one contraction over a (B, C, K, K, H, W) view of the padded images
        view = F.pad(xb, (r, r, r, r), mode=pad_mode).unfold(2, h, 1).unfold(3, w, 1)
        out = torch.einsum("bij,bcijhw->bchw" if shared else "bcij,bcijhw->bchw", kernel, view)
    elif method == "shift":
        padded = F.pad(xb, (r, r, r, r), mode=pad_mode)
        # per-image weights broadcast over the channels when the filter is shared
        weights = kernel.reshape(b, 1 if shared else c, k * k, 1, 1).unbind(2)
        out = padded[:, :, :h, :w] * weights[0]
        for i in range(1, k * k):
            a, j = divmod(i, k)
            out.addcmul_(padded[:, :, a : a + h, j : j + w], weights[i])
    else:
        inp = xb.reshape(1, b * c, h, w)
        kernel = kernel[:, None].expand(b, c, k, k) if shared else kernel
        kernel = kernel.reshape(b * c, 1, k, k)
        if padding_mode == "zeros":
            out = F.conv2d(inp, kernel, padding=r, groups=b * c)
        else:
            out = F.conv2d(F.pad(inp, (r, r, r, r), mode=padding_mode), kernel, groups=b * c)
    if clip:
        out = out.clamp(0.0, 1.0)
    return out.reshape(*lead, c, h, w)


@functools.lru_cache(maxsize=32)
def _delta_cached(k: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    delta = torch.zeros(k, k, dtype=dtype)
    delta[k // 2, k // 2] = 1.0
    return delta.to(device)


def _delta(k: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The identity filter ``(K, K)`` (cached, read-only)."""
    if torch.compiler.is_compiling():
        return _delta_cached.__wrapped__(k, str(device), dtype)
    return _delta_cached(k, str(device), dtype)


def sample_spectral_params(
    batch_size: int,
    *,
    kernel_size: int = 3,
    sigma_max: float = 4.0,
    strength: float = 1.0,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Draw the per-image parameters of :func:`spectral_filter`.

    Laws (per image ``i``): ``sigma_i ~ U(0, strength * sigma_max)``, then the ``K x K`` taps
    ``w_i ~ N(0, sigma_i^2)`` i.i.d., shared by the channels of the image (the method's code).

    Returns:
        ``{"sigma": (B,), "taps": (B, K, K)}`` on ``device``.

    Example:
        >>> import torch
        >>> p = sample_spectral_params(4, generator=torch.Generator().manual_seed(0))
        >>> p["taps"].shape, p["sigma"].shape
        (torch.Size([4, 3, 3]), torch.Size([4]))
    """
    sigma = _random.uniform((batch_size,), 0.0, strength * sigma_max, generator=generator, device=device)
    taps = sigma[:, None, None] * _random.normal(
        (batch_size, kernel_size, kernel_size), generator=generator, device=device
    )
    return {"sigma": sigma, "taps": taps}
