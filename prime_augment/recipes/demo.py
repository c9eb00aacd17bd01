"""``prime-augment demo``: PRIME end to end in a few CPU minutes, on real images shipped with the package.

What it does, with no download:

1. draws a gallery of what each primitive and PRIME do to the demo images, and the smoothness/strength
   grids of the method's figures (``gallery.png``, ``grids.png``);
2. builds a corrupted copy of the held-out demo images with the package's own corruption code
   (``make-corruptions``' builtin set: 12 corruptions x 5 severities, CIFAR-10-C parameters);
3. trains the same small network twice from the same initialisation, with the standard augmentation
   (random crop + flip) and with PRIME added (CIFAR-10 preset, on the whole batch), with the training
   engine of ``prime-augment train``;
4. evaluates both, clean and corrupted, with the functions of ``prime-augment evaluate``;
5. writes ``OUT/report.md`` (tables, the pictures, the setting, the timing), ``OUT/results.json``,
   ``accuracy_per_corruption.png``, ``accuracy_per_severity.png``, and each model's run folder
   (``baseline/``, ``prime/``: ``model.pt``, training log, ``eval/`` with the evaluate outputs).

The demo images (``prime_augment/data/demo_cifar10.npz``, 276 KiB) are 600 training and 300 test
images of CIFAR-10 (Krizhevsky, 2009), 60 and 30 per class, drawn at random (``numpy`` ``default_rng(0)``)
from the CIFAR-10 JPEG pack of the project's shared data (the real CIFAR-10 images as the JPEG
quality-75 files of a public image dump); their JPEG bytes are stored unchanged with their indices in
the source splits. ``tools/make_demo_data.py`` rebuilds the file from the pack.

With so few images and epochs the models are weak (a few tens of % accuracy) and 300 test images give
each accuracy a standard error of about 3 points: the demo shows the pipeline and the direction of the
effect, not the method's published numbers (those need the full datasets: ``prime-augment train``).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import shutil
import sys
import tempfile
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

from ..prime import PRIME
from ._common import environment, resolve_device, table, write_json, write_text
from .corruptions import BUILTIN_CORRUPTIONS, make_corruption_set
from .data import ArrayDataset, NpyCorruptions
from .engine import Augmentation, TrainConfig, Trainer, seed_everything
from .evaluate import corruption_metrics, evaluate_model, write_results
from .gallery import (
    DEFAULT_STRENGTHS,
    augmentation_samples,
    default_grid_k,
    plot_gallery,
    plot_grids,
    primitive_grid,
)
from .models import ARCHS, CIFAR_MEAN, CIFAR_STD, build_model

__all__ = ["DemoData", "demo_data_path", "demo_images", "load_demo_data", "run_demo"]

EXAMPLE = """Example:
  prime-augment demo                                   # CPU, a few minutes; prints the report's path
  prime-augment demo --out demo_run --device cuda --epochs 60
  prime-augment demo --quick --out /tmp/demo            # seconds: a smoke run (CI)
"""

#: what a finished or interrupted demo folder holds (a re-run replaces exactly these)
_OUTPUTS = (
    "corruptions",
    "baseline",
    "prime",
    "gallery.png",
    "grids.png",
    "accuracy_per_corruption.png",
    "accuracy_per_severity.png",
    "report.md",
    "results.json",
)
_MARKER = ".prime-augment-demo"
_MODELS = (("baseline", "crop + flip"), ("prime", "crop + flip + PRIME"))
#: the corruptions of a --quick run
_QUICK_CORRUPTIONS = ("gaussian_noise", "defocus_blur", "contrast")


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
    """Decode the demo images (600 train + 300 test CIFAR-10 images, class-balanced).

    Args:
        path: an ``.npz`` in the format of ``tools/make_demo_data.py`` (default: the bundled file).

    Example:
        >>> d = load_demo_data()
        >>> d.train_images.shape, d.test_images.shape, len(d.classes)
        ((600, 32, 32, 3), (300, 32, 32, 3), 10)
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
        split: ``"train"`` (600 images) or ``"test"`` (300 held-out images).
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


