"""``prime-augment train``: train a classifier with PRIME, AugMix or no augmentation.

Also the method's other training systems: PGD adversarial training (``--adversarial linf|l2``; AT, and
AT->FT / AT->DA_PRIME by ``--weights`` of an AT run), extra pre-generated training images such as
DeepAugment's (``--extra-train-dir``, with PRIME on top: DA+PRIME) and the pre-processing baselines
(``--preprocess gray|lowpass:K``, applied inside the model to every image it sees, in training after the
augmentation, and in every evaluation of the saved model).

The run directory (``--out``) receives ``config.json`` (the resolved options, versions, device, as the
run started), ``checkpoint.pt`` (atomic, every epoch; ``--resume`` continues a killed run with the same
results), ``train.log`` and ``log.jsonl`` (per-epoch metrics), the final ``model.pt`` and, with
``--corruptions-dir``, the evaluation (``eval/results.json``, ``results.md``, plots). Ctrl+C prints what
was kept and the ``--resume`` command (exit status 130).
Multi-GPU: ``torchrun --nproc_per_node N -m prime_augment train ...`` (``--batch-size`` is global).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ...attacks import MODEL_MODES, NORMS
from ...presets import PRESETS
from ...prime import DEPTH_MODES, PRIME, PRIMITIVES
from .._common import (
    CommandExit,
    PlainHelpFormatter,
    comma_subset,
    environment,
    fraction,
    nonneg_float,
    nonneg_int,
    number,
    open_unit,
    parse_with_config,
    positive_float,
    positive_int,
    resolve_device,
)
from .data import DATASETS, ArrayDataset, DataSpec, build_data, union_train_set
from .engine import (
    PLACEMENTS,
    SCHEDULES,
    Adversarial,
    Augmentation,
    RunError,
    TrainConfig,
    Trainer,
    seed_everything,
    write_run_config,
)
from .models import ARCHS, PREPROCESS_HELP, build_model, describe_preprocess, parse_preprocess
from .public_prime import FIR_TAPS, PublicPRIME

EXAMPLE = """Example (CIFAR-10, ResNet-18, PRIME on the GPU batch, evaluated on a CIFAR-10-C folder):
  prime-augment train --dataset cifar10 --data-dir ~/data --download --arch cifar_resnet18 \\
      --augment prime --epochs 30 --device cuda --out runs/c10_prime --corruptions-dir ~/data/CIFAR-10-C
Resume a killed run: the same command with --resume.  Numpy arrays: --dataset numpy --data-dir DIR
({train,test}_{images,labels}.npy).  Ablation: --primitives spectral,spatial.
Offline PRIME (k pre-generated copies per image): --offline-copies 10.
Adversarial training (PGD-7, l-inf 8/255), then PRIME on the robust weights (AT -> DA_PRIME):
  prime-augment train ... --adversarial linf --adv-eps 8/255 --adv-steps 7 --out runs/c10_at
  prime-augment train ... --weights runs/c10_at/model.pt --augment prime --out runs/c10_at_prime
