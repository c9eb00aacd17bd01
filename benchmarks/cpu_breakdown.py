"""Where one CPU thread spends a PRIME call on one image: each primitive, per application.

    python benchmarks/cpu_breakdown.py [--calls 300] [--out benchmarks/results/cpu_breakdown.json]

For each image size (uint8 ``(3, H, W)`` input, CIFAR preset at 32x32, ImageNet preset at 224x224)
PRIME runs ``--calls`` times with every primitive's ``sample``, ``apply`` and ``apply_levels`` (the
exact uint8 first step) timed inside the call,
so the shares add up to the whole call. Costs vary with the random parameters (a diffeomorphism's
cost grows with its cut), so the table reports **means**: per PRIME call, the number of calls of
each part per PRIME call (a part's call serves all the chains that drew it at one step: 3 chains x 3
steps x 1/4 = 2.25 applications of each primitive per image on average), per call of the part, and
torchvision's v2 AugMix on the same image in the same run (alternating blocks). The rest ("PRIME
bookkeeping") is the plan, the chains' bookkeeping, the mix and the uint8 conversions.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from torchvision.transforms import v2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, print_table, time_interleaved, write_json

from prime_augment import PRIME


def _instrument(prime: PRIME, totals: dict[str, float], counts: dict[str, int]) -> None:
    """Wrap each primitive's sample, apply and apply_levels (the uint8 first step) with timers."""
    for op, name in zip(prime.ops, prime.primitives, strict=True):
        for method in ("sample", "apply", "apply_levels"):
            inner = getattr(op, method)

            def timed(*args, _inner=inner, _key=f"{name}: {method}", **kwargs):
                t0 = time.perf_counter()
                out = _inner(*args, **kwargs)
                if out is not None:  # apply_levels answers None where a primitive has no such path
                    totals[_key] += time.perf_counter() - t0
                    counts[_key] += 1
                return out

            setattr(op, method, timed)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--sizes", default="32,224")
    ap.add_argument("--block", type=int, default=10)
    ap.add_argument("--out", default="benchmarks/results/cpu_breakdown.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows, results = [], []
    for size in (int(s) for s in args.sizes.split(",")):
        preset = "cifar10" if size <= 64 else "imagenet"
        g = torch.Generator().manual_seed(0)
        img = torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=g)
        augmix, prime = v2.AugMix(), PRIME.from_preset(preset)
        totals: dict[str, float] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)
        for _ in range(args.warmup):
            augmix(img), prime(img)
        _instrument(prime, totals, counts)
        # alternating blocks (both see the same drifts of the machine); means, to add up with the parts
        cases = {"prime": lambda f=prime, x=img: f(x), "augmix": lambda f=augmix, x=img: f(x)}
        timed = time_interleaved(cases, torch.device("cpu"), warmup=0, repeats=args.calls, block=args.block)
        prime_ms, augmix_ms = timed["prime"]["mean_ms"], timed["augmix"]["mean_ms"]
        per_call = {k: v / args.calls * 1e3 for k, v in totals.items()}
        rest = prime_ms - sum(per_call.values())
        for key in sorted(per_call):
            apps = counts[key] / args.calls
            rows.append([f"{size}x{size}", key, per_call[key], apps, per_call[key] / max(apps, 1e-12),
                         per_call[key] / prime_ms])  # fmt: skip
        rows.append([f"{size}x{size}", "PRIME bookkeeping", rest, 1.0, rest, rest / prime_ms])
        rows.append([f"{size}x{size}", "PRIME, whole call", prime_ms, 1.0, prime_ms, 1.0])
        rows.append([f"{size}x{size}", "torchvision v2 AugMix, whole call", augmix_ms, 1.0, augmix_ms,
                     augmix_ms / prime_ms])  # fmt: skip
        results.append({
            "size": size, "preset": preset, "calls": args.calls, "prime_ms": prime_ms, "augmix_ms": augmix_ms,
            "parts_ms_per_call": per_call,
            "part_calls_per_call": {k: c / args.calls for k, c in counts.items()},
            "bookkeeping_ms": rest,
        })  # fmt: skip
    header = ["image", "part", "ms per PRIME call (mean)", "its calls per PRIME call", "ms per its call",
              "share of PRIME"]  # fmt: skip
    print_table(rows, header)
    write_json(args.out, {"environment": environment(torch.device("cpu")), "results": results})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
