"""Natural-image background patches, sampled offline from the images bundled with scikit-image.

Larochelle et al., "An empirical evaluation of deep architectures on problems with many factors of
variation", ICML 2007, built mnist-back-image from random patches of 20 black-and-white images
downloaded from the internet, ignoring patches with low pixel variance (little texture). Those 20
images were never published, so this module uses the grey-scale natural images that ship inside the
scikit-image wheel (no download); colour images are converted with `skimage.color.rgb2gray`.

The sampler is shared by `mnist-back` / `mnist-rot-back` (`frugalcv.data.composites`), the
digit-scene segmentation set (`frugalcv.data.segmentation`) and any method that needs clutter.

Differences from the paper:
    - 17 scikit-image photographs instead of their 20 internet images (`BACKGROUND_IMAGES`).
    - Images whose longer side exceeds 512 px are area-downscaled to 512 px, so that a 28x28 patch
      covers a similar share of every image (retina is 1411 px, hubble_deep_field 1000 px).
    - Train/test pools are disjoint: pool "train" cuts patches only from the left half of every
      image and pool "test" only from the right half, so test backgrounds are never seen in
      training while both pools keep the same mix of textures. Larochelle et al. drew train and
      test patches from the same 20 images.
    - "Low pixel variance" is made concrete as a patch standard deviation below `MIN_PATCH_STD`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["BACKGROUND_IMAGES", "MIN_PATCH_STD", "sample_patches"]

# Photographs in skimage.data that load without a download (scikit-image 0.24+). Excluded on
# purpose: cat (same picture as chelsea), cell and microaneurysms (>90% of 28x28 patches fall under
# the variance threshold), and the synthetic images (checkerboard, colorwheel, logo, horse,
# binary_blobs, shepp_logan_phantom).
BACKGROUND_IMAGES: tuple[str, ...] = (
    "astronaut",
    "brick",
    "camera",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "page",
    "retina",
    "rocket",
    "stereo_motorcycle",  # left view of the stereo pair
    "text",
)

# Patches whose pixel standard deviation (intensities in [0, 1]) is below this are rejected. Our
# choice: 0.05 is about 13 grey levels of 255; it drops flat sky/wall regions (52% of camera's
# 28x28 patches, 90% of moon's) and keeps every grass and gravel patch.
MIN_PATCH_STD = 0.05

# Longer side, in pixels, that large images are downscaled to (our choice, see module docstring).
_MAX_SIDE = 512

Pool = Literal["train", "test", "all"]


@functools.lru_cache(maxsize=1)
def _grey_images() -> tuple[Tensor, ...]:
    """All background images as float32 (H, W) tensors in [0, 1], loaded once per process."""
    import skimage.data
    from skimage.color import rgb2gray

    images = []
    for name in BACKGROUND_IMAGES:
        image = getattr(skimage.data, name)()
        if isinstance(image, tuple):  # stereo_motorcycle -> (left, right, disparity)
            image = image[0]
        if image.ndim == 3:
            grey = rgb2gray(image[..., :3])  # float64 in [0, 1]
        else:
            grey = image.astype(np.float64) / np.iinfo(image.dtype).max
        t = torch.from_numpy(np.ascontiguousarray(grey, dtype=np.float32))
        longer = max(t.shape)
        if longer > _MAX_SIDE:
            size = [round(s * _MAX_SIDE / longer) for s in t.shape]
            t = F.interpolate(t[None, None], size=size, mode="area")[0, 0]
        images.append(t.clamp_(0.0, 1.0).contiguous())
    return tuple(images)


def _pool_images(pool: Pool) -> tuple[Tensor, ...]:
    """The images a pool cuts patches from: left halves ("train"), right halves ("test") or all."""
    if pool not in ("train", "test", "all"):
        raise ValueError(f"pool must be 'train', 'test' or 'all', got {pool!r}")
    images = _grey_images()
    if pool == "all":
        return images
    halves = []
    for image in images:
        mid = image.shape[1] // 2
        half = image[:, :mid] if pool == "train" else image[:, mid:]
        halves.append(half.contiguous())
    return tuple(halves)


@dataclass(frozen=True)
class _FlatPool:
    """A pool's images packed into flat buffers, for gathers without a per-image loop.

    Image i has shape (heights[i], widths[i]); pixel (r, c) sits at pixels[starts[i] + r *
    widths[i] + c]. Its summed-area tables of x and x^2, shape (H + 1, W + 1), start at
    sat_starts[i] in sat and sat_sq.
    """

    pixels: Tensor  # float32
    starts: Tensor  # int64
    heights: Tensor
    widths: Tensor
    sat: Tensor  # float64
    sat_sq: Tensor
    sat_starts: Tensor


@functools.lru_cache(maxsize=3)
def _flat_pool(pool: Pool) -> _FlatPool:
    images = _pool_images(pool)
    sats, sats_sq = [], []
    for image in images:
        x = image.numpy().astype(np.float64)
        for src, dst in ((x, sats), (x * x, sats_sq)):
            table = np.zeros((x.shape[0] + 1, x.shape[1] + 1))
            table[1:, 1:] = src.cumsum(0).cumsum(1)
            dst.append(torch.from_numpy(table.ravel()))
    sizes = torch.tensor([im.numel() for im in images])
    sat_sizes = torch.tensor([t.numel() for t in sats])
    return _FlatPool(
        pixels=torch.cat([im.flatten() for im in images]),
        starts=torch.cumsum(sizes, 0) - sizes,
        heights=torch.tensor([im.shape[0] for im in images]),
        widths=torch.tensor([im.shape[1] for im in images]),
        sat=torch.cat(sats),
        sat_sq=torch.cat(sats_sq),
        sat_starts=torch.cumsum(sat_sizes, 0) - sat_sizes,
    )


def _window_std(flat: _FlatPool, index: Tensor, rows: Tensor, cols: Tensor, size: int) -> Tensor:
    """Population standard deviation of each size x size window, from the summed-area tables."""
    w1 = flat.widths[index] + 1  # row stride of the tables
    base = flat.sat_starts[index]
    top, bottom = rows * w1, (rows + size) * w1
    corners = (base + bottom + cols + size, base + top + cols + size, base + bottom + cols)
    corners += (base + top + cols,)

    def window_sum(table: Tensor) -> Tensor:
        a, b, c, d = (table[k] for k in corners)
        return a - b - c + d

    n = size * size
    mean = window_sum(flat.sat) / n
    var = window_sum(flat.sat_sq) / n - mean * mean
    return var.clamp_min(0.0).sqrt()


def _extract(
    flat: _FlatPool, index: Tensor, rows: Tensor, cols: Tensor, size: int, *, chunk: int = 4096
) -> Tensor:
    """Cut square patches: patch k is image index[k] at [rows[k]:+size, cols[k]:+size]."""
    out = torch.empty(len(index), size, size)
    offsets = torch.arange(size)
    for start in range(0, len(index), chunk):
        sl = slice(start, start + chunk)
        width = flat.widths[index[sl]]
        corner = flat.starts[index[sl]] + rows[sl] * width + cols[sl]  # (n,)
        flat_idx = (
            corner[:, None, None]
            + offsets[None, :, None] * width[:, None, None]  # (n, size, 1): row offsets
            + offsets[None, None, :]  # (1, 1, size): column offsets
        )  # (n, size, size)
        out[sl] = flat.pixels[flat_idx]
    return out


def _sample_locations(
    num: int, size: int, *, generator: torch.Generator, pool: Pool, min_std: float
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Draw textured patches; returns (patches, image index, row, col), each of length num.

    Each candidate picks an image uniformly among those large enough, then a top-left corner
    uniformly; candidates whose population std is below min_std are dropped and redrawn.
    """
    if num < 0 or size < 1:
        raise ValueError(f"need num >= 0 and size >= 1, got num={num}, size={size}")
    flat = _flat_pool(pool)
    usable = ((flat.heights >= size) & (flat.widths >= size)).nonzero().squeeze(1)
    if len(usable) == 0:
        raise ValueError(
            f"patch size {size} is larger than every background image in pool {pool!r}; "
            "use a smaller size"
        )

    kept: list[tuple[Tensor, Tensor, Tensor]] = []
    remaining = num
    for _ in range(1000):
        if remaining <= 0:
            break
        # Oversample: about a third of 28x28 candidates fall under MIN_PATCH_STD.
        m = 2 * remaining + 16
        index = usable[torch.randint(len(usable), (m,), generator=generator)]
        u = torch.rand(m, 2, generator=generator, dtype=torch.float64)
        rows = (u[:, 0] * (flat.heights[index] - size + 1)).long()
        cols = (u[:, 1] * (flat.widths[index] - size + 1)).long()
        ok = _window_std(flat, index, rows, cols, size) >= min_std
        ok &= ok.cumsum(0) <= remaining  # keep the first `remaining` accepted, in draw order
        kept.append((index[ok], rows[ok], cols[ok]))
        remaining -= int(ok.sum())
    if remaining > 0:
        raise ValueError(
            f"could not find {num} patches of size {size} with std >= {min_std} in pool {pool!r}; "
            "lower min_std"
        )
    if kept:
        index, rows, cols = (torch.cat(parts) for parts in zip(*kept, strict=True))
    else:
        index = rows = cols = torch.empty(0, dtype=torch.long)
    return _extract(flat, index, rows, cols, size), index, rows, cols


def sample_patches(
    num: int,
    size: int,
    *,
    generator: torch.Generator,
    pool: Pool = "all",
    min_std: float = MIN_PATCH_STD,
) -> Tensor:
    """Random textured grey-scale patches cut from natural images (Larochelle et al., 2007).

    An image is chosen uniformly from `BACKGROUND_IMAGES`, then a uniformly random square window;
    windows whose pixel standard deviation is below `min_std` (little texture) are redrawn.
    The result depends only on the generator's state.

    Args:
        num: number of patches.
        size: patch side in pixels.
        generator: source of randomness (seed it for reproducible patches).
        pool: "train" (left half of every image), "test" (right half) or "all" (whole images);
            "train" and "test" never share a pixel.
        min_std: rejection threshold on the patch's population standard deviation (intensities
            in [0, 1]).

    Returns:
        (num, size, size) float32 in [0, 1].
    """
    patches, _, _, _ = _sample_locations(num, size, generator=generator, pool=pool, min_std=min_std)
    return patches