# ---------------------------------------------------------------------------------------------- plots
def _bars(plt, results: dict[str, dict[str, Any]], labels: list[str], values, ylabel: str, title: str, path):
    """Grouped bars, one group per label, one bar per model (``values(result) -> heights``), with the
    binomial standard error of an accuracy on the ``n_test`` held-out images and the chance level."""
    width = 0.8 / len(results)
    colors = {"baseline": "tab:gray", "prime": "tab:blue"}
    fig, ax = plt.subplots(figsize=(max(7.0, 0.55 * len(labels) + 2), 4.2), layout="constrained")
    for k, (key, res) in enumerate(results.items()):
        xs = np.arange(len(labels)) + (k - (len(results) - 1) / 2) * width
        acc = np.asarray(values(res), dtype=np.float64)
        err = 100.0 * np.sqrt(acc / 100.0 * (1.0 - acc / 100.0) / res["n_test"])
        ax.bar(xs, acc, width, yerr=err, capsize=2, label=res["label"], color=colors.get(key))
    ax.axhline(100.0 / results[next(iter(results))]["num_classes"], color="k", ls=":", lw=1, label="chance")
    rotate = {"rotation": 55, "ha": "right"} if max(map(len, labels)) > 10 else {}
    ax.set_xticks(range(len(labels)), labels, **rotate)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_comparison(results: dict[str, dict[str, Any]], out: Path) -> list[str]:
    from .gallery import _pyplot

    plt = _pyplot()
    first = next(iter(results.values()))
    names = list(first["per_corruption"])
    _bars(
        plt,
        results,
        ["clean", *(n.replace("_", " ") for n in names), "mean corrupted"],
        lambda r: [
            r["clean_accuracy"],
            *(r["per_corruption_mean"][n] for n in names),
            r["corruption_accuracy"],
        ],
        "accuracy (%), mean over severities",
        "Held-out demo images: clean and per corruption",
        out / "accuracy_per_corruption.png",
    )
    _bars(
        plt,
        results,
        ["clean", *(f"severity {s}" for s in first["severities"])],
        lambda r: [r["clean_accuracy"], *r["per_severity"]],
        "accuracy (%), mean over corruptions",
        "Accuracy by corruption severity",
        out / "accuracy_per_severity.png",
    )
    return ["accuracy_per_corruption.png", "accuracy_per_severity.png"]


