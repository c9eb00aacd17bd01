"""Generic checkers, applied to every random op of the package."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import PIL.Image
import pytest
import torch
from conftest import DEVICES
from helpers import PRIMITIVES, rand_images, slice_params
from torchvision import tv_tensors
from torchvision.transforms import v2

import prime_augment.prime as prime_module
from prime_augment._plan import Plan
from prime_augment.functional import _fast_color
from prime_augment.functional import spatial as spatial_kernels

OPS = sorted(PRIMITIVES)

# Every evaluation path of the package, forced in turn (paths a 16 x 16 image never enters by the
# rules included): the colour map's series / table (/ Triton under TRITON_INTERPRET=1), the
# diffeomorphism's batched / per-image field products, and PRIME's CPU chunking (one image a chunk).
KERNELS = {"color": _fast_color, "spatial": spatial_kernels}
_COLOR_PATHS = ("series", "table", "triton") if (_fast_color.HAVE_TRITON and _fast_color.INTERPRET) else (
    "series", "table")
KERNEL_PATHS = [
    *(f"color:{p}" for p in _COLOR_PATHS),
    *(f"spatial:{p}" for p in spatial_kernels.PATHS),
    "prime:chunked",
]


def _uses(name: str, path: str) -> bool:
    kind = path.split(":")[0]
    return name.startswith("prime") or (kind != "prime" and name.startswith(kind))


#: (op, forced path) pairs: each op by its rules (None), then under every path of a kernel it uses
PATH_CASES = [(n, None) for n in OPS] + [(n, p) for p in KERNEL_PATHS for n in OPS if _uses(n, p)]


@pytest.fixture
def kernel_path(request, monkeypatch):
    path = request.param
    if path is None:
        yield None
        return
    kind, which = path.split(":")
    if kind == "prime":
        monkeypatch.setattr(prime_module, "CPU_CHUNK_BYTES", 1)  # one image per chunk
        yield path
        return
    with KERNELS[kind].forced(which):
        yield path


def with_paths(test):
    """Run ``test(name, kernel_path)`` for every op by its rules and under every forced path it uses."""
    return pytest.mark.parametrize(("name", "kernel_path"), PATH_CASES, indirect=["kernel_path"])(test)


def to_device(params, device):
    if isinstance(params, Plan):
        return params.to(device)
    if isinstance(params, torch.Tensor):
        return params.to(device)
    if isinstance(params, dict):
        return {k: to_device(v, device) for k, v in params.items()}
    if isinstance(params, list):
        return [to_device(v, device) for v in params]
    return params


def make(name, **kw):
    return PRIMITIVES[name](**kw)


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.uint8])
@pytest.mark.parametrize("shape", [(3, 16, 16), (4, 3, 12, 20), (2, 2, 1, 9, 7)])
def test_dtype_device_shape_kept(name, device, dtype, shape):
    x = rand_images(*shape, device=device, dtype=dtype)
    y = make(name)(x)
    assert type(y) is torch.Tensor
    assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
    if dtype != torch.uint8:
        yf = y.float()
        assert bool(((yf >= 0) & (yf <= 1)).all())


@with_paths
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_input_untouched(name, kernel_path, dtype):
    x = rand_images(3, 3, 16, 16, dtype=dtype)
    before = x.clone()
    y = make(name)(x)
    assert torch.equal(x, before)
    assert y.data_ptr() != x.data_ptr()


@with_paths
def test_batched_equals_per_image(name, kernel_path):
    t = make(name, generator=torch.Generator().manual_seed(0))
    x = rand_images(5, 3, 16, 24)
    params = t.make_params([x])
    batched = t.transform(x, params)
    for i in range(x.shape[0]):
        single = t.transform(x[i : i + 1], slice_params(params, i))
        torch.testing.assert_close(batched[i : i + 1], single, atol=1e-6, rtol=0)


@with_paths
def test_replay_is_deterministic_and_params_are_per_image(name, kernel_path):
    t = make(name, generator=torch.Generator().manual_seed(0))
    x = rand_images(1, 3, 16, 16).expand(6, 3, 16, 16)  # six identical images
    params = t.make_params([x])
    y1, y2 = t.transform(x, params), t.transform(x, params)
    assert torch.equal(y1, y2)
    distinct = {tuple(np.round(y1[i].flatten()[:64].numpy(), 5)) for i in range(6)}
    assert len(distinct) == 6, "identical images must get independent augmentations"
    for v in params.values():
        if isinstance(v, torch.Tensor):
            assert v.shape[0] == 6 or v.shape[-1] == 6


@pytest.mark.parametrize("name", OPS)
def test_same_on_batch(name):
    t = make(name, same_on_batch=True, generator=torch.Generator().manual_seed(0))
    x = rand_images(1, 3, 16, 16).expand(4, 3, 16, 16)
    y = t(x)
    for i in range(1, 4):
        assert torch.equal(y[0], y[i])
    assert not torch.equal(y[0], x[0])


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("shape", [(0, 3, 16, 16), (0, 2, 3, 8, 8)])
def test_empty_batch(name, shape):
    x = torch.zeros(shape)
    y = make(name)(x)
    assert y.shape == x.shape and y.dtype == x.dtype


@pytest.mark.parametrize("name", OPS)
def test_pickle_and_deepcopy(name):
    t = make(name, strength=0.7)
    for clone in (pickle.loads(pickle.dumps(t)), copy.deepcopy(t)):
        assert repr(clone) == repr(t)
        x = rand_images(2, 3, 16, 16)
        torch.manual_seed(3)
        a = t(x)
        torch.manual_seed(3)
        b = clone(x)
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", OPS)
def test_global_seed_and_generator_reproduce(name):
    x = rand_images(3, 3, 16, 16)
    t = make(name)
    torch.manual_seed(11)
    a = t(x)
    torch.manual_seed(11)
    b = t(x)
    c = t(x)
    assert torch.equal(a, b) and not torch.equal(b, c)
    ta, tb = (
        make(name, generator=torch.Generator().manual_seed(5)),
        make(name, generator=torch.Generator().manual_seed(5)),
    )
    assert torch.equal(ta(x), tb(x))


@pytest.mark.parametrize("name", OPS)
def test_repr_never_changes(name):
    t = make(name)
    before = repr(t)
    for _ in range(3):
        t(rand_images(2, 3, 16, 16))
    assert repr(t) == before
    assert type(t).__name__ in before


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_pil_in_pil_out(name, mode):
    arr = (rand_images(20, 30, 3).numpy() * 255).astype(np.uint8)
    img = PIL.Image.fromarray(arr, "RGB").convert(mode)
    out = make(name)(img)
    assert isinstance(out, PIL.Image.Image)
    assert out.mode == mode and out.size == img.size
    assert np.array_equal(np.asarray(img), np.asarray(PIL.Image.fromarray(arr, "RGB").convert(mode)))


@pytest.mark.parametrize("name", OPS)
def test_tv_tensor_image_and_compose_with_labels(name):
    arr = (rand_images(16, 16, 3).numpy() * 255).astype(np.uint8)
    pipeline = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), make(name)])
    img, label = pipeline(PIL.Image.fromarray(arr), 7)
    assert isinstance(img, tv_tensors.Image) and img.shape == (3, 16, 16) and img.dtype == torch.float32
    assert label == 7
    sample = {"image": tv_tensors.Image(torch.rand(3, 16, 16)), "label": torch.tensor(3), "name": "a"}
    out = make(name)(sample)
    assert isinstance(out["image"], tv_tensors.Image)
    assert torch.equal(out["label"], torch.tensor(3)) and out["name"] == "a"


@with_paths
def test_strength_zero_is_exactly_identity(name, kernel_path):
    t = make(name, strength=0.0)
    for x in (rand_images(3, 3, 16, 16), rand_images(3, 3, 16, 16, dtype=torch.uint8)):
        y = t(x)
        assert torch.equal(y, x) and y.data_ptr() != x.data_ptr()


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize(
    "bad, exc, words",
    [
        ([1, 2, 3], TypeError, "image"),
        (np.zeros((3, 8, 8), dtype=np.float32), TypeError, "ndarray"),
        (torch.rand(8, 8), ValueError, "(8, 8)"),
        (torch.zeros(3, 8, 8, dtype=torch.int32), TypeError, "int32"),
        (PIL.Image.new("CMYK", (8, 8)), ValueError, "CMYK"),
    ],
)
def test_bad_inputs_are_named(name, bad, exc, words):
    with pytest.raises(exc, match=None) as info:
        make(name)(bad)
    assert words in str(info.value)


@pytest.mark.parametrize("name", OPS)
def test_compile_friendly_module_params(name):
    """Parameters live on the input's device and have one row per image."""
    t = make(name)
    p = t.make_params([rand_images(3, 3, 16, 16)])
    if "plan" in p:  # PRIME: per-image draws of weights, mix and operations
        plan = p["plan"]
        flat = [plan.weights, plan.mix, plan.ops.movedim(2, 0)]
    else:
        flat = list(p.values())
    assert flat and all(v.shape[0] == 3 for v in flat)


