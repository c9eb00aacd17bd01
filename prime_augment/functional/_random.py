"""Generator-aware samplers.

Every random draw of the package goes through these functions. Each takes an optional
:class:`torch.Generator`; without one, torch's global RNG of the target device is used, so
``torch.manual_seed`` reproduces and DataLoader workers (which torch seeds differently) differ.
``torch.distributions`` is not used: its samplers take no generator.

When a generator lives on another device than the requested one, the numbers are drawn on the
generator's device and moved, so a CPU generator can drive a CUDA batch (at the cost of a copy).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = [
    "arcsine",
    "beta",
    "dirichlet_ones",
    "exponential",
    "gamma",
    "normal",
    "randint",
    "uniform",
]

Shape = Sequence[int]


def _draw_device(device: torch.device | str | None, generator: torch.Generator | None) -> torch.device:
    if generator is not None:
        return torch.device(generator.device)
    return torch.device("cpu") if device is None else torch.device(device)


def _to(t: torch.Tensor, device: torch.device | str | None) -> torch.Tensor:
    return t if device is None else t.to(device, non_blocking=True)


def uniform(
    shape: Shape,
    low: float | torch.Tensor = 0.0,
    high: float | torch.Tensor = 1.0,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``U(low, high)`` samples of ``shape`` (``low``/``high`` broadcast against ``shape``)."""
    u = _to(
        torch.rand(tuple(shape), generator=generator, device=_draw_device(device, generator), dtype=dtype),
        device,
    )
    if isinstance(low, (int, float)) and isinstance(high, (int, float)):
        # the same numbers with fewer operations (a CPU per-image call is dispatch-bound)
        if low == 0:
            return u if high == 1 else u.mul_(high)
        return u.mul_(high - low).add_(low)
    return low + (high - low) * u


