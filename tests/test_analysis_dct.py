"""The DCT, DCT subspaces, the dataset transforms, and margins inside subspaces (closed forms)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from analysis_fixtures import one_thread  # noqa: F401  (autouse)
from hypothesis import given
from hypothesis import strategies as st
from scipy import fft as sfft
from torch import nn

from prime_augment.analysis import (
    DCTSubspace,
    DenseSubspace,
    dct2,
    dct_diagonal_subspaces,
    dct_flip,
    dct_high_pass,
    dct_low_pass,
    dct_matrix,
    idct2,
    random_subspace,
    subspace_margin,
    subspace_margins,
)

sizes = st.integers(1, 12)


def rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ----------------------------------------------------------------------------- DCT


@given(n=st.integers(1, 40))
def test_dct_matrix_orthonormal_and_scipy(n):
    d = dct_matrix(n)
    torch.testing.assert_close(d @ d.T, torch.eye(n, dtype=torch.float64), rtol=0, atol=1e-12)
    ref = sfft.dct(np.eye(n), type=2, norm="ortho", axis=0)
    np.testing.assert_allclose(d.numpy(), ref, atol=1e-12)


@given(h=sizes, w=sizes, seed=st.integers(0, 1000))
def test_dct2_matches_scipy_and_inverts(h, w, seed):
    x = rand(2, 3, h, w, seed=seed)
    c = dct2(x)
    np.testing.assert_allclose(
        c.numpy(), sfft.dctn(x.numpy(), type=2, norm="ortho", axes=(-2, -1)), atol=1e-12
    )
    np.testing.assert_allclose(idct2(c).numpy(), x.numpy(), atol=1e-12)
    np.testing.assert_allclose(
        idct2(x).numpy(), sfft.idctn(x.numpy(), type=2, norm="ortho", axes=(-2, -1)), atol=1e-12
    )
    torch.testing.assert_close(c.norm(), x.norm())  # Parseval


def test_dct_float32_and_half_inputs():
    x = rand(3, 8, 8).float()
    torch.testing.assert_close(idct2(dct2(x)), x, atol=1e-5, rtol=0)
    assert dct2(x.half()).dtype == torch.float16


@given(h=sizes, w=sizes, seed=st.integers(0, 1000))
def test_flip_is_an_orthogonal_involution_matching_scipy(h, w, seed):
    x = rand(2, 3, h, w, seed=seed)
    before = x.clone()
    f = dct_flip(x)
    assert torch.equal(x, before)  # not in place
    torch.testing.assert_close(dct_flip(f), x, rtol=0, atol=1e-12)
    torch.testing.assert_close(f.norm(), x.norm())
    ref = sfft.idctn(
        sfft.dctn(x.numpy(), norm="ortho", axes=(-2, -1))[..., ::-1, ::-1], norm="ortho", axes=(-2, -1)
    )
    np.testing.assert_allclose(f.numpy(), ref, atol=1e-12)


def test_flip_moves_low_frequencies_to_high():
    x = torch.ones(1, 8, 8, dtype=torch.float64)  # DC only
    c = dct2(dct_flip(x))
    assert c[0, 7, 7].abs() > 7.9 and c[0, :7].abs().max() < 1e-12


@given(cut=st.integers(0, 10), seed=st.integers(0, 1000))
def test_low_high_pass_are_complementary_projections(cut, seed):
    x = rand(2, 3, 10, 7, seed=seed)
    lo, hi = dct_low_pass(x, cut), dct_high_pass(x, cut)
    torch.testing.assert_close(lo + hi, x)
    torch.testing.assert_close(dct_low_pass(lo, cut), lo, rtol=0, atol=1e-12)  # idempotent
    assert float((lo * hi).sum()) == pytest.approx(0.0, abs=1e-10)  # orthogonal
    mask = np.zeros((10, 7))
    mask[:cut, : min(cut, 7)] = 1
    ref = sfft.idctn(sfft.dctn(x.numpy(), norm="ortho", axes=(-2, -1)) * mask, norm="ortho", axes=(-2, -1))
    np.testing.assert_allclose(lo.numpy(), ref, atol=1e-12)


def test_transforms_batched_equal_single():
    x = rand(4, 3, 9, 9, seed=3)
    for fn in (dct_flip, lambda z: dct_low_pass(z, (3, 5)), lambda z: dct_high_pass(z, 4), dct2, idct2):
        whole = fn(x)
        for i in range(4):
            torch.testing.assert_close(fn(x[i]), whole[i], rtol=0, atol=1e-12)


def test_dct_errors():
    with pytest.raises(TypeError, match="x"):
        dct2(torch.zeros(4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="x"):
        dct_flip(torch.zeros(4))
    with pytest.raises(ValueError, match="cutoff"):
        dct_low_pass(torch.zeros(4, 4), -1)
    with pytest.raises(TypeError, match="cutoff"):
        dct_high_pass(torch.zeros(4, 4), 1.5)
    with pytest.raises(ValueError, match="rows"):
        DCTSubspace((3, 3), (0, 1))
    with pytest.raises(ValueError, match="block"):
        dct_diagonal_subspaces(8, 8, block=9)
    with pytest.raises(ValueError, match="fit"):
        DCTSubspace((0, 9), (0, 2)).project(torch.zeros(1, 3, 8, 8))


# ----------------------------------------------------------------------------- subspaces


def dense_dct_basis(sub: DCTSubspace, c: int, h: int, w: int) -> torch.Tensor:
    """The (C*H*W, S) basis of a DCT block: the basis images of its frequencies in each channel."""
    dh, dw = dct_matrix(h), dct_matrix(w)
    cols = []
    for ch in range(c):
        for k in range(*sub.rows):
            for l in range(*sub.cols):
                img = torch.zeros(c, h, w, dtype=torch.float64)
                img[ch] = torch.outer(dh[k], dw[l])
                cols.append(img.flatten())
    return torch.stack(cols, 1)


@given(r0=st.integers(0, 5), c0=st.integers(0, 4), kr=st.integers(1, 3), kc=st.integers(1, 3))
def test_dct_subspace_equals_its_dense_basis(r0, c0, kr, kc):
    sub = DCTSubspace((r0, r0 + kr), (c0, c0 + kc))
    basis = dense_dct_basis(sub, 2, 8, 7)
    assert basis.shape[1] == sub.dim((2, 8, 7))
    x = rand(3, 2, 8, 7, seed=r0 + 10 * c0)
    torch.testing.assert_close(sub.project(x), DenseSubspace(basis).project(x), rtol=0, atol=1e-12)
    p = sub.project(x)
    torch.testing.assert_close(sub.project(p), p, rtol=0, atol=1e-12)


def test_diagonal_subspaces_positions():
    subs = dct_diagonal_subspaces(32, 32, block=8, step=4)
    assert [s.rows for s in subs] == [(p, p + 8) for p in range(0, 25, 4)]
    assert all(s.rows == s.cols for s in subs)
    assert [s.rows for s in dct_diagonal_subspaces(12, 20, block=4, step=4)] == [(0, 4), (4, 8), (8, 12)]


def test_dense_subspace_checks():
    with pytest.raises(ValueError, match="orthonormal"):
        DenseSubspace(torch.ones(6, 2))
    with pytest.raises(ValueError, match=r"\(D, S\)"):
        DenseSubspace(torch.ones(6))
    with pytest.raises(TypeError, match="basis"):
        DenseSubspace(torch.ones(6, 2, dtype=torch.long))
    s = DenseSubspace(torch.eye(6)[:, :2])
    with pytest.raises(ValueError, match="C\\*H\\*W"):
        s.check_shape((3, 2, 2))


def test_random_subspace_seeded_orthonormal():
    a = random_subspace((3, 4, 4), 5, generator=torch.Generator().manual_seed(1))
    b = random_subspace((3, 4, 4), 5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.basis, b.basis)
    torch.testing.assert_close(a.basis.T @ a.basis, torch.eye(5), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="dim"):
        random_subspace((1, 2, 2), 5)


# ----------------------------------------------------------------------------- margins


def affine(k: int, shape: tuple[int, int, int], seed: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    d = int(np.prod(shape))
    w = torch.randn(k, d, generator=g, dtype=torch.float64)
    b = torch.randn(k, generator=g, dtype=torch.float64)
    lin = nn.Linear(d, k).double()
    with torch.no_grad():
        lin.weight.copy_(w)
        lin.bias.copy_(b)
    return nn.Sequential(nn.Flatten(), lin), w, b


def closed_form_margin(w, b, x, project) -> torch.Tensor:
    r"""min_l |f_k - f_l| / ||P_S (w_k - w_l)|| (inf where P_S (w_k - w_l) = 0 for every l)."""
    f = x.flatten(1) @ w.T + b
    k = f.argmax(1)
    out = []
    for i in range(len(x)):
        vals = []
        for l in range(w.shape[0]):
            if l == k[i]:
                continue
            pw = project((w[k[i]] - w[l]).view(1, *x.shape[1:])).flatten()
            n = pw.norm()
            vals.append(
                (f[i, k[i]] - f[i, l]).abs() / n if n > 1e-12 else torch.tensor(float("inf")).double()
            )
        out.append(torch.stack(vals).min())
    return torch.stack(out)


@given(seed=st.integers(0, 10_000), k=st.integers(2, 6), dim=st.integers(1, 40))
def test_margin_closed_form_dense_basis(seed, k, dim):
    shape = (2, 4, 5)
    model, w, b = affine(k, shape, seed)
    x = rand(4, *shape, seed=seed)
    sub = random_subspace(shape, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    m = subspace_margin(model, x, sub.basis, candidates=k)  # a dense (D, S) basis tensor is accepted
    torch.testing.assert_close(m, closed_form_margin(w, b, x, sub.project), rtol=1e-8, atol=0)


@given(seed=st.integers(0, 10_000), pos=st.integers(0, 6), block=st.integers(1, 4))
def test_margin_closed_form_dct_subspace(seed, pos, block):
    shape = (3, 10, 10)
    model, w, b = affine(4, shape, seed)
    x = rand(3, *shape, seed=seed)
    sub = DCTSubspace((pos, pos + block), (pos, pos + block))
    m = subspace_margin(model, x, sub, candidates=4)
    torch.testing.assert_close(m, closed_form_margin(w, b, x, sub.project), rtol=1e-8, atol=0)


def test_margin_unreachable_is_inf_and_full_space_is_deepfool():
    from prime_augment.analysis import deepfool

    shape = (1, 2, 2)
    lin = nn.Linear(4, 2, bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 1.0]]))
    model = nn.Sequential(nn.Flatten(), lin)
    x = torch.tensor([[[[3.0, 0.5], [0.5, 1.0]]]], dtype=torch.float64)
    assert subspace_margin(model, x, torch.eye(4, dtype=torch.float64)[:, 1:3]).isinf().all()
    full = subspace_margin(model, x, torch.eye(4, dtype=torch.float64))
    torch.testing.assert_close(full, deepfool(model, x, bounds=None).distance)
    assert subspace_margin(model, x[0], torch.eye(4, dtype=torch.float64)).shape == ()
    assert x.shape == (1, *shape)


def test_subspace_margins_stack_and_batched_equals_single():
    shape = (3, 8, 8)
    model, _, _ = affine(3, shape, 5)
    x = rand(5, *shape, seed=6)
    subs = dct_diagonal_subspaces(8, 8, block=4, step=2)
    m = subspace_margins(model, x, subs)
    assert m.shape == (3, 5)
    for i in range(5):
        torch.testing.assert_close(subspace_margins(model, x[i : i + 1], subs)[:, 0], m[:, i])


def test_margin_errors():
    model, _, _ = affine(3, (1, 2, 2), 0)
    x = rand(2, 1, 2, 2)
    with pytest.raises(TypeError, match="subspace"):
        subspace_margin(model, x, "dct")
    with pytest.raises(ValueError, match="C\\*H\\*W"):
        subspace_margin(model, x, torch.eye(5, dtype=torch.float64)[:, :2])
    with pytest.raises(ValueError, match="max_iter"):
        subspace_margin(model, x, torch.eye(4, dtype=torch.float64), max_iter=0)
    with pytest.raises(TypeError, match="subspaces"):
        subspace_margins(model, x, DCTSubspace((0, 1), (0, 1)))
    with pytest.raises(ValueError, match="subspaces"):
        subspace_margins(model, x, [])
