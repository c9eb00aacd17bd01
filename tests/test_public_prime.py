"""The public code's PRIME (the fidelity arm of the recipes): its laws and its FIR tap."""

from __future__ import annotations

import pytest
import torch

from prime_augment.recipes.benchmark.engine import Augmentation
from prime_augment.recipes.benchmark.public_prime import PublicPRIME


def test_public_fir_tap_shifts_the_image_by_one_pixel():
    # the public code puts the identity tap at ceil(K/2) = 2 for K = 3: at zero strength its "filter" is
    # a translation by one pixel up and left, zeros entering at the bottom and right; centred: identity
    x = torch.rand(2, 3, 8, 8)
    public, centre = PublicPRIME("cifar10", fir_tap="public"), PublicPRIME("cifar10", fir_tap="centre")
    public.sigma_max = centre.sigma_max = 0.0
    shifted = public.spectral(x)
    assert torch.equal(shifted[..., :-1, :-1], x[..., 1:, 1:])
    assert torch.equal(shifted[..., -1, :], torch.zeros_like(x[..., -1, :]))
    assert torch.equal(centre.spectral(x), x)


def test_draws_are_shared_by_the_batch_taps_and_coefficients_are_not():
    torch.manual_seed(0)
    p = PublicPRIME("cifar10")
    x = torch.rand(1, 3, 16, 16).repeat(4, 1, 1, 1)
    warped = p.spatial(x)  # one field per call: identical images stay identical
    assert all(torch.equal(warped[0], w) for w in warped[1:])
    colored = p.color(x)  # one K and variance per call, coefficients per image
    assert not torch.equal(colored[0], colored[1])


def test_field_scale_and_mode_disk():
    # sqrt(T) u n pixels with the modes of sqrt(i^2 + j^2) < c + 1/2 (the public code's field)
    p = PublicPRIME("cifar10")
    torch.manual_seed(1)
    u = p._field(16, 3, torch.device("cpu"), torch.float64)
    assert u.shape == (16, 16)
    assert torch.allclose(u[0], torch.zeros(16, dtype=torch.float64), atol=1e-12)  # zero at the border
    torch.manual_seed(1)
    c = torch.randn(3, 3)  # the same draw; the disk of radius 3.5 holds (1, 3), i^2 + j^2 <= 9 does not
    k = torch.arange(1, 4, dtype=torch.float64)
    s = torch.sin(torch.pi * torch.linspace(0, 1, 16, dtype=torch.float64)[:, None] * k)
    i, j = torch.meshgrid(k, k, indexing="ij")
    e = ((i**2 + j**2).sqrt() < 3.5) / (i**2 + j**2).sqrt()
    assert e[0, 2] > 0 and e[1, 2] == 0 and e[2, 2] == 0
    torch.testing.assert_close(u, torch.einsum("ij,xi,yj->yx", c.double() * e, s, s))


def test_mix_is_in_range_and_seeded():
    x = torch.rand(6, 3, 16, 16)
    torch.manual_seed(3)
    a = PublicPRIME("cifar10")(x)
    torch.manual_seed(3)
    b = PublicPRIME("cifar10")(x)
    assert torch.equal(a, b) and a.shape == x.shape
    assert a.min() >= 0 and a.max() <= 1 and not torch.equal(a, x)


def test_errors():
    with pytest.raises(ValueError, match="fir_tap"):
        PublicPRIME("cifar10", fir_tap="left")
    with pytest.raises(ValueError, match="square"):
        PublicPRIME("cifar10")(torch.rand(2, 3, 8, 10))
    with pytest.raises(TypeError, match="PublicPRIME"):
        Augmentation("prime-public")
    with pytest.raises(ValueError, match="once per batch"):
        Augmentation("prime-public", prime=PublicPRIME(), placement="workers")
    assert Augmentation("prime-public", prime=PublicPRIME()).resolve(torch.device("cpu")) == "device"
