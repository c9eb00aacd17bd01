"""Random smooth diffeomorphisms: ``tau(x)(r) = x(r + u(r))``.

The displacement field of each image is a double sine series on the unit square
``r = (r1, r2) in [0, 1]^2`` (``r1`` along the height, ``r2`` along the width, ``r = (h / (H - 1),
v / (W - 1))`` for the pixel ``(h, v)``):

.. math::

    u_k(r) = \\sum_{i, j \\ge 1} b^{(k)}_{ij} \\sin(\\pi i r_1) \\sin(\\pi j r_2), \\qquad
    b^{(k)}_{ij} \\sim \\mathcal N\\big(0, T / (i^2 + j^2)\\big) \\text{ for } i^2 + j^2 \\le c^2,

for the two components ``k`` (height, width). The field vanishes on the border, so border pixels
stay in place. Displacements are in units of the image extent: ``u_1 = 0.01`` moves a pixel by
``0.01 (H - 1)`` pixels along the height. Non-square images use the same unit-square field stretched
to the image.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from . import _random
from ._utils import check_image_batch, check_param, flatten_batch

__all__ = [
    "deform",
    "displacement_field",
    "folded_variance_weights",
    "max_cut",
    "sample_spatial_params",
    "sine_basis",
    "temperature_range",
]


def temperature_range(n: int, cut: float | torch.Tensor) -> tuple[float | torch.Tensor, float | torch.Tensor]:
    """Bounds of the temperature ``T`` for an ``n``-pixel side and a cut ``c >= 2``.

    ``T_min = 1 / (pi n^2 ln c)`` gives a typical displacement of half a pixel;
    ``T_max = 4 / (pi^3 c^2 ln c)`` is the largest ``T`` free of overhangs. The range is empty
    (``T_max < T_min``) when ``c > 2 n / pi``; callers decide what to do then (the samplers of this
    package use ``T_min``, as the method's code does).

    Example:
        >>> tmin, tmax = temperature_range(32, 10)
        >>> f"{tmin:.4e} {tmax:.4e}"
        '1.3500e-04 5.6027e-04'
        >>> temperature_range(32, 100)[1] < temperature_range(32, 100)[0]  # c > 2n/pi: empty range
        True
    """
    if isinstance(cut, torch.Tensor):
        c = cut.to(torch.float64)
        inv_log = torch.log(c).reciprocal_()
        return inv_log * (1.0 / (math.pi * n**2)), inv_log.div(c * c).mul_(4.0 / math.pi**3)
    else:
        c = float(cut)
        if c <= 1:
            raise ValueError(f"cut must be > 1, got {cut}")
        log = math.log(c)
    t_min = 1.0 / (math.pi * n**2 * log)
    t_max = 4.0 / (math.pi**3 * c**2 * log)
    return t_min, t_max


def _sine_basis_f64(n: int, k: int) -> torch.Tensor:
    if n < 2 or k == 0:
        return torch.zeros(n, k, dtype=torch.float64)
    # sin(pi i p / N) with the argument reduced exactly modulo 2 pi in integers, so that
    # multiples of pi give exact zeros and large frequencies lose no accuracy.
    big_n = n - 1
    phase = (
        torch.arange(n, dtype=torch.int64)[:, None] * torch.arange(1, k + 1, dtype=torch.int64)[None, :]
    ) % (2 * big_n)
    s = torch.sin(math.pi * phase.to(torch.float64) / big_n)
    s[phase % big_n == 0] = 0.0
    return s


@functools.lru_cache(maxsize=256)
def _basis_cached(n: int, k: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    # one copy per device: a host-to-device copy per call would synchronise the CUDA stream
    return _sine_basis_f64(n, k).to(device=device, dtype=dtype)


def _basis(n: int, k: int, device: torch.device | str | None, dtype: torch.dtype) -> torch.Tensor:
    """The cached basis (internal: callers must not modify it)."""
    if torch.compiler.is_compiling():
        return _sine_basis_f64(int(n), int(k)).to(device=device, dtype=dtype)
    return _basis_cached(int(n), int(k), str(torch.device(device if device is not None else "cpu")), dtype)


def sine_basis(
    n: int, k: int, *, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """``S[p, i] = sin(pi (i + 1) p / (n - 1))`` for ``p < n``, ``i < k`` (zeros when ``n < 2``)."""
    return _basis(n, k, device, dtype).clone()


def _identity_grid(height: int, width: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The pixel centres in ``grid_sample``'s coordinates, ``(H, W, 2)`` as (x, y) (cached, read-only)."""
    if torch.compiler.is_compiling():
        return _identity_grid_uncached(height, width, device, dtype)
    return _identity_grid_cached(int(height), int(width), str(torch.device(device)), dtype)


def _identity_grid_uncached(
    height: int, width: int, device: torch.device | str, dtype: torch.dtype
) -> torch.Tensor:
    gy = torch.linspace(-1.0, 1.0, height, device=device, dtype=dtype)
    gx = torch.linspace(-1.0, 1.0, width, device=device, dtype=dtype)
    return torch.stack((gx[None, :].expand(height, width), gy[:, None].expand(height, width)), dim=-1)


@functools.lru_cache(maxsize=64)
def _identity_grid_cached(height: int, width: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    return _identity_grid_uncached(height, width, device, dtype)


def displacement_field(coeffs: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Evaluate the sine-series displacement field on the pixel grid.

    ``u[b, k] = S_H coeffs[b, k] S_W^T`` with the :func:`sine_basis` matrices: one batched matrix
    product per image and component, no loop over images.

    Args:
        coeffs: ``(B, 2, Ky, Kx)``, the coefficients ``b_ij`` of the height (0) and width (1)
            components; frequency ``i + 1`` along the height, ``j + 1`` along the width.
        height, width: the grid size.

    Returns:
        ``(B, 2, H, W)`` displacements in units of the image extent, in ``coeffs``' dtype.
    """
    if not isinstance(coeffs, torch.Tensor) or coeffs.ndim != 4 or coeffs.shape[1] != 2:
        got = tuple(coeffs.shape) if isinstance(coeffs, torch.Tensor) else type(coeffs).__name__
        raise ValueError(f"coeffs must have shape (B, 2, Ky, Kx), got {got}")
    dtype = coeffs.dtype if coeffs.is_floating_point() else torch.float32
    sy = _basis(height, coeffs.shape[2], coeffs.device, dtype)
    sx = _basis(width, coeffs.shape[3], coeffs.device, dtype)
    coeffs = coeffs.to(dtype)
    extents = _extents(coeffs, height, width)
    if extents is None:
        return sy @ coeffs @ sx.T
    # CPU, cuts that differ between images: each image's product stops at its own last non-zero
    # frequency (the zero coefficients beyond it add nothing), instead of the batch's largest block
    out = coeffs.new_zeros(coeffs.shape[0], 2, height, width)
    for i, (ky, kx) in enumerate(extents):
        if ky and kx:
            torch.matmul(sy[:, :ky] @ coeffs[i, :, :ky, :kx], sx[:, :kx].T, out=out[i])
    return out


#: fixed cost of one image's own field product on the CPU, in multiply-adds (about 10 us)
_PER_IMAGE_MACS = 4e5


def _extents(coeffs: torch.Tensor, height: int, width: int) -> list[tuple[int, int]] | None:
    """Per image, the number of leading frequencies with a non-zero coefficient along each axis, when
    synthesising each image on its own block is cheaper than the batch's block (CPU only; ``None``
    otherwise)."""
    b, _, ky, kx = coeffs.shape
    if coeffs.device.type != "cpu" or torch.compiler.is_compiling():
        return None
    if torch.is_grad_enabled() and coeffs.requires_grad:  # autograd cannot record out= products
        return None
    if b == 1 and ky * kx <= _PER_IMAGE_MACS / (2.0 * (height + width)):
        return None  # one image on a small block (e.g. its own, from the CPU sampler): nothing to gain
    nz = coeffs.ne(0).any(1)  # (B, Ky, Kx)
    rows = (nz.any(2) * torch.arange(1, ky + 1)).amax(1).tolist()
    cols = (nz.any(1) * torch.arange(1, kx + 1)).amax(1).tolist()

    def cost(a: int, c: int) -> float:  # S_H (H x a) @ B (a x c), then @ S_W^T (c x W), two components
        return 2.0 * height * c * (a + width)

    own = sum(cost(a, c) + _PER_IMAGE_MACS for a, c in zip(rows, cols, strict=True))
    return list(zip(rows, cols, strict=True)) if own < b * cost(ky, kx) else None


def deform(
    x: torch.Tensor,
    coeffs: torch.Tensor,
    *,
    mode: str = "bilinear",
    padding_mode: str = "border",
    clip: bool = True,
) -> torch.Tensor:
    """Warp each image by its own smooth displacement field: ``tau(x)(r) = x(r + u(r))``.

    The field ``u`` of every image is :func:`displacement_field` of its coefficients; the image is
    resampled at ``r + u(r)`` by ``grid_sample`` (``align_corners=True``, so ``r`` sits on pixel
    centres and the border of the field is the border row/column of pixels, which therefore stays
    fixed). Sample points that leave the image take the border value (``padding_mode="border"``).

    Args:
        x: images, floating point, shape ``(..., C, H, W)``.
        coeffs: ``(B, 2, Ky, Kx)`` field coefficients, one set per image (``B`` = number of images).
        mode: ``"bilinear"`` (images) or ``"nearest"`` (label masks).
        padding_mode: ``grid_sample`` padding for points outside the image.
        clip: clip the result to ``[0, 1]`` (a no-op for bilinear sampling of images in ``[0, 1]``).

    Returns:
        The warped images, same shape, dtype and device as ``x``; ``x`` is not modified.

    Example:
        >>> import torch
        >>> x = torch.rand(2, 3, 16, 12, generator=torch.Generator().manual_seed(0))
        >>> c = 0.02 * torch.randn(2, 2, 5, 5, generator=torch.Generator().manual_seed(1))
        >>> y = deform(x, c)
        >>> y.shape, torch.allclose(y[..., 0, :], x[..., 0, :], atol=1e-6)  # the border stays
        (torch.Size([2, 3, 16, 12]), True)
        >>> torch.allclose(deform(x, 0 * c), x, atol=1e-6)  # a zero field is the identity
        True
    """
    x = check_image_batch(x)
    xb, lead = flatten_batch(x)
    b, c, h, w = xb.shape
    coeffs = check_param(coeffs, "coeffs", (2, None, None), b)
    if xb.numel() == 0 or h < 3 or w < 3 or coeffs.shape[2] == 0 or coeffs.shape[3] == 0:
        return x.clone()  # no interior: the field is identically zero
    compute = torch.float64 if xb.dtype == torch.float64 else torch.float32
    # the field with its components in grid_sample's (x, y) order, viewed as (B, H, W, 2)
    u = displacement_field(coeffs.to(device=xb.device, dtype=compute).flip(1), h, w).permute(0, 2, 3, 1)
    # normalised coordinates in [-1, 1] = 2 r - 1, so a displacement u (in r units) adds 2 u.
    grid = torch.add(_identity_grid(h, w, xb.device, compute), u, alpha=2.0)  # (B, H, W, 2) as (x, y)
    out = F.grid_sample(xb.to(compute), grid, mode=mode, padding_mode=padding_mode, align_corners=True)
    if clip:
        out = out.clamp(0.0, 1.0)
    return out.to(xb.dtype).reshape(*lead, c, h, w)


@functools.lru_cache(maxsize=64)
def _alias_table(n: int, cut_max: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Which sine frequencies ``1..cut_max`` coincide on an ``n``-point grid.

    On the grid ``p / (n - 1)`` (``N = n - 1``) the mode ``sin(pi i p / N)`` equals, up to sign, the mode
    of the folded frequency ``i mod 2N`` reflected into ``[0, N]``; frequencies that fold to ``0`` or ``N``
    vanish on the grid. Returns ``freqs`` of shape ``(K, A)`` (the original frequencies folding onto
    ``1..K``, ``K = min(cut_max, N - 1)``, zero-padded) and a validity mask of the same shape.
    """
    big_n = n - 1
    k = max(0, min(cut_max, big_n - 1))
    groups: list[list[int]] = [[] for _ in range(k)]
    for i in range(1, cut_max + 1):
        m = i % (2 * big_n) if big_n > 0 else 0
        f = 2 * big_n - m if m > big_n else m
        if 0 < f < big_n and f <= k:
            groups[f - 1].append(i)
    a = max([len(g) for g in groups] + [1])
    freqs = torch.zeros(k, a, dtype=torch.float64)
    valid = torch.zeros(k, a, dtype=torch.bool)
    for f, g in enumerate(groups):
        freqs[f, : len(g)] = torch.tensor(g, dtype=torch.float64)
        valid[f, : len(g)] = True
    return freqs, valid


@functools.lru_cache(maxsize=32)
def _fold_tables(height: int, width: int, cut_max: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per folded frequency ``(i', j')``: the sorted squared radii ``i^2 + j^2`` of the frequencies that
    fold onto it, ``(M, A)``, and the cumulative sums of their ``1 / (i^2 + j^2)``, ``(M, A + 1)``.

    Radii are integers below 2**24, so float32 holds them (and compares them with ``c^2``) exactly.
    """
    fy, vy = _alias_table(height, cut_max)
    fx, vx = _alias_table(width, cut_max)
    r2 = fy[:, None, :, None] ** 2 + fx[None, :, None, :] ** 2  # (Ky, Kx, Ay, Ax)
    valid = vy[:, None, :, None] & vx[None, :, None, :]
    r2 = torch.where(valid, r2, torch.inf).flatten(0, 1).flatten(1)  # (M, A)
    r2, _ = torch.sort(r2, dim=1)
    inv = torch.where(torch.isfinite(r2), 1.0 / r2, 0.0)
    cum = torch.cat((torch.zeros(r2.shape[0], 1, dtype=r2.dtype), inv.cumsum(1)), dim=1)
    return r2.to(device=device, dtype=torch.float32), cum.to(device=device, dtype=torch.float32)


@torch.compiler.assume_constant_result
def _fold_tables_constant(
    height: int, width: int, cut_max: int, device: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_fold_tables`, a constant of a compiled graph (``torch.compile`` would trace the cached
    function and rebuild the tables in every call)."""
    return _fold_tables(height, width, cut_max, device)


@functools.lru_cache(maxsize=64)
def _disk_tables(ky: int, kx: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``i^2 + j^2`` and ``1 / (i^2 + j^2)`` for ``1 <= i <= ky``, ``1 <= j <= kx`` (float32, CPU).

    Cached: callers must not modify them.
    """
    r2 = (torch.arange(1, ky + 1, dtype=torch.float64)[:, None] ** 2
          + torch.arange(1, kx + 1, dtype=torch.float64)[None, :] ** 2)
    return r2.to(torch.float32), r2.reciprocal().to(torch.float32)


def folded_variance_weights(
    cut: torch.Tensor, height: int, width: int, cut_max: int, *, band: tuple[int, int] | None = None
) -> torch.Tensor:
    """Per-image variance weights of the folded coefficients.

    For image ``b`` with cut ``c_b``, ``W[b, i', j'] = sum 1 / (i^2 + j^2)`` over the frequencies
    ``(i, j)``, ``i, j >= 1``, ``i^2 + j^2 <= c_b^2`` that fold onto ``(i', j')`` on the pixel grid (see
    :func:`_alias_table`). A field with coefficients ``N(0, T W)`` on the folded frequencies has exactly
    the law, on the pixel grid, of the field with coefficients ``N(0, T / (i^2 + j^2))`` on all
    frequencies of the disk, with at most ``(H - 2) x (W - 2)`` coefficients however large the cut.
    Computed with one ``searchsorted`` over cached per-frequency tables (no loop, no host sync).
    ``band=(ky, kx)`` computes only the lowest ``ky x kx`` folded frequencies (the others must be known
    to vanish, e.g. every cut below ``ky`` and ``kx`` when no frequency folds).

    Cuts (and ``cut_max``) above :func:`max_cut` count as that cap, which bounds the cost by the
    image size.

    Returns:
        ``(B, Ky, Kx)`` float32 weights, ``Ky = min(cut_max, H - 2)``, ``Kx = min(cut_max, W - 2)``
        (or ``band``).
    """
    cap = max_cut(height, width)
    cut, cut_max = cut.clamp_max(cap), min(int(cut_max), cap)  # (the cap is above H - 2 and W - 2)
    r2, cum = _fold_tables_constant(int(height), int(width), cut_max, str(cut.device))
    ky = max(0, min(int(cut_max), int(height) - 2))
    kx = max(0, min(int(cut_max), int(width) - 2))
    if band is not None and (band[0] < ky or band[1] < kx):
        r2 = r2.view(ky, kx, -1)[: band[0], : band[1]].reshape(-1, r2.shape[1])
        cum = cum.view(ky, kx, -1)[: band[0], : band[1]].reshape(-1, cum.shape[1])
        ky, kx = min(ky, band[0]), min(kx, band[1])
    b = cut.shape[0]
    if r2.shape[0] == 0 or b == 0:
        return torch.zeros(b, ky, kx, dtype=torch.float32, device=cut.device)
    c2 = cut.to(torch.float32).square()
    idx = torch.searchsorted(r2, c2[None, :].expand(r2.shape[0], b).contiguous(), right=True)
    return cum.gather(1, idx).T.reshape(b, ky, kx)


def max_cut(height: int, width: int) -> int:
    """The largest cut the samplers use on an ``H x W`` grid: ``4 (n - 1)``, ``n = max(H, W)`` (at least 2).

    On the ``n``-point grid ``r = k / (n - 1)`` the mode ``sin(pi i r)`` is periodic in ``i`` with period
    ``2 (n - 1)`` and odd about ``n - 1``, so every frequency folds onto one of the ``n - 2`` useful modes
    ``1..n - 2`` (or vanishes): the field never needs more than ``(H - 2) x (W - 2)`` coefficients, and
    the folded law is exact (:func:`folded_variance_weights`). The variance a cut ``c`` puts on those
    modes, though, is a sum over the ``~c^2`` frequencies of its disk (it grows like ``ln c``, and has
    no closed form), so the exact law costs ``O(c^2)`` to tabulate: 7 TB for ``c = 10^6`` on a 16 x 16
    image. Cuts are therefore capped at two folding periods, ``4 (n - 1)``: below the cap the law and
    the draws are exactly the method's (above every preset at the sizes it is meant for: 124 for 32 px,
    892 for 224 px); a larger cut is drawn as the cap (its law gets an atom there), which bounds the
    tables by ``16 n^2`` entries whatever ``cut_max``.
    """
    return max(4 * (max(int(height), int(width)) - 1), 2)


def sample_spatial_params(
    batch_size: int,
    height: int,
    width: int,
    *,
    cut_min: int = 2,
    cut_max: int = 100,
    strength: float = 1.0,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    static_shapes: bool = False,
) -> dict[str, torch.Tensor]:
    """Draw the per-image parameters of :func:`deform` (the laws of the method's code).

    Per image: a maximal cut ``m ~ U{cut_min + 1, ..., cut_max}`` (``cut_min`` when
    ``cut_max == cut_min``), the cut ``c = floor(cut_min + B1 (m + 1 - cut_min))`` (at most ``m``, and at
    most :func:`max_cut` of the image) and the temperature
    ``T = strength^2 (T_min + B2 (T_max - T_min))`` with ``B1, B2 ~ Beta(1/2, 1/2)`` and
    the bounds of :func:`temperature_range` for ``n = max(H, W)`` and ``c``; when that range is empty
    (``c > 2n / pi``) ``T = strength^2 T_min``. ``strength`` scales the displacement (``T`` by its square).

    The coefficients ``b_ij ~ N(0, T / (i^2 + j^2))`` for ``i^2 + j^2 <= c^2`` are drawn directly on the
    frequencies the pixel grid can distinguish (:func:`folded_variance_weights`): exactly the same law
    of the displacement of every pixel, with at most ``(H - 2) x (W - 2)`` coefficients.

    On the CPU the cuts are read to draw each image's coefficients on its own block (fewer normals);
    that step reads the data, so it runs eagerly under ``torch.compile`` (the same draws as without
    it). ``static_shapes=True`` draws on every device as on accelerators (one ``(B, 2, Ky, Kx)`` draw,
    the same law, other numbers than the CPU default): no read of the data, so the sampler compiles
    with ``torch.compile(fullgraph=True)`` and gives the same draws compiled and eager.

    Returns:
        ``{"cut": (B,) int64, "temperature": (B,), "coeffs": (B, 2, Ky, Kx)}`` with
        ``Ky = min(cut_max, H - 2)``, ``Kx = min(cut_max, W - 2)`` (zero when the image has no interior);
        on the CPU, where the cuts can be read for free, the block stops at the largest cut of the batch
        when that cut is below the folding limit (the coefficients above it are all zero).

    Example:
        >>> import torch
        >>> p = sample_spatial_params(4, 32, 32, generator=torch.Generator().manual_seed(0))
        >>> p["coeffs"].shape, p["cut"].dtype
        (torch.Size([4, 2, 30, 30]), torch.int64)
    """
    if cut_min < 2:
        raise ValueError(f"cut_min must be >= 2 (ln(cut) must be positive), got {cut_min}")
    if cut_max < cut_min:
        raise ValueError(f"cut_max must be >= cut_min={cut_min}, got {cut_max}")
    b = batch_size
    on_cpu = device is None or torch.device(device).type == "cpu"
    if on_cpu and b > 0 and not static_shapes:
        return _sample_on_cpu(b, height, width, cut_min, cut_max, strength, generator, dtype)
    laws = (b, height, width, (cut_min, cut_max), strength, generator)
    cut, temperature = _cuts_and_temperatures(*laws, device)
    weights = folded_variance_weights(cut, height, width, cut_max)  # (B, Ky, Kx)
    std = (temperature.to(weights.dtype)[:, None, None] * weights).sqrt().to(dtype)
    z = _random.normal((b, 2, *weights.shape[1:]), generator=generator, device=device, dtype=dtype)
    return {"cut": cut, "temperature": temperature.to(dtype), "coeffs": std[:, None] * z}


def _cuts_and_temperatures(
    b: int,
    height: int,
    width: int,
    cuts: tuple[int, int],
    strength: float,
    generator: torch.Generator | None,
    device: torch.device | str | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The cuts ``(B,)`` int64 and float64 temperatures of :func:`sample_spatial_params`, as tensors."""
    cut_min, cut_max = cuts
    if cut_max > cut_min:
        top = _random.randint((b,), cut_min + 1, cut_max, generator=generator, device=device)
    else:
        top = torch.full((b,), cut_min, dtype=torch.int64, device=device)
    b1 = _random.arcsine((b,), generator=generator, device=device, dtype=torch.float64)
    # floor(cut_min + B1 (m + 1 - cut_min)), at most m (the values are positive: truncation is the floor)
    cut = torch.minimum(b1.mul_(top + (1 - cut_min)).add_(cut_min).to(torch.int64), top)
    cut = cut.clamp_max_(max_cut(height, width))
    b2 = _random.arcsine((b,), generator=generator, device=device, dtype=torch.float64)
    t_min, t_max = temperature_range(max(height, width), cut)
    temperature = torch.maximum(t_max, t_min).sub_(t_min).mul_(b2).add_(t_min)
    if strength != 1.0:
        temperature.mul_(float(strength) ** 2)
    return cut, temperature


#: batches up to this size drawn on the CPU compute their cuts and temperatures in Python scalars
_SCALAR_BATCH = 16


@torch.compiler.disable
def _sample_on_cpu(
    b: int,
    height: int,
    width: int,
    cut_min: int,
    cut_max: int,
    strength: float,
    generator: torch.Generator | None,
    dtype: torch.dtype,
) -> dict[str, torch.Tensor]:
    """:func:`sample_spatial_params` on the CPU: each image's coefficients on its own block (reads the
    cuts, so it runs eagerly under ``torch.compile``: compiled and eager calls draw the same numbers)."""
    laws = (b, height, width, (cut_min, cut_max), strength, generator)
    if b <= _SCALAR_BATCH and (generator is None or generator.device.type == "cpu"):
        cuts, temperature = _few_cuts_and_temperatures(*laws)
        cut = torch.tensor(cuts)
    else:
        cut, temperature = _cuts_and_temperatures(*laws, None)
        cuts = cut.tolist()
    coeffs = _draw_per_image(cuts, temperature, height, width, cut_max, generator, dtype)
    return {"cut": cut, "temperature": temperature.to(dtype), "coeffs": coeffs}


def _few_cuts_and_temperatures(
    b: int, height: int, width: int, cuts: tuple[int, int], strength: float, generator: torch.Generator | None
) -> tuple[list[int], torch.Tensor]:
    """The cuts and float64 temperatures of :func:`sample_spatial_params` for a few CPU images, the
    per-image scalars in Python.

    One draw of ``3 B`` uniforms ``(u_m, u_1, u_2)`` per image; ``m = cut_min + 1 + floor(u_m (cut_max -
    cut_min))``, ``c = floor(cut_min + sin^2(pi u_1 / 2) (m + 1 - cut_min))`` (at most ``m`` and the cap)
    and ``T = strength^2 (T_min + sin^2(pi u_2 / 2) max(T_max - T_min, 0))``: the formulas of the tensor
    path (a dispatch-bound per-image call saves about 35 tensor operations).
    """
    cut_min, cut_max = cuts
    n = max(height, width)
    cap = max_cut(height, width)
    out: list[int] = []
    temps: list[float] = []
    for u_top, u_1, u_2 in torch.rand((b, 3), generator=generator, dtype=torch.float64).tolist():
        top = min(cut_min + 1 + int(u_top * (cut_max - cut_min)), cut_max) if cut_max > cut_min else cut_min
        c = min(int(math.sin(0.5 * math.pi * u_1) ** 2 * (top + 1 - cut_min) + cut_min), top, cap)
        t_min, t_max = temperature_range(n, c)
        t = (max(t_max, t_min) - t_min) * math.sin(0.5 * math.pi * u_2) ** 2 + t_min
        out.append(c)
        temps.append(t * float(strength) ** 2 if strength != 1.0 else t)
    return out, torch.tensor(temps, dtype=torch.float64)


#: blocks of at most this many coefficients have their per-cut weights cached (16 KiB each)
_CACHED_WEIGHTS_MAX = 64 * 64


@functools.lru_cache(maxsize=512)
def _cut_weights(c: int, height: int, width: int, cut_max: int) -> torch.Tensor:
    """The variance weights of one cut on its own block (as drawn by :func:`_draw_per_image`): the disk's
    ``1 / (i^2 + j^2)`` on ``c x c`` below the folding limit, else the folded weights; float32, cached
    (read-only)."""
    if c < min(height, width) - 1:
        r2, inv = _disk_tables(c, c)
        return inv * (r2 <= float(c * c))
    return folded_variance_weights(torch.tensor([c]), height, width, cut_max)[0]


def _draw_per_image(
    cuts: list[int],
    temperature: torch.Tensor,
    height: int,
    width: int,
    cut_max: int,
    generator: torch.Generator | None,
    dtype: torch.dtype,
) -> torch.Tensor:
    """The coefficients of each image drawn on its own block (CPU, where the cuts are free to read).

    Below the folding limit (``c < min(H, W) - 1``) no two frequencies of the disk coincide on the
    grid: the block is ``c x c`` with the plain weights ``1 / (i^2 + j^2)`` on the disk (equal to the
    folded tables, tested); from it on, the image's folded weights on the whole ``Ky x Kx`` block.
    Everything outside an image's block is zero, so only ``sum_b (block size)`` normals are drawn
    (not ``B`` times the largest block) and :func:`displacement_field` can stop at each block. The
    result stops at the largest block of the batch.
    """
    ky_full, kx_full = max(0, min(cut_max, height - 2)), max(0, min(cut_max, width - 2))
    limit = min(height, width) - 1
    blocks = [(c, c) if c < limit else (ky_full, kx_full) for c in cuts]
    out = torch.zeros(len(cuts), 2, max(a for a, _ in blocks), max(c for _, c in blocks), dtype=dtype)
    temps = temperature.to(torch.float32)
    for i, (c, (ky, kx)) in enumerate(zip(cuts, blocks, strict=True)):
        if ky == 0 or kx == 0:
            continue
        if ky * kx <= _CACHED_WEIGHTS_MAX:  # small blocks: the weights of this cut are cached
            weights = _cut_weights(c, height, width, cut_max) * temps[i]
        else:  # large ones: computed afresh (the same function, uncached), scaled in place
            weights = _cut_weights.__wrapped__(c, height, width, cut_max).mul_(temps[i])
        std = weights.sqrt_().to(dtype)
        z = _random.normal((2, ky, kx), generator=generator, dtype=dtype)
        torch.mul(z, std, out=out[i, :, :ky, :kx])
    return out
