"""Throughput of each primitive and of PRIME on batches: ms per batch, images/s, peak extra memory.

    python benchmarks/throughput.py --device cuda          # the issue's table (H100 targets)
    python benchmarks/throughput.py --device cpu --quick   # smoke run on tiny batches

Cases: the CIFAR preset at B=128 and B=512 (32x32) and the ImageNet preset at B=256 (224x224),
float32 and uint8 inputs, each primitive alone and PRIME; plus the memory floor of one read+write
of the batch (``x.clone()``) and a straightforward reference-style PRIME (every primitive on every
image, the color frequency axis materialised: ``_reference_style.py``) in the same run. Median of
``--repeats`` timed calls after warm-up,
synchronised (CUDA events). Peak extra memory = peak allocated during the call minus what was
allocated before it (CUDA only).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, print_table, time_ms, write_json
from _reference_style import ReferenceStylePRIME

from prime_augment import PRIME


def peak_extra_mib(fn, device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    fn()
    torch.cuda.synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - before) / 2**20


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="tiny batches (smoke test)")
    ap.add_argument("--out", default="benchmarks/results/throughput.json")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    configs = [("cifar10", 128, 32), ("cifar10", 512, 32), ("imagenet", 256, 224)]
    if args.quick:
        configs = [("cifar10", 8, 32), ("imagenet", 2, 64)]
        args.repeats, args.warmup = min(args.repeats, 3), 1
    g = torch.Generator(device=device).manual_seed(0)
    rows, results = [], []
    for preset, b, size in configs:
        prime = PRIME.from_preset(preset)
        x8 = torch.randint(0, 256, (b, 3, size, size), dtype=torch.uint8, device=device, generator=g)
        xf = x8.float() / 255
        cases = [("copy (memory floor)", "float32", lambda x=xf: x.clone())]
        for name, op in zip(prime.primitives, prime.ops, strict=True):
            cases.append((name, "float32", lambda op=op, x=xf: op(x)))
            cases.append((name, "uint8", lambda op=op, x=x8: op(x)))
        cases.append(("PRIME", "float32", lambda p=prime, x=xf: p(x)))
        reference = ReferenceStylePRIME(preset)
        cases.append(("reference-style PRIME", "float32", lambda p=reference, x=xf: p(x)))
        cases.append(("PRIME", "uint8", lambda p=prime, x=x8: p(x)))
        for name, dtype, fn in cases:
            t = time_ms(fn, device, warmup=args.warmup, repeats=args.repeats)
            mem = peak_extra_mib(fn, device)
            ips = b / (t["median_ms"] / 1e3)
            mem_txt = "-" if mem is None else f"{mem:.0f}"
            rows.append([preset, f"{b}x{size}x{size}", name, dtype, t["median_ms"], round(ips), mem_txt])
            results.append({"preset": preset, "batch": b, "size": size, "op": name, "dtype": dtype, **t,
                            "images_per_s": ips, "peak_extra_mib": mem})
    print_table(rows, ["preset", "batch", "op", "input", "ms / batch", "images / s", "peak extra MiB"])
    write_json(args.out, {"environment": environment(device), "results": results})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