DeepAugment images + PRIME (DA+PRIME): --extra-train-dir ~/data/deepaugment/EDSR ~/data/deepaugment/CAE
Pre-processing baselines: --preprocess gray, --preprocess lowpass:16 (with --augment prime: PRIME first).
"""

#: defaults of --adv-eps by norm (Madry et al.'s CIFAR-10 radii, in [0, 1] pixel units)
ADV_EPS_DEFAULT = {"linf": 8 / 255, "l2": 0.5}
ADV_STEPS_DEFAULT = 7

#: defaults by task: (lr, weight decay, batch, one-cycle warm-up fraction, grad clip), from the method's code
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "small": {"lr": 0.2, "weight_decay": 5e-4, "batch_size": 128, "pct_start": 0.25, "grad_clip": 0.5},
    "imagenet100": {"lr": 0.2, "weight_decay": 1e-4, "batch_size": 256, "pct_start": 0.25, "grad_clip": 0.5},
    "imagenet": {"lr": 0.01, "weight_decay": 1e-4, "batch_size": 256, "pct_start": 0.1, "grad_clip": 0.0},
    "large": {"lr": 0.1, "weight_decay": 1e-4, "batch_size": 256, "pct_start": 0.25, "grad_clip": 0.0},
}


def add_adversarial_arguments(p: argparse.ArgumentParser) -> None:
    """The ``--adversarial`` / ``--adv-*`` options (shared by ``train`` and ``filling-level``)."""
    g = p.add_argument_group(
        "adversarial training (PGD on every batch, after the augmentation; Madry et al. 2018)"
    )
    g.add_argument(
        "--adversarial",
        choices=("none", *NORMS),
        default="none",
        help="train on the PGD adversarials of the batches in this norm's ball (default none)",
    )
    g.add_argument(
        "--adv-eps",
        type=fraction,
        help="radius in [0, 1] pixel units, fractions accepted (default 8/255 for linf, 0.5 for l2)",
    )
    g.add_argument("--adv-steps", type=positive_int, help=f"PGD steps (default {ADV_STEPS_DEFAULT})")
    g.add_argument("--adv-step-size", type=fraction, help="PGD step size (default 2.5 * eps / steps)")
    g.add_argument(
        "--adv-no-random-start", action="store_true", help="start PGD at the image, not a random point"
    )
    g.add_argument(
        "--adv-bn",
        choices=MODEL_MODES,
        default="train",
        help="batch norm during the attack: train = batch statistics like the training step, running "
        "statistics restored afterwards (default); eval = the running statistics",
    )


def resolve_adversarial(cfg: dict[str, Any]) -> Adversarial | None:
    """Fill in the ``--adv-*`` defaults in ``cfg`` (in place) and return the engine's config."""
    if cfg["adversarial"] == "none":
        given = [k for k in ("adv_eps", "adv_steps", "adv_step_size") if cfg.get(k) is not None]
        if given or cfg.get("adv_no_random_start"):
            names = [f"--{k.replace('_', '-')}" for k in given] or ["--adv-no-random-start"]
            raise SystemExit(f"{', '.join(names)} needs --adversarial linf or l2")
        return None
    if cfg["adv_eps"] is None:
        cfg["adv_eps"] = ADV_EPS_DEFAULT[cfg["adversarial"]]
    if cfg["adv_steps"] is None:
        cfg["adv_steps"] = ADV_STEPS_DEFAULT
    try:
        return Adversarial(
            norm=cfg["adversarial"],
            eps=cfg["adv_eps"],
            steps=cfg["adv_steps"],
            step_size=cfg["adv_step_size"],
            random_start=not cfg["adv_no_random_start"],
            model_mode=cfg["adv_bn"],
        )
    except ValueError as e:
        raise SystemExit(f"--adversarial {cfg['adversarial']}: {e}") from e


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="prime-augment train",
        description=__doc__,
        epilog=EXAMPLE,
        formatter_class=PlainHelpFormatter,
    )
    p.add_argument("--config", help="YAML file of option defaults (command-line values win)")
    for add_group in (
        _add_data_arguments,
        _add_model_arguments,
        _add_augmentation_arguments,
        _add_optimisation_arguments,
        _add_system_arguments,
        _add_evaluation_arguments,
        add_adversarial_arguments,
    ):
        add_group(p)
    return p


def _add_data_arguments(p: argparse.ArgumentParser) -> None:
    d = p.add_argument_group("data")
    d.add_argument("--dataset", required=True, choices=DATASETS, help="the training data (see --data-dir)")
    d.add_argument(
        "--data-dir",
        required=True,
        help="CIFAR root; numpy: {train,test}_{images,labels}.npy; "
        "folder/imagenet/imagenet100: train/<class>/, val/<class>/",
    )
    d.add_argument("--download", action="store_true", help="download CIFAR-10/100 if missing")
    d.add_argument(
        "--class-list", help="file of class folder names (overrides the packaged ImageNet-100 list)"
    )
    d.add_argument(
        "--image-size", type=positive_int, help="model input size (default: 32 CIFAR, 224 ImageNet)"
    )
    d.add_argument("--train-subset", type=positive_int, help="train on a random subset of that many images")
    d.add_argument(
        "--extra-train-dir",
        nargs="+",
        metavar="DIR",
        help="extra pre-generated training images (e.g. DeepAugment's), joined to the training set: "
        "DIR/<class>/* with the dataset's class names, or DIR/images.npy + labels.npy of the same size",
    )
    d.add_argument("--val-subset", type=positive_int, help="evaluate on a random subset of that many images")
    d.add_argument(
        "--workers", type=nonneg_int, default=min(8, os.cpu_count() or 1), help="DataLoader workers"
    )


