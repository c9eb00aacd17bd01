"""Pure kernels of the PRIME primitives.

Every kernel takes images ``(..., C, H, W)`` and all of its randomness as explicit tensors (one
row per image), never modifies its input, and is deterministic; the ``sample_*_params`` functions
draw those tensors with the laws of the method, from an optional :class:`torch.Generator`.
"""

from .color import color_lut, sample_color_params, sine_color, sine_color_levels
from .spatial import (
    deform,
    displacement_field,
    folded_variance_weights,
    max_cut,
    sample_spatial_params,
    sine_basis,
    temperature_range,
)
from .spectral import PADDING_MODES, sample_spectral_params, spectral_filter

__all__ = [
    "PADDING_MODES",
    "color_lut",
    "deform",
    "displacement_field",
    "folded_variance_weights",
    "max_cut",
    "sample_color_params",
    "sample_spatial_params",
    "sample_spectral_params",
    "sine_basis",
    "sine_color",
    "sine_color_levels",
    "spectral_filter",
    "temperature_range",
]