def _report(summary: dict[str, Any]) -> str:
    res = summary["models"]
    base, prime = res["baseline"], res["prime"]
    s = summary["setting"]
    env = summary["environment"]
    lines = [
        "# prime-augment demo",
        "",
        f"- date: {env['date']}; device: {env['device']} ({env['device_name']}), "
        f"{s['threads']} CPU thread(s); wall time {summary['wall_seconds']:.0f} s, CPU time "
        f"{summary['cpu_seconds']:.0f} s{_load_note(summary['load_average'])}",
        f"- prime-augment {env['prime_augment']}, torch {env['torch']}, torchvision {env.get('torchvision')}",
        "",
        "What PRIME and its primitives do to the demo images (columns: independent random draws):",
        "",
        "![gallery](gallery.png)",
        "",
        "The method's smoothness/strength grids (rows: K; columns: strength as a multiple of the preset's "
        "largest; the same random draw along a row):",
        "",
        "![grids](grids.png)",
        "",
        "## Accuracy (%)",
        "",
        table(
            [[r["label"], r["clean_accuracy"], r["corruption_accuracy"], r["mce"]] for r in (base, prime)]
            + [
                [
                    "difference (PRIME - baseline)",
                    prime["clean_accuracy"] - base["clean_accuracy"],
                    prime["corruption_accuracy"] - base["corruption_accuracy"],
                    prime["mce"] - base["mce"],
                ]
            ],
            ["model", "clean", "corrupted (mean)", "mCE (unnormalised)"],
        ),
        "",
        f"{s['n_test']} held-out images: each accuracy has a standard error of about "
        f"{summary['standard_error']:.1f} points (binomial, at the baseline's clean accuracy); the "
        f"corrupted mean pools {s['n_test'] * len(s['corruptions']) * 5} predictions.",
        "",
        "![per corruption](accuracy_per_corruption.png)",
        "",
        "### Per corruption (mean over the 5 severities)",
        "",
        table(
            [
                [
                    c,
                    base["per_corruption_mean"][c],
                    prime["per_corruption_mean"][c],
                    prime["per_corruption_mean"][c] - base["per_corruption_mean"][c],
                ]
                for c in base["per_corruption"]
            ],
            ["corruption", "baseline", "PRIME", "difference"],
        ),
        "",
        "![per severity](accuracy_per_severity.png)",
        "",
        "### Per severity (mean over corruptions)",
        "",
        table(
            [["clean", base["clean_accuracy"], prime["clean_accuracy"]]]
            + [
                [f"severity {sv}", a, b]
                for sv, a, b in zip(
                    base["severities"], base["per_severity"], prime["per_severity"], strict=True
                )
            ],
            ["", "baseline", "PRIME"],
        ),
        "",
        "## Setting",
        "",
        f"- data: {s['n_train']} training and {s['n_test']} held-out CIFAR-10 images bundled with the "
        f"package ({s['data_source']})",
        f"- model: `{s['arch']}`, {s['parameters']:,} parameters, the same initialisation (seed {s['seed']}) "
        "for both runs",
        f"- training: {s['epochs']} epochs, batch {s['batch_size']}, SGD (Nesterov, momentum 0.9, "
        f"weight decay 5e-4), one-cycle LR peaking at {s['lr']}, gradient clipping 0.5 (the engine of "
        "`prime-augment train`)",
        "- baseline augmentation: RandomCrop(32, padding=4) + horizontal flip; PRIME run: the same, then "
        'PRIME (`PRIME.from_preset("cifar10")`: 3 chains of up to 3 primitives, Dirichlet/Beta(1, 1) '
        "mixing) on every batch, one independent draw per image",
        f"- corruptions: {len(s['corruptions'])} corruptions x 5 severities of the held-out images, built by "
        f"`make-corruptions --backend builtin` (CIFAR-10-C severity parameters, seed {s['seed']}): "
        + ", ".join(s["corruptions"]),
        f"- training time: baseline {base['train_seconds']:.0f} s, PRIME {prime['train_seconds']:.0f} s",
        "",
        "Each model's folder (`baseline/`, `prime/`) holds `model.pt`, its training log and `eval/` "
        "(the outputs of `prime-augment evaluate`).",
        "",
        "A demo on 600 images says little about what the method does at scale: train on the full CIFAR-10 "
        "with `prime-augment train` and evaluate on CIFAR-10-C with `prime-augment evaluate` for that.",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- the demo
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
        epochs: training epochs of each model (``>= 1``).
        seed: seeds the data order, the initialisation, the augmentations and the corruptions.
        device: where to train and evaluate.
        quick: a smoke run in seconds: 10 training and 5 test images per class, one epoch (unless
            ``epochs`` is smaller), 3 corruptions, a small gallery.
        arch: one of :data:`~prime_augment.recipes.models.ARCHS`.
        batch_size, lr: training batch and peak learning rate.
        workers: DataLoader worker processes (0: in this process; the data is in memory).
        progress: progress bars.
        keep_corruptions: keep the corrupted images in ``out/corruptions`` (CIFAR-10-C format).
        jsd: train the PRIME model with the JSD consistency loss (clean + 2 PRIME views per image,
            3x the compute of its training steps).

    Returns:
        The summary written to ``results.json`` (``report`` holds the report's path).
    """
    t_start, cpu_start = time.perf_counter(), time.process_time()
    load_start = _load_average()
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"--epochs must be an int >= 1, got {epochs!r}")
    if arch not in ARCHS:
        raise ValueError(f"--arch must be one of {ARCHS}, got {arch!r}")
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size!r}")
    device = torch.device(device)
    data = load_demo_data()
    train_x, train_y, test_x, test_y = (
        data.train_images,
        data.train_labels,
        data.test_images,
        data.test_labels,
    )
    corruptions = list(BUILTIN_CORRUPTIONS)
    n_gallery, samples = 10, 2
    if quick:
        tr, te = _balanced(train_y, 10), _balanced(test_y, 5)
        train_x, train_y, test_x, test_y = train_x[tr], train_y[tr], test_x[te], test_y[te]
        epochs, batch_size = min(epochs, 1), min(batch_size, 32)
        corruptions, n_gallery, samples = list(_QUICK_CORRUPTIONS), 3, 1
    if batch_size > len(train_x):
        raise ValueError(f"--batch-size {batch_size} is larger than the {len(train_x)} training images")
    out = Path(out)
    _prepare_out(out)

    # 1. pictures
    pick = _one_per_class(test_y, n_gallery)
    shown = _to_float(test_x[pick])
    names = [data.classes[int(c)] for c in test_y[pick]]
    draws = augmentation_samples(shown, preset="cifar10", samples=samples, seed=seed)
    plot_gallery(
        shown, draws, out / "gallery.png", names=names, title="PRIME and its primitives (CIFAR-10 preset)"
    )
    ks = default_grid_k(32)
    if quick:
        ks = {p: k[:2] for p, k in ks.items()}
    strengths = DEFAULT_STRENGTHS if not quick else (0.0, 1.0)
    grids = {p: primitive_grid(shown[0], p, k, strengths, preset="cifar10", seed=seed) for p, k in ks.items()}
    plot_grids(
        grids,
        ks,
        strengths,
        out / "grids.png",
        title="rows: smoothness K; columns: strength a (x the preset's largest)",
    )

    # 2. corrupted held-out images, 3. training, 4. evaluation
    results: dict[str, dict[str, Any]] = {}
    cdir = (
        Path(tempfile.mkdtemp(prefix="prime-augment-demo-")) if not keep_corruptions else out / "corruptions"
    )
    try:
        make_corruption_set(
            test_x,
            test_y,
            cdir,
            corruptions=corruptions,
            backend="builtin",
            seed=seed,
            progress=progress,
            source="prime-augment demo: held-out images",
        )
        cset = NpyCorruptions(cdir, corruptions)
        clean = ArrayDataset(test_x, test_y, name="demo test images")
        train_set = ArrayDataset(train_x, train_y, name="demo training images")
        geometric = v2.Compose([v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()])
        config = TrainConfig(
            epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, workers=workers, progress=progress
        )
        n_params = 0
        for key, label in _MODELS:
            seed_everything(seed)  # the same initialisation for both models
            model = build_model(arch, len(data.classes), mean=CIFAR_MEAN, std=CIFAR_STD)
            n_params = sum(p.numel() for p in model.parameters())
            if key == "prime":
                aug = Augmentation("prime", prime=PRIME.from_preset("cifar10"), placement="device")
            else:
                aug = Augmentation("none")
            if progress:
                print(f"[demo] training the {label} model ({arch}, {epochs} epochs) ...", file=sys.stderr)
            t0 = time.perf_counter()
            if key == "prime" and jsd:
                label += " + JSD"
            trainer = Trainer(
                model,
                train_set,
                geometric,
                dataclasses.replace(config, jsd=jsd and key == "prime"),
                aug,
                device=device,
                out_dir=out / key,
                arch=arch,
                num_classes=len(data.classes),
                record={"dataset": {"name": "prime-augment demo images"}},
            )
            fitted = trainer.fit().model
            train_seconds = time.perf_counter() - t0
            res = evaluate_model(fitted, clean, cset, device=device, batch_size=256, progress=progress)
            res.update(corruption_metrics(res["clean_accuracy"], res["per_corruption"], mode="unnormalised"))
            res.update(
                label=label,
                train_seconds=train_seconds,
                model={"path": str(out / key / "model.pt"), "arch": arch, "num_classes": len(data.classes)},
                corruption_set=cset.describe() + " (builtin backend, CIFAR-10-C parameters)",
                preprocessing={"train": label, "eval": "none (32 px images)"},
                environment=environment(device),
            )
            write_results(out / key / "eval", res)
            results[key] = res
    finally:
        if not keep_corruptions:
            shutil.rmtree(cdir, ignore_errors=True)

    # 5. report
    for r in results.values():
        r.update(n_test=len(test_x), num_classes=len(data.classes))
    plots = _plot_comparison(results, out)
    p = results["baseline"]["clean_accuracy"] / 100.0
    summary: dict[str, Any] = {
        "format": "prime-augment-demo/1",
        "models": {
            k: {
                key: r[key]
                for key in (
                    "label",
                    "clean_accuracy",
                    "corruption_accuracy",
                    "mce",
                    "per_corruption",
                    "per_corruption_mean",
                    "per_severity",
                    "severities",
                    "train_seconds",
                )
            }
            for k, r in results.items()
        },
        "setting": {
            "arch": arch,
            "parameters": n_params,
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "seed": seed,
            "quick": quick,
            "n_train": len(train_x),
            "n_test": len(test_x),
            "corruptions": corruptions,
            "threads": torch.get_num_threads(),
            "data_source": data.source,
        },
        "standard_error": 100.0 * float(np.sqrt(p * (1 - p) / len(test_x))),
        "plots": ["gallery.png", "grids.png", *plots],
        "environment": environment(device),
    }
    summary["wall_seconds"] = time.perf_counter() - t_start
    summary["cpu_seconds"] = time.process_time() - cpu_start
    summary["load_average"] = {"start": load_start, "end": _load_average()}
    summary["report"] = str((out / "report.md").absolute())
    write_text(out / "report.md", _report(summary))
    write_json(out / "results.json", summary)
    return summary


# ---------------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="prime-augment demo",
        description=__doc__,
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--out", default="prime-augment-demo", help="output folder (default: ./prime-augment-demo)"
    )
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:N")
    p.add_argument("--epochs", type=int, default=30, help="training epochs of each model (default 30)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="a smoke run in seconds (tiny subset, 1 epoch)")
    p.add_argument("--arch", choices=ARCHS, default="cifar_resnet8", help="default: cifar_resnet8 (0.08M)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.1, help="peak learning rate of the one-cycle schedule")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for torch (default 1: the model is tiny, and extra threads slow it down badly "
        "when other jobs share the cores; 0: torch's default)",
    )
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers (0: in this process)")
    p.add_argument(
        "--keep-corruptions", action="store_true", help="keep the corrupted images in OUT/corruptions"
    )
    p.add_argument("--jsd", action="store_true", help="PRIME model with the JSD loss (3 views, 3x slower)")
    p.add_argument("--no-progress", action="store_true")
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
    m = summary["models"]
    for key in ("baseline", "prime"):
        r = m[key]
        print(
            f"{r['label']:>20}: clean {r['clean_accuracy']:5.1f}%  corrupted {r['corruption_accuracy']:5.1f}%"
        )
    print(f"report: {summary['report']}  ({summary['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
