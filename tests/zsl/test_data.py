"""Tests for frugalcv.data.zsl: xlsa17 and image-folder loaders on tiny files, procedural sets."""

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from frugalcv.data.zsl import (
    ATTR_SHAPES_GROUPS,
    DIGIT_ATTRIBUTES,
    load_xlsa17,
    load_zsl_image_folder,
    make_attr_shapes,
    make_zsl_digits,
)

pytestmark = pytest.mark.unit

# Tiny xlsa17-format set: 10 images, 4 classes (1-based 1, 2 seen; 3, 4 unseen), 3 attributes.
LABELS_1B = np.array([1, 1, 2, 2, 1, 2, 3, 3, 4, 4])
TRAINVAL_1B = np.array([1, 2, 3, 4])
TEST_SEEN_1B = np.array([5, 6])
TEST_UNSEEN_1B = np.array([7, 8, 9, 10])


def _write_xlsa17(tmp_path, *, name="AWA2", labels=LABELS_1B, features=None, **overrides):
    folder = tmp_path / "xlsa17" / "data" / name
    folder.mkdir(parents=True)
    feats = np.arange(5 * 10, dtype=np.float64).reshape(5, 10) if features is None else features
    scipy.io.savemat(
        folder / "res101.mat",
        {"features": feats, "labels": labels[:, None].astype(np.float64)},
    )
    original = np.array([[3.0, 0.0, 1.0, 2.0], [4.0, 1.0, 0.0, 2.0], [0.0, 0.0, 0.0, 1.0]])
    splits = {
        "att": original / np.linalg.norm(original, axis=0, keepdims=True),
        "original_att": original,
        "trainval_loc": TRAINVAL_1B[:, None],
        "test_seen_loc": TEST_SEEN_1B[:, None],
        "test_unseen_loc": TEST_UNSEEN_1B[:, None],
        "val_loc": np.array([[3], [4]]),
        "allclasses_names": np.array([["a"], ["b"], ["c"], ["d"]], dtype=object),
    }
    splits.update(overrides)
    scipy.io.savemat(folder / "att_splits.mat", splits)
    return tmp_path


def test_xlsa17_loader_converts_one_based_indices(tmp_path):
    d = load_xlsa17("awa2", root=_write_xlsa17(tmp_path))
    assert d.name == "AWA2" and d.is_features
    # image k (1-based) has feature column k-1: feature 0 of image k is k-1
    assert d.x_train[:, 0].tolist() == [0, 1, 2, 3]
    assert d.x_test_unseen[:, 0].tolist() == [6, 7, 8, 9]
    assert d.x_train.shape == (4, 5)
    assert d.y_train.tolist() == [0, 0, 1, 1] and d.y_test_unseen.tolist() == [2, 2, 3, 3]
    assert d.seen_classes.tolist() == [0, 1] and d.unseen_classes.tolist() == [2, 3]
    assert d.val_classes.tolist() == [1]
    assert d.class_names == ["a", "b", "c", "d"]
    # class 0's raw attributes (3, 4, 0) L2-normalised
    assert torch.allclose(d.semantics[0], torch.tensor([0.6, 0.8, 0.0]))
    raw = load_xlsa17("AWA2", root=tmp_path, semantics="original_att", normalize="none")
    assert raw.semantics[0].tolist() == [3.0, 4.0, 0.0]


def test_xlsa17_tolerates_missing_val_loc(tmp_path):
    root = _write_xlsa17(tmp_path)
    path = root / "xlsa17" / "data" / "AWA2" / "att_splits.mat"
    mat = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
    del mat["val_loc"]
    scipy.io.savemat(path, mat)
    assert load_xlsa17("AWA2", root=root).val_classes is None


def test_xlsa17_missing_file_names_the_place(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"xlsa17/data/CUB/res101\.mat"):
        load_xlsa17("CUB", root=tmp_path)


def test_xlsa17_rejects_zero_based_locs(tmp_path):
    root = _write_xlsa17(tmp_path, trainval_loc=(TRAINVAL_1B - 1)[:, None])
    with pytest.raises(ValueError, match="trainval_loc contains 0.*1-based"):
        load_xlsa17("AWA2", root=root)


def test_xlsa17_rejects_zero_based_labels(tmp_path):
    root = _write_xlsa17(tmp_path, labels=LABELS_1B - 1)
    with pytest.raises(ValueError, match="labels contains 0.*1-based"):
        load_xlsa17("AWA2", root=root)


def test_xlsa17_rejects_wrong_feature_shape(tmp_path):
    root = _write_xlsa17(tmp_path, features=np.zeros((5, 7)))
    with pytest.raises(ValueError, match=r"features must be \(D, N\) with N = 10"):
        load_xlsa17("AWA2", root=root)


def test_xlsa17_rejects_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="valid names: AWA1"):
        load_xlsa17("AWA3", root=tmp_path)


