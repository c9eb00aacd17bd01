"""Random smooth diffeomorphisms: ``tau(x)(r) = x(r + u(r))``.

Read top to bottom: the temperature bounds, the sine basis and the field kernel, :func:`deform`,
the folding of frequencies onto the pixel grid, and the sampler with the method's laws.

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

import math

import torch
import torch.nn.functional as F

from . import _random
from ._utils import PathSwitch, check_image_batch, check_param, device_cached, flatten_batch

__all__ = [
    "PATHS",
    "deform",
    "displacement_field",
    "folded_variance_weights",
    "forced",
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
    c = float(cut)
    if c <= 1:
        raise ValueError(f"cut must be > 1, got {cut}")
    log = math.log(c)
    return 1.0 / (math.pi * n**2 * log), 4.0 / (math.pi**3 * c**2 * log)


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


# ------------------------------------------------------------------------------------ the kernel
@device_cached()
def _basis(n: int, k: int, dtype: torch.dtype, *, device: torch.device | None) -> torch.Tensor:
    """``S[p, i] = sin(pi (i + 1) p / (n - 1))``, ``(n, k)`` (cached per device, read-only)."""
    if n < 2 or k == 0:
        return torch.zeros(n, k, dtype=dtype, device=device)
    # the argument reduced exactly modulo 2 pi in integers, so that multiples of pi give exact
    # zeros and large frequencies lose no accuracy
    big_n = n - 1
    phase = (torch.arange(n)[:, None] * torch.arange(1, k + 1)[None, :]) % (2 * big_n)
    s = torch.sin(math.pi * phase.to(torch.float64) / big_n)
    s[phase % big_n == 0] = 0.0
    return s.to(device=device, dtype=dtype)


def sine_basis(
    n: int, k: int, *, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """``S[p, i] = sin(pi (i + 1) p / (n - 1))`` for ``p < n``, ``i < k`` (zeros when ``n < 2``).

    Example:
        >>> sine_basis(3, 2)  # r = 0, 1/2, 1: sin(pi r), sin(2 pi r)
        tensor([[0., 0.],
                [1., 0.],
                [0., 0.]])
    """
    return _basis(int(n), int(k), dtype, device=device).clone()


def displacement_field(coeffs: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Evaluate the sine-series displacement field on the pixel grid.

    ``u[b, k] = S_H coeffs[b, k] S_W^T`` with the :func:`sine_basis` matrices ``S_H`` ``(H, Ky)`` and
    ``S_W`` ``(W, Kx)``: one batched matrix product, no loop over images.

    One faster evaluation of the same sum (:func:`forced` selects either): on the CPU, for blocks
    larger than :data:`PER_IMAGE_MIN_BLOCK` coefficients and outside ``torch.compile``, each image's
    product stops at its own last non-zero row and column (the zeros beyond add nothing; a sampled
    block is zero beyond the image's cut below the folding limit). Reading the coefficients is free
    there; the arithmetic drops to the image's own block (at 224 x 224 with cuts up to 500, about half).

    Args:
        coeffs: ``(B, 2, Ky, Kx)``, the coefficients ``b_ij`` of the height (0) and width (1)
            components; frequency ``i + 1`` along the height, ``j + 1`` along the width.
        height, width: the grid size.

    Returns:
        ``(B, 2, H, W)`` displacements in units of the image extent, in ``coeffs``' dtype.

    Example:
        >>> import torch
        >>> c = torch.zeros(1, 2, 3, 3)
        >>> c[0, 0, 0, 0] = 1.0  # u_1(r) = sin(pi r1) sin(pi r2): 1 at the centre, 0 on the border
        >>> u = displacement_field(c, 5, 5)
        >>> u[0, 0, 2, 2].item(), u[0, 0, 0].abs().max().item(), u[0, 1].abs().max().item()
        (1.0, 0.0, 0.0)
    """
    if not isinstance(coeffs, torch.Tensor) or coeffs.ndim != 4 or coeffs.shape[1] != 2:
        got = tuple(coeffs.shape) if isinstance(coeffs, torch.Tensor) else type(coeffs).__name__
        raise ValueError(f"coeffs must have shape (B, 2, Ky, Kx), got {got}")
    dtype = coeffs.dtype if coeffs.is_floating_point() else torch.float32
    coeffs = coeffs.to(dtype)
    sy = _basis(int(height), coeffs.shape[2], dtype, device=coeffs.device)
    sx = _basis(int(width), coeffs.shape[3], dtype, device=coeffs.device)
    if _path(coeffs) == "per_image":
        return _field_per_image(coeffs, sy, sx)
    return sy @ coeffs @ sx.T


