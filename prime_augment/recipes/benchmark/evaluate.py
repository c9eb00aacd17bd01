"""``prime-augment evaluate``: clean and common-corruption accuracy of a trained model.

Writes ``OUT/results.json`` (``clean_accuracy``, ``corruption_accuracy`` = mean over corruptions x
severities in %, ``mce``, ``per_corruption`` = {name: [acc_s1..acc_s5]}, per-severity means, CE per
corruption, the preprocessing, the corruption set, the BN adaptation and the environment),
``OUT/results.md`` (per-corruption and per-severity tables) and two plots (``per_corruption.png``,
``accuracy_vs_severity.png``).

mCE, by ``--mce``:

* ``unnormalised`` (CIFAR): ``100 - corruption_accuracy``; ``CE_c`` = mean error over severities;
* ``alexnet`` (ImageNet): ``CE_c = sum_s E_s,c / sum_s E^AlexNet_s,c`` with the standard AlexNet errors,
  mCE the mean over the 15 benchmark corruptions; relative CE uses ``E_s,c - E_clean`` on both sides;
* ``baseline`` (ImageNet-100 and any dataset): the same ratios with a baseline model's results file
  (``--baseline results.json``) in place of AlexNet.

BN adaptation (``--bn-adapt``; Schneider et al. 2020, Eq. 5.7 of the method): every BatchNorm layer
normalises with ``mu = (N mu_s + n mu_t) / (N + n)`` and ``var = (N var_s + n var_t) / (N + n)``,
mixing the source (training) statistics with weight ``N`` (``--bn-prior``) and statistics of ``n``
target images: ``single`` (``n = 1``, each test image alone), ``partial`` (``n = --bn-batch`` images
of one corruption and severity at a time) and ``full`` (``n`` = all the images of that corruption and
severity, estimated in a first pass).

Robust accuracy (``--pgd-eps EPS ...``): the accuracy under untargeted PGD
(:func:`prime_augment.attacks.pgd`, ``--pgd-norm``, ``--pgd-steps``, step ``2.5 eps / steps`` unless
``--pgd-step-size``, a random start from a seeded generator) on ``--pgd-images`` test images drawn at
random (seeded), the model in eval mode. An image counts as robust when the model classifies both it
and its adversarial correctly. Written to ``OUT/robust.json`` and ``OUT/robust.md``; ``--corruptions-dir``
may then be left out.

A model trained with ``--preprocess`` applies its pre-processing inside (clean, corrupted and attacked
images alike); the results record it under ``preprocessing.model_input``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import struct
import sys
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ...attacks import NORMS, default_step_size, pgd
from .._common import (
    environment,
    fraction,
    nonneg_float,
    nonneg_int,
    parse_with_config,
    positive_int,
    resolve_device,
    table,
    write_json,
    write_text,
)
from .data import (
    BENCHMARK_CORRUPTIONS,
    DATASETS,
    DataSpec,
    FolderCorruptions,
    MapDataset,
    NpyCorruptions,
    _benchmark_order,
    _Block,
    _load_npy,
    build_data,
    open_corruptions,
)
from .engine import to_float
from .models import describe_preprocess, load_model

__all__ = [
    "ALEXNET_CLEAN_ERROR",
    "ALEXNET_ERRORS",
    "BN_MODES",
    "MCE_MODES",
    "MixedStatsBatchNorm",
    "accuracy",
    "adapt_bn",
    "corruption_metrics",
    "evaluate_model",
    "evaluate_robustness",
    "evaluate_run",
    "robust_accuracy",
    "write_results",
]

#: AlexNet top-1 error on ImageNet-C, averaged over the 5 severities, per corruption — the normaliser
#: of the ImageNet-C mCE: Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common
#: Corruptions and Perturbations", ICLR 2019 (arXiv:1903.12261): CE_c = sum_s E_s,c / sum_s E^AlexNet_s,c,
#: mCE the mean over the 15 corruptions. The values are the raw AlexNet errors as the benchmark's authors
#: distribute them with code: google-research/augmix ``imagenet.py`` ``ALEXNET_ERR`` (Hendrycks is an
#: author; "Raw AlexNet errors taken from https://github.com/hendrycks/robustness"), identical in
#: independent copies (e.g. a ``get_ce_alexnet`` of OpenMMLab / FAN evaluation code); pinned in
#: tests/test_recipes_evaluate.py. The paper's appendix table was not machine-readable when this was
#: checked (docs/corruptions.md).
ALEXNET_ERRORS: dict[str, float] = {
    "gaussian_noise": 0.886428,
    "shot_noise": 0.894468,
    "impulse_noise": 0.922640,
    "defocus_blur": 0.819880,
    "glass_blur": 0.826268,
    "motion_blur": 0.785948,
    "zoom_blur": 0.798360,
    "snow": 0.866816,
    "frost": 0.826572,
    "fog": 0.819324,
    "brightness": 0.564592,
    "contrast": 0.853204,
    "elastic_transform": 0.646056,
    "pixelate": 0.717840,
    "jpeg_compression": 0.606500,
}
#: AlexNet clean top-1 error on ImageNet (43.5 % in Hendrycks & Dietterich's Table 1, as printed there,
#: rounded to 0.1 %); only the relative mCE uses it.
ALEXNET_CLEAN_ERROR = 0.435

MCE_MODES = ("auto", "unnormalised", "alexnet", "baseline")
BN_MODES = ("none", "single", "partial", "full")

EXAMPLE = """Example:
  prime-augment evaluate --run runs/c10_prime --corruptions-dir ~/data/CIFAR-10-C --out runs/c10_prime/eval
  prime-augment evaluate --run runs/in100 --dataset imagenet100 --data-dir ~/imagenet \\
      --corruptions-dir ~/ImageNet-C --baseline runs/in100_standard/eval/results.json --out runs/in100/eval
  ... --bn-adapt partial --bn-prior 16 --bn-batch 64      (test-time BN adaptation)
Robust accuracy under PGD-20 (l-inf radii 2/255 and 8/255, 1000 test images), without corruptions:
  prime-augment evaluate --run runs/c10_at --pgd-eps 2/255 8/255 --pgd-steps 20 --out runs/c10_at/pgd
