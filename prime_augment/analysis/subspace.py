"""Linear subspaces of the input space, as orthogonal projections.

A subspace ``S`` of ``R^D`` (``D = C H W``) is used through its orthogonal projection
``P_S x = U U^T x`` for an orthonormal basis ``U`` (``D x S``). :class:`DenseSubspace` holds ``U``
explicitly; :class:`~prime_augment.analysis.dct.DCTSubspace` applies ``P_S`` with separable DCT
products and never builds ``U``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .._validation import check_generator, check_int

__all__ = ["DenseSubspace", "Subspace", "as_subspace", "random_subspace"]


class Subspace:
    """Base class: an orthogonal projection ``P_S`` acting on batches of images.

    Subclasses implement :meth:`project` (``(N, C, H, W) -> (N, C, H, W)``, linear, idempotent,
    symmetric) and :meth:`dim` (the dimension ``S`` of the subspace for one image of a given shape).
    """

    def project(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def dim(self, shape: tuple[int, ...]) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """A ValueError when the subspace does not live in the space of images of ``shape`` ``(C, H, W)``."""


class DenseSubspace(Subspace):
    r"""The span of the orthonormal columns of ``basis``: :math:`P_S x = U (U^\top x)`.

    Args:
        basis: ``(D, S)`` tensor with orthonormal columns, ``D = C H W`` of the images it acts on
            (image tensors are flattened in C, H, W order).
        check: verify ``U^T U = I`` (to 1e-4 relative in the basis' dtype).

    Shape:
        ``project``: ``(N, C, H, W) -> (N, C, H, W)`` with ``C H W = D``.

    Example:
        >>> import torch
        >>> from prime_augment.analysis import DenseSubspace
        >>> u = torch.zeros(12, 1); u[0, 0] = 1.0      # the first pixel of a 3x2x2 image
        >>> s = DenseSubspace(u)
        >>> s.project(torch.ones(1, 3, 2, 2)).flatten().tolist()
        [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    """

    def __init__(self, basis: torch.Tensor, *, check: bool = True) -> None:
        if not isinstance(basis, torch.Tensor) or not basis.is_floating_point():
            raise TypeError(
                f"subspace basis must be a floating-point torch.Tensor of shape (D, S), got {basis!r}"
            )
        if basis.ndim != 2 or basis.shape[1] == 0 or basis.shape[1] > basis.shape[0]:
            raise ValueError(
                f"subspace basis must have shape (D, S) with 1 <= S <= D, got {tuple(basis.shape)}"
            )
        if check:
            gram = basis.T @ basis
            eye = torch.eye(basis.shape[1], dtype=basis.dtype, device=basis.device)
            err = float((gram - eye).abs().max())
            tol = 1e-4 if basis.dtype in (torch.float32, torch.float64) else 1e-2
            if err > tol:
                raise ValueError(
                    f"subspace basis must have orthonormal columns (U^T U = I), max |U^T U - I| = {err:.3g}; "
                    "orthonormalise it first, e.g. torch.linalg.qr(basis).Q"
                )
        self.basis = basis

    def dim(self, shape: tuple[int, ...]) -> int:
        return int(self.basis.shape[1])

    def check_shape(self, shape: tuple[int, ...]) -> None:
        if math.prod(shape) != self.basis.shape[0]:
            raise ValueError(
                f"subspace basis has D = {self.basis.shape[0]} rows but the images have "
                f"C*H*W = {math.prod(shape)} values (shape {tuple(shape)})"
            )

    def project(self, x: torch.Tensor) -> torch.Tensor:
        u = self.basis.to(device=x.device, dtype=x.dtype)
        flat = x.reshape(x.shape[0], -1)
        return ((flat @ u) @ u.T).reshape(x.shape)

    def __repr__(self) -> str:
        return f"DenseSubspace(D={self.basis.shape[0]}, S={self.basis.shape[1]})"


def as_subspace(subspace: Any, name: str = "subspace") -> Subspace:
    """A :class:`Subspace` as is, or a dense ``(D, S)`` orthonormal basis tensor wrapped in one."""
    if isinstance(subspace, Subspace):
        return subspace
    if isinstance(subspace, torch.Tensor):
        return DenseSubspace(subspace)
    raise TypeError(
        f"{name} must be a Subspace (e.g. DCTSubspace) or a (D, S) orthonormal basis tensor, "
        f"got {type(subspace).__name__}"
    )


def random_subspace(
    shape: tuple[int, int, int],
    dim: int,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    orthogonal_to: torch.Tensor | None = None,
) -> DenseSubspace:
    r"""A uniformly random ``dim``-dimensional subspace of images of ``shape`` (the control of margins).

    ``U = Q`` of the QR factorisation of a ``D x S`` standard Gaussian matrix, whose span is uniform
    on the Grassmannian. With ``orthogonal_to`` (vectors :math:`V`), the Gaussian matrix is first
    projected onto the orthogonal complement of :math:`\mathrm{span}(V)`, which gives a uniformly
    random subspace of that complement (the control of a discriminative direction: a subspace
    carrying none of it). Memory ``D S`` values (``3*224*224 x 768`` floats is 460 MB).

    Args:
        shape: ``(C, H, W)`` of one image.
        dim: ``S``, ``1 <= S <= C H W`` (``<= C H W - rank(V)`` with ``orthogonal_to``).
        generator: optional ``torch.Generator`` (CPU) for the Gaussian draw.
        dtype, device: of the basis.
        orthogonal_to: optional tensor of directions to stay orthogonal to: one image ``(C, H, W)``
            or several ``(k, C, H, W)``.

    Example:
        >>> import torch
        >>> from prime_augment.analysis import random_subspace
        >>> s = random_subspace((1, 4, 4), 3, generator=torch.Generator().manual_seed(0))
        >>> bool(torch.allclose(s.basis.T @ s.basis, torch.eye(3), atol=1e-5))
        True
        >>> u = torch.ones(1, 4, 4)                        # stay orthogonal to the constant image
        >>> s = random_subspace((1, 4, 4), 3, orthogonal_to=u, generator=torch.Generator().manual_seed(0))
        >>> float(s.project(u[None]).abs().max()) < 1e-6
        True
    """
    if not isinstance(shape, (tuple, list)) or len(shape) != 3:
        raise TypeError(f"shape must be a (C, H, W) tuple, got {shape!r}")
    d = math.prod(check_int(s, "shape", low=1) for s in shape)
    dim = check_int(dim, "dim", low=1, high=d)
    generator = check_generator(generator)
    g = torch.randn(d, dim, generator=generator, dtype=torch.float64)
    if orthogonal_to is not None:
        v = _directions(orthogonal_to, tuple(shape), d)
        if dim > d - v.shape[1]:
            raise ValueError(
                f"dim must be <= {d - v.shape[1]} (C*H*W minus the rank of orthogonal_to), got {dim}"
            )
        g = g - v @ (v.T @ g)
        g = g - v @ (v.T @ g)  # twice: orthogonal to working precision
    q = torch.linalg.qr(g).Q
    return DenseSubspace(q.to(dtype=dtype, device=device), check=False)


def _directions(v: Any, shape: tuple[int, ...], d: int) -> torch.Tensor:
    """An orthonormal basis ``(D, r)`` (float64, CPU) of the span of ``v`` (one image or a stack)."""
    if not isinstance(v, torch.Tensor) or not v.is_floating_point():
        raise TypeError(f"orthogonal_to must be a floating-point torch.Tensor, got {v!r:.60}")
    if tuple(v.shape[-3:]) != tuple(shape) or v.ndim not in (3, 4):
        raise ValueError(
            f"orthogonal_to must have shape {tuple(shape)} or (k, *{tuple(shape)}), got {tuple(v.shape)}"
        )
    m = v.detach().to("cpu", torch.float64).reshape(-1, d).T
    u, s, _ = torch.linalg.svd(m, full_matrices=False)
    keep = s > s.max() * 1e-10 if s.numel() and s.max() > 0 else torch.zeros_like(s, dtype=torch.bool)
    if not bool(keep.any()):
        raise ValueError("orthogonal_to must hold at least one non-zero direction")
    return u[:, keep]
