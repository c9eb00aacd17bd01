"""Random smooth color maps: ``gamma(x) = clip(x + sum_n b_n sin(pi n x), 0, 1)``, per channel."""

from __future__ import annotations

import math

import torch

from .. import _sampling
from ._utils import check_param, flatten_batch

__all__ = ["color_lut", "sample_color_params", "sine_color"]

#: The sine recurrence is re-seeded with directly computed sines every this many frequencies, which
#: bounds the growth of its rounding error (about ``eps * RESEED**2``).
RESEED = 32


def _check(x: object, coeffs: object, start: object) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim < 3:
        raise ValueError(f"x must have shape (..., C, H, W), got a tensor of shape {tuple(x.shape)}")
    if not (x.is_floating_point() or x.dtype == torch.uint8):
        raise TypeError(f"x must be a floating-point tensor in [0, 1] or a uint8 tensor, got dtype {x.dtype}")
    b = math.prod(x.shape[:-3])
    c = x.shape[-3]
    coeffs = check_param(coeffs, "coeffs", (None, None), b)
    if coeffs.shape[1] not in (1, c):
        raise ValueError(
            f"coeffs must have shape (B, C, D) or (B, 1, D) with C={c}, got {tuple(coeffs.shape)}"
        )
    start = check_param(start, "start", (), b)
    return x, coeffs, start


