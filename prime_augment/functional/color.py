"""Random smooth color maps, per image and channel.

.. math::

    \\gamma(x)_{b,c} = \\operatorname{clip}_{[0, 1]}\\Big(x_{b,c} + \\sum_{m=0}^{D-1} a_{b,c,m}
    \\sin\\big(\\pi (s_b + m)\\, x_{b,c}\\big)\\Big)

a band of ``D`` consecutive integer frequencies ``s_b, ..., s_b + D - 1`` per image, one coefficient
per (image, channel, frequency). Read top to bottom: the sampler of the method's laws
(:func:`sample_color_params`), the series that evaluates the sum (:func:`_series`), the kernel
(:func:`sine_color`) and the exact 256-level table of uint8 images (:func:`color_lut`). Faster
evaluators of the same sum (a tabulated interpolant on the CPU, a Triton kernel on CUDA) live in
:mod:`._fast_color`, behind one rule (:func:`._fast_color.choose`).
"""

from __future__ import annotations

import math

import torch

from . import _fast_color, _random
from ._utils import check_param, flatten_batch

__all__ = ["METHODS", "color_lut", "sample_color_params", "sine_color", "sine_color_levels"]

METHODS = ("auto", "series", "table")
#: the sine recurrence is re-seeded with directly computed sines every this many frequencies, which
#: bounds the growth of its rounding error (about ``eps * RESEED**2``)
RESEED = 32


