"""The transform protocol shared by the primitives: sample per-image parameters, then apply a kernel."""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import PIL.Image
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from . import _inputs
from ._plan import Plan
from ._validation import check_bool, check_float, check_generator

__all__ = ["RandomPrimitive"]

_warned_worker_generator = False

#: tv_tensors made of coordinates, which a geometric primitive cannot move consistently
_COORDINATES = tuple(getattr(tv_tensors, n) for n in ("BoundingBoxes", "KeyPoints") if hasattr(tv_tensors, n))


def _warn_if_generator_in_worker(generator: torch.Generator | None) -> None:
    global _warned_worker_generator
    if generator is None or _warned_worker_generator:
        return
    if torch.utils.data.get_worker_info() is not None:
        _warned_worker_generator = True
        warnings.warn(
            "a transform with its own torch.Generator runs in a DataLoader worker: every worker holds a "
            "copy of the same generator and draws the same augmentations. Leave generator=None in "
            "Dataset transforms (the global RNG is seeded per worker by the DataLoader).",
            RuntimeWarning,
            stacklevel=4,
        )


def batch_spec(flat_inputs: list[Any]) -> tuple[int, int, int, int, torch.device]:
    """(B, C, H, W, device) of the image inputs among ``flat_inputs``; all images must agree on B, H, W."""
    images = [x for x in flat_inputs if _inputs.is_image(x)]
    if not images:
        raise TypeError(
            "found no image among the inputs: expected a PIL image, a tv_tensors.Image or a tensor of "
            f"shape (C, H, W) / (B, C, H, W); got {[_inputs.describe(x) for x in flat_inputs]}"
        )
    b, c, h, w = _inputs.image_shape(images[0])
    for other in images[1:]:
        b2, _, h2, w2 = _inputs.image_shape(other)
        if (b2, h2, w2) != (b, h, w):
            raise ValueError(
                "all images of one call must have the same batch size and size, got "
                f"{_inputs.describe(images[0])} and {_inputs.describe(other)}"
            )
    return b, c, h, w, _inputs.image_device(images[0])


def require_image(owner: object, flat_inputs: list[Any]) -> None:
    """A clear TypeError when none of a call's inputs is an image."""
    if not any(_inputs.is_image(x) for x in flat_inputs):
        raise TypeError(
            f"{type(owner).__name__} found no image among its inputs: expected a PIL image, a "
            "tv_tensors.Image or a tensor of shape (C, H, W) / (B, C, H, W); got "
            + ", ".join(_inputs.describe(x) for x in flat_inputs)
        )


def needs_grad(inputs: list[Any]) -> bool:
    """Whether autograd must record a call on these inputs (grad mode on and a tensor requiring grad)."""
    return torch.is_grad_enabled() and any(isinstance(t, torch.Tensor) and t.requires_grad for t in inputs)


def fast_mode(inputs: list[Any]) -> contextlib.AbstractContextManager[Any]:
    """``torch.inference_mode()`` unless autograd must record the call (see :func:`needs_grad`).

    Inference mode skips the autograd and version-counter bookkeeping of every operation (about 15 %
    of a small image's CPU time, which is dispatch-bound). What leaves a transform must be a normal
    tensor, so callers finish with an out-of-place operation outside this context.
    """
    return contextlib.nullcontext() if needs_grad(inputs) else torch.inference_mode()


def usable_params(params: dict[str, Any], x: torch.Tensor) -> dict[str, Any]:
    """``params`` with inference tensors (drawn by :func:`fast_mode` sampling) cloned when ``x`` needs
    grad: autograd cannot save inference tensors for the backward pass. Works on a primitive's
    parameters and on PRIME's ``{"plan": Plan}``."""
    if not needs_grad([x]):
        return params

    def fix(v: Any) -> Any:
        if isinstance(v, torch.Tensor):
            return v.clone() if v.is_inference() else v
        if isinstance(v, Plan):
            return v.map(fix)
        if isinstance(v, dict):
            return {k: fix(w) for k, w in v.items()}
        if isinstance(v, list):
            return [fix(w) for w in v]
        return v

    return fix(params)


def expand_params(params: dict[str, torch.Tensor], batch_size: int) -> dict[str, torch.Tensor]:
    """Repeat the parameters of one image for ``batch_size`` images (``same_on_batch``)."""
    return {k: v.expand(batch_size, *v.shape[1:]) for k, v in params.items()}


def repeat_params(params: dict[str, Any], frames: int) -> dict[str, Any]:
    """Each image's parameter rows repeated for ``frames`` consecutive images (the frames of a video)."""
    if frames == 1:
        return params
    return {k: v.repeat_interleave(frames, dim=0) if isinstance(v, torch.Tensor) else v
            for k, v in params.items()}  # fmt: skip


