"""``prime-augment filling-level``: filling-level classification under a container shift (§5.5 of the method).

Classifies the filling level of the container in an image into ``0``, ``50``, ``90`` (% of its capacity)
or ``unknown``, training on the containers of a split (``S1``, ``S2``, ``S3``) and testing on containers
of shapes or colours never seen in training. The data is a manifest CSV
(``path,container,filling_level,S1,S2,S3``, see :mod:`prime_augment.recipes.studies.containers`), made by
``prime-augment make-containers`` (synthetic containers, or ``--from-ccm`` for the public C-CCM crops).

The recipe (the method's, on the shared training engine :mod:`prime_augment.recipes.benchmark.engine`):

* a ResNet-18 (``--arch``; smaller ones for CPU demos), cross-entropy, SGD with momentum 0.9 and a
  learning rate decaying linearly to 0 (0.05 from scratch, 0.005 when fine-tuning);
* class-balanced sampling: each epoch draws as many training images as there are, with replacement,
  with probabilities inverse to their class counts (the engine's ``sampler_fn`` hook);
* DA_PRIME: PRIME with the ``ccm`` preset (smooth diffeomorphisms of cut 10, mild color K=500 /
  variance 0.001 and spectral K=3 / variance 0.01, ``Beta(5, 1)`` mixing; ``--alpha``, ``--beta``,
  ``--depth`` override it), after a random crop (edge padding) and a horizontal flip; ``--augment none``
  keeps only the crop and flip (plain training);
* validation-based model selection: a validation set is carved from the *training* containers and the
  weights of the epoch with the best validation accuracy (ties: the lower validation loss) are kept in
  ``best.pt`` and tested. ``--val-mode containers`` (default) holds out ``--val-fraction`` of the
  training containers (at least one, drawn with ``--val-seed``), all their images: the validation set
  then has containers unseen in training, like the test set. ``--val-mode images`` holds out that
  fraction of the images of every (container, class) instead. ``--val-fraction 0``: no selection, the
  last epoch is tested;
* fine-tuning (ST -> FT of §4.5): ``--weights FILE`` (a prime-augment ``model.pt`` or a torchvision
  state dict, e.g. ImageNet ResNet-18 weights saved locally) initialises the network (the classifier
  layer is re-initialised when its shape differs) and ``--freeze-blocks L`` freezes its first ``L``
  blocks: the stem is block 1, then the residual blocks in order (8 in a ResNet-18); frozen blocks keep
  their batch-norm statistics;
* adversarial training (the AT strategies of §5.5.4): ``--adversarial linf|l2`` trains on the PGD
  adversarials of the (augmented) batches (``--adv-eps``, ``--adv-steps``, ...; see
  :func:`prime_augment.attacks.pgd`): AT on the target task. AT -> FT: ``--weights`` of a robust
  (adversarially trained) model, ``--augment none``; AT -> DA_PRIME: the same weights with
  ``--augment prime``.

``RUN_DIR`` (``--out``) receives ``config.json`` (options, data, versions, device), the engine's files
(``checkpoint.pt`` every epoch, ``--resume`` continues a killed run; ``train.log``, ``log.jsonl``,
``model.pt``, ``best.pt``), and ``results.json`` + ``results.md``: ``accuracy`` (%, on the split's test
images, with the selected model), ``per_container`` ({test container: accuracy %}), ``per_class``, the
confusion matrix, the same for the last epoch's model, the selection, the config and the environment.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models as tvm
from torchvision.transforms import v2
from tqdm.auto import tqdm

from ...presets import PRESETS, get_preset
from ...prime import PRIME
from .._common import (
    PlainHelpFormatter,
    environment,
    nonneg_float,
    nonneg_int,
    number,
    open_unit,
    parse_with_config,
    positive_float,
    positive_int,
    resolve_device,
    table,
    write_json,
    write_text,
)
from ..benchmark.data import ArrayDataset
from ..benchmark.engine import (
    PLACEMENTS,
    Augmentation,
    TrainConfig,
    Trainer,
    seed_everything,
    to_float,
    write_run_config,
)
from ..benchmark.models import ARCHS, IMAGENET_MEAN, IMAGENET_STD, SmallCifarResNet, build_model, load_model
from ..benchmark.train import add_adversarial_arguments, load_weights, parse_primitives, resolve_adversarial
from .containers import LEVELS, SPLITS, Manifest, ManifestError, load_images, read_manifest

__all__ = [
    "LR_FINETUNE",
    "LR_SCRATCH",
    "balanced_sampler",
    "build_parser",
    "carve_validation",
    "freeze_blocks",
    "main",
    "network_blocks",
    "predict",
    "run",
    "summarise",
]

LR_SCRATCH, LR_FINETUNE = 0.05, 0.005
VAL_MODES = ("containers", "images")

EXAMPLE = """Example (synthetic containers, ResNet-18, PRIME with the ccm preset, split S3, 3 seeds):
  prime-augment make-containers --out data/containers
  for s in 0 1 2; do
    prime-augment filling-level --manifest data/containers/manifest.csv --split S3 --epochs 30 \\
        --batch-size 32 --device cuda --seed $s --out runs/fl/S3/prime_s$s
  done
