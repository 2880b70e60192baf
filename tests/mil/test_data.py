"""frugalcv.data.mil: Bags, generators, the bag file format and classic MIL readers (tiny files)."""

import importlib.util

import numpy as np
import pytest
import torch

from frugalcv.data.mil import (
    Bags,
    collate_bags,
    load_bags,
    load_classic_mil,
    make_event_bags,
    make_mnist_bags,
    read_mil_csv,
    read_mil_mat,
    read_musk_data,
    save_bags,
    split_bags,
)


def _tiny():
    return Bags(
        np.arange(12, dtype=np.float32).reshape(6, 2),
        [0, 2, 3, 6],
        [0, -1, 1],
        ("a", "b"),
        instance_labels=[1, 0, 0, 0, 1, 0],
        bag_ids=["v1", "v2", "v3"],
        concept_scores=np.eye(3)[[0, 1, 2, 0, 1, 2]],
        concept_vectors=np.eye(3),
        event_vectors=[[1, 0, 0], [0, 1, 1]],
    )


@pytest.mark.unit
def test_bags_views_and_subset():
    b = _tiny()
    assert b.num_bags == 3 and b.num_instances == 6
    np.testing.assert_array_equal(b.bag_sizes, [2, 1, 3])
    np.testing.assert_array_equal(b.bag_index, [0, 0, 1, 2, 2, 2])
    np.testing.assert_array_equal(b.targets("b"), [0, 0, 1])
    np.testing.assert_allclose(b.similarity(1), [0, 1 / np.sqrt(2), 1 / np.sqrt(2)] * 2)
    s = b.subset([2, 0])
    np.testing.assert_array_equal(s.offsets, [0, 3, 5])
    np.testing.assert_array_equal(s.bag(1), b.bag(0))
    np.testing.assert_array_equal(s.instance_labels, [0, 1, 0, 1, 0])
    assert list(s.bag_ids) == ["v3", "v1"]


@pytest.mark.unit
def test_bags_bad_inputs():
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match="at least one instance"):
        Bags(x, [0, 2, 2, 4], [0, -1, 0], ("e",))
    with pytest.raises(ValueError, match="offsets must be"):
        Bags(x, [0, 4], [0, -1], ("e",))
    with pytest.raises(ValueError, match="labels must be -1"):
        Bags(x, [0, 2, 4], [0, 3], ("e",))
    with pytest.raises(ValueError, match="unknown event"):
        _tiny().targets("c")
    with pytest.raises(ValueError, match="no concept_scores"):
        Bags(x, [0, 2, 4], [0, -1], ("e",)).similarity(0)


@pytest.mark.unit
@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_bag_file_round_trip(tmp_path, suffix):
    if suffix == ".h5" and importlib.util.find_spec("h5py") is None:
        with pytest.raises(ImportError, match="pip install h5py"):
            save_bags(_tiny(), tmp_path / "b.h5")
        return
    b = _tiny()
    path = save_bags(b, tmp_path / f"bags{suffix}")
    r = load_bags(path)
    for key in (
        "features",
        "offsets",
        "labels",
        "instance_labels",
        "concept_scores",
        "event_vectors",
    ):
        np.testing.assert_array_equal(getattr(r, key), getattr(b, key))
    assert r.event_names == ("a", "b") and list(r.bag_ids) == ["v1", "v2", "v3"]


@pytest.mark.unit
def test_bag_file_groups_interleaved_segments(tmp_path):
    np.savez(
        tmp_path / "shots.npz",
        features=np.arange(5.0)[:, None],
        video_ids=np.array(["x", "y", "x", "z", "y"]),
        event_labels=np.array([0, -1, 0, 0, -1]),
        event_names=np.array(["parade"]),
    )
    b = load_bags(tmp_path / "shots.npz")
    assert list(b.bag_ids) == ["x", "y", "z"]
    np.testing.assert_array_equal(b.features[:, 0], [0, 2, 1, 4, 3])
    np.testing.assert_array_equal(b.labels, [0, -1, 0])
    np.savez(
        tmp_path / "bad.npz",
        features=np.zeros((2, 1)),
        video_ids=np.array(["x", "x"]),
        event_labels=np.array([0, -1]),
        event_names=np.array(["p"]),
    )
    with pytest.raises(ValueError, match="differ between segments"):
        load_bags(tmp_path / "bad.npz")
    np.savez(tmp_path / "nokeys.npz", features=np.zeros((2, 1)))
    with pytest.raises(ValueError, match="missing keys"):
        load_bags(tmp_path / "nokeys.npz")
    with pytest.raises(FileNotFoundError, match="save_bags"):
        load_bags(tmp_path / "absent.npz")
    with pytest.raises(ValueError, match=".npz, .h5"):
        save_bags(_tiny(), tmp_path / "b.pkl")


@pytest.mark.unit
def test_musk_reader(tmp_path):
    lines = [
        "MUSK-1,1_1+1,10,20,30,1.",
        "MUSK-1,1_1+2,11,21,31,1.",
        "NON-MUSK-2,2_1+1,12,22,32,0.",
        "MUSK-1,1_1+3,13,23,33,1.",
    ]
    (tmp_path / "mil").mkdir()
    (tmp_path / "mil" / "clean1.data").write_text("\n".join(lines) + "\n")
    b = load_classic_mil("musk1", root=tmp_path)
    assert b.event_names == ("musk1",) and list(b.bag_ids) == ["MUSK-1", "NON-MUSK-2"]
    np.testing.assert_array_equal(b.labels, [0, -1])
    np.testing.assert_array_equal(b.features[:3, 0], [10, 11, 13])
    (tmp_path / "bad.data").write_text("MUSK-1,1_1,1,2,1.\nMUSK-1,1_2,1,1.\n")
    with pytest.raises(ValueError, match="one width"):
        read_musk_data(tmp_path / "bad.data")