def _series(v: torch.Tensor, coeffs: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    """``sum_m coeffs[..., m] sin(pi (start + m) v)`` for values ``v`` of shape (B, C, N), by recurrence.

    ``sin((k + 1) t) = 2 cos(t) sin(k t) - sin((k - 1) t)`` with ``t = pi v``: memory O(v.numel()),
    never O(v.numel() * D). The seeds ``sin(pi k v)`` reduce the phase ``k v`` modulo 2 exactly in
    float64 (the product of a float32 value and an integer below 2**29 is exact there), so high
    frequencies lose no accuracy in float32.
    """
    d = coeffs.shape[-1]
    acc = torch.zeros_like(v)
    if d == 0:
        return acc
    two_cos = 2.0 * torch.cos(math.pi * v)
    v64 = v.to(torch.float64)
    k0 = start.to(torch.float64)[:, None, None]

    def exact_sin(k: torch.Tensor) -> torch.Tensor:
        return torch.sin(math.pi * torch.remainder(k * v64, 2.0)).to(v.dtype)

    s_prev = s_cur = acc
    for m in range(d):
        if m % RESEED == 0:  # (re-)seed the recurrence with exact sines
            s_prev, s_cur = exact_sin(k0 + (m - 1)), exact_sin(k0 + m)
        else:
            s_prev, s_cur = s_cur, two_cos * s_cur - s_prev
        acc.addcmul_(coeffs[..., m : m + 1], s_cur)
    return acc


def color_lut(coeffs: torch.Tensor, start: torch.Tensor, levels: int = 256) -> torch.Tensor:
    """The color map of every (image, channel) tabulated on ``levels`` equally spaced inputs.

    ``lut[b, c, v] = clip(v / (levels - 1) + sum_m coeffs[b, c, m] sin(pi (start_b + m) v / (levels - 1)))``
    computed in float64; ``sine_color`` on uint8 images is a lookup in this table.

    Returns:
        ``(B, C, levels)`` float64 values in ``[0, 1]`` (``C`` as in ``coeffs``).
    """
    v = torch.linspace(0.0, 1.0, levels, dtype=torch.float64, device=coeffs.device)
    v = v.expand(coeffs.shape[0], coeffs.shape[1], levels).contiguous()
    return (v + _series(v, coeffs.to(torch.float64), start)).clamp(0.0, 1.0)


def sine_color(
    x: torch.Tensor,
    coeffs: torch.Tensor,
    start: torch.Tensor,
    *,
    clip: bool = True,
) -> torch.Tensor:
    """Apply a random smooth, pixelwise color map to each channel of each image.

    .. math::

        \\gamma(x)_{b,c} = \\operatorname{clip}\\Big(x_{b,c} + \\sum_{m=0}^{D-1} a_{b,c,m}
        \\sin\\big(\\pi (s_b + m)\\, x_{b,c}\\big)\\Big)

    (the band of ``D`` consecutive frequencies ``s_b, ..., s_b + D - 1``; a zero coefficient switches a
    frequency off). The sines are evaluated with the recurrence
    ``sin((k+1)t) = 2 cos t sin(kt) - sin((k-1)t)``, so memory stays ``O(B C H W)`` whatever ``D``.

    ``uint8`` images are mapped exactly through a 256-entry table per (image, channel) computed in
    float64 (:func:`color_lut`) and returned as ``uint8`` (rounded): the result is
    ``round(255 * gamma(x / 255))``.

    Args:
        x: images, floating point in ``[0, 1]`` or ``uint8``, shape ``(..., C, H, W)``.
        coeffs: ``(B, C, D)`` coefficients ``a`` (or ``(B, 1, D)``: the same map on every channel).
        start: ``(B,)`` integer first frequency ``s_b >= 1`` of each image's band.
        clip: clip the result to ``[0, 1]`` (always done for ``uint8``).

    Returns:
        Same shape, dtype and device as ``x``; ``x`` is not modified.

    Example:
        >>> import torch
        >>> x = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
        >>> a = 0.05 * torch.randn(2, 3, 10, generator=torch.Generator().manual_seed(1))
        >>> y = sine_color(x, a, torch.tensor([1, 5]))
        >>> y.shape, torch.equal(sine_color(x, 0 * a, torch.tensor([1, 5])), x)
        (torch.Size([2, 3, 4, 4]), True)
    """
    x, coeffs, start = _check(x, coeffs, start)
    xb, _ = flatten_batch(x)
    b, c, h, w = xb.shape
    if b == 0 or xb.numel() == 0:
        return x.clone()
    start = start.to(xb.device)
    if x.dtype == torch.uint8:
        lut = color_lut(coeffs.to(xb.device), start)  # (B, C or 1, 256)
        table = (lut * 255.0).round_().to(torch.uint8).expand(b, c, 256)
        idx = xb.reshape(b, c, h * w).to(torch.int64)
        return table.gather(-1, idx).reshape(x.shape)
    compute = torch.float64 if xb.dtype == torch.float64 else torch.float32
    flat = xb.reshape(b, c, h * w).to(compute)
    out = flat + _series(flat, coeffs.to(device=xb.device, dtype=compute), start)
    if clip:
        out = out.clamp_(0.0, 1.0)
    return out.to(xb.dtype).reshape(x.shape)


def sample_color_params(
    batch_size: int,
    channels: int,
    *,
    cut_max: int = 100,
    bandwidth: int | None = None,
    variance_max: float = 0.01,
    strength: float = 1.0,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> dict[str, torch.Tensor]:
    """Draw the per-image parameters of :func:`sine_color` (the laws of the method's code).

    Per image: the highest frequency ``K ~ U{1, ..., cut_max}``, the variance
    ``v ~ U(0, strength^2 variance_max)``, the band start ``s ~ U{1, ..., K}`` (``s = 1``, i.e. all of
    ``1..K``, when ``bandwidth`` is ``None`` or ``>= K``); then per channel and frequency of the band
    ``s..min(s + bandwidth - 1, K)`` a coefficient ``a ~ N(0, v)``; frequencies above ``K`` get zero.

    Returns:
        ``{"cut": (B,), "variance": (B,), "start": (B,) int64, "coeffs": (B, C, D)}`` with
        ``D = min(bandwidth, cut_max)`` (``cut_max`` when ``bandwidth`` is ``None``).

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> p = sample_color_params(4, 3, cut_max=500, bandwidth=20, generator=g)
        >>> p["coeffs"].shape, p["start"].shape
        (torch.Size([4, 3, 20]), torch.Size([4]))
    """
    b = batch_size
    d = cut_max if bandwidth is None else min(bandwidth, cut_max)
    cut = _sampling.randint((b,), 1, cut_max, generator=generator, device=device)
    variance = _sampling.uniform(
        (b,),
        0.0,
        float(strength) ** 2 * variance_max,
        generator=generator,
        device=device,
        dtype=torch.float64,
    )
    if bandwidth is None:
        start = torch.ones(b, dtype=torch.int64, device=cut.device)
    else:
        start = _sampling.randint((b,), 1, cut, generator=generator, device=device)
        start = torch.where(cut <= bandwidth, torch.ones_like(start), start)
    z = _sampling.normal((b, channels, d), generator=generator, device=device, dtype=dtype)
    freq = start[:, None] + torch.arange(d, device=cut.device)[None, :]
    mask = (freq <= cut[:, None]).to(dtype)
    coeffs = variance.sqrt().to(dtype)[:, None, None] * z * mask[:, None, :]
    return {"cut": cut, "variance": variance.to(dtype), "start": start, "coeffs": coeffs}
