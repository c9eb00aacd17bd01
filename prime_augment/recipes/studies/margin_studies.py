"""``prime-augment margin-studies``: the margin experiments of Chapter 4 of the method, at a small scale.

Three studies, each training small models from scratch and measuring l2 margins (subspace-constrained
DeepFool, :func:`~prime_augment.analysis.subspace_margins`) in ``K x K`` DCT blocks slid along the
diagonal, low to high frequency:

* ``synthetic``: a binary dataset whose only information lies along one DCT atom ``u``
  (:func:`~prime_augment.analysis.discriminative_dataset`, Tab. 4.1): the trained model should have a
  small margin along ``u`` (and in the DCT blocks holding it), a much larger one in a random subspace
  (the control) and the largest in a random subspace orthogonal to ``u``.
* ``flipped``: CIFAR-10 and its frequency-flipped version (:func:`~prime_augment.analysis.dct_flip`):
  the margin profile of the model trained on flipped images should be the mirror image of the standard
  one (small margins where the discriminative information went).
* ``forgetting``: train on CIFAR-10 (low and high frequencies), fine-tune on low-pass images only, then
  on the full images again (§4.3.3): margins in the high-frequency blocks should grow while they carry
  no information and shrink back once they do.

Each writes ``<study>.json`` (environment, configuration, accuracies, per-subspace margins of every
model or stage and the checks of the expected direction), ``<study>.md`` and ``<study>.png`` to
``--out``, and the trained models to ``<out>/<study>_models/`` (loadable by the other commands).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import _common

STUDIES = ("synthetic", "flipped", "forgetting")

EPILOG = """\
Example:
  prime-augment margin-studies synthetic --out out/studies --threads 1      # CPU, about a minute
  prime-augment margin-studies flipped --data-dir data/cifar10 --train-size 10000 --epochs 8 \\
      --eval-images 50 --out out/studies
  prime-augment margin-studies forgetting --data-dir data/cifar10 --cutoff 16 --finetune-epochs 4 \\
      --out out/studies
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="prime-augment margin-studies",
        description="Margin studies of the method (Chapter 4) on small data: one discriminative direction "
        "(synthetic), frequency-flipped CIFAR-10, forgetting and recovery of high frequencies. Trains the "
        "models, measures margins in DCT blocks, writes JSON, a markdown table and the plot.",
        epilog=EPILOG,
        formatter_class=_common.PlainHelpFormatter,
    )
    p.add_argument("study", choices=STUDIES, help="which study to run")
    _add_run_arguments(p)
    _add_training_arguments(p)
    _add_margin_arguments(p)
    _add_synthetic_arguments(p)
    _add_cifar_arguments(p)
    return p


def _add_run_arguments(p: argparse.ArgumentParser) -> None:
    """Output, device, seed, threads, progress, ``--config``."""
    r = p.add_argument_group("run")
    r.add_argument("--out", required=True, help="output directory")
    r.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    r.add_argument(
        "--seed",
        type=_common.nonneg_int,
        default=0,
        help="seed of the data draw, the models and the training",
    )
    r.add_argument(
        "--threads", type=_common.positive_int, default=None, help="torch intra-op threads (default: torch's)"
    )
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.add_argument("--config", default=None, help="YAML file of option defaults (command-line values win)")


def _add_training_arguments(p: argparse.ArgumentParser) -> None:
    """The models' architecture and training."""
    t = p.add_argument_group("training")
    t.add_argument("--arch", default="cifar_resnet8", help="architecture (default cifar_resnet8)")
    t.add_argument(
        "--epochs",
        type=_common.positive_int,
        default=None,
        help="epochs of the first training (20 synthetic, 8 CIFAR)",
    )
    t.add_argument(
        "--batch-size", type=_common.positive_int, default=128, help="training batch size (default 128)"
    )
    t.add_argument(
        "--lr", type=_common.positive_float, default=0.1, help="peak one-cycle learning rate (default 0.1)"
    )
    t.add_argument(
        "--train-size", type=_common.positive_int, default=None,
        help="training images (default: 4000 synthetic, 10000 of CIFAR-10's training set)",
    )  # fmt: skip


