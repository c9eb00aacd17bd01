"""The ``imagecorruptions`` backend of :mod:`.corruptions`: the ImageNet-C corruptions of the optional
``imagecorruptions`` package, with local shims for its incompatibilities.

The 15 benchmark corruptions plus the 4 extra ones with ImageNet-C's severity parameters, truncated to
uint8 as ImageNet-C; impulse noise with the 2018 scikit-image draws from a seeded ``RandomState`` (today's
scikit-image ignores numpy's seed). Shims, local to the imported package (numpy itself is not patched):
``np.float_`` and friends, ``multichannel=``, ``scipy.ndimage.interpolation``, ``pkg_resources``.
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from . import _cifar10c

__all__ = ["IMAGENET_C_IMPULSE", "corrupt", "load", "load_error"]

#: ImageNet-C's impulse-noise amounts (make_imagenet_c.py, as imagecorruptions 1.1)
IMAGENET_C_IMPULSE = (0.03, 0.06, 0.09, 0.17, 0.27)


class _NumpyShim(types.ModuleType):
    """numpy with the aliases imagecorruptions 1.1 uses and numpy >= 2 removed (``float_``, ...)."""

    _ALIASES: ClassVar[dict[str, Any]] = {
        "float_": np.float64,
        "float": float,
        "int": int,
        "bool": bool,
        "complex_": np.complex128,
    }

    def __init__(self) -> None:
        super().__init__("numpy")

    def __getattr__(self, name: str) -> Any:
        if name in self._ALIASES and not hasattr(np, name):
            return self._ALIASES[name]
        return getattr(np, name)


def _gaussian_shim(gaussian: Callable) -> Callable:
    """skimage's ``gaussian`` accepting the removed ``multichannel=`` keyword (scikit-image >= 0.19)."""

    def wrapped(image, *args, multichannel=None, **kwargs):
        if multichannel is not None and "channel_axis" not in kwargs:
            kwargs["channel_axis"] = -1 if multichannel else None
        return gaussian(image, *args, **kwargs)

    return wrapped


_IC: Any = None
_IC_ERROR = [""]


def load():
    """Import ``imagecorruptions`` with local shims for its incompatibilities; ``None`` if unusable.

    Shims: a ``pkg_resources.resource_filename`` when setuptools no longer provides ``pkg_resources``
    (it only locates the package's frost images); ``scipy.ndimage.interpolation`` when SciPy dropped that
    namespace; the module's own ``np`` replaced by a proxy that adds ``np.float_`` etc.; its ``gaussian``
    wrapped to translate ``multichannel=`` to ``channel_axis=``.
    """
    global _IC
    if _IC is not None:
        return _IC or None
    try:
        _shim_pkg_resources()
        try:
            importlib.import_module("scipy.ndimage.interpolation")
        except ImportError:
            import scipy.ndimage

            sys.modules["scipy.ndimage.interpolation"] = scipy.ndimage
        with warnings.catch_warnings():  # its own deprecated scipy import path
            warnings.simplefilter("ignore", DeprecationWarning)
            ic = importlib.import_module("imagecorruptions")
        mod = importlib.import_module("imagecorruptions.corruptions")
        mod.np = _NumpyShim()
        mod.gaussian = _gaussian_shim(mod.gaussian)
        _IC = ic
    except Exception as e:  # ImportError, or a broken dependency (cv2 without libGL, ...)
        _IC = False
        _IC_ERROR[0] = f"{type(e).__name__}: {e}"
        return None
    return _IC


def _shim_pkg_resources() -> None:
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        shim = types.ModuleType("pkg_resources")

        def resource_filename(module: str, name: str) -> str:
            # pkg_resources semantics: relative to the folder of the module (or package)
            return str(Path(importlib.import_module(module).__file__).parent / name)

        shim.resource_filename = resource_filename
        sys.modules["pkg_resources"] = shim


def load_error() -> str:
    """Why :func:`load` returned ``None`` (``""`` before it was tried or when it worked)."""
    return _IC_ERROR[0]


def corrupt(images: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    """imagecorruptions' ``name`` at ``severity`` of each image of a uint8 batch, from numpy's global
    RNG seeded by ``seed`` (impulse noise: the 2018 draws from ``RandomState(seed)``)."""
    ic = load()
    if name == "impulse_noise":  # today's scikit-image ignores np.random.seed: the 2018 draws, seeded
        rs = np.random.RandomState(seed % 2**32)
        c = IMAGENET_C_IMPULSE[severity - 1]
        return np.stack([np.uint8(_cifar10c._impulse_noise(img, c, rs)) for img in images])
    np.random.seed(seed % 2**32)  # noqa: NPY002 - imagecorruptions draws from numpy's global RNG
    out = np.empty_like(images)
    for i, img in enumerate(images):
        y = np.asarray(ic.corrupt(np.ascontiguousarray(img), severity=severity, corruption_name=name))
        if y.shape != img.shape:
            raise RuntimeError(
                f"imagecorruptions {name} returned shape {y.shape} for an image of {img.shape}"
            )
        out[i] = y
    return out
