"""Faster evaluators of the color map ``f(v) = sum_m a_m sin(pi (s + m) v)``, behind one dispatch.

The plain evaluation is the series of :mod:`prime_augment.functional.color` (Clenshaw's recurrence:
two element-wise passes over the values per frequency). Two evaluators compute the same sum faster
where they apply:

* ``"table"``: the map of every (image, channel) is tabulated with its first two derivatives on the
  nodes ``j / G`` (exactly, by one real FFT: :func:`node_derivatives`) and evaluated as the quintic
  Hermite interpolant, about 17 passes over the values whatever the number of frequencies. ``G`` is,
  per image, the coarsest power of two whose proven interpolation error is at most
  :data:`TABLE_TOLERANCE`.
* ``"triton"``: one fused kernel that runs the whole recurrence in registers (one read and one write
  of the values).

:func:`choose` picks one by this rule on the device, the dtype, the sizes (the band's width
``D = coeffs.shape[-1]`` and the ``N = H W`` values per channel: shapes, so a batch and its single
images take the same path) and the autograd state, without reading any value:

* ``"triton"``: Triton installed (and ``PRIME_AUGMENT_DISABLE_TRITON`` not set to ``1``), float32
  values on CUDA (on any device under ``TRITON_INTERPRET=1``), autograd not recording;
* ``"table"``: CPU, float32 values, autograd not recording, not inside ``torch.compile``, and
  ``D N >= TABLE_MIN_WORK`` (2**16: at least 64 frequencies on 32x32 images, 16 on 64x64, 2 on
  224x224). The series costs two passes over the values per frequency; the table about 17 passes
  and a build that does not grow with the image (but with the frequencies), so it pays off for wide
  bands on large images: measured on one CPU thread, the table is 2-3 times faster on 224x224 images
  from 2 frequencies on and on 32x32 images with 100 frequencies, and up to 3.5 times slower on 32x32
  images with 8 to 32 frequencies;
* ``"series"`` otherwise (float64, gradients, compiled graphs, narrow bands on small images, other
  devices).

The table covers values in ``[0, 1]`` and maps that fit :data:`TABLE_MAX_GRID` intervals (any map
of the method's presets); :func:`evaluate` hands anything else back to the series (``None``).
:func:`forced` makes :func:`choose` return a given path wherever that path can run (tests and
benchmarks use it).
"""

from __future__ import annotations

import math
import os

import torch

from ._utils import PathSwitch, device_cached

try:  # pragma: no cover - depends on the installation
    import triton
    import triton.language as tl

    HAVE_TRITON = True
except Exception:  # pragma: no cover
    HAVE_TRITON = False

PATHS = ("series", "table", "triton")
#: the table is chosen where the band's width times the values per channel, ``D H W``, reaches this
TABLE_MIN_WORK = 1 << 16
#: proven bound on the table's interpolation error (before float32 rounding)
TABLE_TOLERANCE = 1e-6
#: the finest table (grid intervals); a map that would need more takes the series
TABLE_MAX_GRID = 1 << 16
#: the table is evaluated on blocks of whole images of at most this many values (at least one image),
#: so that its passes over a block run in the CPU caches: on a batch of 224x224 images about twice as
#: fast as passes over the whole batch
TABLE_BLOCK = 1 << 18
#: Triton's interpreter (``TRITON_INTERPRET=1``) runs the kernel on CPU tensors, slowly: for tests
INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"

_switch = PathSwitch("prime_augment_color_path", PATHS)
#: ``with forced(path):`` makes :func:`choose` return ``path`` wherever that path can compute the values
forced = _switch.forced


def choose(v: torch.Tensor, coeffs: torch.Tensor, start: torch.Tensor, method: str = "auto") -> str:
    """The path that evaluates the map of the values ``v`` (..., N) (the rule of the module docstring).

    ``method="auto"`` applies the rule (or :func:`forced`'s path); ``"series"``, ``"table"`` or
    ``"triton"`` asks for that path, given where it can run (else ``"series"``). ``start`` is not read
    (it is an argument so that any rule of the kernel's parameters fits here).
    """
    if method == "auto":
        method = _switch.get() or "auto"
    if method == "auto":
        if _runs("triton", v, coeffs):
            return "triton"
        wide = coeffs.shape[-1] * v.shape[-1] >= TABLE_MIN_WORK
        if v.device.type == "cpu" and v.dtype == torch.float32 and wide and _runs("table", v, coeffs):
            return "table"
        return "series"
    return method if _runs(method, v, coeffs) else "series"


