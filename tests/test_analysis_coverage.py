"""Coverage (Eq. 5.8), embeddings, PCA, the built-in corruptions, metrics, and the extra's import."""

from __future__ import annotations

import importlib
import sys

import pytest
import torch
from analysis_fixtures import one_thread  # noqa: F401  (autouse)
from torch import nn

from prime_augment.analysis import (
    PenultimateFeatures,
    augmentation_embeddings,
    builtin_corruptions,
    cosine_distances,
    coverage,
    embedding_pca,
    perturbation_norms,
    summarize_attack,
    torch_corruptions,
)


def rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


class CyclingAugment:
    """Deterministic 'random' augmentation: the t-th call of every T applies the t-th op."""

    def __init__(self, ops):
        self.ops, self.calls = ops, 0

    def __call__(self, x):
        op = self.ops[self.calls % len(self.ops)]
        self.calls += 1
        return op(x)


def embed(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x.mean((2, 3)), x.std((2, 3)), x[:, :, ::2, ::2].flatten(1)], 1)


OPS = [lambda x: x.flip(-1), lambda x: x * 0.7, lambda x: x.roll(1, -2), lambda x: 1 - x]
CORRUPTIONS = {"dark": lambda x: x * 0.5, "noise": lambda x: (x + 0.1 * torch.sin(30 * x)).clamp(0, 1)}


def brute_force(images, ops, corruptions):
    n = len(images)
    out = torch.zeros(len(corruptions), n)
    for m, c in enumerate(corruptions.values()):
        for i in range(n):
            xi = images[i : i + 1]
            ec = embed(c(xi))[0]
            ds = [1 - torch.dot(embed(op(xi))[0], ec) / (embed(op(xi))[0].norm() * ec.norm()) for op in ops]
            out[m, i] = torch.stack(ds).min()
    return out


@pytest.mark.parametrize("batch_size", [1, 3, 100])
def test_coverage_equals_the_definition(batch_size):
    x = rand(7, 3, 8, 8, seed=1)
    res = coverage(embed, x, CyclingAugment(OPS), CORRUPTIONS, num_samples=len(OPS), batch_size=batch_size)
    ref = brute_force(x, OPS, CORRUPTIONS)
    torch.testing.assert_close(res.min_distances, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(res.per_corruption, ref.mean(1), rtol=1e-5, atol=1e-6)
    assert res.coverage == pytest.approx(float(ref.mean()), abs=1e-6)
    assert res.names == ["dark", "noise"]


def test_coverage_zero_when_an_augmented_sample_is_the_corruption_and_tensors_accepted():
    x = rand(5, 3, 8, 8, seed=2)
    corrupted_u8 = (x * 0.5 * 255).round().to(torch.uint8)
    aug = CyclingAugment([lambda z: z.roll(2, -1), lambda z: (z * 0.5 * 255).round() / 255])
    res = coverage(embed, x, aug, {"dark": corrupted_u8}, num_samples=2)
    assert res.coverage == pytest.approx(0.0, abs=1e-6)
    # more samples can only lower (or keep) the minimum distance
    few = coverage(embed, x, CyclingAugment(OPS[:1]), CORRUPTIONS, num_samples=1).min_distances
    many = coverage(embed, x, CyclingAugment(OPS), CORRUPTIONS, num_samples=4).min_distances
    assert (many <= few + 1e-6).all()


def test_coverage_input_untouched_and_mode_restored():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 36, 3)).train()
    emb = PenultimateFeatures(net)
    x = rand(4, 3, 8, 8, seed=3)
    before = x.clone()
    res = coverage(emb, x, lambda z: z.flip(-1), {"dark": lambda z: z * 0.5}, num_samples=2)
    assert torch.equal(x, before) and net.training and emb.training
    assert res.min_distances.shape == (1, 4)
    assert not net[-1]._forward_hooks  # the capture hook is removed


def test_coverage_errors():
    x = rand(2, 3, 4, 4)
    with pytest.raises(TypeError, match="corruptions"):
        coverage(embed, x, lambda z: z, {})
    with pytest.raises(ValueError, match="corruptions\\['a'\\]"):
        coverage(embed, x, lambda z: z, {"a": rand(3, 3, 4, 4)})
    with pytest.raises(TypeError, match="corruptions\\['a'\\]"):
        coverage(embed, x, lambda z: z, {"a": 3})
    with pytest.raises(ValueError, match="num_samples"):
        coverage(embed, x, lambda z: z, {"a": x}, num_samples=0)
    with pytest.raises(TypeError, match="augment"):
        augmentation_embeddings(embed, x, "prime", 2)
    with pytest.raises(ValueError, match="images"):
        coverage(embed, x[0], lambda z: z, {"a": x})