"""


# ---------------------------------------------------------------------------------------------- BN adaptation
class MixedStatsBatchNorm(nn.Module):
    """A BatchNorm2d that normalises with source statistics mixed with the input's (Eq. 5.7).

    ``mu = (N mu_s + n mu_t) / (N + n)``, ``var = (N var_s + n var_t) / (N + n)``: ``per_sample``
    takes the target statistics of each image alone (``n = 1``), otherwise of the whole batch
    (``n`` = batch size); ``var_t`` is the biased variance over the pixels (and images).

    Args:
        bn: the trained layer (its running statistics are the source statistics ``mu_s``, ``var_s``).
        prior: ``N >= 0``.
        per_sample: single-image adaptation.
    """

    def __init__(self, bn: nn.BatchNorm2d, prior: float, per_sample: bool) -> None:
        super().__init__()
        if bn.running_mean is None:
            raise ValueError("BN adaptation needs BatchNorm layers that track running statistics")
        self.bn = bn
        self.prior = float(prior)
        self.per_sample = per_sample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn = self.bn
        xf = x.float()
        dims = (2, 3) if self.per_sample else (0, 2, 3)
        var_t, mu_t = torch.var_mean(xf, dim=dims, correction=0)
        n = 1.0 if self.per_sample else float(x.shape[0])
        w = n / (self.prior + n)
        mu = (1 - w) * bn.running_mean + w * mu_t
        var = (1 - w) * bn.running_var + w * var_t
        if self.per_sample:
            mu, var = mu[:, :, None, None], var[:, :, None, None]
        else:
            mu, var = mu[None, :, None, None], var[None, :, None, None]
        y = (xf - mu) * torch.rsqrt(var + bn.eps)
        if bn.affine:
            y = y * bn.weight[None, :, None, None] + bn.bias[None, :, None, None]
        return y.to(x.dtype)


def _swap_bn(model: nn.Module, make) -> nn.Module:
    for name, child in model.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(model, name, make(child))
        else:
            _swap_bn(child, make)
    return model


def _count_bn(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def adapt_bn(
    model: nn.Module,
    mode: str,
    prior: float = 16.0,
    *,
    target: Dataset | None = None,
    device: torch.device | str = "cpu",
    batch_size: int = 256,
    workers: int = 0,
) -> nn.Module:
    """A copy of ``model`` whose BatchNorm layers adapt to the target domain (the input is untouched).

    Args:
        model: trained classifier.
        mode: ``"none"`` (a plain copy), ``"single"``, ``"partial"`` (adapts to each evaluated batch) or
            ``"full"`` (statistics of all of ``target`` mixed into the running statistics).
        prior: ``N``, the weight of the source statistics.
        target: the target images (``full`` only).
        device, batch_size, workers: for the ``full`` statistics pass.

    Returns:
        The adapted copy, in eval mode.
    """
    if mode not in BN_MODES:
        raise ValueError(f"--bn-adapt must be one of {BN_MODES}, got {mode!r}")
    if not (prior >= 0 and math.isfinite(prior)):
        raise ValueError(f"--bn-prior must be a finite number >= 0, got {prior!r}")
    m = copy.deepcopy(model).eval()
    if mode == "none":
        return m
    if _count_bn(m) == 0:
        raise ValueError("--bn-adapt: the model has no BatchNorm2d layer")
    if mode in ("single", "partial"):
        return _swap_bn(m, lambda bn: MixedStatsBatchNorm(bn, prior, per_sample=mode == "single"))
    if target is None:
        raise ValueError("full BN adaptation needs the target images")
    m = m.to(device)
    sources = {}
    for name, bn in m.named_modules():
        if isinstance(bn, nn.BatchNorm2d):
            sources[name] = (bn.running_mean.clone(), bn.running_var.clone())
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average over the whole target set
    m.train()
    n = 0
    with torch.no_grad():
        for x, _ in DataLoader(target, batch_size=batch_size, num_workers=workers):
            m(to_float(x.to(device)))
            n += x.shape[0]
    w = n / (prior + n)
    for name, bn in m.named_modules():
        if isinstance(bn, nn.BatchNorm2d):
            mu_s, var_s = sources[name]
            bn.running_mean.mul_(w).add_((1 - w) * mu_s)
            bn.running_var.mul_(w).add_((1 - w) * var_s)
    return m.eval()


# ---------------------------------------------------------------------------------------------- accuracy
def correct_per_image(
    model: nn.Module,
    dataset: Dataset,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 256,
    workers: int = 0,
    amp: bool = True,
    desc: str | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Whether ``model``'s top-1 prediction is right, per image (bool ``[N]``), on a dataset of
    ``(uint8 or float image, label)``."""
    device = torch.device(device)
    model.eval()
    hits = []
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, pin_memory=device.type == "cuda")
    with (
        torch.no_grad(),
        torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"),
    ):
        for x, y in tqdm(loader, desc=desc, leave=False, disable=not progress):
            pred = model(to_float(x.to(device, non_blocking=True))).argmax(1).cpu()
            hits.append((pred == y).numpy())
    return np.concatenate(hits) if hits else np.zeros(0, dtype=bool)


def accuracy(model: nn.Module, dataset: Dataset, *, desc: str | None = None, **kwargs: Any) -> float:
    """Top-1 accuracy (%) of ``model`` on a dataset of ``(uint8 or float image, label)``
    (the keywords of :func:`correct_per_image`)."""
    hits = correct_per_image(model, dataset, desc=desc, **kwargs)
    if hits.size == 0:
        raise ValueError(f"{desc or 'dataset'}: no images to evaluate")
    return 100.0 * float(hits.mean())


