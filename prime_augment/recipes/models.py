"""Models of the recipes: torchvision ResNets and the CIFAR ResNet variant, with the input
normalisation inside the model (so every model takes images in ``[0, 1]``), and the one checkpoint
format every command reads.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision import models as tvm

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: architectures by name: ``cifar_*`` have a 3x3 stride-1 stem and no max-pool (for 32 px inputs);
#: ``cifar_resnet8`` / ``cifar_resnet20`` are He et al.'s small CIFAR ResNets (3 stages of 16/32/64 channels,
#: 0.08M / 0.27M parameters) for quick CPU experiments and tests
ARCHS = (
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "cifar_resnet18",
    "cifar_resnet34",
    "cifar_resnet50",
    "cifar_resnet8",
    "cifar_resnet20",
)


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class SmallCifarResNet(nn.Module):
    """He et al.'s CIFAR ResNet of depth ``6n + 2`` (16/32/64 channels, 1x1 projection shortcuts)."""

    def __init__(self, depth: int, num_classes: int) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"depth must be 6n + 2, got {depth}")
        n = (depth - 2) // 6
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        blocks, cin = [], 16
        for i, cout in enumerate((16, 32, 64)):
            for j in range(n):
                blocks.append(_BasicBlock(cin, cout, 2 if (i > 0 and j == 0) else 1))
                cin = cout
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel, as the first layer of a model."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


class Classifier(nn.Sequential):
    """``Normalize`` followed by a network; takes images in ``[0, 1]``."""

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__(Normalize(mean, std), net)

    @property
    def net(self) -> nn.Module:
        return self[1]


def build_network(arch: str, num_classes: int) -> nn.Module:
    """An untrained network of the given architecture (no normalisation)."""
    if arch not in ARCHS:
        raise ValueError(f"--arch must be one of {ARCHS}, got {arch!r}")
    if arch in ("cifar_resnet8", "cifar_resnet20"):
        return SmallCifarResNet(int(arch.removeprefix("cifar_resnet")), num_classes)
    base = arch.removeprefix("cifar_")
    net = getattr(tvm, base)(weights=None, num_classes=num_classes)
    if arch.startswith("cifar_"):
        net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    return net


def build_model(
    arch: str,
    num_classes: int,
    *,
    mean: Sequence[float] = CIFAR_MEAN,
    std: Sequence[float] = CIFAR_STD,
) -> Classifier:
    """A classifier on ``[0, 1]`` images: normalisation + network."""
    return Classifier(build_network(arch, num_classes), mean, std)


def model_record(model: Classifier, arch: str, num_classes: int, **extra: Any) -> dict[str, Any]:
    """What a model checkpoint holds: enough to rebuild the model without the run's config."""
    state = {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()}
    norm = unwrap(model)[0]
    return {
        "format": "prime-augment-model/1",
        "arch": arch,
        "num_classes": int(num_classes),
        "mean": norm.mean.flatten().tolist(),
        "std": norm.std.flatten().tolist(),
        "state_dict": state,
        **extra,
    }


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside DDP / torch.compile wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[Classifier, dict]:
    """Load a model saved by the recipes: a ``model.pt`` file or a run directory holding one.

    Returns the model (in eval mode) and the checkpoint record (without the weights).
    """
    p = Path(path)
    if p.is_dir():
        p = p / "model.pt"
    if not p.exists():
        raise FileNotFoundError(f"no model file at {p} (expected a run directory or a model.pt file)")
    record = torch.load(p, map_location=map_location, weights_only=True)
    if not isinstance(record, dict) or record.get("format") != "prime-augment-model/1":
        raise ValueError(f"{p} is not a prime-augment model file (missing format 'prime-augment-model/1')")
    model = build_model(record["arch"], record["num_classes"], mean=record["mean"], std=record["std"])
    model.load_state_dict(record["state_dict"])
    model.eval()
    meta = {k: v for k, v in record.items() if k != "state_dict"}
    return model, meta
