"""AugmentCollate: batch augmentation in DataLoader workers."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from prime_augment import PRIME, AugmentCollate


def test_collate_augments_images_and_keeps_labels():
    data = TensorDataset(torch.rand(6, 3, 8, 8), torch.arange(6))
    collate = AugmentCollate(PRIME(depth_mode="fixed"))
    images, labels = collate([data[i] for i in range(6)])
    assert images.shape == (6, 3, 8, 8) and torch.equal(labels, torch.arange(6))
    assert not torch.allclose(images, data.tensors[0])


def test_collate_jsd_views_and_bare_images():
    x = torch.rand(4, 3, 8, 8)
    out = AugmentCollate(PRIME(), image_index=None, views=3)([x[i] for i in range(4)])
    assert out.shape == (12, 3, 8, 8) and torch.equal(out[:4], x)


def test_collate_in_two_workers_is_distinct_and_reproducible():
    data = TensorDataset(torch.rand(1, 3, 8, 8).expand(8, 3, 8, 8).clone(), torch.arange(8))

    def run(seed):
        torch.manual_seed(seed)
        loader = DataLoader(data, batch_size=2, num_workers=2,
                            collate_fn=AugmentCollate(PRIME(depth_mode="fixed")))
        return torch.cat([b for b, _ in loader])

    a, b = run(0), run(0)
    assert torch.equal(a, b)
    assert torch.unique(a.flatten(1), dim=0).shape[0] == 8


def test_collate_errors_are_clear():
    with pytest.raises(TypeError, match="callable"):
        AugmentCollate(3)
    with pytest.raises(ValueError, match="views"):
        AugmentCollate(PRIME(), views=0)
    with pytest.raises(TypeError, match=r"\(B, C, H, W\)"):
        AugmentCollate(PRIME())([([1, 2], 0), ([3, 4], 1)])
    with pytest.raises(TypeError, match="image_index=2"):
        AugmentCollate(PRIME(), image_index=2)([(torch.rand(3, 4, 4), 0)])
