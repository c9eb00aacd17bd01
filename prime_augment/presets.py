"""The method's hyper-parameters by task (its appendix and its public code).

=============  ===================  ===========================  ==========================================
preset         spectral (FIR)       spatial (diffeomorphism)     color
=============  ===================  ===========================  ==========================================
cifar10/100    K=3, std ~ U(0, 4)   cut in 2..100                K=100, all frequencies, var ~ U(0, 0.01)
imagenet(100)  K=3, std ~ U(0, 4)   cut in 2..500                K=500, Delta=20, var ~ U(0, 0.05)
ccm            K=3, var 0.01        cut in 2..10                 K=500, Delta=20, var 0.001
=============  ===================  ===========================  ==========================================

Mixing: width 3, depth 3, ``Beta(1, 1)``; the filling-level (C-CCM) preset mixes with ``Beta(5, 1)``,
the best value of the method's sweep on splits S1/S2 (``Beta(6, 2)`` on S3).
Where a preset gives a variance (``ccm``) it bounds the law of the strength: the FIR std is drawn
from ``U(0, 0.1)`` (variance up to 0.01) and the color variance from ``U(0, 0.001)``.
The CIFAR color preset follows the public code (``K = 100``); the appendix gives ``K = 10``.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["PRESETS", "get_preset"]

_CIFAR: dict[str, Any] = {
    "spectral": {"kernel_size": 3, "sigma_max": 4.0},
    "spatial": {"cut_min": 2, "cut_max": 100},
    "color": {"cut_max": 100, "bandwidth": None, "variance_max": 0.01},
    "mixer": {"width": 3, "depth": 3, "alpha": 1.0, "beta": 1.0},
}
_IMAGENET: dict[str, Any] = {
    "spectral": {"kernel_size": 3, "sigma_max": 4.0},
    "spatial": {"cut_min": 2, "cut_max": 500},
    "color": {"cut_max": 500, "bandwidth": 20, "variance_max": 0.05},
    "mixer": {"width": 3, "depth": 3, "alpha": 1.0, "beta": 1.0},
}
_CCM: dict[str, Any] = {
    "spectral": {"kernel_size": 3, "sigma_max": 0.1},
    "spatial": {"cut_min": 2, "cut_max": 10},
    "color": {"cut_max": 500, "bandwidth": 20, "variance_max": 0.001},
    "mixer": {"width": 3, "depth": 3, "alpha": 5.0, "beta": 1.0},
}

#: name -> {"spectral": kwargs, "spatial": kwargs, "color": kwargs, "mixer": kwargs}
PRESETS: dict[str, dict[str, Any]] = {
    "cifar10": _CIFAR,
    "cifar100": _CIFAR,
    "imagenet": _IMAGENET,
    "imagenet100": _IMAGENET,
    "ccm": _CCM,
}


def get_preset(name: str) -> dict[str, Any]:
    """A deep copy of the preset ``name`` (one of :data:`PRESETS`).

    Example:
        >>> get_preset("imagenet")["color"]
        {'cut_max': 500, 'bandwidth': 20, 'variance_max': 0.05}
    """
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {tuple(PRESETS)}, got {name!r}")
    return copy.deepcopy(PRESETS[name])
