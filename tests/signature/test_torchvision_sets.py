"""Fashion-MNIST, SVHN, STL-10 and ASIRRA loaders on tiny files written in the test's layout."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
from PIL import Image

from frugalcv.data.images import ImageData
from frugalcv.data.torchvision_sets import (
    TORCHVISION_DATASETS,
    load_asirra,
    load_fashion_mnist,
    load_stl10,
    load_svhn,
)

pytestmark = pytest.mark.unit


def _labels(n: int) -> np.ndarray:
    return np.arange(n) % 10


def _write_idx(path, array: np.ndarray) -> None:
    # idx format: magic (0, 0, type 0x08 = uint8, number of dims), sizes big-endian, then data
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def _fashion(root, n_train=20, n_test=10):
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", x)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", _labels(n))
        images[prefix] = x
    return images


def test_fashion_mnist_reads_idx_files(tmp_path):
    images = _fashion(tmp_path)
    data = load_fashion_mnist(root=tmp_path)
    assert isinstance(data, ImageData) and data.name == "fashion-mnist"
    assert data.x_train.shape == (20, 1, 28, 28) and data.x_test.shape == (10, 1, 28, 28)
    assert data.in_chans == 1 and data.num_classes == 10
    torch.testing.assert_close(data.x_train[:, 0], torch.from_numpy(images["train"]) / 255.0)
    assert data.y_test.tolist() == _labels(10).tolist()
    sub = load_fashion_mnist(root=tmp_path, num_train=10, seed=1)
    assert sorted(sub.y_train.tolist()) == list(range(10))  # stratified: one per class


def test_fashion_mnist_missing_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"FashionMNIST[/\\]raw"):
        load_fashion_mnist(root=tmp_path)


def _svhn(root, n_train=20, n_test=10):
    from scipy.io import savemat

    folder = root / "SVHN"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)  # (N, C, H, W)
        y = _labels(n)
        y_mat = np.where(y == 0, 10, y).reshape(-1, 1).astype(np.uint8)  # SVHN stores 0 as 10
        savemat(folder / f"{split}_32x32.mat", {"X": x.transpose(2, 3, 1, 0), "y": y_mat})
        out[split] = (x, y)
    return out


def test_svhn_reads_mat_files_and_maps_label_10_to_0(tmp_path):
    ref = _svhn(tmp_path)
    data = load_svhn(root=tmp_path, verify_md5=False)
    assert data.x_train.shape == (20, 3, 32, 32) and data.name == "svhn"
    torch.testing.assert_close(data.x_test, torch.from_numpy(ref["test"][0]) / 255.0)
    assert data.y_train.tolist() == ref["train"][1].tolist()
    assert data.y_train.min() == 0 and data.y_train.max() == 9


def test_svhn_md5_and_missing_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"SVHN.*train_32x32.mat"):
        load_svhn(root=tmp_path)
    _svhn(tmp_path)
    with pytest.raises(FileNotFoundError, match="md5"):
        load_svhn(root=tmp_path, verify_md5=True)


def _stl10(root, n_train=10, n_test=20):
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(2)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8)
        # the binary files store each channel column-major (Fortran order)
        (folder / f"{split}_X.bin").write_bytes(x.transpose(0, 1, 3, 2).tobytes())
        (folder / f"{split}_y.bin").write_bytes((_labels(n) + 1).astype(np.uint8).tobytes())
        out[split] = x
    return out


def test_stl10_reads_binary_layout_without_the_unlabelled_file(tmp_path):
    ref = _stl10(tmp_path)
    data = load_stl10(root=tmp_path, verify_md5=False)
    assert data.x_train.shape == (10, 3, 96, 96) and data.x_test.shape == (20, 3, 96, 96)
    torch.testing.assert_close(data.x_train, torch.from_numpy(ref["train"]) / 255.0)
    assert data.y_test.tolist() == _labels(20).tolist()  # 1..10 -> 0..9
    small = load_stl10(root=tmp_path, verify_md5=False, image_size=32, num_test=10)
    assert small.x_test.shape == (10, 3, 32, 32)
    assert 0.0 <= small.x_test.min() and small.x_test.max() <= 1.0


def test_stl10_md5_and_missing_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"stl10_binary.*train_X.bin"):
        load_stl10(root=tmp_path)
    _stl10(tmp_path)
    with pytest.raises(FileNotFoundError, match="md5"):
        load_stl10(root=tmp_path)


def _asirra(root, per_class=10):
    rng = np.random.default_rng(3)
    for cls in ("Cat", "Dog"):
        folder = root / "ASIRRA" / cls
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (24, 30, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
    (root / "ASIRRA" / "Cat" / "empty.jpg").write_bytes(b"")  # as in the Kaggle release


def test_asirra_splits_an_image_folder(tmp_path):
    _asirra(tmp_path)
    data = load_asirra(root=tmp_path, image_size=16, test_fraction=0.2)
    assert data.num_classes == 2 and data.name == "asirra"
    assert data.x_train.shape == (16, 3, 16, 16) and data.x_test.shape == (4, 3, 16, 16)
    assert data.y_test.bincount().tolist() == [2, 2]  # stratified
    again = load_asirra(root=tmp_path, image_size=16, seed=0)
    torch.testing.assert_close(again.x_test, data.x_test)  # seeded
    sub = load_asirra(root=tmp_path, image_size=16, num_train=4)
    assert sub.y_train.bincount().tolist() == [2, 2]


def test_asirra_skips_undecodable_files_with_a_warning(tmp_path):
    _asirra(tmp_path, per_class=4)
    (tmp_path / "ASIRRA" / "Dog" / "bad.jpg").write_bytes(b"not an image")
    with pytest.warns(RuntimeWarning, match="bad.jpg"):
        data = load_asirra(root=tmp_path, image_size=8, test_fraction=0.5)
    assert len(data.y_train) + len(data.y_test) == 8


def test_asirra_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="ASIRRA"):
        load_asirra(root=tmp_path)
    _asirra(tmp_path, per_class=2)
    (tmp_path / "ASIRRA" / "Bird").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "ASIRRA" / "Bird" / "b.png")
    with pytest.raises(ValueError, match="exactly two class folders"):
        load_asirra(root=tmp_path)
    with pytest.raises(ValueError, match="test_fraction"):
        load_asirra(root=tmp_path, test_fraction=1.0)


def test_registry_callables_take_the_load_images_arguments(tmp_path):
    _fashion(tmp_path)
    data = TORCHVISION_DATASETS["fashion-mnist"](root=tmp_path, seed=0, num_train=None, num_test=5)
    assert len(data.y_test) == 5
    assert set(TORCHVISION_DATASETS) == {"fashion-mnist", "svhn", "stl10", "asirra"}


def test_source_names_the_folder_without_a_machine_path(tmp_path):
    _svhn(tmp_path)
    data = load_svhn(root=tmp_path, verify_md5=False)
    assert data.source == "--data.root/SVHN" and str(tmp_path) not in data.source