def _runs(path: str, v: torch.Tensor, coeffs: torch.Tensor) -> bool:
    """Whether ``path`` can run on the values ``v`` (float32 or float64) here."""
    if path == "series" or v.numel() == 0:
        return path == "series"
    if torch.is_grad_enabled() and (v.requires_grad or coeffs.requires_grad):
        return False  # neither records a backward pass
    if path == "triton":
        enabled = HAVE_TRITON and os.environ.get("PRIME_AUGMENT_DISABLE_TRITON", "0") != "1"
        return enabled and v.dtype == torch.float32 and (v.device.type == "cuda" or INTERPRET)
    return not torch.compiler.is_compiling()  # (the table's grids are read from the coefficients)


def evaluate(
    path: str, v: torch.Tensor, coeffs: torch.Tensor, start: torch.Tensor, *, clip: bool
) -> torch.Tensor | None:
    """The color map ``v + f(v)`` (clipped to ``[0, 1]`` if ``clip``) of values ``v`` of shape (B, C, N)
    by the ``"table"`` or ``"triton"`` path; a new tensor, or ``None`` where the table does not apply
    (a value outside ``[0, 1]``, or a map too rough for :data:`TABLE_MAX_GRID` intervals)."""
    if path == "triton":
        return triton_map(v, coeffs, start, clip=clip)
    if path != "table":
        raise ValueError(f"path must be 'table' or 'triton' here, got {path!r}")
    return table_map(v, coeffs, start, clip=clip)


# ------------------------------------------------------------------------------------- the table
def node_derivatives(
    coeffs: torch.Tensor, start: torch.Tensor, grid: int, orders: int
) -> tuple[torch.Tensor, ...]:
    """``f^(k)(j / grid)`` for ``j = 0..grid`` and ``k < orders`` (``orders <= 3``), in float64.

    ``f(v) = sum_m coeffs[..., m] sin(pi (start + m) v)``. On the nodes ``j / G`` the frequency ``n``
    acts as ``n mod 2G``, so with weights ``y_n`` placed at ``n mod 2G`` one real FFT of length
    ``2G`` gives ``sum_n y_n e^{-i pi n j / G}`` at every node: its imaginary part is ``f`` for
    ``y = -a``, its real part is ``f'`` for ``y = pi n a``, and its imaginary part is ``f''`` for
    ``y = (pi n)^2 a``. Exact up to float64 rounding, whatever the frequencies.

    Returns:
        ``orders`` tensors ``(B, C, grid + 1)``, float64 (``C`` as in ``coeffs``).
    """
    b, c, d = coeffs.shape
    dev = coeffs.device
    n = torch.arange(d, device=dev) + start.to(device=dev, dtype=torch.int64)[:, None]  # (B, D)
    a = coeffs.to(torch.float64)
    weighted = [-a, a, a][:orders]  # times (pi n)^k below
    if orders > 1:
        pin = (math.pi * n.to(torch.float64))[:, None, :]
        weighted[1:] = [a * pin, a * pin * pin][: orders - 1]
    spec = torch.zeros(orders, b, c, 2 * grid, dtype=torch.float64, device=dev)
    where = torch.remainder(n, 2 * grid)[:, None, :].expand(orders, b, c, d)
    spec.scatter_add_(-1, where, torch.stack(weighted))
    z = torch.fft.rfft(spec, dim=-1)  # (orders, B, C, G + 1)
    return tuple(z[k].real if k == 1 else z[k].imag for k in range(orders))


def table_grids(coeffs: torch.Tensor, start: torch.Tensor) -> list[int] | None:
    """Per image, the coarsest power-of-two grid (at least 64) on which the quintic Hermite interpolant
    of its maps is provably within :data:`TABLE_TOLERANCE`; ``None`` if one needs more than
    :data:`TABLE_MAX_GRID`.

    On an interval of length ``h`` the error is at most ``h^6 / 46080 max |f^(6)|``, and
    ``max |f^(6)| <= sum_n |a_n| (pi n)^6``.
    """
    n = torch.arange(coeffs.shape[-1], device=coeffs.device, dtype=torch.float64) + start[:, None]  # (B, D)
    sixth = n.mul_(math.pi).pow_(6)[:, :, None]
    bounds = torch.bmm(coeffs.abs().to(torch.float64), sixth).amax((1, 2)).tolist()  # (B,)
    grids = []
    for bound in bounds:
        need = (bound / (46080.0 * TABLE_TOLERANCE)) ** (1.0 / 6.0)  # intervals
        if not need <= TABLE_MAX_GRID:  # (also NaN and inf)
            return None
        grids.append(max(64, 1 << math.ceil(math.log2(need))) if need > 0.0 else 64)
    return grids


