"""Test helpers (importable as ``helpers`` from the tests directory)."""

from __future__ import annotations

import torch

from prime_augment import PRIME, RandomDiffeomorphism, RandomSineColor, RandomSpectralFilter
from prime_augment._plan import Plan, Step


def rand_images(*shape: int, seed: int = 0, device: str = "cpu", dtype=torch.float32) -> torch.Tensor:
    """Uniform images in [0, 1] (or uint8 in [0, 255]) from a fixed seed."""
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.uint8:
        return torch.randint(0, 256, shape, generator=g, dtype=torch.uint8).to(device)
    return torch.rand(*shape, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)


def smooth_images(b: int, c: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Natural-looking smooth images (sums of a few low-frequency waves) in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    yy = torch.linspace(0, 1, h)[:, None]
    xx = torch.linspace(0, 1, w)[None, :]
    out = torch.zeros(b, c, h, w)
    for _ in range(3):
        fy, fx, ph = torch.rand(3, b, c, 1, 1, generator=g) * torch.tensor([4.0, 4.0, 6.28]).view(
            3, 1, 1, 1, 1
        )
        out += torch.sin(fy * 3.1416 * yy + fx * 3.1416 * xx + ph)
    return ((out / 3 + 1) / 2).clamp(0, 1)


#: name -> factory of each primitive at its CIFAR defaults, and a gentler variant
PRIMITIVES = {
    "spectral": lambda **kw: RandomSpectralFilter(**kw),
    "spatial": lambda **kw: RandomDiffeomorphism(**kw),
    "color": lambda **kw: RandomSineColor(**kw),
    "color_band": lambda **kw: RandomSineColor(cut_max=500, bandwidth=20, variance_max=0.05, **kw),
    "spectral_reflect": lambda **kw: RandomSpectralFilter(5, 1.0, padding_mode="reflect", **kw),
    "prime": lambda **kw: PRIME.from_preset("cifar10", **kw),
    "prime_imagenet_fixed": lambda **kw: PRIME.from_preset("imagenet", depth_mode="fixed", width=2, **kw),
}


def slice_params(params: dict, i: int, batch_size: int | None = None) -> dict:
    """The parameters of image ``i`` alone (a batch of one), for a primitive or a PRIME call's
    ``{"plan": Plan}`` (written here independently of ``Plan.slice``, which the tests check against it)."""
    if "plan" not in params:
        return {k: v[i : i + 1] for k, v in params.items()}
    plan = params["plan"]
    b = batch_size if batch_size is not None else plan.mix.shape[0]
    steps = []
    for step in plan.steps:
        rows = [r for r, j in enumerate(step.index.tolist()) if j % b == i]
        if rows:
            keep = torch.tensor(rows, dtype=torch.int64)
            index = step.index[keep] // b
            counts = tuple(int((index == c).sum()) for c in range(plan.weights.shape[1]))
            params = {k: v[keep] for k, v in step.params.items()}
            steps.append(Step(step.depth, step.op, index, params, counts))
    one = Plan(plan.weights[i : i + 1], plan.mix[i : i + 1], plan.ops[:, :, i : i + 1], tuple(steps))
    return {"plan": one}


def tensors_of(params) -> list[torch.Tensor]:
    """Every tensor of a primitive's parameters or a ``{"plan": Plan}`` (depth first)."""
    if isinstance(params, torch.Tensor):
        return [params]
    if isinstance(params, Plan):
        return [params.weights, params.mix, params.ops, *(t for s in params.steps for t in tensors_of(s))]
    if isinstance(params, Step):
        return [params.index, *tensors_of(params.params)]
    if isinstance(params, dict):
        return [t for v in params.values() for t in tensors_of(v)]
    return []

