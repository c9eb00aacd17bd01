"""SparseFool benchmark: prime_augment.analysis.sparsefool against torchattacks' attacks.

The same saved model and the same correctly classified images go through every attack in one run;
all results are judged by the same code (the model's prediction on the returned images, the same
perturbation metrics). Reported per attack: seconds per image (median over repeats, after a warm-up,
with ``torch.cuda.synchronize`` on CUDA), fooling rate (the prediction differs from the label),
median % of perturbed pixels and median l2 of the fooled images. ``--attacks`` picks them:
``sparsefool`` (this package, batched), ``ta-sparsefool`` (torchattacks' SparseFool), ``jsma``
(torchattacks' JSMA: targeted at class ``(label + 1) mod 10``, the only mode it has, ``theta`` added
to pairs of values up to ``gamma`` of them) and ``onepixel`` (torchattacks' one-pixel attack,
differential evolution), as in Tabs. 3.1 and 3.3 of the method. ``--deepfool`` adds the two
DeepFools. Writes ``sparsefool_benchmark.json``, ``.md`` and ``.png`` (the three measures per
attack). torchattacks is needed only here (``pip install torchattacks``).

Example:
  python benchmarks/sparsefool.py --model runs/cifar10 --data data/cifar10/test_images.npy \\
      --limit 100 --device cuda --out bench/sparsefool
  python benchmarks/sparsefool.py --model runs/cifar10 --data data/cifar10/test_images.npy \\
      --limit 20 --attacks sparsefool jsma onepixel --device cpu --out bench/sparse_attacks
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence

import torch

from prime_augment.analysis import deepfool, plot_attack_comparison, sparsefool, summarize_attack
from prime_augment.recipes import _common
from prime_augment.recipes.studies._analysis_cli import Setup, new_parser


def _torchattacks():
    try:
        import torchattacks
    except ImportError as e:  # pragma: no cover - depends on the machine
        raise SystemExit(
            "this benchmark compares with torchattacks, which is not installed: pip install torchattacks"
        ) from e
    return torchattacks


def build_parser() -> argparse.ArgumentParser:
    head, _, example = __doc__.partition("Example:")
    p = new_parser("python benchmarks/sparsefool.py", head.split("\n\n")[0], "Example:" + example)
    b = p.add_argument_group("benchmark")
    b.add_argument("--steps", type=int, default=10, help="SparseFool outer iterations, both sides (10)")
    b.add_argument("--lam", type=float, default=3.0, help="lambda, both sides (3)")
    b.add_argument("--overshoot", type=float, default=0.02, help="overshoot, both sides (0.02)")
    b.add_argument("--repeats", type=int, default=1, help="timed repeats; the median is reported (1)")
    b.add_argument("--deepfool", action="store_true", help="also compare the two DeepFools (50 steps)")
    b.add_argument("--skip-torchattacks", action="store_true", help="time only this implementation")
    b.add_argument(
        "--attacks", nargs="+", choices=ATTACKS, default=["sparsefool", "ta-sparsefool"],
        help="attacks to run on the same images (default: sparsefool ta-sparsefool)",
    )  # fmt: skip
    b.add_argument("--jsma-theta", type=float, default=1.0, help="JSMA: change added per value (1.0)")
    b.add_argument("--jsma-gamma", type=float, default=0.1, help="JSMA: max share of values changed (0.1)")
    b.add_argument("--onepixel-pixels", type=int, default=1, help="one-pixel: pixels changed (1)")
    b.add_argument("--onepixel-steps", type=int, default=10, help="one-pixel: evolution steps (10)")
    b.add_argument("--onepixel-popsize", type=int, default=10, help="one-pixel: population multiplier (10)")
    return p


ATTACKS = ("sparsefool", "ta-sparsefool", "jsma", "onepixel")


def run_side(
    s: Setup,
    attack: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    repeats: int,
    desc: str,
) -> dict:
    """Warm up, then time ``attack`` over all images ``repeats`` times; judge the last run's output."""
    x0 = s.to_float(images[:2])
    attack(x0, labels[:2].to(s.device))
    times, adv = [], None
    for _ in range(repeats):
        outs = []
        s.sync()
        t0 = time.perf_counter()
        for start in s.tqdm(range(0, len(images), batch_size), desc=desc, unit="batch"):
            x = s.to_float(images[start : start + batch_size]).contiguous()
            outs.append(attack(x, labels[start : start + batch_size].to(s.device)).detach())
        s.sync()
        times.append(time.perf_counter() - t0)
        adv = torch.cat(outs)
    clean = s.to_float(images)
    with torch.no_grad():
        pred = torch.cat([s.model(adv[i : i + batch_size]).argmax(1) for i in range(0, len(adv), batch_size)])
    fooled = (pred.cpu() != labels).to(torch.bool)
    summary = summarize_attack((adv - clean).cpu(), fooled, seconds=statistics.median(times))
    summary["seconds_all_repeats"] = times
    in_box = bool(((adv >= 0) & (adv <= 1)).all())
    summary["in_box"] = in_box
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    args = _common.parse_with_config(build_parser(), argv)
    attacks = [a for a in dict.fromkeys(args.attacks) if not (args.skip_torchattacks and a != "sparsefool")]
    if not attacks:
        raise SystemExit("--attacks: nothing to run (--skip-torchattacks drops the torchattacks attacks)")
    if not (0 < args.jsma_gamma <= 1):
        raise SystemExit(f"--jsma-gamma must be in (0, 1], got {args.jsma_gamma}")
    for name in ("onepixel_pixels", "onepixel_steps", "onepixel_popsize"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    s = Setup(args)
    images, labels, selection = s.select()
    bs, reps = args.batch_size, max(1, args.repeats)
    need_ta = any(a != "sparsefool" for a in attacks) or (args.deepfool and not args.skip_torchattacks)
    ta = _torchattacks() if need_ta else None
    sides: dict[str, dict] = {}

    def ours(x, y):
        return sparsefool(s.model, x, max_iter=args.steps, lam=args.lam, overshoot=args.overshoot).adversarial

    for name in attacks:
        if name == "sparsefool":
            sides["SparseFool (prime-augment, batched)"] = run_side(s, ours, images, labels, bs, reps, "ours")
        elif name == "ta-sparsefool":
            theirs = ta.SparseFool(s.model, steps=args.steps, lam=args.lam, overshoot=args.overshoot)
            sides[f"SparseFool (torchattacks {ta.__version__})"] = run_side(
                s, lambda x, y, a=theirs: a(x, y), images, labels, bs, reps, "torchattacks"
            )
        elif name == "jsma":
            if s.meta.get("num_classes", 10) > 10:
                raise SystemExit("--attacks jsma: torchattacks' JSMA targets (label + 1) mod 10")
            jsma = ta.JSMA(s.model, theta=args.jsma_theta, gamma=args.jsma_gamma)
            key = f"JSMA (torchattacks, theta {args.jsma_theta}, gamma {args.jsma_gamma})"
            sides[key] = run_side(s, lambda x, y, a=jsma: a(x, y), images, labels, bs, reps, "jsma")
        else:
            one = ta.OnePixel(s.model, pixels=args.onepixel_pixels, steps=args.onepixel_steps,
                              popsize=args.onepixel_popsize, inf_batch=max(bs, 32))  # fmt: skip
            key = f"one-pixel (torchattacks, {args.onepixel_pixels} px, {args.onepixel_steps} steps)"
            sides[key] = run_side(s, lambda x, y, a=one: a(x, y), images, labels, bs, reps, "onepixel")
    if args.deepfool:

        def our_df(x, y):
            return deepfool(s.model, x, max_iter=50, overshoot=args.overshoot).adversarial

        sides["DeepFool (prime-augment, batched)"] = run_side(s, our_df, images, labels, bs, reps, "ours df")
        if not args.skip_torchattacks:
            tdf = ta.DeepFool(s.model, steps=50, overshoot=args.overshoot)
            sides["DeepFool (torchattacks)"] = run_side(
                s, lambda x, y: tdf(x, y), images, labels, bs, reps, "torchattacks df"
            )

    env = _common.environment(s.device)
    if s.device.type == "cpu":
        env["device_name"] = f"{_common.device_name(s.device)}, {torch.get_num_threads()} thread(s)"
    header = ["implementation", "images", "s / image", "fooling rate (%)", "median % pixels", "median l2"]
    rows = [
        [
            name,
            r["images"],
            f"{r['seconds_per_image']:.4f}",
            f"{r['fooling_rate']:.1f}",
            "n/a" if r["median_pixels_pct"] is None else f"{r['median_pixels_pct']:.2f}",
            "n/a" if r["median_l2"] is None else f"{r['median_l2']:.3f}",
        ]
        for name, r in sides.items()
    ]
    md = _common.table(rows, header)
    md += (
        f"\n\n{env['device_name']} ({env['device']}), torch {env['torch']}, {env['date'][:10]}; "
        f"{len(images)} correctly classified images of {selection['source']['path']} "
        f"(model accuracy on the {selection['scanned']} scanned: {selection['accuracy_on_scanned']:.1f} %); "
        f"steps {args.steps}, lambda {args.lam}, batch {bs}, median of {reps} run(s) after a warm-up."
    )
    s.write(
        "sparsefool_benchmark",
        {"selection": selection, "results": sides, "device_name": env["device_name"]},
        md,
    )
    plot_attack_comparison(sides, s.out / "sparsefool_benchmark.png")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
