"""Augmentation coverage of common corruptions in an embedding space (§5.4.2, Eq. 5.8 of the method)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from .._validation import check_int
from . import _utils

__all__ = [
    "CoverageResult",
    "PenultimateFeatures",
    "augmentation_embeddings",
    "cosine_distances",
    "coverage",
    "embedding_pca",
]

Images = Callable[[torch.Tensor], torch.Tensor]


def cosine_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""Batched cosine distances :math:`d(u, v) = 1 - \frac{u^\top v}{\|u\| \|v\|}`.

    Args:
        a: ``(B, T, E)``.
        b: ``(B, M, E)``.

    Shape:
        ``(B, T, M)``, entry ``[i, t, m] = d(a[i, t], b[i, m])`` (in ``[0, 2]``; zero vectors count as
        orthogonal to everything).

    Example:
        >>> import torch
        >>> from prime_augment.analysis import cosine_distances
        >>> a = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])
        >>> cosine_distances(a, torch.tensor([[[3.0, 0.0]]])).flatten().tolist()
        [0.0, 1.0]
    """
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0] or a.shape[2] != b.shape[2]:
        raise ValueError(
            f"a and b must be (B, T, E) and (B, M, E), got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    an = torch.nn.functional.normalize(a, dim=-1)
    bn = torch.nn.functional.normalize(b, dim=-1)
    return 1.0 - an @ bn.transpose(1, 2)


class PenultimateFeatures(nn.Module):
    """The input of a classifier's last ``nn.Linear`` layer, as an embedding ``(B, E)``.

    Runs the whole classifier and captures (with a forward hook) what enters its final linear
    layer: the penultimate features of a ResNet. Any other module mapping images to ``(B, ...)``
    works as an embedding as well.

    Args:
        model: an ``nn.Module`` holding at least one ``nn.Linear`` (the last one in
            ``model.modules()`` order is used).

    Shape:
        ``(B, C, H, W) -> (B, E)``.

    Example:
        >>> import torch
        >>> from prime_augment.analysis import PenultimateFeatures
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5), torch.nn.ReLU(),
        ...                           torch.nn.Linear(5, 3))
        >>> PenultimateFeatures(net)(torch.rand(2, 3, 2, 2)).shape
        torch.Size([2, 5])
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise ValueError("model has no nn.Linear layer whose input could serve as the embedding")
        self.model = model
        self._last = linears[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        captured: list[torch.Tensor] = []
        handle = self._last.register_forward_hook(lambda _m, inp, _out: captured.append(inp[0]))
        try:
            self.model(x)
        finally:
            handle.remove()
        return captured[-1].flatten(1)


def _as_float(x: torch.Tensor, device: torch.device | None = None) -> torch.Tensor:
    x = x.to(device) if device is not None else x
    return x.float() / 255 if x.dtype == torch.uint8 else x


def _embed(embed: Images, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        e = embed(x)
    if not isinstance(e, torch.Tensor) or e.shape[0] != x.shape[0]:
        raise ValueError(f"embed must return a tensor (B, ...) for a batch of {x.shape[0]}, got {e!r:.60}")
    return e.flatten(1).float()


def augmentation_embeddings(
    embed: Images, images: torch.Tensor, augment: Images, num_samples: int
) -> torch.Tensor:
    """Embeddings of ``num_samples`` independent augmentations of every image.

    ``augment`` is called ``num_samples`` times on the whole batch (a fresh draw each time, so an
    augmentation that shares its parameters across a batch still gives independent samples per image).

    Args:
        embed: callable ``(B, C, H, W) -> (B, E)``.
        images: ``(B, C, H, W)`` float in ``[0, 1]`` (or uint8).
        augment: callable ``(B, C, H, W) -> (B, C, H, W)``, random.
        num_samples: ``T >= 1``.

    Shape:
        ``(B, T, E)``.

    Example:
        >>> import torch
        >>> from prime_augment.analysis import augmentation_embeddings
        >>> emb = augmentation_embeddings(lambda x: x.flatten(1), torch.rand(2, 1, 2, 2), lambda x: 1 - x, 3)
        >>> emb.shape
        torch.Size([2, 3, 4])
    """
    num_samples = check_int(num_samples, "num_samples", low=1)
    if not callable(augment):
        raise TypeError(
            f"augment must be callable (a batch of images -> a batch), got {type(augment).__name__}"
        )
    if not callable(embed):
        raise TypeError(f"embed must be callable (a batch of images -> (B, E)), got {type(embed).__name__}")
    x = _as_float(images)
    with _utils.eval_mode(embed), torch.no_grad():
        return torch.stack([_embed(embed, augment(x)) for _ in range(num_samples)], 1)


@dataclass(frozen=True)
class CoverageResult:
    """The coverage of a set of corruptions by an augmentation.

    Attributes:
        names: the corruption names, in order.
        min_distances: ``(M, N)``, per corruption and image, the smallest cosine distance between the
            corrupted image's embedding and the ``T`` augmented samples' embeddings.
        per_corruption: ``(M,)`` mean of ``min_distances`` over images.
        coverage: the mean over images and corruptions (Eq. 5.8; lower = better covered).
    """

    names: list[str]
    min_distances: torch.Tensor
    per_corruption: torch.Tensor
    coverage: float


def coverage(
    embed: Images,
    images: torch.Tensor,
    augment: Images,
    corruptions: Mapping[str, torch.Tensor | Images],
    *,
    num_samples: int = 10,
    batch_size: int = 256,
    progress: bool = False,
) -> CoverageResult:
    r"""How well an augmentation's samples cover corrupted images, in an embedding space (Eq. 5.8).

    .. math::
        \mathrm{cov} = \frac{1}{N M} \sum_{n=1}^{N} \sum_{m=1}^{M}
        \min_{t = 1..T} d\big(\phi(a_t(x_n)), \phi(c_m(x_n))\big),
        \qquad d(u, v) = 1 - \frac{u^\top v}{\|u\| \|v\|},

    with :math:`a_t` independent draws of the augmentation, :math:`c_m` the corruptions and
    :math:`\phi` the embedding. Lower is better: some augmented sample lies close to every
    corrupted image. Computed chunk by chunk of images (``batch_size``), no per-image loop;
    ``embed`` (if an ``nn.Module``) is run in eval mode, its modes restored.

    Args:
        embed: callable ``(B, C, H, W) -> (B, E)`` (e.g. :class:`PenultimateFeatures` of a model).
        images: ``(N, C, H, W)`` clean images, float in ``[0, 1]`` or uint8.
        augment: callable ``(B, C, H, W) -> (B, C, H, W)``: one random draw per call.
        corruptions: name -> either a tensor ``(N, C, H, W)`` of the corrupted images, aligned with
            ``images`` (float or uint8), or a callable applied to each chunk of clean images.
        num_samples: :math:`T \ge 1`. Default 10.
        batch_size: images per chunk (``>= 1``). Default 256.
        progress: show a tqdm progress bar over chunks.

    Shape:
        ``images``: ``(N, C, H, W)``; result ``min_distances`` ``(M, N)``.

    Example:
        >>> import torch
        >>> from prime_augment.analysis import coverage
        >>> x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> emb = lambda z: z.flatten(1) - 0.5
        >>> r = coverage(emb, x, lambda z: 1 - z, {"negative": 1 - x}, num_samples=2)
        >>> round(r.coverage, 6)                      # the augmentation produces exactly the corruption
        0.0
    """
    _check_corruptions(images, corruptions)
    num_samples = check_int(num_samples, "num_samples", low=1)
    batch_size = check_int(batch_size, "batch_size", low=1)
    chunks = range(0, images.shape[0], batch_size)
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc="coverage", unit="chunk")
    with _utils.eval_mode(embed), torch.no_grad():
        mins = [
            _min_distances(embed, images, augment, corruptions, slice(i, i + batch_size), num_samples)
            for i in chunks
        ]
    md = torch.cat(mins, 1) if mins else torch.zeros(len(corruptions), 0)
    per = md.mean(1)
    return CoverageResult(list(corruptions), md, per, float(per.mean()))


def _check_corruptions(images: torch.Tensor, corruptions: Mapping[str, torch.Tensor | Images]) -> None:
    """``images``: ``(N, C, H, W)``; ``corruptions``: a non-empty mapping to such tensors or to callables."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(f"images must be a (N, C, H, W) tensor, got {images!r:.60}")
    if not isinstance(corruptions, Mapping) or not corruptions:
        raise TypeError("corruptions must be a non-empty mapping name -> tensor (N, C, H, W) or callable")
    for name, c in corruptions.items():
        if isinstance(c, torch.Tensor):
            if c.shape != images.shape:
                raise ValueError(
                    f"corruptions[{name!r}] must have the shape of images {tuple(images.shape)}, "
                    f"got {tuple(c.shape)}"
                )
        elif not callable(c):
            raise TypeError(f"corruptions[{name!r}] must be a tensor or a callable, got {type(c).__name__}")


def _min_distances(
    embed: Images,
    images: torch.Tensor,
    augment: Images,
    corruptions: Mapping[str, torch.Tensor | Images],
    rows: slice,
    num_samples: int,
) -> torch.Tensor:
    r"""The terms :math:`\min_t d(\phi(a_t(x_n)), \phi(c_m(x_n)))` of Eq. 5.8 for ``images[rows]``.

    Shape:
        ``(M, b)``: one row per corruption, one column per image of the chunk.
    """
    x = _as_float(images[rows])
    aug = augmentation_embeddings(embed, x, augment, num_samples)  # (b, T, E)
    corr = [
        _embed(embed, _as_float(c[rows], x.device) if isinstance(c, torch.Tensor) else c(x))
        for c in corruptions.values()
    ]
    return cosine_distances(aug, torch.stack(corr, 1)).amin(1).T  # (b, T, M) -> (M, b)


def embedding_pca(embeddings: torch.Tensor, k: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Principal components of embeddings: the coordinates on the top ``k`` directions.

    Args:
        embeddings: ``(N, E)``.
        k: number of components, ``1 <= k <= min(N, E)``.

    Returns:
        ``(coords (N, k), explained (k,))``: the centred embeddings projected on the top ``k``
        right singular vectors, and the fraction of the variance each explains.

    Example:
        >>> import torch
        >>> from prime_augment.analysis import embedding_pca
        >>> e = torch.tensor([[0.0, 0.0], [2.0, 0.0], [4.0, 0.1]])
        >>> coords, explained = embedding_pca(e, 1)
        >>> coords.shape, bool(explained[0] > 0.99)
        (torch.Size([3, 1]), True)
    """
    if not isinstance(embeddings, torch.Tensor) or embeddings.ndim != 2:
        raise ValueError(f"embeddings must be a (N, E) tensor, got {embeddings!r:.60}")
    k = check_int(k, "k", low=1, high=min(embeddings.shape))
    e = embeddings.double()
    e = e - e.mean(0, keepdim=True)
    _, s, vh = torch.linalg.svd(e, full_matrices=False)
    var = s.square()
    total = var.sum()
    explained = var[:k] / total if total > 0 else torch.zeros(k, dtype=var.dtype)
    return (e @ vh[:k].T).to(embeddings.dtype), explained.to(embeddings.dtype)