def _add_model_arguments(p: argparse.ArgumentParser) -> None:
    m = p.add_argument_group("model")
    m.add_argument(
        "--arch", choices=ARCHS, help="default: cifar_resnet18 (32 px), resnet18 (IN-100), resnet50"
    )
    m.add_argument(
        "--weights",
        help="local weights to fine-tune from: a prime-augment model.pt or a torchvision state dict "
        "(AT -> FT / AT -> DA_PRIME: the model.pt of an --adversarial run)",
    )
    m.add_argument(
        "--preprocess",
        default="none",
        help=f"fixed input pre-processing inside the model, train and test: {PREPROCESS_HELP}",
    )


def _add_augmentation_arguments(p: argparse.ArgumentParser) -> None:
    a = p.add_argument_group("augmentation")
    a.add_argument(
        "--augment",
        choices=("none", "augmix", "prime", "prime-public"),
        default="none",
        help="augmentation (default none); prime-public: the method's public code's algorithm (per-batch "
        "draws, the FIR tap of --public-fir-tap; a fidelity baseline, see docs/experiments.md)",
    )
    a.add_argument(
        "--public-fir-tap",
        choices=FIR_TAPS,
        default="public",
        help="prime-public: the FIR identity tap at ceil(K/2) as the public code (a one-pixel shift per "
        "spectral step) or at the centre",
    )
    a.add_argument("--jsd", action="store_true", help="add the JSD consistency loss (3 views, lambda 12)")
    a.add_argument(
        "--jsd-weight", type=nonneg_float, default=12.0, help="lambda of the JSD loss (default 12)"
    )
    a.add_argument("--primitives", default="spectral,spatial,color", help="PRIME primitives (ablation)")
    a.add_argument("--preset", choices=tuple(PRESETS), help="PRIME preset (default: the dataset's)")
    a.add_argument(
        "--strength", type=nonneg_float, default=1.0, help="PRIME strength multiplier (the method's alpha)"
    )
    a.add_argument(
        "--depth-mode",
        choices=DEPTH_MODES,
        default="identity",
        help="PRIME chain law: identity (each of the depth steps drawn from {Id, primitives}: the method's "
        "Algorithm 3, the default), uniform (a length U{1..depth} of non-identity steps: the public "
        "code's law), fixed",
    )
    a.add_argument(
        "--augment-on",
        choices=PLACEMENTS,
        default="auto",
        help="auto: PRIME on the GPU batch with CUDA, in the DataLoader workers otherwise",
    )
    a.add_argument(
        "--offline-copies",
        type=nonneg_int,
        default=0,
        help="k > 0: pre-generate k PRIME copies per image and draw among them (array datasets)",
    )
    a.add_argument(
        "--augmix-severity", type=number(int, 1, 10), default=3, help="AugMix severity (the baseline: 3)"
    )


def _add_optimisation_arguments(p: argparse.ArgumentParser) -> None:
    o = p.add_argument_group("optimisation (defaults by task: the method's code)")
    o.add_argument("--epochs", type=positive_int, required=True, help="number of epochs")
    o.add_argument("--batch-size", type=positive_int, help="global batch (default 128 CIFAR, 256 ImageNet)")
    o.add_argument(
        "--lr", type=positive_float, help="peak LR (default 0.2 CIFAR / IN-100, 0.01 ImageNet fine-tuning)"
    )
    o.add_argument("--weight-decay", type=nonneg_float, help="default 5e-4 CIFAR, 1e-4 ImageNet")
    o.add_argument("--momentum", type=open_unit, default=0.9, help="SGD (Nesterov) momentum")
    o.add_argument("--schedule", choices=SCHEDULES, default="onecycle", help="per-step LR schedule")
    o.add_argument("--pct-start", type=open_unit, help="one-cycle warm-up fraction (0.25; ImageNet 0.1)")
    o.add_argument("--warmup-epochs", type=nonneg_float, default=0.0, help="warm-up of the linear schedule")
    o.add_argument("--grad-clip", type=nonneg_float, help="max gradient norm, 0 = off (0.5; ImageNet off)")
    o.add_argument("--label-smoothing", type=number(float, 0, 1), default=0.0, help="of the cross-entropy")
    o.add_argument(
        "--seed", type=nonneg_int, default=0, help="seeds the model, the data order and the augmentation"
    )


