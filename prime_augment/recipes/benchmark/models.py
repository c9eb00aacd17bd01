"""Models of the recipes: torchvision ResNets and the CIFAR ResNet variant, with the input
normalisation inside the model (so every model takes images in ``[0, 1]``), and the one checkpoint
format every command reads.

A model may also carry a fixed input pre-processing (the baselines of the method's Tab. 5.1), applied
before the normalisation to every image it sees — augmented training images, clean and corrupted test
images, attacked images — and recorded in its model file, so every command that loads the model
applies it: ``"gray"`` (ITU-R 601 luma repeated over the 3 channels) or ``"lowpass:K"`` (the orthonormal
2-D DCT of each channel keeps its ``K x K`` lowest frequencies, :func:`prime_augment.analysis.dct_low_pass`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision import models as tvm

from .._common import short_error

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


#: the pre-processing baselines (``--preprocess``): ``none``, ``gray`` or ``lowpass:K``
PREPROCESS_HELP = "none, gray (luma over 3 channels) or lowpass:K (the K x K lowest DCT frequencies)"
#: ITU-R 601-2 luma weights (as ``torchvision.transforms.v2.functional.rgb_to_grayscale``)
LUMA = (0.299, 0.587, 0.114)


def parse_preprocess(text: str | None) -> str | None:
    """The canonical pre-processing spec of ``text`` (``None`` for none); a ``ValueError`` naming it.

    Example:
        >>> parse_preprocess("lowpass:08"), parse_preprocess("grey"), parse_preprocess("none")
        ('lowpass:8', 'gray', None)
    """
    if text is None or str(text).strip().lower() in ("", "none"):
        return None
    t = str(text).strip().lower()
    if t in ("gray", "grey", "grayscale"):
        return "gray"
    m = re.fullmatch(r"lowpass:(\d+)", t)
    if m and int(m.group(1)) >= 1:
        return f"lowpass:{int(m.group(1))}"
    raise ValueError(f"--preprocess {text!r}: expected {PREPROCESS_HELP}, with K >= 1")


class GrayRepeat(nn.Module):
    """Grayscale repeated over the 3 channels: ``0.299 R + 0.587 G + 0.114 B`` in every channel.

    Example:
        >>> y = GrayRepeat()(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1))
        >>> [round(v, 3) for v in y.flatten().tolist()]
        [0.299, 0.299, 0.299]
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-3] != 3:
            raise ValueError(f"gray pre-processing needs 3-channel images, got shape {tuple(x.shape)}")
        w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(3, 1, 1)
        return (x * w).sum(-3, keepdim=True).expand(x.shape)


