"""DeepFool, SparseFool and the vectorised LinearSolver: closed forms on affine classifiers,
the solver against a plain loop, boxes, both sides of the hyperplane, batching, modes, errors."""

from __future__ import annotations

import pytest
import torch
from analysis_fixtures import one_thread  # noqa: F401  (autouse)
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from prime_augment.analysis import (
    deepfool,
    linear_solver,
    perturbation_norms,
    sparsefool,
    summarize_attack,
)

SHAPE = (3, 4, 4)
D = 48


def affine(weight: torch.Tensor, bias: torch.Tensor) -> nn.Module:
    """``f(x) = W vec(x) + b`` on images of SHAPE, in float64."""
    lin = nn.Linear(weight.shape[1], weight.shape[0]).double()
    with torch.no_grad():
        lin.weight.copy_(weight)
        lin.bias.copy_(bias)
    return nn.Sequential(nn.Flatten(), lin)


def random_affine(k: int, seed: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(k, D, generator=g, dtype=torch.float64)
    b = torch.randn(k, generator=g, dtype=torch.float64)
    return affine(w, b), w, b


def rand(b: int, seed: int) -> torch.Tensor:
    return torch.rand(b, *SHAPE, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def closed_form_distance(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, classes=None) -> torch.Tensor:
    r"""min_l |f_k - f_l| / ||w_k - w_l|| over the candidate classes l (all by default)."""
    f = x.flatten(1) @ w.T + b
    k = f.argmax(1)
    out = []
    for i in range(len(x)):
        ls = range(w.shape[0]) if classes is None else classes[i]
        d = [(f[i, k[i]] - f[i, l]).abs() / (w[k[i]] - w[l]).norm() for l in ls if l != k[i]]
        out.append(torch.stack(d).min())
    return torch.stack(out)


# ----------------------------------------------------------------------------- DeepFool


@given(seed=st.integers(0, 10_000), k=st.integers(2, 7))
def test_deepfool_affine_closed_form(seed, k):
    model, w, b = random_affine(k, seed)
    x = rand(5, seed)
    res = deepfool(model, x, candidates=k, bounds=None)
    torch.testing.assert_close(res.distance, closed_form_distance(w, b, x), rtol=1e-9, atol=1e-12)
    assert res.success.all() and (res.iterations == 1).all()
    # the boundary point is on the hyperplane f_k = f_l of the class aimed at
    fb = model(res.boundary)
    rows = torch.arange(5)
    torch.testing.assert_close(fb[rows, res.label], fb[rows, res.boundary_label], rtol=0, atol=1e-9)
    torch.testing.assert_close(res.adversarial, x + 1.02 * (res.boundary - x))
    assert (res.adversarial_label != res.label).all()


def test_deepfool_candidates_restrict_classes():
    model, w, b = random_affine(8, 3)
    x = rand(6, 4)
    top = (x.flatten(1) @ w.T + b).topk(3, dim=1).indices
    res = deepfool(model, x, candidates=3, bounds=None)
    torch.testing.assert_close(res.distance, closed_form_distance(w, b, x, top.tolist()), rtol=1e-9, atol=0)


def test_deepfool_targeted_reaches_target():
    model, _, _ = random_affine(5, 11)
    x = rand(6, 12)
    pred = model(x).argmax(1)
    target = (pred + 2) % 5
    res = deepfool(model, x, target=target, bounds=None, max_iter=100)
    assert res.success.all()
    assert torch.equal(res.adversarial_label, target)


def test_deepfool_box_held_and_single_image():
    model, _, _ = random_affine(4, 5)
    x = rand(4, 6)
    res = deepfool(model, x)  # default bounds (0, 1)
    assert res.adversarial.min() >= 0 and res.adversarial.max() <= 1
    one = deepfool(model, x[2])
    assert one.adversarial.shape == SHAPE and one.success.ndim == 0
    torch.testing.assert_close(one.adversarial, res.adversarial[2])


def test_deepfool_labels_already_wrong_is_zero_perturbation():
    model, _, _ = random_affine(3, 7)
    x = rand(3, 8)
    wrong = (model(x).argmax(1) + 1) % 3
    res = deepfool(model, x, labels=wrong)
    assert res.success.all() and (res.iterations == 0).all()
    assert torch.equal(res.adversarial, x)


@given(seed=st.integers(0, 10_000))
def test_deepfool_batched_equals_one_image(seed):
    torch.manual_seed(seed)
    model = tiny_cnn(seed)
    x = rand(4, seed).float()
    res = deepfool(model, x, max_iter=20, bounds=None)
    for i in range(4):
        one = deepfool(model, x[i : i + 1], max_iter=20, bounds=None)
        torch.testing.assert_close(one.adversarial[0], res.adversarial[i], rtol=1e-4, atol=1e-5)
        assert one.iterations[0] == res.iterations[i]


def tiny_cnn(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 4, 5),
    )


# ----------------------------------------------------------------------------- LinearSolver


def plain_linear_solver(x, w, xb, lo, hi, margin=0.0):
    """A plain transcription of the LinearSolver: one image, one coordinate per step, either side."""
    z = x.clone()
    side = 1.0 if float(w @ (x - xb)) > 0 else -1.0
    forbidden: set[int] = set()
    while side * float(w @ (z - xb)) > 0:  # not yet on or across the plane
        allowed = [d for d in range(len(w)) if d not in forbidden and w[d] != 0]
        if not allowed:
            break
        d = max(allowed, key=lambda j: (abs(float(w[j])), -j))  # largest |w_d|, lowest index on ties
        g = float(w @ (z - xb))
        step = (abs(g) + margin) / abs(float(w[d]))
        z[d] = min(max(float(z[d]) - side * float(torch.sign(w[d])) * step, float(lo[d])), float(hi[d]))
        forbidden.add(d)
    return z


@given(
    seed=st.integers(0, 100_000),
    n=st.integers(1, 40),
    margin=st.sampled_from([0.0, 1e-3, 0.1]),
    offset=st.floats(-3, 3),
)
def test_linear_solver_matches_plain_loop(seed, n, margin, offset):
    g = torch.Generator().manual_seed(seed)
    b = 3
    x = torch.rand(b, n, generator=g, dtype=torch.float64)
    w = torch.randn(b, n, generator=g, dtype=torch.float64)
    w[:, : n // 4] = 0.0  # some coordinates the plane does not depend on
    xb = x + offset * torch.randn(b, n, generator=g, dtype=torch.float64)
    lo = torch.zeros(b, n, dtype=torch.float64)
    hi = torch.ones(b, n, dtype=torch.float64)
    out = linear_solver(x, w, xb, lo, hi, margin=margin)
    for i in range(b):
        ref = plain_linear_solver(x[i], w[i], xb[i], lo[i], hi[i], margin)
        torch.testing.assert_close(out[i], ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("side", [1.0, -1.0])
def test_linear_solver_crosses_from_both_sides(side):
    g = torch.Generator().manual_seed(0)
    x = torch.full((4, 30), 0.5, dtype=torch.float64)
    w = torch.randn(4, 30, generator=g, dtype=torch.float64)
    # plane at signed distance 0.3 * side * ||w||^2 / ||w||: start on the chosen side
    xb = x - side * 0.3 * w / w.norm(dim=1, keepdim=True) ** 2
    g0 = (w * (x - xb)).sum(1)
    assert (torch.sign(g0) == side).all()
    out = linear_solver(x, w, xb, 0.0, 1.0, margin=1e-3)
    g1 = (w * (out - xb)).sum(1)
    torch.testing.assert_close(g1, torch.full_like(g1, -side * 1e-3), rtol=0, atol=1e-12)
    assert ((out - x) != 0).sum(1).max() < 30  # sparse: not every coordinate moved


def test_published_direction_fails_from_the_positive_side():
    """The published step (always along +sign(w)) moves away from the plane when g0 > 0."""
    x = torch.full((1, 5), 0.5, dtype=torch.float64)
    w = torch.tensor([[1.0, 0.5, 0.2, 0.1, 0.05]], dtype=torch.float64)
    xb = x - 0.2 * w  # g0 = 0.2 ||w||^2 > 0
    published = (x + 0.5 * torch.sign(w)).clamp(0, 1)  # any +sign(w) step increases w.(x - xb)
    assert float((w * (published - xb)).sum()) > float((w * (x - xb)).sum())
    ours = linear_solver(x, w, xb, 0.0, 1.0)
    assert abs(float((w * (ours - xb)).sum())) < 1e-12


@given(seed=st.integers(0, 100_000))
def test_linear_solver_box_held(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(4, 25, generator=g, dtype=torch.float64)
    lo = (x - 0.1).clamp_min(0)
    hi = (x + 0.1).clamp_max(1)
    w = torch.randn(4, 25, generator=g, dtype=torch.float64)
    xb = x + 2 * torch.randn(4, 25, generator=g, dtype=torch.float64)
    x_before = x.clone()
    out = linear_solver(x, w, xb, lo, hi, margin=1e-3)
    assert (out >= lo).all() and (out <= hi).all()
    assert torch.equal(x, x_before)
    # when the box cannot reach the plane, every usable coordinate is at its bound
    g0 = (w * (x - xb)).sum(1)
    g1 = (w * (out - xb)).sum(1)
    short = torch.sign(g1) == torch.sign(g0)
    at_bound = (out == lo) | (out == hi) | (w == 0)
    assert at_bound[short].all()


def test_linear_solver_errors():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="same shape"):
        linear_solver(x, torch.zeros(2, 4), x, 0.0, 1.0)
    with pytest.raises(ValueError, match="margin"):
        linear_solver(x, x, x, 0.0, 1.0, margin=-1.0)
    with pytest.raises(TypeError, match="x, normal and point"):
        linear_solver(x.numpy(), x, x, 0.0, 1.0)


# ----------------------------------------------------------------------------- SparseFool


@pytest.mark.parametrize("seed", [0, 1])
def test_sparsefool_fools_affine_from_both_sides(seed):
    """A binary affine classifier: images on both sides of its hyperplane are all fooled."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(1, D, generator=g, dtype=torch.float64)
    c = 0.5 * float(w.sum())  # the hyperplane w.x = c runs through the centre of the box
    model = affine(torch.cat([w, -w]), torch.tensor([-c, c], dtype=torch.float64))
    x = rand(16, seed + 10)
    pred = model(x).argmax(1)
    assert 0 < pred.sum() < 16, "the sample must hold images of both classes"
    res = sparsefool(model, x)
    assert res.success.all()
    assert torch.equal(res.adversarial_label, 1 - pred)
    assert res.adversarial.min() >= 0 and res.adversarial.max() <= 1
    l0 = perturbation_norms(res.perturbation.float())["l0"]
    assert l0.max() < D  # never dense
    # only coordinates among the largest |w| move (the solver's order)
    order = w[0].abs().argsort(descending=True)
    for i in range(16):
        moved = (res.perturbation[i].flatten() != 0).nonzero().flatten()
        assert set(moved.tolist()) <= set(order[: int(l0[i])].tolist())


def test_sparsefool_multiclass_and_delta_box():
    model, _, _ = random_affine(6, 21)
    x = rand(10, 22)
    res = sparsefool(model, x, delta=0.5)
    assert res.success.float().mean() >= 0.9
    assert res.perturbation.abs().max() <= 0.5 + 1e-12
    assert (res.adversarial >= 0).all() and (res.adversarial <= 1).all()
    ok = res.success
    assert (res.adversarial_label[ok] != res.label[ok]).all()
    torch.testing.assert_close(model(res.adversarial).argmax(1), res.adversarial_label, rtol=0, atol=0)


def test_sparsefool_targeted():
    model, _, _ = random_affine(5, 31)
    x = rand(8, 32)
    target = (model(x).argmax(1) + 1) % 5
    res = sparsefool(model, x, target=target, max_iter=50)
    assert res.success.float().mean() >= 0.75
    assert torch.equal(res.adversarial_label[res.success], target[res.success])


def test_sparsefool_batched_equals_one_image():
    model = tiny_cnn(3)
    x = rand(5, 33).float()
    res = sparsefool(model, x, max_iter=10)
    for i in range(5):
        one = sparsefool(model, x[i], max_iter=10)
        torch.testing.assert_close(one.adversarial, res.adversarial[i], rtol=1e-4, atol=1e-5)
        assert bool(one.success) == bool(res.success[i])


def test_sparsefool_nonlinear_fools_sparsely():
    model = tiny_cnn(4)
    x = torch.rand(12, 3, 16, 16, generator=torch.Generator().manual_seed(34))
    res = sparsefool(model, x)
    s = summarize_attack(res.perturbation, res.success)
    dense = summarize_attack(deepfool(model, x).perturbation, res.success)
    assert s["fooling_rate"] >= 90
    assert dense["median_pixels_pct"] > 90  # DeepFool's l2 perturbations touch every pixel
    assert s["median_pixels_pct"] < dense["median_pixels_pct"] / 3


# ----------------------------------------------------------------------------- shared contract


class ModeProbe(nn.Module):
    """Records the mode it ran in."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[bool] = []

    def forward(self, x):
        self.seen.append(self.training)
        return x


@pytest.mark.parametrize("attack", ["deepfool", "sparsefool", "margin"])
def test_modes_restored_and_input_untouched(attack):
    from prime_augment.analysis import DCTSubspace, subspace_margin

    probe = ModeProbe()
    model = nn.Sequential(probe, tiny_cnn(0))
    model.train()
    model[1][1].eval()  # a mixed state must come back as it was
    modes = [m.training for m in model.modules()]
    x = rand(3, 40).float()
    before = x.clone()
    fn = {
        "deepfool": lambda: deepfool(model, x, max_iter=3),
        "sparsefool": lambda: sparsefool(model, x, max_iter=2),
        "margin": lambda: subspace_margin(model, x, DCTSubspace((0, 2), (0, 2)), max_iter=3),
    }[attack]
    fn()
    assert [m.training for m in model.modules()] == modes
    assert probe.seen and not any(probe.seen)  # ran in eval mode
    assert torch.equal(x, before)


def test_argument_errors_name_the_argument():
    model, _, _ = random_affine(3, 0)
    x = rand(2, 0)
    with pytest.raises(TypeError, match="images"):
        deepfool(model, (x * 255).to(torch.uint8))
    with pytest.raises(TypeError, match="images"):
        sparsefool(model, x.numpy())
    with pytest.raises(ValueError, match="images"):
        deepfool(model, x.flatten(1))
    with pytest.raises(ValueError, match="valid input range"):
        sparsefool(model, x + 2)
    with pytest.raises(ValueError, match="candidates"):
        deepfool(model, x, candidates=1)
    with pytest.raises(ValueError, match="overshoot"):
        deepfool(model, x, overshoot=-0.1)
    with pytest.raises(ValueError, match="lam"):
        sparsefool(model, x, lam=0.5)
    with pytest.raises(ValueError, match="delta"):
        sparsefool(model, x, delta=0.0)
    with pytest.raises(ValueError, match="bounds"):
        deepfool(model, x, bounds=(1.0, 0.0))
    with pytest.raises(TypeError, match="bounds"):
        sparsefool(model, x, bounds=None)
    with pytest.raises(ValueError, match="labels"):
        deepfool(model, x, labels=torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="target"):
        sparsefool(model, x, target=torch.tensor([0, 7]))
    with pytest.raises(TypeError, match="model"):
        deepfool("resnet", x)
    with pytest.raises(ValueError, match="logits"):
        deepfool(lambda z: z.sum(), x)


def test_empty_batch():
    model, _, _ = random_affine(3, 0)
    x = rand(0, 0)
    assert deepfool(model, x).adversarial.shape == (0, *SHAPE)
    assert sparsefool(model, x).success.shape == (0,)


@pytest.mark.cuda
def test_cuda_matches_cpu():
    model = tiny_cnn(1)
    x = rand(4, 41).float()
    cpu = sparsefool(model, x, max_iter=5)
    gpu = sparsefool(model.cuda(), x.cuda(), max_iter=5)
    assert torch.equal(cpu.success, gpu.success.cpu())
    torch.testing.assert_close(cpu.adversarial, gpu.adversarial.cpu(), rtol=1e-3, atol=1e-3)
