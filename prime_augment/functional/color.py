"""Random smooth color maps: ``gamma(x) = clip(x + sum_n b_n sin(pi n x), 0, 1)``, per channel."""

from __future__ import annotations

import math

import torch

from .. import _sampling
from . import _triton_color
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


class _Sines:
    """``sin(pi k v)`` for integer frequencies ``k``, with the phase ``k v`` reduced modulo 2 exactly.

    A plain ``sin(pi * k * v)`` in float32 loses about ``k * 1e-7`` (1e-4 at ``k = 500``) to the
    rounding of ``k v``. Here ``v = m / 2048 + lo`` with ``m`` an integer and ``|lo| <= 2**-12`` (both
    exact in float32), and ``k m mod 4096 = (k mod 4096) m mod 4096`` is integer arithmetic below 2**23,
    exact in float32; only the small ``k lo`` is rounded. No data-dependent branch, no float64 (slow
    on most GPUs). float64 values use a float64 remainder.
    """

    SCALE = 2048.0

    def __init__(self, v: torch.Tensor) -> None:
        self.dtype = v.dtype
        if v.dtype == torch.float64:
            self.v = v
        else:
            self.m = torch.round(v * self.SCALE)
            self.lo = v - self.m * (1.0 / self.SCALE)

    def __call__(self, k: torch.Tensor) -> torch.Tensor:
        if self.dtype == torch.float64:
            return torch.sin(math.pi * torch.remainder(k.to(torch.float64) * self.v, 2.0))
        k = k.to(self.dtype)
        period = 2.0 * self.SCALE
        whole = torch.remainder(torch.remainder(k, period) * self.m, period) * (1.0 / self.SCALE)
        return torch.sin(math.pi * torch.addcmul(whole, k, self.lo))


def _series(v: torch.Tensor, coeffs: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    """``sum_m coeffs[..., m] sin(pi (start + m) v)`` for values ``v`` of shape (B, C, N).

    Clenshaw's algorithm for the three-term recurrence ``sin((k + 1) t) = 2 cos(t) sin(k t) - sin((k - 1) t)``
    (``t = pi v``): per frequency two fused element-wise operations on ``v``'s size, so memory stays
    O(v.numel()) and the frequency axis is never materialised. The frequencies are processed in
    blocks of :data:`RESEED`; each block ends with two seeds ``sin(pi k v)`` whose phase ``k v`` is
    reduced modulo 2 exactly (:class:`_Sines`), which bounds the rounding error (about
    ``eps * RESEED**2``) and keeps high frequencies accurate in float32. On the CPU, trailing
    frequencies whose coefficients are zero for every image are skipped.
    """
    d = coeffs.shape[-1]
    acc = torch.zeros_like(v)
    if d == 0 or v.numel() == 0:
        return acc
    coeffs = coeffs.to(v.dtype)
    if v.device.type == "cpu":  # skipping needs the data: free on the CPU, a sync on accelerators
        active = torch.nonzero(coeffs.ne(0).flatten(0, -2).any(0))
        d = int(active[-1]) + 1 if active.numel() else 0
    alpha = 2.0 * torch.cos(math.pi * v)
    k_first = start[:, None, None]
    sines = _Sines(v)
    terms = coeffs[..., :d, None].unbind(-2)  # d tensors of shape (B, C, 1)
    for k0 in range(0, d, RESEED):
        block = terms[k0 : k0 + RESEED]
        b1 = b2 = None  # Clenshaw: b_j = a_j + alpha b_{j+1} - b_{j+2}, j = G-1 .. 1
        for a in reversed(block[1:]):
            if b1 is None:
                b_new = a.expand_as(v).clone()
            elif b2 is None:  # the same roundings as the general step with b_{j+2} = 0
                b_new = (alpha * b1).add_(a)
            else:  # in place in the buffer of b_{j+2}: no allocation per frequency
                b_new = b2.neg_().addcmul_(alpha, b1).add_(a)
            b1, b2 = b_new, b1
        # S = phi_0 (a_0 - b_2) + phi_1 b_1, phi_j = sin((k0 + j) t) from exact seeds
        phi0 = sines(k_first + k0)
        head = block[0] if b2 is None else block[0] - b2
        acc.addcmul_(phi0, head)
        if b1 is not None:
            phi1 = sines(k_first + (k0 + 1))
            acc.addcmul_(phi1, b1)
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
    frequency off). The series is evaluated with Clenshaw's algorithm for the sine recurrence
    ``sin((k+1)t) = 2 cos t sin(kt) - sin((k-1)t)``, re-seeded exactly every 32 frequencies, so memory
    stays ``O(B C H W)`` whatever ``D`` (the frequency axis is never materialised). On CUDA (float32,
    Triton installed) the whole series runs in one fused kernel, one read and one write of the batch;
    set ``PRIME_AUGMENT_DISABLE_TRITON=1`` to use the eager path everywhere.

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
    if _triton_color.available(flat):  # CUDA: one fused pass instead of two per frequency
        return _triton_color.sine_color_fused(flat, coeffs, start, clip=clip).to(xb.dtype).reshape(x.shape)
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