def _write_image_folder(root, *, bad_label=None):
    (root / "images").mkdir(parents=True)
    (root / "classes.txt").write_text("red thing\ngreen thing\nblue thing\n")
    (root / "attributes.txt").write_text("1 0 0\n0 1 0\n0 0 2\n")
    colours = {1: (255, 0, 0), 2: (0, 255, 0), 3: (0, 0, 255)}
    lines = {"trainval": [], "test_seen": [], "test_unseen": []}
    for split, labels in (("trainval", [1, 2, 1]), ("test_seen", [2]), ("test_unseen", [3, 3])):
        for k, label in enumerate(labels):
            name = f"{split}_{k}.png"
            Image.new("RGB", (10, 8), colours[label]).save(root / "images" / name)
            lines[split].append(f"{name} {label}")
    if bad_label is not None:
        lines["trainval"][0] = f"trainval_0.png {bad_label}"
    for split, rows in lines.items():
        (root / f"{split}.txt").write_text("\n".join(rows) + "\n")
    return root


def test_image_folder_loader(tmp_path):
    d = load_zsl_image_folder(_write_image_folder(tmp_path / "toy"), image_size=6)
    assert d.x_train.shape == (3, 3, 6, 6) and not d.is_features
    assert d.y_train.tolist() == [0, 1, 0] and d.y_test_unseen.tolist() == [2, 2]
    assert d.seen_classes.tolist() == [0, 1] and d.unseen_classes.tolist() == [2]
    assert torch.allclose(d.x_train[0, :, 2, 2], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(d.semantics[2], torch.tensor([0.0, 0.0, 1.0]))  # (0, 0, 2) -> unit
    assert d.class_names[2] == "blue thing"


def test_image_folder_rejects_zero_based_label(tmp_path):
    with pytest.raises(ValueError, match="class id 0 is outside 1..3"):
        load_zsl_image_folder(_write_image_folder(tmp_path / "toy", bad_label=0))


def test_image_folder_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="classes.txt"):
        load_zsl_image_folder(tmp_path / "nowhere")


def test_attr_shapes_is_compositional_and_seeded():
    d = make_attr_shapes(num_train_per_class=2, num_test_per_class=2, image_size=16, seed=3)
    assert d.x_train.shape == (18 * 2, 3, 16, 16) and d.semantics.shape == (24, 13)
    groups = np.cumsum([0] + [len(v) for v in ATTR_SHAPES_GROUPS.values()])
    for lo, hi in zip(groups[:-1], groups[1:], strict=True):
        assert torch.equal(d.semantics[:, lo:hi].sum(1), torch.ones(24))  # one value per group
    seen_att, unseen_att = d.semantics[d.seen_classes], d.semantics[d.unseen_classes]
    assert (seen_att.sum(0) >= 2).all()  # every value occurs in >= 2 seen classes
    assert len({tuple(r.tolist()) for r in d.semantics}) == 24  # classes are distinct combos
    assert (unseen_att @ seen_att.T < 4).all()  # no unseen class equals a seen one
    assert d.class_names[0].split()[0] in ("small", "large")
    again = make_attr_shapes(num_train_per_class=2, num_test_per_class=2, image_size=16, seed=3)
    assert torch.equal(d.x_train, again.x_train) and d.class_names == again.class_names


def test_zsl_digits_split(monkeypatch):
    monkeypatch.delenv("FRUGALCV_DATA", raising=False)  # the counts below are mnist5k's
    d = make_zsl_digits(num_train=200, num_test=100, seed=0, embedded=True)
    assert d.name == "zsl-digits5k" and "mnist5k" in d.source
    with pytest.raises(FileNotFoundError, match="zsl-digits5k"):  # never a silent fallback
        make_zsl_digits(num_train=200, num_test=100, seed=0)
    assert set(d.y_train.tolist()) == set(range(7)) and set(d.y_test_unseen.tolist()) == {7, 8, 9}
    assert len(d.y_test_unseen) == 90 and len(d.y_train) == 140  # 3/10 of 300; 7/10 of 200
    assert torch.equal(d.semantics, DIGIT_ATTRIBUTES)
    assert len({tuple(r.tolist()) for r in DIGIT_ATTRIBUTES}) == 10
    seen_cols = {tuple(c.tolist()) for c in DIGIT_ATTRIBUTES[:7].T}
    assert len(seen_cols) == DIGIT_ATTRIBUTES.shape[1]  # columns differ on the seen digits
    assert (DIGIT_ATTRIBUTES[:7].sum(0) >= 1).all()  # every attribute is taught by a seen digit


def test_bad_semantics_option():
    with pytest.raises(ValueError, match="valid options are attributes"):
        make_zsl_digits(num_train=100, num_test=100, semantics="glove", embedded=True)