def _add_system_arguments(p: argparse.ArgumentParser) -> None:
    s = p.add_argument_group("system")
    s.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    s.add_argument(
        "--threads",
        type=positive_int,
        help="torch threads of the training process (default: on the CPU, the cores left after the "
        "--workers, at least 1; on CUDA, torch's default)",
    )
    s.add_argument("--out", required=True, help="run directory")
    s.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its checkpoint, with the same options (others are refused); "
        "a finished run is left as it is: a line says it is complete and the exit status is 0 (with "
        "--corruptions-dir, a missing evaluation is done)",
    )
    s.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    s.add_argument("--no-channels-last", action="store_true", help="no channels-last memory format on CUDA")
    s.add_argument("--compile", action="store_true", help="torch.compile the model")
    s.add_argument(
        "--deterministic", action="store_true", help="deterministic kernels (exact resume on CUDA)"
    )
    s.add_argument("--no-progress", action="store_true", help="no progress bars")


def _add_evaluation_arguments(p: argparse.ArgumentParser) -> None:
    e = p.add_argument_group("evaluation after training")
    e.add_argument("--corruptions-dir", help="evaluate on this corruption set into RUN_DIR/eval")
    e.add_argument("--eval-batch-size", type=positive_int, default=256, help="evaluation batch size")
    e.add_argument("--mce-baseline", help="results.json of a baseline run to normalise the mCE by (IN-100)")


#: options outside the engine's TrainConfig that change what a resumed run trains (the engine checks its own)
CHECKED_ON_RESUME = (
    "arch",
    "preprocess",
    "extra_train_dir",
    "train_subset",
    "augment",
    "primitives",
    "preset",
    "depth_mode",
)


def task_of(spec: DataSpec) -> str:
    if spec.name in ("imagenet", "imagenet100"):
        return spec.name
    return spec.family


def default_arch(spec: DataSpec) -> str:
    if spec.family == "small":
        return "cifar_resnet18"
    return "resnet18" if spec.name in ("imagenet100", "folder") else "resnet50"


def default_preset(spec: DataSpec) -> str:
    if spec.name in PRESETS:
        return spec.name
    return "cifar10" if spec.family == "small" else "imagenet"


def parse_primitives(text: str) -> tuple[str, ...]:
    return tuple(comma_subset(text, "primitives", PRIMITIVES))


def load_weights(model: torch.nn.Module, path: str) -> None:
    """Load a prime-augment model file or a torchvision state dict (the classifier layer may differ)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise SystemExit(f"--weights {path}: cannot load ({e})") from e
    net = model.net
    if isinstance(obj, dict) and obj.get("format") == "prime-augment-model/1":
        state = {k.removeprefix("1."): v for k, v in obj["state_dict"].items() if k.startswith("1.")}
    elif isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state = dict(obj)
    else:
        raise SystemExit(f"--weights {path}: expected a prime-augment model file or a state dict")
    own = net.state_dict()
    skipped = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    state = {k: v for k, v in state.items() if k not in skipped}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if k not in skipped]:
        raise SystemExit(
            f"--weights {path}: does not fit the architecture "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    if skipped:
        print(f"--weights: re-initialised {skipped} (shape differs: new number of classes)", file=sys.stderr)


def resolve(args: argparse.Namespace, spec: DataSpec) -> dict[str, Any]:
    """Fill in the task defaults; the returned dict is the run's resolved config."""
    task = task_of(spec)
    defaults = TASK_DEFAULTS[task]
    cfg = vars(args).copy()
    for k, v in defaults.items():
        if cfg.get(k) is None:
            cfg[k] = v
    cfg["arch"] = cfg["arch"] or default_arch(spec)
    cfg["preset"] = cfg["preset"] or default_preset(spec)
    cfg["task"] = task
    cfg["primitives"] = list(parse_primitives(cfg["primitives"]))
    if cfg["augment"] == "prime-public" and cfg["augment_on"] == "workers":
        raise SystemExit(
            "--augment prime-public draws once per batch: it runs on the device batch, "
            "not in --augment-on workers"
        )
    if cfg["offline_copies"] and cfg["augment"] != "prime":
        raise SystemExit("--offline-copies needs --augment prime")
    if cfg["jsd"] and cfg["augment"] == "none":
        raise SystemExit("--jsd needs --augment augmix or prime")
    try:
        cfg["preprocess"] = parse_preprocess(cfg["preprocess"])
    except ValueError as e:
        raise SystemExit(str(e)) from e
    cfg["extra_train_dir"] = [str(Path(d).expanduser().resolve()) for d in cfg["extra_train_dir"] or []]
    adv = resolve_adversarial(cfg)
    if adv is not None and cfg["jsd"]:
        raise SystemExit("--adversarial and --jsd cannot be combined")
    if task == "imagenet" and not cfg["weights"]:
        print(
            "note: the method fine-tunes ImageNet models from pretrained weights (--weights FILE)",
            file=sys.stderr,
        )
    return cfg


