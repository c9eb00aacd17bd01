"""Plumbing shared by the analysis commands (``sparsefool``, ``margins``, ``coverage``).

Image sources (uint8 arrays or an ImageFolder tree), the common options, the selection of
correctly classified images, and the writing of results next to the environment record.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import _common


class ImageSource:
    """Images and labels, indexable in batches as uint8 ``(b, C, H, W)`` tensors.

    ``PATH`` is one of:

    * ``*.npz`` holding ``images`` and ``labels`` (or ``x`` and ``y``);
    * ``*.npy`` of images with the labels in ``--labels FILE.npy`` or in a sibling file named with
      ``labels`` in place of ``images`` (``test_images.npy`` -> ``test_labels.npy``);
    * a directory in the ImageFolder layout (``PATH/<class>/<image>``, classes in sorted order).

    Arrays are uint8 ``(N, H, W, C)``, ``(N, H, W)`` or ``(N, C, H, W)`` (``C`` in 1, 3), read
    memory-mapped.
    """

    def __init__(self, path: str | Path, labels: str | Path | None = None, resize: int | None = None) -> None:
        self.path = Path(path)
        self.resize = resize
        self._folder = None
        if not self.path.exists():
            raise SystemExit(f"--data {self.path}: no such file or directory")
        if self.path.is_dir():
            self._open_folder()
        elif self.path.suffix == ".npz":
            with np.load(self.path) as z:
                ki = next((k for k in ("images", "x", "data") if k in z), None)
                kl = next((k for k in ("labels", "y", "targets") if k in z), None)
                if ki is None or kl is None:
                    raise SystemExit(
                        f"--data {self.path}: expected arrays 'images' and 'labels', got {list(z)}"
                    )
                self._images = z[ki]
                self._labels = z[kl]
        elif self.path.suffix == ".npy":
            lab = Path(labels) if labels else self.path.with_name(self.path.name.replace("images", "labels"))
            if lab == self.path or not lab.exists():
                raise SystemExit(f"--data {self.path}: no labels file {lab}; pass --labels FILE.npy")
            self._images = np.load(self.path, mmap_mode="r")
            self._labels = np.load(lab)
        else:
            raise SystemExit(f"--data {self.path}: expected a .npz, a .npy or an ImageFolder directory")
        if self._folder is None:
            self._check_arrays()

    def _open_folder(self) -> None:
        from torchvision.datasets import ImageFolder

        try:
            self._folder = ImageFolder(str(self.path))
        except (FileNotFoundError, RuntimeError) as e:
            raise SystemExit(f"--data {self.path}: not an ImageFolder tree ({e})") from e
        self._labels = np.asarray(self._folder.targets, dtype=np.int64)

    def _check_arrays(self) -> None:
        x, y = self._images, np.asarray(self._labels)
        if x.dtype != np.uint8 or x.ndim not in (3, 4):
            raise SystemExit(
                f"--data {self.path}: expected uint8 images (N, H, W[, C]), got {x.dtype} {x.shape}"
            )
        if y.ndim != 1 or len(y) != len(x):
            raise SystemExit(f"--data {self.path}: {len(x)} images but labels of shape {y.shape}")
        self._labels = y.astype(np.int64)
        if x.ndim == 3:
            self._layout = "NHW"
        elif x.shape[-1] in (1, 3):
            self._layout = "NHWC"
        elif x.shape[1] in (1, 3):
            self._layout = "NCHW"
        else:
            raise SystemExit(f"--data {self.path}: cannot tell the channel axis of shape {x.shape}")

    def __len__(self) -> int:
        return len(self._labels)

    @property
    def labels(self) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self._labels))

    def get(self, idx: Sequence[int]) -> torch.Tensor:
        """uint8 ``(len(idx), C, H, W)``."""
        idx = [int(i) for i in idx]
        if self._folder is not None:
            return (
                torch.stack([self._load_one(i) for i in idx])
                if idx
                else torch.zeros(0, 3, 1, 1, dtype=torch.uint8)
            )
        x = torch.from_numpy(np.ascontiguousarray(self._images[np.asarray(idx, dtype=np.int64)]))
        if self._layout == "NHW":
            x = x[:, None]
        elif self._layout == "NHWC":
            x = x.permute(0, 3, 1, 2)
        x = x.contiguous()
        if self.resize:
            from torchvision.transforms.v2 import functional as TF

            x = TF.center_crop(TF.resize(x, self.resize, antialias=True), self.resize)
        return x

    def _load_one(self, i: int) -> torch.Tensor:
        from torchvision.transforms.v2 import functional as TF

        path, _ = self._folder.samples[i]
        img = TF.pil_to_tensor(self._folder.loader(path))
        if self.resize:
            img = TF.center_crop(TF.resize(img, self.resize, antialias=True), self.resize)
        return img

    def describe(self) -> dict[str, Any]:
        kind = "imagefolder" if self._folder is not None else "arrays"
        return {"path": str(self.path), "kind": kind, "images": len(self), "resize": self.resize}


def new_parser(
    prog: str, description: str, epilog: str, *, correct_only: bool = True
) -> argparse.ArgumentParser:
    """An ``argparse`` parser with the shared options (:func:`add_common_arguments`) and an example epilog."""
    p = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=_common.PlainHelpFormatter,
    )
    add_common_arguments(p, correct_only=correct_only)
    return p


def add_common_arguments(parser: argparse.ArgumentParser, *, correct_only: bool = True) -> None:
    """The options every analysis command shares."""
    g = parser.add_argument_group("model and data")
    g.add_argument("--model", required=True, help="a run directory holding model.pt, or a model.pt file")
    g.add_argument("--data", required=True, help="images: .npz, .npy (+ labels) or an ImageFolder directory")
    g.add_argument(
        "--labels", default=None, help="labels .npy for a .npy of images (default: the sibling file)"
    )
    g.add_argument(
        "--resize",
        type=_common.positive_int,
        default=None,
        help="resize the shorter side to N and centre-crop N x N",
    )
    g.add_argument(
        "--limit", type=_common.positive_int, default=100, help="number of images to analyse (default 100)"
    )
    g.add_argument(
        "--all-images",
        action="store_true",
        default=not correct_only,
        help="use every image in order, not only those the model classifies correctly",
    )
    g.add_argument(
        "--shuffle",
        dest="shuffle",
        action="store_true",
        default=True,
        help="draw the images in a seeded random order (the default; see --seed): data files are often "
        "sorted by class, and the first --limit images would then all come from one class",
    )
    g.add_argument("--in-order", dest="shuffle", action="store_false", help="take the images in file order")
    r = parser.add_argument_group("run")
    r.add_argument("--out", required=True, help="output directory (JSON, markdown table, PNG plots)")
    r.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    r.add_argument(
        "--batch-size", type=_common.positive_int, default=64, help="images per batch (default 64)"
    )
    r.add_argument(
        "--seed", type=_common.nonneg_int, default=0, help="seed of torch's RNG and of --shuffle (default 0)"
    )
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.add_argument("--config", default=None, help="YAML file of option defaults (command-line values win)")


def check_positive(args: argparse.Namespace, *names: str) -> None:
    for n in names:
        v = getattr(args, n)
        if v is not None and v < 1:
            raise SystemExit(f"--{n.replace('_', '-')} must be >= 1, got {v}")


class Setup:
    """Device, model, output directory and seeds of one command run."""

    def __init__(self, args: argparse.Namespace) -> None:
        from ..benchmark.models import load_model

        check_positive(args, "limit", "batch_size", "resize")
        self.args = args
        self.device = _common.resolve_device(args.device)
        torch.manual_seed(args.seed)
        try:
            model, self.meta = load_model(args.model, map_location="cpu")
        except (FileNotFoundError, ValueError) as e:
            raise SystemExit(f"--model {args.model}: {e}") from e
        self.model = model.to(self.device).eval()
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.source = ImageSource(args.data, args.labels, args.resize)
        self.progress = not args.no_progress

    def tqdm(self, it: Any = None, **kw: Any) -> Any:
        from tqdm.auto import tqdm

        return tqdm(it, disable=not self.progress, **kw)

    def to_float(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device).float() / 255

    def select(
        self, transform: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        """The first ``--limit`` images (correctly classified ones unless ``--all-images``).

        ``transform`` is applied to the float images before the model judges them (e.g. the DCT
        flip, for a model trained on flipped images).

        Returns uint8 images ``(n, C, H, W)`` on the CPU, their labels, and a record of the selection
        (indices, how many images were scanned, the accuracy on them).
        """
        a = self.args
        n = len(self.source)
        order = torch.arange(n)
        if a.shuffle:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(a.seed))
        labels_all = self.source.labels
        picked: list[torch.Tensor] = []
        kept_idx: list[torch.Tensor] = []
        scanned = correct = 0
        count = 0
        bar = self.tqdm(total=min(a.limit, n), desc="selecting images", unit="img")
        with torch.no_grad():
            for start in range(0, n, a.batch_size):
                if count >= a.limit:
                    break
                idx = order[start : start + a.batch_size]
                x = self.source.get(idx.tolist())
                y = labels_all[idx]
                xf = self.to_float(x)
                pred = self.model(transform(xf) if transform else xf).argmax(1).cpu()
                ok = pred == y
                scanned += len(idx)
                correct += int(ok.sum())
                keep = torch.ones_like(ok) if a.all_images else ok
                sel = keep.nonzero().flatten()[: a.limit - count]
                picked.append(x[sel])
                kept_idx.append(idx[sel])
                count += len(sel)
                bar.update(len(sel))
        bar.close()
        if count == 0:
            raise SystemExit(
                f"--data {a.data}: no image selected (the model classified none of {scanned} correctly)"
            )
        images = torch.cat(picked)
        indices = torch.cat(kept_idx)
        info = {
            "source": self.source.describe(),
            "selected": count,
            "correct_only": not a.all_images,
            "scanned": scanned,
            "accuracy_on_scanned": 100.0 * correct / max(scanned, 1),
            "indices": indices.tolist(),
        }
        return images, labels_all[indices], info

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def timed(self, fn: Callable[[], Any]) -> tuple[Any, float]:
        self.sync()
        t0 = time.perf_counter()
        out = fn()
        self.sync()
        return out, time.perf_counter() - t0

    def write(self, name: str, results: dict[str, Any], markdown: str) -> None:
        """``<out>/<name>.json`` (with environment, config and model record) and ``<out>/<name>.md``."""
        record = {
            "environment": _common.environment(self.device),
            "config": vars(self.args),
            "model": {k: v for k, v in self.meta.items() if k != "state_dict"},
            **results,
        }
        _common.write_json(self.out / f"{name}.json", record)
        _common.write_text(self.out / f"{name}.md", markdown + "\n")