Plain training: --augment none.  Beta(6, 2) mixing: --alpha 6 --beta 2.  Depth m = 1: --depth 1.
Fine-tune ImageNet weights saved as a file, first 3 blocks frozen (ST -> FT):
  ... --weights resnet18_imagenet.pth --freeze-blocks 3       (learning rate 0.005 by default)
Adversarial training on the containers (AT), l2 PGD-5 of radius 0.5:
  ... --augment none --adversarial l2 --adv-eps 0.5 --adv-steps 5
AT -> FT and AT -> DA_PRIME from a robust model file (e.g. of 'prime-augment train --adversarial linf'):
  ... --weights runs/at/model.pt --augment none        ... --weights runs/at/model.pt --augment prime
Resume a killed run: the same command with --resume.
"""


# ---------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="prime-augment filling-level",
        description=__doc__,
        epilog=EXAMPLE,
        formatter_class=PlainHelpFormatter,
    )
    p.add_argument("--config", help="YAML file of option defaults (command-line values win)")
    _add_data_arguments(p)
    _add_model_arguments(p)
    _add_augmentation_arguments(p)
    _add_optimisation_arguments(p)
    _add_system_arguments(p)
    add_adversarial_arguments(p)
    return p


def _add_data_arguments(p: argparse.ArgumentParser) -> None:
    """The manifest, the split, the image size and the validation carve."""
    d = p.add_argument_group("data")
    d.add_argument("--manifest", required=True, help="CSV path,container,filling_level,S1,S2,S3")
    d.add_argument("--split", required=True, choices=SPLITS, help="which train/test assignment to use")
    d.add_argument(
        "--image-size",
        type=positive_int,
        help="model input side (default: the first image's short side, at most 224)",
    )
    d.add_argument("--val-mode", choices=VAL_MODES, default="containers", help="how validation is carved")
    d.add_argument(
        "--val-fraction",
        type=number(float, 0, 1, open_high=True),
        default=0.2,
        help="share of training containers/images for validation",
    )
    d.add_argument("--val-seed", type=nonneg_int, default=0, help="seed of the validation carve (not --seed)")
    d.add_argument(
        "--workers", type=nonneg_int, default=min(4, os.cpu_count() or 1), help="DataLoader workers"
    )


def _add_model_arguments(p: argparse.ArgumentParser) -> None:
    """The network, and the weights it starts from."""
    m = p.add_argument_group("model")
    m.add_argument("--arch", choices=ARCHS, default="resnet18", help="network (cifar_resnet8/20: CPU demos)")
    m.add_argument("--weights", help="local weights to fine-tune from (model.pt or a torchvision state dict)")
    m.add_argument(
        "--freeze-blocks", type=nonneg_int, default=0, help="freeze the first L blocks (stem = block 1)"
    )


def _add_augmentation_arguments(p: argparse.ArgumentParser) -> None:
    """DA_PRIME: the PRIME preset and its overrides, the crop and the flip."""
    a = p.add_argument_group("augmentation (DA_PRIME)")
    a.add_argument(
        "--augment", choices=("none", "prime"), default="prime", help="DA_PRIME (default) or crop + flip only"
    )
    a.add_argument("--preset", choices=tuple(PRESETS), default="ccm", help="PRIME preset (default ccm)")
    a.add_argument("--alpha", type=positive_float, help="Beta(alpha, beta) of the final mix (ccm: 5)")
    a.add_argument("--beta", type=positive_float, help="(ccm: 1)")
    a.add_argument("--depth", type=positive_int, help="chain depth m (ccm: 3)")
    a.add_argument("--width", type=positive_int, help="number of chains (ccm: 3)")
    a.add_argument("--strength", type=nonneg_float, default=1.0, help="PRIME strength multiplier")
    a.add_argument("--primitives", default="spectral,spatial,color", help="PRIME primitives (ablation)")
    a.add_argument(
        "--augment-on",
        choices=PLACEMENTS,
        default="auto",
        help="device: PRIME on the whole batch (also on the CPU); workers: per image in the DataLoader",
    )
    a.add_argument("--jsd", action="store_true", help="add the JSD consistency loss (3 views, lambda 12)")
    a.add_argument("--no-flip", action="store_true", help="no random horizontal flip")
    a.add_argument(
        "--crop-padding", type=nonneg_int, help="random-crop padding in pixels (default: size / 16)"
    )


def _add_optimisation_arguments(p: argparse.ArgumentParser) -> None:
    """SGD, its schedule, the sampling, the seed."""
    o = p.add_argument_group("optimisation")
    o.add_argument("--epochs", type=positive_int, required=True, help="number of epochs")
    o.add_argument("--batch-size", type=positive_int, default=32, help="training batch size")
    o.add_argument(
        "--lr",
        type=positive_float,
        help=f"starting LR, decays linearly to 0 ({LR_SCRATCH}; {LR_FINETUNE} with --weights)",
    )
    o.add_argument("--momentum", type=open_unit, default=0.9, help="SGD (Nesterov) momentum")
    o.add_argument("--weight-decay", type=nonneg_float, default=5e-4, help="SGD weight decay")
    o.add_argument("--warmup-epochs", type=nonneg_float, default=0.0, help="linear warm-up before the decay")
    o.add_argument("--grad-clip", type=nonneg_float, default=0.0, help="max gradient norm, 0 = off")
    o.add_argument("--label-smoothing", type=number(float, 0, 1), default=0.0, help="of the cross-entropy")
    o.add_argument("--no-balanced", action="store_true", help="uniform shuffling instead of class-balanced")
    o.add_argument(
        "--seed", type=nonneg_int, default=0, help="seeds the model, the sampling and the augmentation"
    )


def _add_system_arguments(p: argparse.ArgumentParser) -> None:
    """Device, run directory, resuming, evaluation batch size, mixed precision, progress bars."""
    s = p.add_argument_group("system")
    s.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    s.add_argument("--out", required=True, help="run directory")
    s.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    s.add_argument(
        "--eval-batch-size", type=positive_int, default=256, help="batch size of validation and test"
    )
    s.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    s.add_argument("--no-progress", action="store_true", help="no progress bars")


# ---------------------------------------------------------------------------------------------- pieces
def balanced_sampler(
    labels: np.ndarray, num_samples: int | None = None
) -> Callable[[int, torch.Generator], list[int]]:
    """The engine's ``sampler_fn``: indices drawn with replacement, probability inverse to the class count.

    Args:
        labels: the training labels.
        num_samples: draws per epoch (default: the number of images).

    Example:
        >>> import numpy as np, torch
        >>> f = balanced_sampler(np.array([0] * 90 + [1] * 10))
        >>> idx = torch.tensor(f(0, torch.Generator().manual_seed(0)))
        >>> 0.4 < float((idx >= 90).float().mean()) < 0.6
        True
    """
    labels = np.asarray(labels)
    if labels.size == 0:
        raise ValueError("balanced_sampler: no training labels")
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    weights = torch.as_tensor(1.0 / counts[inverse], dtype=torch.float64)
    n = int(num_samples or labels.size)

    def sample(epoch: int, generator: torch.Generator) -> list[int]:
        return torch.multinomial(weights, n, replacement=True, generator=generator).tolist()

    return sample


def carve_validation(
    manifest: Manifest, train_rows: np.ndarray, mode: str, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Split the training rows into (fit rows, validation rows, validation containers).

    ``containers``: hold out ``max(1, round(fraction * n))`` of the ``n`` training containers (a seeded
    permutation), all their images. ``images``: hold out ``round(fraction * k)`` of the ``k`` images of
    every (container, class) with ``k >= 2``. ``fraction == 0``: no validation.
    """
    if mode not in VAL_MODES:
        raise ValueError(f"--val-mode must be one of {VAL_MODES}, got {mode!r}")
    if not 0 <= fraction < 1:
        raise ValueError(f"--val-fraction must be in [0, 1), got {fraction!r}")
    rows = np.asarray(train_rows, dtype=np.int64)
    if fraction == 0:
        return rows, rows[:0], []
    rng = np.random.default_rng(seed)
    cont = np.array([manifest.containers[i] for i in rows])
    if mode == "containers":
        names = sorted(set(cont.tolist()))
        if len(names) < 2:
            raise ValueError(
                f"--val-mode containers needs >= 2 training containers, the split has {names}: "
                "use --val-mode images"
            )
        k = min(len(names) - 1, max(1, round(fraction * len(names))))
        val_names = sorted(rng.permutation(names)[:k].tolist())
        is_val = np.isin(cont, val_names)
        return rows[~is_val], rows[is_val], val_names
    is_val = np.zeros(len(rows), dtype=bool)
    labels = manifest.labels[rows]
    for key in sorted(set(zip(cont.tolist(), labels.tolist(), strict=True))):
        group = np.flatnonzero((cont == key[0]) & (labels == key[1]))
        if len(group) >= 2:
            is_val[rng.permutation(group)[: round(fraction * len(group))]] = True
    if not is_val.any():
        raise ValueError(f"--val-fraction {fraction}: no image held out; raise it or use --val-fraction 0")
    return rows[~is_val], rows[is_val], sorted(set(cont[is_val].tolist()))


