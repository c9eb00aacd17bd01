"""Random smooth color maps: ``gamma(x) = clip(x + sum_n b_n sin(pi n x), 0, 1)``, per channel."""

from __future__ import annotations

import functools
import math

import torch

from . import _random, _triton_color
from ._utils import check_param, flatten_batch

__all__ = ["color_lut", "sample_color_params", "sine_color", "sine_color_levels"]

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
    return (x, *_check_params(math.prod(x.shape[:-3]), x.shape[-3], coeffs, start))


def _check_params(b: int, c: int, coeffs: object, start: object) -> tuple[torch.Tensor, torch.Tensor]:
    coeffs = check_param(coeffs, "coeffs", (None, None), b)
    if coeffs.shape[1] not in (1, c):
        raise ValueError(
            f"coeffs must have shape (B, C, D) or (B, 1, D) with C={c}, got {tuple(coeffs.shape)}"
        )
    start = check_param(start, "start", (), b)
    # read the values on the CPU only: on an accelerator the check would synchronise every call (and
    # a compiled graph reads no data)
    on_cpu = coeffs.device.type == "cpu" and start.device.type == "cpu"
    if on_cpu and start.numel() and not torch.compiler.is_compiling():
        # (a NaN sum, then the exact test: three times cheaper than isnan().any() on small tensors)
        if math.isnan(coeffs.sum().item()) and bool(coeffs.isnan().any()):
            raise ValueError(f"coeffs must not hold NaN, got {int(coeffs.isnan().sum())} NaN values")
        if min(start.tolist()) < 1:
            raise ValueError(f"start must hold band starts >= 1, got {start.tolist()}")
    return coeffs, start


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
        # one buffer, in place: (((k mod P) m) mod P) / SCALE + k lo, times pi, sine
        phase = torch.remainder(k, period).mul(self.m).remainder_(period).mul_(1.0 / self.SCALE)
        return phase.addcmul_(k, self.lo).mul_(math.pi).sin_()


def _series(
    v: torch.Tensor, coeffs: torch.Tensor, start: torch.Tensor, active: int | None = None
) -> torch.Tensor:
    """``sum_m coeffs[..., m] sin(pi (start + m) v)`` for values ``v`` of shape (B, C, N).

    Clenshaw's algorithm for the three-term recurrence ``sin((k + 1) t) = 2 cos(t) sin(k t) - sin((k - 1) t)``
    (``t = pi v``): per frequency two fused element-wise operations on ``v``'s size, so memory stays
    O(v.numel()) and the frequency axis is never materialised. The frequencies are processed in
    blocks of :data:`RESEED`; each block ends with two seeds ``sin(pi k v)`` whose phase ``k v`` is
    reduced modulo 2 exactly (:class:`_Sines`), which bounds the rounding error (about
    ``eps * RESEED**2``) and keeps high frequencies accurate in float32. On the CPU, trailing
    frequencies whose coefficients are zero for every image are skipped (``active``, when given, is
    that count: see :func:`_active_frequencies`).
    """
    d = coeffs.shape[-1]
    acc = torch.zeros_like(v)
    if d == 0 or v.numel() == 0:
        return acc
    coeffs = coeffs.to(v.dtype)
    if active is not None:
        d = min(d, active)
    elif v.device.type == "cpu":  # skipping needs the data: free on the CPU, a sync on accelerators
        d = _active_frequencies(coeffs)
    alpha = torch.mul(v, math.pi).cos_().mul_(2.0)
    k_first = start[:, None, None]
    sines = _Sines(v)
    terms = coeffs[..., :d, None].unbind(-2)  # d tensors of shape (B, C, 1)
    pool: list[torch.Tensor] = []  # three rotating buffers: no allocation per frequency
    # autograd cannot record out= arguments nor buffers overwritten after use: fresh tensors then
    recorded = torch.is_grad_enabled() and (v.requires_grad or coeffs.requires_grad)

    def take() -> torch.Tensor:
        return pool.pop() if pool else torch.empty_like(v)

    for k0 in range(0, d, RESEED):
        block = terms[k0 : k0 + RESEED]
        b1 = b2 = None  # Clenshaw: b_j = a_j + alpha b_{j+1} - b_{j+2}, j = G-1 .. 1
        for a in reversed(block[1:]):
            if b1 is None:
                b_new = a.expand_as(v) if recorded else take().copy_(a.expand_as(v))
            elif recorded:
                b_new = torch.addcmul(a, alpha, b1) if b2 is None else torch.addcmul(a, alpha, b1) - b2
            else:
                b_new = torch.addcmul(a, alpha, b1, out=take())
                if b2 is not None:
                    b_new.sub_(b2)
                    pool.append(b2)
            b1, b2 = b_new, b1
        # S = phi_0 (a_0 - b_2) + phi_1 b_1, phi_j = sin((k0 + j) t) from exact seeds
        phi0 = sines(k_first + k0)
        acc.addcmul_(phi0, block[0])
        if b2 is not None:
            acc.addcmul_(phi0, b2, value=-1.0)
        if b1 is not None:
            phi1 = sines(k_first + (k0 + 1))
            acc.addcmul_(phi1, b1)
        if not recorded:
            pool.extend(b for b in (b1, b2) if b is not None)
    return acc