# ----------------------------------------------------------------------------------- the sampler
def sample_color_params(
    batch_size: int,
    channels: int,
    *,
    cut_max: int = 100,
    bandwidth: int | None = None,
    variance_max: float = 0.01,
    strength: float = 1.0,
    cut_min: int = 1,
    variance_min: float = 0.0,
    start: int | None = None,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> dict[str, torch.Tensor]:
    """Draw the per-image parameters of :func:`sine_color` (the laws of the method's code).

    Per image: the highest frequency ``K ~ U{cut_min, ..., cut_max}``, the variance
    ``v ~ U(strength^2 variance_min, strength^2 variance_max)``, the band start ``s ~ U{1, ..., K}``
    (``s = 1``, i.e. all of ``1..K``, when ``bandwidth`` is ``None`` or ``>= K``); then per channel and
    frequency of the band ``s..min(s + bandwidth - 1, K)`` a coefficient ``a ~ N(0, v)``; frequencies
    above ``K`` get zero. The method's laws are the defaults (``cut_min=1``, ``variance_min=0``);
    equal ends fix ``K`` or ``v``, and ``start`` fixes the band start (a gallery at fixed settings).

    Returns:
        ``{"cut": (B,), "variance": (B,), "start": (B,) int64, "coeffs": (B, C, D)}`` with
        ``D = min(bandwidth, cut_max)`` (``cut_max`` when ``bandwidth`` is ``None``).

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> p = sample_color_params(4, 3, cut_max=500, bandwidth=20, generator=g)
        >>> p["coeffs"].shape, p["start"].shape
        (torch.Size([4, 3, 20]), torch.Size([4]))
        >>> q = sample_color_params(2, 3, cut_min=30, cut_max=30, bandwidth=5, start=26, generator=g)
        >>> q["cut"].tolist(), q["start"].tolist(), bool(q["coeffs"].ne(0).all())
        ([30, 30], [26, 26], True)
    """
    if not 1 <= cut_min <= cut_max:
        raise ValueError(f"cut_min must be in 1..cut_max={cut_max}, got {cut_min}")
    if not 0.0 <= variance_min <= variance_max:
        raise ValueError(f"variance_min must be in [0, variance_max={variance_max}], got {variance_min}")
    if start is not None and not 1 <= start <= cut_max:
        raise ValueError(f"start must be None or in 1..cut_max={cut_max}, got {start}")
    b = batch_size
    d = cut_max if bandwidth is None else min(bandwidth, cut_max)
    cut = _random.randint((b,), cut_min, cut_max, generator=generator, device=device)
    s2 = float(strength) ** 2
    variance = _random.uniform(
        (b,), s2 * variance_min, s2 * variance_max, generator=generator, device=device, dtype=torch.float64
    )
    if start is not None:
        first = torch.full((b,), start, dtype=torch.int64, device=cut.device)
    elif bandwidth is None:
        first = torch.ones(b, dtype=torch.int64, device=cut.device)
    else:
        first = _random.randint((b,), 1, cut, generator=generator, device=device)
        first = torch.where(cut <= bandwidth, torch.ones_like(first), first)
    z = _random.normal((b, channels, d), generator=generator, device=device, dtype=dtype)
    freq = first[:, None] + torch.arange(d, device=cut.device)[None, :]
    mask = (freq <= cut[:, None]).to(dtype)
    coeffs = variance.sqrt().to(dtype)[:, None, None] * z * mask[:, None, :]
    return {"cut": cut, "variance": variance.to(dtype), "start": first, "coeffs": coeffs}


# ------------------------------------------------------------------------------------ the series
class _Sines:
    """``sin(pi k v)`` for integer frequencies ``k``, with the phase ``k v`` reduced modulo 2 exactly.

    A plain ``sin(pi * k * v)`` in float32 loses about ``k * 1e-7`` (1e-4 at ``k = 500``) to the
    rounding of ``k v``. Here ``v = m / 2048 + lo`` with ``m`` an integer and ``|lo| <= 2**-12`` (both
    exact in float32), and ``k m mod 4096 = (k mod 4096) m mod 4096`` is integer arithmetic below
    2**23, exact in float32; only the small ``k lo`` is rounded. float64 values use a float64
    remainder.
    """

    SCALE = 2048.0

    def __init__(self, v: torch.Tensor) -> None:
        self.v = v
        self.m = torch.round(v * self.SCALE)
        self.lo = v - self.m / self.SCALE

    def __call__(self, k: torch.Tensor) -> torch.Tensor:
        k = k.to(self.v.dtype)
        if self.v.dtype == torch.float64:
            return torch.sin(math.pi * torch.remainder(k * self.v, 2.0))
        period = 2.0 * self.SCALE
        whole = torch.remainder(torch.remainder(k, period) * self.m, period) / self.SCALE
        return torch.sin(math.pi * (whole + k * self.lo))


def _series(v: torch.Tensor, coeffs: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    """``f(v) = sum_m coeffs[..., m] sin(pi (start + m) v)`` for values ``v`` of shape (B, C, N).

    Clenshaw's algorithm for the recurrence ``sin((k + 1) t) = 2 cos(t) sin(k t) - sin((k - 1) t)``
    (``t = pi v``): ``b_j = a_j + 2 cos(t) b_{j+1} - b_{j+2}`` from the last frequency down, then
    ``f = sin(k_0 t) (a_0 - b_2) + sin(k_1 t) b_1``; two element-wise passes per frequency, memory
    ``O(v.numel())``, the frequency axis never materialised. The frequencies are summed in blocks of
    :data:`RESEED`, each closed with two exact sines (:class:`_Sines`), which keeps the rounding error
    small (about ``1e-5`` in float32 at frequency 500). Differentiable in ``v`` and ``coeffs``.
    """
    acc = torch.zeros_like(v)
    if coeffs.shape[-1] == 0:
        return acc
    coeffs = coeffs.to(v.dtype)
    alpha = 2.0 * torch.cos(math.pi * v)
    k_first = start.to(v.device)[:, None, None]
    sines = _Sines(v)
    for k0 in range(0, coeffs.shape[-1], RESEED):
        block = coeffs[..., k0 : k0 + RESEED].unbind(-1)  # (B, C) each
        b1 = b2 = torch.zeros_like(block[0])[..., None]
        for a in reversed(block[1:]):
            b1, b2 = torch.addcmul(a[..., None], alpha, b1) - b2, b1
        acc = acc + sines(k_first + k0) * (block[0][..., None] - b2)
        if len(block) > 1:
            acc = acc + sines(k_first + k0 + 1) * b1
    return acc


# ------------------------------------------------------------------------------------ the kernel
def _check_params(b: int, c: int, coeffs: object, start: object) -> tuple[torch.Tensor, torch.Tensor]:
    coeffs = check_param(coeffs, "coeffs", (None, None), b)
    if coeffs.shape[1] not in (1, c):
        raise ValueError(
            f"coeffs must have shape (B, C, D) or (B, 1, D) with C={c}, got {tuple(coeffs.shape)}"
        )
    start = check_param(start, "start", (), b)
    # values are read on the CPU only: on an accelerator the check would synchronise every call (and
    # a compiled graph reads no data)
    on_cpu = coeffs.device.type == "cpu" and start.device.type == "cpu"
    if on_cpu and start.numel() and not torch.compiler.is_compiling():
        if bool(coeffs.isnan().any()):
            raise ValueError(f"coeffs must not hold NaN, got {int(coeffs.isnan().sum())} NaN values")
        if int(start.min()) < 1:
            raise ValueError(f"start must hold band starts >= 1, got {start.tolist()}")
    return coeffs, start


def _check_image(x: object) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim < 3:
        raise ValueError(f"x must have shape (..., C, H, W), got a tensor of shape {tuple(x.shape)}")
    if not (x.is_floating_point() or x.dtype == torch.uint8):
        raise TypeError(f"x must be a floating-point tensor in [0, 1] or a uint8 tensor, got dtype {x.dtype}")


def sine_color(
    x: torch.Tensor,
    coeffs: torch.Tensor,
    start: torch.Tensor,
    *,
    clip: bool = True,
    method: str = "auto",
) -> torch.Tensor:
    """Apply a random smooth, pixelwise color map to each channel of each image.

    .. math::

        \\gamma(x)_{b,c} = \\operatorname{clip}\\Big(x_{b,c} + \\sum_{m=0}^{D-1} a_{b,c,m}
        \\sin\\big(\\pi (s_b + m)\\, x_{b,c}\\big)\\Big)

    (a zero coefficient switches a frequency off). Memory stays ``O(B C H W)`` whatever ``D``. The
    sum is evaluated by one of three paths that agree to about ``1e-5`` in float32 (``method``):

    * ``"series"``: Clenshaw's algorithm for the sine recurrence, re-seeded exactly every 32
      frequencies (:func:`_series`); the only path that autograd records, and the one for float64;
    * ``"table"``: each (image, channel) map tabulated exactly (one real FFT) and evaluated as a
      quintic Hermite interpolant within ``1e-6``, about 17 passes over the image whatever ``D``;
      for values in ``[0, 1]`` (other values take the series);
    * ``"auto"`` (default): the rule of :func:`prime_augment.functional._fast_color.choose`: the fused
      Triton kernel for float32 on CUDA (``PRIME_AUGMENT_DISABLE_TRITON=1`` turns it off), the table
      on the CPU for float32 where the band's width times the pixels per image, ``D H W``, is at least
      2**16 (wide bands on large images), the series otherwise.

    float16 and bfloat16 images are computed in float32. ``uint8`` images are mapped exactly through
    the 256-entry table of each (image, channel) computed in float64 (:func:`color_lut`) and returned
    as ``uint8`` (rounded): ``round(255 * gamma(x / 255))``.

    Args:
        x: images, floating point in ``[0, 1]`` or ``uint8``, shape ``(..., C, H, W)``.
        coeffs: ``(B, C, D)`` coefficients ``a`` (or ``(B, 1, D)``: the same map on every channel), not
            NaN.
        start: ``(B,)`` integer first frequency ``s_b >= 1`` of each image's band. Both are checked
            (``ValueError``) when they are CPU tensors (eagerly: not in a compiled graph); on
            accelerators the check would synchronise the device, so it is not made.
        clip: clip the result to ``[0, 1]`` (always done for ``uint8``).
        method: ``"auto"``, ``"series"`` or ``"table"`` (above; ignored for ``uint8``).

    Returns:
        Same shape, dtype and device as ``x``; ``x`` is not modified.

    Example:
        >>> import torch
        >>> x = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
        >>> a = 0.05 * torch.randn(2, 3, 10, generator=torch.Generator().manual_seed(1))
        >>> y = sine_color(x, a, torch.tensor([1, 5]))
        >>> y.shape, torch.equal(sine_color(x, 0 * a, torch.tensor([1, 5])), x)
        (torch.Size([2, 3, 4, 4]), True)
        >>> bool((sine_color(x, a, torch.tensor([1, 5]), method="table") - y).abs().max() < 1e-5)
        True
    """
    _check_image(x)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    xb, _ = flatten_batch(x)
    b, c, h, w = xb.shape
    coeffs, start = _check_params(b, c, coeffs, start)
    if xb.numel() == 0:
        return x.clone()
    if x.dtype == torch.uint8:
        table = (color_lut(coeffs.to(xb.device), start) * 255.0).round_().to(torch.uint8)
        return _lookup(table, xb).reshape(x.shape)
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    v = xb.reshape(b, c, h * w).to(compute)
    coeffs = coeffs.to(device=v.device, dtype=compute)
    start = start.to(v.device)
    path = _fast_color.choose(v, coeffs, start, method)
    out = None if path == "series" else _fast_color.evaluate(path, v, coeffs, start, clip=clip)
    if out is None:  # the series: chosen, or handed back by the table (values outside [0, 1], ...)
        out = v + _series(v, coeffs, start)
        out = out.clamp_(0.0, 1.0) if clip else out
    return out.to(x.dtype).reshape(x.shape)


# ------------------------------------------------------------------------- the 256 levels of uint8
def color_lut(
    coeffs: torch.Tensor, start: torch.Tensor, levels: int = 256, *, clip: bool = True
) -> torch.Tensor:
    """The color map of every (image, channel) tabulated exactly on ``levels`` equally spaced inputs.

    ``lut[b, c, k] = clip(v_k + sum_m coeffs[b, c, m] sin(pi (start_b + m) v_k))`` at
    ``v_k = k / (levels - 1)``, in float64. On these nodes the frequency ``n`` acts as
    ``n mod 2 (levels - 1)``, so one real FFT per (image, channel) gives the whole table exactly,
    whatever the frequencies (:func:`._fast_color.node_derivatives`). :func:`sine_color` maps uint8
    images through it.

    Args:
        coeffs, start: as in :func:`sine_color`.
        levels: number of table entries, at least 2.
        clip: clip the table to ``[0, 1]``.

    Returns:
        ``(B, C, levels)`` float64 (``C`` as in ``coeffs``).

    Example:
        >>> import torch
        >>> lut = color_lut(torch.tensor([[[0.1]]]), torch.tensor([1]), levels=3)
        >>> lut  # 0.5 + 0.1 sin(pi / 2) at the middle level
        tensor([[[0.0000, 0.6000, 1.0000]]], dtype=torch.float64)
    """
    if levels < 2:
        raise ValueError(f"levels must be >= 2, got {levels}")
    v = torch.linspace(0.0, 1.0, levels, dtype=torch.float64, device=coeffs.device)
    lut = v + _fast_color.node_derivatives(coeffs, start, levels - 1, 1)[0]
    return lut.clamp_(0.0, 1.0) if clip else lut


def _lookup(table: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """``table[b, c, levels[b, c, y, x]]`` for a (B, C or 1, 256) table and (B, C, H, W) levels."""
    b, c, h, w = levels.shape
    idx = levels.reshape(b, c, h * w).to(torch.int64)
    return table.expand(b, c, table.shape[-1]).gather(-1, idx).reshape(b, c, h, w)


def sine_color_levels(
    levels: torch.Tensor,
    coeffs: torch.Tensor,
    start: torch.Tensor,
    *,
    clip: bool = True,
    max_frequency: int | None = None,
) -> torch.Tensor:
    """:func:`sine_color` of the integer levels ``0..255`` divided by 255, exact and rounded once to
    float32: a lookup in :func:`color_lut`.

    Args:
        levels: integer tensor (``uint8`` or ``int64``) of shape ``(..., C, H, W)`` in ``0..255``.
        coeffs, start, clip: as in :func:`sine_color`.
        max_frequency: accepted for compatibility and not needed (the table folds every frequency).

    Returns:
        float32 tensor of ``levels``' shape and device.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> q = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8, generator=g)
        >>> a = 0.05 * torch.randn(2, 3, 10, generator=torch.Generator().manual_seed(1))
        >>> s = torch.tensor([1, 5])
        >>> bool((sine_color_levels(q, a, s) - sine_color(q.float() / 255, a, s)).abs().max() < 2e-5)
        True
    """
    if not isinstance(levels, torch.Tensor) or levels.dtype not in (torch.uint8, torch.int64):
        got = levels.dtype if isinstance(levels, torch.Tensor) else type(levels).__name__
        raise TypeError(f"levels must be a uint8 or int64 tensor of values 0..255, got {got}")
    if levels.ndim < 3:
        raise ValueError(f"levels must have shape (..., C, H, W), got shape {tuple(levels.shape)}")
    lb, _ = flatten_batch(levels)
    coeffs, start = _check_params(lb.shape[0], lb.shape[1], coeffs, start)
    table = color_lut(coeffs.to(lb.device), start.to(lb.device), clip=clip).to(torch.float32)
    return _lookup(table, lb).reshape(levels.shape)
