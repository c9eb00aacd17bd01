"""PRIME as the method's public code draws it: the fidelity arm of the training recipes.

The library's :class:`~prime_augment.PRIME` follows the method's equations (DESIGN.md §1). The public
code (github.com/amodas/PRIME-augmentations, ``utils/{prime,rand_filter,diffeomorphism,color_jitter}.py``)
differs from them in ways that may matter for training; this module re-implements its algorithm (our
transcription, not its code) so that a run can measure the difference:

* **one draw per call, shared by the batch**: one FIR strength ``sigma ~ U(0, sigma_max)`` (the taps are
  per image), one displacement field (one max cut, cut and ``T``), one color ``K ~ U{1..K_max}`` and
  variance ``v ~ U(0, v_max)`` (the coefficients are per image);
* **every primitive runs on every chain-image** at every depth step and the drawn one is kept by a mask.
  Here each op runs only on the chain-images that drew it (one call per op and step, so the shared
  draws stay shared by the same images): the same law at about a quarter of the work;
* **the FIR identity tap at index ``ceil(K / 2)``** (``fir_tap="public"``): for ``K = 3`` that is
  ``(2, 2)``, not the centre ``(1, 1)``, so every spectral step also translates the image by one pixel
  up and left, with zero padding entering at the bottom and right edges. ``fir_tap="centre"`` puts it at
  the centre, as the method's equation does;
* **the diffeomorphism's field**: modes ``1 <= i, j <= c`` with ``sqrt(i^2 + j^2) < c + 0.5`` (a disk of
  radius ``c + 1/2``), ``x = linspace(0, 1, n)`` and a displacement of ``sqrt(T) u n`` pixels (the
  library: ``i^2 + j^2 <= c^2`` and ``sqrt(T) u (n - 1)`` pixels); ``T_min``, ``T_max`` computed with
  ``ln(c + 10^-6)``; cut and ``T`` from Beta(1/2, 1/2) laws;
* **the depth law**: a chain length ``U{1..3}`` and each step one of the three primitives (no identity
  step; the library's ``depth_mode="uniform"``);
* the mix ``(1 - p) x + p sum_i w_i chain_i`` with Dirichlet(1) weights and ``p ~ U(0, 1)``, not clipped.

The color map is evaluated with the library's kernel (:func:`~prime_augment.functional.sine_color`: the
same equation without materialising the frequency axis). Randomness comes from torch's global RNG, as in
the public code (``seed_everything`` in the recipes seeds it). Square images only, as the public code.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...functional import _random, sine_color
from ...presets import get_preset

__all__ = ["FIR_TAPS", "PublicPRIME"]

#: where the FIR filter's identity tap sits: the public code's index ``ceil(K / 2)`` or the centre
FIR_TAPS = ("public", "centre")


class PublicPRIME(torch.nn.Module):
    """``forward(x)``: the public code's PRIME on a float batch ``(B, C, n, n)`` in ``[0, 1]``.

    Args:
        preset: a :data:`~prime_augment.PRESETS` name (its FIR, diffeomorphism and color hyper-parameters).
        fir_tap: ``"public"`` (identity tap at ``ceil(K / 2)``: a one-pixel shift per spectral step) or
            ``"centre"``.
        width: chains per image (3).
        max_depth: the longest chain (3).

    Example:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> out = PublicPRIME("cifar10")(torch.rand(4, 3, 16, 16))
        >>> out.shape, bool(out.isfinite().all())
        (torch.Size([4, 3, 16, 16]), True)
    """

    def __init__(self, preset: str = "cifar10", fir_tap: str = "public", width: int = 3, max_depth: int = 3):
        super().__init__()
        if fir_tap not in FIR_TAPS:
            raise ValueError(f"fir_tap must be one of {FIR_TAPS}, got {fir_tap!r}")
        cfg = get_preset(preset)
        self.preset, self.fir_tap, self.width, self.max_depth = preset, fir_tap, int(width), int(max_depth)
        self.kernel_size = int(cfg["spectral"]["kernel_size"])
        self.sigma_max = float(cfg["spectral"]["sigma_max"])
        self.cut_min, self.cut_max = int(cfg["spatial"]["cut_min"]), int(cfg["spatial"]["cut_max"])
        self.color_cut_max = int(cfg["color"]["cut_max"])
        self.color_bandwidth = cfg["color"]["bandwidth"]
        self.color_variance_max = float(cfg["color"]["variance_max"])

    def extra_repr(self) -> str:
        return (
            f"preset={self.preset!r}, fir_tap={self.fir_tap!r}, width={self.width}, "
            f"max_depth={self.max_depth}"
        )

    # ------------------------------------------------------------------------------------------ primitives
    def spectral(self, x: torch.Tensor) -> torch.Tensor:
        b, k = x.shape[0], self.kernel_size
        sigma = float(torch.rand(())) * self.sigma_max
        kernel = sigma * torch.randn(b, 1, k, k, device=x.device, dtype=x.dtype)
        tap = math.ceil(k / 2) if self.fir_tap == "public" else k // 2
        kernel[:, 0, tap, tap] += 1.0
        out = F.conv2d(x.transpose(0, 1), kernel, padding="same", groups=b).transpose(0, 1)
        return out.clamp(0, 1)

    def _field(self, n: int, cut: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        r = torch.linspace(0, 1, n, device=device, dtype=dtype)
        k = torch.arange(1, cut + 1, device=device, dtype=dtype)
        i, j = torch.meshgrid(k, k, indexing="ij")
        radius = (i**2 + j**2).sqrt()
        e = (radius < cut + 0.5) / radius
        s = torch.sin(math.pi * r[:, None] * k[None, :])  # (n, cut)
        c = torch.randn(cut, cut).to(device, dtype) * e
        return torch.einsum("ij,xi,yj->yx", c, s, s)

    def spatial(self, x: torch.Tensor) -> torch.Tensor:
        b, n = x.shape[0], x.shape[-1]
        top = self.cut_min
        if self.cut_max > self.cut_min:
            top = int(torch.randint(self.cut_min + 1, self.cut_max + 1, ()))
        cut = int(float(_random.arcsine(())) * (top + 1 - self.cut_min) + self.cut_min)
        log = math.log(cut + 1e-6)
        t_min, t_max = 1 / (math.pi * n**2 * log), 4 / (math.pi**3 * (cut + 1e-6) ** 2 * log)
        t_max = max(t_min, t_max)
        temp = float(_random.arcsine(())) * (t_max - t_min) + t_min
        dx = math.sqrt(temp) * n * self._field(n, cut, x.device, x.dtype)
        dy = math.sqrt(temp) * n * self._field(n, cut, x.device, x.dtype)
        pix = torch.arange(n, device=x.device, dtype=x.dtype)
        xn = (pix[None, :] - dx).clamp(0, n - 1)
        yn = (pix[:, None] - dy).clamp(0, n - 1)
        grid = torch.stack((2 * xn / (n - 1) - 1, 2 * yn / (n - 1) - 1), -1)  # bilinear remap, as the code
        return F.grid_sample(x, grid[None].expand(b, n, n, 2), align_corners=True, padding_mode="border")

    def color(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        cut = int(torch.randint(1, self.color_cut_max + 1, ()))
        variance = float(torch.rand(())) * self.color_variance_max
        if self.color_bandwidth is None:
            start, d = 1, cut
        else:
            start = int(torch.randint(1, cut + 1, ()))
            d = min(start + int(self.color_bandwidth), cut + 1) - start
        coeffs = math.sqrt(variance) * torch.randn(b, c, d).to(x.device, x.dtype)
        return sine_color(x, coeffs, torch.full((b,), start, device=x.device, dtype=torch.long))

    # ------------------------------------------------------------------------------------------------ mixer
    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[-1] != x.shape[-2]:
            raise ValueError(f"PublicPRIME takes a batch of square images (B, C, n, n), got {tuple(x.shape)}")
        b, m = x.shape[0], self.width
        weights = _random.dirichlet_ones((b,), m).to(x.device, x.dtype)
        p = torch.rand(b, 1, 1, 1).to(x.device, x.dtype)
        aug = x.repeat(m, 1, 1, 1)
        length = torch.randint(1, self.max_depth + 1, (m * b,), device=x.device)
        ops = (self.spatial, self.color, self.spectral)
        for step in range(self.max_depth):
            choice = torch.randint(0, len(ops), (m * b,), device=x.device)
            aug = aug.clone()
            for k, op in enumerate(ops):
                idx = ((choice == k) & (step < length)).nonzero().squeeze(1)
                if idx.numel():
                    aug[idx] = op(aug[idx])
        mix = torch.einsum("bm,mbchw->bchw", weights, aug.view(m, b, *x.shape[1:]))
        return (1 - p) * x + p * mix
