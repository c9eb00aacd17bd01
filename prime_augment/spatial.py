"""The random smooth diffeomorphism as a torchvision v2 transform."""

from __future__ import annotations

import torch
from torchvision import tv_tensors

from ._base import RandomPrimitive
from ._validation import check_bool, check_int
from .functional.spatial import deform, sample_spatial_params

__all__ = ["RandomDiffeomorphism"]


class RandomDiffeomorphism(RandomPrimitive):
    """Warp every image by its own random smooth displacement field (PRIME's spatial primitive).

    .. math::

        \\tau(x)(r) = x\\big(r + u(r)\\big), \\quad
        u_k(r) = \\sum_{i^2 + j^2 \\le c^2} b^{(k)}_{ij} \\sin(\\pi i r_1) \\sin(\\pi j r_2), \\quad
        b^{(k)}_{ij} \\sim \\mathcal N\\Big(0, \\frac{\\alpha^2 T}{i^2 + j^2}\\Big),

    with a cut ``c`` and a temperature ``T`` drawn per image as in the method's code: a maximal cut
    ``m ~ U{cut_min + 1..cut_max}``, ``c`` and ``T`` from arcsine (Beta(1/2, 1/2)) laws over
    ``[cut_min, m]`` and ``[T_min(c), T_max(c)]`` (``T_min`` when that range is empty, ``c > 2n/pi``;
    ``n = max(H, W)``). The field vanishes on the border; the image is resampled bilinearly
    (``grid_sample``, border padding). Non-square images get the unit-square field stretched to them.
    ``tv_tensors.Mask`` inputs of the same sample are warped by the same field (nearest sampling).

    Args:
        cut_min: smallest cut ``c >= 2`` (method: 2).
        cut_max: largest cut (method: 100 at CIFAR scale, 500 at ImageNet scale, 10 for C-CCM).
        strength: multiplier ``alpha >= 0`` on the displacement (``T`` scales by ``alpha^2``; ``0`` is
            exactly the identity).
        same_on_batch: one field for the whole batch instead of one per image.
        generator: optional generator for the draws; the global RNG when ``None``.
        static_shapes: kept for compatibility, no effect: every device draws on fixed-shape tensors
            (one ``(B, 2, Ky, Kx)`` normal draw, nothing read back to the host), so the transform
            compiles with ``torch.compile(fullgraph=True)`` (and CUDA graphs) and draws the same
            numbers compiled and eager.

    Cuts above ``4 (max(H, W) - 1)`` (two folding periods of the grid's sine modes, far above every
    preset at its image size) are drawn as that cap, which bounds the cost by the image size whatever
    ``cut_max`` (see :func:`~prime_augment.functional.max_cut`).

    Shape:
        Input ``(C, H, W)`` or ``(..., C, H, W)`` tensor (float in ``[0, 1]`` or uint8), a
        ``tv_tensors.Image``, a ``tv_tensors.Video`` ``(..., T, C, H, W)`` (one draw per video, shared
        by its frames) or a PIL image; the output has the input's type, shape and dtype. ``C``, ``H``
        or ``W`` may be 0 (an empty output). ``+Inf``/``-Inf`` pixels are read as 1/0; ``NaN`` pixels
        propagate (the outputs computed from them are ``NaN``).

    Example:
        >>> import torch
        >>> from prime_augment import RandomDiffeomorphism
        >>> t = RandomDiffeomorphism(generator=torch.Generator().manual_seed(0))
        >>> x = torch.rand(4, 3, 32, 48, generator=torch.Generator().manual_seed(1))
        >>> y = t(x)
        >>> y.shape, torch.allclose(y[..., :, 0], x[..., :, 0], atol=1e-5)  # the border stays
        (torch.Size([4, 3, 32, 48]), True)
    """

    _pure = True

    _geometric = True

    def __init__(
        self,
        cut_min: int = 2,
        cut_max: int = 100,
        *,
        strength: float = 1.0,
        same_on_batch: bool = False,
        generator: torch.Generator | None = None,
        static_shapes: bool = False,
    ) -> None:
        super().__init__(strength=strength, same_on_batch=same_on_batch, generator=generator)
        self.cut_min = check_int(cut_min, "cut_min", low=2)
        self.cut_max = check_int(cut_max, "cut_max", low=self.cut_min)
        self.static_shapes = check_bool(static_shapes, "static_shapes")

    def sample(self, batch_size, channels, height, width, *, device=None, generator=None):
        return sample_spatial_params(
            batch_size,
            height,
            width,
            cut_min=self.cut_min,
            cut_max=self.cut_max,
            strength=self.strength,
            device=device,
            generator=generator,
        )

    def apply(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        return deform(x, params["coeffs"])

    def _transform_mask(self, mask: tv_tensors.Mask, params: dict[str, torch.Tensor]) -> tv_tensors.Mask:
        coeffs = params["coeffs"]
        b = coeffs.shape[0]
        m = mask.as_subclass(torch.Tensor)
        h, w = m.shape[-2:]
        if b == 1:
            groups = m.reshape(1, -1, h, w)
        elif m.ndim >= 3 and m.shape[0] == b:
            groups = m.reshape(b, -1, h, w)
        else:
            raise ValueError(
                f"a Mask of shape {tuple(m.shape)} does not match the {b} images of the batch: give one "
                "mask (or one stack of masks) per image along the first dimension"
            )
        warped = deform(groups.to(torch.float32), coeffs, mode="nearest", clip=False)
        return tv_tensors.wrap(warped.round().to(m.dtype).reshape(m.shape), like=mask)
