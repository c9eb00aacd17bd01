"""PRIME vs torchvision's v2 AugMix per image on one CPU thread (the DataLoader-worker setting).

    python benchmarks/cpu_per_image.py [--repeats 200] [--out benchmarks/results/cpu_per_image.json]

Both sides run in the same process on the same images: a uint8 ``(3, H, W)`` tensor (what a
worker holds after decoding) at 32x32 (CIFAR preset) and 224x224 (ImageNet preset). Reported:
median ms per image and the ratio PRIME / AugMix (target <= 1.0). The AugMix and PRIME calls run
in alternating blocks of ``--block`` calls, so that both see the same drifts of the machine while
each runs image after image as in a worker, and the minor page faults per image are counted (the
allocator maps each fresh large buffer anew; on a virtual machine a fault costs microseconds). A
last row per size applies PRIME to a collated batch of ``--batch`` images in the worker
(``AugmentCollate``), per image, and a baseline row, timed on its own, runs a straightforward
reference-style PRIME (every primitive on every image, the color frequency axis materialised;
``_reference_style.py``) on the same image.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torchvision.transforms import v2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, print_table, time_interleaved, write_json
from _reference_style import ReferenceStylePRIME

from prime_augment import PRIME


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--sizes", default="32,224")
    ap.add_argument("--batch", type=int, default=32, help="batch size of the collated-batch row")
    ap.add_argument("--block", type=int, default=10,
                    help="consecutive calls of one case before the next case runs (default 10)")
    ap.add_argument("--out", default="benchmarks/results/cpu_per_image.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    device = torch.device("cpu")
    g = torch.Generator().manual_seed(0)
    rows, results = [], []
    for size in (int(s) for s in args.sizes.split(",")):
        preset = "cifar10" if size <= 64 else "imagenet"
        img = torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=g)
        imgf = img.float() / 255
        augmix = v2.AugMix()  # torchvision defaults: severity 3, width 3, depth -1 (stochastic 1..3)
        prime = PRIME.from_preset(preset)
        reference = ReferenceStylePRIME(preset)
        cases = {
            "augmix uint8": lambda f=augmix, x=img: f(x),
            "prime uint8": lambda f=prime, x=img: f(x),
            "prime float32": lambda f=prime, x=imgf: f(x),
        }
        batch = (img.float() / 255).expand(args.batch, 3, size, size).contiguous()
        batch_case = f"prime float32, batch of {args.batch} (per image)"
        cases[batch_case] = lambda f=prime, x=batch: f(x)
        # AugMix and PRIME in alternating blocks: both see the same machine drifts
        res = time_interleaved(cases, device, warmup=args.warmup, repeats=args.repeats, block=args.block)
        # the reference-style baseline on its own (its large buffers would slow whatever runs next)
        res["reference-style PRIME float32"] = time_interleaved(
            {"ref": lambda f=reference, x=imgf: f(x[None])}, device, warmup=max(1, args.warmup // 4),
            repeats=max(5, args.repeats // 4),
        )["ref"]
        per_image = {k: v / args.batch if k.endswith("_ms") or k == "faults" else v
                     for k, v in res[batch_case].items()}  # fmt: skip
        res[batch_case] = per_image
        base = res["augmix uint8"]["median_ms"]
        for name, r in res.items():
            ratio = r["median_ms"] / base
            rows.append([
                f"{size}x{size}", preset if "prime" in name else "-", name, r["median_ms"], ratio, r["faults"]
            ])
            results.append({"size": size, "preset": preset, "case": name, **r, "ratio_vs_augmix": ratio})
    header = ["image", "preset", "transform", "ms / image (median)", "x AugMix", "page faults / image"]
    print_table(rows, header)
    write_json(args.out, {"environment": environment(device), "results": results})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