def network_blocks(model: nn.Module) -> list[list[nn.Module]]:
    """The blocks of a ResNet in forward order: the stem, then each residual block.

    Accepts a recipe :class:`~prime_augment.recipes.benchmark.models.Classifier` or the bare network.
    """
    net = getattr(model, "net", model)
    if isinstance(net, tvm.ResNet):
        res = [b for layer in (net.layer1, net.layer2, net.layer3, net.layer4) for b in layer]
        return [[net.conv1, net.bn1], *[[b] for b in res]]
    if isinstance(net, SmallCifarResNet):
        return [[net.stem], *[[b] for b in net.layers]]
    raise TypeError(f"--freeze-blocks needs a ResNet, got {type(net).__name__}")


def _keep_eval(module: nn.Module, _inputs: Any) -> None:
    module.eval()


def freeze_blocks(model: nn.Module, n: int) -> int:
    """Freeze the first ``n`` blocks of :func:`network_blocks` (no gradients, batch norm in eval mode).

    Returns the number of frozen parameters.
    """
    blocks = network_blocks(model)
    if not 0 <= n <= len(blocks):
        raise ValueError(f"--freeze-blocks must be in 0..{len(blocks)} for this network, got {n}")
    count = 0
    for block in blocks[:n]:
        for mod in block:
            for prm in mod.parameters():
                prm.requires_grad_(False)
                count += prm.numel()
            mod.register_forward_pre_hook(_keep_eval)  # the engine calls model.train() every epoch
    return count


