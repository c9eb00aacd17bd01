"""prime-augment: PRIME's max-entropy random primitives as per-image, batched PyTorch transforms.

The public surface is small: the three primitives, the base class for new ones, and the
functional kernels in :mod:`prime_augment.functional`.
"""

from importlib.metadata import PackageNotFoundError, version

from ._base import RandomPrimitive
from .color import RandomSineColor
from .spatial import RandomDiffeomorphism
from .spectral import RandomSpectralFilter

try:
    __version__ = version("prime-augment")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "RandomDiffeomorphism",
    "RandomPrimitive",
    "RandomSineColor",
    "RandomSpectralFilter",
    "__version__",
]