#: the quintic Hermite interpolant on ``t in [0, 1]`` in the power basis of ``t``:
#: ``P = M [f0, h f0', h^2 f0'', f1, h f1', h^2 f1'']``
_HERMITE5 = (
    (1.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    (0.0, 1.0, 0.0, 0.0, 0.0, 0.0),
    (0.0, 0.0, 0.5, 0.0, 0.0, 0.0),
    (-10.0, -6.0, -1.5, 10.0, -4.0, 0.5),
    (15.0, 8.0, 1.5, -15.0, 7.0, -1.0),
    (-6.0, -3.0, -0.5, 6.0, -3.0, 0.5),
)


@device_cached()
def _hermite_matrix(grid: int, *, device: torch.device) -> torch.Tensor:
    """:data:`_HERMITE5` with its derivative columns scaled by ``h = 1 / grid`` and ``h^2``."""
    h = 1.0 / grid
    scaled = [[x * (1.0, h, h * h)[k % 3] for k, x in enumerate(row)] for row in _HERMITE5]
    return torch.tensor(scaled, dtype=torch.float64, device=device)


def hermite_table(coeffs: torch.Tensor, start: torch.Tensor, grid: int, dtype: torch.dtype) -> torch.Tensor:
    """Power-basis coefficients of the quintic Hermite interpolant of ``f`` on each grid interval.

    On ``[j / G, (j + 1) / G]``, ``f(v) ~ sum_k P[k, ..., j] t^k`` with ``t = G v - j``; the
    interpolant matches ``f``, ``f'`` and ``f''`` at both nodes (:func:`node_derivatives`).

    Returns:
        ``(6, B, C, grid)`` in ``dtype`` (``C`` as in ``coeffs``).
    """
    nodes = node_derivatives(coeffs, start, grid, 3)
    ends = torch.stack([f[..., :-1] for f in nodes] + [f[..., 1:] for f in nodes])  # (6, B, C, G)
    return (_hermite_matrix(grid, device=coeffs.device) @ ends.view(6, -1)).view(ends.shape).to(dtype)


def table_map(
    v: torch.Tensor, coeffs: torch.Tensor, start: torch.Tensor, *, clip: bool
) -> torch.Tensor | None:
    """``v + f(v)`` (clipped to ``[0, 1]`` if ``clip``) for values ``v`` of shape (B, C, N) from the
    tabulated interpolants; a new tensor, or ``None`` if a value is outside ``[0, 1]`` or a map needs
    more than :data:`TABLE_MAX_GRID` intervals.

    Each image's maps are tabulated on its own grid ``G`` (:func:`table_grids`; the images of one grid
    size in one FFT), so a batch gives exactly the results of its single images. Then ``u = G v``
    (``G`` a power of two, so ``u``, its floor ``j`` and ``t = u - j`` are exact), six lookups and a
    Horner evaluation of degree 5, on blocks of whole images of at most :data:`TABLE_BLOCK` values.
    """
    lo, hi = torch.aminmax(v)
    grids = table_grids(coeffs, start) if float(lo) >= 0.0 and float(hi) <= 1.0 else None  # (NaN: None)
    if grids is None:
        return None
    b, c, n = v.shape
    if len(set(grids)) == 1:
        table = hermite_table(coeffs, start, grids[0], v.dtype)  # (6, B, C or 1, G)
    else:  # each image's table in the first G of its row (the rest is never read)
        table = v.new_empty(6, b, coeffs.shape[1], max(grids))
        for grid in set(grids):
            rows = torch.tensor([i for i, g in enumerate(grids) if g == grid], device=v.device)
            table[:, rows, :, :grid] = hermite_table(coeffs[rows], start[rows], grid, v.dtype)
    table = table.expand(6, b, c, table.shape[-1])
    sizes = torch.tensor(grids, device=v.device)[:, None, None]  # (B, 1, 1)
    out = torch.empty_like(v)
    step = max(1, TABLE_BLOCK // max(1, c * n))
    for i in range(0, b, step):
        block = slice(i, i + step)
        _interpolate(v[block], table[:, block], sizes[block], out[block])
    return out.clamp_(0.0, 1.0) if clip else out


def _interpolate(v: torch.Tensor, table: torch.Tensor, sizes: torch.Tensor, out: torch.Tensor) -> None:
    """``out = v + P(t)``: ``P`` the polynomial of ``v``'s interval in ``table`` (6, B, C, G) on grids
    of ``sizes`` intervals."""
    t = v * sizes.to(v.dtype)
    idx = t.to(torch.int64)  # the floor (t >= 0)
    idx = torch.minimum(idx, sizes - 1, out=idx)  # v = 1 ends the last interval
    t = t.sub_(idx)
    *lower, top = table.unbind(0)
    torch.gather(top, -1, idx, out=out)
    term = torch.empty_like(t)
    for coef in reversed(lower):
        torch.gather(coef, -1, idx, out=term)
        torch.addcmul(term, out, t, out=out)
    out.add_(v)


# ------------------------------------------------------------------------------------ the kernel
if HAVE_TRITON:

    @triton.jit
    def _exact_sin(k, m_int, lo):
        # sin(pi k v), v = m_int / 2048 + lo: (k mod 4096) * m_int < 2**23 is exact in float32
        whole = (((k % 4096.0) * m_int) % 4096.0) * (1.0 / 2048.0)
        return tl.sin(3.141592653589793 * (whole + k * lo))

    @triton.jit
    def _map_kernel(
        x_ptr, out_ptr, coeff_ptr, start_ptr, n_per_row, n_freq, clip: tl.constexpr, BLOCK_SIZE: tl.constexpr
    ):
        # one program: a block of values of one (image, channel) row; the sine recurrence
        # sin((k + 1) t) = 2 cos t sin(k t) - sin((k - 1) t), re-seeded every 32 frequencies with sines
        # whose phase is reduced exactly (the m / 2048 + lo split of the eager series)
        row = tl.program_id(0)
        offs = tl.program_id(1) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
        mask = offs < n_per_row
        base = row.to(tl.int64) * n_per_row
        v = tl.load(x_ptr + base + offs, mask=mask, other=0.0)
        m_int = tl.floor(v * 2048.0 + 0.5)
        lo = v - m_int * (1.0 / 2048.0)
        two_cos = 2.0 * tl.cos(3.141592653589793 * v)
        k_first = tl.load(start_ptr + row).to(tl.float32)
        acc = tl.zeros([BLOCK_SIZE], dtype=tl.float32)
        for blk in range(0, n_freq, 32):
            k0 = k_first + blk
            s_prev = _exact_sin(k0 - 1.0, m_int, lo)
            s_cur = _exact_sin(k0, m_int, lo)
            for j in range(0, 32):
                f = blk + j
                if f < n_freq:
                    a = tl.load(coeff_ptr + row.to(tl.int64) * n_freq + f)
                    acc += a * s_cur
                    s_next = two_cos * s_cur - s_prev
                    s_prev = s_cur
                    s_cur = s_next
        out = v + acc
        if clip:
            out = tl.minimum(tl.maximum(out, 0.0), 1.0)
        tl.store(out_ptr + base + offs, out, mask=mask)


def triton_map(
    v: torch.Tensor, coeffs: torch.Tensor, start: torch.Tensor, *, clip: bool, block: int = 1024
) -> torch.Tensor:
    """``v + f(v)`` (clipped if ``clip``) for float32 values ``v`` of shape (B, C, N) by the fused
    kernel: one read and one write of ``v``; a new tensor."""
    b, c, n = v.shape
    d = coeffs.shape[-1]
    v = v.contiguous()
    out = torch.empty_like(v)
    if v.numel() == 0:
        return out
    rows = b * c
    coeffs = coeffs.to(device=v.device, dtype=torch.float32).expand(b, c, d).reshape(rows, d).contiguous()
    starts = start.to(device=v.device, dtype=torch.int32)[:, None].expand(b, c).reshape(rows).contiguous()
    _map_kernel[(rows, math.ceil(n / block))](v, out, coeffs, starts, n, d, clip, BLOCK_SIZE=block)
    return out
