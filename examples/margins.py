"""Margins of a model along DCT subspaces: how far an image is from the decision boundary when only
low, middle or high spatial frequencies may change (the margin analysis of the method, Chapter 4).

    prime-augment demo --out demo_run
    python examples/margins.py --model demo_run/baseline/model.pt --limit 50 --plot margins_baseline.png
    python examples/margins.py --model demo_run/prime/model.pt --limit 50 --plot margins_prime.png
    python examples/margins.py --synthetic 4 --block 16 --step 16       # untrained model, random images (CI)

For each ``block x block`` DCT block slid along the diagonal (low to high frequency), DeepFool run
inside that subspace gives the l2 margin of every image (``inf``: no boundary within reach); a random
subspace of the same dimension is the control. Prints the median margin per subspace.
"""

from __future__ import annotations

import argparse

import torch

from prime_augment.analysis import dct_diagonal_subspaces, plot_margins, random_subspace, subspace_margins
from prime_augment.recipes.benchmark.models import build_model, load_model
from prime_augment.recipes.showcase.demo import demo_images


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model.pt or run folder of prime-augment train/demo (default: untrained)")
    ap.add_argument("--synthetic", type=int, default=0, help="use N random images instead of CIFAR-10")
    ap.add_argument("--limit", type=int, default=20, help="number of bundled test images")
    ap.add_argument("--block", type=int, default=8, help="side of the DCT blocks")
    ap.add_argument("--step", type=int, default=4, help="stride of the blocks along the diagonal")
    ap.add_argument("--max-iter", type=int, default=50, help="DeepFool steps before a margin counts as inf")
    ap.add_argument("--plot", help="PNG of the margins per subspace")
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

    subspaces = dct_diagonal_subspaces(32, 32, block=args.block, step=args.step)
    margins = subspace_margins(model, images, subspaces, max_iter=args.max_iter)     # (S, N)
    control_space = random_subspace((3, 32, 32), subspaces[0].dim((3, 32, 32)),
                                    generator=torch.Generator().manual_seed(args.seed), device=device)
    control = subspace_margins(model, images, [control_space], max_iter=args.max_iter)[0]
    for s, m in zip(subspaces, margins, strict=True):
        print(f"DCT block rows/cols {s.rows}: median l2 margin {m.median().item():.3f} "
              f"({int(torch.isinf(m).sum())} of {m.numel()} out of reach)")
    print(f"random subspace (control): median l2 margin {control.median().item():.3f}")
    if args.plot:
        labels = [f"{s.rows[0]}-{s.rows[1]}" for s in subspaces]
        plot_margins(margins.cpu(), args.plot, labels=labels, control=control.cpu())
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