class DCTLowPass(nn.Module):
    r"""Keep the ``K x K`` lowest frequencies of each channel's orthonormal 2-D DCT.

    ``x -> P_H x P_W^T`` with ``P = D[:K]^T D[:K]`` (``D`` the DCT-II matrix): the same projection as
    :func:`prime_augment.analysis.dct_low_pass`, with the two ``P`` cached per image size and device and
    computed in float32 (outside autocast). The output is not clipped (it may leave ``[0, 1]``).

    Args:
        cutoff: ``K >= 1`` (a ``K`` above the image side keeps that axis whole).

    Example:
        >>> x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> y = DCTLowPass(1)(x)                 # K = 1: the mean of each channel
        >>> bool(torch.allclose(y, x.mean((-2, -1), keepdim=True).expand_as(x), atol=1e-6))
        True
    """

    def __init__(self, cutoff: int) -> None:
        super().__init__()
        if isinstance(cutoff, bool) or not isinstance(cutoff, int) or cutoff < 1:
            raise ValueError(f"lowpass cutoff K must be an int >= 1, got {cutoff!r}")
        self.cutoff = cutoff
        self._cache: dict[tuple[int, int, str], tuple[torch.Tensor, torch.Tensor]] = {}

    def _projections(self, h: int, w: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = (h, w, str(device))
        if key not in self._cache:
            from ...analysis.dct import dct_matrix

            def proj(n: int) -> torch.Tensor:
                d = dct_matrix(n)[: min(self.cutoff, n)]
                return (d.T @ d).to(dtype=torch.float32, device=device)

            self._cache[key] = (proj(h), proj(w))
        return self._cache[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ph, pw = self._projections(x.shape[-2], x.shape[-1], x.device)
        with torch.autocast(x.device.type, enabled=False):
            return (ph @ x.float() @ pw.T).to(x.dtype)

    def extra_repr(self) -> str:
        return f"cutoff={self.cutoff}"


def build_preprocess(spec: str | None) -> nn.Module | None:
    """The module of a pre-processing spec (:func:`parse_preprocess`), ``None`` for none."""
    spec = parse_preprocess(spec)
    if spec is None:
        return None
    if spec == "gray":
        return GrayRepeat()
    return DCTLowPass(int(spec.split(":")[1]))


def describe_preprocess(spec: str | None) -> str:
    """A human-readable line for results files."""
    spec = parse_preprocess(spec)
    if spec is None:
        return "none"
    if spec == "gray":
        return "grayscale (ITU-R 601 luma) repeated over 3 channels, inside the model (train and test)"
    k = spec.split(":")[1]
    return f"DCT low-pass, the {k}x{k} lowest frequencies per channel, inside the model (train and test)"


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel, as the first layer of a model, after an optional fixed
    pre-processing (``preprocess``: a spec of :func:`parse_preprocess`; it has no state: the state dict is
    the same with or without it)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], preprocess: str | None = None) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))
        self.preprocess_spec = parse_preprocess(preprocess)
        self.preprocess = build_preprocess(self.preprocess_spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preprocess is not None:
            x = self.preprocess(x)
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


class Classifier(nn.Sequential):
    """``Normalize`` (with the optional pre-processing) followed by a network; takes images in ``[0, 1]``."""

    def __init__(
        self, net: nn.Module, mean: Sequence[float], std: Sequence[float], preprocess: str | None = None
    ) -> None:
        super().__init__(Normalize(mean, std, preprocess), net)

    @property
    def net(self) -> nn.Module:
        return self[1]

    @property
    def preprocess(self) -> str | None:
        """The pre-processing spec (``None``: none)."""
        return self[0].preprocess_spec


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
    preprocess: str | None = None,
) -> Classifier:
    """A classifier on ``[0, 1]`` images: (pre-processing +) normalisation + network."""
    return Classifier(build_network(arch, num_classes), mean, std, preprocess)


def model_record(model: Classifier, arch: str, num_classes: int, **extra: Any) -> dict[str, Any]:
    """What a model checkpoint holds: enough to rebuild the model without the run's config."""
    state = {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()}
    norm = unwrap(model)[0]
    record = {
        "format": "prime-augment-model/1",
        "arch": arch,
        "num_classes": int(num_classes),
        "mean": norm.mean.flatten().tolist(),
        "std": norm.std.flatten().tolist(),
        "state_dict": state,
        **extra,
    }
    if getattr(norm, "preprocess_spec", None) is not None:
        record["preprocess"] = norm.preprocess_spec
    return record


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

    Returns the model (in eval mode, with the pre-processing of its record) and the checkpoint record
    (without the weights).
    """
    p = Path(path)
    if p.is_dir():
        p = p / "model.pt"
    if not p.exists():
        raise FileNotFoundError(f"no model file at {p} (expected a run directory or a model.pt file)")
    try:
        record = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for a truncated or foreign file
        raise ValueError(f"cannot read the model file {p} ({short_error(e)})") from e
    if not isinstance(record, dict) or record.get("format") != "prime-augment-model/1":
        raise ValueError(f"{p} is not a prime-augment model file (missing format 'prime-augment-model/1')")
    missing = [k for k in ("arch", "num_classes", "mean", "std", "state_dict") if k not in record]
    if missing:
        raise ValueError(f"{p}: the model file lacks {missing}")
    model = build_model(
        record["arch"],
        record["num_classes"],
        mean=record["mean"],
        std=record["std"],
        preprocess=record.get("preprocess"),
    )
    try:
        model.load_state_dict(record["state_dict"])
    except RuntimeError as e:
        raise ValueError(f"{p}: the weights do not fit the recorded {record['arch']!r} ({e})") from e
    model.eval()
    meta = {k: v for k, v in record.items() if k != "state_dict"}
    return model, meta
