"""Tests for frugalcv.data.base: containers, folders, source names, fingerprints, splits."""

from __future__ import annotations

import hashlib

import pytest
import torch

from frugalcv.data import (
    ImageData,
    SegData,
    base,
    cache_dir,
    data_root,
    data_source,
    load_images,
    stratified_indices,
    tensor_fingerprint,
)

pytestmark = pytest.mark.unit

# ---------------------------------------------------------------------------------------------
# folders and names


def test_data_root_argument_env_and_error(tmp_path, monkeypatch):
    monkeypatch.setenv("FRUGALCV_DATA", str(tmp_path / "env"))
    assert data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data_root() == tmp_path / "env"
    monkeypatch.delenv("FRUGALCV_DATA")
    assert data_root(required=False) is None
    with pytest.raises(FileNotFoundError, match=r"--data\.root.*FRUGALCV_DATA"):
        data_root()


def test_cache_dir_from_env_is_created(tmp_path, monkeypatch):
    target = tmp_path / "a" / "b"
    monkeypatch.setenv("FRUGALCV_CACHE", str(target))
    assert cache_dir() == target
    assert target.is_dir()


def test_data_source_names_how_the_root_was_given_never_the_path(tmp_path):
    assert data_source(None, "MNIST") == "$FRUGALCV_DATA/MNIST"
    assert data_source(tmp_path, "MNIST") == "--data.root/MNIST"
    assert data_source(str(tmp_path), "VOCdevkit", "VOC2012") == "--data.root/VOCdevkit/VOC2012"
    assert data_source(None) == "$FRUGALCV_DATA"
    assert str(tmp_path) not in data_source(tmp_path, "MNIST")


# ---------------------------------------------------------------------------------------------
# fingerprints


def test_tensor_fingerprint_hand_derived():
    # dtype and shape as text, then the raw bytes, per tensor in order; first 16 hex digits
    a = torch.tensor([1, 2], dtype=torch.uint8)
    b = torch.tensor([-1], dtype=torch.int64)  # little-endian two's complement: eight 0xff
    expected = hashlib.sha256(b"torch.uint8(2,)\x01\x02torch.int64(1,)" + b"\xff" * 8)
    assert tensor_fingerprint(a, b) == expected.hexdigest()[:16]


def test_tensor_fingerprint_sees_every_bit_dtype_and_shape():
    x = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    fp = tensor_fingerprint(x)
    assert fp == tensor_fingerprint(x.clone())
    assert fp == tensor_fingerprint(x.t().contiguous().t())  # layout does not matter
    flipped = x.clone()
    flipped.view(torch.int32)[2, 3] ^= 1  # lowest mantissa bit of one element
    assert tensor_fingerprint(flipped) != fp
    assert tensor_fingerprint(x.reshape(4, 3)) != fp  # same bytes, other shape
    assert tensor_fingerprint(x.view(torch.int32)) != fp  # same bytes, other dtype
    assert tensor_fingerprint(x[:0]) != tensor_fingerprint(x[:0].reshape(0, 2, 2))


def test_image_data_fingerprint_is_the_four_tensors_only():
    d = load_images("digits", seed=0, num_train=50, num_test=20)
    assert d.fingerprint == tensor_fingerprint(d.x_train, d.y_train, d.x_test, d.y_test)
    assert len(d.fingerprint) == base.FINGERPRINT_CHARS
    assert load_images("digits", seed=0, num_train=50, num_test=20).fingerprint == d.fingerprint
    assert load_images("digits", seed=1, num_train=50, num_test=20).fingerprint != d.fingerprint
    renamed = ImageData("other", d.x_train, d.y_train, d.x_test, d.y_test, 10, source="x")
    assert renamed.fingerprint == d.fingerprint


def test_seg_data_source_and_fingerprint():
    x, y = torch.zeros(2, 1, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long)
    s = SegData("s", x, y, x[:1], y[:1], num_classes=2, source="here")
    assert s.source == "here" and s.ignore_index == 255
    assert s.fingerprint == tensor_fingerprint(x, y, x[:1], y[:1])
    with pytest.raises(ValueError, match=r"y_train \(N, H, W\)"):
        SegData("s", x, y[:, 0], x, y, num_classes=2)


# ---------------------------------------------------------------------------------------------
# stratified subsets


def test_stratified_indices_hand_derived_quota():
    # counts [6, 3, 1], num 5: quotas 3, 1.5, 0.5 -> floors [3, 1, 0]; the one leftover slot
    # goes to the larger fraction, tied between classes 1 and 2, so to class 1: [3, 2, 0].
    y = torch.tensor([0] * 6 + [1] * 3 + [2])
    idx = stratified_indices(y, 5, generator=torch.Generator().manual_seed(0))
    assert idx.unique().numel() == 5
    assert torch.bincount(y[idx], minlength=3).tolist() == [3, 2, 0]


def test_stratified_indices_raises_when_too_many():
    with pytest.raises(ValueError, match="only 3 exist"):
        stratified_indices(torch.tensor([0, 1, 1]), 4, generator=torch.Generator())


def test_stratified_split_partitions_and_streams_are_independent():
    y = torch.arange(20) % 4
    x = torch.arange(20)
    x_tr, y_tr, x_te, y_te = base.stratified_split(x, y, 8, generator=base.stream_generator(0, 0))
    assert sorted(torch.cat([x_tr, x_te]).tolist()) == list(range(20))  # a partition
    assert torch.bincount(y_te).tolist() == [2] * 4 and torch.equal(y[x_te], y_te)
    a, b = base.stream_generator(0, 0), base.stream_generator(0, 1)
    assert not torch.equal(torch.rand(4, generator=a), torch.rand(4, generator=b))
    c, d = base.stream_generator(0, 1), base.stream_generator(0, 1)
    assert torch.equal(torch.rand(4, generator=c), torch.rand(4, generator=d))


def test_take_subset_none_and_error_names_the_split():
    x, y = torch.arange(6), torch.tensor([0, 0, 0, 1, 1, 1])
    gen = torch.Generator().manual_seed(0)
    assert base.take_subset(x, y, None, generator=gen, what="w")[0] is x
    with pytest.raises(ValueError, match=r"toy train: asked for 7 examples but 6 exist"):
        base.take_subset(x, y, 7, generator=gen, what="toy train")
