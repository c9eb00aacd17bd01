"""``prime-augment sparsefool``: SparseFool on a saved model and a dataset.

Writes ``sparsefool.json`` (summary, per-image results, environment, config), ``sparsefool.md`` (the
table), ``pixels.png`` (histogram of the % of perturbed pixels) and ``examples.png`` to ``--out``.
``--delta-sweep`` adds the perceptibility sweep of Fig. 3.6 of the method (fooling rate and sparsity
against the bound ``delta``: ``delta_sweep.json``, ``.md``, ``.png``); ``--transfer-model`` adds
the transferability of Tab. 3.3 (adversarials of each model judged by the others, on the images all
of them classify correctly: ``transfer.json``, ``.md``, ``.png``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import torch

from .. import _common

EPILOG = """\
Example:
  prime-augment sparsefool --model runs/cifar10 --data data/cifar10/test_images.npy \\
      --limit 100 --batch-size 50 --device cuda --out out/sparsefool
  (the delta sweep and the transfer to a second model: add
   --delta-sweep 0.02 0.05 0.1 0.2 0.5 1 --transfer-model runs/other_model)
"""


def build_parser() -> argparse.ArgumentParser:
    from ._analysis_cli import new_parser

    p = new_parser(
        "prime-augment sparsefool",
        "SparseFool (sparse adversarial perturbations) on a saved model: fooling rate, % of perturbed "
        "pixels, l0/l1/l2 and time per image, on correctly classified images.",
        EPILOG,
    )
    a = p.add_argument_group("SparseFool")
    a.add_argument(
        "--lam",
        type=_common.positive_float,
        default=3.0,
        help="boundary-point overshoot lambda (3; 1 on MNIST)",
    )
    a.add_argument("--max-iter", type=_common.positive_int, default=20, help="outer iterations (default 20)")
    a.add_argument(
        "--overshoot", type=_common.nonneg_float, default=0.02, help="final overshoot epsilon (default 0.02)"
    )
    a.add_argument(
        "--delta",
        type=_common.positive_float,
        default=None,
        help="perceptibility box |x_adv - x| <= delta (default none)",
    )
    a.add_argument(
        "--candidates",
        type=_common.positive_int,
        default=10,
        help="classes considered by DeepFool (default 10)",
    )
    a.add_argument(
        "--bounds",
        type=_common.finite_float,
        nargs=2,
        default=(0.0, 1.0),
        metavar=("LOW", "HIGH"),
        help="the valid pixel range the adversarial is clipped to, LOW < HIGH (default 0 1)",
    )
    a.add_argument(
        "--examples", type=_common.nonneg_int, default=8, help="images shown in examples.png (default 8)"
    )
    e = p.add_argument_group("evaluations")
    e.add_argument(
        "--delta-sweep", type=_common.positive_float, nargs="+", default=None, metavar="DELTA",
        help="also attack under each bound |x_adv - x| <= DELTA: delta_sweep.json/.md/.png",
    )  # fmt: skip
    e.add_argument(
        "--transfer-model", nargs="+", default=None, metavar="MODEL",
        help="also judge the adversarials of each model by the others: transfer.json/.md/.png",
    )  # fmt: skip
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from ...analysis import perturbation_norms, plot_examples, plot_histogram, sparsefool, summarize_attack
    from ._analysis_cli import Setup, check_positive

    args = _common.parse_with_config(build_parser(), argv)
    check_positive(args, "max_iter", "candidates")
    s = Setup(args)
    images, labels, selection = s.select()
    bounds = tuple(args.bounds)
    if not bounds[0] < bounds[1]:
        raise SystemExit(f"--bounds {bounds[0]:g} {bounds[1]:g}: expected LOW < HIGH")

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
    if args.delta_sweep:
        _delta_sweep(s, args, images, bounds)
    if args.transfer_model:
        _transfer(s, args, images, labels, bounds)
    return 0


def _kwargs(args: argparse.Namespace, bounds: tuple[float, float]) -> dict:
    return {"lam": args.lam, "max_iter": args.max_iter, "overshoot": args.overshoot, "bounds": bounds,
            "candidates": args.candidates}  # fmt: skip


def _delta_sweep(s, args: argparse.Namespace, images: torch.Tensor, bounds: tuple[float, float]) -> None:
    """SparseFool under each ``--delta-sweep`` bound (and without one): table, JSON and plot."""
    from ...analysis import delta_sweep, plot_delta_sweep

    bad = [d for d in args.delta_sweep if not d > 0]
    if bad:
        raise SystemExit(f"--delta-sweep values must be > 0, got {bad}")
    deltas = sorted(set(args.delta_sweep))
    x = s.to_float(images)
    rows = delta_sweep(s.model, x, [*deltas, None], batch_size=args.batch_size, progress=s.progress,
                       **_kwargs(args, bounds))  # fmt: skip
    table = [
        ["none" if r["delta"] is None else f"{r['delta']:g}", r["images"], f"{r['fooling_rate']:.1f}",
         _fmt(r["median_pixels_pct"]), _fmt(r["median_l2"], 3), _fmt(r["median_linf"], 3),
         _fmt(r["seconds_per_image"], 4)]
        for r in rows
    ]  # fmt: skip
    md = _common.table(table, ["delta", "images", "fooling rate (%)", "median % pixels", "median l2",
                               "median linf", "s / image"])  # fmt: skip
    env = _common.environment(s.device)
    md += (f"\n\nSparseFool on {len(x)} images; lambda {args.lam}, {args.max_iter} steps; "
           f"{env['device_name']} ({env['device']}), {env['date'][:10]}.")  # fmt: skip
    s.write("delta_sweep", {"sweep": rows}, md)
    fin, free = rows[:-1], rows[-1]
    plot_delta_sweep([r["delta"] for r in fin], [r["fooling_rate"] for r in fin],
                     [r["median_pixels_pct"] for r in fin], s.out / "delta_sweep.png",
                     unbounded=(free["fooling_rate"], free["median_pixels_pct"]))  # fmt: skip
    print(md)
    print(f"wrote {s.out}/delta_sweep.json, delta_sweep.md, delta_sweep.png")


def _transfer(s, args, images: torch.Tensor, labels: torch.Tensor, bounds: tuple[float, float]) -> None:
    """Transferability between ``--model`` and every ``--transfer-model``: matrix, JSON and heat map."""
    from ...analysis import plot_matrix, sparsefool, transferability
    from ..benchmark.models import load_model

    models = {_name(args.model, set()): s.model}
    for path in args.transfer_model:
        try:
            m, _ = load_model(path, map_location="cpu")
        except (FileNotFoundError, ValueError) as e:
            raise SystemExit(f"--transfer-model {path}: {e}") from e
        models[_name(path, set(models))] = m.to(s.device).eval()
    kw = _kwargs(args, bounds)

    def attack(model, x, y):
        return sparsefool(model, x, labels=y, delta=args.delta, **kw).adversarial

    res = transferability(models, s.to_float(images), labels.to(s.device), attack=attack,
                          batch_size=args.batch_size, progress=s.progress)  # fmt: skip
    names = res["models"]
    rows = [[f"{src} (fooled {_fmt(res['source_fooling_rate'][src], 1)} %)",
             *(_fmt(v, 1) for v in res["fooling_rate"][i])] for i, src in enumerate(names)]  # fmt: skip
    md = _common.table(rows, ["crafted on (row), judged by (column)", *names])
    env = _common.environment(s.device)
    md += (
        f"\n\nTransfer fooling rate (%): the share of the images fooled on the source model (row) whose "
        f"SparseFool adversarial the target model (column) also misclassifies; {res['images']} images that "
        f"every model classifies correctly; {env['device_name']} ({env['device']}), {env['date'][:10]}."
    )
    s.write("transfer", {"transfer": res}, md)
    mat = [[float("nan") if v is None else v for v in r] for r in res["fooling_rate"]]
    plot_matrix(mat, names, names, s.out / "transfer.png", title="SparseFool transfer fooling rate (%)",
                xlabel="judged by", ylabel="crafted on", vmax=100.0)  # fmt: skip
    print(md)
    print(f"wrote {s.out}/transfer.json, transfer.md, transfer.png")


def _name(path: str, taken: set[str]) -> str:
    """A short unique label for a model path (its run folder or file stem)."""
    from pathlib import Path

    p = Path(path)
    base = p.parent.name if p.name == "model.pt" else (p.stem if p.suffix == ".pt" else p.name)
    name, i = base or "model", 2
    while name in taken:
        name, i = f"{base} ({i})", i + 1
    return name


def _fmt(v: float | None, digits: int = 2) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
