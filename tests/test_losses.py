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
