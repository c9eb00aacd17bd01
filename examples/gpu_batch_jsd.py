"""PRIME on the GPU batch inside a plain training loop, with the JSD consistency loss.

    python examples/gpu_batch_jsd.py --data-dir ~/data --download --device cuda --steps 500
    python examples/gpu_batch_jsd.py --synthetic 64 --steps 2 --device cpu      # tiny (CI)

The loader only decodes and crops; PRIME runs on the whole batch on the device, one independent
random augmentation per image and view: ``jsd_views`` stacks ``[clean; aug1; aug2]`` and
``JSDLoss`` adds ``12 * JSD`` to the clean cross-entropy.
"""

from __future__ import annotations

import argparse

import torch
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision.transforms import v2

from prime_augment import PRIME, JSDLoss, jsd_views
from prime_augment.recipes.benchmark.models import build_model


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default="./data")
    ap.add_argument("--download", action="store_true")
    ap.add_argument("--synthetic", type=int, default=0, help="use N fake images instead of CIFAR-10")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=128)
    args = ap.parse_args(argv)
    device = torch.device(args.device)

    to_tensor = v2.Compose([v2.ToImage(), v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip(),
                            v2.ToDtype(torch.float32, scale=True)])
    if args.synthetic:
        data = datasets.FakeData(args.synthetic, (3, 32, 32), 10, transform=to_tensor)
    else:
        data = datasets.CIFAR10(args.data_dir, train=True, download=args.download, transform=to_tensor)
    loader = DataLoader(data, batch_size=args.batch_size, shuffle=True, drop_last=True, num_workers=2)

    model = build_model("cifar_resnet18", 10).to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    prime = PRIME.from_preset("cifar10")        # no generator: torch's global RNG on the device
    criterion = JSDLoss(num_splits=3, weight=12.0, return_parts=True)

    step = 0
    while step < args.steps:
        for images, labels in loader:
            images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            with torch.no_grad():
                views = jsd_views(prime, images)                 # (3B, C, H, W): [clean; aug1; aug2]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = model(views.contiguous(memory_format=torch.channels_last))
            parts = criterion(logits.float(), labels)
            opt.zero_grad(set_to_none=True)
            parts.loss.backward()
            opt.step()
            print(f"step {step}: loss {parts.loss.item():.3f} = CE {parts.cross_entropy.item():.3f} "
                  f"+ 12 * JSD {parts.consistency.item():.4f}")
            step += 1
            if step >= args.steps:
                break
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
