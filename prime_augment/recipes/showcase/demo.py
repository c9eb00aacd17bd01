"""``prime-augment demo``: what PRIME does and buys, in a few CPU minutes, with no download.

1. draws a gallery of what each primitive and PRIME do to real CIFAR-10 test images, with the strength
   each draw changed them by, and the smoothness/strength grids of the method's figures;
2. corrupts the 2,000 held-out demo images live with the package's own corruption code (``builtin``
   backend: 12 corruptions with CIFAR-10-C's parameters; image ``i`` at severity ``1 + i mod 5``, so
   every (corruption, severity) cell has 400 images and every image is seen under every corruption);
3. evaluates, live, the study's models shipped with the package (``cifar_resnet8`` trained by
   ``prime-augment train`` on all 50,000 CIFAR-10 training images for 10 epochs: standard augmentation,
   AugMix, PRIME, PRIME + JSD; their config and provenance in ``data/models/provenance.json``), and
   reports every difference to the standard model with its 95 % interval (paired over the same images);
4. trains the same small network twice, live, on the 600 bundled training images (standard vs PRIME,
   the engine of ``prime-augment train``) to show the pipeline, evaluated the same way;
5. writes ``OUT/report.md``, ``OUT/results.json``, the plots and the live runs' folders (``live/``).

No number of the report is stored: every accuracy is computed when the demo runs. The bundled images
(``prime_augment/data/demo_cifar10.npz``) are 600 training and 2,000 test images of CIFAR-10
(Krizhevsky, 2009), class-balanced, drawn at random (``numpy`` ``default_rng(0)``) from the CIFAR-10
JPEG pack of the project's shared data; their JPEG bytes are stored unchanged with their indices in the
source splits (``tools/make_demo_data.py`` rebuilds the file). The shipped models never saw the test
images. 2,000 images give each accuracy a standard error of at most 1.1 points.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2

from ...prime import PRIME
from .._common import (
    PlainHelpFormatter,
    environment,
    nonneg_int,
    positive_float,
    positive_int,
    resolve_device,
    table,
    write_json,
    write_text,
)
from ..benchmark.corruptions import BUILTIN_CORRUPTIONS, apply_corruption
from ..benchmark.data import ArrayDataset
from ..benchmark.engine import Augmentation, TrainConfig, Trainer, seed_everything
from ..benchmark.evaluate import correct_per_image
from ..benchmark.models import ARCHS, CIFAR_MEAN, CIFAR_STD, build_model, load_model
from .gallery import (
    DEFAULT_STRENGTHS,
    augmentation_samples,
    default_grid_k,
    plot_gallery,
    plot_grids,
    primitive_grid,
)

__all__ = [
    "SHIPPED_MODELS",
    "DemoData",
    "corrupt_live",
    "demo_data_path",
    "demo_images",
    "load_demo_data",
    "load_shipped_model",
    "paired_difference",
    "run_demo",
    "shipped_provenance",
]

EXAMPLE = """Example:
  prime-augment demo                                   # CPU, a few minutes; prints the report's path
  prime-augment demo --out demo_run --device cuda --epochs 60
  prime-augment demo --quick --out /tmp/demo            # seconds: a smoke run (CI)
"""

#: what a finished or interrupted demo folder holds (a re-run replaces exactly these)
_OUTPUTS = (
    "live",
    "corruptions.npz",
    "gallery.png",
    "grids.png",
    "accuracy_per_corruption.png",
    "accuracy_per_severity.png",
    "report.md",
    "results.json",
)
_MARKER = ".prime-augment-demo"
#: the models of the full-CIFAR-10 study shipped with the package (file stem -> label)
SHIPPED_MODELS = {
    "standard": "standard (crop + flip)",
    "augmix": "AugMix",
    "prime": "PRIME",
    "prime_jsd": "PRIME + JSD",
}
#: the two models trained live
_LIVE = (("baseline", "crop + flip"), ("prime", "crop + flip + PRIME"))
#: the corruptions of a --quick run
_QUICK_CORRUPTIONS = ("gaussian_noise", "defocus_blur", "contrast")
SEVERITIES = (1, 2, 3, 4, 5)


# ---------------------------------------------------------------------------------------------- data
@dataclass
class DemoData:
    """The bundled demo images, decoded.

    Attributes:
        train_images, test_images: uint8 ``[N, 32, 32, 3]``.
        train_labels, test_labels: int64 ``[N]``.
        classes: the CIFAR-10 class names.
        source: where the images come from.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: list[str]
    source: str


def demo_data_path() -> Path:
    """Path of the bundled ``demo_cifar10.npz``."""
    return Path(str(resources.files("prime_augment").joinpath("data/demo_cifar10.npz")))