def _add_margin_arguments(p: argparse.ArgumentParser) -> None:
    """Which margins are measured, and how."""
    m = p.add_argument_group("margins")
    m.add_argument(
        "--eval-images",
        type=_common.positive_int,
        default=50,
        help="test images whose margins are measured (50)",
    )
    m.add_argument(
        "--block",
        type=_common.positive_int,
        default=None,
        help="DCT block size K (default: 4 synthetic, 8 CIFAR)",
    )
    m.add_argument(
        "--step",
        type=_common.positive_int,
        default=4,
        help="stride of the blocks along the diagonal (default 4)",
    )
    m.add_argument("--max-iter", type=_common.positive_int, default=50, help="DeepFool steps before inf (50)")
    m.add_argument(
        "--candidates",
        type=_common.positive_int,
        default=10,
        help="classes considered by DeepFool (default 10)",
    )


def _add_synthetic_arguments(p: argparse.ArgumentParser) -> None:
    """The synthetic study's data."""
    s = p.add_argument_group("synthetic study")
    s.add_argument(
        "--size", type=_common.positive_int, default=16, help="image side of the synthetic data (default 16)"
    )
    s.add_argument(
        "--epsilon", type=_common.positive_float, default=4.0, help="half the class separation along u (4.0)"
    )
    s.add_argument(
        "--sigma", type=_common.positive_float, default=1.0, help="noise std orthogonal to u (default 1.0)"
    )
    s.add_argument(
        "--frequency",
        type=_common.nonneg_int,
        default=6,
        help="u is the gray DCT atom of frequency (k, k) (default 6)",
    )


