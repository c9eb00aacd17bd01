"""A DeepAugment-style extra training folder, for trying ``train --extra-train-dir`` without DeepAugment.

    python tools/deepaugment_standin.py --data-dir data/cifar10 --train-subset 10000 --out data/extra_da

DeepAugment (Hendrycks et al., 2021) passes the training images through image-to-image networks
(CAE, EDSR) whose weights and activations are randomly perturbed; its images cannot be downloaded
here. This stand-in keeps the idea at CIFAR scale: every chunk of ``--chunk`` training images goes
through a freshly drawn random residual CNN

    y = clip(x + s * conv2(relu(conv1(x))), 0, 1),   conv1: 3 -> 16, conv2: 16 -> 3, 3x3 kernels,

with Kaiming-normal weights and ``s`` set per chunk so that the mean absolute change is ``--change``
(pixel units). It reads a ``--dataset numpy`` folder (``train_images.npy``, ``train_labels.npy``),
takes the same training subset as ``prime-augment train --train-subset N --seed S`` (the subset is
drawn by :func:`prime_augment.recipes.benchmark.data.build_data` with that seed), and writes an image folder
``OUT/<label>/<index>.png`` with the dataset's class names, which ``--extra-train-dir OUT`` joins to
the training set. It is a stand-in, not DeepAugment: numbers obtained with it say nothing about the
real DeepAugment images.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from prime_augment.recipes.benchmark.data import build_data


def random_residual_net(generator: torch.Generator) -> torch.nn.Module:
    """A freshly drawn ``conv(3->16) -> ReLU -> conv(16->3)`` with Kaiming-normal weights."""
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 3, 3, padding=1)
    )
    with torch.no_grad():
        for conv in (net[0], net[2]):
            fan_in = conv.weight[0].numel()
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
            conv.bias.copy_(torch.randn(conv.bias.shape, generator=generator) * 0.1)
    return net


@torch.no_grad()
def distort(x: torch.Tensor, change: float, generator: torch.Generator) -> torch.Tensor:
    """``clip(x + s r)``, ``r`` the residual of a fresh random net and ``mean |s r| = change``."""
    r = random_residual_net(generator)(x)
    return (x + r * (change / r.abs().mean().clamp_min(1e-12))).clamp(0.0, 1.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True, help="a --dataset numpy folder")
    ap.add_argument("--train-subset", type=int, help="the subset size used by train --train-subset")
    ap.add_argument("--seed", type=int, default=0, help="train's --seed (it draws the subset; default 0)")
    ap.add_argument("--change", type=float, default=0.06, help="mean |change| per pixel (default 0.06)")
    ap.add_argument("--chunk", type=int, default=64, help="images per random network (default 64)")
    ap.add_argument("--net-seed", type=int, default=123, help="seed of the random networks")
    ap.add_argument("--out", required=True, help="output image folder")
    args = ap.parse_args(argv)
    if not 0.0 < args.change < 1.0:
        raise SystemExit(f"--change must be in (0, 1), got {args.change}")
    if args.chunk < 1:
        raise SystemExit(f"--chunk must be >= 1, got {args.chunk}")
    torch.set_num_threads(1)
    spec = build_data("numpy", args.data_dir, train_subset=args.train_subset, subset_seed=args.seed)
    images, labels = spec.train.images, spec.train.labels
    names = spec.classes
    out = Path(args.out)
    g = torch.Generator().manual_seed(args.net_seed)
    changes = []
    for s in range(0, len(images), args.chunk):
        x = torch.from_numpy(np.asarray(images[s : s + args.chunk])).permute(0, 3, 1, 2).float() / 255
        y = distort(x, args.change, g)
        changes.append(float((y - x).abs().mean()))
        arr = (y * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        for i, (img, lab) in enumerate(zip(arr, labels[s : s + args.chunk], strict=True)):
            folder = out / str(names[int(lab)])
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(folder / f"{s + i:06d}.png")
    print(f"wrote {len(images)} images to {out}, mean |change| {np.mean(changes):.4f} (clipping included)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