@torch.no_grad()
def predict(
    model: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    device: torch.device,
    batch_size: int = 256,
    amp: bool = True,
    desc: str | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, float]:
    """Predicted classes of uint8 images ``[N, H, W, 3]`` and the mean cross-entropy against ``labels``."""
    was = model.training
    model.eval()
    preds, loss = [], 0.0
    use_amp = amp and device.type == "cuda"
    for s in tqdm(range(0, len(images), batch_size), desc=desc, leave=False, disable=not progress):
        x = torch.from_numpy(np.ascontiguousarray(images[s : s + batch_size])).permute(0, 3, 1, 2)
        y = torch.from_numpy(labels[s : s + batch_size]).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            logits = model(to_float(x.to(device))).float()
        loss += float(F.cross_entropy(logits, y, reduction="sum"))
        preds.append(logits.argmax(1).cpu().numpy())
    model.train(was)
    return np.concatenate(preds) if preds else np.zeros(0, np.int64), loss / max(len(images), 1)


def summarise(pred: np.ndarray, labels: np.ndarray, containers: Sequence[str]) -> dict[str, Any]:
    """Accuracy (%), per container, per class, and the confusion matrix (rows: true class)."""
    pred, labels = np.asarray(pred), np.asarray(labels)
    cont = np.asarray(list(containers))
    ok = pred == labels
    conf = np.zeros((len(LEVELS), len(LEVELS)), dtype=np.int64)
    np.add.at(conf, (labels, pred), 1)
    return {
        "accuracy": 100.0 * float(ok.mean()),
        "per_container": {c: 100.0 * float(ok[cont == c].mean()) for c in sorted(set(cont.tolist()))},
        "per_class": {
            LEVELS[k]: 100.0 * float(ok[labels == k].mean())
            for k in range(len(LEVELS))
            if (labels == k).any()
        },
        "confusion": conf.tolist(),
        "n": len(labels),
    }