#: cost model of ``sine_color(method="auto")`` on the CPU, per image, in microseconds, measured on one
#: thread of an x86-64 server core (2026-12-01): the recurrence costs about ``100 + 9 n + D (4.2 +
#: 0.46 n)`` and the table about ``190 + 7 n + 35 g``, for the image's ``D`` active frequencies, ``n``
#: thousand values (``C H W``) and ``g`` thousand table intervals (``C G``); the cheaper one is used.
#: Both give the same map (to 1e-5).
_SERIES_COST = (100.0, 9.0, 4.2, 0.46)  # fixed, per thousand values, per frequency, per both
_TABLE_COST = (190.0, 7.0, 35.0)  # fixed, per thousand values, per thousand table intervals
#: proven bound on the interpolation error of the tabulated map (before float32 rounding)
TABLE_TOLERANCE = 1e-6
#: the finest table (grid intervals); a map that needs more is evaluated by the recurrence
TABLE_MAX_GRID = 1 << 16
METHODS = ("auto", "series", "table")


def _node_derivatives(coeffs: torch.Tensor, start: torch.Tensor, grid: int, orders: int) -> torch.Tensor:
    """``f^(k)(j / grid)`` for ``j = 0..grid`` and ``k < orders`` (``orders <= 3``), in float64.

    ``f(v) = sum_m coeffs[..., m] sin(pi (start + m) v)``. On the nodes ``j / G`` the frequency ``n`` acts
    as ``n mod 2G``, so with the weights ``y_n`` placed at ``n mod 2G`` one real FFT of length ``2G``
    gives ``sum_n y_n e^{-i pi n j / G}`` at every node: its imaginary part is ``f`` for ``y = -a``,
    its real part is ``f'`` for ``y = pi n a``, and its imaginary part is ``f''`` for
    ``y = (pi n)^2 a``. Exact up to float64 rounding, whatever the frequencies.

    Returns:
        ``(orders, B, C, grid + 1)`` float64 (``C`` as in ``coeffs``).
    """
    b, c, d = coeffs.shape
    dev = coeffs.device
    starts = start.tolist() if dev.type == "cpu" and b <= 64 else None
    if starts is not None and len(set(starts)) == 1 and starts[0] + d <= 2 * grid:
        # one band for every image and no frequency folds: the spectrum is the band, zero-padded
        s0 = starts[0]
        src = coeffs.to(torch.float64) * _derivative_weights(s0, d, orders, str(dev))[:, None, None, :]
        spec = torch.nn.functional.pad(src, (s0, 2 * grid - s0 - d))
    else:
        n = start.to(device=dev, dtype=torch.int64)[:, None] + torch.arange(d, device=dev)  # (B, D)
        powers = torch.arange(orders, device=dev, dtype=torch.float64)[:, None, None]
        w = (math.pi * n.to(torch.float64)) ** powers
        w[0].neg_()
        src = coeffs.to(torch.float64) * w[:, :, None, :]  # (orders, B, C, D)
        spec = torch.zeros(orders, b, c, 2 * grid, dtype=torch.float64, device=dev)
        spec.scatter_add_(-1, torch.remainder(n, 2 * grid)[:, None, :].expand(orders, b, c, d), src)
    z = torch.view_as_real(torch.fft.rfft(spec, dim=-1))  # (orders, B, C, G + 1, 2)
    order_idx, part_idx = _PARTS[orders]  # f: imaginary, f': real, f'': imaginary
    return z[order_idx.to(dev), ..., part_idx.to(dev)]