def _decode(jpeg: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    images = []
    for i in range(len(offsets) - 1):
        with Image.open(io.BytesIO(jpeg[offsets[i] : offsets[i + 1]].tobytes())) as im:
            images.append(np.asarray(im.convert("RGB")))
    return np.stack(images)


def load_demo_data(path: str | Path | None = None) -> DemoData:
    """Decode the demo images (600 train + 2,000 test CIFAR-10 images, class-balanced).

    Args:
        path: an ``.npz`` in the format of ``tools/make_demo_data.py`` (default: the bundled file).

    Example:
        >>> d = load_demo_data()
        >>> d.train_images.shape, d.test_images.shape, len(d.classes)
        ((600, 32, 32, 3), (2000, 32, 32, 3), 10)
    """
    p = Path(path) if path is not None else demo_data_path()
    if not p.is_file():
        raise FileNotFoundError(f"demo data: no file at {p} (reinstall prime-augment)")
    with np.load(p, allow_pickle=False) as z:
        return DemoData(
            train_images=_decode(z["train_jpeg"], z["train_offsets"]),
            train_labels=z["train_labels"].astype(np.int64),
            test_images=_decode(z["test_jpeg"], z["test_offsets"]),
            test_labels=z["test_labels"].astype(np.int64),
            classes=[str(c) for c in z["classes"]],
            source=str(z["source"]),
        )


def demo_images(split: str = "test", limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The bundled demo images as a float batch ``(N, 3, 32, 32)`` in ``[0, 1]`` and int64 labels.

    Args:
        split: ``"train"`` (600 images) or ``"test"`` (2,000 held-out images).
        limit: keep the first ``limit`` images (they are sorted by their index in CIFAR-10).

    Example:
        >>> x, y = demo_images("test", limit=4)
        >>> tuple(x.shape), x.dtype, tuple(y.shape)
        ((4, 3, 32, 32), torch.float32, (4,))
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit!r}")
    data = load_demo_data()
    images, labels = (
        (data.train_images, data.train_labels) if split == "train" else (data.test_images, data.test_labels)
    )
    return _to_float(images[:limit]), torch.from_numpy(labels[:limit])


def _balanced(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Sorted indices of the first ``per_class`` items of every class."""
    return np.sort(np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in np.unique(labels)]))


def _one_per_class(labels: np.ndarray, n: int) -> np.ndarray:
    return np.array([np.flatnonzero(labels == c)[0] for c in np.unique(labels)][:n])


def _to_float(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0)


# ---------------------------------------------------------------------------------------------- output folder
def _prepare_out(out: Path) -> None:
    """Create ``out``; a previous demo's outputs there are replaced, anything else is an error."""
    if out.exists() and not out.is_dir():
        raise SystemExit(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / _MARKER).exists():
            raise SystemExit(
                f"--out {out}: the folder exists and is not a prime-augment demo folder; choose a new --out"
            )
        for name in _OUTPUTS:
            p = out / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / _MARKER).write_text("outputs of prime-augment demo; a new demo run replaces them\n")


def _load_average() -> float | None:
    """The 1-minute load average (``None`` where the platform has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _load_note(load: dict[str, float | None]) -> str:
    if load["start"] is None:
        return ""
    return f" (1-min load average {load['start']:g} at the start, {load['end']:g} at the end)"


# ------------------------------------------------------------------------------------------ shipped models
def _models_dir() -> Path:
    return Path(str(resources.files("prime_augment").joinpath("data/models")))


def shipped_provenance() -> dict[str, Any]:
    """Where the shipped models come from: per model, the run's resolved options, environment, git
    commit and training time (``data/models/provenance.json``; no accuracy is stored)."""
    path = _models_dir() / "provenance.json"
    if not path.is_file():
        raise FileNotFoundError(f"demo models: no provenance file at {path} (reinstall prime-augment)")
    return json.loads(path.read_text())


def load_shipped_model(key: str) -> tuple[torch.nn.Module, dict[str, Any]]:
    """One of the study's models shipped with the package, through the recipes' model loader.

    Args:
        key: one of :data:`SHIPPED_MODELS` (``"standard"``, ``"augmix"``, ``"prime"``, ``"prime_jsd"``).

    Returns:
        The model (eval mode, normalisation inside: it takes images in ``[0, 1]``) and its record.

    Example:
        >>> model, meta = load_shipped_model("prime")
        >>> meta["arch"], meta["num_classes"], meta["augment"]
        ('cifar_resnet8', 10, 'prime')
    """
    if key not in SHIPPED_MODELS:
        raise ValueError(f"key must be one of {tuple(SHIPPED_MODELS)}, got {key!r}")
    return load_model(_models_dir() / f"{key}.pt")


# ---------------------------------------------------------------------------------------------- evaluation
def corrupt_live(
    images: np.ndarray, corruptions: Sequence[str], seed: int = 0, progress: bool = False
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every image under every corruption, image ``i`` at severity ``1 + i mod 5`` (``builtin`` backend).

    Returns:
        ``{name: uint8 [N, H, W, 3]}`` and the ``[N]`` severities.

    Example:
        >>> x = np.full((6, 8, 8, 3), 100, dtype=np.uint8)
        >>> out, sev = corrupt_live(x, ["contrast"])
        >>> sev.tolist(), out["contrast"].shape, bool((out["contrast"] != 100).all())
        ([1, 2, 3, 4, 5, 1], (6, 8, 8, 3), True)
    """
    from tqdm.auto import tqdm

    severity = 1 + np.arange(len(images)) % len(SEVERITIES)
    out = {}
    for name in tqdm(corruptions, desc="corrupting the test images", disable=not progress, leave=False):
        arr = np.empty_like(images)
        for s in SEVERITIES:
            idx = np.flatnonzero(severity == s)
            if idx.size:
                arr[idx] = apply_corruption(images[idx], name, s, backend="builtin", seed=seed + s)
        out[name] = arr
    return out, severity


def _correct(
    model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, device: torch.device
) -> np.ndarray:
    """Per-image correctness (bool ``[N]``) of ``model`` on uint8 ``[N, H, W, 3]`` images."""
    return correct_per_image(model.to(device), ArrayDataset(images, labels), device=device, batch_size=500)


@dataclass(frozen=True)
class _TestSet:
    """The test images (uint8 ``[N, H, W, 3]``) and labels, and the images under each corruption (image
    ``i`` at ``severity[i]``)."""

    clean: np.ndarray
    labels: np.ndarray
    corrupted: dict[str, np.ndarray]
    severity: np.ndarray


def _score(model: torch.nn.Module, test: _TestSet, device: torch.device) -> dict[str, Any]:
    """Accuracies (%) of one model, and its per-image results for the paired intervals (``_per_image``)."""
    ok_clean = _correct(model, test.clean, test.labels, device)
    ok = {n: _correct(model, x, test.labels, device) for n, x in test.corrupted.items()}
    per_corruption = {
        n: [100.0 * float(v[test.severity == s].mean()) for s in SEVERITIES] for n, v in ok.items()
    }
    return {
        "clean_accuracy": 100.0 * float(ok_clean.mean()),
        "corruption_accuracy": 100.0 * float(np.mean([v.mean() for v in ok.values()])),
        "per_corruption": per_corruption,
        "per_corruption_mean": {n: 100.0 * float(v.mean()) for n, v in ok.items()},
        "per_severity": [float(np.mean([per_corruption[n][k] for n in ok])) for k in range(len(SEVERITIES))],
        "severities": list(SEVERITIES),
        "_per_image": {"clean": ok_clean, "corrupted": np.mean(list(ok.values()), axis=0)},
    }


def paired_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """``mean(a - b)`` in points (%) and the half-width of its 95 % interval, paired over the images.

    ``a``, ``b``: per-image results of two models on the same images (0/1 correctness, or a mean over
    corruptions). The interval is the normal one, ``1.96 sd(a - b) / sqrt(n)``: pairing removes the
    images' own difficulty, so it is narrower than two independent standard errors.

    Example:
        >>> d, hw = paired_difference(np.array([1, 1, 0, 1]), np.array([1, 0, 0, 0]))
        >>> round(d, 1), round(hw, 1)
        (50.0, 56.6)
    """
    d = 100.0 * (np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
    if d.size < 2:
        return float(d.mean()) if d.size else 0.0, float("nan")
    return float(d.mean()), float(1.96 * d.std(ddof=1) / math.sqrt(d.size))


def _differences(results: dict[str, dict[str, Any]], reference: str) -> dict[str, dict[str, list[float]]]:
    ref = results[reference]["_per_image"]
    return {
        k: {
            part: list(paired_difference(r["_per_image"][part], ref[part])) for part in ("clean", "corrupted")
        }
        for k, r in results.items()
        if k != reference
    }


# ---------------------------------------------------------------------------------------------- live training
def _train_live(
    key: str,
    data: DemoData,
    train_idx: np.ndarray,
    config: TrainConfig,
    arch: str,
    device,
    out: Path,
    jsd: bool,
) -> tuple[torch.nn.Module, float]:
    """Train one live model (the engine of ``prime-augment train``); returns it and its training time."""
    seed_everything(config.seed)  # the same initialisation for both models
    model = build_model(arch, len(data.classes), mean=CIFAR_MEAN, std=CIFAR_STD)
    if key == "prime":
        aug = Augmentation("prime", prime=PRIME.from_preset("cifar10"), placement="device")
    else:
        aug = Augmentation("none")
    geometric = v2.Compose([v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()])
    train_set = ArrayDataset(data.train_images[train_idx], data.train_labels[train_idx], name="demo training")
    t0 = time.perf_counter()
    trainer = Trainer(
        model,
        train_set,
        geometric,
        dataclasses.replace(config, jsd=jsd and key == "prime"),
        aug,
        device=device,
        out_dir=out / "live" / key,
        arch=arch,
        num_classes=len(data.classes),
        record={"dataset": {"name": "prime-augment demo images"}},
    )
    return trainer.fit().model, time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------- plots
_COLORS = {
    "standard": "tab:gray",
    "augmix": "tab:orange",
    "prime": "tab:blue",
    "prime_jsd": "tab:purple",
    "baseline": "tab:gray",
}


def _bars(plt, results: dict[str, dict[str, Any]], labels: list[str], values, ylabel: str, title: str, path):
    """Grouped bars, one group per label, one bar per model (``values(result) -> heights``), with the
    binomial standard error of an accuracy on the images of its cell and the chance level."""
    width = 0.8 / len(results)
    fig, ax = plt.subplots(figsize=(max(7.0, 0.6 * len(labels) + 2), 4.2), layout="constrained")
    for k, (key, res) in enumerate(results.items()):
        xs = np.arange(len(labels)) + (k - (len(results) - 1) / 2) * width
        acc, n = (np.asarray(v, dtype=np.float64) for v in zip(*values(res), strict=True))
        err = 100.0 * np.sqrt(acc / 100.0 * (1.0 - acc / 100.0) / n)
        ax.bar(xs, acc, width, yerr=err, capsize=2, label=res["label"], color=_COLORS.get(key))
    ax.axhline(10.0, color="k", ls=":", lw=1, label="chance")
    rotate = {"rotation": 55, "ha": "right"} if max(map(len, labels)) > 10 else {}
    ax.set_xticks(range(len(labels)), labels, **rotate)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, ncol=2)
    ax.set_title(title, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_comparison(results: dict[str, dict[str, Any]], n_test: int, out: Path) -> list[str]:
    from .gallery import _pyplot

    plt = _pyplot()
    names = list(next(iter(results.values()))["per_corruption"])
    n_cell = n_test / len(SEVERITIES)
    _bars(
        plt,
        results,
        ["clean", *(n.replace("_", " ") for n in names), "mean corrupted"],
        lambda r: [
            (r["clean_accuracy"], n_test),
            *((r["per_corruption_mean"][n], n_test) for n in names),
            (r["corruption_accuracy"], n_test * len(names)),
        ],
        "accuracy (%), mean over severities",
        f"Models trained on all of CIFAR-10, on {n_test} held-out images corrupted live",
        out / "accuracy_per_corruption.png",
    )
    _bars(
        plt,
        results,
        ["clean", *(f"severity {s}" for s in SEVERITIES)],
        lambda r: [(r["clean_accuracy"], n_test), *((v, n_cell * len(names)) for v in r["per_severity"])],
        "accuracy (%), mean over corruptions",
        "Accuracy by corruption severity",
        out / "accuracy_per_severity.png",
    )
    return ["accuracy_per_corruption.png", "accuracy_per_severity.png"]


# ---------------------------------------------------------------------------------------------- report
def _interval(d: list[float]) -> str:
    return f"{d[0]:+.2f} [{d[0] - d[1]:+.2f}, {d[0] + d[1]:+.2f}]"


def _accuracy_table(
    models: dict[str, dict[str, Any]], diffs: dict[str, dict[str, list[float]]], ref: str
) -> str:
    rows = []
    for k, r in models.items():
        d = diffs.get(k)
        rows.append(
            [
                r["label"],
                r["clean_accuracy"],
                r["corruption_accuracy"],
                _interval(d["clean"]) if d else "(reference)",
                _interval(d["corrupted"]) if d else "(reference)",
            ]
        )
    return table(
        rows,
        [
            "model",
            "clean",
            "corrupted (mean)",
            f"clean vs {ref} [95 % interval]",
            f"corrupted vs {ref} [95 %]",
        ],
    )


def _verdict(d: list[float], what: str) -> str:
    if d[0] - d[1] > 0:
        return f"raised {what} by {d[0]:.1f} points (95 % interval {d[0] - d[1]:.1f} to {d[0] + d[1]:.1f})"
    if d[0] + d[1] < 0:
        return (
            f"lowered {what} by {-d[0]:.1f} points (95 % interval {-d[0] - d[1]:.1f} to {-d[0] + d[1]:.1f})"
        )
    return f"changed {what} by {d[0]:+.1f} points, which is within the noise (95 % interval {_interval(d)})"


def _study_setting(summary: dict[str, Any]) -> str:
    """How the shipped models were trained, from their provenance (e.g. "cifar_resnet8, 10 epochs")."""
    opts = (summary["models"].get("standard", {}).get("provenance") or {}).get("options", {})
    return f"`{opts.get('arch', '?')}`, {opts.get('epochs', '?')} epochs, seed {opts.get('seed', '?')}"


def _summary_paragraph(summary: dict[str, Any]) -> str:
    d = summary["differences"].get("prime")
    if d is None:
        return ""
    s = summary["setting"]
    return (
        "**What PRIME bought and cost here.** Against the same network trained with the standard "
        f"augmentation only, PRIME {_verdict(d['corrupted'], 'the accuracy on corrupted images')} and "
        f"{_verdict(d['clean'], 'the clean accuracy')}, on {s['n_test']} test images the models never saw. "
        f"This is a small network ({_study_setting(summary)}, on one CPU thread), tested on "
        f"{len(s['corruptions'])} corruptions of the package's `builtin` set (CIFAR-10-C's parameters; not "
        "the 15 files of CIFAR-10-C); the method's paper trains a ResNet-18 for 100 epochs (clean / "
        "CIFAR-10-C accuracy: standard 95.0 / 74.0, AugMix 95.2 / 88.6, PRIME 94.2 / 89.8). What carries "
        "over is the direction of the trade-off, not the size of the numbers."
    )


def _gallery_text(
    mean_abs_change: dict[str, float], spectral_saturated: float, original_saturated: float
) -> list[str]:
    changes = ", ".join(f"{k} {v:.3f}" for k, v in mean_abs_change.items())
    return [
        "![gallery](gallery.png)",
        "",
        "Each row is a test image; each column after the original is an independent random draw of the "
        "primitive named above it, at a strength drawn at random as in training (`sigma ~ U(0, sigma_max)` "
        "for the filter, the arcsine laws of the cut and temperature for the diffeomorphism, "
        f"`v ~ U(0, v_max)` for the color map). Mean absolute change of these draws (pixel values in "
        f"[0, 1]): {changes}. The spectral filter is the strongest: its taps have a standard deviation of up "
        f"to 4, so many draws saturate ({100 * spectral_saturated:.0f} % of the spectral pixels here are "
        f"clipped to 0 or 1, against {100 * original_saturated:.0f} % of the originals' pixels at 0 or 1) "
        "and look like near-white or near-black frames with edges; that is the method's strength (the "
        "public code changes an image by 0.41 on average), and PRIME's mixing with "
        "the original image (`(1 - p) x + p mix`) keeps its output recognisable.",
        "",
        "The smoothness/strength grids (rows: K; columns: strength as a multiple of the preset's largest; "
        "the same random draw along a row):",
        "",
        "![grids](grids.png)",
    ]


def _report(summary: dict[str, Any]) -> str:
    s, env, models, live = summary["setting"], summary["environment"], summary["models"], summary["live"]
    first = next(iter(models.values()))
    lines = [
        "# prime-augment demo",
        "",
        f"- date: {env['date']}; device: {env['device']} ({env['device_name']}), {s['threads']} CPU "
        f"thread(s); wall time {summary['wall_seconds']:.0f} s, CPU time {summary['cpu_seconds']:.0f} s"
        f"{_load_note(summary['load_average'])}",
        f"- prime-augment {env['prime_augment']}, torch {env['torch']}, torchvision {env.get('torchvision')}",
        "- every number below was computed by this run",
        "",
        "## 1. What the augmentations do",
        "",
        *_gallery_text(**summary["gallery"]),
        "",
        "## 2. Models trained on all of CIFAR-10, evaluated now",
        "",
        f"The study's models ({', '.join(SHIPPED_MODELS[k] for k in models)}; shipped with the package, "
        f"trained by `prime-augment train` on the 50,000 training images: {_study_setting(summary)}; see "
        f"`data/models/provenance.json`) on {s['n_test']} held-out test images and their live-corrupted "
        f"copies ({len(s['corruptions'])} corruptions, image i at severity 1 + i mod 5). Accuracy in %; "
        "differences to the standard model in points with their 95 % interval, paired over the same images.",
        "",
        _accuracy_table(models, summary["differences"], "standard"),
        "",
        f"Each accuracy has a standard error of at most {summary['standard_error']:.2f} points "
        f"(binomial on {s['n_test']} images).",
        "",
        _summary_paragraph(summary),
        "",
        "![per corruption](accuracy_per_corruption.png)",
        "",
        "### Per corruption (mean over the severities)",
        "",
        table(
            [[c, *(m["per_corruption_mean"][c] for m in models.values())] for c in first["per_corruption"]],
            ["corruption", *(m["label"] for m in models.values())],
        ),
        "",
        "![per severity](accuracy_per_severity.png)",
        "",
        "### Per severity (mean over the corruptions)",
        "",
        table(
            [["clean", *(m["clean_accuracy"] for m in models.values())]]
            + [
                [f"severity {sv}", *(m["per_severity"][i] for m in models.values())]
                for i, sv in enumerate(SEVERITIES)
            ],
            ["", *(m["label"] for m in models.values())],
        ),
        "",
        "## 3. The pipeline, live: training on the 600 bundled images",
        "",
        f"The same network trained now from the same initialisation, {s['epochs']} epochs on "
        f"{s['n_train']} training images ({live['models']['baseline']['train_seconds']:.0f} s standard, "
        f"{live['models']['prime']['train_seconds']:.0f} s with PRIME), evaluated on the same test images:",
        "",
        _accuracy_table(live["models"], live["differences"], "baseline"),
        "",
        f"Here PRIME {_verdict(live['differences']['prime']['corrupted'], 'the corrupted accuracy')} and "
        f"{_verdict(live['differences']['prime']['clean'], 'the clean accuracy')}. This run shows the "
        "pipeline (`Trainer`, PRIME on the batch, the evaluation) end to end; it is not evidence about the "
        f"method: {s['n_train']} images are {100 * s['n_train'] / 50000:.1f} % of CIFAR-10 and a network "
        "that has seen so few is limited by what it has learnt, not by its robustness. Section 2 is the "
        "comparison that means something.",
        "",
        "## Setting",
        "",
        f"- data: {s['data_source']}",
        f"- corruptions (`builtin` backend, seed {s['seed']}): " + ", ".join(s["corruptions"]),
        f"- live training: `{s['arch']}`, batch {s['batch_size']}, SGD (Nesterov, momentum 0.9, weight "
        f"decay 5e-4), one-cycle LR peaking at {s['lr']}, gradient clipping 0.5; RandomCrop(32, padding=4) "
        '+ flip, PRIME run: then `PRIME.from_preset("cifar10")` on every batch',
        "- the live runs' folders (`live/baseline`, `live/prime`) hold `model.pt` and the training logs",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- the demo
def _check_args(epochs: Any, arch: Any, batch_size: Any) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"--epochs must be an int >= 1, got {epochs!r}")
    if arch not in ARCHS:
        raise ValueError(f"--arch must be one of {ARCHS}, got {arch!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"--batch-size must be an int >= 1, got {batch_size!r}")


def _pictures(data: DemoData, out: Path, seed: int, quick: bool) -> dict[str, Any]:
    """The gallery and the grids; returns the draws' mean absolute change and the spectral saturation."""
    pick = _one_per_class(data.test_labels, 3 if quick else 10)
    shown = _to_float(data.test_images[pick])
    names = [data.classes[int(c)] for c in data.test_labels[pick]]
    draws = augmentation_samples(shown, preset="cifar10", samples=1 if quick else 2, seed=seed)
    plot_gallery(
        shown, draws, out / "gallery.png", names=names, title="PRIME and its primitives (CIFAR-10 preset)"
    )
    ks = default_grid_k(32)
    strengths = DEFAULT_STRENGTHS if not quick else (0.0, 1.0)
    if quick:
        ks = {p: k[:2] for p, k in ks.items()}
    grids = {p: primitive_grid(shown[0], p, k, strengths, preset="cifar10", seed=seed) for p, k in ks.items()}
    plot_grids(
        grids,
        ks,
        strengths,
        out / "grids.png",
        title="rows: smoothness K; columns: strength a (x the preset's largest)",
    )

    def saturated(x: torch.Tensor) -> float:
        return float(((x == 0) | (x == 1)).float().mean())

    return {
        "mean_abs_change": {k: float((v - shown[:, None]).abs().mean()) for k, v in draws.items()},
        "spectral_saturated": saturated(draws["spectral"]),
        "original_saturated": saturated(shown),
    }


def _public(results: dict[str, dict[str, Any]], labels: dict[str, str], extra: dict[str, dict]) -> dict:
    """The JSON form of scored models (without the per-image arrays)."""
    return {
        k: {"label": labels[k], **{f: v for f, v in r.items() if f != "_per_image"}, **extra.get(k, {})}
        for k, r in results.items()
    }


def run_demo(
    out: str | Path,
    *,
    epochs: int = 30,
    seed: int = 0,
    device: torch.device | str = "cpu",
    quick: bool = False,
    arch: str = "cifar_resnet8",
    batch_size: int = 64,
    lr: float = 0.1,
    workers: int = 0,
    progress: bool = True,
    keep_corruptions: bool = False,
    jsd: bool = False,
) -> dict[str, Any]:
    """Run the demo and write its report into ``out`` (see the module docstring).

    Args:
        out: output folder (created; a previous demo's outputs there are replaced).
        epochs: training epochs of each live model (``>= 1``).
        seed: seeds the live runs (data order, initialisation, augmentation) and the corruptions.
        device: where to train and evaluate.
        quick: a smoke run in seconds: 50 test images, 3 corruptions, 10 training images per class and one
            epoch (unless ``epochs`` is smaller), a small gallery.
        arch: the live runs' network, one of :data:`~prime_augment.recipes.benchmark.models.ARCHS`.
        batch_size, lr: the live runs' training batch and peak learning rate.
        workers: DataLoader worker processes of the live runs (0: in this process).
        progress: progress bars.
        keep_corruptions: keep the live-corrupted test images in ``out/corruptions.npz``.
        jsd: train the live PRIME model with the JSD consistency loss (3x its training compute).

    Returns:
        The summary written to ``results.json`` (``report`` holds the report's path).
    """
    t_start, cpu_start, load_start = time.perf_counter(), time.process_time(), _load_average()
    _check_args(epochs, arch, batch_size)
    device = torch.device(device)
    data = load_demo_data()
    test_idx, train_idx, corruptions = _subsets(data, quick)
    if quick:
        epochs, batch_size = min(epochs, 1), min(batch_size, 32)
    if batch_size > len(train_idx):
        raise ValueError(f"--batch-size {batch_size} is larger than the {len(train_idx)} training images")
    out = Path(out)
    _prepare_out(out)
    gallery = _pictures(data, out, seed, quick)
    test = _corrupted_test_set(data, test_idx, corruptions, seed, out if keep_corruptions else None, progress)
    if progress:
        print(f"[demo] evaluating the shipped models on {len(test_idx)} test images ...", file=sys.stderr)
    shipped = {k: _score(load_shipped_model(k)[0], test, device) for k in SHIPPED_MODELS}
    provenance = shipped_provenance()
    config = TrainConfig(
        epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, workers=workers, progress=progress
    )
    live, seconds = _live_runs(data, train_idx, test, config, arch, device, out, jsd)
    setting = {
        "arch": arch,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "quick": quick,
        "n_train": len(train_idx),
        "n_test": len(test_idx),
        "corruptions": corruptions,
        "severity_of_image": "1 + i mod 5",
        "threads": torch.get_num_threads(),
        "data_source": data.source,
    }
    summary = _summary(shipped, provenance, live, seconds, jsd, gallery, setting, device)
    summary["plots"] = ["gallery.png", "grids.png", *_plot_comparison(summary["models"], len(test_idx), out)]
    summary["wall_seconds"] = time.perf_counter() - t_start
    summary["cpu_seconds"] = time.process_time() - cpu_start
    summary["load_average"] = {"start": load_start, "end": _load_average()}
    summary["report"] = str((out / "report.md").absolute())
    write_text(out / "report.md", _report(summary))
    write_json(out / "results.json", summary)
    return summary


def _subsets(data: DemoData, quick: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The test and training images used, and the corruptions: all of them, or a quick run's few (5 test
    and 10 training images per class, 3 corruptions)."""
    if quick:
        return _balanced(data.test_labels, 5), _balanced(data.train_labels, 10), list(_QUICK_CORRUPTIONS)
    return np.arange(len(data.test_labels)), np.arange(len(data.train_labels)), list(BUILTIN_CORRUPTIONS)


def _corrupted_test_set(
    data: DemoData,
    test_idx: np.ndarray,
    corruptions: Sequence[str],
    seed: int,
    keep_in: Path | None,
    progress: bool,
) -> _TestSet:
    """The test images and their live-corrupted copies (:func:`corrupt_live`), also saved to
    ``keep_in/corruptions.npz`` when ``keep_in`` is given."""
    clean, labels = data.test_images[test_idx], data.test_labels[test_idx]
    corrupted, severity = corrupt_live(clean, corruptions, seed=seed, progress=progress)
    if keep_in is not None:
        np.savez_compressed(
            keep_in / "corruptions.npz", clean=clean, labels=labels, severity=severity, **corrupted
        )
    return _TestSet(clean, labels, corrupted, severity)


def _live_runs(
    data: DemoData,
    train_idx: np.ndarray,
    test: _TestSet,
    config: TrainConfig,
    arch: str,
    device: torch.device,
    out: Path,
    jsd: bool,
) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    """Train the two live models (:data:`_LIVE`) and score them; returns the scores and training times."""
    live, seconds = {}, {}
    for key, label in _LIVE:
        if config.progress:
            print(
                f"[demo] training the {label} model live ({arch}, {config.epochs} epochs) ...",
                file=sys.stderr,
            )
        model, seconds[key] = _train_live(key, data, train_idx, config, arch, device, out, jsd)
        live[key] = _score(model, test, device)
    return live, seconds


def _summary(
    shipped: dict[str, dict[str, Any]],
    provenance: dict[str, Any],
    live: dict[str, dict[str, Any]],
    seconds: dict[str, float],
    jsd: bool,
    gallery: dict[str, Any],
    setting: dict[str, Any],
    device: torch.device,
) -> dict[str, Any]:
    """``results.json`` without the plots and the timings: the scored models (shipped, with their
    provenance; live, with their training times), the paired differences, the gallery's numbers, the
    setting, and the largest standard error of the clean accuracies compared."""
    live_labels = {"baseline": _LIVE[0][1], "prime": _LIVE[1][1] + (" + JSD" if jsd else "")}
    compared = [r[k] / 100.0 for r in (*shipped.values(), *live.values()) for k in ("clean_accuracy",)]
    return {
        "format": "prime-augment-demo/2",
        "models": _public(shipped, SHIPPED_MODELS, {k: {"provenance": provenance.get(k)} for k in shipped}),
        "differences": _differences(shipped, "standard"),
        "live": {
            "models": _public(live, live_labels, {k: {"train_seconds": seconds[k]} for k in live}),
            "differences": _differences(live, "baseline"),
        },
        "gallery": gallery,
        "setting": setting,
        # the largest binomial standard error of the clean accuracies compared (each on n_test images;
        # a corrupted mean pools n_test x corruptions predictions and has a smaller one)
        "standard_error": max(100.0 * math.sqrt(p * (1 - p) / setting["n_test"]) for p in compared),
        "environment": environment(device),
    }


# ---------------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="prime-augment demo",
        description=__doc__,
        epilog=EXAMPLE,
        formatter_class=PlainHelpFormatter,
    )
    p.add_argument(
        "--out", default="prime-augment-demo", help="output folder (default: ./prime-augment-demo)"
    )
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:N")
    p.add_argument(
        "--epochs", type=positive_int, default=30, help="training epochs of each live model (default 30)"
    )
    p.add_argument(
        "--seed", type=nonneg_int, default=0, help="seeds the live runs and the corruptions (default 0)"
    )
    p.add_argument("--quick", action="store_true", help="a smoke run in seconds (tiny subset, 1 epoch)")
    p.add_argument(
        "--arch",
        choices=ARCHS,
        default="cifar_resnet8",
        help="the live runs' network (default: cifar_resnet8, 0.08M)",
    )
    p.add_argument(
        "--batch-size", type=positive_int, default=64, help="training batch of the live runs (default 64)"
    )
    p.add_argument(
        "--lr", type=positive_float, default=0.1, help="peak learning rate of the one-cycle schedule"
    )
    p.add_argument(
        "--threads",
        type=nonneg_int,
        default=1,
        help="CPU threads for torch (default 1: the model is tiny, and extra threads slow it down badly "
        "when other jobs share the cores; 0: torch's default)",
    )
    p.add_argument("--workers", type=nonneg_int, default=0, help="DataLoader workers (0: in this process)")
    p.add_argument(
        "--keep-corruptions",
        action="store_true",
        help="keep the corrupted test images in OUT/corruptions.npz",
    )
    p.add_argument(
        "--jsd", action="store_true", help="live PRIME model with the JSD loss (3 views, 3x slower)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    device = resolve_device(args.device)
    if args.threads < 0:
        raise SystemExit(f"--threads must be >= 0, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        summary = run_demo(
            args.out,
            epochs=args.epochs,
            seed=args.seed,
            device=device,
            quick=args.quick,
            arch=args.arch,
            batch_size=args.batch_size,
            lr=args.lr,
            workers=args.workers,
            progress=not args.no_progress,
            keep_corruptions=args.keep_corruptions,
            jsd=args.jsd,
        )
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"prime-augment demo: {e}") from e
    n = summary["setting"]["n_test"]
    print(
        f"models trained on all of CIFAR-10, on {n} held-out images (difference to standard, 95% interval):"
    )
    for key, r in summary["models"].items():
        d = summary["differences"].get(key)
        vs = f"  ({_interval(d['clean'])} / {_interval(d['corrupted'])})" if d else ""
        acc = f"clean {r['clean_accuracy']:5.1f}%  corrupted {r['corruption_accuracy']:5.1f}%"
        print(f"{r['label']:>24}: {acc}{vs}")
    print(f"report: {summary['report']}  ({summary['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
