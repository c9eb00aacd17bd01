"""The random spectral filter as a torchvision v2 transform."""

from __future__ import annotations

import torch

from ._base import RandomPrimitive
from ._validation import check_choice, check_float, check_int
from .functional.spectral import PADDING_MODES, sample_spectral_params, spectral_filter

__all__ = ["RandomSpectralFilter"]


class RandomSpectralFilter(RandomPrimitive):
    """Filter every image with its own random ``K x K`` FIR filter (PRIME's spectral primitive).

    .. math::

        \\omega(x) = \\operatorname{clip}_{[0, 1]}\\big(x * (\\delta + w)\\big), \\qquad
        w_{ab} \\sim \\mathcal N(0, \\sigma^2) \\text{ i.i.d.}, \\qquad
        \\sigma \\sim U(0, \\alpha\\, \\sigma_{\\max}),

    drawn independently for every image (one filter for all channels of an image, as in the method);
    ``delta`` is the identity filter with its one at the centre tap. A random FIR filter changes the
    image's spectrum by a random smooth gain (``K`` sets the smoothness of that gain); applied as one
    grouped convolution over the batch. See :func:`~prime_augment.functional.spectral_filter` for the
    padding.

    Args:
        kernel_size: odd filter size ``K >= 1`` (method: 3).
        sigma_max: largest standard deviation of the taps (method: 4.0).
        strength: multiplier ``alpha >= 0`` on ``sigma_max`` (``0`` is exactly the identity).
        padding_mode: ``"zeros"`` (method), ``"reflect"``, ``"replicate"`` or ``"circular"``.
        same_on_batch: draw one filter for the whole batch instead of one per image.
        generator: optional generator for the draws; the global RNG when ``None`` (use that in
            DataLoader workers).

    Shape:
        Input ``(C, H, W)`` or ``(..., C, H, W)`` tensor (float in ``[0, 1]`` or uint8), a
        ``tv_tensors.Image``, a ``tv_tensors.Video`` ``(..., T, C, H, W)`` (one draw per video, shared
        by its frames) or a PIL image; the output has the input's type, shape and dtype. ``C``, ``H``
        or ``W`` may be 0 (an empty output). ``+Inf``/``-Inf`` pixels are read as 1/0; ``NaN`` pixels
        propagate (the outputs computed from them are ``NaN``).

    Example:
        >>> import torch
        >>> from prime_augment import RandomSpectralFilter
        >>> t = RandomSpectralFilter(generator=torch.Generator().manual_seed(0))
        >>> x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
        >>> y = t(x)
        >>> y.shape, y.dtype, bool(((y >= 0) & (y <= 1)).all())
        (torch.Size([4, 3, 32, 32]), torch.float32, True)
        >>> params = t.make_params([x])            # sample ...
        >>> torch.equal(t.transform(x, params), t.transform(x, params))  # ... and replay
        True
    """

    _pure = True

    def __init__(
        self,
        kernel_size: int = 3,
        sigma_max: float = 4.0,
        *,
        strength: float = 1.0,
        padding_mode: str = "zeros",
        same_on_batch: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(strength=strength, same_on_batch=same_on_batch, generator=generator)
        self.kernel_size = check_int(kernel_size, "kernel_size", low=1)
        if self.kernel_size % 2 == 0:
            raise ValueError(
                f"kernel_size must be odd (the identity tap sits at the centre), got {kernel_size}"
            )
        self.sigma_max = check_float(sigma_max, "sigma_max", low=0.0)
        self.padding_mode = check_choice(padding_mode, "padding_mode", PADDING_MODES)

    def sample(self, batch_size, channels, height, width, *, device=None, generator=None):
        return sample_spectral_params(
            batch_size,
            kernel_size=self.kernel_size,
            sigma_max=self.sigma_max,
            strength=self.strength,
            device=device,
            generator=generator,
        )

    def apply(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        return spectral_filter(x, params["taps"], padding_mode=self.padding_mode)
