"""A straightforward PRIME, written the way the method's public code works, as the benchmarks' baseline.

Our own transcription of that algorithm (not its code), kept only to measure against: one parameter
draw per call shared by the whole batch; every primitive runs on every chain-image at every depth
step and the unused results are masked away; the diffeomorphism's field uses all ``cut x cut`` sine
modes (no folding); the color map materialises the ``(..., Delta)`` frequency axis. Same presets and
strength laws as the library, so the work is comparable.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from prime_augment.functional.spatial import temperature_range
from prime_augment.presets import get_preset


def _fir(x: torch.Tensor, sigma_max: float, k: int) -> torch.Tensor:
    b = x.shape[0]
    sigma = torch.rand(()).item() * sigma_max
    kernel = sigma * torch.randn(b, 1, k, k, device=x.device)
    kernel[:, 0, k // 2, k // 2] += 1.0
    out = F.conv2d(x.transpose(0, 1), kernel, padding=k // 2, groups=b).transpose(0, 1)
    return out.clamp(0, 1)


def _diffeo(x: torch.Tensor, cut_min: int, cut_max: int) -> torch.Tensor:
    b, n = x.shape[0], x.shape[-1]
    top = int(torch.randint(cut_min + 1, cut_max + 1, ()).item()) if cut_max > cut_min else cut_min
    cut = int(math.sin(0.5 * math.pi * torch.rand(()).item()) ** 2 * (top + 1 - cut_min) + cut_min)
    t_min, t_max = temperature_range(n, cut)
    t_max = max(t_min, t_max)
    temp = t_min + math.sin(0.5 * math.pi * torch.rand(()).item()) ** 2 * (t_max - t_min)
    r = torch.linspace(0, 1, n, device=x.device)
    k = torch.arange(1, cut + 1, device=x.device, dtype=torch.float32)
    s = torch.sin(math.pi * r[:, None] * k[None, :])  # (n, cut)
    i, j = torch.meshgrid(k, k, indexing="ij")
    e = ((i**2 + j**2) <= cut**2) / (i**2 + j**2).sqrt()
    u = torch.einsum("ij,xi,yj->yx", torch.randn(cut, cut, device=x.device) * e, s, s)
    v = torch.einsum("ij,xi,yj->yx", torch.randn(cut, cut, device=x.device) * e, s, s)
    grid = torch.stack(
        (r[None, :] * 2 - 1 + 2 * math.sqrt(temp) * u, r[:, None] * 2 - 1 + 2 * math.sqrt(temp) * v), -1
    )
    out = F.grid_sample(x, grid[None].expand(b, n, n, 2), align_corners=True, padding_mode="border")
    return out.clamp(0, 1)


def _color(x: torch.Tensor, cut_max: int, bandwidth: int | None, var_max: float) -> torch.Tensor:
    b, c = x.shape[:2]
    cut = int(torch.randint(1, cut_max + 1, ()).item())
    var = torch.rand(()).item() * var_max
    if bandwidth is None:
        k = torch.arange(1, cut + 1, device=x.device)
    else:
        start = int(torch.randint(1, cut + 1, ()).item())
        k = torch.arange(start, min(start + bandwidth, cut + 1), device=x.device)
    coeff = math.sqrt(var) * torch.randn(b, c, k.numel(), device=x.device)
    colors = x.reshape(b, c, -1)
    freqs = torch.sin(colors[..., None] * k * math.pi)  # (B, C, HW, Delta): materialised
    out = colors + torch.einsum("bcf,bcnf->bcn", coeff, freqs)
    return out.clamp(0, 1).reshape(x.shape)


class ReferenceStylePRIME:
    """``__call__(x)`` for a float batch ``(B, C, H, W)`` in ``[0, 1]`` (square images)."""

    def __init__(self, preset: str, width: int = 3, max_depth: int = 3) -> None:
        cfg = get_preset(preset)
        self.cfg, self.width, self.depth = cfg, width, max_depth

    def _ops(self, x: torch.Tensor) -> list[torch.Tensor]:
        s, d, c = self.cfg["spectral"], self.cfg["spatial"], self.cfg["color"]
        return [
            _diffeo(x, d["cut_min"], d["cut_max"]),
            _color(x, c["cut_max"], c["bandwidth"], c["variance_max"]),
            _fir(x, s["sigma_max"], s["kernel_size"]),
        ]

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        m = self.width
        ws = torch.distributions.Dirichlet(torch.ones(m, device=x.device)).sample((b,))
        p = torch.rand(b, 1, 1, 1, device=x.device)
        aug = x.repeat(m, 1, 1, 1)
        depth = torch.randint(1, self.depth + 1, (m * b,), device=x.device)
        for step in range(self.depth):
            choice = torch.randint(0, 3, (m * b,), device=x.device)
            mask = F.one_hot(choice, 3).float().T[:, :, None, None, None]  # (3, mB, 1, 1, 1)
            new = sum(mk * op for mk, op in zip(mask, self._ops(aug), strict=True))
            active = (step < depth).float()[:, None, None, None]
            aug = active * new + (1 - active) * aug
        mix = torch.einsum("bm,mbchw->bchw", ws, aug.view(m, b, *x.shape[1:]))
        return (1 - p) * x + p * mix
