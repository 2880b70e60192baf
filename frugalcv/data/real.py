"""Readers for real data sets kept on disk: CIFAR-10/100, ImageNet-layout folders, Pascal VOC 2012.

Nothing is downloaded. Each reader looks under the data folder (`--data.root` or FRUGALCV_DATA,
see `frugalcv.data.base.data_root`) and raises FileNotFoundError naming the layout it expects.

Layouts:
    CIFAR-10:    <root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}
    CIFAR-100:   <root>/cifar-100-python/{train, test, meta}
    ImageFolder: <root>/train/<class>/*.jpg|png and <root>/val/<class>/*.jpg|png
    VOC 2012:    <root>/VOCdevkit/VOC2012/JPEGImages/<id>.jpg,
                 <root>/VOCdevkit/VOC2012/SegmentationClass/<id>.png (palette PNG, 255 = ignore),
                 <root>/VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val}.txt
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import transforms
from torchvision.datasets import ImageFolder

from frugalcv.data.base import (
    ImageData,
    SegData,
    data_root,
    data_source,
    stratified_indices,
    stream_generator,
    take_subset,
)

__all__ = [
    "VOC_CLASSES",
    "VOCSegmentationDataset",
    "imagefolder_datasets",
    "load_cifar",
    "load_imagefolder",
    "load_voc_segmentation",
]

_CIFAR = {
    # name: (torchvision class name, folder inside root, number of classes)
    "cifar10": ("CIFAR10", "cifar-10-batches-py", 10),
    "cifar100": ("CIFAR100", "cifar-100-python", 100),
}


def load_cifar(
    name: str,
    *,
    root: str | Path | None = None,
    seed: int = 0,
    num_train: int | None = None,
    num_test: int | None = None,
) -> ImageData:
    """CIFAR-10 or CIFAR-100 (50,000 train / 10,000 test, 3x32x32) as in-memory tensors.

    Args:
        name: "cifar10" or "cifar100".
        root: folder that contains cifar-10-batches-py or cifar-100-python (else FRUGALCV_DATA).
        seed: seeds the subsets.
        num_train: class-stratified subset of the training set (None: all).
        num_test: same for the test set.
    """
    import torchvision.datasets

    if name not in _CIFAR:
        raise ValueError(f"name must be one of {sorted(_CIFAR)}, got {name!r}")
    cls_name, folder, num_classes = _CIFAR[name]
    path = data_root(root)
    splits = []
    for train in (True, False):
        try:
            ds = getattr(torchvision.datasets, cls_name)(str(path), train=train, download=False)
        except RuntimeError as e:  # torchvision: "Dataset not found or corrupted"
            raise FileNotFoundError(
                f"{name} not found or corrupted under {path}: place the extracted python version "
                f"of the data set as {path / folder}/ (torchvision checks the md5 of every file)"
            ) from e
        x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # (N, 3, 32, 32) uint8
        splits.append((x, torch.tensor(ds.targets, dtype=torch.long)))
    gen = stream_generator(seed, 1)
    (x_tr, y_tr), (x_te, y_te) = splits
    x_tr, y_tr = take_subset(x_tr, y_tr, num_train, generator=gen, what=f"{name} train")
    x_te, y_te = take_subset(x_te, y_te, num_test, generator=gen, what=f"{name} test")
    return ImageData(
        name,
        x_tr.float().div_(255.0),
        y_tr,
        x_te.float().div_(255.0),
        y_te,
        num_classes,
        source=data_source(root, folder),
    )


# ---------------------------------------------------------------------------------------------
# ImageNet-layout folders


class _FixedClassImageFolder(ImageFolder):
    """ImageFolder whose class-to-index map is given (the val split must use train's indices)."""

    def __init__(
        self, root: str, *, class_to_idx: dict[str, int], transform: Callable | None = None
    ) -> None:
        self._given_class_to_idx = class_to_idx
        super().__init__(root, transform=transform, allow_empty=True)

    def find_classes(self, directory: str | Path) -> tuple[list[str], dict[str, int]]:
        present = sorted(e.name for e in Path(directory).iterdir() if e.is_dir())
        unknown = [c for c in present if c not in self._given_class_to_idx]
        if unknown:
            raise ValueError(
                f"{directory} has class folders that train/ lacks: {unknown[:5]}; "
                "train/ and val/ must use the same class names"
            )
        return list(self._given_class_to_idx), dict(self._given_class_to_idx)


def _imagefolder_paths(root: str | Path | None) -> tuple[Path, Path]:
    path = data_root(root)
    train, val = path / "train", path / "val"
    if not train.is_dir() or not val.is_dir():
        raise FileNotFoundError(
            f"no ImageNet-layout folder at {path}: expected {train}/<class>/*.jpg|png and "
            f"{val}/<class>/*.jpg|png"
        )
    return train, val


def _eval_transform(image_size: int) -> transforms.Compose:
    """Shorter side to image_size, centre crop to a square, to a float tensor in [0, 1]."""
    return transforms.Compose(
        [transforms.Resize(image_size), transforms.CenterCrop(image_size), transforms.ToTensor()]
    )


def imagefolder_datasets(
    root: str | Path | None = None,
    *,
    image_size: int,
    train_transform: Callable | None = None,
) -> tuple[ImageFolder, ImageFolder]:
    """Lazy torchvision datasets for a large ImageNet-layout folder.

    Args:
        root: folder with train/<class>/ and val/<class>/ (else FRUGALCV_DATA).
        image_size: output side in pixels.
        train_transform: PIL -> tensor transform for train images; default random-resized crop
            to image_size and horizontal flip (the usual ImageNet recipe).

    Returns:
        (train, val) datasets of ((3, S, S) float tensor, label); val is resized so its shorter
        side is image_size / 0.875 and centre-cropped to image_size (the usual ImageNet eval
        ratio), and uses train's class indices.
    """
    train_dir, val_dir = _imagefolder_paths(root)
    if train_transform is None:
        train_transform = transforms.Compose(
            [
                transforms.RandomResizedCrop(image_size),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
            ]
        )
    train = ImageFolder(str(train_dir), transform=train_transform)
    val_transform = transforms.Compose(
        [
            transforms.Resize(round(image_size / 0.875)),
            transforms.CenterCrop(image_size),
            transforms.ToTensor(),
        ]
    )
    val = _FixedClassImageFolder(
        str(val_dir), class_to_idx=train.class_to_idx, transform=val_transform
    )
    return train, val


def _stack(ds: ImageFolder, indices: Tensor) -> tuple[Tensor, Tensor]:
    xs = [ds[i][0] for i in indices.tolist()]
    ys = torch.tensor([ds.targets[i] for i in indices.tolist()], dtype=torch.long)
    return torch.stack(xs), ys


def load_imagefolder(
    root: str | Path | None = None,
    *,
    image_size: int,
    seed: int = 0,
    num_train: int | None = None,
    num_test: int | None = None,
    name: str = "imagefolder",
) -> ImageData:
    """A small ImageNet-layout folder read into memory, images resized to image_size x image_size.

    Each image's shorter side is resized to image_size and centre-cropped to a square. Use
    `imagefolder_datasets` for sets that do not fit in memory.

    Args:
        root: folder with train/<class>/ and val/<class>/ (else FRUGALCV_DATA).
        image_size: output side in pixels.
        seed: seeds the subsets.
        num_train: class-stratified subset of train/ (None: all images).
        num_test: same for val/.
        name: stored in ImageData.name.
    """
    train_dir, val_dir = _imagefolder_paths(root)
    tf = _eval_transform(image_size)
    train = ImageFolder(str(train_dir), transform=tf)
    val = _FixedClassImageFolder(str(val_dir), class_to_idx=train.class_to_idx, transform=tf)
    if len(val) == 0:
        raise FileNotFoundError(f"{val_dir} holds no images; expected {val_dir}/<class>/*.jpg|png")
    gen = stream_generator(seed, 1)
    parts = []
    for ds, num, what in ((train, num_train, "train"), (val, num_test, "val")):
        targets = torch.tensor(ds.targets, dtype=torch.long)
        if num is None:
            idx = torch.arange(len(targets))
        elif not 1 <= num <= len(targets):
            raise ValueError(
                f"{name} {what}: asked for {num} images but {len(targets)} exist; "
                f"pass a number in [1, {len(targets)}]"
            )
        else:
            idx = stratified_indices(targets, num, generator=gen)
        parts.append(_stack(ds, idx))
    (x_tr, y_tr), (x_te, y_te) = parts
    return ImageData(
        name, x_tr, y_tr, x_te, y_te, len(train.classes), source=f"ImageFolder {data_source(root)}"
    )


# ---------------------------------------------------------------------------------------------
# Pascal VOC 2012 segmentation

# Everingham et al., "The PASCAL Visual Object Classes Challenge", IJCV 2010: 20 classes +
# background; label 255 marks object borders and difficult regions that are not scored.
VOC_CLASSES: tuple[str, ...] = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
_VOC_LAYOUT = (
    "<root>/VOCdevkit/VOC2012/JPEGImages/<id>.jpg, "
    "<root>/VOCdevkit/VOC2012/SegmentationClass/<id>.png and "
    "<root>/VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val}.txt"
)


class VOCSegmentationDataset(Dataset):
    """Pascal VOC 2012 semantic segmentation read from the standard VOCdevkit layout.

    Items are (image, mask): image (3, H, W) float32 in [0, 1], mask (H, W) int64 with values
    0..20 and 255 = ignore. With image_size set, both are resized to image_size x image_size
    (bilinear for the image, nearest for the mask, so no label is ever interpolated).

    Args:
        root: folder that contains VOCdevkit/ (else FRUGALCV_DATA).
        image_set: "train", "val" or another list in ImageSets/Segmentation.
        image_size: output side in pixels, or None to keep each image's size.
    """

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        image_set: str = "train",
        image_size: int | None = None,
    ) -> None:
        base = data_root(root) / "VOCdevkit" / "VOC2012"
        list_file = base / "ImageSets" / "Segmentation" / f"{image_set}.txt"
        if not list_file.is_file():
            raise FileNotFoundError(
                f"Pascal VOC 2012 not found: {list_file} is missing. Expected layout: {_VOC_LAYOUT}"
            )
        self.ids = [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
        self.image_dir = base / "JPEGImages"
        self.mask_dir = base / "SegmentationClass"
        missing = [
            i
            for i in self.ids
            if not (self.image_dir / f"{i}.jpg").is_file()
            or not (self.mask_dir / f"{i}.png").is_file()
        ]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} ids listed in {list_file} have no image or mask (first: "
                f"{missing[0]}). Expected layout: {_VOC_LAYOUT}"
            )
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        key = self.ids[index]
        with Image.open(self.image_dir / f"{key}.jpg") as f:
            image = f.convert("RGB")
        with Image.open(self.mask_dir / f"{key}.png") as f:
            mask = f.copy()  # mode "P": the array holds palette indices, i.e. class ids
        if self.image_size is not None:
            size = (self.image_size, self.image_size)
            image = image.resize(size, Image.BILINEAR)
            mask = mask.resize(size, Image.NEAREST)
        x = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)
        y = torch.from_numpy(np.asarray(mask, dtype=np.uint8).astype(np.int64))
        return x.float().div_(255.0), y


