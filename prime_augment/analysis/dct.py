"""The orthonormal 2-D DCT, DCT-block subspaces, and DCT dataset transforms (flip, low/high-pass)."""

from __future__ import annotations

import math
from typing import Any

import torch

from .._validation import check_int
from .subspace import Subspace

__all__ = [
    "DCTSubspace",
    "dct2",
    "dct_diagonal_subspaces",
    "dct_flip",
    "dct_high_pass",
    "dct_low_pass",
    "dct_matrix",
    "idct2",
]


def dct_matrix(
    n: int, *, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None
) -> torch.Tensor:
    r"""The orthonormal DCT-II matrix :math:`D \in \mathbb{R}^{n \times n}`.

    .. math::
        D_{k i} = \alpha_k \cos\Big(\frac{\pi (2 i + 1) k}{2 n}\Big), \quad
        \alpha_0 = \sqrt{1/n}, \ \alpha_{k>0} = \sqrt{2/n}, \qquad D D^\top = I.

    ``D @ v`` equals ``scipy.fft.dct(v, type=2, norm="ortho")``.

    Args:
        n: size (``>= 1``).
        dtype, device: of the result (computed in float64).

    Shape:
        ``(n, n)``; row ``k`` is the frequency-``k`` basis vector.

    Example:
        >>> import torch
        >>> from prime_augment.analysis import dct_matrix
        >>> d = dct_matrix(4)
        >>> bool(torch.allclose(d @ d.T, torch.eye(4, dtype=d.dtype)))
        True
    """
    n = check_int(n, "n", low=1)
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None, :]
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    d[0] = math.sqrt(1.0 / n)
    return d.to(dtype=dtype, device=device)


def _mats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    dt = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    return (
        dct_matrix(x.shape[-2], dtype=dt, device=x.device),
        dct_matrix(x.shape[-1], dtype=dt, device=x.device),
    )


def _check(x: Any, name: str = "x") -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        got = f"dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"{name} must be a floating-point torch.Tensor (..., H, W), got {got}")
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (..., H, W), got {tuple(x.shape)}")


def dct2(x: torch.Tensor) -> torch.Tensor:
    r"""The orthonormal 2-D DCT-II over the last two axes: :math:`X = D_H\, x\, D_W^\top`.

    Equals ``scipy.fft.dctn(x, type=2, norm="ortho", axes=(-2, -1))``; :func:`idct2` inverts it.

    Args:
        x: floating tensor ``(..., H, W)`` (float16/bfloat16 are computed in float32).

    Shape:
        ``(..., H, W) -> (..., H, W)``, coefficient ``[k, l]`` = vertical frequency ``k``,
        horizontal frequency ``l``.

    Example:
        >>> import torch
        >>> from prime_augment.analysis import dct2, idct2
        >>> x = torch.rand(2, 3, 5, 4, generator=torch.Generator().manual_seed(0))
        >>> bool(torch.allclose(idct2(dct2(x)), x, atol=1e-6))
        True
        >>> round(float(dct2(torch.ones(4, 4))[0, 0]), 4)     # the DC coefficient: sqrt(H W) * mean
        4.0
    """
    _check(x)
    dh, dw = _mats(x)
    return (dh @ x.to(dh.dtype) @ dw.T).to(x.dtype)


def idct2(coeffs: torch.Tensor) -> torch.Tensor:
    r"""The inverse of :func:`dct2`: :math:`x = D_H^\top X D_W`.

    Args:
        coeffs: floating tensor ``(..., H, W)`` of DCT coefficients.

    Shape:
        ``(..., H, W) -> (..., H, W)``.

    Example:
        >>> import torch
        >>> from prime_augment.analysis import idct2
        >>> c = torch.zeros(4, 4); c[0, 0] = 4.0
        >>> idct2(c).unique().tolist()
        [1.0]
    """
    _check(coeffs, "coeffs")
    dh, dw = _mats(coeffs)
    return (dh.T @ coeffs.to(dh.dtype) @ dw).to(coeffs.dtype)


