"""Data of the ``ddsnet`` recipe: noisy training patches, held-out pairs and test tiles."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from frugalcv.core.config import ConfigError
from frugalcv.core.loader import TensorLoader
from frugalcv.data.base import stream_generator
from frugalcv.data.denoise import (
    DenoiseData,
    add_gaussian_noise,
    load_denoise,
    noise_transform,
    random_crops,
)
from frugalcv.slim.ddsnet.config import Config, parse_sigma

__all__ = ["load_data", "tile_test_images"]


def _flip_rotate(clean: Tensor, generator: torch.Generator) -> Tensor:
    """One of DnCNN's 8 modes per patch: flip with prob. 1/2, then rot90 by k ~ U{0..3}."""
    ks = torch.randint(4, (clean.shape[0],), generator=generator).tolist()
    flips = torch.randint(2, (clean.shape[0],), generator=generator).tolist()
    return torch.stack(
        [
            torch.rot90(x.flip(-1) if f else x, k, dims=(-2, -1))
            for x, k, f in zip(clean, ks, flips, strict=True)
        ]
    )


def _train_transform(sigma: float | tuple[float, float], *, augment: bool) -> Callable:
    add_noise = noise_transform(sigma)

    def transform(batch: tuple[Tensor, ...], generator: torch.Generator) -> tuple[Tensor, Tensor]:
        clean = _flip_rotate(batch[0], generator) if augment else batch[0]
        return add_noise((clean,), generator)

    return transform


def _noisy(
    clean: Tensor, sigma: float | tuple[float, float], generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Fixed noise for a stack of images: ``(noisy, sigmas)``, one sigma per image when blind."""
    if isinstance(sigma, tuple):
        lo, hi = sigma
        sigmas = lo + (hi - lo) * torch.rand(clean.shape[0], generator=generator)
    else:
        sigmas = torch.full((clean.shape[0],), float(sigma))
    return add_gaussian_noise(clean, sigmas, generator=generator), sigmas


def tile_test_images(
    data: DenoiseData, *, size: int, seed: int, max_images: int = 0
) -> tuple[list[Tensor], list[Tensor], Tensor]:
    """The test images as non-overlapping ``size x size`` tiles (row-major from the top-left
    corner; the remainder at the right and bottom is dropped), each with its own noise draw
    (stream 0 of ``stream_generator(seed, .)``, as ``load_denoise``). ``size = 0`` keeps the
    loader's whole noisy images. ``max_images > 0`` keeps that many, evenly spaced.

    Returns:
        ``(noisy, clean, sigmas)``: lists of ``(C, h, w)`` and ``(M,)`` sigmas (0-255 scale).
    """
    if size > 0:
        tiles = [
            im[:, r : r + size, c : c + size]
            for im in data.test_clean
            for r in range(0, im.shape[-2] - size + 1, size)
            for c in range(0, im.shape[-1] - size + 1, size)
        ]
        if not tiles:
            raise ValueError(f"data.test_tile={size} exceeds every test image; use a smaller one")
        clean = torch.stack(tiles)  # (M, C, size, size)
        noisy, sigmas = _noisy(clean, data.sigma, stream_generator(seed, 0))
        out_noisy, out_clean = list(noisy), list(clean)
    else:
        out_noisy, out_clean, sigmas = (
            list(data.test_noisy),
            list(data.test_clean),
            data.test_sigmas,
        )
    if max_images and max_images < len(out_clean):
        keep = np.unique(np.linspace(0, len(out_clean) - 1, max_images).round().astype(int))
        out_noisy = [out_noisy[i] for i in keep]
        out_clean = [out_clean[i] for i in keep]
        sigmas = sigmas[torch.as_tensor(keep)]
    return out_noisy, out_clean, sigmas


@dataclass
class _Data:
    name: str
    source: str
    in_chans: int
    sigma: float | tuple[float, float]
    train: TensorLoader  # Stage 1 and static rows: (noisy, clean) patches
    gate_train: TensorLoader  # Stage 3: larger patches
    heldout: TensorLoader  # fixed (noisy, clean) pairs from held-out training images
    heldout_noisy: Tensor
    heldout_clean: Tensor
    calib: list[Tensor]  # noisy training patches, in batches, for BN recalibration
    test_noisy: list[Tensor]
    test_clean: list[Tensor]
    test_sigmas: Tensor


def load_data(cfg: Config) -> _Data:
    d, t = cfg.data, cfg.train
    sigma = parse_sigma(d.sigma)
    data = load_denoise(d.name, sigma=sigma, seed=d.noise_seed, root=d.root or None)
    n = len(data.train)
    if d.heldout_images >= n:
        raise ConfigError(
            f"data.heldout_images={d.heldout_images} leaves no training image of {n}; lower it."
        )
    # evenly spaced held-out images (a fixed choice, the same for every seed)
    held = set(np.linspace(0, n - 1, d.heldout_images + 2)[1:-1].round().astype(int).tolist())
    train_imgs = [im for i, im in enumerate(data.train) if i not in held]
    held_imgs = [im for i, im in enumerate(data.train) if i in held]
    crops = random_crops(train_imgs, d.num_crops, d.crop, generator=stream_generator(t.seed, 1))
    gate_crops = random_crops(
        train_imgs,
        cfg.ddsnet.gate_crops,
        cfg.ddsnet.gate_crop,
        generator=stream_generator(t.seed, 2),
    )
    # held-out pairs and calibration inputs do not depend on the training seed
    h_clean = random_crops(
        held_imgs, d.heldout_crops, d.heldout_crop, generator=stream_generator(d.noise_seed, 3)
    )
    h_noisy, _ = _noisy(h_clean, sigma, stream_generator(d.noise_seed, 4))
    calib_clean = random_crops(
        train_imgs, d.calib_crops, d.crop, generator=stream_generator(d.noise_seed, 5)
    )
    calib_noisy, _ = _noisy(calib_clean, sigma, stream_generator(d.noise_seed, 6))
    bs = t.batch_size
    test_noisy, test_clean, test_sigmas = tile_test_images(
        data, size=d.test_tile, seed=d.noise_seed, max_images=d.max_test
    )
    transform = _train_transform(sigma, augment=d.augment)
    return _Data(
        name=f"{data.name} sigma={d.sigma}",
        source=data.source,
        in_chans=data.in_chans,
        sigma=sigma,
        train=TensorLoader(
            (crops,), batch_size=bs, shuffle=True, seed=t.seed, drop_last=True, transform=transform
        ),
        gate_train=TensorLoader(
            (gate_crops,),
            batch_size=bs,
            shuffle=True,
            seed=t.seed,
            drop_last=True,
            transform=transform,
        ),
        heldout=TensorLoader((h_noisy, h_clean), batch_size=t.eval_batch_size),
        heldout_noisy=h_noisy,
        heldout_clean=h_clean,
        calib=[calib_noisy[i : i + bs] for i in range(0, len(calib_noisy), bs)],
        test_noisy=test_noisy,
        test_clean=test_clean,
        test_sigmas=test_sigmas,
    )