def _markdown(res: dict[str, Any]) -> str:
    last = res["last"]["per_container"]
    rows = [[c, a, last[c]] for c, a in res["per_container"].items()]
    sel = res["selection"]
    chosen = (
        f"epoch {sel['epoch']} (validation accuracy {sel['val_accuracy']:.2f}%)" if sel else "the last epoch"
    )
    lines = [
        f"# Filling level, split {res['split']}",
        "",
        f"Test accuracy **{res['accuracy']:.2f}%** on {res['n_test']} images of {len(rows)} unseen "
        f"containers (model of {chosen}; last epoch {res['last']['accuracy']:.2f}%).",
        "",
        f"Augmentation: {res['augmentation']}.",
        "",
        table(rows, ["test container", "accuracy (%)", "last epoch (%)"]),
        "",
        "Confusion (rows: true, columns: predicted):",
        "",
        table([[LEVELS[i], *r] for i, r in enumerate(res["confusion"])], ["", *LEVELS]),
        "",
    ]
    return "\n".join(lines)


def _first_side(manifest: Manifest) -> int:
    from PIL import Image

    try:
        with Image.open(manifest.paths[0]) as im:
            return min(224, min(im.size))
    except OSError as e:
        raise ManifestError(f"{manifest.path}: line 2 (data row 1), column 'path': cannot read ({e})") from e


def make_prime(cfg: dict[str, Any]) -> PRIME:
    """PRIME of the run: the preset with the ``alpha``/``beta``/``depth``/``width`` overrides."""
    over = {k: cfg[k] for k in ("alpha", "beta", "depth", "width") if cfg.get(k) is not None}
    return PRIME.from_preset(
        cfg["preset"], primitives=tuple(cfg["primitives"]), strength=cfg["strength"], **over
    )


def resolve(args: argparse.Namespace) -> dict[str, Any]:
    """The run's resolved options (checked; defaults filled in)."""
    cfg = vars(args).copy()
    for name in ("epochs", "batch_size", "eval_batch_size"):
        if cfg[name] < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 1, got {cfg[name]}")
    for name in ("depth", "width", "image_size"):
        if cfg[name] is not None and cfg[name] < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 1, got {cfg[name]}")
    for name in ("alpha", "beta"):
        if cfg[name] is not None and not cfg[name] > 0:
            raise SystemExit(f"--{name} must be > 0, got {cfg[name]}")
    if cfg["freeze_blocks"] < 0:
        raise SystemExit(f"--freeze-blocks must be >= 0, got {cfg['freeze_blocks']}")
    if cfg["freeze_blocks"] and not cfg["weights"]:
        raise SystemExit("--freeze-blocks needs --weights (freezing random weights makes no sense)")
    if cfg["jsd"] and cfg["augment"] == "none":
        raise SystemExit("--jsd needs --augment prime")
    if resolve_adversarial(cfg) is not None and cfg["jsd"]:
        raise SystemExit("--adversarial and --jsd cannot be combined")
    if cfg["lr"] is None:
        cfg["lr"] = LR_FINETUNE if cfg["weights"] else LR_SCRATCH
    if cfg["augment"] == "prime":  # record the effective mixer (the preset's unless overridden)
        mixer = get_preset(cfg["preset"])["mixer"]
        for k in ("alpha", "beta", "depth", "width"):
            if cfg[k] is None:
                cfg[k] = mixer[k]
    cfg["primitives"] = list(parse_primitives(cfg["primitives"]))
    cfg["manifest"] = str(Path(cfg["manifest"]).resolve())
    return cfg


