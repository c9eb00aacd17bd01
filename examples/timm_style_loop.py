"""A timm-style training loop with PRIME + JSD: ``JSDLoss`` is a drop-in for timm's ``JsdCrossEntropy``.

    python examples/timm_style_loop.py --data-dir ~/imagenet100 --model resnet50 --epochs 100 --img-size 224
    python examples/timm_style_loop.py --synthetic 32 --img-size 32 --model cifar_resnet8 --epochs 1  # CI

The shape of timm's ``train.py``: model, optimizer, warm-up + cosine LR updated per step, mixed
precision with a gradient scaler on CUDA, ``train_one_epoch`` / ``validate``. The criterion takes the
logits of ``[clean; aug1; aug2]`` stacked along the batch and the labels of the clean images, exactly
as ``timm.loss.JsdCrossEntropy`` does, so it replaces it in an existing timm script. PRIME runs on
the device batch (``jsd_views``), one independent draw per image and view.

``--model`` is a timm model name when timm is installed (``timm.create_model``), else one of the
architectures of ``prime_augment.recipes.benchmark.models`` (``resnet18``, ``resnet50``,
``cifar_resnet8``, ...); the input normalisation is part of the model either way, so the model takes
images in ``[0, 1]``.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision.transforms import v2

from prime_augment import PRIME, JSDLoss, jsd_views
from prime_augment.recipes.benchmark.models import ARCHS, IMAGENET_MEAN, IMAGENET_STD, Classifier, build_model


def create_model(name: str, num_classes: int) -> torch.nn.Module:
    """timm's model when timm knows the name, else a prime-augment recipe architecture."""
    try:
        import timm
    except ImportError:
        timm = None
    if timm is not None and name not in ARCHS and timm.is_model(name):
        return Classifier(timm.create_model(name, pretrained=False, num_classes=num_classes),
                          IMAGENET_MEAN, IMAGENET_STD)
    if name not in ARCHS:
        raise SystemExit(f"--model {name!r}: not a timm model (or timm is not installed) nor one of {ARCHS}")
    return build_model(name, num_classes, mean=IMAGENET_MEAN, std=IMAGENET_STD)


def warmup_cosine(optimizer, warmup_steps: int, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up then cosine decay, stepped after every update (timm's ``step_update``)."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train_one_epoch(epoch, model, loader, prime, criterion, optimizer, scheduler, scaler, device, args):
    model.train()
    amp = device.type == "cuda" and not args.no_amp
    t0, seen = time.perf_counter(), 0
    for i, (images, target) in enumerate(loader):
        images, target = images.to(device, non_blocking=True), target.to(device, non_blocking=True)
        with torch.no_grad():
            views = jsd_views(prime, images, num_splits=3)           # (3B, C, H, W): [clean; aug1; aug2]
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            output = model(views)
        loss = criterion(output.float(), target)                       # CE(clean) + 12 * JSD
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if args.clip_grad:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip_grad)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        seen += images.shape[0]
        if i % args.log_interval == 0:
            print(f"train epoch {epoch} [{i}/{len(loader)}] loss {loss.item():.4f} "
                  f"lr {optimizer.param_groups[0]['lr']:.4g} {seen / (time.perf_counter() - t0):.0f} img/s")


@torch.no_grad()
def validate(model, loader, device) -> float:
    model.eval()
    correct = total = 0
    for images, target in loader:
        pred = model(images.to(device)).argmax(1).cpu()
        correct += int((pred == target).sum())
        total += target.numel()
    return 100.0 * correct / max(total, 1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", help="ImageFolder root with train/ and val/ class folders")
    ap.add_argument("--synthetic", type=int, default=0, help="use N fake images per split instead")
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--img-size", type=int, default=224)
    ap.add_argument("--preset", default="imagenet", help="PRIME preset (cifar10 for 32 px images)")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--warmup-epochs", type=float, default=1.0)
    ap.add_argument("--clip-grad", type=float, default=0.0)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--no-amp", action="store_true", help="no float16 autocast on CUDA")
    ap.add_argument("--log-interval", type=int, default=50)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)

    size = args.img_size
    train_tf = v2.Compose([v2.ToImage(), v2.RandomResizedCrop(size, antialias=True),
                           v2.RandomHorizontalFlip(), v2.ToDtype(torch.float32, scale=True)])
    eval_tf = v2.Compose([v2.ToImage(), v2.Resize(round(size / 0.875), antialias=True), v2.CenterCrop(size),
                          v2.ToDtype(torch.float32, scale=True)])
    if args.synthetic:
        num_classes = 10
        train_set = datasets.FakeData(args.synthetic, (3, size, size), num_classes, transform=train_tf)
        val_set = datasets.FakeData(args.synthetic, (3, size, size), num_classes, transform=eval_tf,
                                    random_offset=1)
    elif args.data_dir:
        train_set = datasets.ImageFolder(f"{args.data_dir}/train", transform=train_tf)
        val_set = datasets.ImageFolder(f"{args.data_dir}/val", transform=eval_tf)
        num_classes = len(train_set.classes)
    else:
        raise SystemExit("give --data-dir or --synthetic N")
    loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True,
                        num_workers=args.workers, pin_memory=device.type == "cuda")
    val_loader = DataLoader(val_set, batch_size=2 * args.batch_size, num_workers=args.workers)

    model = create_model(args.model, num_classes).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                                weight_decay=args.weight_decay)
    total = args.epochs * len(loader)
    scheduler = warmup_cosine(optimizer, max(1, round(args.warmup_epochs * len(loader))), total)
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda" and not args.no_amp)
    criterion = JSDLoss(num_splits=3, weight=12.0)     # drop-in for timm.loss.JsdCrossEntropy(3, 12)
    prime = PRIME.from_preset(args.preset)             # no generator: the global RNG, seeded above

    for epoch in range(args.epochs):
        train_one_epoch(epoch, model, loader, prime, criterion, optimizer, scheduler, scaler, device, args)
        print(f"epoch {epoch}: top-1 {validate(model, val_loader, device):.2f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
