"""Fashion-MNIST, SVHN, STL-10 and ASIRRA read from local copies (torchvision, download=False).

Nothing is downloaded. Each loader looks under the data folder (``--data.root`` or FRUGALCV_DATA,
see :func:`frugalcv.data.images.data_root`), returns an :class:`~frugalcv.data.images.ImageData`
(float32 images in [0, 1], int64 labels, like ``load_images``) and raises FileNotFoundError naming
the files it expects. MNIST and CIFAR are in ``frugalcv.data`` already (``load_images("mnist")``,
``load_cifar``).

Layouts (torchvision's, below the data folder):
    Fashion-MNIST: <root>/FashionMNIST/raw/{train-images-idx3-ubyte, train-labels-idx1-ubyte,
                   t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte}      (uncompressed idx files)
    SVHN:          <root>/SVHN/{train_32x32.mat, test_32x32.mat}       (format 2, cropped digits)
    STL-10:        <root>/stl10_binary/{train_X.bin, train_y.bin, test_X.bin, test_y.bin}
    ASIRRA:        <root>/ASIRRA/<class>/*.jpg|png with two class folders, e.g. Cat/ and Dog/
                   (Microsoft's "PetImages" folder of the Kaggle Cats-vs-Dogs release, renamed)

torchvision's SVHN and STL10 check the md5 of their files (STL10 also of the 2.6 GB
``unlabeled_X.bin``, which classification does not need). Here only the files of the labelled
splits are required; ``verify_md5=True`` (the default) still checks them against torchvision's
published sums, ``verify_md5=False`` only checks that they exist (tests use tiny files).
ASIRRA has no official split: a seeded class-stratified ``test_fraction`` of the images is the
test set (our choice; the SGN paper does not say how it split ASIRRA).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from frugalcv.data.base import (
    ImageData,
    data_root,
    data_source,
    stratified_indices,
    stream_generator,
    take_subset,
    to_unit_float,
)
from frugalcv.data.digits import MNIST_FILES

__all__ = [
    "TORCHVISION_DATASETS",
    "load_asirra",
    "load_fashion_mnist",
    "load_stl10",
    "load_svhn",
]


def _missing_error(name: str, folder: Path, files: list[str], root: Path) -> FileNotFoundError:
    return FileNotFoundError(
        f"{name} not found under {root}: missing {', '.join(files)} in {folder}/. Put the "
        f"files there ({folder / files[0]}, ...), or point --data.root / FRUGALCV_DATA at the "
        f"folder that contains {folder.name}/"
    )


def _subsets(name, x_tr, y_tr, x_te, y_te, *, seed, num_train, num_test):
    gen = stream_generator(seed, 1)
    x_tr, y_tr = take_subset(x_tr, y_tr, num_train, generator=gen, what=f"{name} train")
    x_te, y_te = take_subset(x_te, y_te, num_test, generator=gen, what=f"{name} test")
    return x_tr, y_tr, x_te, y_te


def _uint8_to_float(x: Tensor) -> Tensor:
    """uint8 (N, C, H, W) -> float32 in [0, 1] (k / 255)."""
    return x.float().div_(255.0)


# ---------------------------------------------------------------------------------------------
# Fashion-MNIST (Xiao et al., arXiv 1708.07747): 60,000 / 10,000 28x28 grey images, 10 classes


def load_fashion_mnist(
    *,
    root: str | Path | None = None,
    seed: int = 0,
    num_train: int | None = None,
    num_test: int | None = None,
) -> ImageData:
    """Fashion-MNIST from ``<root>/FashionMNIST/raw`` as ``(N, 1, 28, 28)`` images.

    Args:
        root: data folder (else FRUGALCV_DATA).
        seed: seeds the subsets.
        num_train: class-stratified subset of the training set (None: all 60,000).
        num_test: same for the test set (None: all 10,000).
    """
    from torchvision.datasets import FashionMNIST

    path = data_root(root)
    raw = path / "FashionMNIST" / "raw"
    missing = [f for f in MNIST_FILES if not (raw / f).is_file()]
    if missing:
        raise _missing_error("Fashion-MNIST", raw, missing, path)
    try:
        train = FashionMNIST(str(path), train=True, download=False)
        test = FashionMNIST(str(path), train=False, download=False)
    except (RuntimeError, ValueError, AssertionError, OSError) as e:
        raise FileNotFoundError(f"could not read the Fashion-MNIST idx files in {raw}: {e}") from e
    x_tr, y_tr, x_te, y_te = _subsets(
        "fashion-mnist",
        train.data,
        train.targets.long(),
        test.data,
        test.targets.long(),
        seed=seed,
        num_train=num_train,
        num_test=num_test,
    )
    return ImageData(
        "fashion-mnist",
        to_unit_float(x_tr),
        y_tr,
        to_unit_float(x_te),
        y_te,
        10,
        source=data_source(root, "FashionMNIST"),
    )


# ---------------------------------------------------------------------------------------------
# SVHN (Netzer et al., NIPS-W 2011), format 2: 73,257 / 26,032 32x32 RGB digits, 10 classes


def _svhn_class(verify_md5: bool):
    from torchvision.datasets import SVHN
    from torchvision.datasets.utils import check_integrity

    class _LocalSVHN(SVHN):
        def _check_integrity(self) -> bool:
            fpath = os.path.join(self.root, self.filename)
            return check_integrity(fpath, self.file_md5 if verify_md5 else None)

    return _LocalSVHN


def load_svhn(
    *,
    root: str | Path | None = None,
    seed: int = 0,
    num_train: int | None = None,
    num_test: int | None = None,
    verify_md5: bool = True,
) -> ImageData:
    """SVHN (cropped digits, train and test; not "extra") from ``<root>/SVHN`` as (N, 3, 32, 32).

    Label 10 of the .mat files (digit 0) becomes 0, as in torchvision.

    Args:
        root: data folder (else FRUGALCV_DATA).
        seed: seeds the subsets.
        num_train: class-stratified subset of the training set (None: all 73,257).
        num_test: same for the test set (None: all 26,032).
        verify_md5: check the files against torchvision's md5 sums (module docstring).
    """
    path = data_root(root)
    folder = path / "SVHN"
    files = ["train_32x32.mat", "test_32x32.mat"]
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise _missing_error("SVHN", folder, missing, path)
    cls = _svhn_class(verify_md5)
    splits = []
    for split in ("train", "test"):
        try:
            ds = cls(str(folder), split=split, download=False)
        except RuntimeError as e:  # torchvision: "Dataset not found or corrupted"
            raise FileNotFoundError(
                f"{folder / (split + '_32x32.mat')} fails torchvision's md5 check: download it "
                "again, or pass verify_md5=False to read it anyway"
            ) from e
        splits.append((torch.from_numpy(ds.data), torch.from_numpy(ds.labels).long()))
    (x_tr, y_tr), (x_te, y_te) = splits
    x_tr, y_tr, x_te, y_te = _subsets(
        "svhn", x_tr, y_tr, x_te, y_te, seed=seed, num_train=num_train, num_test=num_test
    )
    return ImageData(
        "svhn",
        _uint8_to_float(x_tr),
        y_tr,
        _uint8_to_float(x_te),
        y_te,
        10,
        source=data_source(root, "SVHN"),
    )


# ---------------------------------------------------------------------------------------------
# STL-10 (Coates et al., AISTATS 2011): 5,000 / 8,000 labelled 96x96 RGB images, 10 classes

_STL10_FILES = ["train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin"]


def _stl10_class(verify_md5: bool):
    from torchvision.datasets import STL10
    from torchvision.datasets.utils import check_integrity

    class _LocalSTL10(STL10):
        def _check_integrity(self) -> bool:
            labelled = [fm for fm in self.train_list + self.test_list if fm[0] in _STL10_FILES]
            return all(
                check_integrity(
                    os.path.join(self.root, self.base_folder, name), md5 if verify_md5 else None
                )
                for name, md5 in labelled
            )

    return _LocalSTL10


def _resize(x: Tensor, image_size: int | None) -> Tensor:
    if image_size is None or image_size == x.shape[-1]:
        return x
    x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True)
    return x.clamp_(0, 1)


def load_stl10(
    *,
    root: str | Path | None = None,
    seed: int = 0,
    num_train: int | None = None,
    num_test: int | None = None,
    image_size: int | None = None,
    verify_md5: bool = True,
) -> ImageData:
    """STL-10's labelled splits from ``<root>/stl10_binary`` as ``(N, 3, 96, 96)`` images.

    The unlabelled split is not read. Labels 1-10 of the files become 0-9, as in torchvision.

    Args:
        root: data folder (else FRUGALCV_DATA).
        seed: seeds the subsets.
        num_train: class-stratified subset of the training set (None: all 5,000).
        num_test: same for the test set (None: all 8,000).
        image_size: resize to ``image_size`` square (bilinear, antialiased); None keeps 96.
        verify_md5: check the four files against torchvision's md5 sums (module docstring).
    """
    path = data_root(root)
    folder = path / "stl10_binary"
    missing = [f for f in _STL10_FILES if not (folder / f).is_file()]
    if missing:
        raise _missing_error("STL-10", folder, missing, path)
    cls = _stl10_class(verify_md5)
    splits = []
    for split in ("train", "test"):
        try:
            ds = cls(str(path), split=split, download=False)
        except RuntimeError as e:
            raise FileNotFoundError(
                f"the STL-10 files in {folder} fail torchvision's md5 check: download them "
                "again, or pass verify_md5=False to read them anyway"
            ) from e
        except ValueError as e:  # np.reshape of a truncated file
            raise FileNotFoundError(f"could not read the STL-10 files in {folder}: {e}") from e
        splits.append((torch.from_numpy(ds.data), torch.from_numpy(ds.labels).long()))
    (x_tr, y_tr), (x_te, y_te) = splits
    x_tr, y_tr, x_te, y_te = _subsets(
        "stl10", x_tr, y_tr, x_te, y_te, seed=seed, num_train=num_train, num_test=num_test
    )
    return ImageData(
        "stl10",
        _resize(_uint8_to_float(x_tr), image_size),
        y_tr,
        _resize(_uint8_to_float(x_te), image_size),
        y_te,
        10,
        source=data_source(root, "stl10_binary"),
    )


# ---------------------------------------------------------------------------------------------
# ASIRRA (Elson et al., CCS 2007): cat and dog photos; as an ImageFolder


def _readable(path: str) -> bool:
    """Skip empty files (the Kaggle PetImages release holds a few) before ImageFolder lists them."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension

    return has_file_allowed_extension(path, IMG_EXTENSIONS) and os.path.getsize(path) > 0


