"""SparseFool on a trained model: how few pixels change its prediction.

    prime-augment demo --out demo_run                                   # trains demo_run/prime/model.pt
    python examples/sparsefool_attack.py --model demo_run/prime/model.pt --limit 50 --plot sparsefool.png
    python examples/sparsefool_attack.py --synthetic 4                  # untrained model, random images (CI)

SparseFool (Modas et al., CVPR 2019) looks for a perturbation that changes few pixels; the images are
the held-out CIFAR-10 images bundled with the package (``--model`` takes any ``model.pt`` of
``prime-augment train`` or ``demo`` for 32 px images). Prints the fooling rate and the size of the
perturbations of the fooled images (median % of perturbed pixels, l2, l-inf), as JSON.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from prime_augment.analysis import plot_examples, sparsefool, summarize_attack
from prime_augment.recipes.benchmark.models import build_model, load_model
from prime_augment.recipes.showcase.demo import demo_images


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model.pt or run folder of prime-augment train/demo (default: untrained)")
    ap.add_argument("--synthetic", type=int, default=0, help="attack N random images instead of CIFAR-10")
    ap.add_argument("--limit", type=int, default=20, help="number of bundled test images to attack")
    ap.add_argument("--lam", type=float, default=3.0, help="SparseFool's lambda (boundary overshoot)")
    ap.add_argument("--max-iter", type=int, default=20)
    ap.add_argument("--plot", help="PNG of clean / adversarial / perturbed pixels")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)

    model = load_model(args.model)[0] if args.model else build_model("cifar_resnet8", 10).eval()
    model = model.to(device)
    if args.synthetic:
        images = torch.rand(args.synthetic, 3, 32, 32)
    else:
        images, _ = demo_images("test", limit=args.limit)
    images = images.to(device)

    t0 = time.perf_counter()
    res = sparsefool(model, images, lam=args.lam, max_iter=args.max_iter)   # batched: one call
    seconds = time.perf_counter() - t0
    summary = summarize_attack(res.perturbation, res.success, seconds=seconds)
    print(json.dumps(summary, indent=2))
    if args.plot:
        plot_examples(images.cpu(), res.adversarial.cpu(), args.plot, n=min(6, images.shape[0]))
        print(f"examples: {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
