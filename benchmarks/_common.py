"""Timing helpers shared by the benchmarks: warm-up, synchronisation, medians, environment record."""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from prime_augment.recipes._common import environment as recipes_environment


def environment(device: torch.device) -> dict[str, Any]:
    """The recipes' record (versions, device, date, argv) plus what skews timings: threads and load."""
    info = recipes_environment(device)
    info["threads"] = torch.get_num_threads()
    # other jobs on the machine skew CPU timings: record the 1/5/15-minute load averages
    info["load_average"] = [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None
    return info


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(
    fn: Callable[[], Any], device: torch.device, *, warmup: int = 5, repeats: int = 30
) -> dict[str, float]:
    """Median (and quartiles) of ``repeats`` timed calls after ``warmup`` calls, in milliseconds.

    On CUDA every call is timed with CUDA events around it after a synchronisation.
    """
    res = time_interleaved({"fn": fn}, device, warmup=warmup, repeats=repeats)["fn"]
    res.pop("faults", None)
    return res


def time_interleaved(
    cases: dict[str, Callable[[], Any]],
    device: torch.device,
    *,
    warmup: int = 5,
    repeats: int = 30,
    block: int = 1,
) -> dict[str, dict[str, float]]:
    """:func:`time_ms` for several cases, interleaved in blocks of ``block`` consecutive calls
    (round-robin, the order rotating each round), so that all cases see the same drifts of the machine
    (other jobs, frequency scaling). ``block > 1`` lets each case settle into its own steady state
    (caches, allocator) within a block, as a transform applied image after image does; ``block=1``
    alternates call by call (then a memory-hungry case also slows the next one down). Also reports the
    mean number of minor page faults per call (``faults``; CPU, Unix only).
    """
    try:
        import resource

        def faults() -> int:
            return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    except ImportError:  # pragma: no cover - Windows

        def faults() -> int:
            return 0

    names = list(cases)
    for _ in range(warmup):
        for n in names:
            cases[n]()
    sync(device)
    times: dict[str, list[float]] = {n: [] for n in names}
    flt: dict[str, int] = dict.fromkeys(names, 0)
    rounds = -(-repeats // block)
    order = [names[(i + r) % len(names)] for r in range(rounds) for i in range(len(names))]
    for n in (m for m in order for _ in range(block)):
        if len(times[n]) >= repeats:
            continue
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            cases[n]()
            end.record()
            torch.cuda.synchronize(device)
            times[n].append(start.elapsed_time(end))
        else:
            f0 = faults()
            t0 = time.perf_counter()
            cases[n]()
            times[n].append((time.perf_counter() - t0) * 1e3)
            flt[n] += faults() - f0
    out = {}
    for n in names:
        t = times[n]
        q = statistics.quantiles(t, n=4) if len(t) >= 4 else [min(t), statistics.median(t), max(t)]
        out[n] = {
            "median_ms": statistics.median(t), "mean_ms": statistics.fmean(t), "q1_ms": q[0], "q3_ms": q[2],
            "repeats": repeats,
        }  # fmt: skip
        if device.type != "cuda":
            out[n]["faults"] = flt[n] / repeats
    return out


def write_json(path: str | Path, data: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def print_table(rows: list[list[Any]], header: list[str]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    text = "\n".join(lines)
    print(text)
    return text
