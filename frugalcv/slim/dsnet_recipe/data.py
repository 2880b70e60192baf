"""Data of the ``dsnet`` recipe: train and test loaders, and two augmented views for MvCo."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from frugalcv.core.loader import DatasetLoader, TensorLoader, random_crop_flip
from frugalcv.slim.dsnet_recipe.config import Config

__all__ = ["load_data"]


def _two_views(transform: Callable) -> Callable:
    """A batch transform giving two independently augmented views: ``(x, y) -> (x1, x2, y)``."""

    def apply(batch: tuple[Tensor, ...], g: torch.Generator) -> tuple[Tensor, ...]:
        x1 = transform(batch, g)[0]
        x2 = transform(batch, g)[0]  # the generator has moved on: another crop
        return (x1, x2, *batch[1:])

    return apply


class _TwoViewDataset(torch.utils.data.Dataset):
    """``dataset[i]`` drawn twice (two random transforms): ``(x1, x2, y)``."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, int]:
        x1, y = self.dataset[i]
        x2, _ = self.dataset[i]
        return x1, x2, y


@dataclass
class _Data:
    """Loaders and facts of one data set: train (plain and, for MvCo, two-view), test."""

    name: str
    source: str
    num_classes: int
    input_shape: tuple[int, int, int]
    train: Any
    train_views: Any
    test: Any


def load_arrays(cfg: Config) -> Any:
    """The in-memory train and test tensors of ``cfg.data`` (resized; no augmentation), as
    :func:`frugalcv.data.load_images` returns them. Not for ``imagefolder`` (streamed)."""
    from frugalcv.data import load_images

    d = cfg.data
    if d.name == "imagefolder":
        raise ValueError("imagefolder is streamed, not loaded into memory: use load_data")
    data = load_images(
        d.name,
        root=d.root or None,
        seed=cfg.train.seed,
        num_train=d.num_train or None,
        num_test=d.num_test or None,
    )
    if d.resize:
        data = dataclasses.replace(
            data,
            x_train=F.interpolate(data.x_train, size=(d.resize, d.resize), mode="area"),
            x_test=F.interpolate(data.x_test, size=(d.resize, d.resize), mode="area"),
        )
    return data


def load_data(cfg: Config) -> _Data:
    """In-memory sets through :func:`frugalcv.data.load_images`; ``imagefolder`` streamed."""
    d, t = cfg.data, cfg.train
    two = cfg.dsnet.mvco_weight > 0
    if d.name == "imagefolder":
        from frugalcv.data import imagefolder_datasets

        train_ds, val_ds = imagefolder_datasets(d.root or None, image_size=d.image_size)

        def loader(ds: Any, shuffle: bool, bs: int) -> DatasetLoader:
            return DatasetLoader(
                ds,
                batch_size=bs,
                shuffle=shuffle,
                seed=t.seed,
                drop_last=shuffle,
                num_workers=d.num_workers,
            )

        return _Data(
            name="imagefolder",
            source="ImageFolder",
            num_classes=len(train_ds.classes),
            input_shape=(3, d.image_size, d.image_size),
            train=loader(train_ds, True, t.batch_size),
            train_views=loader(_TwoViewDataset(train_ds), True, t.batch_size) if two else None,
            test=loader(val_ds, False, t.eval_batch_size),
        )
    data = load_arrays(cfg)
    transform = None
    if d.augment or d.flip:
        pad = max(1, data.x_train.shape[-1] // 8) if d.augment else 0
        transform = random_crop_flip(pad=pad, flip=d.flip)

    def train_loader(tf: Callable | None) -> TensorLoader:
        return TensorLoader(
            (data.x_train, data.y_train),
            batch_size=t.batch_size,
            shuffle=True,
            seed=t.seed,
            drop_last=True,
            transform=tf,
        )

    views = None
    if two:
        views = train_loader(_two_views(transform or (lambda b, g: b)))
    return _Data(
        name=data.name,
        source=data.source,
        num_classes=data.num_classes,
        input_shape=tuple(data.x_train.shape[1:]),
        train=train_loader(transform),
        train_views=views,
        test=TensorLoader((data.x_test, data.y_test), batch_size=t.eval_batch_size),
    )