def make_prime(cfg: dict[str, Any]) -> PRIME:
    return PRIME.from_preset(
        cfg["preset"],
        primitives=tuple(cfg["primitives"]),
        strength=cfg["strength"],
        depth_mode=cfg.get("depth_mode", "identity"),
    )


def train_config(cfg: dict[str, Any]) -> TrainConfig:
    """The engine's config of the resolved options, built once per run (a bad value is the user's)."""
    try:
        return TrainConfig.from_options(cfg, adversarial=resolve_adversarial(dict(cfg)))
    except ValueError as e:
        raise SystemExit(str(e)) from e


def _interrupted(done: int | None, cfg: dict[str, Any], argv: Sequence[str]) -> CommandExit:
    """Ctrl+C: what the run directory keeps (``done``: the last checkpoint's epoch) and the command that
    continues it (status 130)."""
    if (Path(cfg["out"]) / "model.pt").exists() and done == cfg["epochs"]:
        kept = f"training is complete ({done}/{cfg['epochs']} epochs, model.pt), the evaluation is not"
    elif done:
        kept = f"kept {Path(cfg['out']) / 'checkpoint.pt'} after epoch {done}/{cfg['epochs']}"
    else:
        kept = "no epoch finished, nothing kept"
    return CommandExit(f"interrupted: {kept}; continue with: {resume_command(argv)}", status=130)


def resume_command(argv: Sequence[str]) -> str:
    """The command line that resumes the run of ``prime-augment train ARGV``."""
    return shlex.join(["prime-augment", "train", *argv, *([] if "--resume" in argv else ["--resume"])])


def run(cfg: dict[str, Any], spec: DataSpec, device: torch.device, argv: Sequence[str] | None = None) -> Path:
    """Train (and evaluate) with a resolved config; returns the run directory.

    ``argv`` (the command's arguments, default ``sys.argv[1:]``) is quoted in the ``--resume`` command
    that Ctrl+C prints (:class:`CommandExit`, status 130).
    """
    out = Path(cfg["out"])
    argv = list(sys.argv[1:] if argv is None else argv)
    model = _model(cfg, spec)
    config = train_config(cfg)
    train_set, aug = _augmented_training_set(cfg, _training_set(cfg, spec), device)
    trainer = None
    try:
        trainer = Trainer(
            model,
            train_set,
            spec.train_transform,
            config,
            aug,
            device=device,
            out_dir=out,
            arch=cfg["arch"],
            num_classes=spec.num_classes,
            record=_record(cfg, spec, config),
        )
        result = trainer.fit(resume=cfg["resume"])
    except RunError as e:
        raise SystemExit(str(e)) from e
    except KeyboardInterrupt:
        raise _interrupted(trainer and trainer.saved_epoch, cfg, argv) from None
    if result.already_complete and _nothing_left(cfg):
        return out
    if cfg["corruptions_dir"] and trainer.dist.is_main:
        _evaluate(cfg, spec, trainer, argv)
    return out