def corruption_metrics(
    clean_accuracy: float,
    per_corruption: dict[str, list[float]],
    *,
    mode: str = "unnormalised",
    baseline: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Corruption accuracy, per-severity means, CE per corruption, mCE and relative mCE.

    Args:
        clean_accuracy: in %.
        per_corruption: ``{name: [acc_s1, ...]}`` in %.
        mode: ``"unnormalised"``, ``"alexnet"`` or ``"baseline"`` (see the module docstring).
        baseline: a baseline's results (``clean_accuracy`` and ``per_corruption``) for ``"baseline"``.

    Returns:
        A dict with ``corruption_accuracy``, ``per_severity``, ``per_corruption_mean``, ``ce``, ``mce``,
        ``mce_normalisation`` and, when normalised, ``relative_ce`` and ``relative_mce`` (all in %).
    """
    if not per_corruption:
        raise ValueError("no corruption results")
    names = list(per_corruption)
    accs = [per_corruption[c] for c in names]
    n_sev = len(accs[0])
    if any(len(a) != n_sev for a in accs):
        raise ValueError("every corruption needs the same number of severities")
    out: dict[str, Any] = {
        "corruption_accuracy": sum(map(sum, accs)) / (len(accs) * n_sev),
        "per_severity": [sum(a[s] for a in accs) / len(accs) for s in range(n_sev)],
        "per_corruption_mean": {c: sum(a) / n_sev for c, a in zip(names, accs, strict=True)},
        "mce_normalisation": mode,
    }
    err_clean = 100.0 - clean_accuracy
    if mode == "unnormalised":
        out["ce"] = {c: 100.0 - m for c, m in out["per_corruption_mean"].items()}
        out["mce"] = 100.0 - out["corruption_accuracy"]
        return out
    if mode == "alexnet":
        used = [c for c in names if c in ALEXNET_ERRORS]
        if not used:
            raise ValueError(
                f"AlexNet normalisation needs ImageNet-C corruptions {BENCHMARK_CORRUPTIONS}, got {names}"
            )
        ref = {c: [100.0 * ALEXNET_ERRORS[c]] * n_sev for c in used}
        ref_clean = 100.0 * ALEXNET_CLEAN_ERROR
    elif mode == "baseline":
        if not baseline or "per_corruption" not in baseline:
            raise ValueError("baseline normalisation needs a baseline results file (--baseline results.json)")
        used = [c for c in names if c in baseline["per_corruption"]]
        missing = [c for c in names if c not in baseline["per_corruption"]]
        if missing:
            raise ValueError(f"the baseline results lack the corruptions {missing}")
        ref = {c: [100.0 - a for a in baseline["per_corruption"][c]] for c in used}
        if any(len(r) != n_sev for r in ref.values()):
            raise ValueError("the baseline results have another number of severities")
        ref_clean = 100.0 - float(baseline["clean_accuracy"])
    else:
        raise ValueError(f"mce mode must be one of {MCE_MODES[1:]}, got {mode!r}")
    ce, rel = {}, {}
    for c in used:
        err = [100.0 - a for a in per_corruption[c]]
        ce[c] = 100.0 * sum(err) / sum(ref[c])
        denom = sum(r - ref_clean for r in ref[c])
        rel[c] = 100.0 * sum(e - err_clean for e in err) / denom if denom else float("nan")
    out.update(
        ce=ce, mce=sum(ce.values()) / len(ce), relative_ce=rel, relative_mce=sum(rel.values()) / len(rel)
    )
    out["mce_corruptions"] = used
    if mode == "alexnet" and len(used) < len(BENCHMARK_CORRUPTIONS):
        out["mce_note"] = f"mCE over {len(used)} of the 15 ImageNet-C corruptions"
    return out


def evaluate_model(
    model: nn.Module,
    clean: Dataset | None,
    corruptions,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 256,
    workers: int = 0,
    bn_adapt: str = "none",
    bn_prior: float = 16.0,
    bn_batch: int = 64,
    amp: bool = True,
    progress: bool = True,
    done: dict[str, list[float]] | None = None,
    on_corruption: Callable[[str, list[float]], None] | None = None,
) -> dict[str, Any]:
    """Clean accuracy and accuracy per corruption x severity (in %).

    Args:
        model: the classifier (not modified: BN adaptation works on copies).
        clean: the clean test set of ``(image, label)`` (``None`` to skip).
        corruptions: an opened corruption set (:func:`~.data.open_corruptions`).
        bn_adapt, bn_prior, bn_batch: BN adaptation mode, ``N`` and the ``partial`` batch size ``n``.
        done: corruptions already evaluated (``{name: accuracies}``, e.g. from an interrupted run): reused.
        on_corruption: called with ``(name, accuracies)`` after each corruption (to checkpoint).

    Returns:
        ``{"clean_accuracy", "per_corruption": {name: [acc per severity]}, ...}``.
    """
    device = torch.device(device)
    kw = {"device": device, "workers": workers, "amp": amp}
    res: dict[str, Any] = {}
    base = copy.deepcopy(model).to(device).eval()
    if clean is not None:
        res["clean_accuracy"] = accuracy(
            base, clean, batch_size=batch_size, desc="clean", progress=progress, **kw
        )
    eval_bs = bn_batch if bn_adapt == "partial" else batch_size
    fixed = None if bn_adapt == "full" else adapt_bn(base, bn_adapt, bn_prior).to(device)
    if bn_adapt != "none" and clean is not None and fixed is not None:
        res["clean_accuracy_adapted"] = accuracy(fixed, clean, batch_size=eval_bs, **kw)
    per: dict[str, list[float]] = {}
    bar = tqdm(
        total=len(corruptions.corruptions) * len(corruptions.severities),
        desc="corruptions",
        disable=not progress,
    )
    for c in corruptions.corruptions:
        if done and c in done and len(done[c]) == len(corruptions.severities):
            per[c] = list(done[c])
            bar.update(len(per[c]))
            continue
        per[c] = []
        for s in corruptions.severities:
            ds = corruptions.dataset(c, s)
            m = fixed
            if m is None:
                m = adapt_bn(
                    base, "full", bn_prior, target=ds, device=device, batch_size=batch_size, workers=workers
                )
            per[c].append(accuracy(m, ds, batch_size=eval_bs, **kw))
            bar.set_postfix_str(f"{c} s{s}: {per[c][-1]:.1f}%")
            bar.update()
        if on_corruption is not None:
            on_corruption(c, per[c])
    bar.close()
    res["per_corruption"] = per
    res["severities"] = list(corruptions.severities)
    res["corruptions"] = list(corruptions.corruptions)
    if bn_adapt != "none":
        res["bn_adaptation"] = {
            "mode": bn_adapt,
            "prior_N": bn_prior,
            "n": {"single": 1, "partial": bn_batch, "full": "all images of each corruption and severity"}[
                bn_adapt
            ],
        }
    return res


# ---------------------------------------------------------------------------------------------- outputs
def _markdown(res: dict[str, Any]) -> str:
    sev = res["severities"]
    norm = res["mce_normalisation"]
    lines = [
        "# Common-corruption evaluation",
        "",
        f"- model: `{res['model'].get('path')}` ({res['model'].get('arch')})",
        f"- corruption set: {res['corruption_set']}",
        f"- device: {res['environment'].get('device')} ({res['environment'].get('device_name')}), "
        f"date {res['environment'].get('date')}",
    ]
    if "bn_adaptation" in res:
        b = res["bn_adaptation"]
        lines.append(f"- BN adaptation: {b['mode']} (N = {b['prior_N']}, n = {b['n']})")
    lines += ["", "## Summary", ""]
    head = res.get("headline_corruptions") or [
        c for c in res["per_corruption"] if c in res["per_corruption_mean"]
    ]
    over = (
        "15 benchmark corruptions"
        if list(head) == list(BENCHMARK_CORRUPTIONS)
        else f"{len(head)} corruptions"
    )
    rows = [["clean accuracy (%)", res["clean_accuracy"]]]
    if "clean_accuracy_same_images" in res:
        n = res.get("clean_same_images", {}).get("n")
        rows.append([f"clean accuracy on the {n} corrupted images (%)", res["clean_accuracy_same_images"]])
    rows += [
        [f"corruption accuracy (%, {over})", res["corruption_accuracy"]],
        [f"mCE (%, {norm}, {over})", res["mce"]],
    ]
    if "relative_mce" in res:
        rows.append([f"relative mCE (%, {norm})", res["relative_mce"]])
    if "clean_accuracy_adapted" in res:
        rows.append(["clean accuracy with BN adaptation (%)", res["clean_accuracy_adapted"]])
    extra = res.get("extra_corruptions")
    if extra:
        names = ", ".join(extra["corruptions"])
        rows.append([f"extra corruptions, not in the headline (%, {names})", extra["corruption_accuracy"]])
    lines += [table(rows, ["metric", "value"]), "", "## Accuracy (%) per corruption and severity", ""]
    header = ["corruption", *(f"s{s}" for s in sev), "mean", "CE"]
    prow = [
        [c, *res["per_corruption"][c], res["per_corruption_mean"][c], res["ce"].get(c, float("nan"))]
        for c in head
    ]
    prow.append(["**mean**", *res["per_severity"], res["corruption_accuracy"], res["mce"]])
    lines += [table(prow, header), ""]
    if extra:
        lines += ["## Extra corruptions (not in the headline)", ""]
        erows = [
            [c, *res["per_corruption"][c], extra["per_corruption_mean"][c]] for c in extra["corruptions"]
        ]
        lines += [table(erows, header[:-1]), ""]
    lines += ["## Accuracy (%) per severity (mean over the headline corruptions)", ""]
    lines += [
        table([[f"s{s}", a] for s, a in zip(sev, res["per_severity"], strict=True)], ["severity", "accuracy"])
    ]
    lines += ["", "## Preprocessing", ""]
    lines += [f"- {k}: {v}" for k, v in res.get("preprocessing", {}).items()]
    return "\n".join(lines) + "\n"


def _plots(res: dict[str, Any], out: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        print("matplotlib is missing: no plots (pip install 'prime-augment[recipes]')", file=sys.stderr)
        return []
    head = res.get("headline_corruptions") or [
        c for c in res["per_corruption"] if c in res["per_corruption_mean"]
    ]
    extra = res.get("extra_corruptions") or {}
    names = [*head, *extra.get("corruptions", [])]
    means = [res["per_corruption_mean"][c] for c in head] + [
        extra["per_corruption_mean"][c] for c in extra.get("corruptions", [])
    ]
    colors = ["tab:blue"] * len(head) + ["tab:gray"] * (len(names) - len(head))
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(names) + 2), 4), layout="constrained")
    ax.bar(range(len(names)), means, color=colors)
    ax.axhline(res["clean_accuracy"], color="k", ls="--", lw=1, label=f"clean {res['clean_accuracy']:.1f}%")
    same = res.get("clean_accuracy_same_images")
    if same is not None:
        n = res.get("clean_same_images", {}).get("n")
        ax.axhline(
            same, color="tab:green", ls="-.", lw=1, label=f"clean, the {n} corrupted images {same:.1f}%"
        )
    ax.axhline(
        res["corruption_accuracy"],
        color="tab:red",
        ls=":",
        lw=1,
        label=f"mean corrupted {res['corruption_accuracy']:.1f}% ({len(head)} corruptions"
        + (", grey bars: extra, not in the mean)" if extra else ")"),
    )
    ax.set_xticks(range(len(names)), [n.replace("_", " ") for n in names], rotation=60, ha="right")
    ax.set_ylabel("accuracy (%) over severities")
    ax.set_ylim(0, 100)
    ax.legend(loc="lower left", fontsize=8)
    fig.savefig(out / "per_corruption.png", dpi=120)
    plt.close(fig)
    sev = res["severities"]
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    for c in head:
        ax.plot(sev, res["per_corruption"][c], lw=0.8, alpha=0.6)
    start = res["clean_accuracy"] if same is None else same
    label = "mean" if same is None else "mean (clean: the corrupted images)"
    ax.plot([0, *sev], [start, *res["per_severity"]], "k-o", lw=2, label=label)
    if same is not None:
        ax.plot([0], [res["clean_accuracy"]], "s", color="tab:gray", label="clean, all test images")
    ax.set_xticks([0, *sev], ["clean", *map(str, sev)])
    ax.set_xlabel("severity")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    fig.savefig(out / "accuracy_vs_severity.png", dpi=120)
    plt.close(fig)
    return ["per_corruption.png", "accuracy_vs_severity.png"]


def write_results(out_dir: str | os.PathLike, res: dict[str, Any]) -> Path:
    """``results.json``, ``results.md`` and the plots into ``out_dir``; returns the JSON path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    res["plots"] = _plots(res, out)
    write_json(out / "results.json", res)
    write_text(out / "results.md", _markdown(res))
    return out / "results.json"


def _default_mce(spec: DataSpec, baseline: dict | None) -> str:
    if baseline is not None:
        return "baseline"
    return "alexnet" if spec.name == "imagenet" else "unnormalised"


def _found_corruptions(root: Path) -> tuple[str, list[str]]:
    """The layout (``npy`` or ``folder``) and the corruption names present in a set's folder."""
    if not root.is_dir():
        raise FileNotFoundError(f"--corruptions-dir {root}: no such folder")
    if (root / "labels.npy").exists() or any(root.glob("*.npy")):
        skip = {"labels", "clean"}
        return "npy", _benchmark_order([p.stem for p in root.glob("*.npy") if p.stem not in skip])
    return "folder", _benchmark_order([e.name for e in os.scandir(root) if e.is_dir()])


def select_corruptions(
    root: str | os.PathLike, names: Sequence[str] | None = None, *, require_benchmark: bool = True
) -> tuple[list[str], list[str], list[str]]:
    """The corruptions to evaluate, those of the headline ``corruption_accuracy`` / ``mce``, and the
    benchmark corruptions the set lacks.

    Without ``names``: the 15 benchmark corruptions are the headline (a missing one is an error naming
    it; with ``require_benchmark=False`` the headline is the benchmark ones present, and the missing ones
    are returned) and any extra ones present (speckle noise, gaussian blur, spatter, saturate, ...) are
    evaluated and reported apart. With ``names``: exactly those, all in the headline (benchmark order).
    ``clean.npy`` and ``labels.npy`` are never corruptions.
    """
    root = Path(root)
    layout, found = _found_corruptions(root)
    if names:
        unknown = [c for c in names if c not in found]
        if unknown:
            raise FileNotFoundError(
                f"--corruptions {','.join(unknown)}: not in the corruption set {root} "
                f"(it has {', '.join(found) or 'none'})"
            )
        chosen = _benchmark_order(list(dict.fromkeys(names)))
        return chosen, chosen, []
    if not found:
        raise FileNotFoundError(f"corruption set {root}: no corruption files or folders")
    missing = [c for c in BENCHMARK_CORRUPTIONS if c not in found]
    if missing and not require_benchmark:
        head = [c for c in found if c in BENCHMARK_CORRUPTIONS] or list(found)
        return list(found), head, missing
    if missing:
        what = ", ".join(f"{c}.npy" if layout == "npy" else f"{c}/" for c in missing)
        raise FileNotFoundError(
            f"corruption set {root} lacks {len(missing)} of the 15 benchmark corruptions: {what} "
            "(the headline mCE needs all 15; pass --corruptions NAMES to evaluate a subset)"
        )
    extras = [c for c in found if c not in BENCHMARK_CORRUPTIONS]
    return [*BENCHMARK_CORRUPTIONS, *extras], list(BENCHMARK_CORRUPTIONS), []


def _image_hw(x: Any) -> tuple[int, int]:
    """``(H, W)`` of a PIL image, a ``[C, H, W]`` tensor or an ``[H, W, C]`` array."""
    from PIL import Image

    if isinstance(x, Image.Image):
        return int(x.size[1]), int(x.size[0])
    if isinstance(x, torch.Tensor):
        return int(x.shape[-2]), int(x.shape[-1])
    a = np.asarray(x)
    return int(a.shape[0]), int(a.shape[1])


def _check_sizes(cset, spec: DataSpec, root: Path) -> None:
    """A ``ValueError`` when the corrupted images are not the clean set's ``H x W`` (``.npy`` layout)."""
    if cset.layout != "npy" or len(spec.val) == 0:
        return
    clean_hw = _image_hw(spec.val[0][0])
    if tuple(cset.image_shape[:2]) != clean_hw:
        raise ValueError(
            f"corruption set {root}: images of {cset.image_shape[0]}x{cset.image_shape[1]}, the clean "
            f"{spec.name} images are {clean_hw[0]}x{clean_hw[1]} (not the same images; rebuild the set "
            "from the clean test images)"
        )


def _same_images(root: Path, cset, clean: Dataset) -> tuple[Dataset, dict[str, Any]] | None:
    """The clean versions of exactly the corrupted images, when the set records them: its
    ``clean.npy`` (written by ``make-corruptions``), else its ``meta.json`` ``indices`` into the clean
    test set. ``None`` for a set that records neither (e.g. the released CIFAR-10-C)."""
    if cset.layout != "npy":
        return None
    meta: dict[str, Any] = {}
    if (root / "meta.json").is_file():
        try:
            meta = json.loads((root / "meta.json").read_text())
        except ValueError as e:
            raise ValueError(f"corruption set: {root / 'meta.json'} is not JSON ({e})") from e
    info = {"source": meta.get("source"), "n": cset.n}
    if (root / "clean.npy").is_file():
        arr = _load_npy(root / "clean.npy", "corruption set")
        if arr.dtype != np.uint8 or tuple(arr.shape) != (cset.n, *cset.image_shape):
            raise ValueError(
                f"corruption set: {root / 'clean.npy'} must be uint8 {[cset.n, *cset.image_shape]} "
                f"(the clean copy of the corrupted images), got {arr.dtype} {list(arr.shape)}"
            )
        return _Block(arr, 0, cset.n, cset.labels[0], cset.transform), {**info, "from": "clean.npy"}
    if "indices" in meta:
        idx = [int(i) for i in meta["indices"]]
        if len(idx) != cset.n or (idx and not 0 <= min(idx) <= max(idx) < len(clean)):
            raise ValueError(
                f"corruption set: {root / 'meta.json'} indices do not fit ({len(idx)} indices for {cset.n} "
                f"images, a clean set of {len(clean)})"
            )
        return torch.utils.data.Subset(clean, idx), {**info, "from": "meta.json indices"}
    return None


def evaluate_run(
    run: str | os.PathLike,
    spec: DataSpec,
    corruptions_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 256,
    workers: int = 0,
    baseline: str | os.PathLike | None = None,
    mce: str = "auto",
    corruption_names: Sequence[str] | None = None,
    bn_adapt: str = "none",
    bn_prior: float = 16.0,
    bn_batch: int = 64,
    amp: bool = True,
    progress: bool = True,
    require_benchmark: bool = False,
) -> dict[str, Any]:
    """Evaluate the model of a run directory (or a ``model.pt``) and write the results into ``out_dir``.

    The headline ``corruption_accuracy`` / ``mce`` is over the 15 benchmark corruptions, or over
    ``corruption_names`` when given; other corruptions of the set are reported under
    ``extra_corruptions``. A set lacking benchmark corruptions is an error with ``require_benchmark``
    (the ``evaluate`` command); otherwise (the evaluation at the end of ``train``) the headline is over
    the ones present, with ``missing_benchmark_corruptions`` and a warning. ``clean_accuracy_same_images``
    is the clean accuracy on exactly the corrupted images when the set records them (``clean.npy`` or
    ``meta.json`` indices of ``make-corruptions``)."""
    if mce not in MCE_MODES:
        raise ValueError(f"--mce must be one of {MCE_MODES}, got {mce!r}")
    model, meta = load_model(run)
    if meta["num_classes"] != spec.num_classes:
        raise ValueError(f"the model has {meta['num_classes']} classes, the dataset {spec.num_classes}")
    base_res = _read_baseline(baseline)
    root = Path(corruptions_dir)
    names, headline, missing = select_corruptions(root, corruption_names, require_benchmark=require_benchmark)
    cset = _open_set(root, spec, names, headline, missing)
    clean = MapDataset(spec.val, spec.eval_transform)
    same = _same_images(root, cset, clean)
    # per-corruption checkpoint: a killed evaluation continues where it stopped
    key = _partial_key(run, root, spec, (bn_adapt, bn_prior, bn_batch), names if corruption_names else None)
    partial_path = Path(out_dir) / ".partial_results.json"
    done = _read_partial(partial_path, key)

    def checkpoint(name: str, accs: list[float]) -> None:
        done[name] = accs
        write_json(partial_path, {"key": key, "per_corruption": done})

    res = evaluate_model(
        model,
        clean,
        cset,
        device=device,
        batch_size=batch_size,
        workers=workers,
        bn_adapt=bn_adapt,
        bn_prior=bn_prior,
        bn_batch=bn_batch,
        amp=amp,
        progress=progress,
        done=dict(done),
        on_corruption=checkpoint,
    )
    mode = _default_mce(spec, base_res) if mce == "auto" else mce
    res.update(_headline(res, names, headline, missing, mode=mode, baseline=base_res))
    if same is not None:  # the clean accuracy on exactly the corrupted images
        net = copy.deepcopy(model).to(device).eval()
        acc = accuracy(net, same[0], device=device, batch_size=batch_size, workers=workers, amp=amp)
        res.update(clean_accuracy_same_images=acc, clean_same_images=same[1])
    res.update(
        preprocessing=_preprocessing(spec, meta, cset),
        corruption_set=cset.describe(),
        model={"path": str(run), **{k: meta[k] for k in ("arch", "num_classes", "mean", "std") if k in meta}},
        clean_set=f"{spec.name} validation/test split, {len(spec.val)} images",
        baseline=str(baseline) if baseline else None,
        environment=environment(device),
    )
    write_results(out_dir, res)
    partial_path.unlink(missing_ok=True)
    return res


def _open_set(
    root: Path, spec: DataSpec, names: list[str], headline: list[str], missing: list[str]
) -> NpyCorruptions | FolderCorruptions:
    """The corruption set's ``names``, checked against the model's input size (a warning for the
    ``missing`` benchmark corruptions)."""
    if missing:
        print(
            f"evaluate: warning: {root} lacks {len(missing)} of the 15 benchmark corruptions "
            f"({', '.join(missing)}); corruption_accuracy / mce are over the {len(headline)} present",
            file=sys.stderr,
        )
    cset = open_corruptions(root, spec, corruptions=names)
    _check_sizes(cset, spec, root)
    return cset


def _read_baseline(baseline: str | os.PathLike | None) -> dict[str, Any] | None:
    """The ``results.json`` of the baseline run that normalises the mCE (``None``: none)."""
    if baseline is None:
        return None
    try:
        return json.loads(Path(baseline).read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"--baseline {baseline}: cannot read a results.json ({e})") from e


def _partial_key(
    run: str | os.PathLike,
    root: Path,
    spec: DataSpec,
    bn: tuple[str, float, int],
    names: list[str] | None,
) -> dict[str, Any]:
    """What an interrupted evaluation's partial results must match to be reused: the model file (path
    and time), the set, the BN adaptation, the clean set's size and the named corruptions."""
    model_file = Path(run) / "model.pt" if Path(run).is_dir() else Path(run)
    key = {
        "model": str(model_file.resolve()),
        "model_mtime": model_file.stat().st_mtime_ns,
        "corruptions": str(root.resolve()),
        "bn": list(bn),
        "clean": len(spec.val),
    }
    if names is not None:
        key["names"] = names
    return key


def _read_partial(path: Path, key: dict[str, Any]) -> dict[str, list[float]]:
    """The per-corruption accuracies an interrupted evaluation with the same ``key`` left in ``path``."""
    if not path.exists():
        return {}
    try:
        saved = json.loads(path.read_text())
        return saved["per_corruption"] if saved.get("key") == key else {}
    except (ValueError, KeyError):
        return {}


def _headline(
    res: dict[str, Any],
    names: list[str],
    headline: list[str],
    missing: list[str],
    *,
    mode: str,
    baseline: dict[str, Any] | None,
) -> dict[str, Any]:
    """The headline metrics (over ``headline``), the missing benchmark corruptions, and the others of the
    set reported apart (``extra_corruptions``)."""
    per = res["per_corruption"]
    head = {c: per[c] for c in headline}
    out = corruption_metrics(res["clean_accuracy"], head, mode=mode, baseline=baseline)
    out["headline_corruptions"] = list(headline)
    if missing:
        out["missing_benchmark_corruptions"] = missing
    extras = [c for c in names if c not in headline]
    if extras:
        out["extra_corruptions"] = {
            "corruptions": extras,
            "per_corruption_mean": {c: sum(per[c]) / len(per[c]) for c in extras},
            "corruption_accuracy": sum(map(sum, (per[c] for c in extras))) / sum(len(per[c]) for c in extras),
            "note": "not in corruption_accuracy / mce (the 15 benchmark corruptions); name them in "
            "--corruptions to include them",
        }
    return out


def _preprocessing(
    spec: DataSpec, meta: dict[str, Any], cset: NpyCorruptions | FolderCorruptions
) -> dict[str, Any]:
    """How the clean images, the model's input and the corrupted images were prepared."""
    pre = dict(spec.preprocessing)
    pre["model_input"] = describe_preprocess(meta.get("preprocess"))
    if cset.layout == "npy":
        pre["corrupted"] = "as stored (uint8 arrays)" + (
            f", resized to {spec.image_size}px" if cset.transform is not None else ""
        )
    else:
        pre["corrupted"] = (
            f"CenterCrop({spec.image_size}) of the stored images" if spec.family == "large" else pre["eval"]
        )
    return pre


# ---------------------------------------------------------------------------------------------- robustness
def _start_seed(seed: int, batch: int, eps: float) -> int:
    """The seed of the random starts of batch ``batch`` at radius ``eps`` (a function of the value)."""
    return (seed * 1_000_003 + batch) * 1_000_033 + zlib.crc32(struct.pack("<d", eps))


def robust_accuracy(
    model: nn.Module,
    dataset: Dataset,
    eps: Sequence[float],
    *,
    norm: str = "linf",
    steps: int = 20,
    step_size: float | None = None,
    random_start: bool = True,
    seed: int = 0,
    device: torch.device | str = "cpu",
    batch_size: int = 256,
    workers: int = 0,
    amp: bool = True,
    progress: bool = False,
) -> dict[str, Any]:
    """Clean accuracy and accuracy under PGD at every radius (in %), the model in eval mode.

    Args:
        model: the classifier on ``[0, 1]`` images (not modified).
        dataset: ``(uint8 or float image, label)`` items.
        eps: the radii (``>= 0``, pixel units of ``[0, 1]`` images).
        norm, steps, step_size, random_start: of :func:`prime_augment.attacks.pgd` (``step_size=None``:
            ``2.5 eps / steps`` for each radius).
        seed: seeds the random starts (a generator per batch and radius, seeded by the radius's value:
            the result does not depend on ``workers`` nor on the other radii of the list).
        amp: bf16 autocast on CUDA (the perturbation stays float32).

    Returns:
        ``{"clean_accuracy", "robust": [{"eps", "step_size", "accuracy"}, ...], "n"}``; an image is
        robust at a radius when it and its adversarial are both classified correctly.
    """
    device = torch.device(device)
    model = copy.deepcopy(model).to(device).eval()
    eps = [float(e) for e in eps]
    if not eps or any(not (e >= 0 and math.isfinite(e)) for e in eps):
        raise ValueError(f"--pgd-eps must be finite radii >= 0, got {eps}")
    sizes = [step_size if step_size is not None else default_step_size(e, steps) for e in eps]
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, pin_memory=device.type == "cuda")
    clean = 0
    robust = [0] * len(eps)
    total = 0
    bar = tqdm(loader, desc=f"PGD-{steps} {norm}", leave=False, disable=not progress)
    use_amp = amp and device.type == "cuda"
    for b, (x, y) in enumerate(bar):
        x, y = to_float(x.to(device, non_blocking=True)), y.to(device)
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            ok = model(x).argmax(1) == y
        clean += int(ok.sum())
        total += int(y.shape[0])
        for i, (e, a) in enumerate(zip(eps, sizes, strict=True)):
            g = torch.Generator(device=device).manual_seed(_start_seed(seed, b, e))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                adv = pgd(
                    model, x, y, norm=norm, eps=e, step_size=a, steps=steps, random_start=random_start,
                    generator=g, model_mode="eval",
                )  # fmt: skip
                with torch.no_grad():
                    robust[i] += int((ok & (model(adv).argmax(1) == y)).sum())
        shown = zip(eps, robust, strict=True)
        bar.set_postfix_str(" ".join(f"{e:.3g}:{100 * r / total:.1f}%" for e, r in shown))
    if total == 0:
        raise ValueError("robust accuracy: no images to evaluate")
    return {
        "clean_accuracy": 100.0 * clean / total,
        "robust": [
            {"eps": e, "step_size": a, "accuracy": 100.0 * r / total}
            for e, a, r in zip(eps, sizes, robust, strict=True)
        ],
        "n": total,
    }


