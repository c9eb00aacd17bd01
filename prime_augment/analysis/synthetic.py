"""Synthetic data for margin studies: DCT atoms and a dataset with one discriminative direction."""

from __future__ import annotations

import math

import torch

from .._validation import check_float, check_generator, check_int
from .dct import dct_matrix

__all__ = ["dct_atom", "discriminative_dataset"]


def dct_atom(
    shape: tuple[int, int, int],
    row: int,
    col: int,
    *,
    channel: int | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    r"""A unit-norm 2-D DCT basis image: frequency ``(row, col)`` in one channel or in all of them.

    .. math::
        a_c = \kappa_c\, D_{H,\mathrm{row}}^\top D_{W,\mathrm{col}}, \qquad \|a\|_2 = 1,

    with :math:`\kappa_c = 1` for ``channel`` and 0 elsewhere, or :math:`\kappa_c = 1/\sqrt{C}` in
    every channel (a gray pattern) when ``channel`` is ``None``. :func:`~prime_augment.analysis.dct2`
    of the atom is a single non-zero coefficient per channel, at ``(row, col)``.

    Args:
        shape: ``(C, H, W)`` of one image.
        row: vertical frequency, ``0 <= row < H``.
        col: horizontal frequency, ``0 <= col < W``.
        channel: ``None`` (every channel) or ``0 <= channel < C``.
        dtype, device: of the result (computed in float64).

    Shape:
        ``(C, H, W)``.

    Example:
        >>> import torch
        >>> from prime_augment.analysis import dct2, dct_atom
        >>> a = dct_atom((3, 8, 8), 2, 5)
        >>> round(float(a.norm()), 4), (dct2(a).abs() > 1e-6).nonzero()[:, 1:].unique(dim=0).tolist()
        (1.0, [[2, 5]])
    """
    if not isinstance(shape, (tuple, list)) or len(shape) != 3:
        raise TypeError(f"shape must be a (C, H, W) tuple, got {shape!r}")
    c, h, w = (check_int(s, "shape", low=1) for s in shape)
    row = check_int(row, "row", low=0, high=h - 1)
    col = check_int(col, "col", low=0, high=w - 1)
    pattern = torch.outer(dct_matrix(h)[row], dct_matrix(w)[col])  # unit norm
    out = torch.zeros(c, h, w, dtype=torch.float64)
    if channel is None:
        out[:] = pattern / math.sqrt(c)
    else:
        out[check_int(channel, "channel", low=0, high=c - 1)] = pattern
    return out.to(dtype=dtype, device=device)


def discriminative_dataset(
    n: int,
    direction: torch.Tensor,
    *,
    epsilon: float = 1.0,
    sigma: float = 0.25,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""A binary dataset whose only discriminative information lies along one direction ``u``.

    The synthetic experiment of the margin analysis (Ortiz-Jiménez et al., "Hold me tight!", NeurIPS
    2020; Tab. 4.1 of the method): with :math:`u = \mathrm{direction} / \|\mathrm{direction}\|_2`,

    .. math::
        x = \epsilon\, s\, u + \sigma\, (I - u u^\top) z, \qquad s = 2y - 1 \in \{-1, +1\},
        \ y \sim \mathrm{Bernoulli}(1/2), \ z \sim \mathcal{N}(0, I).

    The classes are linearly separable along :math:`u` with margin :math:`\epsilon` (the noise has
    no component along :math:`u`), and no other direction carries any information about the label:
    a classifier that is invariant to every non-discriminative direction has l2 margin
    :math:`\epsilon` along :math:`u` and an infinite one in every subspace orthogonal to it.

    Args:
        n: number of samples (``>= 1``).
        direction: the discriminative direction, a non-zero float tensor of the image shape
            (e.g. :func:`dct_atom`).
        epsilon: :math:`\epsilon > 0`, half the distance between the classes along :math:`u`.
        sigma: :math:`\sigma \ge 0`, the noise standard deviation in the orthogonal complement.
        generator: optional ``torch.Generator`` (CPU) of the labels and the noise.

    Shape:
        ``(n, *direction.shape)`` float images (the dtype of ``direction``) and ``(n,)`` int64
        labels in ``{0, 1}``; on the CPU.

    Example:
        >>> import torch
        >>> from prime_augment.analysis import dct_atom, discriminative_dataset
        >>> u = dct_atom((3, 8, 8), 3, 3)
        >>> x, y = discriminative_dataset(100, u, epsilon=2.0, generator=torch.Generator().manual_seed(0))
        >>> proj = (x.flatten(1) @ u.flatten())                  # the coordinate along u: +-epsilon
        >>> bool(torch.allclose(proj, 2.0 * (2 * y - 1).float(), atol=1e-5)), x.shape
        (True, torch.Size([100, 3, 8, 8]))
    """
    n = check_int(n, "n", low=1)
    if not isinstance(direction, torch.Tensor) or not direction.is_floating_point():
        raise TypeError(f"direction must be a floating-point torch.Tensor, got {direction!r:.60}")
    norm = float(direction.norm())
    if not (norm > 0 and math.isfinite(norm)):
        raise ValueError(f"direction must be a non-zero finite tensor, got norm {norm}")
    epsilon = check_float(epsilon, "epsilon", low=0.0, low_open=True)
    sigma = check_float(sigma, "sigma", low=0.0)
    generator = check_generator(generator)
    u = direction.detach().to("cpu", torch.float64).flatten() / norm
    y = torch.randint(0, 2, (n,), generator=generator)
    z = torch.randn(n, u.numel(), generator=generator, dtype=torch.float64)
    noise = z - (z @ u)[:, None] * u[None, :]
    x = epsilon * (2 * y - 1).to(torch.float64)[:, None] * u[None, :] + sigma * noise
    return x.reshape(n, *direction.shape).to(direction.dtype), y