#: the two evaluations of :func:`displacement_field`
PATHS = ("batched", "per_image")
#: on the CPU, blocks of more coefficients than this are synthesised image by image (64 x 64)
PER_IMAGE_MIN_BLOCK = 64 * 64

_switch = PathSwitch("prime_augment_field_path", PATHS)
#: ``with forced("per_image"):`` evaluates :func:`displacement_field` by that path wherever it can
#: (``"per_image"`` needs CPU coefficients outside ``torch.compile``); for tests and benchmarks
forced = _switch.forced


def _path(coeffs: torch.Tensor) -> str:
    """The rule of :func:`displacement_field`: ``"per_image"`` or ``"batched"``."""
    if coeffs.device.type != "cpu" or coeffs.numel() == 0 or torch.compiler.is_compiling():
        return "batched"
    path = _switch.get()
    if path is None:
        path = "per_image" if coeffs.shape[2] * coeffs.shape[3] > PER_IMAGE_MIN_BLOCK else "batched"
    return path


def _field_per_image(coeffs: torch.Tensor, sy: torch.Tensor, sx: torch.Tensor) -> torch.Tensor:
    """``S_H coeffs S_W^T`` image by image, each on its own block up to its last non-zero row and
    column (reads the coefficients: CPU only)."""
    b, _, ky, kx = coeffs.shape
    size = coeffs.abs().amax(1)  # (B, Ky, Kx): zero exactly where both components are
    rows = (size.amax(2).ne(0) * torch.arange(1, ky + 1)).amax(1).tolist()  # 1 + each image's last live row
    cols = (size.amax(1).ne(0) * torch.arange(1, kx + 1)).amax(1).tolist()
    out = coeffs.new_zeros(b, 2, sy.shape[0], sx.shape[0])
    for i, (r, c) in enumerate(zip(rows, cols, strict=True)):
        if r and c:
            out[i] = sy[:, :r] @ coeffs[i, :, :r, :c] @ sx[:, :c].T
    return out


@device_cached()
def _identity_grid(
    height: int, width: int, dtype: torch.dtype, *, device: torch.device | None
) -> torch.Tensor:
    """The pixel centres in ``grid_sample``'s coordinates, ``(H, W, 2)`` as (x, y) (cached, read-only)."""
    gy = torch.linspace(-1.0, 1.0, height, device=device, dtype=dtype)
    gx = torch.linspace(-1.0, 1.0, width, device=device, dtype=dtype)
    return torch.stack((gx[None, :].expand(height, width), gy[:, None].expand(height, width)), dim=-1)


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
    grid = torch.add(_identity_grid(h, w, compute, device=xb.device), u, alpha=2.0)  # (B, H, W, 2)
    out = F.grid_sample(xb.to(compute), grid, mode=mode, padding_mode=padding_mode, align_corners=True)
    if clip:
        out = out.clamp(0.0, 1.0)
    return out.to(xb.dtype).reshape(*lead, c, h, w)


# --------------------------------------------------------------- the law on the pixel grid
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