def load_voc_segmentation(
    root: str | Path | None = None,
    *,
    image_size: int,
    seed: int = 0,
    num_train: int | None = None,
    num_test: int | None = None,
) -> SegData:
    """Pascal VOC 2012 segmentation (train.txt -> train, val.txt -> test) resized into memory.

    Args:
        root: folder that contains VOCdevkit/ (else FRUGALCV_DATA).
        image_size: side of the square output, in pixels (images bilinear, masks nearest).
        seed: seeds the subsets.
        num_train: random subset of train.txt (None: all 1,464 images).
        num_test: random subset of val.txt (None: all 1,449 images).

    Returns:
        SegData with 21 classes and ignore_index 255.
    """
    parts = []
    gen = stream_generator(seed, 1)
    for image_set, num in (("train", num_train), ("val", num_test)):
        ds = VOCSegmentationDataset(root, image_set=image_set, image_size=image_size)
        if num is None:
            idx = range(len(ds))
        elif not 1 <= num <= len(ds):
            raise ValueError(
                f"voc {image_set}: asked for {num} images but {len(ds)} exist; "
                f"pass a number in [1, {len(ds)}]"
            )
        else:
            idx = torch.randperm(len(ds), generator=gen)[:num].tolist()
        items = [ds[i] for i in idx]
        parts.append((torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])))
    (x_tr, y_tr), (x_te, y_te) = parts
    return SegData(
        "voc2012",
        x_tr,
        y_tr,
        x_te,
        y_te,
        num_classes=len(VOC_CLASSES),
        source=data_source(root, "VOCdevkit", "VOC2012"),
    )
