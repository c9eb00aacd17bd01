"""Module-specific behaviour: argument checks, masks and boxes, DataLoader workers, torch.compile."""

from __future__ import annotations

import warnings

import numpy as np
import PIL.Image
import pytest
import torch
from helpers import rand_images
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from prime_augment import RandomDiffeomorphism, RandomSineColor, RandomSpectralFilter
from prime_augment.functional import deform, sine_color, spectral_filter


@pytest.mark.parametrize(
    "factory, exc, words",
    [
        (lambda: RandomSpectralFilter(kernel_size=4), ValueError, "kernel_size"),
        (lambda: RandomSpectralFilter(kernel_size=3.0), TypeError, "kernel_size"),
        (lambda: RandomSpectralFilter(sigma_max=-1), ValueError, "sigma_max"),
        (lambda: RandomSpectralFilter(padding_mode="mirror"), ValueError, "padding_mode"),
        (lambda: RandomSpectralFilter(strength=-0.1), ValueError, "strength"),
        (lambda: RandomSpectralFilter(strength=float("nan")), ValueError, "strength"),
        (lambda: RandomSpectralFilter(same_on_batch=1), TypeError, "same_on_batch"),
        (lambda: RandomSpectralFilter(generator=0), TypeError, "generator"),
        (lambda: RandomDiffeomorphism(cut_min=1), ValueError, "cut_min"),
        (lambda: RandomDiffeomorphism(cut_min=5, cut_max=3), ValueError, "cut_max"),
        (lambda: RandomSineColor(cut_max=0), ValueError, "cut_max"),
        (lambda: RandomSineColor(bandwidth=0), ValueError, "bandwidth"),
        (lambda: RandomSineColor(variance_max="a"), TypeError, "variance_max"),
    ],
)
def test_bad_hyper_parameters_are_named(factory, exc, words):
    with pytest.raises(exc, match=words):
        factory()


def test_repr_shows_hyper_parameters():
    r = repr(RandomSineColor(cut_max=500, bandwidth=20, variance_max=0.05, strength=0.5))
    for part in ("cut_max=500", "bandwidth=20", "variance_max=0.05", "strength=0.5", "same_on_batch=False"):
        assert part in r


def test_color_module_uint8_and_pil_are_exact_lookups():
    t = RandomSineColor(
        cut_max=300, bandwidth=20, variance_max=0.05, generator=torch.Generator().manual_seed(0)
    )
    x = rand_images(1, 3, 10, 10, dtype=torch.uint8)
    params = t.make_params([x])
    y = t.transform(x, params)
    yf = t.transform(x.float() / 255, params)
    assert (y.int() - (yf * 255).round().int()).abs().max() <= 1  # float path agrees up to rounding ties
    img = PIL.Image.fromarray(x[0].permute(1, 2, 0).numpy())
    out = t.transform(img, params)
    assert np.array_equal(np.asarray(out), y[0].permute(1, 2, 0).numpy())


def test_diffeo_warps_masks_with_the_same_field_and_refuses_boxes():
    t = RandomDiffeomorphism(cut_max=5, strength=3.0, generator=torch.Generator().manual_seed(0))
    x = rand_images(2, 3, 24, 24)
    mask = tv_tensors.Mask((x[:, :1] > 0.5).to(torch.uint8))
    _, out_m = t(tv_tensors.Image(x), mask)
    assert isinstance(out_m, tv_tensors.Mask) and out_m.dtype == torch.uint8 and out_m.shape == mask.shape
    # nearest-warped mask equals the thresholded nearest-warp of the image channel
    params = t.make_params([x])
    warped = deform((x[:, :1] > 0.5).float(), params["coeffs"], mode="nearest")
    assert torch.equal(t.transform(mask, params).as_subclass(torch.Tensor), warped.to(torch.uint8))
    assert not torch.equal(out_m, mask)
    boxes = tv_tensors.BoundingBoxes(torch.tensor([[1, 1, 5, 5]]), format="XYXY", canvas_size=(24, 24))
    with pytest.raises(TypeError, match="BoundingBoxes"):
        t(tv_tensors.Image(x[0]), boxes)
    # photometric primitives pass masks and boxes through untouched
    _, m2, b2 = RandomSineColor()(tv_tensors.Image(x[0]), mask[0], boxes)
    assert torch.equal(m2, mask[0]) and torch.equal(b2, boxes)


def test_images_of_one_call_must_agree():
    with pytest.raises(ValueError, match="same batch size"):
        RandomSineColor()(tv_tensors.Image(torch.rand(3, 8, 8)), tv_tensors.Image(torch.rand(3, 9, 8)))


class _Toy(Dataset):
    def __init__(self, transform):
        self.x = rand_images(8, 3, 16, 16)
        self.transform = transform

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return self.transform(self.x[0]), i  # the same image everywhere: differences come from the op


@pytest.mark.parametrize("op", [RandomSpectralFilter, RandomDiffeomorphism, RandomSineColor])
def test_dataloader_workers_differ_and_seed_reproduces(op):
    def run(seed):
        torch.manual_seed(seed)
        loader = DataLoader(_Toy(v2.Compose([op()])), batch_size=2, num_workers=2)
        return torch.cat([b for b, _ in loader])

    a, b, c = run(0), run(0), run(1)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    flat = a.flatten(1)
    assert torch.unique(flat, dim=0).shape[0] == 8  # every item, in both workers, differs


def test_generator_in_worker_warns():
    import prime_augment._base as base

    base._warned_worker_generator = False
    loader = DataLoader(
        _Toy(RandomSineColor(generator=torch.Generator().manual_seed(0))), batch_size=4, num_workers=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        next(iter(loader))  # main process: no warning

    class Info:
        pass

    orig = torch.utils.data.get_worker_info
    torch.utils.data.get_worker_info = lambda: Info()
    try:
        with pytest.warns(RuntimeWarning, match="same augmentations"):
            RandomSineColor(generator=torch.Generator().manual_seed(0))(torch.rand(3, 4, 4))
    finally:
        torch.utils.data.get_worker_info = orig
        base._warned_worker_generator = False


@pytest.mark.slow
def test_torch_compile_equals_eager_for_the_kernels():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 16, 16, generator=g)
    # tolerances: both sides stay this close to the float64 result (compiled code fuses differently)
    cases = [
        (spectral_filter, (x, 0.5 * torch.randn(4, 3, 3, generator=g)), 1e-6),
        (deform, (x, 0.01 * torch.randn(4, 2, 8, 8, generator=g)), 5e-6),
        (sine_color, (x, 0.1 * torch.randn(4, 3, 40, generator=g), torch.tensor([1, 2, 30, 4])), 5e-5),
    ]
    torch._dynamo.reset()
    for fn, args, atol in cases:
        exact = fn(*[a.double() if a.is_floating_point() else a for a in args]).float()
        compiled = torch.compile(fn, fullgraph=False)
        torch.testing.assert_close(fn(*args), exact, atol=atol, rtol=0)
        torch.testing.assert_close(compiled(*args), exact, atol=atol, rtol=0)
