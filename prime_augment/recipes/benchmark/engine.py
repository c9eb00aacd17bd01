"""A reusable training engine: SGD + schedule, augmentation placement, JSD, DDP, exact resume.

The engine is a library with explicit arguments (no argparse); ``prime-augment train``, the
filling-level recipe and adversarial training build on it::

    spec = build_data("cifar10", root)
    model = build_model("cifar_resnet18", spec.num_classes, mean=spec.mean, std=spec.std)
    aug = Augmentation("prime", prime=PRIME.from_preset("cifar10"), placement="auto")
    trainer = Trainer(model, spec.train, spec.train_transform, TrainConfig(epochs=30), aug,
                      device="cuda", out_dir="runs/prime")
    result = trainer.fit(resume=True)

What it does, and where:

* **augmentation placement** — ``placement="device"``: the loader yields uint8 crops and PRIME runs on
  the whole batch on the device (one independent draw per image); ``"workers"``: the augmentation runs
  per image inside the DataLoader workers. ``"auto"`` is ``device`` for PRIME on CUDA, ``workers``
  otherwise. torchvision's AugMix draws one set of operations per call, so it always runs per image in
  the workers.
* **JSD** — ``config.jsd``: the views ``[clean; aug_1; aug_2]`` (same crop) go through the model in
  one batch and :class:`~prime_augment.JSDLoss` adds ``lambda * JS`` to the clean cross-entropy.
* **exact resume** — a checkpoint is written atomically after every epoch with the model, optimizer,
  schedule, every process's RNG states (torch CPU and CUDA, numpy, python) and the history. The
  shuffling and the DataLoader worker seeds are functions of ``(seed, epoch, rank)``, so a run killed at
  any point and resumed redoes the unfinished epoch identically: on the CPU the final weights are bitwise
  the same as an uninterrupted run's (on CUDA, up to non-deterministic kernels unless
  ``config.deterministic``).
* **DDP** — under ``torchrun`` (``WORLD_SIZE > 1``) the model is wrapped in DDP (NCCL on CUDA, gloo on
  the CPU); ``config.batch_size`` is the global batch, split over the processes; only rank 0 writes.
* **adversarial training** — ``config.adversarial`` (an :class:`Adversarial`): every (augmented) batch
  is replaced by its PGD adversarial (:func:`prime_augment.attacks.pgd`, l-inf or l2) before the training
  step, the loss being the cross-entropy on the adversarial images only (Madry et al. 2018). The attack
  runs on the bare model (not the DDP / compiled wrapper), inside the same autocast as the step; its
  random start is drawn from a generator seeded by ``(seed, epoch, step, rank)``, so resuming stays exact.
  By default the attack sees train-mode batch norm (batch statistics, as the training step) and the
  running statistics are restored after it (``Adversarial.model_mode``).
* **hooks** — ``sampler_fn(epoch, generator) -> indices`` replaces the uniform shuffle (e.g.
  class-balanced sampling); ``validate_fn(model) -> dict`` runs every ``config.val_every`` epochs and, with
  ``select_metric``, keeps the best weights in ``best.pt``; ``on_step(trainer, epoch, step)`` is called
  after each optimisation step.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision.transforms import v2
from tqdm.auto import tqdm

from ...attacks import MODEL_MODES, NORMS, default_step_size, pgd
from ...losses import JSDLoss, JSDViews, jsd_views
from ...prime import PRIME
from .._common import atomic_torch_save, short_error, sigint_deferred, write_json, write_text
from .data import MapDataset
from .models import model_record, unwrap
from .public_prime import PublicPRIME

__all__ = [
    "AUGMENTATIONS",
    "PLACEMENTS",
    "SCHEDULES",
    "Adversarial",
    "Augmentation",
    "DistInfo",
    "EpochSampler",
    "RunError",
    "SmoothedLoss",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "build_optimizer",
    "build_scheduler",
    "init_distributed",
    "seed_everything",
    "to_float",
]

AUGMENTATIONS = ("none", "augmix", "prime", "prime-public", "offline")
PLACEMENTS = ("auto", "device", "workers")
SCHEDULES = ("onecycle", "linear", "constant")
CHECKPOINT_FORMAT = "prime-augment-train/1"


class RunError(ValueError):
    """A run that cannot start or continue as asked, through no fault of the code: a checkpoint that is
    unreadable or was written with other settings, a training set smaller than one batch.

    The ``train`` command reports it in one line; any other exception out of :meth:`Trainer.fit` is a bug.
    """


# ---------------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class Adversarial:
    """PGD adversarial training (see :func:`prime_augment.attacks.pgd` for the attack).

    Args:
        norm: ``"linf"`` or ``"l2"``.
        eps: radius in pixel units of ``[0, 1]`` images (``> 0``; Madry et al. CIFAR-10: l-inf ``8/255``).
        steps: PGD steps (``>= 1``; Madry et al. CIFAR-10: 7).
        step_size: ``None``: ``2.5 eps / steps``.
        random_start: start each attack from a uniform point of the ball.
        model_mode: ``"train"`` (batch-norm with batch statistics during the attack, running statistics
            restored afterwards) or ``"eval"`` (the running statistics).

    Example:
        >>> Adversarial("linf", 8 / 255, steps=7).resolved_step_size() == 2.5 * 8 / 255 / 7
        True
    """

    norm: str = "linf"
    eps: float = 8 / 255
    steps: int = 7
    step_size: float | None = None
    random_start: bool = True
    model_mode: str = "train"

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise ValueError(f"adversarial norm must be one of {NORMS}, got {self.norm!r}")
        if not (isinstance(self.eps, (int, float)) and 0 < self.eps < math.inf):
            raise ValueError(f"adversarial eps must be a positive number, got {self.eps!r}")
        if self.norm == "linf" and self.eps > 1:
            raise ValueError(f"adversarial eps {self.eps!r} > 1: l-inf radii are in [0, 1] pixel units")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"adversarial steps must be a positive int, got {self.steps!r}")
        if self.step_size is not None and not (0 < self.step_size < math.inf):
            raise ValueError(
                f"adversarial step_size must be a positive number or None, got {self.step_size!r}"
            )
        if self.model_mode not in MODEL_MODES:
            raise ValueError(f"adversarial model_mode must be one of {MODEL_MODES}, got {self.model_mode!r}")

    def resolved_step_size(self) -> float:
        return self.step_size if self.step_size is not None else default_step_size(self.eps, self.steps)

    def describe(self) -> str:
        return (
            f"PGD-{self.steps} {self.norm} eps {self.eps:.4g} step {self.resolved_step_size():.4g}"
            f"{' random start' if self.random_start else ''}, {self.model_mode}-mode BN during the attack"
        )


@dataclass
class TrainConfig:
    """Hyper-parameters of a training run (all explicit; recorded in the run directory).

    Args:
        epochs: number of epochs (>= 1).
        batch_size: global batch size (split over DDP processes).
        lr: peak learning rate (one-cycle maximum, or the starting LR of the linear decay).
        momentum, nesterov, weight_decay: SGD (the method: 0.9, Nesterov, 5e-4 CIFAR / 1e-4 ImageNet).
        schedule: ``"onecycle"`` (``torch.optim.lr_scheduler.OneCycleLR``, cosine annealing),
            ``"linear"`` (linear warm-up over ``warmup_epochs``, then linear decay to 0) or ``"constant"``.
        pct_start: one-cycle warm-up fraction (the method's code: 0.25 CIFAR/IN-100, 0.1 ImageNet).
        warmup_epochs: linear schedule warm-up.
        grad_clip: max gradient norm, or ``None``/0 for none (the method's code: 0.5 on CIFAR).
        label_smoothing: of the cross-entropy.
        jsd, jsd_weight, num_splits: JSD consistency loss (``lambda = 12``, 3 views).
        seed: seeds everything (model init is the caller's: call :func:`seed_everything` first).
        workers: DataLoader worker processes per training process.
        amp: bf16 autocast on CUDA (ignored on the CPU).
        channels_last: channels-last memory format on CUDA (ignored on the CPU).
        compile: ``torch.compile`` the model.
        deterministic: ``torch.use_deterministic_algorithms(True)`` (bitwise-exact resume on CUDA).
        val_every: validate every that many epochs (with a ``validate_fn``).
        progress: tqdm progress bars (rank 0).
        drop_last: drop the last incomplete batch of an epoch.
        adversarial: PGD adversarial training (an :class:`Adversarial`), or ``None``.
    """

    epochs: int
    batch_size: int = 128
    lr: float = 0.2
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "onecycle"
    pct_start: float = 0.25
    warmup_epochs: float = 0.0
    grad_clip: float | None = 0.5
    label_smoothing: float = 0.0
    jsd: bool = False
    jsd_weight: float = 12.0
    num_splits: int = 3
    seed: int = 0
    workers: int = 2
    amp: bool = True
    channels_last: bool = True
    compile: bool = False
    deterministic: bool = False
    val_every: int = 1
    progress: bool = True
    drop_last: bool = True
    adversarial: Adversarial | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "num_splits", "val_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if self.num_splits < 2:
            raise ValueError(f"num_splits must be >= 2, got {self.num_splits}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not 0 < self.pct_start < 1:
            raise ValueError(f"pct_start must be in (0, 1), got {self.pct_start!r}")
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0, got {self.workers!r}")
        if self.grad_clip is not None and self.grad_clip < 0:
            raise ValueError(f"grad_clip must be >= 0 or None, got {self.grad_clip!r}")
        if self.adversarial is not None and not isinstance(self.adversarial, Adversarial):
            raise TypeError(f"adversarial must be an Adversarial or None, got {self.adversarial!r}")
        if self.adversarial is not None and self.jsd:
            raise ValueError("adversarial training and the JSD loss cannot be combined (attack one view)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_options(cls, options: Mapping[str, Any], **overrides: Any) -> TrainConfig:
        """The config of a command's resolved options (``vars(args)`` with its defaults filled in).

        Each field takes the option of its name; a ``--no-X`` switch (``no_amp``, ``no_channels_last``,
        ``no_progress``) sets field ``X`` to its negation; ``--grad-clip 0`` is ``None`` (off). Fields
        with no option keep their defaults; ``overrides`` (e.g. ``adversarial=``, which the commands
        resolve from their ``--adv-*`` options) win over everything.

        Example:
            >>> c = TrainConfig.from_options({"epochs": 2, "lr": 0.1, "no_amp": True, "grad_clip": 0})
            >>> (c.epochs, c.lr, c.amp, c.grad_clip, c.batch_size)
            (2, 0.1, False, None, 128)
        """
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            if field.name in options:
                values[field.name] = options[field.name]
            elif f"no_{field.name}" in options:
                values[field.name] = not options[f"no_{field.name}"]
        if "grad_clip" in values:
            values["grad_clip"] = values["grad_clip"] or None
        return cls(**{**values, **overrides})


# ---------------------------------------------------------------------------------------------- seeds & dist
def seed_everything(seed: int) -> None:
    """Seed python, numpy, torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the legacy global RNG is what third-party code draws from
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),  # noqa: NPY002
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass(frozen=True)
class DistInfo:
    """The process's place in a DDP job (``world_size == 1`` without one)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device | str) -> tuple[DistInfo, torch.device]:
    """Join the ``torchrun`` job if there is one (``WORLD_SIZE > 1``): NCCL on CUDA, gloo on the CPU.

    Returns the :class:`DistInfo` and the process's device (``cuda:LOCAL_RANK`` on CUDA).
    """
    device = torch.device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), device
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank, world, local), device


class _WorkerSeeder:
    """DataLoader ``worker_init_fn``: distinct streams per DDP rank (the DataLoader shares one base seed
    across the ranks of a process group)."""

    def __init__(self, rank: int) -> None:
        self.rank = rank

    def __call__(self, worker_id: int) -> None:
        if self.rank:
            seed = (torch.initial_seed() + 1_000_003 * self.rank) % 2**63
            torch.manual_seed(seed)
            random.seed(seed)
            np.random.seed(seed % 2**32)  # noqa: NPY002


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images to float in ``[0, 1]``; float images unchanged."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


# ---------------------------------------------------------------------------------------------- sampling
class EpochSampler(Sampler[int]):
    """This process's share of an epoch's indices, a pure function of ``(seed, epoch)``.

    Args:
        size: dataset length.
        seed: run seed.
        rank, world_size: DDP position (indices are padded by repetition to a multiple of the world).
        shuffle: random permutation (else in order).
        indices_fn: ``(epoch, generator) -> sequence of indices`` replacing the permutation (a custom
            sampler, e.g. class-balanced with replacement); the generator is seeded from
            ``(seed, epoch)`` so the result is reproducible.
    """

    def __init__(
        self,
        size: int,
        seed: int,
        *,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        indices_fn: Callable[[int, torch.Generator], Sequence[int]] | None = None,
    ) -> None:
        self.size, self.seed, self.rank, self.world = int(size), int(seed), rank, world_size
        self.shuffle, self.indices_fn = shuffle, indices_fn
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _all(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        if self.indices_fn is not None:
            idx = [int(i) for i in self.indices_fn(self.epoch, g)]
            bad = [i for i in idx if not 0 <= i < self.size]
            if bad:
                raise ValueError(f"sampler_fn returned indices outside [0, {self.size}): {bad[:5]}")
            return idx
        if self.shuffle:
            return torch.randperm(self.size, generator=g).tolist()
        return list(range(self.size))

    def __iter__(self):
        idx = self._all()
        if self.world > 1 and idx:
            pad = (-len(idx)) % self.world
            idx = idx + idx[:pad]
            idx = idx[self.rank :: self.world]
        return iter(idx)

    def __len__(self) -> int:
        n = len(self._all()) if self.indices_fn is not None else self.size
        return math.ceil(n / self.world)


# ---------------------------------------------------------------------------------------------- augmentation
class Augmentation:
    """Which augmentation, where it runs, and the per-sample / per-batch transforms it implies.

    Args:
        kind: ``"none"``, ``"augmix"`` (torchvision v2 AugMix), ``"prime"``, ``"prime-public"`` (the
            public code's algorithm, :class:`~.public_prime.PublicPRIME`: per-batch
            draws, so always on the device batch), or ``"offline"`` (the dataset already yields augmented
            images, or a tuple of views ``(clean, aug_1, ...)`` for JSD).
        prime: the :class:`~prime_augment.PRIME` module (``kind="prime"``; use ``generator=None`` so
            DataLoader workers draw different augmentations) or the ``PublicPRIME`` one.
        placement: ``"auto"``, ``"device"`` or ``"workers"`` (see the module docstring).
        augmix_severity, augmix_all_ops: AugMix settings (the baseline: 3, off).
    """

    def __init__(
        self,
        kind: str = "none",
        *,
        prime: PRIME | None = None,
        placement: str = "auto",
        augmix_severity: int = 3,
        augmix_all_ops: bool = False,
    ) -> None:
        if kind not in AUGMENTATIONS:
            raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {kind!r}")
        if placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
        if kind == "prime" and not isinstance(prime, PRIME):
            raise TypeError(f"augment 'prime' needs a PRIME module as prime=, got {prime!r}")
        if kind == "prime-public" and not isinstance(prime, PublicPRIME):
            raise TypeError(f"augment 'prime-public' needs a PublicPRIME module as prime=, got {prime!r}")
        if kind == "prime-public" and placement == "workers":
            raise ValueError(
                "augment 'prime-public' draws its parameters once per batch, as the public code: it runs on "
                "the device batch (placement 'device' or 'auto'), not per image in the workers"
            )
        if kind == "augmix" and placement == "device":
            raise ValueError(
                "augment 'augmix' cannot run on the device batch: torchvision's AugMix draws one set of "
                "operations per call (the whole batch would share it); use placement 'workers' or 'auto'"
            )
        self.kind, self.prime, self.placement = kind, prime, placement
        self.augmix_severity, self.augmix_all_ops = augmix_severity, augmix_all_ops

    def resolve(self, device: torch.device) -> str:
        """The effective placement on ``device``."""
        if self.kind in ("none", "offline"):
            return "workers"
        if self.kind == "prime-public":
            return "device"
        if self.placement == "auto":
            return "device" if (self.kind == "prime" and device.type == "cuda") else "workers"
        return self.placement

    def _per_image(self) -> Callable:
        if self.kind == "augmix":
            return v2.AugMix(severity=self.augmix_severity, all_ops=self.augmix_all_ops)
        return v2.Compose([v2.ToDtype(torch.float32, scale=True), self.prime])

    def worker_transform(self, device: torch.device, jsd: bool, num_splits: int) -> Callable | None:
        """Transform appended to the geometric train transform in the workers (``None``: nothing)."""
        if self.kind in ("none", "offline") or self.resolve(device) == "device":
            return None
        aug = self._per_image()
        return JSDViews(aug, num_splits) if jsd else aug

    def on_device(self, x: Any, device: torch.device, jsd: bool, num_splits: int) -> torch.Tensor:
        """The float batch the model sees, from the loader's batch (a tensor, or a tuple of views)."""
        if isinstance(x, (tuple, list)):  # views made in the workers (or pre-generated): [clean; aug...]
            return torch.cat([to_float(v.to(device, non_blocking=True)) for v in x])
        x = to_float(x.to(device, non_blocking=True))
        if self.kind not in ("prime", "prime-public") or self.resolve(device) != "device":
            return x
        with torch.no_grad():
            return jsd_views(self.prime, x, num_splits) if jsd else self.prime(x)

    def describe(self, device: torch.device) -> dict[str, Any]:
        out: dict[str, Any] = {"augment": self.kind, "placement": self.resolve(device)}
        if self.kind == "augmix":
            out.update(augmix_severity=self.augmix_severity, augmix_all_ops=self.augmix_all_ops)
        if self.kind == "prime":
            p = self.prime
            out["prime"] = {
                "primitives": list(p.primitives),
                "strength": p.strength,
                "width": p.width,
                "depth": p.depth,
                "depth_mode": p.depth_mode,
                "alpha": p.alpha,
                "beta": p.beta,
            }
        if self.kind == "prime-public":
            out["prime_public"] = {"preset": self.prime.preset, "fir_tap": self.prime.fir_tap}
        return out


# ---------------------------------------------------------------------------------------------- optimisation
def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.SGD:
    """SGD with (Nesterov) momentum and weight decay on every parameter (as the method's code)."""
    return torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov and config.momentum > 0,
        weight_decay=config.weight_decay,
    )


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """The per-step LR schedule of ``config.schedule`` over ``epochs * steps_per_epoch`` steps."""
    total = max(1, config.epochs * steps_per_epoch)
    if config.schedule == "onecycle" and total >= 4:
        # at least two warm-up steps (OneCycleLR divides by the phase lengths)
        pct = min(0.5, max(config.pct_start, 2.0 / total))
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.lr, total_steps=total, pct_start=pct
        )
    if config.schedule in ("constant", "onecycle"):  # a one-cycle of < 4 steps degenerates to constant
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    warm = round(config.warmup_epochs * steps_per_epoch)

    def linear(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total - step) / max(1, total - warm))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, linear)


