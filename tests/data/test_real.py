"""Tests for frugalcv.data.real on tiny files written into tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from frugalcv.data import (
    VOCSegmentationDataset,
    imagefolder_datasets,
    load_imagefolder,
    load_images,
    load_voc_segmentation,
)

pytestmark = pytest.mark.unit

# ---------------------------------------------------------------------------------------------
# CIFAR: torchvision md5-checks the files, so only the error path can be tested offline


@pytest.mark.parametrize(
    ("name", "folder"), [("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python")]
)
def test_cifar_missing_or_corrupt_gives_clear_error(tmp_path, name, folder):
    with pytest.raises(FileNotFoundError, match=folder):
        load_images(name, root=tmp_path)
    (tmp_path / folder).mkdir()
    (tmp_path / folder / "test_batch").write_bytes(b"garbage")
    with pytest.raises(FileNotFoundError, match="not found or corrupted"):
        load_images(name, root=tmp_path)


def test_cifar_without_any_root_asks_for_one(monkeypatch):
    monkeypatch.delenv("FRUGALCV_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="FRUGALCV_DATA"):
        load_images("cifar10")


# ---------------------------------------------------------------------------------------------
# ImageFolder

COLOURS = {"ant": (255, 0, 0), "bee": (0, 0, 255)}


def _write_imagefolder(root: Path, *, train_per_class: int = 3, val_classes=("ant", "bee")):
    for split, classes, count in (
        ("train", COLOURS, train_per_class),
        ("val", val_classes, 2),
    ):
        for c in classes:
            folder = root / split / c
            folder.mkdir(parents=True)
            for k in range(count):
                # solid colour, odd sizes: resizing and cropping keep the colour exactly
                size = (10 + k, 14)
                ext = "png" if k % 2 == 0 else "jpg"
                Image.new("RGB", size, COLOURS[c]).save(folder / f"{k}.{ext}")


def test_load_imagefolder_in_memory(tmp_path):
    _write_imagefolder(tmp_path)
    d = load_imagefolder(tmp_path, image_size=8)
    assert d.x_train.shape == (6, 3, 8, 8) and d.x_test.shape == (4, 3, 8, 8)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert d.num_classes == 2 and d.in_chans == 3 and d.image_size == 8
    assert torch.bincount(d.y_train).tolist() == [3, 3]
    # classes are sorted folder names: ant = 0 (red), bee = 1 (blue); PNGs are exact, JPEGs close
    for x, y in ((d.x_train, d.y_train), (d.x_test, d.y_test)):
        red = x[y == 0].mean(dim=(0, 2, 3))
        blue = x[y == 1].mean(dim=(0, 2, 3))
        torch.testing.assert_close(red, torch.tensor([1.0, 0.0, 0.0]), atol=0.03, rtol=0)
        torch.testing.assert_close(blue, torch.tensor([0.0, 0.0, 1.0]), atol=0.03, rtol=0)


def test_load_imagefolder_subset_and_registry(tmp_path):
    _write_imagefolder(tmp_path, train_per_class=4)
    d = load_imagefolder(tmp_path, image_size=8, num_train=4, num_test=2, seed=1)
    assert torch.bincount(d.y_train).tolist() == [2, 2]
    assert torch.bincount(d.y_test).tolist() == [1, 1]
    with pytest.raises(ValueError, match="8 exist"):
        load_imagefolder(tmp_path, image_size=8, num_train=9)
    via_registry = load_images("imagefolder", root=tmp_path)
    assert via_registry.x_train.shape == (8, 3, 64, 64)
    assert d.source == via_registry.source == "ImageFolder --data.root"  # never the path


def test_imagefolder_from_the_variable_names_it(tmp_path, monkeypatch):
    _write_imagefolder(tmp_path)
    monkeypatch.setenv("FRUGALCV_DATA", str(tmp_path))
    d = load_imagefolder(image_size=8)
    assert d.source == "ImageFolder $FRUGALCV_DATA"
    assert d.fingerprint == load_imagefolder(tmp_path, image_size=8).fingerprint


def test_val_uses_train_class_indices(tmp_path):
    _write_imagefolder(tmp_path, val_classes=("bee",))
    d = load_imagefolder(tmp_path, image_size=8)
    assert d.y_test.tolist() == [1, 1]  # bee keeps train's index although val has one folder
    train, val = imagefolder_datasets(tmp_path, image_size=8)
    assert val.class_to_idx == train.class_to_idx == {"ant": 0, "bee": 1}
    x, y = val[0]
    assert x.shape == (3, 8, 8) and y == 1
    x, y = train[0]
    assert x.shape == (3, 8, 8) and y == 0


def test_val_class_unknown_to_train_raises(tmp_path):
    _write_imagefolder(tmp_path)
    (tmp_path / "val" / "cat").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "val" / "cat" / "0.png")
    with pytest.raises(ValueError, match="cat"):
        load_imagefolder(tmp_path, image_size=8)


def test_imagefolder_missing_gives_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train/<class>"):
        load_imagefolder(tmp_path, image_size=8)
    with pytest.raises(FileNotFoundError, match=r"val/<class>"):
        imagefolder_datasets(tmp_path, image_size=8)


# ---------------------------------------------------------------------------------------------
# Pascal VOC 2012


def _palette_png(path: Path, mask: np.ndarray) -> None:
    image = Image.new("P", (mask.shape[1], mask.shape[0]))
    image.putdata(mask.astype(np.uint8).ravel().tolist())  # palette indices = class ids
    palette = [0] * 768
    palette[3:6] = [128, 0, 0]  # class 1
    palette[765:768] = [224, 224, 192]  # 255 = ignore (VOC's border colour)
    image.putpalette(palette)
    image.save(path)


def _block_mask(values: np.ndarray) -> np.ndarray:
    """Each value becomes a 2x2 block, so nearest downsampling by 2 gives `values` back."""
    return np.kron(values, np.ones((2, 2), dtype=values.dtype))


def _write_voc(root: Path) -> dict[str, np.ndarray]:
    base = root / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (base / sub).mkdir(parents=True)
    masks = {}
    for k, key in enumerate(("2007_000001", "2007_000002", "2008_000003")):
        values = np.zeros((6, 6), dtype=np.uint8)
        values[1:4, 1:4] = 1 + 14 * k  # classes 1, 15, 29 -> keep inside 0..20 below
        values[values > 20] = 20
        values[0, :] = 255
        mask = _block_mask(values)  # (12, 12)
        _palette_png(base / "SegmentationClass" / f"{key}.png", mask)
        Image.new("RGB", (12, 12), (40 * k, 100, 200)).save(base / "JPEGImages" / f"{key}.jpg")
        masks[key] = mask
    lists = base / "ImageSets" / "Segmentation"
    (lists / "train.txt").write_text("2007_000001\n2007_000002\n")
    (lists / "val.txt").write_text("2008_000003\n")
    return masks


def test_voc_dataset_reads_palette_indices(tmp_path):
    masks = _write_voc(tmp_path)
    ds = VOCSegmentationDataset(tmp_path, image_set="train")
    assert len(ds) == 2
    x, y = ds[1]
    assert x.shape == (3, 12, 12) and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert y.dtype == torch.int64
    assert torch.equal(y, torch.from_numpy(masks["2007_000002"]).long())
    assert set(y.unique().tolist()) == {0, 15, 255}


def test_voc_resize_is_nearest_for_masks(tmp_path):
    masks = _write_voc(tmp_path)
    ds = VOCSegmentationDataset(tmp_path, image_set="val", image_size=6)
    x, y = ds[0]
    assert x.shape == (3, 6, 6) and y.shape == (6, 6)
    assert torch.equal(y, torch.from_numpy(masks["2008_000003"][::2, ::2]).long())


def test_load_voc_segmentation_in_memory(tmp_path):
    _write_voc(tmp_path)
    d = load_voc_segmentation(tmp_path, image_size=6)
    assert d.x_train.shape == (2, 3, 6, 6) and d.y_train.shape == (2, 6, 6)
    assert d.x_test.shape == (1, 3, 6, 6) and d.y_test.shape == (1, 6, 6)
    assert d.num_classes == 21 and d.ignore_index == 255
    assert d.source == "--data.root/VOCdevkit/VOC2012"
    assert set(d.y_train.unique().tolist()) == {0, 1, 15, 255}
    one = load_voc_segmentation(tmp_path, image_size=6, num_train=1, seed=0)
    assert one.x_train.shape == (1, 3, 6, 6)
    with pytest.raises(ValueError, match="2 exist"):
        load_voc_segmentation(tmp_path, image_size=6, num_train=3)


def test_voc_missing_gives_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"VOCdevkit/VOC2012/JPEGImages"):
        VOCSegmentationDataset(tmp_path)
    _write_voc(tmp_path)
    (tmp_path / "VOCdevkit/VOC2012/JPEGImages/2007_000001.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="2007_000001"):
        load_voc_segmentation(tmp_path, image_size=6)