#: index tensors picking (order k, real or imaginary part) from the FFTs of :func:`_node_derivatives`
_PARTS = {k: (torch.arange(k), torch.tensor((1, 0, 1)[:k])) for k in (1, 2, 3)}


@functools.lru_cache(maxsize=1024)
def _derivative_weights(first: int, d: int, orders: int, device: str) -> torch.Tensor:
    """``(-1, pi n, (pi n)^2)[:orders]`` for ``n = first..first + d - 1``: ``(orders, D)`` float64, cached."""
    n = torch.arange(first, first + d, dtype=torch.float64) * math.pi
    return torch.stack([-torch.ones_like(n), n, n * n][:orders]).to(device)


#: the quintic Hermite interpolant in the power basis of ``t``: ``P = M [f0, h f0', h^2 f0'', f1, h f1',
#: h^2 f1'']``
_HERMITE5 = (
    (1.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    (0.0, 1.0, 0.0, 0.0, 0.0, 0.0),
    (0.0, 0.0, 0.5, 0.0, 0.0, 0.0),
    (-10.0, -6.0, -1.5, 10.0, -4.0, 0.5),
    (15.0, 8.0, 1.5, -15.0, 7.0, -1.0),
    (-6.0, -3.0, -0.5, 6.0, -3.0, 0.5),
)


def _grid_for(bound: float, tol: float) -> int | None:
    """The coarsest power-of-two grid whose quintic Hermite interpolation error is provably ``<= tol``.

    On an interval of length ``h`` the error is at most ``h^6 / 46080 max |f^(6)|``, and ``bound`` is
    ``sum_n |a_n| (pi n)^6 >= |f^(6)|``; ``None`` when that needs more than :data:`TABLE_MAX_GRID`.
    """
    if bound == 0.0:
        return 64
    grid = max(64, 2 ** math.ceil(math.log2((bound / (46080.0 * tol)) ** (1.0 / 6.0))))
    return grid if grid <= TABLE_MAX_GRID else None


def _hermite_table(coeffs: torch.Tensor, start: torch.Tensor, grid: int, dtype: torch.dtype) -> torch.Tensor:
    """Power-basis coefficients of the quintic Hermite interpolant of ``f`` on each grid interval.

    On ``[j / G, (j + 1) / G]``, ``f(v) ~ sum_k P[k, ..., j] t^k`` with ``t = G v - j``; the
    interpolant matches ``f``, ``f'`` and ``f''`` at both nodes (exact node values from
    :func:`_node_derivatives`).

    Returns:
        ``(6, B, C, grid)`` in ``dtype``, each coefficient's table contiguous.
    """
    nodes = _node_derivatives(coeffs, start, grid, 3)  # (3, B, C, G + 1)
    ends = torch.cat((nodes[..., :-1], nodes[..., 1:]))  # (6, B, C, G): left node, then right node
    return (_hermite_matrix(grid, str(nodes.device)) @ ends.view(6, -1)).view(ends.shape).to(dtype)


@functools.lru_cache(maxsize=64)
def _hermite_matrix(grid: int, device: str) -> torch.Tensor:
    """:data:`_HERMITE5` with the columns scaled by ``1, h, h^2`` (``h = 1 / grid``); cached, read-only."""
    h = 1.0 / grid
    return torch.tensor(_HERMITE5, dtype=torch.float64).mul_(torch.tensor([1.0, h, h * h] * 2)).to(device)


def _table_series(v: torch.Tensor, coeffs: torch.Tensor, start: torch.Tensor, grid: int) -> torch.Tensor:
    """``f(v)`` for values ``v`` in ``[0, 1]`` of shape (B, C, N) from the tabulated interpolant.

    ``u = G v`` (``G`` a power of two, so ``u``, its floor ``j`` and ``t = u - j`` are exact), then six
    gathers and a Horner evaluation of degree 5: about 17 passes over ``v`` whatever the number of
    frequencies, in four buffers (on the CPU every fresh large tensor costs page faults).
    """
    poly = _hermite_table(coeffs, start, grid, v.dtype)  # (6, B, Cc, G)
    b, c, n = v.shape
    t = v * float(grid)
    j = torch.floor(t).clamp_(0.0, grid - 1.0)
    t.sub_(j)
    idx = j.to(torch.int64)
    if 6 * b * c * n <= _ONE_GATHER_MAX:  # small images: the six coefficients in one gather
        coef = poly.expand(6, b, c, grid).gather(-1, idx.expand(6, b, c, n)).unbind(0)
        acc = coef[5]
        for k in range(4, -1, -1):
            acc = torch.addcmul(coef[k], acc, t)
        return acc
    table = poly.expand(6, b, c, grid)
    acc = table[5].gather(-1, idx)
    buf = j  # reused: same shape and dtype
    for k in range(4, -1, -1):
        torch.gather(table[k], -1, idx, out=buf)
        torch.addcmul(buf, acc, t, out=acc)
    return acc


#: up to this many gathered values the table is read in one gather (fewer operations), beyond it in
#: six passes into one reused buffer (fewer fresh pages)
_ONE_GATHER_MAX = 1 << 16


def _active_frequencies(coeffs: torch.Tensor) -> int:
    """Index + 1 of the last frequency with a non-zero coefficient in any image (reads the data)."""
    active = torch.nonzero(coeffs.ne(0).flatten(0, -2).any(0))
    return int(active[-1]) + 1 if active.numel() else 0


def color_lut(coeffs: torch.Tensor, start: torch.Tensor, levels: int = 256) -> torch.Tensor:
    """The color map of every (image, channel) tabulated on ``levels`` equally spaced inputs.

    ``lut[b, c, v] = clip(v / (levels - 1) + sum_m coeffs[b, c, m] sin(pi (start_b + m) v / (levels - 1)))``
    computed in float64 (one real FFT per (image, channel), see :func:`_node_derivatives`);
    ``sine_color`` on uint8 images is a lookup in this table.

    Returns:
        ``(B, C, levels)`` float64 values in ``[0, 1]`` (``C`` as in ``coeffs``).
    """
    if levels < 2:
        raise ValueError(f"levels must be >= 2, got {levels}")
    grid = levels - 1
    v = torch.linspace(0.0, 1.0, levels, dtype=torch.float64, device=coeffs.device)
    if coeffs.shape[-1] == 0 or coeffs.shape[0] == 0:
        return v.expand(coeffs.shape[0], coeffs.shape[1], levels).clone()
    f = _node_derivatives(coeffs, start, grid, 1)[0]
    return (v + f).clamp_(0.0, 1.0)


@functools.lru_cache(maxsize=8)
def _level_sines(n_max: int, device: str) -> torch.Tensor:
    """``sin(pi n v_k)`` in float64 for ``n = 1..n_max`` and the 256 float32 levels ``v_k = k / 255``:
    ``(n_max, 256)``, cached (read-only)."""
    v = (torch.arange(256, dtype=torch.float32) / 255.0).to(torch.float64)
    n = torch.arange(1, n_max + 1, dtype=torch.float64)
    return torch.sin(math.pi * n[:, None] * v[None, :]).to(device)


def sine_color_levels(
    levels: torch.Tensor,
    coeffs: torch.Tensor,
    start: torch.Tensor,
    *,
    clip: bool = True,
    max_frequency: int | None = None,
) -> torch.Tensor:
    """:func:`sine_color` of ``levels / 255`` for integer levels ``0..255``, as float32, exactly.

    The map of each (image, channel) is evaluated in float64 at the 256 float32 values
    ``float32(k) / 255`` (what ``levels.float() / 255`` holds: one small matrix product with cached
    sines) and looked up, so the result is the exact map rounded once to float32, more accurate than
    the float32 evaluation and about a tenth of its cost. :class:`~prime_augment.PRIME` uses it for the
    first operation of its chains on uint8 images.

    Args:
        levels: integer tensor (``uint8`` or ``int64``) of shape ``(..., C, H, W)`` in ``0..255``.
        coeffs, start, clip: as in :func:`sine_color`.
        max_frequency: an upper bound of ``start + D - 1`` (saves reading ``start`` on accelerators);
            computed from ``start`` when ``None``.

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
    coeffs, start = _check_params(math.prod(levels.shape[:-3]), levels.shape[-3], coeffs, start)
    lb, _ = flatten_batch(levels)
    b, c, h, w = lb.shape
    d = coeffs.shape[-1]
    dev = lb.device
    values = torch.arange(256, dtype=torch.float32, device=dev) / 255.0
    if b == 0 or d == 0 or lb.numel() == 0:
        return values[lb.to(torch.int64)].reshape(levels.shape)
    start = start.to(device=dev, dtype=torch.int64)
    if max_frequency is None:
        max_frequency = int(start.max()) + d - 1
    n_max = 1 << max(6, (int(max_frequency) - 1).bit_length())  # few cached sizes
    sines = _level_sines(n_max, str(dev))
    rows = (start[:, None] - 1 + torch.arange(d, device=dev)).flatten()  # (B D,) frequency - 1
    f = torch.bmm(coeffs.to(device=dev, dtype=torch.float64), sines.index_select(0, rows).view(b, d, 256))
    lut = f.add_(values.to(torch.float64))
    if clip:
        lut = lut.clamp_(0.0, 1.0)
    lut = lut.to(torch.float32).expand(b, c, 256)
    return lut.gather(-1, lb.reshape(b, c, h * w).to(torch.int64)).reshape(levels.shape)


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

    (the band of ``D`` consecutive frequencies ``s_b, ..., s_b + D - 1``; a zero coefficient switches a
    frequency off). Memory stays ``O(B C H W)`` whatever ``D``: the frequency axis is never
    materialised. Three evaluations of the same sum (``method``):

    * ``"series"``: Clenshaw's algorithm for the sine recurrence
      ``sin((k+1)t) = 2 cos t sin(kt) - sin((k-1)t)``, re-seeded exactly every 32 frequencies (two
      element-wise passes per frequency). On CUDA (float32, Triton installed) the whole series runs in
      one fused kernel, one read and one write of the batch; set ``PRIME_AUGMENT_DISABLE_TRITON=1`` to
      use the eager recurrence everywhere.
    * ``"table"`` (CPU): each (image, channel) map is tabulated with its first two derivatives at the
      ``G + 1`` nodes ``j / G`` (exactly, one real FFT each) and evaluated as the quintic Hermite
      interpolant, about 20 passes over the image whatever ``D``. ``G`` is the coarsest power of two
      whose interpolation error bound ``G^-6 / 46080 sum_n |a_n| (pi n)^6`` is at most ``1e-6``, which
      is below the float32 recurrence's own rounding error (about ``1e-5``). Values outside ``[0, 1]``,
      maps that would need ``G > 65536`` and inputs that autograd records use the series.
    * ``"auto"`` (default): on the CPU for float32 (or narrower) images, whichever of the two a cost
      model (measured on one CPU thread) predicts to be faster: the table for many frequencies or
      large images, the series for few frequencies on small images; the series elsewhere.

    ``uint8`` images are mapped exactly through a 256-entry table per (image, channel) computed in
    float64 (:func:`color_lut`) and returned as ``uint8`` (rounded): the result is
    ``round(255 * gamma(x / 255))``.

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
    x, coeffs, start = _check(x, coeffs, start)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
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
    if method != "table" and _triton_color.available(flat):  # CUDA: one fused pass, not two per frequency
        return _triton_color.sine_color_fused(flat, coeffs, start, clip=clip).to(xb.dtype).reshape(x.shape)
    coeffs = coeffs.to(device=xb.device, dtype=compute)
    groups = _plan(flat, coeffs, start, method)
    if len(groups) == 1 and groups[0][0] is None:
        out = _evaluate(flat, coeffs, start, *groups[0][1:])
    else:
        out = torch.empty_like(flat)
        for rows, grid, active in groups:
            idx = torch.tensor(rows, device=flat.device)
            sub = (flat.index_select(0, idx), coeffs.index_select(0, idx), start.index_select(0, idx))
            out.index_copy_(0, idx, _evaluate(*sub, grid, active))
    if clip:
        out = out.clamp_(0.0, 1.0)
    return out.to(xb.dtype).reshape(x.shape)


def _evaluate(
    v: torch.Tensor, coeffs: torch.Tensor, start: torch.Tensor, grid: int | None, active: int | None
) -> torch.Tensor:
    """``v + f(v)`` by the table on ``grid`` or, for ``grid=None``, by the series."""
    if grid is not None:
        return _table_series(v, coeffs[..., :active], start, grid).add_(v)
    return _series(v, coeffs, start, active).add_(v)


def _plan(
    v: torch.Tensor, coeffs: torch.Tensor, start: torch.Tensor, method: str
) -> list[tuple[list[int] | None, int | None, int | None]]:
    """How :func:`sine_color` evaluates each image: groups ``(rows, grid, active)``.

    ``rows=None`` means every image; ``grid=None`` the series, else the table on that grid; ``active``
    the number of leading frequencies with a non-zero coefficient in the group (``None``: unknown). The
    choice for an image depends on its own coefficients, values and size only (never on the rest of
    the batch), so a batch gives exactly the per-image results.
    """
    recorded = torch.is_grad_enabled() and (v.requires_grad or coeffs.requires_grad)
    if torch.compiler.is_compiling():  # a compiled graph reads no data: the series, every frequency
        return [(None, None, coeffs.shape[-1])]
    if v.device.type != "cpu":  # reading the coefficients would synchronise: the series, no skipping
        if method != "table":
            return [(None, None, None)]
    elif (
        method == "series"
        or recorded  # gradients: the series (the table's gathers write into buffers)
        or (method, v.dtype) == ("auto", torch.float64)
    ):
        return [(None, None, _active_frequencies(coeffs))]
    b, c, n = v.shape
    d = coeffs.shape[-1]
    if d == 0:
        return [(None, None, 0)]
    # per image (CPU, few operations: a small image's call is dispatch-bound): the index + 1 of its
    # last non-zero frequency, the bound sum_n |a_n| (pi n)^6 (largest over channels) and its range
    absc = coeffs.abs()
    last = [int(k) for k in (absc.amax(1).ne(0) * _rank(d, coeffs.dtype)).amax(1).tolist()]
    sixth = torch.stack([_sixth_powers(s, d) for s in start.tolist()])  # (B, D), cached rows
    bound = (absc.to(torch.float64) * sixth.unsqueeze(1)).sum(-1).amax(1).tolist()
    # (aminmax along a dimension is ~20x slower than these two full reductions on the CPU)
    low, high = v.amin((1, 2)).tolist(), v.amax((1, 2)).tolist()
    inside = [lo >= 0.0 and hi <= 1.0 for lo, hi in zip(low, high, strict=True)]  # the table's [0, 1]
    values = c * n / 1000.0
    s0, s1, s2, s3 = _SERIES_COST
    t0, t1, t2 = _TABLE_COST
    series_fixed, per_frequency = s0 + s1 * values, s2 + s3 * values
    table_fixed, per_grid = t0 + t1 * values, t2 * coeffs.shape[1] / 1000.0
    groups: dict[int | None, list[int]] = {}
    for i in range(b):
        grid = _grid_for(bound[i], TABLE_TOLERANCE) if (inside[i] and last[i] > 0) else None
        if method == "auto" and grid is not None:
            if series_fixed + last[i] * per_frequency < table_fixed + per_grid * grid:
                grid = None
        groups.setdefault(grid, []).append(i)
    out: list[tuple[list[int] | None, int | None, int | None]] = []
    for grid, rows in groups.items():
        active = max(last[i] for i in rows)
        out.append((None if len(rows) == b else rows, grid, active))
    return out


@functools.lru_cache(maxsize=16)
def _rank(d: int, dtype: torch.dtype) -> torch.Tensor:
    """``1..d`` (CPU, cached, read-only)."""
    return torch.arange(1, d + 1, dtype=dtype)


@functools.lru_cache(maxsize=1024)
def _sixth_powers(first: int, d: int) -> torch.Tensor:
    """``(pi n)^6`` for ``n = first..first + d - 1``: ``(D,)`` float64 (CPU, cached, read-only)."""
    return (math.pi * torch.arange(first, first + d, dtype=torch.float64)) ** 6


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
    cut = _random.randint((b,), 1, cut_max, generator=generator, device=device)
    variance = _random.uniform(
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
        start = _random.randint((b,), 1, cut, generator=generator, device=device)
        start = torch.where(cut <= bandwidth, torch.ones_like(start), start)
    z = _random.normal((b, channels, d), generator=generator, device=device, dtype=dtype)
    freq = start[:, None] + torch.arange(d, device=cut.device)[None, :]
    mask = (freq <= cut[:, None]).to(dtype)
    coeffs = variance.sqrt().to(dtype)[:, None, None] * z * mask[:, None, :]
    return {"cut": cut, "variance": variance.to(dtype), "start": start, "coeffs": coeffs}