@pytest.mark.cuda
@pytest.mark.parametrize("name", OPS)
def test_cpu_equals_cuda_on_same_params(name):
    t = make(name, generator=torch.Generator().manual_seed(0))
    x = rand_images(4, 3, 32, 32)
    params = t.make_params([x])
    cpu = t.transform(x, params)
    gpu = t.transform(x.cuda(), to_device(params, "cuda"))
    torch.testing.assert_close(gpu.cpu(), cpu, atol=2e-5, rtol=0)


@with_paths
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_output_is_a_normal_tensor(name, kernel_path, dtype):
    # the internals run in inference mode when no gradient is needed; what comes out must not be an
    # inference tensor: modifiable in place and usable in a model that trains
    t = make(name, generator=torch.Generator().manual_seed(0))
    x = rand_images(2, 3, 12, 12)
    x = (x * 255).round().to(torch.uint8) if dtype == torch.uint8 else x
    y = t(x)
    assert not y.is_inference()
    y.add_(1)  # in place outside inference mode: refused for inference tensors
    w = torch.ones(3, requires_grad=True)
    (y.float() * w[:, None, None]).sum().backward()  # saved for backward: refused for inference tensors
    assert w.grad is not None
    params = t.make_params([x])
    assert not t.transform(x, params).is_inference()


