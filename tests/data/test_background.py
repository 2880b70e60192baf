"""Tests for frugalcv.data.background (natural-image patches)."""

from __future__ import annotations

import pytest
import torch

from frugalcv.data import background as bg

pytestmark = pytest.mark.unit


def test_sample_patches_shape_range_texture_and_determinism():
    gen = torch.Generator().manual_seed(0)
    p = bg.sample_patches(300, 28, generator=gen)
    assert p.shape == (300, 28, 28) and p.dtype == torch.float32
    assert p.min() >= 0.0 and p.max() <= 1.0
    assert p.flatten(1).std(dim=1, unbiased=False).min() >= bg.MIN_PATCH_STD - 1e-5
    again = bg.sample_patches(300, 28, generator=torch.Generator().manual_seed(0))
    other = bg.sample_patches(300, 28, generator=torch.Generator().manual_seed(1))
    assert torch.equal(p, again) and not torch.equal(p, other)
    strict = bg.sample_patches(50, 16, generator=gen, min_std=0.15)
    assert strict.flatten(1).std(dim=1, unbiased=False).min() >= 0.15 - 1e-5


def test_train_and_test_pools_are_disjoint_halves():
    full, train, test = (bg._pool_images(p) for p in ("all", "train", "test"))
    assert len(full) == len(train) == len(test) == len(bg.BACKGROUND_IMAGES)
    for whole, left, right in zip(full, train, test, strict=True):
        assert left.shape[1] + right.shape[1] == whole.shape[1]
        assert torch.equal(torch.cat([left, right], dim=1), whole)
    # every sampled patch is the window its location names, inside its pool's half
    gen = torch.Generator().manual_seed(0)
    for pool, images in (("train", train), ("test", test)):
        patches, index, rows, cols = bg._sample_locations(
            64, 28, generator=gen, pool=pool, min_std=bg.MIN_PATCH_STD
        )
        for k in range(64):
            image = images[int(index[k])]
            r, c = int(rows[k]), int(cols[k])
            assert r + 28 <= image.shape[0] and c + 28 <= image.shape[1]
            assert torch.equal(patches[k], image[r : r + 28, c : c + 28])


def test_sample_patches_errors():
    gen = torch.Generator()
    with pytest.raises(ValueError, match="pool must be"):
        bg.sample_patches(1, 8, generator=gen, pool="val")
    with pytest.raises(ValueError, match="larger than every background image"):
        bg.sample_patches(1, 5000, generator=gen)
