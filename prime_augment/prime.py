"""The PRIME mixer: Dirichlet-weighted chains of random primitives, Beta-mixed with the image."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import PIL.Image
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from . import _inputs
from ._base import (
    RandomPrimitive,
    _warn_if_generator_in_worker,
    batch_spec,
    fast_mode,
    needs_grad,
    repeat_params,
    require_image,
    usable_params,
)
from ._validation import check_bool, check_choice, check_float, check_generator, check_int
from .color import RandomSineColor
from .functional import _random
from .presets import get_preset
from .spatial import RandomDiffeomorphism
from .spectral import RandomSpectralFilter

__all__ = ["DEPTH_MODES", "PRIME", "PRIMITIVES"]

#: the method's primitives by name
PRIMITIVES: dict[str, type[RandomPrimitive]] = {
    "spectral": RandomSpectralFilter,
    "spatial": RandomDiffeomorphism,
    "color": RandomSineColor,
}

#: the package's primitives, whose ``apply`` is tested never to modify its input
_OWN = frozenset(PRIMITIVES.values())

#: up to this many chain-images (``width x batch``) drawn on the CPU, the plan partitions in Python
_PYTHON_PARTITION_MAX = 64

#: how the operations of a chain are drawn (see :class:`PRIME`)
DEPTH_MODES = ("identity", "uniform", "fixed")

#: on the CPU, :meth:`PRIME.apply` processes a batch in chunks of at most this many bytes of images
CPU_CHUNK_BYTES = 3 << 20
#: ... and images of at least this many bytes one by one (224 x 224 x 3 float32 is 588 KiB)
CPU_SINGLE_BYTES = 512 << 10


def _to_device(t: torch.Tensor, device: torch.device | str | None) -> torch.Tensor:
    """Move ``t``; a CPU tensor goes to CUDA through pinned memory, so the copy does not synchronise."""
    dev = torch.device(device) if device is not None else t.device
    if t.device == dev:
        return t
    if t.device.type == "cpu" and dev.type == "cuda":
        return t.pin_memory().to(dev, non_blocking=True)
    return t.to(dev)


class PRIME(v2.Transform):
    """PRIME augmentation: a random convex mix of chains of random primitives and the image.

    For every image ``x`` (Algorithm 3 of the method, with the mixing of its Eq. 5.9):

    .. math::

        \\tilde x = (1 - p)\\, x + p \\sum_{i=1}^{n} w_i\\, (o_{i, m} \\circ \\dots \\circ o_{i, 1})(x),
        \\qquad w \\sim \\operatorname{Dir}(1, \\dots, 1),
        \\quad p \\sim \\operatorname{Beta}(\\alpha, \\beta),

    with ``n = width`` chains of ``m = depth`` steps. How each step ``o`` is drawn (``depth_mode``):

    * ``"identity"`` (default, Algorithm 3): uniformly from ``{Id} ∪ primitives``; the identity gives a
      stochastic depth between 0 and ``depth`` non-identity operations (a chain is the identity with
      probability ``(1 / (P + 1))^depth``);
    * ``"uniform"`` (the method's public code): a chain length ``L ~ U{1..depth}``, then ``L``
      operations drawn uniformly from the primitives;
    * ``"fixed"``: exactly ``depth`` operations drawn uniformly from the primitives.

    Every draw (weights, ``p``, operations, and each primitive's parameters) is independent per image
    unless ``same_on_batch``. Each primitive runs only on the images that drew it at a given step (the
    batch is partitioned by operation, one batched call per primitive and step); the chains are mixed
    in one pass. The result stays in ``[0, 1]``.

    Args:
        primitives: non-empty subset of ``("spectral", "spatial", "color")`` (the ablation of the
            method's Tab. 5.5) at their CIFAR defaults, and/or :class:`~prime_augment.RandomPrimitive`
            instances (copied; their own hyper-parameters are kept).
        width: number ``n >= 1`` of chains.
        depth: number ``m >= 1`` of steps per chain.
        depth_mode: ``"identity"``, ``"uniform"`` or ``"fixed"`` (above).
        alpha, beta: parameters of the Beta law of ``p`` (default ``Beta(1, 1)``, i.e. ``U(0, 1)``).
        strength: multiplier ``>= 0`` on every primitive's strength (the method's ``alpha`` of §5.4.3);
            ``0`` is exactly the identity.
        same_on_batch: one draw for the whole batch instead of one per image.
        generator: optional generator for every draw; the global RNG when ``None``. The choice of
            operations (which fixes the partition sizes) is drawn on the generator's device, or on the
            CPU for the global RNG, so a CUDA batch needs no host synchronisation to partition.

    Shape:
        Input ``(C, H, W)`` or ``(..., C, H, W)`` tensor (float in ``[0, 1]`` or uint8), a
        ``tv_tensors.Image``, a ``tv_tensors.Video`` ``(..., T, C, H, W)`` (one draw per video, shared
        by its frames) or a PIL image; the output has the input's type, shape and dtype. ``C``, ``H``
        or ``W`` may be 0 (an empty output). ``+Inf``/``-Inf`` pixels are read as 1/0; ``NaN`` pixels
        propagate (the outputs computed from them are ``NaN``).

    Example:
        >>> import torch
        >>> from prime_augment import PRIME
        >>> prime = PRIME.from_preset("cifar10", generator=torch.Generator().manual_seed(0))
        >>> x = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
        >>> y = prime(x)
        >>> y.shape, bool(((y >= 0) & (y <= 1)).all())
        (torch.Size([8, 3, 32, 32]), True)
        >>> params = prime.make_params([x])                       # sample everything ...
        >>> torch.equal(prime.transform(x, params), prime.transform(x, params))  # ... replay
        True
    """

    def __init__(
        self,
        primitives: Sequence[str | RandomPrimitive] = ("spectral", "spatial", "color"),
        *,
        width: int = 3,
        depth: int = 3,
        depth_mode: str = "identity",
        alpha: float = 1.0,
        beta: float = 1.0,
        strength: float = 1.0,
        same_on_batch: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.width = check_int(width, "width", low=1)
        self.depth = check_int(depth, "depth", low=1)
        self.depth_mode = check_choice(depth_mode, "depth_mode", DEPTH_MODES)
        self.alpha = check_float(alpha, "alpha", low=0.0, low_open=True)
        self.beta = check_float(beta, "beta", low=0.0, low_open=True)
        self.strength = check_float(strength, "strength", low=0.0)
        self.same_on_batch = check_bool(same_on_batch, "same_on_batch")
        self.generator = check_generator(generator)
        ops = self._build_primitives(primitives, self.strength)
        self.primitives = tuple(self._name(op) for op in ops)
        self.ops = torch.nn.ModuleList(ops)

    @staticmethod
    def _build_primitives(primitives: Any, strength: float) -> list[RandomPrimitive]:
        if isinstance(primitives, (str, RandomPrimitive)) or not isinstance(primitives, Sequence):
            raise TypeError(
                "primitives must be a sequence of names ('spectral', 'spatial', 'color') or RandomPrimitive "
                f"instances, got {primitives!r}"
            )
        if len(primitives) == 0:
            raise ValueError("primitives must not be empty")
        ops: list[RandomPrimitive] = []
        for item in primitives:
            if isinstance(item, str):
                if item not in PRIMITIVES:
                    raise ValueError(f"unknown primitive {item!r}: choose from {tuple(PRIMITIVES)}")
                ops.append(PRIMITIVES[item](strength=strength))
            elif isinstance(item, RandomPrimitive):
                op = copy.deepcopy(item)
                op.strength = item.strength * strength
                ops.append(op)
            else:
                raise TypeError(
                    "primitives must hold names or RandomPrimitive instances, "
                    f"got {item!r} ({type(item).__name__})"
                )
        return ops

    @staticmethod
    def _name(op: RandomPrimitive) -> str:
        for name, cls in PRIMITIVES.items():
            if type(op) is cls:
                return name
        return type(op).__name__

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> PRIME:
        """PRIME with the hyper-parameters of a task: ``cifar10``, ``cifar100``, ``imagenet``,
        ``imagenet100`` or ``ccm`` (see :mod:`prime_augment.presets`).

        ``overrides`` replace the mixer's arguments (``width``, ``alpha``, ``strength``,
        ``primitives=("spectral", "color")`` to ablate, ...) and, as dicts under the keys
        ``spectral``, ``spatial`` and ``color``, the primitives' hyper-parameters (anything else there,
        ``None`` included, is a ``TypeError``). The presets work at any image size (an empty
        temperature range falls back to ``T_min``).

        Example:
            >>> p = PRIME.from_preset("ccm", depth=2, spatial={"cut_max": 20})
            >>> p.alpha, p.depth, p.ops[1].cut_max
            (5.0, 2, 20)
        """
        cfg = get_preset(name)
        prim_kw = {}
        for key in PRIMITIVES:
            extra = overrides.pop(key, {})
            if not isinstance(extra, dict):
                raise TypeError(
                    f"from_preset: {key}= must be a dict of {PRIMITIVES[key].__name__} hyper-parameters "
                    f"(e.g. {key}={cfg[key]!r}), got {extra!r}; to leave the primitive out, pass "
                    f"primitives={tuple(k for k in PRIMITIVES if k != key)!r}"
                )
            prim_kw[key] = {**cfg[key], **extra}
        mixer = {**cfg["mixer"], **overrides}
        names = mixer.pop("primitives", tuple(PRIMITIVES))
        if isinstance(names, str) or not isinstance(names, Sequence):
            raise TypeError(f"primitives must be a sequence of primitive names, got {names!r}")
        built = []
        for n in names:
            if isinstance(n, str):
                if n not in PRIMITIVES:
                    raise ValueError(f"unknown primitive {n!r}: choose from {tuple(PRIMITIVES)}")
                built.append(PRIMITIVES[n](**prim_kw[n]))
            else:
                built.append(n)
        return cls(built, **mixer)

    # ------------------------------------------------------------------ sampling
    def _sample_ops(self, n_chains: int, generator: torch.Generator | None) -> torch.Tensor:
        """(depth, n_chains) operation ids: 0 = identity, 1..P = ``self.ops[id - 1]``."""
        n_ops = len(self.ops)
        sdev = generator.device if generator is not None else torch.device("cpu")
        shape = (self.depth, n_chains)
        if self.depth_mode == "identity":
            return _random.randint(shape, 0, n_ops, generator=generator, device=sdev)
        ops = _random.randint(shape, 1, n_ops, generator=generator, device=sdev)
        if self.depth_mode == "uniform":
            length = _random.randint((n_chains,), 1, self.depth, generator=generator, device=sdev)
            ops = torch.where(torch.arange(self.depth, device=sdev)[:, None] < length[None, :], ops, 0)
        return ops

    def sample_plan(
        self,
        batch_size: int,
        channels: int,
        height: int,
        width: int,
        *,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, Any]:
        """Draw everything a call needs, for ``batch_size`` images of the given size.

        Returns a dict with ``weights`` ``(B, n)`` (Dirichlet), ``mix`` ``(B,)`` (Beta), ``ops``
        ``(depth, n, B)`` (operation ids, 0 = identity, chain-major) and ``steps``: for each depth step
        a dict ``{op id: {"index": (k,) chain-image indices, "params": that primitive's parameters for
        those k images}}``, the chain-image of chain ``c`` and image ``b`` having index ``c * B + b``.
        """
        g = generator if generator is not None else self.generator
        _warn_if_generator_in_worker(g)
        b, n = batch_size, self.width
        nb = 1 if (self.same_on_batch and b > 0) else b
        weights = _random.dirichlet_ones((nb,), n, generator=g, device=device)
        mix = _random.beta((nb,), self.alpha, self.beta, generator=g, device=device)
        ops = self._sample_ops(n * nb, g)  # (depth, n * nb), chain-major, on the draw device
        n_ops = len(self.ops)
        expand = torch.arange(b, device=ops.device) if nb != b else None
        # one bincount and one sort for all steps; then one parameter draw per primitive for all of
        # its uses in the call, sliced per step (draws are per image, so this is the same law)
        if ops.device.type == "cpu" and ops.shape[1] <= _PYTHON_PARTITION_MAX:
            # a few chain-images drawn on the CPU (the DataLoader-worker case): the partition in
            # Python lists, the same stable order as the sort below, with fewer tensor operations
            rows = [[[j for j, o in enumerate(line) if o == op_id] for op_id in range(n_ops + 1)]
                    for line in ops.tolist()]  # fmt: skip
            counts_list = [[len(r) for r in step_rows] for step_rows in rows]
            order = torch.tensor([[j for r in step_rows for j in r] for step_rows in rows], dtype=torch.int64)
        else:
            counts = torch.bincount(
                (ops + (n_ops + 1) * torch.arange(self.depth, device=ops.device)[:, None]).flatten(),
                minlength=self.depth * (n_ops + 1),
            ).view(self.depth, n_ops + 1)
            order = torch.argsort(ops, dim=1, stable=True)
            counts_list = counts.tolist()  # free when the ops were drawn on the CPU (the default)
        if expand is None:  # one host-to-device copy of all the partitions, asynchronous when pinned
            order = _to_device(order, device)
        totals = [sum(col) for col in zip(*counts_list, strict=True)]
        draws = {
            op_id: self.ops[op_id - 1].sample(
                totals[op_id], channels, height, width, device=device,
                generator=g if g is not None else self.ops[op_id - 1].generator,
            )
            for op_id in range(1, n_ops + 1)
            if totals[op_id] > 0
        }
        used = dict.fromkeys(draws, 0)
        steps: list[dict[int, dict[str, Any]]] = []
        for d in range(self.depth):
            step: dict[int, dict[str, Any]] = {}
            offset = counts_list[d][0]
            for op_id in range(1, n_ops + 1):
                k = counts_list[d][op_id]
                if k == 0:
                    continue
                sel = order[d, offset : offset + k]
                offset += k
                u = used[op_id]
                whole = k == totals[op_id]  # the primitive's only step: its draws as they are
                prm = draws[op_id] if whole else {key: v[u : u + k] for key, v in draws[op_id].items()}
                used[op_id] = u + k
                if expand is not None:  # same_on_batch: chain c's draw serves all B images of chain c
                    sel = (sel[:, None] * b + expand[None, :]).reshape(-1)
                    prm = {key: v.repeat_interleave(b, dim=0) for key, v in prm.items()}
                step[op_id] = {"index": _to_device(sel, device), "params": prm}
            steps.append(step)
        ops = ops.reshape(self.depth, n, nb)
        if expand is not None:
            weights, mix, ops = weights.expand(b, n), mix.expand(b), ops.expand(self.depth, n, b)
        return {"weights": weights, "mix": mix, "ops": ops, "steps": steps}

    # ------------------------------------------------------------------ v2 protocol
    def check_inputs(self, flat_inputs: list[Any]) -> None:
        require_image(self, flat_inputs)
        for x in flat_inputs:
            if isinstance(x, tv_tensors.TVTensor) and not isinstance(x, (tv_tensors.Image, tv_tensors.Video)):
                raise TypeError(
                    "PRIME mixes differently warped copies of an image, so a "
                    f"{type(x).__name__} cannot follow it; PRIME supports images (classification) only"
                )

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        if self.strength == 0.0:
            return {}
        b, c, h, w, device = batch_spec(flat_inputs)
        if c * h * w == 0:  # images without pixels: nothing to draw, the identity
            return {}
        with fast_mode(flat_inputs):
            return self.sample_plan(b, c, h, w, device=device)

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not _inputs.is_image(inpt):
            return inpt
        if not params:  # strength 0: exactly the identity, as a new object
            return inpt.copy() if isinstance(inpt, PIL.Image.Image) else inpt.clone()
        batch = _inputs.to_batch(inpt, keep_uint8=True)
        params = self.repeat_plan(params, batch.frames)  # a video's frames share its draw
        if not batch.uint8:
            return batch.restore(self.apply(batch.data, usable_params(params, batch.data)))
        x = batch.data.to(torch.float32) / 255.0  # what to_batch gives for uint8
        return batch.restore(self.apply(x, params, levels=batch.data))

    # ------------------------------------------------------------------ pure steps
    def chains(
        self, x: torch.Tensor, params: dict[str, Any], *, levels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The ``n`` augmented chains of a float batch ``(B, C, H, W)``: ``(n, B, C, H, W)``.

        ``levels``: the uint8 images ``x`` was made from (``x = levels / 255``), if any; the first
        operation of a chain then uses a primitive's exact integer-level path where it has one (the
        color map: a 256-entry table per image and channel, see
        :func:`~prime_augment.functional.sine_color_levels`).
        """
        chains = self._chains(x, params, levels)
        return chains if isinstance(chains, torch.Tensor) else torch.stack(chains)

    def _chains(
        self, x: torch.Tensor, params: dict[str, Any], levels: torch.Tensor | None
    ) -> torch.Tensor | list[torch.Tensor]:
        """:meth:`chains` as an ``(n, B, C, H, W)`` tensor, or for one CPU image as a list of ``n``
        ``(1, C, H, W)`` tensors (no copies: each chain holds the latest result computed for it)."""
        if x.shape[0] == 1 and x.device.type == "cpu":
            return self._chains_of_one(x, params, levels)
        return self._chains_of_many(x, params, levels)

    def _chains_of_many(
        self, x: torch.Tensor, params: dict[str, Any], levels: torch.Tensor | None
    ) -> torch.Tensor:
        # the chain-images in one (n B, C, H, W) tensor, gathered and scattered per operation
        b = x.shape[0]
        cur = x.unsqueeze(0).expand(self.width, *x.shape).reshape(self.width * b, *x.shape[1:]).clone()
        if b == 0:
            return cur.view(self.width, *x.shape)
        codes = None
        for depth, step in enumerate(params["steps"]):
            for op_id, entry in step.items():
                idx = entry["index"]
                prim = self.ops[op_id - 1]
                out = None
                if depth == 0 and levels is not None:  # every chain-image is still its original image
                    if codes is None:
                        codes = levels.to(torch.int64)
                    out = prim._apply_levels(codes[idx % b], entry["params"])
                if out is None:
                    out = prim.apply(cur.index_select(0, idx), entry["params"])
                if idx.numel() == cur.shape[0]:  # every chain-image drew this op: no scatter needed
                    cur = out.index_select(0, torch.argsort(idx))
                else:
                    cur.index_copy_(0, idx, out)
        return cur.view(self.width, *x.shape)

    def _chains_of_one(
        self, x: torch.Tensor, params: dict[str, Any], levels: torch.Tensor | None
    ) -> list[torch.Tensor]:
        # the DataLoader-worker case: chain c is a (1, C, H, W) tensor, x itself until an operation
        # replaces it (the primitives never modify their input); k chains drawing one operation are
        # concatenated for one call and get views of its result
        chain: list[torch.Tensor] = [x] * self.width
        codes = None
        for depth, step in enumerate(params["steps"]):
            for op_id, entry in step.items():
                rows = entry["index"].tolist()
                prim = self.ops[op_id - 1]
                out = None
                if depth == 0 and levels is not None:
                    if codes is None:
                        codes = levels.to(torch.int64)
                    out = prim._apply_levels(codes.expand(len(rows), *codes.shape[1:]), entry["params"])
                if out is None:
                    inp = chain[rows[0]] if len(rows) == 1 else torch.cat([chain[r] for r in rows])
                    if len(rows) == 1 and type(prim) not in _OWN:  # a user's primitive gets its own copy
                        inp = inp.clone()  # (the chains share x and views: an in-place apply would leak)
                    out = prim.apply(inp, entry["params"])
                for j, r in enumerate(rows):
                    chain[r] = out[j : j + 1]
        return chain

    def mix(
        self, x: torch.Tensor, chains: torch.Tensor | Sequence[torch.Tensor], params: dict[str, Any]
    ) -> torch.Tensor:
        """``(1 - p) x + p sum_i w_i chain_i`` in one pass, clipped to ``[0, 1]`` against rounding.

        ``chains``: ``(n, B, C, H, W)`` (see :meth:`chains`) or ``n`` tensors ``(B, C, H, W)``.
        """
        p = params["mix"].to(x.dtype)
        w = (params["weights"].to(x.dtype) * p[:, None]).T[..., None, None, None]  # (n, B, 1, 1, 1)
        out = x * (1.0 - p)[:, None, None, None]
        for i in range(len(chains)):  # n in-place passes: few operations, no (n, B, ...) temporary
            out.addcmul_(chains[i], w[i])
        return out.clamp_(0.0, 1.0)

    def apply(
        self, x: torch.Tensor, params: dict[str, Any], *, levels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """PRIME of a float batch ``(B, C, H, W)`` with the given parameters (see :meth:`sample_plan`);
        ``levels``: the uint8 batch ``x = levels / 255`` was made from, if any (see :meth:`chains`).

        On the CPU a batch is processed in chunks of about :data:`CPU_CHUNK_BYTES` (one image at a
        time from :data:`CPU_SINGLE_BYTES` per image, e.g. 224 x 224): the chains' buffers of a chunk
        are reused from chunk to chunk instead of being mapped afresh for the whole batch, each page
        costing a fault, and a single image takes the cheapest path. The result is that of the whole
        batch at once (each image's computation is its own).
        """
        if not params:
            return x.clone()
        b = x.shape[0]
        chunk = self._cpu_chunk(x)
        if chunk >= b:
            return self._apply_all(x, params, levels)
        out = torch.empty_like(x)
        for lo in range(0, b, chunk):
            hi = min(b, lo + chunk)
            sub = self.slice_plan(params, lo, hi)
            out[lo:hi] = self._apply_all(x[lo:hi], sub, None if levels is None else levels[lo:hi])
        return out

    def _apply_all(
        self, x: torch.Tensor, params: dict[str, Any], levels: torch.Tensor | None
    ) -> torch.Tensor:
        with fast_mode([x]):  # the chains in inference mode when no gradient is needed ...
            chains = self._chains(x, params, levels)
        return self.mix(x, chains, params)  # ... and the mix outside: the result is a normal tensor

    @staticmethod
    def _cpu_chunk(x: torch.Tensor) -> int:
        """Images per chunk of :meth:`apply` (the whole batch off the CPU or under autograd)."""
        if x.device.type != "cpu" or x.shape[0] <= 1 or needs_grad([x]) or torch.compiler.is_compiling():
            return max(1, x.shape[0])
        per_image = x[0].numel() * x.element_size()
        if per_image >= CPU_SINGLE_BYTES:  # large images one by one: the one-image path is cheapest
            return 1
        return max(1, CPU_CHUNK_BYTES // max(1, per_image))

    @staticmethod
    def repeat_plan(params: dict[str, Any], frames: int) -> dict[str, Any]:
        """The plan of ``B`` images for ``B * frames`` images, each image's draws repeated for
        ``frames`` consecutive images (the frames of a ``tv_tensors.Video``: one draw per video)."""
        if frames == 1:
            return params
        b = params["mix"].shape[0]
        steps = []
        for step in params["steps"]:
            new = {}
            for op_id, entry in step.items():
                idx = entry["index"]  # chain c, image i -> c B + i; frames f of it -> c B T + i T + f
                first = (idx // b) * (b * frames) + (idx % b) * frames
                new[op_id] = {
                    "index": (first[:, None] + torch.arange(frames, device=idx.device)).reshape(-1),
                    "params": repeat_params(entry["params"], frames),
                }
            steps.append(new)
        return {
            "weights": params["weights"].repeat_interleave(frames, dim=0),
            "mix": params["mix"].repeat_interleave(frames, dim=0),
            "ops": params["ops"].repeat_interleave(frames, dim=2),
            "steps": steps,
        }

    @staticmethod
    def slice_plan(params: dict[str, Any], start: int, stop: int) -> dict[str, Any]:
        """The plan of images ``start..stop - 1`` of a plan drawn by :meth:`sample_plan`.

        Applying the sliced plan to ``x[start:stop]`` gives rows ``start:stop`` of applying the whole
        plan to ``x`` (each image keeps its operations and parameters). Reads the partition indices
        (a host synchronisation on accelerators).

        Example:
            >>> import torch
            >>> prime = PRIME(generator=torch.Generator().manual_seed(0))
            >>> x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
            >>> params = prime.make_params([x])
            >>> y = prime.transform(x, params)
            >>> torch.allclose(prime.transform(x[1:3], prime.slice_plan(params, 1, 3)), y[1:3], atol=1e-5)
            True
        """
        b = params["mix"].shape[0]
        if not 0 <= start < stop <= b:
            raise ValueError(f"start and stop must satisfy 0 <= start < stop <= {b}, got {start} and {stop}")
        n = stop - start
        steps = []
        for step in params["steps"]:
            new = {}
            for op_id, entry in step.items():
                idx = entry["index"]
                image = idx % b
                keep = (image >= start) & (image < stop)
                if bool(keep.any()):
                    new[op_id] = {
                        "index": (idx[keep] // b) * n + (image[keep] - start),
                        "params": {k: v[keep] for k, v in entry["params"].items()},
                    }
            steps.append(new)
        return {
            "weights": params["weights"][start:stop],
            "mix": params["mix"][start:stop],
            "ops": params["ops"][:, :, start:stop],
            "steps": steps,
        }