def _model(cfg: dict[str, Any], spec: DataSpec) -> torch.nn.Module:
    """The seeded network (``--arch``, ``--preprocess``), with the ``--weights`` loaded."""
    seed_everything(cfg["seed"])
    model = build_model(
        cfg["arch"], spec.num_classes, mean=spec.mean, std=spec.std, preprocess=cfg.get("preprocess")
    )
    if cfg["weights"]:
        load_weights(model, cfg["weights"])
    return model


def _training_set(cfg: dict[str, Any], spec: DataSpec) -> Dataset:
    """The dataset's training images joined with the ``--extra-train-dir`` folders."""
    extra = cfg.get("extra_train_dir") or []
    try:
        train = union_train_set(
            spec, extra, ignore_other_classes=spec.name == "imagenet100" or bool(cfg.get("class_list"))
        )
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"prime-augment train: {e}") from e
    if extra:
        print(
            f"training set: {len(spec.train)} images + {len(train) - len(spec.train)} from "
            f"{len(extra)} extra folder(s) = {len(train)}",
            file=sys.stderr,
        )
    return train


def _augmented_training_set(
    cfg: dict[str, Any], train: Dataset, device: torch.device
) -> tuple[Dataset, Augmentation]:
    """The training set the loader reads and the augmentation the engine applies (``--augment``)."""
    if cfg["offline_copies"]:
        return _offline_copies(cfg, train, device), Augmentation("offline")
    if cfg["augment"] == "prime":
        return train, Augmentation("prime", prime=make_prime(cfg), placement=cfg["augment_on"])
    if cfg["augment"] == "prime-public":
        public = PublicPRIME(cfg["preset"], fir_tap=cfg["public_fir_tap"])
        return train, Augmentation("prime-public", prime=public, placement=cfg["augment_on"])
    severity = cfg["augmix_severity"]
    return train, Augmentation(cfg["augment"], placement=cfg["augment_on"], augmix_severity=severity)


def _offline_copies(cfg: dict[str, Any], train: Dataset, device: torch.device) -> Dataset:
    """``--offline-copies k``: the ``k`` PRIME copies of every image, made once by rank 0 into the run
    directory, served one per image and epoch (or as the JSD views)."""
    from .offline import OfflineDataset, generate_copies

    copies_path = Path(cfg["out"]) / f"offline_k{cfg['offline_copies']}.npy"
    if not isinstance(train, ArrayDataset):
        raise SystemExit(
            "--offline-copies needs array images: the --extra-train-dir folders must be .npy arrays "
            "of the training images' size"
        )
    if int(os.environ.get("RANK", "0")) == 0:
        generate_copies(
            train,
            make_prime(cfg),
            cfg["offline_copies"],
            copies_path,
            seed=cfg["seed"],
            device=device,
            progress=not cfg["no_progress"],
        )
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import torch.distributed as dist

        dist.barrier()
    import numpy as np

    copies = np.load(copies_path, mmap_mode="r")
    return OfflineDataset(train, copies, views=3 if cfg["jsd"] else 1)


def _record(cfg: dict[str, Any], spec: DataSpec, config: TrainConfig) -> dict[str, Any]:
    """What the engine records of the run beside its own config (data, augmentation, attack)."""
    return {
        "dataset": {
            "name": spec.name,
            "data_dir": str(cfg["data_dir"]),
            "image_size": spec.image_size,
            "family": spec.family,
            "classes": spec.classes,
            "class_list": cfg["class_list"],
            "extra_train_dirs": cfg.get("extra_train_dir") or [],
        },
        "augment": cfg["augment"],
        "jsd": cfg["jsd"],
        "adversarial": config.adversarial.describe() if config.adversarial is not None else None,
    }


def _nothing_left(cfg: dict[str, Any]) -> bool:
    """A resumed run that was already complete: whether its evaluation is done too (says which)."""
    out = Path(cfg["out"])
    state = f"{out} holds a complete run ({cfg['epochs']}/{cfg['epochs']} epochs, model.pt)"
    if not cfg["corruptions_dir"] or (out / "eval" / "results.json").exists():
        print(f"prime-augment train: {state}: nothing to do", file=sys.stderr)
        return True
    print(f"prime-augment train: {state}; evaluating it (no eval/results.json yet)", file=sys.stderr)
    return False


