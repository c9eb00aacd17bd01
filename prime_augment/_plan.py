"""What a PRIME call does to every image, drawn up front: the :class:`Plan`, its sampler and the one
chain executor.

Read top to bottom: the data (:class:`Step`, :class:`Plan`), how it is drawn (:func:`sample_plan`),
how it is run (:func:`run_chains`). The mixer (:class:`~prime_augment.PRIME`) holds the
hyper-parameters and glues these to the torchvision v2 protocol; it knows the primitives only through
their public protocol (``sample`` and ``apply`` of :class:`~prime_augment.RandomPrimitive`).

The chain-images of a batch of ``B`` images and ``n`` chains are numbered chain-major: chain ``c`` of
image ``b`` is chain-image ``c * B + b``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch

from .functional import _random

if TYPE_CHECKING:
    from ._base import RandomPrimitive

__all__ = ["DEPTH_MODES", "Plan", "Step", "run_chains", "sample_plan"]

#: how the operations of a chain are drawn (see :class:`~prime_augment.PRIME`)
DEPTH_MODES = ("identity", "uniform", "fixed")


@dataclasses.dataclass(frozen=True)
class Step:
    """One primitive at one depth step: the chain-images that drew it and their parameters.

    Attributes:
        depth: the step, ``0 <= depth < m``.
        op: the primitive's position in the mixer's list of primitives.
        index: ``(k,)`` int64 chain-image indices (``c * B + b``) that apply the primitive at this step,
            in increasing order (so grouped by chain).
        params: the primitive's parameters for those ``k`` chain-images, one row each (what its
            ``sample`` returned).
        counts: how many of them belong to each chain (``n`` host integers summing to ``k``), known
            when the plan is drawn, so the executor never reads ``index`` back from a device.
    """

    depth: int
    op: int
    index: torch.Tensor
    params: dict[str, torch.Tensor]
    counts: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Plan:
    """Every random choice of one PRIME call on ``B`` images: replay it with ``PRIME.apply(x, plan)``.

    Attributes:
        weights: ``(B, n)`` Dirichlet(1) weights of the ``n`` chains.
        mix: ``(B,)`` Beta-distributed weight ``p`` of the mix against the original image.
        ops: ``(m, n, B)`` int64 operation of each step of each chain: ``0`` the identity, ``i`` the
            ``i``-th primitive (``PRIME.ops[i - 1]``).
        steps: the non-identity operations grouped into :class:`Step` s, in the order they run
            (depth by depth; within a depth, primitive by primitive).
    """

    weights: torch.Tensor
    mix: torch.Tensor
    ops: torch.Tensor
    steps: tuple[Step, ...]

    @property
    def batch_size(self) -> int:
        return self.mix.shape[0]

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Plan:
        """The plan with ``fn`` applied to every tensor (e.g. ``lambda t: t.to("cuda")``)."""
        steps = tuple(
            Step(s.depth, s.op, fn(s.index), {k: fn(v) for k, v in s.params.items()}, s.counts)
            for s in self.steps
        )
        return Plan(fn(self.weights), fn(self.mix), fn(self.ops), steps)

    def to(self, device: torch.device | str) -> Plan:
        """The plan on ``device`` (draw on one device, apply on another); a CPU-to-CUDA copy goes
        through pinned memory, so it does not synchronise the stream."""
        return self.map(lambda t: to_device(t, device))

    def slice(self, start: int, stop: int) -> Plan:
        """The plan of images ``start..stop - 1``: applied to ``x[start:stop]`` it gives rows
        ``start:stop`` of the whole plan applied to ``x`` (each image keeps its operations and
        parameters). Reads the indices (a host synchronisation on accelerators)."""
        b, n = self.batch_size, self.weights.shape[1]
        if not 0 <= start < stop <= b:
            raise ValueError(f"start and stop must satisfy 0 <= start < stop <= {b}, got {start} and {stop}")
        steps = []
        for s in self.steps:
            image = s.index % b
            keep = (image >= start) & (image < stop)
            if bool(keep.any()):
                chain = s.index[keep] // b
                index = chain * (stop - start) + (image[keep] - start)
                counts = tuple(torch.bincount(chain, minlength=n).tolist())
                steps.append(Step(s.depth, s.op, index, {k: v[keep] for k, v in s.params.items()}, counts))
        sub = slice(start, stop)
        return Plan(self.weights[sub], self.mix[sub], self.ops[:, :, sub], tuple(steps))

    def repeat(self, frames: int) -> Plan:
        """The plan of ``B * frames`` images, each image's draws shared by ``frames`` consecutive
        images (the frames of a ``tv_tensors.Video``: one draw per video)."""
        if frames == 1:
            return self
        b = self.batch_size
        steps = []
        for s in self.steps:  # chain c, image i -> c B + i; its frame f -> c B T + i T + f
            first = (s.index // b) * (b * frames) + (s.index % b) * frames
            index = (first[:, None] + torch.arange(frames, device=first.device)).reshape(-1)
            params = {k: v.repeat_interleave(frames, dim=0) for k, v in s.params.items()}
            steps.append(Step(s.depth, s.op, index, params, tuple(k * frames for k in s.counts)))
        return Plan(
            self.weights.repeat_interleave(frames, dim=0),
            self.mix.repeat_interleave(frames, dim=0),
            self.ops.repeat_interleave(frames, dim=2),
            tuple(steps),
        )


def to_device(t: torch.Tensor, device: torch.device | str | None) -> torch.Tensor:
    """``t`` on ``device`` (``None``: where it is); CPU to CUDA through pinned memory, asynchronously."""
    dev = t.device if device is None else torch.device(device)
    if t.device == dev:
        return t
    if t.device.type == "cpu" and dev.type == "cuda":
        return t.pin_memory().to(dev, non_blocking=True)
    return t.to(dev)


def sample_ops(
    n_primitives: int, depth: int, n_chains: int, depth_mode: str, generator: torch.Generator | None
) -> torch.Tensor:
    """``(depth, n_chains)`` operation ids (0 = identity), drawn on the generator's device (the CPU for
    the global RNG), so partitioning them never synchronises an accelerator.

    ``"identity"``: each step uniform on ``{Id} ∪ primitives``; ``"uniform"``: a length
    ``L ~ U{1..depth}``, then ``L`` steps uniform on the primitives; ``"fixed"``: ``depth`` such steps.
    """
    dev = generator.device if generator is not None else torch.device("cpu")
    shape = (depth, n_chains)
    if depth_mode == "identity":
        return _random.randint(shape, 0, n_primitives, generator=generator, device=dev)
    ops = _random.randint(shape, 1, n_primitives, generator=generator, device=dev)
    if depth_mode == "uniform":
        length = _random.randint((n_chains,), 1, depth, generator=generator, device=dev)
        ops = torch.where(torch.arange(depth, device=dev)[:, None] < length[None, :], ops, 0)
    return ops


def sample_plan(
    primitives: Sequence[RandomPrimitive],
    batch_size: int,
    channels: int,
    height: int,
    width: int,
    *,
    chains: int,
    depth: int,
    depth_mode: str = "identity",
    alpha: float = 1.0,
    beta: float = 1.0,
    same_on_batch: bool = False,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> Plan:
    """Draw the :class:`Plan` of ``batch_size`` images (Algorithm 3 of the method).

    Per image: Dirichlet(1) weights of the ``chains`` chains, ``p ~ Beta(alpha, beta)``, the operation
    of every step of every chain (:func:`sample_ops`), and each primitive's parameters for the
    chain-images that use it: one ``sample`` call per primitive for all its uses in the call (draws
    are per image, so slicing them per step keeps the law). ``same_on_batch``: one draw serves the
    whole batch. ``generator`` drives every draw (each primitive's own generator when ``None``).
    """
    b, n = batch_size, chains
    nb = 1 if (same_on_batch and b > 0) else b
    weights = _random.dirichlet_ones((nb,), n, generator=generator, device=device)
    mix = _random.beta((nb,), alpha, beta, generator=generator, device=device)
    ops = sample_ops(len(primitives), depth, n * nb, depth_mode, generator)  # (depth, n nb)
    # the partition: per step, the chain-images of each primitive in index order (a stable sort), read
    # once on the draw device (the CPU unless the generator lives on an accelerator)
    order = torch.argsort(ops, dim=1, stable=True)
    per_chain = torch.stack([(ops.view(depth, n, nb) == k).sum(2) for k in range(len(primitives) + 1)], 2)
    counts = per_chain.sum(1).tolist()  # (depth, P + 1): chain-images per operation
    per_chain = per_chain.tolist()  # (depth, n, P + 1)
    order = to_device(order, device)
    totals = [sum(col) for col in zip(*counts, strict=True)]
    draws = {
        op: prim.sample(
            totals[op + 1], channels, height, width, device=device,
            generator=generator if generator is not None else prim.generator,
        )
        for op, prim in enumerate(primitives)
        if totals[op + 1] > 0
    }  # fmt: skip
    used = dict.fromkeys(draws, 0)
    steps = []
    for d in range(depth):
        offset = counts[d][0]  # the identities sort first
        for op in range(len(primitives)):
            k = counts[d][op + 1]
            if k == 0:
                continue
            index, offset = order[d, offset : offset + k], offset + k
            params = {key: v[used[op] : used[op] + k] for key, v in draws[op].items()}
            used[op] += k
            if nb != b:  # same_on_batch: chain c's draw serves all B images of chain c
                index = (index[:, None] * b + torch.arange(b, device=index.device)).reshape(-1)
                params = {key: v.repeat_interleave(b, dim=0) for key, v in params.items()}
            per = tuple(per_chain[d][c][op + 1] * (b // nb) for c in range(n))
            steps.append(Step(d, op, index, params, per))
    ops = ops.reshape(depth, n, nb)
    if nb != b:
        weights, mix, ops = weights.expand(b, n), mix.expand(b), ops.expand(depth, n, b)
    return Plan(weights, mix, ops, tuple(steps))


def run_chains(
    x: torch.Tensor,
    plan: Plan,
    primitives: Sequence[RandomPrimitive],
    levels: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """The ``n`` chains of a float batch ``(B, C, H, W)`` under ``plan``, each ``(B, C, H, W)``.

    Chain ``c`` holds its ``B`` images, and is ``x`` itself until a step writes into it. Each
    :class:`Step` gathers the chain-images that drew its primitive (a whole chain is passed as it is,
    part of one by ``index_select``), applies the primitive once to all of them, and writes the results
    back (a whole chain becomes a view of the result; part of one is copied into the chain, which first
    gets its own copy if it has none: one image's chains are never copied). ``levels``: the uint8 batch
    ``x = levels / 255`` was made from, if any; at the first step every chain-image still is its image,
    so a primitive's optional :meth:`~prime_augment.RandomPrimitive.apply_levels` hook (an exact
    256-level table) is used there.
    """
    b = x.shape[0]
    chains = [x] * plan.weights.shape[1]
    owned: set[int] = set()  # chains that hold their own copy (written into in place)
    for step in plan.steps:
        prim = primitives[step.op]
        parts = _by_chain(step, b)
        out = None
        if step.depth == 0 and levels is not None:
            out = prim.apply_levels(levels.index_select(0, step.index % b), step.params)
        if out is None:
            inp = [chains[c] if rows is None else chains[c].index_select(0, rows) for c, _, _, rows in parts]
            inp = inp[0] if len(inp) == 1 else torch.cat(inp)
            if inp is x and not type(prim).__dict__.get("_pure", False):
                inp = x.clone()  # a user's primitive could break the contract and modify its input
            out = prim.apply(inp, step.params)
        out = out.to(x.dtype)
        for c, lo, hi, rows in parts:
            if rows is None:
                chains[c] = out[lo:hi]
                owned.discard(c)
            else:
                if c not in owned:  # copy on write: x, or a result that autograd may have saved
                    chains[c] = chains[c].clone()
                    owned.add(c)
                chains[c].index_copy_(0, rows, out[lo:hi])
    return chains


def _by_chain(step: Step, b: int) -> list[tuple[int, int, int, torch.Tensor | None]]:
    """Per chain the step touches: (chain, first and end row in the step, the rows of the chain's
    images or ``None`` for the whole chain); from the step's host-side counts, no device read."""
    parts, lo = [], 0
    for c, k in enumerate(step.counts):
        if k:
            rows = None if k == b else step.index[lo : lo + k] - c * b
            parts.append((c, lo, lo + k, rows))
            lo += k
    return parts