# ---------------------------------------------------------------------------------------------- trainer
@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns."""

    model: nn.Module
    history: list[dict[str, Any]]
    best: dict[str, Any] | None
    out_dir: Path | None
    #: ``fit(resume=True)`` found the run already finished (all epochs and ``model.pt``): nothing was done
    already_complete: bool = False


class Trainer:
    """Train a classifier on ``[0, 1]`` images (see the module docstring).

    Args:
        model: the classifier (normalisation inside); moved to ``device``.
        train_set: dataset of ``(untransformed image, label)``.
        train_transform: geometric per-sample transform ending in a uint8 image (or a tuple of images
            for pre-generated views, e.g. offline augmentation).
        config: :class:`TrainConfig`.
        augmentation: :class:`Augmentation`.
        device: the device (``cuda:LOCAL_RANK`` is chosen under ``torchrun``).
        out_dir: run directory (``None``: nothing is written and resuming is impossible).
        arch, num_classes: recorded in the model files (defaults read from the model when possible).
        sampler_fn: ``(epoch, generator) -> indices`` custom sampling hook.
        validate_fn: ``(model) -> dict of metrics``, run in eval mode without gradients, on rank 0 only.
        select_metric: a key of ``validate_fn``'s dict; the best value (max) keeps its weights in best.pt.
        on_step: ``(trainer, epoch, step) -> None`` after every optimisation step (``trainer.bar`` is the
            epoch's progress bar, ``trainer.saved_epoch`` the epoch of the last checkpoint written or read).
        record: extra entries saved in the model files and the checkpoint (e.g. the run's config).
    """

    def __init__(
        self,
        model: nn.Module,
        train_set: Dataset,
        train_transform: Callable | None,
        config: TrainConfig,
        augmentation: Augmentation | None = None,
        *,
        device: torch.device | str = "cpu",
        out_dir: str | os.PathLike | None = None,
        arch: str = "custom",
        num_classes: int | None = None,
        sampler_fn: Callable[[int, torch.Generator], Sequence[int]] | None = None,
        validate_fn: Callable[[nn.Module], dict[str, float]] | None = None,
        select_metric: str | None = None,
        on_step: Callable[[Trainer, int, int], None] | None = None,
        record: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        if select_metric is not None and validate_fn is None:
            raise ValueError("select_metric needs a validate_fn")
        self.config = config
        self.augmentation = augmentation or Augmentation("none")
        if config.jsd and self.augmentation.kind == "none":
            raise ValueError(
                "jsd needs augmented views: use augment 'augmix' or 'prime' (or 'offline' views)"
            )
        self.dist, self.device = init_distributed(device)
        if self.dist.world_size > 1 and config.batch_size % self.dist.world_size:
            raise RunError(
                f"batch_size {config.batch_size} is not divisible by the {self.dist.world_size} DDP processes"
            )
        self.model = model
        self.train_set = train_set
        self.train_transform = train_transform
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.arch, self.num_classes = arch, num_classes
        self.sampler_fn, self.validate_fn, self.select_metric = sampler_fn, validate_fn, select_metric
        self.on_step = on_step
        self.record = dict(record or {})
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        #: the epoch of the checkpoint last written or resumed from (``None``: none yet)
        self.saved_epoch: int | None = None
        self.bar: tqdm | None = None

    # -------------------------------------------------------------- paths
    @property
    def checkpoint_path(self) -> Path | None:
        return self.out_dir / "checkpoint.pt" if self.out_dir is not None else None

    def _log(self, msg: str) -> None:
        if not self.dist.is_main:
            return
        tqdm.write(msg)
        if self.out_dir is not None:
            with open(self.out_dir / "train.log", "a") as f:
                f.write(msg + "\n")

    # -------------------------------------------------------------- building
    def _loader(self, epoch: int, sampler: EpochSampler) -> DataLoader:
        cfg = self.config
        sampler.set_epoch(epoch)
        extra = self.augmentation.worker_transform(self.device, cfg.jsd, cfg.num_splits)
        tf = self.train_transform if extra is None else _compose(self.train_transform, extra)
        g = torch.Generator().manual_seed((cfg.seed * 7919 + epoch) * 1009 + self.dist.rank)
        return DataLoader(
            MapDataset(self.train_set, tf),
            batch_size=cfg.batch_size // self.dist.world_size,
            sampler=sampler,
            num_workers=cfg.workers,
            pin_memory=self.device.type == "cuda",
            drop_last=cfg.drop_last,
            generator=g,
            worker_init_fn=_WorkerSeeder(self.dist.rank),
            persistent_workers=False,
            prefetch_factor=4 if cfg.workers > 0 else None,
        )

    def _steps_per_epoch(self, sampler: EpochSampler) -> int:
        per = self.config.batch_size // self.dist.world_size
        n = len(sampler)
        steps = n // per if self.config.drop_last else math.ceil(n / per)
        if steps < 1:
            raise RunError(
                f"the training set ({len(self.train_set)} images) is smaller than one batch of {per}: lower "
                "--batch-size"
            )
        return steps

    # -------------------------------------------------------------- checkpoint
    def _state(self, epoch: int, model: nn.Module, opt, sched) -> dict[str, Any]:
        rng = _rng_state()
        if self.dist.enabled:
            states: list[Any] = [None] * self.dist.world_size
            dist.all_gather_object(states, rng)
        else:
            states = [rng]
        return {
            "format": CHECKPOINT_FORMAT,
            "epoch": epoch,
            "model": {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()},
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "rng": states,
            "world_size": self.dist.world_size,
            "history": self.history,
            "best": self.best,
            "config": self.config.to_dict(),
            "record": self.record,
        }

    def _load_checkpoint(self, model: nn.Module, opt, sched) -> int:
        path = self.checkpoint_path
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:  # torch raises many types for a truncated or foreign file
            raise RunError(
                f"--resume: cannot read the checkpoint {path} ({short_error(e)}); it is damaged: "
                "delete it to start the run again"
            ) from e
        keys = {"epoch", "model", "optimizer", "scheduler", "rng", "world_size", "history", "best", "config"}
        if not (isinstance(ckpt, dict) and ckpt.get("format") == CHECKPOINT_FORMAT and keys <= ckpt.keys()):
            raise RunError(f"--resume: {path} is not a prime-augment training checkpoint")
        old, new = ckpt["config"], self.config.to_dict()
        keys = [k for k in new if k not in ("progress", "workers", "val_every") and old.get(k) != new[k]]
        if keys:
            diffs = ", ".join(f"{k}: {old.get(k)!r} -> {new[k]!r}" for k in keys)
            raise RunError(f"--resume {path}: the run was started with other settings ({diffs})")
        if ckpt["world_size"] != self.dist.world_size:
            raise RunError(
                f"--resume {path}: the run used {ckpt['world_size']} processes, this one "
                f"{self.dist.world_size}"
            )
        unwrap(model).load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        _set_rng_state(ckpt["rng"][self.dist.rank])
        self.history = list(ckpt["history"])
        self.best = ckpt["best"]
        self.saved_epoch = int(ckpt["epoch"])
        return self.saved_epoch

    def _save(self, epoch: int, model: nn.Module, opt, sched) -> None:
        with sigint_deferred():  # Ctrl+C waits for the checkpoint and the log: they stay whole and agree
            state = self._state(epoch, model, opt, sched)  # collective under DDP: every rank calls it
            if self.dist.is_main and self.out_dir is not None:
                atomic_torch_save(state, self.checkpoint_path)
                lines = "".join(json.dumps(h, sort_keys=True) + "\n" for h in self.history)
                write_text(self.out_dir / "log.jsonl", lines)
            self.saved_epoch = epoch

    def _model_file(self, model: nn.Module, name: str, **extra: Any) -> None:
        if not (self.dist.is_main and self.out_dir is not None):
            return
        base = unwrap(model)
        n_cls = self.num_classes if self.num_classes is not None else _guess_classes(base)
        atomic_torch_save(model_record(base, self.arch, n_cls, **self.record, **extra), self.out_dir / name)

    # -------------------------------------------------------------- the loop
    def fit(self, resume: bool = False) -> TrainResult:
        """Train for ``config.epochs`` epochs (continuing a checkpoint when ``resume``).

        Resuming a finished run (every epoch in the checkpoint and ``model.pt`` written) does nothing and
        returns with ``already_complete``. Raises :class:`RunError` for a checkpoint that cannot be read or
        was written with other settings, and for a training set smaller than one batch.
        """
        cfg, device, info = self.config, self.device, self.dist
        if cfg.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it for determinism
            torch.use_deterministic_algorithms(True)
        if self.out_dir is not None and info.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            if not resume and self.checkpoint_path.exists():
                raise FileExistsError(
                    f"{self.checkpoint_path} exists: pass --resume to continue that run, or use a new --out"
                )
        model = self.model.to(device)
        cl = cfg.channels_last and device.type == "cuda"
        if cl:
            model = model.to(memory_format=torch.channels_last)
        opt = build_optimizer(model, cfg)
        sampler = EpochSampler(
            len(self.train_set),
            cfg.seed,
            rank=info.rank,
            world_size=info.world_size,
            indices_fn=self.sampler_fn,
        )
        steps = self._steps_per_epoch(sampler)
        sched = build_scheduler(opt, cfg, steps)
        start = 0
        if resume and self.checkpoint_path is not None and self.checkpoint_path.exists():
            start = self._load_checkpoint(model, opt, sched)
            if start >= cfg.epochs and (self.out_dir / "model.pt").exists():
                return TrainResult(model, self.history, self.best, self.out_dir, already_complete=True)
            self._log(f"resumed from {self.checkpoint_path} after epoch {start}/{cfg.epochs}")
        else:
            seed_everything(cfg.seed + 1_000_003 * info.rank)  # per-process augmentation streams
        net: nn.Module = model
        if info.enabled:
            net = nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )
        if cfg.compile:
            net = torch.compile(net)
        criterion = (
            JSDLoss(cfg.num_splits, cfg.jsd_weight, label_smoothing=cfg.label_smoothing) if cfg.jsd else None
        )
        amp = cfg.amp and device.type == "cuda"
        if start == 0:
            self._log(
                f"training {self.arch} on {len(self.train_set)} images for {cfg.epochs} epochs, "
                f"{steps} steps/epoch, "
                f"device {device}, {info.world_size} process(es), {self.augmentation.describe(device)}"
                + (f", adversarial: {cfg.adversarial.describe()}" if cfg.adversarial is not None else "")
            )
        for epoch in range(start, cfg.epochs):
            stats = self._epoch(net, model, epoch, sampler, opt, sched, criterion, amp, cl, steps)
            if self.validate_fn is not None and ((epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs):
                stats.update(self._validate(model, epoch))
            self.history.append(stats)
            self._log(
                f"epoch {epoch + 1}/{cfg.epochs}: loss {stats['loss']:.4f} "
                f"acc {stats['train_accuracy']:.2f}% "
                f"lr {stats['lr']:.4g} {stats['images_per_s']:.0f} img/s"
                + "".join(f" {k} {v:.2f}" for k, v in stats.items() if k.startswith("val_"))
            )
            self._save(epoch + 1, model, opt, sched)
        self._model_file(model, "model.pt", epochs=cfg.epochs)
        if info.enabled:
            dist.barrier()
        return TrainResult(model, self.history, self.best, self.out_dir)

    def _validate(self, model: nn.Module, epoch: int) -> dict[str, Any]:
        metrics: dict[str, Any] = {}
        if self.dist.is_main:
            was = model.training
            model.eval()
            with torch.no_grad():
                metrics = {f"val_{k}": float(v) for k, v in self.validate_fn(model).items()}
            model.train(was)
            if self.select_metric is not None:
                key = f"val_{self.select_metric}"
                if key not in metrics:
                    raise KeyError(f"validate_fn returned no {self.select_metric!r} (got {sorted(metrics)})")
                if self.best is None or metrics[key] > self.best["value"]:
                    self.best = {"epoch": epoch + 1, "metric": self.select_metric, "value": metrics[key]}
                    self._model_file(model, "best.pt", epochs=epoch + 1, selection=self.best)
        if self.dist.enabled:
            box = [metrics, self.best]
            dist.broadcast_object_list(box, src=0)
            metrics, self.best = box
        return metrics

    def _attack(
        self, model: nn.Module, inputs: torch.Tensor, y: torch.Tensor, epoch: int, step: int, amp: bool
    ) -> torch.Tensor:
        """The PGD adversarial of the batch (the bare model: no DDP gradient hooks fire)."""
        adv, cfg = self.config.adversarial, self.config
        g = _attack_generator(self.device, cfg.seed, epoch, step, self.dist.rank)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=amp):
            return pgd(
                model,
                inputs,
                y,
                norm=adv.norm,
                eps=adv.eps,
                step_size=adv.resolved_step_size(),
                steps=adv.steps,
                random_start=adv.random_start,
                generator=g,
                model_mode=adv.model_mode,
            )

    def _epoch(self, net, model, epoch, sampler, opt, sched, criterion, amp, cl, steps) -> dict[str, Any]:
        cfg, device = self.config, self.device
        net.train()
        loader = self._loader(epoch, sampler)
        tot = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, count
        t0 = time.perf_counter()
        bar = tqdm(
            loader,
            total=steps,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            leave=False,
            disable=not (cfg.progress and self.dist.is_main),
            dynamic_ncols=True,
        )
        self.bar, smooth, shown = bar, SmoothedLoss(), -math.inf
        read_every = 0.0 if device.type == "cpu" else PROGRESS_READ_S  # no per-step host sync on CUDA
        for step, (x, y) in enumerate(bar):
            y = y.to(device, non_blocking=True)
            inputs = self.augmentation.on_device(x, device, cfg.jsd, cfg.num_splits)
            if cfg.adversarial is not None:
                inputs = self._attack(model, inputs, y, epoch, step, amp)
            if cl:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits = net(inputs)
            logits = logits.float()
            b = y.shape[0]
            if criterion is not None:
                loss = criterion(logits, y)
            else:
                loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            with torch.no_grad():
                tot += torch.stack(
                    [
                        loss.detach().double() * b,
                        (logits[:b].argmax(1) == y).sum().double(),
                        torch.tensor(float(b), dtype=torch.float64, device=device),
                    ]
                )
            if not bar.disable:
                smooth.update(loss)
                if time.monotonic() - shown >= read_every:
                    bar.set_postfix(loss=f"{smooth.value():.3f}", refresh=False)  # shown at the next refresh
                    shown = time.monotonic()
            if self.on_step is not None:
                self.on_step(self, epoch, step)
        if self.dist.enabled:
            dist.all_reduce(tot)
        loss_sum, correct, count = tot.tolist()
        dt = time.perf_counter() - t0
        return {
            "epoch": epoch + 1,
            "loss": loss_sum / max(count, 1),
            "train_accuracy": 100.0 * correct / max(count, 1),
            "lr": opt.param_groups[0]["lr"],
            "seconds": dt,
            "images_per_s": count / max(dt, 1e-9),
        }


class SmoothedLoss:
    """The progress bar's loss: an exponential moving average of every step's loss, kept on its device.

    :meth:`update` is an in-place operation on the device (no host sync); :meth:`value` reads the
    average, bias-corrected for the first steps as Adam's moments are (a host sync on an accelerator).
    ``beta = 0.98`` averages over about the last 50 steps.

    Example:
        >>> s = SmoothedLoss(beta=0.5)
        >>> for loss in (4.0, 2.0):
        ...     s.update(torch.tensor(loss))
        >>> round(s.value(), 4)  # (0.5 * 0.5 * 4 + 0.5 * 2) / (1 - 0.5 ** 2)
        2.6667
    """

    def __init__(self, beta: float = 0.98) -> None:
        self.beta, self.steps = beta, 0
        self.avg: torch.Tensor | None = None

    def update(self, loss: torch.Tensor) -> None:
        x = loss.detach().to(torch.float64)
        if self.avg is None:
            self.avg = torch.zeros_like(x)
        self.avg.mul_(self.beta).add_(x, alpha=1 - self.beta)
        self.steps += 1

    def value(self) -> float:
        if self.avg is None:
            return math.nan
        return float(self.avg) / (1 - self.beta**self.steps)


#: seconds between two readings of the smoothed loss on an accelerator (on the CPU: every step)
PROGRESS_READ_S = 1.0


def _attack_generator(device: torch.device, seed: int, epoch: int, step: int, rank: int) -> torch.Generator:
    """The random-start generator of one training step: a function of ``(seed, epoch, step, rank)``."""
    key = ((seed * 1_000_003 + epoch) * 1_000_033 + step) * 1009 + rank
    return torch.Generator(device=device).manual_seed(key % 2**63)


def _compose(first: Callable | None, second: Callable) -> Callable:
    return second if first is None else v2.Compose([first, second])


def _guess_classes(model: nn.Module) -> int:
    for m in reversed(list(model.modules())):
        if isinstance(m, nn.Linear):
            return m.out_features
    raise ValueError("cannot tell the number of classes of the model: pass num_classes=")


def write_run_config(out_dir: str | os.PathLike, config: dict[str, Any]) -> None:
    """``config.json`` of a run directory (atomic)."""
    write_json(Path(out_dir) / "config.json", config)