def normal(
    shape: Shape,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Standard normal samples of ``shape``."""
    return _to(
        torch.randn(tuple(shape), generator=generator, device=_draw_device(device, generator), dtype=dtype),
        device,
    )


def randint(
    shape: Shape,
    low: int | torch.Tensor,
    high: int | torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Uniform integers in ``{low, ..., high}`` (both ends included), as ``int64``.

    ``low`` and ``high`` may be tensors (broadcast against ``shape``), so every element can have
    its own range; the draw is ``low + floor(U * (high - low + 1))``, exact for ranges far below 2**24.
    """
    if isinstance(low, int) and isinstance(high, int) and high < low:
        raise ValueError(f"randint: high must be >= low, got low={low} and high={high}")
    u = uniform(shape, generator=generator, device=device, dtype=torch.float64)
    if isinstance(low, int) and isinstance(high, int):  # u >= 0: truncation is the floor
        return u.mul_(high - low + 1).to(torch.int64).add_(low).clamp_max_(high)
    low_t = torch.as_tensor(low, device=u.device)
    high_t = torch.as_tensor(high, device=u.device)
    return (low_t + torch.floor(u * (high_t - low_t + 1)).to(torch.int64)).minimum(high_t)


def exponential(
    shape: Shape,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Exp(1) samples of ``shape``."""
    e = torch.empty(tuple(shape), device=_draw_device(device, generator), dtype=dtype)
    return _to(e.exponential_(1.0, generator=generator), device)


def dirichlet_ones(
    shape: Shape,
    k: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Dirichlet(1, ..., 1) weights over the last axis (size ``k``), as normalised exponentials."""
    if k < 1:
        raise ValueError(f"dirichlet_ones: k must be >= 1, got {k}")
    e = exponential((*shape, k), generator=generator, device=device, dtype=torch.float64)
    # Exp(1) can underflow to exactly 0 for all k only with probability ~0; guard anyway.
    e = e.clamp_min(torch.finfo(torch.float64).tiny)
    return (e / e.sum(-1, keepdim=True)).to(dtype)


def arcsine(
    shape: Shape,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Beta(1/2, 1/2) (arcsine law) samples, drawn exactly as ``sin^2(pi U / 2)``."""
    u = uniform(shape, generator=generator, device=device, dtype=torch.float64)
    return torch.sin(0.5 * math.pi * u).square().to(dtype)


def gamma(
    shape: Shape,
    concentration: float,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    proposals: int = 8,
) -> torch.Tensor:
    """Gamma(concentration, 1) samples by Marsaglia and Tsang's method, vectorised.

    For ``a >= 1``: ``d = a - 1/3``, ``c = 1/sqrt(9d)``; propose ``v = (1 + c z)^3`` with
    ``z ~ N(0, 1)`` and accept when ``log u < z^2/2 + d - d v + d log v``. Each element gets
    ``proposals`` proposals at once (acceptance is above 95 %); the rare elements that reject them all
    are redrawn, so the law is exact. For ``a < 1`` the boost ``Gamma(a) = Gamma(a + 1) U^(1/a)`` is used.
    """
    a = float(concentration)
    if not (a > 0 and math.isfinite(a)):
        raise ValueError(f"gamma: concentration must be a positive finite number, got {concentration}")
    shape = tuple(shape)
    n = math.prod(shape)
    boost = a < 1.0
    a_eff = a + 1.0 if boost else a
    d = a_eff - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    out = torch.empty(n, dtype=torch.float64, device=_draw_device(device, generator))
    todo = torch.arange(n, device=out.device)
    while todo.numel() > 0:
        m = todo.numel()
        z = torch.randn((m, proposals), generator=generator, device=out.device, dtype=torch.float64)
        u = torch.rand((m, proposals), generator=generator, device=out.device, dtype=torch.float64)
        v = (1.0 + c * z) ** 3
        ok = (v > 0) & (torch.log(u) < 0.5 * z * z + d - d * v + d * torch.log(v.clamp_min(1e-300)))
        first = torch.argmax(ok.to(torch.int8), dim=1)
        got = ok.any(dim=1)
        val = d * v.gather(1, first[:, None]).squeeze(1)
        out[todo[got]] = val[got]
        todo = todo[~got]
    if boost:
        out = out * torch.rand(n, generator=generator, device=out.device, dtype=torch.float64) ** (1.0 / a)
    return _to(out.reshape(shape).to(dtype), device)


def beta(
    shape: Shape,
    alpha: float,
    beta_: float,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Beta(alpha, beta) samples of ``shape``.

    Closed forms where they exist (``Beta(1, 1) = U``, ``Beta(a, 1) = U^(1/a)``,
    ``Beta(1, b) = 1 - U^(1/b)``, ``Beta(1/2, 1/2) = sin^2(pi U/2)``), otherwise ``G_a / (G_a + G_b)``
    with the Gamma sampler above.
    """
    a, b = float(alpha), float(beta_)
    for name, val in (("alpha", a), ("beta", b)):
        if not (val > 0 and math.isfinite(val)):
            raise ValueError(f"beta: {name} must be a positive finite number, got {val}")
    if a == 1.0 and b == 1.0:
        return uniform(shape, generator=generator, device=device, dtype=dtype)
    if a == 0.5 and b == 0.5:
        return arcsine(shape, generator=generator, device=device, dtype=dtype)
    if b == 1.0:
        u = uniform(shape, generator=generator, device=device, dtype=torch.float64)
        return u.pow(1.0 / a).to(dtype)
    if a == 1.0:
        u = uniform(shape, generator=generator, device=device, dtype=torch.float64)
        return (1.0 - u.pow(1.0 / b)).to(dtype)
    ga = gamma(shape, a, generator=generator, device=device, dtype=torch.float64)
    gb = gamma(shape, b, generator=generator, device=device, dtype=torch.float64)
    return (ga / (ga + gb).clamp_min(torch.finfo(torch.float64).tiny)).to(dtype)
