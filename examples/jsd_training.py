"""JSD consistency training with the views made per sample, inside the Dataset (DataLoader workers).

    python examples/jsd_training.py --data-dir ~/data --download --steps 200
    python examples/jsd_training.py --synthetic 64 --steps 3                    # tiny fake data (CI)

``JSDViews(prime)`` turns each training image into ``(clean, aug1, aug2)``: two independent PRIME
draws of the same crop. The loader collates them into three batches; ``torch.cat`` stacks them as
``[clean; aug1; aug2]`` and ``JSDLoss`` returns cross-entropy on the clean view plus ``12 * JSD``.
"""

from __future__ import annotations

import argparse

import torch
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision.transforms import v2

from prime_augment import PRIME, JSDLoss, JSDViews
from prime_augment.recipes.benchmark.models import build_model


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default="./data", help="CIFAR-10 root folder")
    ap.add_argument("--download", action="store_true", help="download CIFAR-10 if missing")
    ap.add_argument("--synthetic", type=int, default=0, help="use N fake 32x32 images instead of CIFAR-10")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--arch", default="cifar_resnet18", help="e.g. cifar_resnet8 for a quick CPU run")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)

    transform = v2.Compose([
        v2.ToImage(),
        v2.RandomCrop(32, padding=4),
        v2.RandomHorizontalFlip(),
        v2.ToDtype(torch.float32, scale=True),
        JSDViews(PRIME.from_preset("cifar10"), num_splits=3),   # -> (clean, aug1, aug2)
    ])
    if args.synthetic:
        data = datasets.FakeData(args.synthetic, (3, 32, 32), 10, transform=transform)
    else:
        data = datasets.CIFAR10(args.data_dir, train=True, download=args.download, transform=transform)
    loader = DataLoader(data, batch_size=args.batch_size, shuffle=True, drop_last=True,
                        num_workers=args.workers, persistent_workers=args.workers > 0)

    model = build_model(args.arch, 10).to(device)          # normalisation inside: takes [0, 1] images
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    criterion = JSDLoss(num_splits=3, weight=12.0, return_parts=True)

    model.train()
    step = 0
    while step < args.steps:
        for views, labels in loader:                      # views: a list of 3 batches (B, 3, 32, 32)
            x = torch.cat(views).to(device, non_blocking=True)    # (3B, 3, 32, 32): [clean; aug1; aug2]
            labels = labels.to(device, non_blocking=True)
            parts = criterion(model(x), labels)            # CE(clean) + 12 * JSD(clean, aug1, aug2)
            opt.zero_grad(set_to_none=True)
            parts.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)    # as the method's CIFAR recipe
            opt.step()
            print(f"step {step}: loss {parts.loss.item():.3f} = CE {parts.cross_entropy.item():.3f} "
                  f"+ 12 * JSD {parts.consistency.item():.4f}")
            step += 1
            if step >= args.steps:
                break
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