def _evaluate(cfg: dict[str, Any], spec: DataSpec, trainer: Trainer, argv: Sequence[str]) -> None:
    """``--corruptions-dir``: evaluate the trained model into ``RUN_DIR/eval``."""
    from .evaluate import evaluate_run

    out = Path(cfg["out"])
    try:
        evaluate_run(
            out,
            spec,
            cfg["corruptions_dir"],
            out / "eval",
            device=trainer.device,
            batch_size=cfg["eval_batch_size"],
            workers=cfg["workers"],
            baseline=cfg["mce_baseline"],
            progress=not cfg["no_progress"],
        )
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(
            f"the evaluation failed: {e}; the trained model is {out / 'model.pt'} "
            f"(fix the set, then: {resume_command(argv)})"
        ) from e
    except KeyboardInterrupt:
        raise _interrupted(trainer.saved_epoch, cfg, argv) from None


def default_threads(device: torch.device, workers: int) -> int | None:
    """The training process's torch threads when ``--threads`` is not given.

    On the CPU the DataLoader workers and the training process share the cores: each worker runs one
    thread (torch's own default in workers), the training process takes what is left, at least one.
    More threads than cores made training 3-23x slower on a 2-core machine (docs/recipes.md). On CUDA
    the process mostly launches kernels: torch's default (``None``) is kept.
    """
    if device.type != "cpu":
        return None
    return max(1, (os.cpu_count() or 1) // (1 + max(0, workers)))


def set_threads(threads: int | None, device: torch.device, workers: int) -> int:
    """Apply ``--threads`` (or its default) and return the number of threads in use."""
    if threads is not None and threads < 1:
        raise SystemExit(f"prime-augment train: --threads must be >= 1, got {threads}")
    n = threads if threads is not None else default_threads(device, workers)
    if n is not None:
        torch.set_num_threads(n)
    return torch.get_num_threads()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_with_config(build_parser(), argv)
    device = resolve_device(args.device)
    args.threads = set_threads(args.threads, device, args.workers)
    spec = _data(args)
    cfg = resolve(args, spec)
    if int(os.environ.get("RANK", "0")) == 0:
        _check_resume(cfg)
        out = Path(cfg["out"])
        if not (cfg["resume"] and (out / "checkpoint.pt").exists()):  # a resumed run keeps its start's
            pre = {**spec.preprocessing, "model_input": describe_preprocess(cfg["preprocess"])}
            env = environment(device)
            write_run_config(out, {"options": cfg, "preprocessing": pre, "environment": env})
    run(cfg, spec, device, argv=sys.argv[1:] if argv is None else argv)
    return 0


def _data(args: argparse.Namespace) -> DataSpec:
    try:
        return build_data(
            args.dataset,
            args.data_dir,
            download=args.download,
            image_size=args.image_size,
            class_list=args.class_list,
            train_subset=args.train_subset,
            val_subset=args.val_subset,
            subset_seed=args.seed,
        )
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"prime-augment train: {e}") from e


def _check_resume(cfg: dict[str, Any]) -> None:
    """Refuse a new run over a started one, and a ``--resume`` that changes a :data:`CHECKED_ON_RESUME`."""
    out = Path(cfg["out"])
    cfg_file = out / "config.json"
    if cfg_file.exists() and not cfg["resume"] and (out / "checkpoint.pt").exists():
        raise SystemExit(f"{out} already holds a run: pass --resume, or choose another --out")
    if not (cfg["resume"] and cfg_file.exists()):
        return
    try:
        old = json.loads(cfg_file.read_text()).get("options", {})
    except (OSError, ValueError, AttributeError) as e:
        raise SystemExit(f"--resume {out}: cannot read {cfg_file} ({e})") from e
    diff = [k for k in CHECKED_ON_RESUME if old.get(k, cfg[k]) != cfg[k]]
    if diff:
        raise SystemExit(
            f"--resume {out}: the run was started with other options "
            f"({', '.join(f'{k}: {old[k]!r} -> {cfg[k]!r}' for k in diff)})"
        )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
