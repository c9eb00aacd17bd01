"""Random spectral (FIR) filtering: ``omega(x) = clip(x * (delta + w), 0, 1)``.

Read top to bottom: the kernel (one grouped convolution over the batch), then the sampler with the
method's laws.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import _random
from ._utils import check_image_batch, check_param, device_cached, flatten_batch

__all__ = ["METHODS", "PADDING_MODES", "sample_spectral_params", "spectral_filter"]

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
#: accepted values of ``spectral_filter(method=...)``; every one computes by the grouped convolution
METHODS = ("auto", "conv", "shift", "unfold")


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
    the image unchanged (no shift). Every image of the batch is filtered by one grouped convolution
    (one group per image and channel).

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
        method: one of :data:`METHODS`, kept for compatibility: all compute the same grouped
            convolution (the CPU evaluations by shifted copies and by an unfolded view are gone).

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
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    xb, lead = flatten_batch(x)
    b, c, h, w = xb.shape
    taps = _check_taps(taps, b, c)
    if xb.numel() == 0:
        return x.clone()
    k = taps.shape[-1]
    r = k // 2
    if padding_mode == "reflect" and r >= min(h, w):
        raise ValueError(f"reflect padding needs images larger than K // 2 = {r}, got {h}x{w}")
    # a true convolution is a correlation (conv2d) with the flipped filter; identity at the centre tap
    delta = _delta(k, xb.dtype, device=xb.device)
    kernel = taps.to(device=xb.device, dtype=xb.dtype).flip(-1, -2).add_(delta)
    kernel = kernel[:, None].expand(b, c, k, k) if taps.ndim == 3 else kernel  # (B, C, K, K)
    weight = kernel.reshape(b * c, 1, k, k)
    inp = xb.reshape(1, b * c, h, w)  # the batch as channels: one group per (image, channel)
    if padding_mode == "zeros":
        out = F.conv2d(inp, weight, padding=r, groups=b * c)
    else:
        out = F.conv2d(F.pad(inp, (r, r, r, r), mode=padding_mode), weight, groups=b * c)
    if clip:
        out = out.clamp_(0.0, 1.0)
    return out.reshape(*lead, c, h, w)


def _check_taps(taps: object, b: int, c: int) -> torch.Tensor:
    """``taps`` of :func:`spectral_filter`: ``(B, K, K)`` or ``(B, C, K, K)`` with an odd ``K``."""
    if not isinstance(taps, torch.Tensor):
        raise TypeError(f"taps must be a torch.Tensor, got {type(taps).__name__}")
    if taps.ndim == 3:  # one filter for all channels of an image
        taps = check_param(taps, "taps", (None, None), b)
    else:
        taps = check_param(taps, "taps", (c, None, None), b)
    k = taps.shape[-1]
    if taps.shape[-2] != k or k % 2 == 0:
        raise ValueError(f"taps must hold odd square K x K filters, got {tuple(taps.shape[-2:])}")
    return taps


@device_cached(maxsize=32)
def _delta(k: int, dtype: torch.dtype, *, device: torch.device | None) -> torch.Tensor:
    """The identity filter ``(K, K)``: one at the centre tap (cached per device, read-only)."""
    delta = torch.zeros(k, k, dtype=dtype)
    delta[k // 2, k // 2] = 1.0
    return delta.to(device)


def sample_spectral_params(
    batch_size: int,
    *,
    kernel_size: int = 3,
    sigma_max: float = 4.0,
    sigma_min: float = 0.0,
    strength: float = 1.0,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Draw the per-image parameters of :func:`spectral_filter`.

    Laws (per image ``i``): ``sigma_i ~ U(strength * sigma_min, strength * sigma_max)`` (the method:
    ``sigma_min = 0``; ``sigma_min = sigma_max`` fixes it), then the ``K x K`` taps
    ``w_i ~ N(0, sigma_i^2)`` i.i.d., shared by the channels of the image (the method's code).

    Returns:
        ``{"sigma": (B,), "taps": (B, K, K)}`` on ``device``.

    Example:
        >>> import torch
        >>> p = sample_spectral_params(4, generator=torch.Generator().manual_seed(0))
        >>> p["taps"].shape, p["sigma"].shape
        (torch.Size([4, 3, 3]), torch.Size([4]))
        >>> sample_spectral_params(2, sigma_min=4.0, strength=0.5)["sigma"].tolist()  # a fixed sigma
        [2.0, 2.0]
    """
    if not 0.0 <= sigma_min <= sigma_max:
        raise ValueError(f"sigma_min must be in [0, sigma_max={sigma_max}], got {sigma_min}")
    low, high = strength * sigma_min, strength * sigma_max
    sigma = _random.uniform((batch_size,), low, high, generator=generator, device=device)
    taps = sigma[:, None, None] * _random.normal(
        (batch_size, kernel_size, kernel_size), generator=generator, device=device
    )
    return {"sigma": sigma, "taps": taps}