def evaluate_robustness(
    run: str | os.PathLike,
    spec: DataSpec,
    out_dir: str | os.PathLike,
    eps: Sequence[float],
    *,
    norm: str = "linf",
    steps: int = 20,
    step_size: float | None = None,
    random_start: bool = True,
    images: int | None = 1000,
    seed: int = 0,
    device: torch.device | str = "cpu",
    batch_size: int = 256,
    workers: int = 0,
    amp: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """PGD accuracy of the model of a run (:func:`robust_accuracy`) on ``images`` random test images
    (seeded by ``seed``; ``None``: all), written to ``out_dir/robust.json`` and ``robust.md``."""
    if norm not in NORMS:
        raise ValueError(f"--pgd-norm must be one of {NORMS}, got {norm!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"--pgd-steps must be >= 1, got {steps!r}")
    if images is not None and images < 1:
        raise ValueError(f"--pgd-images must be >= 1, got {images!r}")
    model, meta = load_model(run)
    if meta["num_classes"] != spec.num_classes:
        raise ValueError(f"the model has {meta['num_classes']} classes, the dataset {spec.num_classes}")
    ds: Dataset = MapDataset(spec.val, spec.eval_transform)
    if images is not None and images < len(ds):
        idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:images].sort().values
        ds = torch.utils.data.Subset(ds, idx.tolist())
    res = robust_accuracy(
        model, ds, eps, norm=norm, steps=steps, step_size=step_size, random_start=random_start, seed=seed,
        device=device, batch_size=batch_size, workers=workers, amp=amp, progress=progress,
    )  # fmt: skip
    res.update(
        attack={
            "name": "PGD (untargeted, cross-entropy, last iterate)",
            "norm": norm,
            "steps": steps,
            "random_start": random_start,
            "seed": seed,
            "model_mode": "eval",
        },
        model={"path": str(run), **{k: meta[k] for k in ("arch", "num_classes") if k in meta}},
        preprocessing={**spec.preprocessing, "model_input": describe_preprocess(meta.get("preprocess"))},
        test_set=f"{spec.name} validation/test split: {res['n']} of {len(spec.val)} images (seed {seed})",
        environment=environment(device),
    )
    out = Path(out_dir)
    write_json(out / "robust.json", res)
    scale = 255 if norm == "linf" else 1
    rows = [["clean", "-", res["clean_accuracy"]]] + [
        [f"{r['eps'] * scale:.4g}{'/255' if scale == 255 else ''}", f"{r['step_size']:.4g}", r["accuracy"]]
        for r in res["robust"]
    ]
    env = res["environment"]
    md = [
        "# Robust accuracy under PGD",
        "",
        f"- model: `{run}` ({meta.get('arch')}); input pre-processing: {res['preprocessing']['model_input']}",
        f"- attack: PGD-{steps} {norm}, {'random start' if random_start else 'no random start'}, "
        f"model in eval mode; {res['test_set']}",
        f"- device: {env['device']} ({env['device_name']}), date {env['date']}",
        "",
        table(rows, [f"eps ({norm})", "step size", "accuracy (%)"]),
        "",
    ]
    write_text(out / "robust.md", "\n".join(md))
    return res


# ---------------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="prime-augment evaluate",
        description=__doc__,
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="YAML file of option defaults")
    p.add_argument("--run", required=True, help="run directory (or model.pt) of prime-augment train")
    p.add_argument("--dataset", choices=DATASETS, help="default: the run's")
    p.add_argument("--data-dir", help="default: the run's")
    p.add_argument("--class-list", help="class list file (default: the run's)")
    p.add_argument("--val-subset", type=positive_int, help="evaluate the clean accuracy on a random subset")
    p.add_argument(
        "--corruptions-dir", help="CIFAR-10-C format folder or ImageNet-C layout (needed unless --pgd-eps)"
    )
    p.add_argument(
        "--corruptions",
        help="comma-separated corruptions, all in the headline (default: the 15 benchmark ones, each "
        "required, plus any extra ones found, reported apart)",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--mce",
        choices=MCE_MODES,
        default="auto",
        help="auto: alexnet for imagenet, baseline with --baseline, unnormalised otherwise",
    )
    p.add_argument("--baseline", help="results.json of a baseline model (normalises the mCE; IN-100)")
    p.add_argument("--bn-adapt", choices=BN_MODES, default="none", help="test-time BN adaptation")
    p.add_argument("--bn-prior", type=nonneg_float, default=16.0, help="N: weight of the source statistics")
    p.add_argument("--bn-batch", type=positive_int, default=64, help="n for --bn-adapt partial")
    g = p.add_argument_group("robust accuracy under PGD (written to OUT/robust.json)")
    g.add_argument(
        "--pgd-eps", type=fraction, nargs="+", metavar="EPS", help="PGD radii, e.g. 2/255 8/255 (l-inf)"
    )
    g.add_argument("--pgd-norm", choices=NORMS, default="linf", help="the threat model (default linf)")
    g.add_argument("--pgd-steps", type=positive_int, default=20, help="PGD steps (default 20)")
    g.add_argument("--pgd-step-size", type=fraction, help="step size (default 2.5 * eps / steps)")
    g.add_argument("--pgd-no-random-start", action="store_true", help="start at the image")
    g.add_argument(
        "--pgd-images",
        type=nonneg_int,
        default=1000,
        help="random test images to attack (default 1000; 0: all)",
    )
    g.add_argument(
        "--pgd-seed", type=nonneg_int, default=0, help="seed of the image draw and the random starts"
    )
    p.add_argument("--batch-size", type=positive_int, default=256, help="evaluation batch size")
    p.add_argument(
        "--workers", type=nonneg_int, default=min(8, os.cpu_count() or 1), help="DataLoader workers"
    )
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_with_config(build_parser(), argv)
    device = resolve_device(args.device)
    try:
        _, meta = load_model(args.run)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"prime-augment evaluate: --run {args.run}: {e}") from e
    ds = meta.get("dataset") or {}
    dataset = args.dataset or ds.get("name")
    data_dir = args.data_dir or ds.get("data_dir")
    if not dataset or not data_dir:
        raise SystemExit(
            "prime-augment evaluate: pass --dataset and --data-dir (the model file does not record them)"
        )
    if args.bn_batch < 1:
        raise SystemExit(f"--bn-batch must be >= 1, got {args.bn_batch}")
    if not args.corruptions_dir and not args.pgd_eps:
        raise SystemExit("prime-augment evaluate: pass --corruptions-dir, --pgd-eps, or both")
    try:
        spec = build_data(
            dataset,
            data_dir,
            image_size=ds.get("image_size"),
            family=ds.get("family"),
            class_list=args.class_list or ds.get("class_list"),
            val_subset=args.val_subset,
        )
        if args.corruptions_dir:
            _corruption_accuracy(args, spec, device)
        if args.pgd_eps:
            _robust_accuracy(args, spec, device)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"prime-augment evaluate: {e}") from e
    return 0


