"""No host synchronisation on the accelerator path (issue 17's speed guard), checked without a GPU.

Every transform runs on ``meta`` tensors: they have a device other than the CPU (so the code takes
its accelerator branches) but no data, so anything that would read device data back to the host, a
synchronisation on CUDA (``.item()``, ``.tolist()``, ``bool(t)``, ``nonzero``, boolean-mask indexing,
``.cpu()``), raises instead. The CUDA-only pieces (the Triton kernel, pinned copies) are not covered
here; the CUDA tests cover them on a GPU.
"""

from __future__ import annotations

import pytest
import torch
from helpers import PRIMITIVES

META = torch.device("meta")


@pytest.mark.parametrize(
    "read",
    [
        lambda t: t.sum().item(),
        lambda t: t.tolist(),
        lambda t: bool(t.any()),
        lambda t: t.nonzero(),
        lambda t: t[t > 0],
        lambda t: t.cpu(),
    ],
    ids=["item", "tolist", "bool", "nonzero", "mask", "cpu"],
)
def test_meta_tensors_refuse_every_host_read(read):
    """The check below can fail: each way of reading device data raises on meta tensors."""
    with pytest.raises((RuntimeError, NotImplementedError)):
        read(torch.ones(2, 3, device=META))


@pytest.mark.parametrize("name", list(PRIMITIVES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
@pytest.mark.parametrize("shape", [(4, 3, 32, 32), (2, 3, 40, 24)])
def test_no_host_read_on_the_accelerator_path(name, dtype, shape):
    t = PRIMITIVES[name]()
    x = torch.empty(shape, device=META, dtype=dtype)
    y = t(x)
    assert y.device == META and y.shape == x.shape and y.dtype == dtype