# ---------------------------------------------------------------------------------------------- run
def run(cfg: dict[str, Any], device: torch.device, manifest: Manifest | None = None) -> dict[str, Any]:
    """Train and test one filling-level run with a resolved config; returns (and writes) the results."""
    out = Path(cfg["out"])
    data = _load_data(cfg, manifest or read_manifest(cfg["manifest"]))
    seed_everything(cfg["seed"])
    model = build_model(cfg["arch"], len(LEVELS), mean=IMAGENET_MEAN, std=IMAGENET_STD)
    if cfg["weights"]:
        load_weights(model, cfg["weights"])
    frozen = freeze_blocks(model, cfg["freeze_blocks"]) if cfg["freeze_blocks"] else 0
    aug = (
        Augmentation("prime", prime=make_prime(cfg), placement=cfg["augment_on"])
        if cfg["augment"] == "prime"
        else Augmentation("none")
    )
    record = {
        "task": "filling-level",
        "split": data.split,
        "classes": list(LEVELS),
        "manifest": cfg["manifest"],
    }
    has_val = len(data.val_rows) > 0
    trainer = Trainer(
        model,
        ArrayDataset(data.x_fit, data.y_fit, name=f"{data.split} train"),
        _crop_and_flip(cfg, data.size),
        _train_config(cfg),
        aug,
        device=device,
        out_dir=out,
        arch=cfg["arch"],
        num_classes=len(LEVELS),
        sampler_fn=None if cfg["no_balanced"] else balanced_sampler(data.y_fit),
        validate_fn=_validator(data, device, cfg) if has_val else None,
        select_metric="score" if has_val else None,
        record=record,
    )
    result = trainer.fit(resume=cfg["resume"])
    last, chosen, selection = _test_models(result, out, data, device, cfg)
    res = {
        "split": data.split,
        "accuracy": chosen["accuracy"],
        "per_container": chosen["per_container"],
        "per_class": chosen["per_class"],
        "confusion": chosen["confusion"],
        "classes": list(LEVELS),
        "n_test": chosen["n"],
        "n_train": len(data.fit_rows),
        "n_val": len(data.val_rows),
        "model": "best.pt" if result.best is not None else "model.pt",
        "selection": selection,
        "last": {k: last[k] for k in ("accuracy", "per_container", "per_class")},
        "train_containers": data.manifest.containers_of(data.fit_rows),
        "val_containers": data.val_containers,
        "test_containers": data.manifest.containers_of(data.test_rows),
        "image_size": data.size,
        "frozen_parameters": frozen,
        "augmentation": trainer.augmentation.describe(trainer.device),
        "config": cfg,
        "environment": environment(device),
    }
    write_json(out / "results.json", res)
    write_text(out / "results.md", _markdown(res))
    return res


@dataclass(frozen=True)
class _Data:
    """A run's images (uint8 ``[N, size, size, 3]``) and labels: fit, validation and test.

    ``*_rows``: their manifest rows; ``val_containers``: the containers held out for validation.
    """

    manifest: Manifest
    split: str
    size: int
    fit_rows: np.ndarray
    val_rows: np.ndarray
    test_rows: np.ndarray
    val_containers: list[str]
    x_fit: np.ndarray
    x_val: np.ndarray
    x_test: np.ndarray

    @property
    def y_fit(self) -> np.ndarray:
        return self.manifest.labels[self.fit_rows]

    @property
    def y_val(self) -> np.ndarray:
        return self.manifest.labels[self.val_rows]

    @property
    def y_test(self) -> np.ndarray:
        return self.manifest.labels[self.test_rows]


def _load_data(cfg: dict[str, Any], m: Manifest) -> _Data:
    """The split's training rows (less the validation carve) and test rows, their images loaded."""
    split = cfg["split"]
    train_rows, test_rows = m.indices(split, "train"), m.indices(split, "test")
    if not len(train_rows) or not len(test_rows):
        raise ManifestError(
            f"{m.path}: split {split} has {len(train_rows)} training and {len(test_rows)} test images "
            f"(column {split!r} needs both 'train' and 'test' rows)"
        )
    fit_rows, val_rows, val_containers = carve_validation(
        m, train_rows, cfg["val_mode"], cfg["val_fraction"], cfg["val_seed"]
    )
    size = cfg["image_size"] or _first_side(m)
    rows = np.concatenate([fit_rows, val_rows, test_rows])
    images = load_images(m, rows, size, progress=not cfg["no_progress"])
    n_fit, n_val = len(fit_rows), len(val_rows)
    return _Data(
        m, split, size, fit_rows, val_rows, test_rows, val_containers,
        images[:n_fit], images[n_fit : n_fit + n_val], images[n_fit + n_val :],
    )  # fmt: skip


