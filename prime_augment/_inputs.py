"""Turning the inputs users pass (PIL images, uint8/float tensors, tv_tensors) into float batches and back."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import PIL.Image
import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as TF

PIL_MODES = ("L", "RGB")
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def is_image(inpt: Any) -> bool:
    """An input that the primitives treat as image(s): a PIL image, a plain tensor, a
    ``tv_tensors.Image`` or a ``tv_tensors.Video`` (not a Mask or boxes)."""
    if isinstance(inpt, PIL.Image.Image):
        return True
    return isinstance(inpt, torch.Tensor) and (
        type(inpt) is torch.Tensor or isinstance(inpt, (tv_tensors.Image, tv_tensors.Video))
    )


def frames(inpt: Any) -> int:
    """Frames per draw: ``T`` for a ``tv_tensors.Video`` ``(..., T, C, H, W)`` (its frames share one draw),
    1 for images."""
    return inpt.shape[-4] if isinstance(inpt, tv_tensors.Video) else 1


def describe(inpt: Any) -> str:
    if isinstance(inpt, torch.Tensor):
        return f"{type(inpt).__name__} of shape {tuple(inpt.shape)} and dtype {inpt.dtype}"
    if isinstance(inpt, PIL.Image.Image):
        return f"PIL image of mode {inpt.mode!r} and size {inpt.size}"
    return type(inpt).__name__


@dataclass
class Batch:
    """A float image batch ``(B, C, H, W)`` and how to turn a result back into the input's type."""

    data: torch.Tensor  # (B, C, H, W) in the compute dtype (float32 or float64)
    restore: Callable[[torch.Tensor], Any]
    #: the uint8 batch ``data`` was made from (``data = levels / 255``), for uint8 and PIL inputs
    levels: torch.Tensor | None = None
    #: consecutive images of ``data`` that share one draw (the frames of a video), 1 for images
    frames: int = 1


def image_shape(inpt: Any) -> tuple[int, int, int, int]:
    """(B, C, H, W) of an image input, B being the number of draws: the product of the leading
    dimensions (for a ``tv_tensors.Video``, of those before the frames)."""
    if isinstance(inpt, PIL.Image.Image):
        check_pil(inpt)
        return 1, len(inpt.getbands()), inpt.height, inpt.width
    check_tensor(inpt)
    lead = inpt.shape[:-4] if isinstance(inpt, tv_tensors.Video) else inpt.shape[:-3]
    return math.prod(lead), *inpt.shape[-3:]


def image_device(inpt: Any) -> torch.device:
    return inpt.device if isinstance(inpt, torch.Tensor) else torch.device("cpu")


def check_pil(img: PIL.Image.Image) -> None:
    if img.mode not in PIL_MODES:
        raise ValueError(
            f"PIL images must have mode 'RGB' or 'L', got mode {img.mode!r}; "
            "convert it first (img.convert('RGB'))"
        )


def check_tensor(t: torch.Tensor, name: str = "image") -> None:
    if isinstance(t, tv_tensors.Video) and t.ndim < 4:
        raise ValueError(f"a Video must have shape (..., T, C, H, W), got {describe(t)}")
    if t.ndim < 3:
        raise ValueError(f"{name} must have shape (C, H, W) or (B, C, H, W), got {describe(t)}")
    if not (t.dtype == torch.uint8 or t.dtype in FLOAT_DTYPES):
        raise TypeError(
            f"{name} must be a float tensor in [0, 1] or a uint8 tensor in [0, 255], got {describe(t)}"
        )


def to_batch(inpt: Any) -> Batch:
    """Convert an image input to a ``(B, C, H, W)`` batch.

    uint8 (and PIL) becomes float32 in ``[0, 1]``, rounded back to uint8 by ``restore``; float16/bfloat16 are
    computed in float32; float32/float64 as they are, except that ``+Inf`` and ``-Inf`` are read as
    1 and 0 (``NaN`` is kept). A ``tv_tensors.Video`` ``(..., T, C, H, W)`` gives its frames as
    consecutive images (``frames = T``). ``restore`` gives back the input's type, dtype, leading shape
    and (for PIL) mode. The input itself is never modified.
    """
    if isinstance(inpt, PIL.Image.Image):
        check_pil(inpt)
        mode = inpt.mode
        return _tensor_batch(
            TF.pil_to_tensor(inpt), lambda out: TF.to_pil_image(_to_uint8(out)[0], mode=mode)
        )
    if isinstance(inpt, (tv_tensors.Image, tv_tensors.Video)):
        plain = inpt.as_subclass(torch.Tensor)
        inner = _tensor_batch(plain)
        restore = lambda out: tv_tensors.wrap(inner.restore(out), like=inpt)  # noqa: E731
        return Batch(inner.data, restore, inner.levels, frames(inpt))
    if isinstance(inpt, torch.Tensor):
        return _tensor_batch(inpt)
    raise TypeError(f"expected a PIL image or a tensor, got {describe(inpt)}")


def _to_uint8(out: torch.Tensor) -> torch.Tensor:
    if out.dtype == torch.uint8:
        return out
    # integers 0..255 by then: through int16 (float -> uint8 directly is ~4x slower on the CPU)
    return (out.to(torch.float32) * 255.0).round_().clamp_(0, 255).to(torch.int16).to(torch.uint8)


def _tensor_batch(t: torch.Tensor, final: Callable[[torch.Tensor], Any] | None = None) -> Batch:
    check_tensor(t)
    shape, dtype = t.shape, t.dtype
    xb = t.reshape(math.prod(shape[:-3]), *shape[-3:])  # (not -1: a C, H or W of 0 is allowed)
    uint8 = dtype == torch.uint8
    levels = xb if uint8 else None
    if uint8:
        xb = xb.to(torch.float32) / 255.0
    else:
        # the one behaviour of every transform on non-finite values: +-Inf read as 1 and 0, NaN kept
        # (a saturated pixel; the series of the color map would turn an infinity into NaN)
        xb = torch.nan_to_num(xb.to(torch.float32) if dtype in (torch.float16, torch.bfloat16) else xb,
                              nan=math.nan, posinf=1.0, neginf=0.0)

    def restore(out: torch.Tensor) -> Any:
        res = (_to_uint8(out) if uint8 else out.to(dtype)).reshape(shape)
        return res if final is None else final(res.reshape(-1, *shape[-3:]))

    return Batch(xb, restore, levels)