def load_asirra(
    *,
    root: str | Path | None = None,
    seed: int = 0,
    num_train: int | None = None,
    num_test: int | None = None,
    image_size: int = 64,
    test_fraction: float = 0.2,
) -> ImageData:
    """ASIRRA cats vs dogs from ``<root>/ASIRRA/<class>/`` as ``(N, 3, S, S)`` images.

    Each image's shorter side is resized to ``image_size`` and centre-cropped to a square (as
    :func:`frugalcv.data.real.load_imagefolder`). Files PIL cannot decode are skipped with a
    warning that names them. Only the chosen subset is decoded.

    Args:
        root: data folder (else FRUGALCV_DATA).
        seed: seeds the train/test split and the subsets.
        num_train: class-stratified subset of the training part (None: all of it).
        num_test: same for the test part.
        image_size: output side in pixels.
        test_fraction: share of the images (stratified by class) held out as the test set.
    """
    from torchvision import transforms
    from torchvision.datasets import ImageFolder

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    path = data_root(root)
    folder = path / "ASIRRA"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"ASIRRA not found: expected {folder}/<class>/*.jpg with two class folders (e.g. "
            f"Cat/ and Dog/, the PetImages folder of the Kaggle Cats-vs-Dogs release), or point "
            "--data.root / FRUGALCV_DATA at the folder that contains ASIRRA/"
        )
    tf = transforms.Compose(
        [transforms.Resize(image_size), transforms.CenterCrop(image_size), transforms.ToTensor()]
    )
    try:
        ds = ImageFolder(str(folder), transform=tf, is_valid_file=_readable)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{folder} holds no class folders with images: {e}") from e
    if len(ds.classes) != 2:
        raise ValueError(
            f"ASIRRA needs exactly two class folders (cats and dogs) in {folder}, "
            f"found {ds.classes}"
        )
    targets = torch.tensor(ds.targets, dtype=torch.long)
    gen = stream_generator(seed, 0)
    n_test = max(1, round(test_fraction * len(targets)))
    if n_test >= len(targets):
        raise ValueError(f"{folder} holds {len(targets)} images: too few to split")
    test_idx = stratified_indices(targets, n_test, generator=gen)
    is_test = torch.zeros(len(targets), dtype=torch.bool)
    is_test[test_idx] = True
    train_idx = (~is_test).nonzero().squeeze(1)
    train_idx = train_idx[torch.randperm(len(train_idx), generator=gen)]
    gen = stream_generator(seed, 1)
    parts = []
    for idx, num, what in ((train_idx, num_train, "train"), (test_idx, num_test, "test")):
        if num is not None:
            if not 1 <= num <= len(idx):
                raise ValueError(
                    f"asirra {what}: asked for {num} images but {len(idx)} exist; pass a number "
                    f"in [1, {len(idx)}]"
                )
            idx = idx[stratified_indices(targets[idx], num, generator=gen)]
        parts.append(_decode(ds, idx))
    (x_tr, y_tr), (x_te, y_te) = parts
    return ImageData("asirra", x_tr, y_tr, x_te, y_te, 2, source=data_source(root, "ASIRRA"))


def _decode(ds, indices: Tensor) -> tuple[Tensor, Tensor]:
    xs, ys, bad = [], [], []
    for i in indices.tolist():
        try:
            x, y = ds[i]
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError):
            bad.append(ds.samples[i][0])
            continue
        xs.append(x)
        ys.append(y)
    if bad:
        warnings.warn(
            f"skipped {len(bad)} unreadable images: {bad[:5]}", RuntimeWarning, stacklevel=3
        )
    if not xs:
        raise FileNotFoundError(f"no readable images among {len(indices)} chosen files")
    return torch.stack(xs), torch.tensor(ys, dtype=torch.long)


# Callables with the signature of frugalcv.data.IMAGE_DATASETS entries, ready to be registered.
TORCHVISION_DATASETS: dict[str, Callable[..., ImageData]] = {
    "fashion-mnist": load_fashion_mnist,
    "svhn": load_svhn,
    "stl10": load_stl10,
    "asirra": load_asirra,
}
