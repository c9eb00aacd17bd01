"""prime-augment: PRIME's max-entropy random primitives as per-image, batched PyTorch transforms.

The public surface is small: the three primitives, the :class:`PRIME` mixer and its :class:`Plan`
(every random choice of a call), the JSD consistency
loss and its view helpers, the presets, the base class for new primitives, and the functional
kernels in :mod:`prime_augment.functional`.
"""

from importlib.metadata import PackageNotFoundError, version

from . import functional, presets
from ._base import RandomPrimitive
from ._plan import Plan
from .collate import AugmentCollate
from .color import RandomSineColor
from .losses import JSDLoss, JSDParts, JSDViews, jsd_loss, jsd_views
from .presets import PRESETS
from .prime import PRIME
from .spatial import RandomDiffeomorphism
from .spectral import RandomSpectralFilter

try:
    __version__ = version("prime-augment")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "PRESETS",
    "PRIME",
    "AugmentCollate",
    "JSDLoss",
    "JSDParts",
    "JSDViews",
    "Plan",
    "RandomDiffeomorphism",
    "RandomPrimitive",
    "RandomSineColor",
    "RandomSpectralFilter",
    "__version__",
    "functional",
    "jsd_loss",
    "jsd_views",
    "presets",
]