@device_cached(maxsize=32)
def _fold_tables(
    height: int, width: int, cut_max: int, *, device: torch.device | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per folded frequency ``(i', j')``: the sorted squared radii ``i^2 + j^2`` of the frequencies that
    fold onto it, ``(M, A)``, the cumulative sums of their ``1 / (i^2 + j^2)``, ``(M, A + 1)``, and the
    square roots of those sums.

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
    return tuple(t.to(device=device, dtype=torch.float32) for t in (r2, cum, cum.sqrt()))  # type: ignore[return-value]


@torch.compiler.assume_constant_result
def _fold_tables_constant(
    height: int, width: int, cut_max: int, device: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`_fold_tables`, a constant of a compiled graph (``torch.compile`` would otherwise trace
    the Python loops of the tables in every call)."""
    return _fold_tables(height, width, cut_max, device=device)


def folded_variance_weights(
    cut: torch.Tensor, height: int, width: int, cut_max: int, *, band: tuple[int, int] | None = None
) -> torch.Tensor:
    """Per-image variance weights of the folded coefficients.

    For image ``b`` with cut ``c_b``, ``W[b, i', j'] = sum 1 / (i^2 + j^2)`` over the frequencies
    ``(i, j)``, ``i, j >= 1``, ``i^2 + j^2 <= c_b^2`` that fold onto ``(i', j')`` on the pixel grid (see
    :func:`_alias_table`). A field with coefficients ``N(0, T W)`` on the folded frequencies has exactly
    the law, on the pixel grid, of the field with coefficients ``N(0, T / (i^2 + j^2))`` on all
    frequencies of the disk, with at most ``(H - 2) x (W - 2)`` coefficients however large the cut.
    Below the folding limit (``c < min(H, W) - 1``) no two frequencies of the disk coincide:
    ``W[b, i, j] = 1 / (i^2 + j^2)`` on the disk and zero outside it. Computed with one
    ``searchsorted`` over cached per-frequency tables (no loop, no host sync). ``band=(ky, kx)``
    computes only the lowest ``ky x kx`` folded frequencies.

    Cuts (and ``cut_max``) above :func:`max_cut` count as that cap, which bounds the cost by the
    image size.

    Returns:
        ``(B, Ky, Kx)`` float32 weights, ``Ky = min(cut_max, H - 2)``, ``Kx = min(cut_max, W - 2)``
        (or ``band``).

    Example:
        >>> import torch
        >>> w = folded_variance_weights(torch.tensor([2]), 32, 32, 100)  # the disk i^2 + j^2 <= 4
        >>> w.shape, w[0, :2, :2].tolist(), int(w.count_nonzero())
        (torch.Size([1, 30, 30]), [[0.5, 0.0], [0.0, 0.0]], 1)
    """
    return _folded(cut, height, width, cut_max, band, root=False)


def _folded(
    cut: torch.Tensor, height: int, width: int, cut_max: int, band: tuple[int, int] | None, *, root: bool
) -> torch.Tensor:
    """:func:`folded_variance_weights`, or their square roots (``root=True``)."""
    cap = max_cut(height, width)
    cut, cut_max = cut.clamp_max(cap), min(int(cut_max), cap)  # (the cap is above H - 2 and W - 2)
    r2, cum, root_cum = _fold_tables_constant(int(height), int(width), cut_max, str(cut.device))
    table = root_cum if root else cum
    ky = max(0, min(cut_max, int(height) - 2))
    kx = max(0, min(cut_max, int(width) - 2))
    if band is not None and (band[0] < ky or band[1] < kx):
        r2 = r2.view(ky, kx, -1)[: band[0], : band[1]].reshape(-1, r2.shape[1])
        table = table.view(ky, kx, -1)[: band[0], : band[1]].reshape(-1, table.shape[1])
        ky, kx = min(ky, band[0]), min(kx, band[1])
    b = cut.shape[0]
    if r2.shape[0] == 0 or b == 0:
        return torch.zeros(b, ky, kx, dtype=torch.float32, device=cut.device)
    c2 = cut.to(torch.float32).square()
    idx = torch.searchsorted(r2, c2[None, :].expand(r2.shape[0], b).contiguous(), right=True)  # (M, B)
    return table.gather(1, idx).T.reshape(b, ky, kx)


# ---------------------------------------------------------------------------------- the sampler
def sample_spatial_params(
    batch_size: int,
    height: int,
    width: int,
    *,
    cut_min: int = 2,
    cut_max: int = 100,
    strength: float = 1.0,
    temperature_level: float | None = None,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    static_shapes: bool = False,
) -> dict[str, torch.Tensor]:
    """Draw the per-image parameters of :func:`deform` (the laws of the method's code).

    Per image: a maximal cut ``m ~ U{cut_min + 1, ..., cut_max}`` (``cut_min`` when
    ``cut_max == cut_min``, which fixes the cut), the cut ``c = floor(cut_min + B1 (m + 1 - cut_min))``
    (at most ``m``, and at most :func:`max_cut` of the image) and the temperature
    ``T = strength^2 (T_min + B2 (T_max - T_min))`` with ``B1, B2 ~ Beta(1/2, 1/2)`` and
    the bounds of :func:`temperature_range` for ``n = max(H, W)`` and ``c``; when that range is empty
    (``c > 2n / pi``) ``T = strength^2 T_min``. ``strength`` scales the displacement (``T`` by its square).
    Then the coefficients ``b_ij ~ N(0, T / (i^2 + j^2))`` for ``i^2 + j^2 <= c^2``, drawn directly on
    the frequencies the pixel grid can distinguish (:func:`folded_variance_weights`): exactly the law
    of the displacement of every pixel, with at most ``(H - 2) x (W - 2)`` coefficients.

    One sampler on every device: tensors of fixed shapes, nothing read back to the host, so it
    compiles with ``torch.compile(fullgraph=True)`` and draws the same numbers compiled and eager.

    Args:
        batch_size, height, width: the number of images and their size.
        cut_min, cut_max: the range of the cut, ``2 <= cut_min <= cut_max`` (equal: a fixed cut).
        strength: ``>= 0``, multiplies the displacement.
        temperature_level: ``None`` draws ``B2 ~ Beta(1/2, 1/2)``; a number in ``[0, 1]`` fixes it
            (``1``: ``T = strength^2 max(T_max, T_min)``, the largest temperature the law draws).
        device, generator, dtype: where and from what the numbers are drawn, and the float dtype of
            ``temperature`` and ``coeffs``.
        static_shapes: accepted for compatibility and ignored: every call draws with static shapes.

    Returns:
        ``{"cut": (B,) int64, "temperature": (B,), "coeffs": (B, 2, Ky, Kx)}`` with
        ``Ky = min(cut_max, H - 2)``, ``Kx = min(cut_max, W - 2)`` (zero when the image has no interior).

    Example:
        >>> import torch
        >>> p = sample_spatial_params(4, 32, 32, generator=torch.Generator().manual_seed(0))
        >>> p["coeffs"].shape, p["cut"].dtype
        (torch.Size([4, 2, 30, 30]), torch.int64)
        >>> q = sample_spatial_params(2, 32, 32, cut_min=8, cut_max=8, temperature_level=1.0)
        >>> q["cut"].tolist(), bool((q["temperature"] == temperature_range(32, 8)[1]).all())
        ([8, 8], True)
    """
    if cut_min < 2:
        raise ValueError(f"cut_min must be >= 2 (ln(cut) must be positive), got {cut_min}")
    if cut_max < cut_min:
        raise ValueError(f"cut_max must be >= cut_min={cut_min}, got {cut_max}")
    if temperature_level is not None and not 0.0 <= temperature_level <= 1.0:
        raise ValueError(f"temperature_level must be None or in [0, 1], got {temperature_level}")
    laws = (batch_size, height, width, (cut_min, cut_max), strength, temperature_level)
    cut, temperature = _cuts_and_temperatures(*laws, generator, device)
    # the standard deviations sqrt(T W), (B, Ky, Kx); then one normal draw scaled in place
    std = _folded(cut, height, width, cut_max, None, root=True).mul(temperature.sqrt().float()[:, None, None])
    z = _random.normal((batch_size, 2, *std.shape[1:]), generator=generator, device=device, dtype=dtype)
    return {"cut": cut, "temperature": temperature.to(dtype), "coeffs": z.mul_(std[:, None])}


def _cuts_and_temperatures(
    b: int,
    height: int,
    width: int,
    cuts: tuple[int, int],
    strength: float,
    level: float | None,
    generator: torch.Generator | None,
    device: torch.device | str | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The cuts ``(B,)`` int64 and float64 temperatures of :func:`sample_spatial_params`."""
    cut_min, cut_max = cuts
    if cut_max > cut_min:
        top = _random.randint((b,), cut_min + 1, cut_max, generator=generator, device=device)
    else:
        top = torch.full((b,), cut_min, dtype=torch.int64, device=device)
    b1 = _random.arcsine((b,), generator=generator, device=device, dtype=torch.float64)
    # floor(cut_min + B1 (m + 1 - cut_min)), at most m (the values are positive: truncation is the floor)
    cut = torch.minimum(b1.mul_(top + (1 - cut_min)).add_(cut_min).to(torch.int64), top)
    cut = cut.clamp_max_(max_cut(height, width))
    if level is None:
        b2 = _random.arcsine((b,), generator=generator, device=device, dtype=torch.float64)
    else:
        b2 = torch.full((b,), float(level), dtype=torch.float64, device=cut.device)
    t_min, t_max = temperature_range(max(height, width), cut)
    temperature = torch.maximum(t_max, t_min).sub_(t_min).mul_(b2).add_(t_min)
    if strength != 1.0:
        temperature.mul_(float(strength) ** 2)
    return cut, temperature