def _band(x: torch.Tensor, rows: tuple[int, int], cols: tuple[int, int]) -> torch.Tensor:
    """Projection onto the DCT coefficients ``[rows) x [cols)`` of every channel, separably."""
    dh, dw = _mats(x)
    a = dh[rows[0] : rows[1]]
    c = dw[cols[0] : cols[1]]
    xt = x.to(a.dtype)
    return (a.T @ (a @ xt @ c.T) @ c).to(x.dtype)


class DCTSubspace(Subspace):
    r"""The span of a block of 2-D DCT basis images, in every channel.

    :math:`S = \mathrm{span}\{ D_{H,k}^\top D_{W,l} : k \in [r_0, r_1), l \in [c_0, c_1) \}` per channel
    (dimension :math:`C (r_1 - r_0)(c_1 - c_0)`), applied separably without a dense basis:

    .. math::
        P_S x = A^\top (A\, x\, B^\top) B, \qquad A = D_H[r_0{:}r_1], \ B = D_W[c_0{:}c_1],

    which costs :math:`O(H W K)` per channel (no ``D x S`` matrix even at ImageNet size).

    Args:
        rows: ``(r0, r1)``, ``0 <= r0 < r1``: the vertical frequencies.
        cols: ``(c0, c1)``, ``0 <= c0 < c1``: the horizontal frequencies.

    Shape:
        ``project``: ``(..., C, H, W) -> (..., C, H, W)`` with ``H >= r1``, ``W >= c1``.

    Example:
        >>> import torch
        >>> from prime_augment.analysis import DCTSubspace, dct2
        >>> s = DCTSubspace((0, 2), (0, 2))                  # the 2x2 lowest frequencies
        >>> x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> c = dct2(s.project(x))
        >>> bool(c[..., 2:, :].abs().max() < 1e-6 and c[..., :, 2:].abs().max() < 1e-6), s.dim((3, 8, 8))
        (True, 12)
    """

    def __init__(self, rows: tuple[int, int], cols: tuple[int, int]) -> None:
        self.rows = _interval(rows, "rows")
        self.cols = _interval(cols, "cols")

    def dim(self, shape: tuple[int, ...]) -> int:
        return int(shape[0]) * (self.rows[1] - self.rows[0]) * (self.cols[1] - self.cols[0])

    def check_shape(self, shape: tuple[int, ...]) -> None:
        h, w = shape[-2], shape[-1]
        if self.rows[1] > h or self.cols[1] > w:
            raise ValueError(
                f"{self!r} does not fit images of size {h}x{w} "
                f"(needs H >= {self.rows[1]}, W >= {self.cols[1]})"
            )

    def project(self, x: torch.Tensor) -> torch.Tensor:
        self.check_shape(tuple(x.shape))
        return _band(x, self.rows, self.cols)

    def __repr__(self) -> str:
        return f"DCTSubspace(rows={self.rows}, cols={self.cols})"


def _interval(v: Any, name: str) -> tuple[int, int]:
    if not isinstance(v, (tuple, list)) or len(v) != 2:
        raise TypeError(f"{name} must be a pair (start, stop), got {v!r}")
    a = check_int(v[0], name, low=0)
    b = check_int(v[1], name, low=a + 1)
    return a, b


def dct_diagonal_subspaces(height: int, width: int, block: int = 8, step: int = 4) -> list[DCTSubspace]:
    r"""``block x block`` DCT blocks slid along the diagonal of the DCT grid with stride ``step``.

    Block :math:`j` covers frequencies :math:`[jT, jT + K)` on both axes, for
    :math:`j = 0 .. \lfloor (\min(H, W) - K) / T \rfloor`: from the lowest to the highest
    frequencies (the subspaces of the margin analysis, Chapter 4 of the method). For ``H != W`` the
    blocks follow the diagonal of the leading ``min(H, W)`` square.

    Args:
        height, width: image size.
        block: :math:`K`, ``1 <= K <= min(H, W)``. Default 8.
        step: :math:`T \ge 1`. Default 4.

    Example:
        >>> from prime_augment.analysis import dct_diagonal_subspaces
        >>> [s.rows for s in dct_diagonal_subspaces(32, 32, block=8, step=8)]
        [(0, 8), (8, 16), (16, 24), (24, 32)]
    """
    height = check_int(height, "height", low=1)
    width = check_int(width, "width", low=1)
    n = min(height, width)
    block = check_int(block, "block", low=1, high=n)
    step = check_int(step, "step", low=1)
    return [DCTSubspace((p, p + block), (p, p + block)) for p in range(0, n - block + 1, step)]


