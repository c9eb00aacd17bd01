"""PRIME per sample, inside a Dataset's transform (runs in the DataLoader workers).

    python examples/dataset_compose.py --data-dir ~/data --download     # real CIFAR-10
    python examples/dataset_compose.py --synthetic 64                    # tiny fake data (CI)

Every image gets its own random augmentation; the DataLoader seeds each worker differently, and
``torch.manual_seed`` makes the whole run reproducible.
"""

from __future__ import annotations

import argparse

import torch
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision.transforms import v2

from prime_augment import PRIME


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default="./data", help="CIFAR-10 root folder")
    ap.add_argument("--download", action="store_true", help="download CIFAR-10 if missing")
    ap.add_argument("--synthetic", type=int, default=0, help="use N fake 32x32 images instead of CIFAR-10")
    ap.add_argument("--batches", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    train_transform = v2.Compose([
        v2.ToImage(),
        v2.RandomCrop(32, padding=4),
        v2.RandomHorizontalFlip(),
        v2.ToDtype(torch.float32, scale=True),
        PRIME.from_preset("cifar10"),          # per-image random PRIME on each (3, 32, 32) sample
    ])
    if args.synthetic:
        data = datasets.FakeData(args.synthetic, (3, 32, 32), 10, transform=train_transform)
    else:
        data = datasets.CIFAR10(args.data_dir, train=True, download=args.download, transform=train_transform)

    torch.manual_seed(args.seed)
    loader = DataLoader(data, batch_size=16, shuffle=True, num_workers=args.workers)
    for i, (images, labels) in enumerate(loader):
        lo, hi = images.min().item(), images.max().item()
        print(f"batch {i}: images {tuple(images.shape)} {images.dtype} in [{lo:.2f}, {hi:.2f}], "
              f"labels {labels[:8].tolist()}")
        if i + 1 >= args.batches:
            break
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