def _crop_and_flip(cfg: dict[str, Any], size: int) -> v2.Compose | None:
    """The per-image training transform: a random crop (edge padding) and a horizontal flip."""
    pad = cfg["crop_padding"] if cfg["crop_padding"] is not None else max(1, size // 16)
    tf = [v2.RandomCrop(size, padding=pad, padding_mode="edge")] if pad > 0 else []
    if not cfg["no_flip"]:
        tf.append(v2.RandomHorizontalFlip())
    return v2.Compose(tf) if tf else None


def _train_config(cfg: dict[str, Any]) -> TrainConfig:
    """The engine's config of the resolved options (each field from the option of its name, see
    :meth:`TrainConfig.from_options`), with the method's linear decay to 0 (the command has no
    ``--schedule``) and the PGD of the ``--adv-*`` options."""
    return TrainConfig.from_options(cfg, schedule="linear", adversarial=resolve_adversarial(dict(cfg)))


def _validator(
    data: _Data, device: torch.device, cfg: dict[str, Any]
) -> Callable[[nn.Module], dict[str, float]]:
    """The engine's ``validate_fn``: accuracy and loss on the validation images; the selection score is
    the accuracy, ties broken by the lower loss."""

    def validate(net: nn.Module) -> dict[str, float]:
        pred, loss = predict(
            net,
            data.x_val,
            data.y_val,
            device=device,
            batch_size=cfg["eval_batch_size"],
            amp=not cfg["no_amp"],
        )
        acc = 100.0 * float((pred == data.y_val).mean())
        return {"accuracy": acc, "loss": loss, "score": acc - 0.01 * loss}

    return validate


def _test_models(
    result: Any, out: Path, data: _Data, device: torch.device, cfg: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """:func:`summarise` on the test images of the last epoch's model and of the selected one (``best.pt``;
    the last one without validation), and the selection (epoch, validation accuracy and loss)."""
    test_cont = [data.manifest.containers[i] for i in data.test_rows]

    def test(net: nn.Module, desc: str) -> dict[str, Any]:
        pred, _ = predict(
            net, data.x_test, data.y_test, device=device, batch_size=cfg["eval_batch_size"],
            amp=not cfg["no_amp"], desc=desc, progress=not cfg["no_progress"],
        )  # fmt: skip
        return summarise(pred, data.y_test, test_cont)

    last = test(result.model, "test (last)")
    if result.best is None:
        return last, last, None
    best_model, _ = load_model(out / "best.pt", map_location=device)
    chosen = test(best_model.to(device), "test (selected)")
    epoch = result.best["epoch"]
    val = next(h for h in result.history if h["epoch"] == epoch)
    return last, chosen, {"epoch": epoch, "val_accuracy": val["val_accuracy"], "val_loss": val["val_loss"]}


IGNORED_ON_RESUME = ("resume", "no_progress", "workers", "config", "eval_batch_size", "device")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_with_config(build_parser(), argv)
    device = resolve_device(args.device)
    cfg = resolve(args)
    out = Path(cfg["out"])
    cfg_file = out / "config.json"
    if not cfg["resume"] and ((out / "checkpoint.pt").exists() or (out / "results.json").exists()):
        raise SystemExit(f"{out} already holds a run: pass --resume, or choose another --out")
    if cfg["resume"] and cfg_file.exists():
        old = json.loads(cfg_file.read_text()).get("options", {})
        diff = [k for k in cfg if k not in IGNORED_ON_RESUME and k in old and old[k] != cfg[k]]
        if diff:
            raise SystemExit(
                f"--resume {out}: the run was started with other options "
                f"({', '.join(f'{k}: {old[k]!r} -> {cfg[k]!r}' for k in diff)})"
            )
    try:
        manifest = read_manifest(cfg["manifest"])
        write_run_config(out, {"options": cfg, "environment": environment(device)})
        res = run(cfg, device, manifest)
    except (FileNotFoundError, ValueError) as e:  # manifest, validation carve, batch size: a clear message
        raise SystemExit(f"prime-augment filling-level: {e}") from e
    print(
        f"filling-level {res['split']}: test accuracy {res['accuracy']:.2f}% "
        f"({res['n_test']} images, {len(res['per_container'])} containers; "
        f"last epoch {res['last']['accuracy']:.2f}%) -> {out / 'results.json'}"
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
