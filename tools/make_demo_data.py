"""Build ``prime_augment/data/demo_cifar10.npz``, the real images of ``prime-augment demo``.

    python tools/make_demo_data.py --source ../shared/data/cifar10-jpeg

Picks a class-balanced random subset of CIFAR-10 (``--train-per-class`` images of each class from the
training split, ``--test-per-class`` from the test split; seeded) from the CIFAR-10 JPEG pack (the real
CIFAR-10 images as JPEG quality-75 files of a public image dump: ``{train,test}.npz`` holding ``jpeg``
bytes, ``offsets``, ``labels``, ``classes``) and stores their JPEG bytes unchanged, with the labels, the
class names and the indices into the source splits, in one compressed ``.npz``. The bytes are copied,
never re-encoded; the compression only removes the JPEG headers the files share.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def pick(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``per_class`` random items of every class."""
    idx = []
    for c in np.unique(labels):
        pool = np.flatnonzero(labels == c)
        if pool.size < per_class:
            raise ValueError(f"class {c} has {pool.size} images, fewer than --per-class {per_class}")
        idx.append(rng.choice(pool, per_class, replace=False))
    return np.sort(np.concatenate(idx))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", required=True, help="folder of the CIFAR-10 JPEG pack ({train,test}.npz)")
    ap.add_argument("--out", default=str(ROOT / "prime_augment" / "data" / "demo_cifar10.npz"))
    ap.add_argument("--train-per-class", type=int, default=60)
    ap.add_argument("--test-per-class", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    arrays: dict[str, np.ndarray] = {}
    classes = None
    for split, per in (("train", args.train_per_class), ("test", args.test_per_class)):
        with np.load(Path(args.source) / f"{split}.npz") as z:
            jpeg, off, labels = z["jpeg"], z["offsets"], z["labels"]
            classes = [str(c) for c in z["classes"]]
        idx = pick(labels, per, rng)
        blobs = [jpeg[off[i] : off[i + 1]] for i in idx]
        arrays[f"{split}_jpeg"] = np.concatenate(blobs).astype(np.uint8)
        arrays[f"{split}_offsets"] = np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).astype(
            np.int64
        )
        arrays[f"{split}_labels"] = labels[idx].astype(np.int64)
        arrays[f"{split}_source_index"] = idx.astype(np.int64)
    arrays["classes"] = np.array(classes)
    arrays["source"] = np.array(
        "CIFAR-10 (Krizhevsky 2009), JPEG quality-75 files of a public image dump, bytes unchanged; "
        f"class-balanced random subset (numpy default_rng({args.seed}), {args.train_per_class}/class "
        f"of the training split, {args.test_per_class}/class of the test split)"
    )
    np.savez_compressed(args.out, **arrays)
    size = Path(args.out).stat().st_size
    n_tr, n_te = len(arrays["train_labels"]), len(arrays["test_labels"])
    print(f"{args.out}: {n_tr} train + {n_te} test images, {size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