def dct_flip(x: torch.Tensor) -> torch.Tensor:
    r"""Swap low and high frequencies: :math:`x \mapsto \mathrm{IDCT}(\mathrm{flip}(\mathrm{DCT}(x)))`.

    Coefficient :math:`(k, l)` moves to :math:`(H - 1 - k, W - 1 - l)`. An orthogonal involution
    (``dct_flip(dct_flip(x)) == x``); the result is not in ``[0, 1]`` in general. Works on any batch
    shape, returns a new tensor.

    Args:
        x: floating ``(..., H, W)``.

    Shape:
        ``(..., H, W) -> (..., H, W)``.

    Example:
        >>> import torch
        >>> from prime_augment.analysis import dct_flip
        >>> x = torch.rand(2, 3, 6, 6, generator=torch.Generator().manual_seed(0))
        >>> bool(torch.allclose(dct_flip(dct_flip(x)), x, atol=1e-6))
        True
    """
    _check(x)
    dh, dw = _mats(x)
    # flip(D x D^T) = J D x D^T J, so the whole map is (D^T J D) x (D^T J D)^T
    fh = dh.T @ dh.flip(0)
    fw = dw.T @ dw.flip(0)
    return (fh @ x.to(dh.dtype) @ fw.T).to(x.dtype)


def _cutoff(cutoff: Any, x: torch.Tensor) -> tuple[int, int]:
    if isinstance(cutoff, (tuple, list)) and len(cutoff) == 2:
        ch, cw = cutoff
    else:
        ch = cw = cutoff
    ch = min(check_int(ch, "cutoff", low=0), x.shape[-2])
    cw = min(check_int(cw, "cutoff", low=0), x.shape[-1])
    return ch, cw


def dct_low_pass(x: torch.Tensor, cutoff: int | tuple[int, int]) -> torch.Tensor:
    r"""Keep the DCT coefficients :math:`(k, l)` with :math:`k < c_H` and :math:`l < c_W`.

    An orthogonal projection (idempotent); :func:`dct_high_pass` is its complement. Returns a new
    tensor, works on any batch shape.

    Args:
        x: floating ``(..., H, W)``.
        cutoff: ``c`` or ``(c_H, c_W)``, ``>= 0`` (a cutoff above the size keeps every frequency
            of that axis).

    Shape:
        ``(..., H, W) -> (..., H, W)``.

    Example:
        >>> import torch
        >>> from prime_augment.analysis import dct_low_pass
        >>> x = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> bool(torch.allclose(dct_low_pass(x, 1), x.mean((-2, -1), keepdim=True).expand_as(x), atol=1e-6))
        True
    """
    _check(x)
    ch, cw = _cutoff(cutoff, x)
    if ch == 0 or cw == 0:
        return torch.zeros_like(x)
    return _band(x, (0, ch), (0, cw))


def dct_high_pass(x: torch.Tensor, cutoff: int | tuple[int, int]) -> torch.Tensor:
    r"""The complement of :func:`dct_low_pass`: :math:`x - \mathrm{lowpass}_c(x)`.

    Args:
        x: floating ``(..., H, W)``.
        cutoff: ``c`` or ``(c_H, c_W)``.

    Shape:
        ``(..., H, W) -> (..., H, W)``.

    Example:
        >>> import torch
        >>> from prime_augment.analysis import dct_high_pass
        >>> x = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> bool(dct_high_pass(x, 1).mean((-2, -1)).abs().max() < 1e-6)    # the mean is removed
        True
    """
    _check(x)
    return x - dct_low_pass(x, cutoff)