class RandomPrimitive(v2.Transform):
    """Base class of the per-image random primitives (and of user-defined ones).

    A subclass implements two pure steps:

    * :meth:`sample` — draw the parameters of ``batch_size`` images as a dict of tensors with one row
      per image (the subclass's hyper-parameters, ``self.strength`` included, define the laws);
    * :meth:`apply` — apply the op to a float batch ``(B, C, H, W)`` in ``[0, 1]`` given those
      parameters, without modifying it.

    The base class turns them into a torchvision v2 transform: :meth:`make_params` samples for the
    images of a call (honouring ``same_on_batch`` and ``generator``), :meth:`transform` converts each
    input (PIL, uint8/float tensors of any leading shape, ``tv_tensors.Image``), applies, and converts
    back. Labels and other non-image items pass through. ``strength == 0`` is exactly the identity.

    ``params = t.make_params([x])`` followed by ``t.transform(x, params)`` replays a call. When no
    input requires grad, the parameters are drawn under ``torch.inference_mode()`` (inference
    tensors: read them freely, ``clone()`` one before changing it in place); the transformed images
    are always normal tensors.
    """

    #: geometric primitives also warp ``tv_tensors.Mask`` inputs (with nearest sampling)
    _geometric: bool = False
    #: set (on the class itself, not inherited) by the package's primitives, whose ``apply`` is tested
    #: never to modify its input: PRIME then hands them the caller's images without a defensive copy
    _pure: bool = False

    def __init__(
        self,
        *,
        strength: float = 1.0,
        same_on_batch: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.strength = check_float(strength, "strength", low=0.0)
        self.same_on_batch = check_bool(same_on_batch, "same_on_batch")
        self.generator = check_generator(generator)

    # ----------------------------------------------------------------- subclass API
    def sample(
        self,
        batch_size: int,
        channels: int,
        height: int,
        width: int,
        *,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """Draw the parameters of ``batch_size`` images (one row per image)."""
        raise NotImplementedError

    def apply(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Apply the op to a float batch ``(B, C, H, W)`` with the given parameters."""
        raise NotImplementedError

    def apply_levels(self, levels: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """Optional hook: :meth:`apply` of ``levels / 255`` for a ``uint8`` batch of levels ``0..255``.

        A pixelwise op can tabulate itself on the 256 levels and look every pixel up (exact and much
        cheaper than evaluating the op per pixel); it returns the float32 result. The default,
        ``None``, means "not available": callers then use :meth:`apply` on ``levels / 255``. The
        transforms call it for ``uint8`` and PIL inputs, and :class:`~prime_augment.PRIME` for the
        first step of its chains on them (where every chain-image still is its original image).
        """
        return None

    # ----------------------------------------------------------------- sampling glue
    def sample_params(
        self,
        batch_size: int,
        channels: int,
        height: int,
        width: int,
        *,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """:meth:`sample` with ``same_on_batch`` and the module's generator applied."""
        gen = generator if generator is not None else self.generator
        _warn_if_generator_in_worker(gen)
        if self.same_on_batch and batch_size > 1:
            one = self.sample(1, channels, height, width, device=device, generator=gen)
            return expand_params(one, batch_size)
        return self.sample(batch_size, channels, height, width, device=device, generator=gen)

    def check_inputs(self, flat_inputs: list[Any]) -> None:
        require_image(self, flat_inputs)
        for x in flat_inputs:
            if self._geometric and isinstance(x, _COORDINATES):
                raise TypeError(
                    f"{type(self).__name__} moves pixels and cannot move {type(x).__name__} consistently; "
                    "remove them from the sample or convert them to a tv_tensors.Mask"
                )

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        if self.strength == 0.0:
            return {}
        b, c, h, w, device = batch_spec(flat_inputs)
        if c * h * w == 0:  # images without pixels: nothing to draw, the identity
            return {}
        with fast_mode(flat_inputs):
            return self.sample_params(b, c, h, w, device=device)

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, torch.Tensor):
            params = usable_params(params, inpt)
        if isinstance(inpt, tv_tensors.Mask):
            return self._transform_mask(inpt, params) if (self._geometric and params) else inpt
        if not _inputs.is_image(inpt):
            return inpt
        if not params:  # strength 0: exactly the identity, as a new object
            return inpt.copy() if isinstance(inpt, PIL.Image.Image) else inpt.clone()
        batch = _inputs.to_batch(inpt)  # uint8 and PIL as float32 in [0, 1], rounded back by restore
        params = repeat_params(params, batch.frames)  # a video's frames share its draw
        out = None if batch.levels is None else self.apply_levels(batch.levels, params)
        return batch.restore(self.apply(batch.data, params) if out is None else out)

    def _transform_mask(self, mask: tv_tensors.Mask, params: dict[str, Any]) -> tv_tensors.Mask:
        raise NotImplementedError  # pragma: no cover - geometric subclasses implement it