@pytest.mark.unit
def test_mat_and_csv_readers(tmp_path):
    from scipy import io as sio
    from scipy import sparse

    feats = sparse.csr_matrix(np.array([[1.0, 0], [0, 2], [3, 0], [0, 0], [5, 5]]))
    sio.savemat(
        tmp_path / "fox_100x100_matlab.mat",
        {
            "features": feats,
            "labels": sparse.csr_matrix(np.array([[1, 1, -1, -1, 1]])),
            "bag_ids": np.array([[7, 7, 8, 8, 9]]),
        },
    )
    b = read_mil_mat(tmp_path / "fox_100x100_matlab.mat", event="fox")
    np.testing.assert_array_equal(b.bag_sizes, [2, 2, 1])
    np.testing.assert_array_equal(b.labels, [0, -1, 0])
    np.testing.assert_array_equal(b.features[1], [0, 2])
    (tmp_path / "tiger.csv").write_text("label,bag,f1,f2\n1,3,0.5,1\n0,4,2,2\n1,3,1,1\n")
    c = read_mil_csv(tmp_path / "tiger.csv")
    np.testing.assert_array_equal(c.labels, [0, -1])
    np.testing.assert_array_equal(c.bag(0), [[0.5, 1], [1, 1]])
    sio.savemat(tmp_path / "broken.mat", {"features": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="missing variables"):
        read_mil_mat(tmp_path / "broken.mat")


@pytest.mark.unit
def test_missing_classic_file_names_the_place(tmp_path):
    with pytest.raises(FileNotFoundError, match="elephant_100x100_matlab.mat"):
        load_classic_mil("elephant", root=tmp_path)
    with pytest.raises(ValueError, match="valid names"):
        load_classic_mil("corel", root=tmp_path)


@pytest.mark.unit
def test_mnist_bags_are_positive_iff_target_present():
    train, test = make_mnist_bags(num_train=50, num_test=30, features="image", seed=1)
    assert train.features.shape[1:] == (1, 28, 28) and test.num_bags == 30
    has_target = np.maximum.reduceat(train.instance_labels, train.offsets[:-1]) > 0
    np.testing.assert_array_equal(train.labels == 0, has_target)
    assert 7 <= train.bag_sizes.mean() <= 13 and train.bag_sizes.min() >= 1
    proj, _ = make_mnist_bags(num_train=5, num_test=5, features="projection", projection_dim=16)
    assert proj.features.shape[1] == 16
    with pytest.raises(ValueError, match="features"):
        make_mnist_bags(features="hog")


@pytest.mark.unit
def test_event_bags_structure():
    train, test = make_event_bags(num_train=60, num_test=40, seed=3)
    witnesses = np.add.reduceat(train.instance_labels, train.offsets[:-1])
    assert np.all(witnesses[train.labels >= 0] >= 1) and np.all(witnesses[train.labels < 0] == 0)
    # key segments point at their event: similarity far above the other segments'
    e = 0
    in_event = train.labels[train.bag_index] == e
    sim = train.similarity(e)
    key = sim[in_event & (train.instance_labels == 1)]
    other = sim[train.instance_labels == 0]
    assert key.mean() > other.mean() + 0.3
    np.testing.assert_array_equal(test.event_vectors, train.event_vectors)  # one shared world
    tr2, _ = make_event_bags(num_train=60, num_test=40, seed=3)
    np.testing.assert_array_equal(tr2.features, train.features)  # seeded
    a, b = split_bags(train, test_fraction=0.25, seed=0)
    assert a.num_bags + b.num_bags == 60
    with pytest.raises(ValueError, match="no background concept"):
        make_event_bags(num_concepts=12)


@pytest.mark.unit
def test_collate_pads_and_masks():
    batch = collate_bags([(torch.ones(2, 3), 1.0), (torch.full((4, 3), 2.0), 0.0)])
    assert batch["x"].shape == (2, 4, 3)
    assert batch["mask"].tolist() == [[True, True, False, False], [True] * 4]
    assert torch.all(batch["x"][0, 2:] == 0)
    torch.testing.assert_close(batch["y"], torch.tensor([1.0, 0.0]))


@pytest.mark.unit
def test_mnist_bags_never_swap_a_given_data_folder_for_the_embedded_digits(tmp_path, monkeypatch):
    """A data folder without MNIST is an error that names the fix; only when no folder is given
    at all does "auto" use the embedded 5000 digits (the embedded default of the demos)."""
    with pytest.raises(FileNotFoundError, match=r"--data.root/MNIST/raw.*mnist_source=mnist5k"):
        make_mnist_bags(num_train=5, num_test=5, root=tmp_path)
    monkeypatch.setenv("FRUGALCV_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"\$FRUGALCV_DATA/MNIST/raw"):
        make_mnist_bags(num_train=5, num_test=5)
    embedded, _ = make_mnist_bags(num_train=5, num_test=5, source="mnist5k")
    monkeypatch.delenv("FRUGALCV_DATA")
    auto, _ = make_mnist_bags(num_train=5, num_test=5)
    np.testing.assert_array_equal(auto.features, embedded.features)