def test_cosine_distances():
    a = rand(2, 3, 5, seed=4) - 0.5
    b = rand(2, 4, 5, seed=5) - 0.5
    d = cosine_distances(a, b)
    ref = 1 - torch.nn.functional.cosine_similarity(a[:, :, None], b[:, None], dim=-1)
    torch.testing.assert_close(d, ref, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="a and b"):
        cosine_distances(a, b[:1])


def test_penultimate_features_of_a_recipe_model():
    from prime_augment.recipes.benchmark.models import build_model

    model = build_model("resnet18", 4).eval()
    e = PenultimateFeatures(model)(rand(2, 3, 32, 32))
    assert e.shape == (2, 512)
    with pytest.raises(ValueError, match=r"nn\.Linear"):
        PenultimateFeatures(nn.Conv2d(3, 3, 1))


def test_embedding_pca():
    g = torch.Generator().manual_seed(0)
    e = torch.randn(50, 6, generator=g) * torch.tensor([5.0, 2.0, 1.0, 0.1, 0.1, 0.1])
    coords, explained = embedding_pca(e, 3)
    assert coords.shape == (50, 3) and explained.shape == (3,)
    assert (explained[:-1] >= explained[1:]).all() and explained.sum() <= 1 + 1e-6
    # the coordinates are uncorrelated and hold the variance the ratios say
    cov = torch.cov(coords.T.double())
    torch.testing.assert_close(
        cov - torch.diag(torch.diag(cov)), torch.zeros(3, 3, dtype=torch.float64), atol=1e-4, rtol=0
    )
    total = e.double().var(0).sum()
    torch.testing.assert_close(torch.diag(cov) / total, explained.double(), atol=1e-5, rtol=0)


def test_torch_corruptions_range_seed_and_input():
    assert builtin_corruptions is torch_corruptions  # the former name still works
    x = rand(3, 3, 16, 16, seed=6)
    before = x.clone()
    a = {k: f(x) for k, f in torch_corruptions(generator=torch.Generator().manual_seed(1)).items()}
    b = {k: f(x) for k, f in torch_corruptions(generator=torch.Generator().manual_seed(1)).items()}
    assert torch.equal(x, before)
    for k in a:
        assert a[k].shape == x.shape and a[k].dtype == x.dtype
        assert a[k].min() >= 0 and a[k].max() <= 1, k
        assert torch.equal(a[k], b[k]), k
        assert (a[k] - x).abs().mean() > 1e-3, k  # every corruption changes the image


def test_perturbation_norms_and_summary():
    r = torch.zeros(2, 3, 4, 4)
    r[0, 0, 0, 0] = 0.5
    r[0, 2, 0, 0] = -0.5
    r[0, 1, 3, 3] = 0.25
    n = perturbation_norms(r)
    assert n["l0"].tolist() == [3.0, 0.0]
    assert n["pixels_pct"].tolist() == [12.5, 0.0]
    assert n["l1"][0] == pytest.approx(1.25) and n["linf"][0] == 0.5
    assert n["l2"][0] == pytest.approx((0.25 + 0.25 + 0.0625) ** 0.5)
    assert perturbation_norms(r, tol=0.3)["l0"].tolist() == [2.0, 0.0]
    s = summarize_attack(r, torch.tensor([True, True]), seconds=4.0)
    assert s["fooling_rate"] == 100.0 and s["seconds_per_image"] == 2.0
    assert s["median_pixels_pct"] == pytest.approx(6.25)  # the mean of the two middle values
    none = summarize_attack(r, torch.tensor([False, False]))
    assert none["fooling_rate"] == 0.0 and none["median_l2"] is None
    with pytest.raises(ValueError, match="success"):
        summarize_attack(r, torch.tensor([True]))
    with pytest.raises(TypeError, match="success"):
        summarize_attack(r, torch.tensor([1, 0]))


def test_import_error_names_the_extra(monkeypatch):
    for name in [
        m for m in sys.modules if m == "prime_augment.analysis" or m.startswith("prime_augment.analysis.")
    ]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'prime-augment\[analysis\]'"):
        importlib.import_module("prime_augment.analysis")
