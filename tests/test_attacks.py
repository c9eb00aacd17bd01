"""PGD (prime_augment.attacks): the ball and the box, ascent, the exact optimum of a linear model,
reproducible random starts, batched == per image, untouched inputs/model, BN modes, autocast, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from prime_augment.attacks import default_step_size, pgd, project


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Linear(24, 4),
    )  # fmt: skip
    net.train()
    with torch.no_grad():
        for _ in range(3):  # non-trivial running statistics
            net(torch.rand(8, 3, 8, 8))
    return net.eval()


def _data(b: int = 6, seed: int = 1, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, 8, 8, generator=g, dtype=dtype), torch.randint(0, 4, (b,), generator=g)


def _dist(adv: torch.Tensor, x: torch.Tensor, norm: str) -> torch.Tensor:
    d = (adv - x).flatten(1)
    return d.abs().amax(1) if norm == "linf" else d.norm(dim=1)


@pytest.mark.parametrize("norm, eps", [("linf", 8 / 255), ("l2", 0.5)])
def test_ball_box_and_loss_ascent(norm, eps):
    net, (x, y) = _net(), _data()
    x0 = x.clone()
    adv = pgd(net, x, y, norm=norm, eps=eps, steps=10, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, x0)  # the input is not modified
    assert adv.shape == x.shape and adv.dtype == x.dtype and not adv.requires_grad
    assert (_dist(adv, x, norm) <= eps * (1 + 1e-5)).all()
    assert adv.min() >= 0 and adv.max() <= 1
    with torch.no_grad():
        clean = F.cross_entropy(net(x), y, reduction="none")
        attacked = F.cross_entropy(net(adv), y, reduction="none")
    assert (attacked > clean).all()
    # the box binds: saturated pixels are not pushed out of [0, 1]
    sat = torch.where(torch.arange(x.numel()).view_as(x) % 2 == 0, torch.ones_like(x), torch.zeros_like(x))
    adv2 = pgd(net, sat, y, norm=norm, eps=eps, steps=3, random_start=True)
    assert adv2.min() >= 0 and adv2.max() <= 1 and (_dist(adv2, sat, norm) <= eps * (1 + 1e-5)).all()


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_exact_optimum_of_a_linear_two_class_model(norm):
    # cross-entropy of a 2-class linear model rises along g = w_other - w_true: one step of size eps from
    # x reaches the maximiser over the ball (x = 0.5 keeps the box slack)
    torch.manual_seed(3)
    lin = nn.Sequential(nn.Flatten(), nn.Linear(12, 2))
    x = torch.full((2, 3, 2, 2), 0.5, dtype=torch.float64)
    lin = lin.double()
    y = torch.tensor([0, 1])
    eps = 0.05
    adv = pgd(lin, x, y, norm=norm, eps=eps, step_size=eps, steps=1, random_start=False)
    w = lin[1].weight.detach()
    g = torch.stack([w[1] - w[0], w[0] - w[1]]).view_as(x)
    expect = x + eps * (g.sign() if norm == "linf" else g / g.flatten(1).norm(dim=1).view(-1, 1, 1, 1))
    assert torch.allclose(adv, expect, atol=1e-12)
    more = pgd(lin, x, y, norm=norm, eps=eps, steps=5, random_start=False)  # more steps stay there
    assert torch.allclose(more, expect, atol=1e-9)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_random_start_is_reproducible_and_inside_the_ball(norm):
    net, (x, y) = _net(), _data()
    eps = 0.1

    def run(seed, steps=3):
        return pgd(net, x, y, norm=norm, eps=eps, steps=steps, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(run(5), run(5))
    assert not torch.equal(run(5), run(6))
    start = run(7, steps=0)  # steps=0: the random start itself
    d = _dist(start, x, norm)
    assert (d <= eps * (1 + 1e-5)).all() and (d > 0).all()
    torch.manual_seed(0)
    a = pgd(net, x, y, norm=norm, eps=eps, steps=2)
    torch.manual_seed(0)
    assert torch.equal(a, pgd(net, x, y, norm=norm, eps=eps, steps=2))  # generator=None: the global RNG


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_batched_equals_per_image(norm):
    net, (x, y) = _net().double(), _data(5, dtype=torch.float64)
    kw = {"norm": norm, "eps": 0.2, "steps": 4, "random_start": False}
    batch = pgd(net, x, y, **kw)
    single = torch.cat([pgd(net, x[i : i + 1], y[i : i + 1], **kw) for i in range(len(x))])
    assert torch.allclose(batch, single, atol=1e-10)


def test_model_modes_and_state_are_restored():
    net, (x, y) = _net(), _data(8)
    net.train()
    net[1].eval()  # a mixed-mode model: every module's own mode comes back
    bn = net[1]
    stats = [bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone()]
    params = [p.clone() for p in net.parameters()]
    kw = {"norm": "linf", "eps": 0.1, "steps": 3, "random_start": False}
    for mode in ("eval", "train"):
        pgd(net, x, y, model_mode=mode, **kw)
        assert net.training and not net[1].training and net[0].training
    net.eval()
    pgd(net, x, y, model_mode="train", **kw)
    assert not net.training
    assert torch.equal(bn.running_mean, stats[0]) and torch.equal(bn.running_var, stats[1])
    assert torch.equal(bn.num_batches_tracked, stats[2])  # the train-mode attack updates nothing
    assert all(torch.equal(a, b) for a, b in zip(params, net.parameters(), strict=True))
    assert all(p.grad is None for p in net.parameters())  # gradients w.r.t. the images only
    # train mode normalises with the batch's statistics: another attack than eval mode
    assert not torch.equal(pgd(net, x, y, model_mode="train", **kw), pgd(net, x, y, model_mode="eval", **kw))


def test_under_autocast_and_without_grad():
    net, (x, y) = _net(), _data()
    eps = 8 / 255
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        adv = pgd(net, x, y, norm="linf", eps=eps, steps=3, generator=torch.Generator().manual_seed(0))
    assert adv.dtype == torch.float32 and (_dist(adv, x, "linf") <= eps * (1 + 1e-5)).all()
    with torch.no_grad():
        assert F.cross_entropy(net(adv), y) > F.cross_entropy(net(x), y)


def test_trivial_cases_and_helpers():
    net, (x, y) = _net(), _data(3)
    assert torch.equal(pgd(net, x, y, eps=0.0), x)
    assert torch.equal(pgd(net, x, y, eps=0.1, steps=0, random_start=False), x)
    assert pgd(net, x[:0], y[:0], eps=0.1).shape == (0, 3, 8, 8)
    assert default_step_size(0.1, 4) == pytest.approx(0.0625)
    d = project(torch.full((1, 3, 2, 2), 0.3), torch.full((1, 3, 2, 2), 0.8), "linf", 0.1)
    assert torch.allclose(d, torch.full_like(d, 0.1))


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({"norm": "l1"}, ValueError, "norm must be one of"),
        ({"eps": -0.1}, ValueError, "eps must be >= 0"),
        ({"steps": -1}, ValueError, "steps must be >= 0"),
        ({"step_size": float("nan")}, ValueError, "step_size must be finite"),
        ({"model_mode": "frozen"}, ValueError, "model_mode must be one of"),
        ({"random_start": 1}, TypeError, "random_start must be a bool"),
        ({"generator": 3}, TypeError, "generator must be a torch.Generator"),
    ],
)
def test_argument_errors(kwargs, err, match):
    net, (x, y) = _net(), _data(2)
    with pytest.raises(err, match=match):
        pgd(net, x, y, **{"eps": 0.1, **kwargs})


def test_input_errors():
    net, (x, y) = _net(), _data(2)
    with pytest.raises(ValueError, match=r"images in \[0, 1\]"):
        pgd(net, x * 255, y, eps=0.1)
    with pytest.raises(TypeError, match="floating-point"):
        pgd(net, (x * 255).to(torch.uint8), y, eps=0.1)
    with pytest.raises(ValueError, match="2 labels"):
        pgd(net, x, y[:1], eps=0.1)
    with pytest.raises(ValueError, match="2 labels"):
        pgd(net, x, y.float(), eps=0.1)


def test_modes_and_running_statistics_restored_when_the_model_raises():
    net, (x, y) = _net(), _data(4)
    bn = net[1]
    stats = [bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone()]
    calls = []

    class Flaky(nn.Module):  # a train-mode forward that updates the statistics, then a failure
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, z):
            calls.append(1)
            out = self.net(z)
            if len(calls) == 2:
                raise RuntimeError("boom")
            return out

    model = Flaky().eval()
    with pytest.raises(RuntimeError, match="boom"):
        pgd(model, x, y, eps=0.1, steps=3, random_start=False, model_mode="train")
    assert len(calls) == 2 and not any(m.training for m in model.modules())
    assert torch.equal(bn.running_mean, stats[0]) and torch.equal(bn.running_var, stats[1])
    assert torch.equal(bn.num_batches_tracked, stats[2])
