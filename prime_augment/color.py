"""The random smooth color map as a torchvision v2 transform."""

from __future__ import annotations

import torch

from ._base import RandomPrimitive
from ._validation import check_float, check_int
from .functional.color import sample_color_params, sine_color, sine_color_levels

__all__ = ["RandomSineColor"]


class RandomSineColor(RandomPrimitive):
    """Map the values of every channel of every image through its own random smooth curve.

    PRIME's color primitive:

    .. math::

        \\gamma(x)_c = \\operatorname{clip}_{[0, 1]}\\Big(x_c + \\sum_{n \\in \\text{band}}
        b_{c, n} \\sin(\\pi n x_c)\\Big), \\qquad b_{c, n} \\sim \\mathcal N(0, v),

    per image: ``K ~ U{1..cut_max}``, ``v ~ U(0, alpha^2 variance_max)``, and the band is
    ``bandwidth`` consecutive frequencies from a start ``s ~ U{1..K}`` (cut at ``K``), or all of
    ``1..K`` when ``bandwidth`` is ``None`` (or ``>= K``). The map is pixelwise (equal pixels stay
    equal) and smooth in the value. The sum is evaluated by
    :func:`~prime_augment.functional.sine_color` on float values: by the sine recurrence (memory
    ``O(B C H W)``), on the CPU for wide bands on large images (band width times pixels at least
    2**16) through a tabulated interpolant accurate to ``1e-6``, on CUDA by a fused Triton kernel.
    uint8 and PIL inputs go through :meth:`apply_levels`: the map tabulated exactly (float64) on the
    256 levels, looked up, rounded back to uint8.

    Args:
        cut_max: highest frequency ``K_max >= 1`` (method: 100 at CIFAR scale, 500 at ImageNet scale).
        bandwidth: number ``Delta`` of consecutive frequencies, or ``None`` for all of ``1..K``
            (method: ``None`` at CIFAR scale, 20 at ImageNet scale).
        variance_max: largest variance of the coefficients (method: 0.01 CIFAR, 0.05 ImageNet).
        strength: multiplier ``alpha >= 0`` on the coefficients' standard deviation (``0`` is exactly
            the identity).
        same_on_batch: one color map for the whole batch instead of one per image.
        generator: optional generator for the draws; the global RNG when ``None``.

    Shape:
        Input ``(C, H, W)`` or ``(..., C, H, W)`` tensor (float in ``[0, 1]`` or uint8), a
        ``tv_tensors.Image``, a ``tv_tensors.Video`` ``(..., T, C, H, W)`` (one draw per video, shared
        by its frames) or a PIL image; the output has the input's type, shape and dtype. ``C``, ``H``
        or ``W`` may be 0 (an empty output). ``+Inf``/``-Inf`` pixels are read as 1/0; ``NaN`` pixels
        propagate (the outputs computed from them are ``NaN``).

    Example:
        >>> import torch
        >>> from prime_augment import RandomSineColor
        >>> t = RandomSineColor(generator=torch.Generator().manual_seed(0))
        >>> g = torch.Generator().manual_seed(1)
        >>> x = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8, generator=g)
        >>> y = t(x)                       # uint8 in, uint8 out (rounded)
        >>> y.dtype, y.shape
        (torch.uint8, torch.Size([2, 3, 8, 8]))
    """

    _pure = True

    def __init__(
        self,
        cut_max: int = 100,
        bandwidth: int | None = None,
        variance_max: float = 0.01,
        *,
        strength: float = 1.0,
        same_on_batch: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(strength=strength, same_on_batch=same_on_batch, generator=generator)
        self.cut_max = check_int(cut_max, "cut_max", low=1)
        self.bandwidth = None if bandwidth is None else check_int(bandwidth, "bandwidth", low=1)
        self.variance_max = check_float(variance_max, "variance_max", low=0.0)

    def sample(self, batch_size, channels, height, width, *, device=None, generator=None):
        return sample_color_params(
            batch_size,
            channels,
            cut_max=self.cut_max,
            bandwidth=self.bandwidth,
            variance_max=self.variance_max,
            strength=self.strength,
            device=device,
            generator=generator,
        )

    def apply(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        return sine_color(x, params["coeffs"], params["start"])

    def apply_levels(self, levels: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """The map of each (image, channel) tabulated exactly on the 256 levels, then looked up."""
        return sine_color_levels(levels, params["coeffs"], params["start"])