@with_paths
def test_gradients_flow_through_the_transform(name, kernel_path):
    # an input that requires grad is recorded by autograd (no inference mode), also when the
    # parameters were drawn for a plain input and are replayed
    t = make(name, generator=torch.Generator().manual_seed(0))
    x = rand_images(2, 3, 12, 12).mul(0.8).add(0.1).requires_grad_(True)
    y = t(x)
    assert y.requires_grad
    y.sum().backward()
    assert x.grad is not None and bool(torch.isfinite(x.grad).all())
    params = t.make_params([x.detach()])  # drawn in inference mode
    x.grad = None
    t.transform(x, params).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


#: the plain path of each kernel, which every other path must equal
PLAIN = {"color": "series", "spatial": "batched"}


def _faster(path: str | None) -> bool:
    return path is not None and path.split(":")[1] != PLAIN.get(path.split(":")[0])


@pytest.mark.parametrize(("name", "path"), [(n, p) for n, p in PATH_CASES if _faster(p)])
def test_every_path_equals_the_plain_one(name, path, monkeypatch):
    t = make(name, generator=torch.Generator().manual_seed(0))
    x = rand_images(4, 3, 40, 36)
    params = t.make_params([x])
    kind, which = path.split(":")
    if kind == "prime":
        monkeypatch.setattr(prime_module, "CPU_CHUNK_BYTES", 1 << 40)  # the whole batch at once
        plain = t.transform(x, params)
        monkeypatch.setattr(prime_module, "CPU_CHUNK_BYTES", 1)  # one image per chunk
        got = t.transform(x, params)
    else:
        with KERNELS[kind].forced(PLAIN[kind]):
            plain = t.transform(x, params)
        with KERNELS[kind].forced(which):
            got = t.transform(x, params)
    torch.testing.assert_close(got, plain, atol=2e-5, rtol=0)