def _system(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """The options both evaluations share: device, batch size, workers, autocast, progress bars."""
    return {
        "device": device,
        "batch_size": args.batch_size,
        "workers": args.workers,
        "amp": not args.no_amp,
        "progress": not args.no_progress,
    }


def _corruption_accuracy(args: argparse.Namespace, spec: DataSpec, device: torch.device) -> None:
    """``--corruptions-dir``: :func:`evaluate_run` and its one-line summary."""
    res = evaluate_run(
        args.run,
        spec,
        args.corruptions_dir,
        args.out,
        baseline=args.baseline,
        mce=args.mce,
        corruption_names=[c.strip() for c in args.corruptions.split(",")] if args.corruptions else None,
        bn_adapt=args.bn_adapt,
        bn_prior=args.bn_prior,
        bn_batch=args.bn_batch,
        require_benchmark=True,
        **_system(args, device),
    )
    same = res.get("clean_accuracy_same_images")
    same_txt = f" (on the corrupted images {same:.2f}%)" if same is not None else ""
    print(
        f"clean {res['clean_accuracy']:.2f}%{same_txt}  "
        f"corruption {res['corruption_accuracy']:.2f}%  "
        f"mCE {res['mce']:.2f} ({res['mce_normalisation']}, {len(res['headline_corruptions'])} "
        f"corruptions)  -> {Path(args.out) / 'results.json'}"
    )


def _robust_accuracy(args: argparse.Namespace, spec: DataSpec, device: torch.device) -> None:
    """``--pgd-eps``: :func:`evaluate_robustness` and its one-line summary."""
    rob = evaluate_robustness(
        args.run,
        spec,
        args.out,
        args.pgd_eps,
        norm=args.pgd_norm,
        steps=args.pgd_steps,
        step_size=args.pgd_step_size,
        random_start=not args.pgd_no_random_start,
        images=args.pgd_images or None,
        seed=args.pgd_seed,
        **_system(args, device),
    )
    accs = "  ".join(f"eps {r['eps']:.4g}: {r['accuracy']:.2f}%" for r in rob["robust"])
    print(
        f"PGD-{args.pgd_steps} {args.pgd_norm} on {rob['n']} images: "
        f"clean {rob['clean_accuracy']:.2f}%  {accs}  -> {Path(args.out) / 'robust.json'}"
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
