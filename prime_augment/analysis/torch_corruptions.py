"""Seven common corruptions in torch: quick, batched stand-ins for the analysis tools (coverage).

Not a corruption set. They take float batches ``(B, C, H, W)`` in ``[0, 1]`` on any device, at one
severity (about CIFAR-10-C's 3), with a ``torch.Generator``, so that :func:`~.coverage.coverage` can
compare augmentations with corruptions without a ``-C`` dataset. They follow the formulas of CIFAR-10-C
(Hendrycks & Dietterich, 2019) loosely (``brightness`` adds to RGB instead of the V channel of HSV).
The benchmark's corruption sets, with CIFAR-10-C's five severities (one backend byte-identical to
its script), are ``prime-augment make-corruptions``
(:mod:`prime_augment.recipes.benchmark.corruptions`): use those for numbers comparable with the
literature.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .._validation import check_generator

__all__ = ["builtin_corruptions", "torch_corruptions"]


def gaussian_noise(
    x: torch.Tensor, std: float = 0.08, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``clip(x + N(0, std^2))`` per value."""
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return (x + std * noise).clamp(0, 1)


def shot_noise(
    x: torch.Tensor, rate: float = 100.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``clip(Poisson(rate * x) / rate)`` per value."""
    counts = torch.poisson((x * rate).double().cpu(), generator=generator)
    return (counts / rate).to(device=x.device, dtype=x.dtype).clamp(0, 1)


def impulse_noise(
    x: torch.Tensor, amount: float = 0.03, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Salt and pepper: a fraction ``amount`` of the values set to 0 or 1 (half each)."""
    u = torch.rand(x.shape, generator=generator, dtype=torch.float64).to(x.device)
    out = torch.where(u < amount / 2, torch.zeros_like(x), x)
    return torch.where((u >= amount / 2) & (u < amount), torch.ones_like(x), out)


def gaussian_blur(
    x: torch.Tensor, sigma: float = 0.7, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Separable Gaussian blur (reflect padding), radius ``ceil(3 sigma)``."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    y = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c).clamp(0, 1)


def contrast(x: torch.Tensor, factor: float = 0.4, generator: torch.Generator | None = None) -> torch.Tensor:
    """``clip((x - m) factor + m)``, ``m`` the mean of each image."""
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - m) * factor + m).clamp(0, 1)


def brightness(
    x: torch.Tensor, shift: float = 0.15, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``clip(x + shift)``."""
    return (x + shift).clamp(0, 1)


def pixelate(x: torch.Tensor, scale: float = 0.85, generator: torch.Generator | None = None) -> torch.Tensor:
    """Box-downsample by ``scale`` and upsample with nearest neighbours."""
    h, w = x.shape[-2:]
    small = F.interpolate(x, size=(max(1, int(h * scale)), max(1, int(w * scale))), mode="area")
    return F.interpolate(small, size=(h, w), mode="nearest")


_CORRUPTIONS: dict[str, Callable[..., torch.Tensor]] = {
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "gaussian_blur": gaussian_blur,
    "contrast": contrast,
    "brightness": brightness,
    "pixelate": pixelate,
}


def torch_corruptions(
    *, generator: torch.Generator | None = None
) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """Seven quick torch corruptions, name -> callable on float batches ``(B, C, H, W)`` in ``[0, 1]``.

    gaussian_noise (std 0.08), shot_noise (rate 100), impulse_noise (3 %), gaussian_blur
    (sigma 0.7), contrast (0.4), brightness (+0.15), pixelate (0.85): about CIFAR-10-C's severity 3.

    Args:
        generator: optional CPU ``torch.Generator`` for the noises.

    Example:
        >>> import torch
        >>> from prime_augment.analysis import torch_corruptions
        >>> cs = torch_corruptions(generator=torch.Generator().manual_seed(0))
        >>> x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
        >>> sorted(cs)[:3], all(c(x).shape == x.shape for c in cs.values())
        (['brightness', 'contrast', 'gaussian_blur'], True)
    """
    generator = check_generator(generator)
    return {name: functools.partial(fn, generator=generator) for name, fn in _CORRUPTIONS.items()}


#: the former name of :func:`torch_corruptions` (kept: ``prime_augment.analysis.builtin_corruptions``)
builtin_corruptions = torch_corruptions
