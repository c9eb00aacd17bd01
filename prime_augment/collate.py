"""Augment whole mini-batches inside DataLoader workers: per-image randomness at batch speed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.utils.data import default_collate

from ._validation import check_int
from .losses import jsd_views

__all__ = ["AugmentCollate"]


class AugmentCollate:
    """A DataLoader ``collate_fn`` that stacks the samples, then augments the image batch.

    Per-sample transforms pay the fixed cost of every operation once per image; applying PRIME to
    the collated batch pays it once per batch, with the same per-image random draws (every image
    still gets its own parameters). It runs in the DataLoader workers, so the main process and the
    GPU stay free. This pays off for small images, where the fixed costs dominate (CIFAR-size images
    in batches of 32 cost about a quarter of the per-sample time on one CPU thread, about half of
    AugMix's); at ImageNet size the work per pixel dominates and batching does not help (PRIME then
    processes the batch image by image: about the per-sample time per image). See
    ``benchmarks/cpu_per_image.py``.

    Args:
        transform: the batch augmentation, e.g. ``PRIME.from_preset("cifar10")``.
        image_index: position of the image in each sample (samples are tuples such as
            ``(image, label)``), or ``None`` when the samples are bare images.
        views: ``1`` returns the augmented batch; ``S >= 2`` returns the stacked JSD views
            ``[clean; aug_1; ...; aug_{S-1}]`` (see :func:`~prime_augment.jsd_views`).
        collate_fn: how to stack the samples (default: torch's ``default_collate``).

    Example:
        >>> import torch
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> from prime_augment import PRIME, AugmentCollate
        >>> data = TensorDataset(torch.rand(8, 3, 16, 16), torch.arange(8))
        >>> loader = DataLoader(data, batch_size=4, collate_fn=AugmentCollate(PRIME(), views=3))
        >>> images, labels = next(iter(loader))
        >>> images.shape, labels.shape
        (torch.Size([12, 3, 16, 16]), torch.Size([4]))
    """

    def __init__(
        self,
        transform: Callable[[torch.Tensor], torch.Tensor],
        *,
        image_index: int | None = 0,
        views: int = 1,
        collate_fn: Callable[[list[Any]], Any] = default_collate,
    ) -> None:
        if not callable(transform):
            raise TypeError(f"transform must be callable, got {transform!r}")
        self.transform = transform
        self.image_index = None if image_index is None else check_int(image_index, "image_index", low=0)
        self.views = check_int(views, "views", low=1)
        self.collate_fn = collate_fn

    def _augment(self, images: torch.Tensor) -> torch.Tensor:
        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            raise TypeError(
                "AugmentCollate expects the collated images to be a (B, C, H, W) tensor; convert the "
                f"samples to tensors first (v2.ToImage()), got {type(images).__name__}"
                + (f" of shape {tuple(images.shape)}" if isinstance(images, torch.Tensor) else "")
            )
        if self.views == 1:
            return self.transform(images)
        return jsd_views(self.transform, images, self.views)

    def _check_sizes(self, samples: list[Any]) -> None:
        """Clear errors for what the collate function cannot stack: no samples, images of several sizes."""
        if not samples:
            raise ValueError("AugmentCollate got no samples (an empty batch): there are no images to augment")
        if self.image_index is None:
            images = samples
        elif all(isinstance(s, (list, tuple)) and len(s) > self.image_index for s in samples):
            images = [s[self.image_index] for s in samples]
        else:
            return  # the collated batch's own check names the problem
        shapes = [tuple(x.shape) for x in images if isinstance(x, torch.Tensor)]
        if len(set(shapes)) > 1:
            seen = ", ".join(f"{shape} (sample {shapes.index(shape)})" for shape in dict.fromkeys(shapes))
            raise ValueError(
                f"AugmentCollate stacks images of one size, got images of sizes {seen}; resize or crop "
                "them to one size first (e.g. v2.Resize or v2.RandomCrop in the Dataset's transform)"
            )

    def __call__(self, samples: Sequence[Any]) -> Any:
        samples = list(samples)
        self._check_sizes(samples)
        batch = self.collate_fn(samples)
        if self.image_index is None:
            return self._augment(batch)
        if not isinstance(batch, (list, tuple)) or len(batch) <= self.image_index:
            raise TypeError(
                f"AugmentCollate(image_index={self.image_index}) expects tuple samples, "
                f"got {type(batch).__name__}"
            )
        out = list(batch)
        out[self.image_index] = self._augment(batch[self.image_index])
        return type(batch)(out) if isinstance(batch, tuple) else out

    def __repr__(self) -> str:
        args = f"transform={self.transform!r}, image_index={self.image_index}, views={self.views}"
        return f"AugmentCollate({args})"
