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
    require_image,
    usable_params,
)
from ._plan import DEPTH_MODES, Plan, run_chains, sample_plan
from ._validation import check_bool, check_choice, check_float, check_generator, check_int
from .color import RandomSineColor
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

#: on the CPU, :meth:`PRIME.apply` runs a batch in chunks of at most this many bytes of images ...
CPU_CHUNK_BYTES = 3 << 20
#: ... and images of at least this many bytes one by one (224 x 224 x 3 float32 is 588 KiB)
CPU_SINGLE_BYTES = 512 << 10


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
    in one pass. The result stays in ``[0, 1]``. A call is :meth:`make_params` (``{"plan": Plan}``:
    every random choice, see :mod:`prime_augment._plan`) then :meth:`transform` (convert the input,
    :meth:`apply` the plan, convert back).

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
        if isinstance(names, Sequence) and not isinstance(names, str):  # (else __init__ says what is wrong)
            known = [isinstance(k, str) and k in PRIMITIVES for k in names]
            names = [PRIMITIVES[k](**prim_kw[k]) if ok else k for k, ok in zip(names, known, strict=True)]
        return cls(names, **mixer)

    # ------------------------------------------------------------------ drawing
    def sample_plan(
        self,
        batch_size: int,
        channels: int,
        height: int,
        width: int,
        *,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> Plan:
        """Draw the :class:`~prime_augment._plan.Plan` of ``batch_size`` images of the given size (every
        random choice of a call; replay it with :meth:`apply`)."""
        g = generator if generator is not None else self.generator
        _warn_if_generator_in_worker(g)
        return sample_plan(
            self.ops, batch_size, channels, height, width, chains=self.width, depth=self.depth,
            depth_mode=self.depth_mode, alpha=self.alpha, beta=self.beta,
            same_on_batch=self.same_on_batch, device=device, generator=g,
        )  # fmt: skip

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
        """``{"plan": Plan}`` for the images of a call, or ``{}`` (the identity: strength 0 or no pixels)."""
        if self.strength == 0.0:
            return {}
        b, c, h, w, device = batch_spec(flat_inputs)
        if c * h * w == 0:
            return {}
        with fast_mode(flat_inputs):
            return {"plan": self.sample_plan(b, c, h, w, device=device)}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not _inputs.is_image(inpt):
            return inpt
        if not params:  # the identity, as a new object
            return inpt.copy() if isinstance(inpt, PIL.Image.Image) else inpt.clone()
        batch = _inputs.to_batch(inpt)
        plan = usable_params(params, batch.data)["plan"].repeat(batch.frames)  # frames share a draw
        return batch.restore(self.apply(batch.data, plan, levels=batch.levels))

    # ------------------------------------------------------------------ pure steps
    def chains(self, x: torch.Tensor, plan: Plan, *, levels: torch.Tensor | None = None) -> torch.Tensor:
        """The ``n`` augmented chains of a float batch ``(B, C, H, W)``: ``(n, B, C, H, W)``
        (``levels``: the uint8 batch ``x = levels / 255`` was made from, if any; see
        :func:`~prime_augment._plan.run_chains`)."""
        return torch.stack(run_chains(x, _as_plan(plan), self.ops, levels))

    def mix(self, x: torch.Tensor, chains: torch.Tensor | Sequence[torch.Tensor], plan: Plan) -> torch.Tensor:
        """``(1 - p) x + p sum_i w_i chain_i``, clipped to ``[0, 1]`` against rounding (``chains``:
        ``(n, B, C, H, W)`` or ``n`` tensors ``(B, C, H, W)``)."""
        plan = _as_plan(plan)
        p = plan.mix.to(x.dtype)
        w = (plan.weights.to(x.dtype) * p[:, None]).T[..., None, None, None]  # (n, B, 1, 1, 1)
        out = x * (1.0 - p)[:, None, None, None]
        for i in range(len(chains)):  # n in-place passes, no (n, B, ...) temporary
            out.addcmul_(chains[i], w[i])
        return out.clamp_(0.0, 1.0)

    def apply(self, x: torch.Tensor, plan: Plan, *, levels: torch.Tensor | None = None) -> torch.Tensor:
        """PRIME of a float batch ``(B, C, H, W)`` under ``plan`` (see :meth:`sample_plan`); ``levels``:
        the uint8 batch ``x = levels / 255`` was made from, if any (see :meth:`chains`).

        The chains run in inference mode when no gradient is needed, the mix outside it (the result
        is a normal tensor). One rule for the CPU: a batch runs in chunks of at most
        :data:`CPU_CHUNK_BYTES` of images (one image at a time from :data:`CPU_SINGLE_BYTES`), so the
        chains' buffers stay small and are reused rather than mapped afresh (each fresh page costs a
        fault: a collated batch of 32 ImageNet-size images runs about 1.6x faster this way). Each
        image's computation is its own, so the result is that of the whole batch at once.
        """
        plan = _as_plan(plan)
        if plan is None:
            return x.clone()
        b = x.shape[0]
        chunk = self._cpu_chunk(x)
        if chunk >= b:
            return self._apply(x, plan, levels)
        out = torch.empty_like(x)
        for lo in range(0, b, chunk):
            hi = min(b, lo + chunk)
            out[lo:hi] = self._apply(x[lo:hi], plan.slice(lo, hi), None if levels is None else levels[lo:hi])
        return out

    def _apply(self, x: torch.Tensor, plan: Plan, levels: torch.Tensor | None) -> torch.Tensor:
        with fast_mode([x]):
            chains = run_chains(x, plan, self.ops, levels)
        return self.mix(x, chains, plan)

    @staticmethod
    def _cpu_chunk(x: torch.Tensor) -> int:
        """Images per chunk of :meth:`apply`: the whole batch off the CPU, under autograd or compiled."""
        if x.device.type != "cpu" or needs_grad([x]) or torch.compiler.is_compiling():
            return max(1, x.shape[0])
        per_image = max(1, x[0].numel() * x.element_size()) if x.shape[0] else 1
        return 1 if per_image >= CPU_SINGLE_BYTES else max(1, CPU_CHUNK_BYTES // per_image)

    @staticmethod
    def slice_plan(params: Plan | dict[str, Any], start: int, stop: int) -> Any:
        """The plan (or ``make_params`` dict) of images ``start..stop - 1`` (see :meth:`Plan.slice`).

        Example:
            >>> import torch
            >>> prime = PRIME(generator=torch.Generator().manual_seed(0))
            >>> x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
            >>> params = prime.make_params([x])
            >>> y = prime.transform(x, params)
            >>> torch.allclose(prime.transform(x[1:3], prime.slice_plan(params, 1, 3)), y[1:3], atol=1e-5)
            True
        """
        if isinstance(params, Plan):
            return params.slice(start, stop)
        return {"plan": params["plan"].slice(start, stop)} if params else {}


def _as_plan(plan: Plan | dict[str, Any] | None) -> Plan | None:
    """A :class:`Plan` from a plan or a ``make_params`` dict (``None`` for the identity's ``{}``)."""
    if isinstance(plan, Plan) or plan is None:
        return plan
    if isinstance(plan, dict):
        return plan.get("plan")
    raise TypeError(f"plan must be a Plan or the dict make_params returns, got {type(plan).__name__}")
