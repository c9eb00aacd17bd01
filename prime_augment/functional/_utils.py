"""Shared checks and reshaping for the functional kernels."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch

T = TypeVar("T")


def check_image_batch(x: object, name: str = "x", *, min_dim: int = 3) -> torch.Tensor:
    """Check that ``x`` is a floating tensor of shape (..., C, H, W); return it."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim < min_dim:
        raise ValueError(f"{name} must have shape (..., C, H, W), got a tensor of shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor in [0, 1], got dtype {x.dtype}")
    return x


def flatten_batch(x: torch.Tensor) -> tuple[torch.Tensor, torch.Size]:
    """(..., C, H, W) -> (B, C, H, W) and the leading shape to restore it."""
    lead = x.shape[:-3]
    return x.reshape(math.prod(lead), *x.shape[-3:]), lead  # (not -1: C, H or W may be 0)


def check_param(t: object, name: str, shape: tuple[int | None, ...], batch: int) -> torch.Tensor:
    """Check a per-image parameter tensor: a tensor with ``batch`` rows and the given trailing shape.

    ``None`` in ``shape`` accepts any size on that axis.
    """
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    ok = t.ndim == len(shape) + 1 and t.shape[0] == batch
    ok = ok and all(s is None or s == d for s, d in zip(shape, t.shape[1:], strict=True))
    if not ok:
        want = ", ".join(["B", *("*" if s is None else str(s) for s in shape)])
        raise ValueError(f"{name} must have shape ({want}) with B={batch} images, got {tuple(t.shape)}")
    return t


def device_cached(maxsize: int = 64) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Cache a builder of constant tensors per (arguments, device): the one cache helper of the kernels.

    The decorated function takes hashable positional arguments and a ``device`` keyword; the device is
    normalised (``None`` -> CPU, ``"cuda"`` -> ``"cuda"`` as given) so each device keeps its own copy (a
    host-to-device copy per call would synchronise the stream). Inside ``torch.compile`` the function is
    called uncached (the graph traces its body and folds the constant). Callers must not modify the
    returned tensors.

    Example:
        >>> @device_cached()
        ... def ramp(n, *, device=None):
        ...     return torch.arange(n, device=device)
        >>> ramp(3) is ramp(3, device="cpu")
        True
    """

    def wrap(fn: Callable[..., T]) -> Callable[..., T]:
        @functools.lru_cache(maxsize=maxsize)
        def cached(args: tuple[Any, ...], device: str) -> T:
            return fn(*args, device=torch.device(device))

        @functools.wraps(fn)
        def call(*args: Any, device: torch.device | str | None = None) -> T:
            if torch.compiler.is_compiling():
                return fn(*args, device=device)
            return cached(args, str(torch.device("cpu" if device is None else device)))

        call.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
        return call

    return wrap


class PathSwitch:
    """The test hook of a kernel with several evaluation paths: :meth:`forced` picks one within a block.

    The kernel's rule reads :meth:`get` (``None`` outside a :meth:`forced` block) and still falls back
    to a path that can compute the values where the forced one cannot.

    Example:
        >>> switch = PathSwitch("example", ("plain", "fast"))
        >>> with switch.forced("fast"):
        ...     switch.get()
        'fast'
        >>> switch.get() is None
        True
    """

    def __init__(self, name: str, paths: tuple[str, ...]) -> None:
        self.paths = paths
        self._var: contextvars.ContextVar[str | None] = contextvars.ContextVar(name, default=None)

    def get(self) -> str | None:
        """The forced path, or ``None``."""
        return self._var.get()

    @contextlib.contextmanager
    def forced(self, path: str) -> Iterator[None]:
        """Within the block, the kernel evaluates by ``path`` (one of :attr:`paths`) wherever it can."""
        if path not in self.paths:
            raise ValueError(f"path must be one of {self.paths}, got {path!r}")
        token = self._var.set(path)
        try:
            yield
        finally:
            self._var.reset(token)
