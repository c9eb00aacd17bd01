"""Cost of PRIME on the GPU batch inside a training step: step time with and without PRIME.

    python benchmarks/training_overhead.py --device cuda          # the issue's two ratios
    python benchmarks/training_overhead.py --device cpu --quick   # smoke run

Cases (both sides of each ratio measured in the same run, same model, same data):
ResNet-50, bf16 autocast, channels_last, B=256, 224x224, ImageNet preset; and the CIFAR
ResNet-18, B=128, 32x32, CIFAR preset. A step = (PRIME on the batch) + forward + backward + SGD
step. Median of ``--repeats`` steps after warm-up, synchronised.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, print_table, time_ms, write_json

from prime_augment import PRIME
from prime_augment.recipes.benchmark.models import build_model


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="tiny models and batches (smoke test)")
    ap.add_argument("--out", default="benchmarks/results/training_overhead.json")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    configs = [("resnet50", "imagenet", 256, 224, 1000), ("cifar_resnet18", "cifar10", 128, 32, 10)]
    if args.quick:
        configs = [("cifar_resnet18", "cifar10", 4, 32, 10)]
        args.repeats, args.warmup = min(args.repeats, 2), 1
    amp = device.type == "cuda"
    rows, results = [], []
    for arch, preset, b, size, classes in configs:
        torch.manual_seed(0)
        model = build_model(arch, classes).to(device).to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
        prime = PRIME.from_preset(preset)
        x = torch.rand(b, 3, size, size, device=device)
        y = torch.randint(0, classes, (b,), device=device)

        def step(augment: bool, model=model, opt=opt, prime=prime, x=x, y=y) -> None:
            inp = prime(x) if augment else x
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = F.cross_entropy(model(inp.contiguous(memory_format=torch.channels_last)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        base = time_ms(lambda: step(False), device, warmup=args.warmup, repeats=args.repeats)
        with_prime = time_ms(lambda: step(True), device, warmup=args.warmup, repeats=args.repeats)
        ratio = with_prime["median_ms"] / base["median_ms"]
        rows.append([arch, f"{b}x{size}x{size}", "bf16" if amp else "fp32", base["median_ms"],
                     with_prime["median_ms"], ratio])
        results.append({"arch": arch, "preset": preset, "batch": b, "size": size, "bf16": amp,
                        "without_prime": base, "with_prime": with_prime, "ratio": ratio})
    print_table(rows, ["model", "batch", "precision", "step ms", "step + PRIME ms", "ratio"])
    write_json(args.out, {"environment": environment(device), "results": results})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
