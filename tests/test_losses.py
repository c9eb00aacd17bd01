"""The JSD consistency loss and its view helpers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from prime_augment import PRIME, JSDLoss, JSDParts, JSDViews, jsd_loss, jsd_views


def reference_jsd(logits, target, num_splits=3, weight=12.0, label_smoothing=0.0):
    """An independent transcription in float64, image by image."""
    n = logits.shape[0] // num_splits
    z = logits.double()
    ce = F.cross_entropy(z[:n], target[:n], label_smoothing=label_smoothing)
    total = 0.0
    for b in range(n):
        ps = [torch.softmax(z[i * n + b], 0) for i in range(num_splits)]
        m = torch.clamp(sum(ps) / num_splits, 1e-7, 1)
        total = total + sum((p * (p.log() - m.log())).sum() for p in ps) / num_splits
    return ce + weight * total / n, ce, total / n


@given(seed=st.integers(0, 10_000), s=st.integers(2, 4), b=st.integers(1, 6), k=st.integers(2, 8),
       ls=st.sampled_from([0.0, 0.1]), scale=st.floats(0.1, 20))
def test_against_independent_transcription(seed, s, b, k, ls, scale):
    g = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(s * b, k, generator=g, dtype=torch.float64)
    target = torch.randint(0, k, (b,), generator=g)
    parts = jsd_loss(logits, target, num_splits=s, weight=12.0, label_smoothing=ls, return_parts=True)
    want, ce, cons = reference_jsd(logits, target, s, 12.0, ls)
    torch.testing.assert_close(parts.loss.double(), want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(parts.cross_entropy.double(), ce, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(parts.consistency.double(), cons, atol=1e-5, rtol=1e-5)


@given(seed=st.integers(0, 10_000), b=st.integers(1, 8))
def test_identical_views_have_zero_consistency(seed, b):
    z = torch.randn(b, 10, generator=torch.Generator().manual_seed(seed))
    y = torch.zeros(b, dtype=torch.long)
    parts = jsd_loss(z.repeat(3, 1), y, return_parts=True)
    assert abs(float(parts.consistency)) < 1e-6
    torch.testing.assert_close(parts.loss, F.cross_entropy(z, y), atol=1e-5, rtol=0)


def test_consistency_is_positive_for_different_views():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(12, 5, generator=g)
    assert float(jsd_loss(z, torch.zeros(4, dtype=torch.long), return_parts=True).consistency) > 0.01


def test_gradcheck():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(6, 4, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([1, 3])

    assert torch.autograd.gradcheck(lambda z: jsd_loss(z, y, label_smoothing=0.1), (z,))
    loss = jsd_loss(z, y)
    loss.backward()
    z2 = z.detach().clone().requires_grad_(True)
    reference_jsd(z2, y)[0].backward()
    torch.testing.assert_close(z.grad, z2.grad, atol=1e-5, rtol=1e-4)


def test_module_and_parts_and_full_target():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(9, 4, generator=g)
    y = torch.tensor([0, 1, 2])
    assert torch.allclose(JSDLoss()(z, y), jsd_loss(z, y))
    assert torch.allclose(JSDLoss()(z, y.repeat(3)), jsd_loss(z, y))  # a full-length target works too
    parts = JSDLoss(return_parts=True, weight=2.0)(z, y)
    assert isinstance(parts, JSDParts)
    torch.testing.assert_close(parts.loss, parts.cross_entropy + 2.0 * parts.consistency)
    assert "weight=2.0" in repr(JSDLoss(weight=2.0))


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: jsd_loss(torch.randn(7, 3), torch.zeros(2, dtype=torch.long)), "does not split"),
        (lambda: jsd_loss(torch.randn(6, 3), torch.zeros(5, dtype=torch.long)), "target"),
        (lambda: jsd_loss(torch.randn(6), torch.zeros(2, dtype=torch.long)), "logits"),
        (lambda: jsd_loss(torch.randn(6, 3), torch.zeros(2, dtype=torch.long), num_splits=1), "num_splits"),
        (lambda: jsd_loss(torch.randn(6, 3), torch.zeros(2, dtype=torch.long), weight=-1), "weight"),
    ],
)
def test_bad_arguments(call, words):
    with pytest.raises(ValueError, match=words):
        call()


def test_views_helpers():
    x = torch.rand(4, 3, 16, 16)
    torch.manual_seed(0)
    stacked = jsd_views(PRIME(), x)
    assert stacked.shape == (12, 3, 16, 16) and torch.equal(stacked[:4], x)
    assert not torch.equal(stacked[4:8], stacked[8:])
    clean, a1, a2 = JSDViews(PRIME())(x[0])
    assert torch.equal(clean, x[0]) and a1.shape == x[0].shape and not torch.equal(a1, a2)
    with pytest.raises(TypeError, match="callable"):
        JSDViews(3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("gap", [110.0, 1e4, 3e4])
def test_finite_gradient_when_a_probability_underflows(dtype, gap):
    # a logit gap above ~100 makes softmax probabilities exactly 0 in float32: differentiating p log p
    # there gave NaN gradients under a finite loss (timm's JsdCrossEntropy has that hazard)
    z = torch.zeros(6, 10)
    z[:, 0] = gap
    z[4, 3] = -gap  # the views disagree on one image
    z = z.to(dtype).requires_grad_()
    loss = jsd_loss(z, torch.tensor([0, 1]), label_smoothing=0.1)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(z.grad).all()


def test_equals_the_probability_space_formula_where_that_is_finite():
    # the log-space terms are the same loss as timm's formula (softmax, log of the clamped mixture)
    g = torch.Generator().manual_seed(3)
    z = (8 * torch.randn(3 * 16, 10, generator=g)).requires_grad_()
    y = torch.randint(0, 10, (16,), generator=g)
    views = z.split(16)
    probs = [F.softmax(v, 1) for v in views]
    log_m = torch.clamp(torch.stack(probs).mean(0), 1e-7, 1).log()
    kl = sum(F.kl_div(log_m, p, reduction="batchmean") for p in probs) / 3
    want = F.cross_entropy(views[0], y) + 12 * kl
    (g_want,) = torch.autograd.grad(want, z)
    got = jsd_loss(z, y)
    (g_got,) = torch.autograd.grad(got, z)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(g_got, g_want, atol=1e-5, rtol=1e-4)


def test_timm_keywords_construct_our_loss():
    loss = JSDLoss(num_splits=3, alpha=12, smoothing=0.1)
    assert (loss.weight, loss.label_smoothing) == (12.0, 0.1)
    assert JSDLoss().label_smoothing == 0.0  # timm's default is 0.1, ours the method's 0
    with pytest.raises(TypeError, match="alpha"):
        JSDLoss(weight=1.0, alpha=2.0)
    with pytest.raises(TypeError, match="smoothing"):
        JSDLoss(label_smoothing=0.1, smoothing=0.2)
    with pytest.raises(ValueError, match="weight"):
        JSDLoss(alpha=-1)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_equals_timm_jsd_cross_entropy(smoothing):
    timm_loss = pytest.importorskip("timm.loss")
    g = torch.Generator().manual_seed(1)
    z = 3 * torch.randn(3 * 8, 10, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (8,), generator=g)
    theirs = timm_loss.JsdCrossEntropy(num_splits=3, alpha=12, smoothing=smoothing)
    ours = JSDLoss(num_splits=3, alpha=12, smoothing=smoothing)
    torch.testing.assert_close(ours(z, y), theirs(z, y), atol=1e-10, rtol=1e-10)
