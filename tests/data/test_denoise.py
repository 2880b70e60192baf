"""Denoising data: embedded split by image, AWGN levels and seeding, folder and SIDD-pair
loaders on tiny files written here."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch.testing import assert_close

from frugalcv.core.loader import TensorLoader
from frugalcv.data.denoise import (
    SKIMAGE_TEST,
    NoisyCleanPairs,
    add_gaussian_noise,
    center_crops,
    find_noisy_clean_pairs,
    load_denoise,
    load_image_folder,
    noise_transform,
    pair_crops,
    random_crops,
    skimage_images,
)

pytestmark = pytest.mark.unit


def test_skimage_split_is_by_image_and_shapes_are_right():
    for color, chans in ((False, 1), (True, 3)):
        train = skimage_images(split="train", color=color)
        test = skimage_images(split="test", color=color)
        assert not set(train) & set(test)
        assert set(test) <= set(SKIMAGE_TEST) and len(train) >= 6
        for im in list(train.values()) + list(test.values()):
            assert im.shape[0] == chans and max(im.shape[1:]) <= 512
            assert 0.0 <= float(im.min()) and float(im.max()) <= 1.0
    assert set(skimage_images(split="test")) == set(SKIMAGE_TEST)


def test_test_noise_is_fixed_by_seed_and_has_the_asked_sigma():
    a = load_denoise("skimage-grey", sigma=50, seed=0)
    b = load_denoise("skimage-grey", sigma=50, seed=0)
    c = load_denoise("skimage-grey", sigma=50, seed=1)
    assert a.fingerprint == b.fingerprint != c.fingerprint
    noise = torch.cat([(y - x).flatten() for y, x in zip(a.test_noisy, a.test_clean, strict=True)])
    assert abs(float(noise.std()) * 255 - 50.0) < 0.5  # ~700k samples
    assert float(noise.max()) * 255 > 150  # unclipped Gaussian tails
    assert a.test_sigmas.tolist() == [50.0] * len(a.test_clean)
    blind = load_denoise("skimage-color", sigma="blind")
    assert blind.in_chans == 3 and blind.sigma == (0.0, 55.0)
    assert all(0.0 <= s <= 55.0 for s in blind.test_sigmas.tolist())
    assert len(set(blind.test_sigmas.tolist())) == len(blind.test_clean)
    with pytest.raises(ValueError, match="unknown denoising set"):
        load_denoise("bsd500")
    with pytest.raises(ValueError, match="'blind'"):
        load_denoise(sigma="high")


def test_noise_transform_in_a_loader_is_seeded_per_batch_and_blind_per_image():
    clean = torch.full((8, 1, 64, 64), 0.5)
    loader = TensorLoader((clean,), batch_size=8, transform=noise_transform(25.0))
    (y1, x1), (y2, _) = next(iter(loader)), next(iter(loader))
    assert torch.equal(y1, y2) and torch.equal(x1, clean)
    assert abs(float((y1 - x1).std()) * 255 - 25.0) < 0.6
    blind = TensorLoader((clean,), batch_size=8, transform=noise_transform((0.0, 55.0)))
    y, x = next(iter(blind))
    stds = (y - x).flatten(1).std(1) * 255
    assert float(stds.max() - stds.min()) > 5.0 and float(stds.max()) < 58.0


def test_add_gaussian_noise_per_image_sigma_and_errors():
    clean = torch.zeros(2, 1, 128, 128)
    y = add_gaussian_noise(clean, torch.tensor([0.0, 30.0]), generator=torch.Generator())
    assert float(y[0].abs().max()) == 0.0
    assert abs(float(y[1].std()) * 255 - 30.0) < 1.0
    with pytest.raises(ValueError, match="per-image sigma"):
        add_gaussian_noise(clean, torch.tensor([1.0, 2.0, 3.0]))


def test_random_and_center_crops_come_from_the_images():
    im = torch.arange(2 * 10 * 12, dtype=torch.float32).view(2, 10, 12)
    crops = random_crops([im], 5, 4, generator=torch.Generator().manual_seed(0))
    assert crops.shape == (5, 2, 4, 4)
    for c in crops:
        start = int(c[0, 0, 0])
        r, col = divmod(start, 12)
        assert torch.equal(c, im[:, r : r + 4, col : col + 4])
    assert torch.equal(center_crops([im], 4)[0], im[:, 3:7, 4:8])
    with pytest.raises(ValueError, match="smaller crop"):
        random_crops([im], 1, 11, generator=torch.Generator())


def _write(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def test_folder_sets_load_from_tiny_files(tmp_path):
    rng = np.random.default_rng(0)
    grey = [rng.integers(0, 256, (12, 10), dtype=np.uint8) for _ in range(3)]
    for i, a in enumerate(grey[:2]):
        _write(tmp_path / "denoise" / "BSD400" / f"{i:03d}.png", a)
    _write(tmp_path / "denoise" / "BSD68" / "test001.png", grey[2])
    d = load_denoise("bsd68", sigma=15, root=tmp_path)
    assert len(d.train) == 2 and len(d.test_clean) == 1 and d.in_chans == 1
    assert_close(d.train[1][0], torch.from_numpy(grey[1]).float() / 255)
    assert_close(d.test_clean[0][0], torch.from_numpy(grey[2]).float() / 255)
    assert d.source == "--data.root/denoise/BSD68"
    colour = rng.integers(0, 256, (8, 9, 3), dtype=np.uint8)
    _write(tmp_path / "Kodak24" / "kodim01.PNG", colour)
    (im,) = load_image_folder(tmp_path / "Kodak24", color=True)
    assert_close(im, torch.from_numpy(colour).permute(2, 0, 1).float() / 255)
    with pytest.raises(FileNotFoundError, match="CBSD432"):
        load_denoise("cbsd68", root=tmp_path)


def test_sidd_pairs_load_and_crop_aligned(tmp_path):
    rng = np.random.default_rng(1)
    scene = tmp_path / "SIDD" / "Data" / "0001_001_S6_00100_00060_3200_L"
    clean = rng.integers(40, 200, (16, 20, 3), dtype=np.uint8)
    noisy = (clean.astype(int) + rng.integers(-30, 30, clean.shape)).clip(0, 255).astype(np.uint8)
    _write(scene / "NOISY_SRGB_010.PNG", noisy)
    _write(scene / "GT_SRGB_010.PNG", clean)
    pairs = NoisyCleanPairs(root=tmp_path)
    assert len(pairs) == 1 and pairs.source == "--data.root/SIDD"
    y, x = pairs[0]
    assert_close(y, torch.from_numpy(noisy).permute(2, 0, 1).float() / 255)
    assert_close(x, torch.from_numpy(clean).permute(2, 0, 1).float() / 255)
    ny, nx = pair_crops(pairs, 6, 8, generator=torch.Generator().manual_seed(0))
    assert ny.shape == nx.shape == (6, 3, 8, 8)
    diff = y - x
    for a, b in zip(ny, nx, strict=True):  # the same window in both images
        hits = [
            (r, c)
            for r in range(9)
            for c in range(13)
            if torch.equal(b, x[:, r : r + 8, c : c + 8])
            and torch.equal(a - b, diff[:, r : r + 8, c : c + 8])
        ]
        assert hits
    _write(scene / "NOISY_SRGB_011.PNG", noisy)  # no GT partner
    with pytest.raises(FileNotFoundError, match="GT_SRGB_011"):
        find_noisy_clean_pairs(tmp_path)
    with pytest.raises(FileNotFoundError, match="SIDD"):
        find_noisy_clean_pairs(tmp_path / "empty")
