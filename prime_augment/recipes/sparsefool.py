"""``prime-augment sparsefool``: SparseFool on a saved model and a dataset.

Writes ``sparsefool.json`` (summary, per-image results, environment, config), ``sparsefool.md`` (the
table), ``pixels.png`` (histogram of the % of perturbed pixels) and ``examples.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import torch

from . import _common

EPILOG = """\
Example:
  prime-augment sparsefool --model runs/cifar10 --data data/cifar10/test_images.npy \\
      --limit 100 --batch-size 50 --device cuda --out out/sparsefool
"""


def build_parser() -> argparse.ArgumentParser:
    from ..analysis._cli import new_parser

    p = new_parser(
        "prime-augment sparsefool",
        "SparseFool (sparse adversarial perturbations) on a saved model: fooling rate, % of perturbed "
        "pixels, l0/l1/l2 and time per image, on correctly classified images.",
        EPILOG,
    )
    a = p.add_argument_group("SparseFool")
    a.add_argument("--lam", type=float, default=3.0, help="boundary-point overshoot lambda (3; 1 on MNIST)")
    a.add_argument("--max-iter", type=int, default=20, help="outer iterations (default 20)")
    a.add_argument("--overshoot", type=float, default=0.02, help="final overshoot epsilon (default 0.02)")
    a.add_argument(
        "--delta", type=float, default=None, help="perceptibility box |x_adv - x| <= delta (default none)"
    )
    a.add_argument("--candidates", type=int, default=10, help="classes considered by DeepFool (default 10)")
    a.add_argument("--bounds", type=float, nargs=2, default=(0.0, 1.0), metavar=("LOW", "HIGH"))
    a.add_argument("--examples", type=int, default=8, help="images shown in examples.png (default 8)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from ..analysis import perturbation_norms, plot_examples, plot_histogram, sparsefool, summarize_attack
    from ..analysis._cli import Setup, check_positive

    args = _common.parse_with_config(build_parser(), argv)
    check_positive(args, "max_iter", "candidates")
    s = Setup(args)
    images, labels, selection = s.select()
    bounds = tuple(args.bounds)

    # warm-up (kernels, allocator) on one image, outside the timing
    sparsefool(s.model, s.to_float(images[:1]), max_iter=1, bounds=bounds, candidates=args.candidates)
    adv, success, pred, iters = [], [], [], []
    seconds = 0.0
    for start in s.tqdm(range(0, len(images), args.batch_size), desc="sparsefool", unit="batch"):
        x = s.to_float(images[start : start + args.batch_size])
        res, dt = s.timed(
            lambda x=x: sparsefool(
                s.model, x, lam=args.lam, max_iter=args.max_iter, overshoot=args.overshoot,
                delta=args.delta, bounds=bounds, candidates=args.candidates,
            )
        )  # fmt: skip
        seconds += dt
        adv.append(res.adversarial.cpu())
        success.append(res.success.cpu())
        pred.append(res.adversarial_label.cpu())
        iters.append(res.iterations.cpu())
    adv_t, ok = torch.cat(adv), torch.cat(success)
    clean = images.float() / 255
    pert = adv_t - clean
    summary = summarize_attack(pert, ok, seconds=seconds)
    norms = perturbation_norms(pert)
    per_image = {
        "index": selection["indices"],
        "label": labels.tolist(),
        "adversarial_label": torch.cat(pred).tolist(),
        "success": ok.tolist(),
        "iterations": torch.cat(iters).tolist(),
        **{k: [round(float(v), 6) for v in norms[k]] for k in ("pixels_pct", "l0", "l1", "l2", "linf")},
    }
    header = ["attack", "images", "fooling rate (%)", "median % pixels", "median l2", "s / image", "device"]
    row = [
        "SparseFool (prime-augment)",
        summary["images"],
        summary["fooling_rate"],
        _fmt(summary["median_pixels_pct"]),
        _fmt(summary["median_l2"]),
        _fmt(summary["seconds_per_image"], 4),
        _common.environment(s.device)["device_name"],
    ]
    md = _common.table([row], header)
    s.write("sparsefool", {"selection": selection, "summary": summary, "per_image": per_image}, md)
    plot_histogram(
        norms["pixels_pct"][ok],
        s.out / "pixels.png",
        xlabel="% of perturbed pixels",
        title="SparseFool sparsity",
    )
    titles = [f"{int(a)}->{int(b)}" for a, b in zip(labels, torch.cat(pred), strict=True)]
    plot_examples(clean, adv_t, s.out / "examples.png", n=args.examples, titles=titles)
    print(md)
    print(f"wrote {s.out}/sparsefool.json, sparsefool.md, pixels.png, examples.png")
    return 0


def _fmt(v: float | None, digits: int = 2) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