def _add_cifar_arguments(p: argparse.ArgumentParser) -> None:
    """The CIFAR-10 studies' data, and the forgetting study's stages."""
    c = p.add_argument_group("CIFAR-10 studies (flipped, forgetting)")
    c.add_argument(
        "--data-dir", default="data/cifar10",
        help="folder with {train,test}_{images,labels}.npy (uint8 [N, H, W, 3])",
    )  # fmt: skip
    c.add_argument(
        "--test-size", type=_common.positive_int, default=2000, help="test images for the accuracies (2000)"
    )
    c.add_argument(
        "--cutoff", type=_common.nonneg_int, default=16, help="forgetting: low-pass DCT cutoff (default 16)"
    )
    c.add_argument(
        "--finetune-epochs",
        type=_common.positive_int,
        default=4,
        help="forgetting: epochs per fine-tuning (4)",
    )
    c.add_argument(
        "--finetune-lr",
        type=_common.positive_float,
        default=0.05,
        help="forgetting: fine-tuning peak LR (0.05)",
    )
    c.add_argument(
        "--init", default=None,
        help="forgetting: a saved model (model.pt or run folder) as stage 1 instead of training one",
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------- pieces
def _check(args: argparse.Namespace) -> None:
    for name in ("epochs", "batch_size", "eval_images", "block", "step", "max_iter", "size", "test_size",
                 "finetune_epochs", "threads", "train_size"):  # fmt: skip
        v = getattr(args, name)
        if v is not None and v < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 1, got {v}")
    if args.candidates < 2:
        raise SystemExit(f"--candidates must be >= 2, got {args.candidates}")
    for name in ("lr", "finetune_lr", "epsilon"):
        if not getattr(args, name) > 0:
            raise SystemExit(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    if args.sigma < 0:
        raise SystemExit(f"--sigma must be >= 0, got {args.sigma}")
    if args.cutoff < 1:
        raise SystemExit(f"--cutoff must be >= 1, got {args.cutoff}")


def load_cifar_split(
    data_dir: str | Path, split: str, limit: int | None, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``limit`` images of ``<split>_images.npy`` as float, in a seeded random order.

    The order is random even when every image is taken, so that the first images (those whose
    margins are measured) mix the classes of a file sorted by class, as CIFAR-10 arrays often are.

    Returns float ``(n, 3, H, W)`` images in ``[0, 1]`` and int64 labels.
    """
    root = Path(data_dir)
    img, lab = root / f"{split}_images.npy", root / f"{split}_labels.npy"
    for f in (img, lab):
        if not f.is_file():
            raise SystemExit(f"--data-dir {root}: missing {f.name} (expected uint8 [N, H, W, 3] and labels)")
    images = np.load(img, mmap_mode="r")
    labels = np.load(lab)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 or len(labels) != len(images):
        raise SystemExit(
            f"--data-dir {root}: expected uint8 [N, H, W, 3] images and N labels in {split}_*.npy, got "
            f"{images.dtype} {images.shape} and {len(labels)} labels"
        )
    n = len(images)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(n)[: n if limit is None else limit]
    order = np.argsort(idx)  # read the memory map in file order, then restore the random order
    picked = np.empty((len(idx), *images.shape[1:]), dtype=np.uint8)
    picked[order] = images[idx[order]]
    x = torch.from_numpy(picked).permute(0, 3, 1, 2).float().div_(255)
    return x.contiguous(), torch.from_numpy(labels[idx].astype(np.int64))


def train_classifier(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    arch: str,
    num_classes: int,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    device: torch.device,
    progress: bool,
    model: nn.Module | None = None,
) -> tuple[nn.Module, list[dict[str, Any]]]:
    """Train (or, given ``model``, fine-tune) a classifier on float images with the recipes' engine.

    A new model normalises its input with the per-channel mean and std of ``x``. SGD with Nesterov
    momentum, one-cycle schedule, no augmentation, the engine's defaults otherwise
    (:class:`~prime_augment.recipes.benchmark.engine.TrainConfig`).

    Returns:
        the model (on ``device``, eval mode) and the engine's per-epoch history.
    """
    from torch.utils.data import TensorDataset

    from ..benchmark.engine import TrainConfig, Trainer, seed_everything
    from ..benchmark.models import build_model

    if model is None:
        seed_everything(seed)
        mean = x.mean((0, 2, 3)).tolist()
        std = x.std((0, 2, 3)).clamp_min(1e-6).tolist()
        model = build_model(arch, num_classes, mean=mean, std=std)
    cfg = TrainConfig(
        epochs=epochs, batch_size=min(batch_size, len(x)), lr=lr, seed=seed, workers=0, progress=progress,
    )  # fmt: skip
    data = TensorDataset(x, y)
    result = Trainer(model, data, None, cfg, device=device, arch=arch, num_classes=num_classes).fit()
    return result.model.eval(), result.history


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> float:
    """Top-1 accuracy (%) of ``model`` on float images ``x``."""
    from ...analysis import predict

    if len(x) == 0:
        return float("nan")
    pred = predict(model, x.to(device), batch_size=500).cpu()
    return 100.0 * float((pred == y).float().mean())


def margin_profile(
    model: nn.Module,
    images: torch.Tensor,
    spaces: Sequence[tuple[str, Any]],
    args: argparse.Namespace,
    device: torch.device,
    desc: str,
) -> tuple[torch.Tensor, float, list[dict[str, Any]]]:
    """Margins ``(S, N)`` of ``images`` in each named subspace, the seconds it took, and the records of
    ``<study>.json`` (per subspace: its dimension, the summary and every margin)."""
    from tqdm.auto import tqdm

    from ...analysis import subspace_margin

    x = images.to(device)
    out = torch.empty(len(spaces), len(x))
    t0 = time.perf_counter()
    for i, (_, sub) in enumerate(tqdm(spaces, desc=desc, disable=args.no_progress, leave=False)):
        out[i] = subspace_margin(model, x, sub, candidates=args.candidates, max_iter=args.max_iter).cpu()
    seconds = time.perf_counter() - t0
    shape = tuple(images.shape[1:])
    return out, seconds, _records([n for n, _ in spaces], out, [s.dim(shape) for _, s in spaces])


def dct_spaces(shape: tuple[int, int, int], block: int, step: int) -> list[tuple[str, Any]]:
    """The named DCT diagonal blocks (``"r0-r1"``, inclusive) of images of ``shape``."""
    from ...analysis import dct_diagonal_subspaces

    if block > min(shape[1:]):
        raise SystemExit(f"--block {block} is larger than the images ({shape[1]}x{shape[2]})")
    subs = dct_diagonal_subspaces(shape[1], shape[2], block, step)
    return [(f"{s.rows[0]}-{s.rows[1] - 1}", s) for s in subs]


def _records(names: Sequence[str], margins: torch.Tensor, dims: Sequence[int]) -> list[dict[str, Any]]:
    from ...analysis import margin_summary

    return [
        {"subspace": n, "dim": d, **margin_summary(m), "margins": [float(v) if np.isfinite(v) else None
                                                                   for v in m.tolist()]}
        for n, d, m in zip(names, dims, margins, strict=True)
    ]  # fmt: skip


def _f(v: float | None) -> str:
    return "n/a" if v is None or np.isnan(v) else ("inf" if np.isinf(v) else f"{v:.3f}")


def _median(recs: Sequence[dict[str, Any]]) -> list[float]:
    return [r["median"] for r in recs]


def _profile_table(profiles: dict[str, list[dict[str, Any]]]) -> str:
    names = [r["subspace"] for r in next(iter(profiles.values()))]
    header = ["subspace", *(f"median margin: {k}" for k in profiles)]
    rows = [[n, *(_f(recs[i]["median"]) for recs in profiles.values())] for i, n in enumerate(names)]
    return _common.table(rows, header)


def _checks_text(checks: dict[str, bool]) -> str:
    return "\nChecks: " + "; ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in checks.items())


def _cifar_setup(args: argparse.Namespace, device: torch.device):
    """Training and test images, the DCT blocks and the blocks plus a random control (same dimension)."""
    from ...analysis import random_subspace

    x, y = load_cifar_split(args.data_dir, "train", args.train_size or 10000, args.seed)
    xt, yt = load_cifar_split(args.data_dir, "test", args.test_size, args.seed)
    shape = tuple(x.shape[1:])
    dct = dct_spaces(shape, args.block, args.step)
    gen = torch.Generator().manual_seed(args.seed + 1)
    ctrl = random_subspace(shape, dct[0][1].dim(shape), generator=gen, device=device)
    return x, y, xt, yt, dct, [*dct, ("random (control)", ctrl)]


# ---------------------------------------------------------------------------------------------- studies
def study_synthetic(args, device, out: Path) -> tuple[dict[str, Any], str]:
    from ...analysis import DenseSubspace, dct_atom, discriminative_dataset, plot_margins, random_subspace
    from ..benchmark.models import model_record

    shape = (3, args.size, args.size)
    if args.frequency >= args.size:
        raise SystemExit(f"--frequency {args.frequency} must be < --size {args.size}")
    u = dct_atom(shape, args.frequency, args.frequency)
    g = torch.Generator().manual_seed(args.seed)
    n_train = args.train_size or 4000
    x, y = discriminative_dataset(n_train, u, epsilon=args.epsilon, sigma=args.sigma, generator=g)
    xt, yt = discriminative_dataset(max(args.eval_images, 500), u, epsilon=args.epsilon, sigma=args.sigma,
                                    generator=g)  # fmt: skip
    model, history = train_classifier(
        x, y, arch=args.arch, num_classes=2, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
        seed=args.seed, device=device, progress=not args.no_progress,
    )  # fmt: skip
    acc = accuracy(model, xt, yt, device)
    _common.atomic_torch_save(model_record(model, args.arch, 2, study="synthetic"),
                              out / "synthetic_models" / "synthetic.pt")  # fmt: skip
    dct = dct_spaces(shape, args.block, args.step)
    dim = dct[0][1].dim(shape)
    gs = torch.Generator().manual_seed(args.seed + 1)
    orth = random_subspace(shape, dim, generator=gs, orthogonal_to=u, device=device)
    spaces = [
        *dct,
        ("u", DenseSubspace(u.flatten()[:, None].to(device))),
        ("random, orthogonal to u", orth),
        ("random (control)", random_subspace(shape, dim, generator=gs, device=device)),
    ]
    margins, seconds, recs = margin_profile(model, xt[: args.eval_images], spaces, args, device, "margins")
    by = {r["subspace"]: r for r in recs}
    holding = [n for n, s in dct if s.rows[0] <= args.frequency < s.rows[1]]
    others = [r["median"] for n, _ in dct if n not in holding for r in [by[n]]]
    m_u, m_rand = by["u"]["median"], by["random (control)"]["median"]
    m_orth = by["random, orthogonal to u"]["median"]
    checks = {
        "margin along u < random control": bool(m_u < m_rand),
        "random control < random orthogonal to u": bool(m_rand < m_orth),
        "DCT blocks holding u < every other DCT block": bool(
            max(by[n]["median"] for n in holding) < min(others) if others else True
        ),
    }
    plot_margins(
        margins[: len(dct) + 2], out / "synthetic.png",
        labels=[n for n, _ in dct] + ["u", "rand. orth. u"], control=margins[-1],
        title=f"one discriminative direction u = DCT atom ({args.frequency}, {args.frequency}); "
        f"test acc {acc:.1f} %",
        xlabel=f"subspace: {args.block}x{args.block} DCT blocks (low to high), u, random orthogonal to u",
    )  # fmt: skip
    rows = [[r["subspace"], r["dim"], _f(r["median"]), _f(r["p25"]), _f(r["p75"]),
             f"{r['unreached_pct']:.0f}"] for r in recs]  # fmt: skip
    md = _common.table(rows, ["subspace", "dim", "median margin", "p25", "p75", "% unreached"])
    md += (
        f"\n\nSynthetic data x = eps*s*u + sigma*(I - uu^T)z, eps {args.epsilon}, sigma {args.sigma}, "
        f"{shape} images, u = gray DCT atom ({args.frequency}, {args.frequency}); {args.arch} trained on "
        f"{n_train} samples for {args.epochs} epochs, test accuracy {acc:.1f} %; margins of "
        f"{min(args.eval_images, len(xt))} test samples (DeepFool, {args.max_iter} steps at most)."
        + _checks_text(checks)
    )
    results = {
        "accuracy": acc, "history": history, "subspaces": recs, "checks": checks, "seconds_margins": seconds,
        "holding_u": holding, "reproduced": all(checks.values()),
    }  # fmt: skip
    return results, md


def study_flipped(args, device, out: Path) -> tuple[dict[str, Any], str]:
    from ...analysis import dct_flip, plot_margin_profiles
    from ..benchmark.models import model_record

    x, y, xt, yt, dct, spaces = _cifar_setup(args, device)
    variants = {"standard": lambda t: t, "frequency-flipped": dct_flip}
    k = int(max(y.max(), yt.max())) + 1
    profiles, margins_all, accs, histories, seconds = {}, {}, {}, {}, 0.0
    for name, tf in variants.items():
        model, histories[name] = train_classifier(
            tf(x), y, arch=args.arch, num_classes=k, epochs=args.epochs, lr=args.lr,
            batch_size=args.batch_size, seed=args.seed, device=device, progress=not args.no_progress,
        )  # fmt: skip
        accs[name] = accuracy(model, tf(xt), yt, device)
        _common.atomic_torch_save(model_record(model, args.arch, k, study="flipped", data=name),
                                  out / "flipped_models" / f"{name}.pt")  # fmt: skip
        margins_all[name], dt, profiles[name] = margin_profile(
            model, tf(xt[: args.eval_images]), spaces, args, device, f"margins {name}"
        )
        seconds += dt
    std, flp = (_median(profiles[n])[: len(dct)] for n in variants)
    checks = {
        "standard: lowest block < highest block": bool(std[0] < std[-1]),
        "flipped: lowest block > highest block": bool(flp[0] > flp[-1]),
        "profiles anti-correlated (Spearman < 0)": bool(_spearman(std, flp) < 0),
    }
    plot_margin_profiles(
        {n: m[: len(dct)] for n, m in margins_all.items()}, out / "flipped.png", labels=[n for n, _ in dct],
        title=f"{args.arch} on CIFAR-10 vs frequency-flipped CIFAR-10 "
        f"(acc {accs['standard']:.1f} / {accs['frequency-flipped']:.1f} %)",
        xlabel=f"{args.block}x{args.block} DCT block along the diagonal (low to high frequency)",
    )  # fmt: skip
    md = _profile_table(profiles)
    md += (
        f"\n\n{args.arch} trained from scratch for {args.epochs} epochs on {len(x)} CIFAR-10 training images "
        f"(standard, and DCT-flipped); test accuracy on {len(xt)} test images (flipped for the flipped "
        f"model): {accs['standard']:.1f} % / {accs['frequency-flipped']:.1f} %; margins of the first "
        f"{min(args.eval_images, len(xt))} test images. Spearman correlation of the two DCT profiles: "
        f"{_spearman(std, flp):.2f}." + _checks_text(checks)
    )
    results = {
        "accuracy": accs, "history": histories, "profiles": profiles, "checks": checks,
        "spearman": _spearman(std, flp), "seconds_margins": seconds, "reproduced": all(checks.values()),
    }  # fmt: skip
    return results, md


def study_forgetting(args, device, out: Path) -> tuple[dict[str, Any], str]:
    from ...analysis import dct_low_pass, plot_margin_profiles
    from ..benchmark.models import model_record

    x, y, xt, yt, dct, spaces = _cifar_setup(args, device)
    if args.cutoff >= min(x.shape[2:]):
        raise SystemExit(f"--cutoff {args.cutoff} must be smaller than the image side {min(x.shape[2:])}")
    k = int(max(y.max(), yt.max())) + 1
    stages = [
        ("1: low + high", x, args.epochs, args.lr),
        ("2: low-pass only", dct_low_pass(x, args.cutoff), args.finetune_epochs, args.finetune_lr),
        ("3: low + high again", x, args.finetune_epochs, args.finetune_lr),
    ]
    xt_low = dct_low_pass(xt, args.cutoff)
    model, arch = _initial_model(args.init, k, device) if args.init else (None, args.arch)
    profiles, margins_all, accs, histories, seconds = {}, {}, {}, {}, 0.0
    for i, (name, data, epochs, lr) in enumerate(stages):
        if i == 0 and args.init:
            histories[name] = [{"loaded": str(args.init)}]
        else:
            model, histories[name] = train_classifier(
                data, y, arch=arch, num_classes=k, epochs=epochs, lr=lr, batch_size=args.batch_size,
                seed=args.seed + i, device=device, progress=not args.no_progress, model=model,
            )  # fmt: skip
        accs[name] = {"full": accuracy(model, xt, yt, device),
                      "low_pass": accuracy(model, xt_low, yt, device)}  # fmt: skip
        _common.atomic_torch_save(model_record(model, arch, k, study="forgetting", stage=name),
                                  out / "forgetting_models" / f"stage{i + 1}.pt")  # fmt: skip
        margins_all[name], dt, profiles[name] = margin_profile(
            model, xt[: args.eval_images], spaces, args, device, f"margins stage {i + 1}"
        )
        seconds += dt
    high, ratio, checks = _forgetting_checks(margins_all, dct, args.cutoff)
    plot_margin_profiles(
        {n: m[: len(dct)] for n, m in margins_all.items()}, out / "forgetting.png",
        labels=[n for n, _ in dct],
        title=f"{arch}: train on CIFAR-10, fine-tune on low-pass (cutoff {args.cutoff}), then full",
        xlabel=f"{args.block}x{args.block} DCT block along the diagonal (low to high frequency)",
    )  # fmt: skip
    md = _forgetting_markdown(args, arch, len(x), len(xt), profiles, accs, high, ratio, checks)
    results = {
        "accuracy": accs, "history": histories, "profiles": profiles, "checks": checks,
        "high_frequency_median": high, "high_low_ratio": ratio, "seconds_margins": seconds,
        "reproduced": all(checks.values()),
    }  # fmt: skip
    return results, md


def _initial_model(path: str, num_classes: int, device: torch.device) -> tuple[nn.Module, str]:
    """``--init``: a saved model of ``num_classes`` classes as stage 1, and its architecture."""
    from ..benchmark.models import load_model

    try:
        model, meta = load_model(path)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"--init {path}: {e}") from e
    if meta["num_classes"] != num_classes:
        raise SystemExit(
            f"--init {path}: the model has {meta['num_classes']} classes, the data {num_classes}"
        )
    return model.to(device).eval(), meta["arch"]


def _forgetting_checks(
    margins: dict[str, torch.Tensor], dct: Sequence[tuple[str, Any]], cutoff: int
) -> tuple[dict[str, float], dict[str, float], dict[str, bool]]:
    """Per stage (``stage1``..): the median margin pooled over the DCT blocks above ``cutoff``, and its
    ratio to the one pooled over the blocks below it; and the checks that the ratio grows on low-pass
    data (stage 2) and falls back on full data (stage 3)."""
    high = [j for j, (_, s) in enumerate(dct) if s.rows[0] >= cutoff]
    low_blocks = [j for j, (_, s) in enumerate(dct) if s.rows[1] <= cutoff]
    if not high or not low_blocks:
        raise SystemExit(f"--cutoff {cutoff}: need DCT blocks entirely below and above it (see --block)")

    def pooled(m: torch.Tensor, rows: list[int]) -> float:
        return float(np.median(m[rows].numpy()))  # inf where more than half unreached

    stages = [f"stage{i + 1}" for i in range(len(margins))]
    medians = {st: pooled(m, high) for st, m in zip(stages, margins.values(), strict=True)}
    # relative to the low frequencies (which also move when the model changes): the invariance signal
    ratio = {
        st: pooled(m, high) / pooled(m, low_blocks) for st, m in zip(stages, margins.values(), strict=True)
    }
    checks = {
        "high/low margin ratio grows on low-pass data (stage 2 > stage 1)": bool(
            ratio["stage2"] > ratio["stage1"]
        ),
        "and falls back on full data (stage 3 < stage 2)": bool(ratio["stage3"] < ratio["stage2"]),
    }
    return medians, ratio, checks


def _forgetting_markdown(
    args: argparse.Namespace,
    arch: str,
    n_train: int,
    n_test: int,
    profiles: dict[str, list[dict[str, Any]]],
    accs: dict[str, dict[str, float]],
    high: dict[str, float],
    ratio: dict[str, float],
    checks: dict[str, bool],
) -> str:
    md = _profile_table(profiles)
    acc_rows = [[n, f"{a['full']:.1f}", f"{a['low_pass']:.1f}"] for n, a in accs.items()]
    md += "\n\n" + _common.table(acc_rows, ["stage", "test acc. full (%)", "test acc. low-pass (%)"])
    first = f"the model {args.init} (stage 1)" if args.init else f"{args.epochs} epochs on full images"
    return md + (
        f"\n\n{arch}, {n_train} CIFAR-10 training images: {first}, then "
        f"{args.finetune_epochs} on low-pass images (DCT cutoff {args.cutoff}), then {args.finetune_epochs} "
        f"on full images; margins of the same {min(args.eval_images, n_test)} full test images after each "
        f"stage. Median margin over the blocks above the cutoff: {' -> '.join(map(_f, high.values()))}; its "
        f"ratio to the median over the blocks below it: {' -> '.join(map(_f, ratio.values()))}."
        + _checks_text(checks)
    )


def _spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties; ``inf`` ranks as the largest)."""
    from scipy.stats import spearmanr

    if len(a) < 2:
        return float("nan")
    return float(spearmanr(np.asarray(a, dtype=float), np.asarray(b, dtype=float)).statistic)


STUDY_FUNCS = {"synthetic": study_synthetic, "flipped": study_flipped, "forgetting": study_forgetting}


def main(argv: Sequence[str] | None = None) -> int:
    args = _common.parse_with_config(build_parser(), argv)
    synthetic = args.study == "synthetic"
    args.epochs = args.epochs or (20 if synthetic else 8)
    args.block = args.block or (4 if synthetic else 8)
    _check(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = _common.resolve_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    results, md = STUDY_FUNCS[args.study](args, device, out)
    env = _common.environment(device)
    env["threads"] = torch.get_num_threads()
    record = {"environment": env, "config": vars(args), "study": args.study,
              "seconds": time.perf_counter() - t0, **results}  # fmt: skip
    md += f"\n\n{env['device_name']} ({env['device']}, {env['threads']} thread(s)), {env['date'][:10]}."
    _common.write_json(out / f"{args.study}.json", record)
    _common.write_text(out / f"{args.study}.md", md + "\n")
    print(md)
    print(f"wrote {out}/{args.study}.json, {args.study}.md, {args.study}.png, {args.study}_models/")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
