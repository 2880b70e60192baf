"""Procedural sequences, the GOT-10k / OTB writers, and readers on tiny files written here."""

import numpy as np
import pytest
import torch
from PIL import Image

from frugalcv.data.tracking import (
    Sequence,
    make_sequence,
    make_sequences,
    read_boxes,
    read_got10k,
    read_lasot,
    read_otb,
    read_trackingnet,
    read_uav123,
    write_got10k,
    write_otb,
)


@pytest.fixture(scope="module")
def seqs():
    return make_sequences(2, seed=0, num_frames=12, height=64, width=80)


def test_procedural_sequence_is_deterministic_and_boxes_inside():
    a = make_sequence(seed=3, num_frames=16, height=64, width=80)
    b = make_sequence(seed=3, num_frames=16, height=64, width=80)
    c = make_sequence(seed=4, num_frames=16, height=64, width=80)
    assert torch.equal(a.frames, b.frames) and torch.equal(a.boxes, b.boxes)
    assert not torch.equal(a.frames, c.frames)
    assert a.frames.shape == (16, 64, 80, 3) and a.frames.dtype == torch.uint8
    x, y, w, h = a.boxes.unbind(1)
    assert (x >= 0).all() and (y >= 0).all() and (x + w <= 80).all() and (y + h <= 64).all()
    assert (w >= 4).all() and (h >= 4).all()
    assert set(a.attributes) == {"BC", "OCC", "MB", "SV"}


def test_target_is_painted_inside_its_box():
    # A striped shape's pixels inside the box differ from the 6-px bands above and below it.
    seq = make_sequence(seed=1, num_frames=8, num_distractors=0, occlusion=False, blur=False)
    contrast = []
    for t in range(len(seq)):
        f = seq.frames[t].float()
        x, y, w, h = seq.boxes[t].int().tolist()
        inside = f[y : y + h, x : x + w].reshape(-1, 3)
        bands = torch.cat(
            [
                f[max(y - 6, 0) : y, x : x + w].reshape(-1, 3),
                f[y + h : y + h + 6, x : x + w].reshape(-1, 3),
            ]
        )
        contrast.append((inside.mean(0) - bands.mean(0)).abs().mean())
    assert torch.stack(contrast).mean() > 10


def test_occlusion_flags_and_visible():
    found = False
    for seed in range(20):
        s = make_sequence(seed=seed, num_frames=16, height=64, width=80)
        if s.absent.any():
            found = True
            assert not s.absent[0]  # the first frame is never occluded
            assert torch.equal(s.visible(), ~s.absent)
    assert found


@pytest.mark.parametrize("kind", ["digit", "patch"])
def test_other_target_kinds(kind):
    s = make_sequence(seed=0, num_frames=6, height=64, width=80, target=kind, pool="test")
    assert len(s) == 6 and s.name == f"{kind}-00000"


def test_bad_options_raise():
    with pytest.raises(ValueError, match="valid kinds"):
        make_sequence(seed=0, target="car")
    with pytest.raises(ValueError, match="pool"):
        make_sequence(seed=0, pool="val")
    with pytest.raises(ValueError, match="boxes must be"):
        Sequence(
            name="x", frames=torch.zeros(2, 4, 4, 3, dtype=torch.uint8), boxes=torch.zeros(2, 3)
        )
    with pytest.raises(ValueError, match="2 frames but 3 boxes"):
        Sequence(
            name="x", frames=torch.zeros(2, 4, 4, 3, dtype=torch.uint8), boxes=torch.zeros(3, 4)
        )


def test_got10k_roundtrip(tmp_path, seqs):
    write_got10k(seqs, tmp_path, split="val")
    assert (tmp_path / "val" / "list.txt").read_text().split() == [s.name for s in seqs]
    meta = (tmp_path / "val" / seqs[0].name / "meta_info.ini").read_text()
    assert "resolution: (80, 64)" in meta
    read = read_got10k(tmp_path, split="val")
    for r, s in zip(read, seqs, strict=True):
        assert r.name == s.name and not r.in_memory
        assert torch.allclose(r.boxes, s.boxes, atol=1e-4)
        assert torch.equal(r.absent, s.absent)
        loaded = r.load()
        assert loaded.frames.shape == s.frames.shape
        assert (loaded.frames.float() - s.frames.float()).abs().mean() < 6  # JPEG q95
    assert [r.name for r in read_got10k(tmp_path, split="val", names=[seqs[1].name])] == [
        seqs[1].name
    ]


def test_otb_roundtrip(tmp_path, seqs):
    write_otb(seqs, tmp_path)
    assert (tmp_path / seqs[0].name / "img" / "0001.jpg").is_file()
    read = read_otb(tmp_path)
    assert [r.name for r in read] == [s.name for s in seqs]
    assert torch.allclose(read[0].boxes, seqs[0].boxes, atol=1e-4)
    assert read[0].frame(3).shape == (64, 80, 3)


def _jpgs(folder, names, size=(8, 6)):
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        Image.fromarray(np.full((size[1], size[0], 3), 128, np.uint8)).save(folder / n)


def test_read_boxes_mixed_separators_and_nan(tmp_path):
    p = tmp_path / "gt.txt"
    p.write_text("1,2,3,4\n5\t6\t7\t8\n\n9 10 11 12\nNaN,NaN,NaN,NaN\n")
    boxes = read_boxes(p)
    assert boxes.shape == (4, 4) and boxes[2].tolist() == [9, 10, 11, 12]
    assert torch.isnan(boxes[3]).all()
    p.write_text("1,2,3\n")
    with pytest.raises(ValueError, match="line 1"):
        read_boxes(p)


def test_otb_multi_target_folder(tmp_path):
    seq = tmp_path / "Jogging"
    _jpgs(seq / "img", ["0001.jpg", "0002.jpg"])
    (seq / "groundtruth_rect.1.txt").write_text("1,1,2,2\n1,1,2,2\n")
    (seq / "groundtruth_rect.2.txt").write_text("3 3 2 2\n3 3 2 2\n")
    read = read_otb(tmp_path)
    assert [r.name for r in read] == ["Jogging.1", "Jogging.2"]
    assert read[1].boxes[0].tolist() == [3, 3, 2, 2]


def test_lasot_reader(tmp_path):
    seq = tmp_path / "airplane" / "airplane-1"
    _jpgs(seq / "img", [f"{i:08d}.jpg" for i in range(1, 4)])
    (seq / "groundtruth.txt").write_text("1,2,3,4\n2,3,4,5\n3,4,5,6\n")
    (seq / "full_occlusion.txt").write_text("0,1,0")
    (seq / "out_of_view.txt").write_text("0,0,1")
    (read,) = read_lasot(tmp_path)
    assert read.name == "airplane-1" and read.absent.tolist() == [False, True, True]
    assert read.frame(2).shape == (6, 8, 3)
    (seq / "out_of_view.txt").unlink()
    with pytest.raises(FileNotFoundError, match="out_of_view.txt"):
        read_lasot(tmp_path)


def test_uav123_reader_and_parts(tmp_path):
    _jpgs(tmp_path / "data_seq" / "UAV123" / "car1", [f"{i:06d}.jpg" for i in range(1, 6)])
    anno = tmp_path / "anno" / "UAV123"
    anno.mkdir(parents=True)
    (anno / "car1.txt").write_text("1,1,2,2\nNaN,NaN,NaN,NaN\n1,1,2,2\n1,1,2,2\n1,1,2,2\n")
    (anno / "car1_2.txt").write_text("1,1,2,2\n1,1,2,2\n")
    with pytest.raises(FileNotFoundError, match="start_frames"):
        read_uav123(tmp_path)
    read = read_uav123(tmp_path, start_frames={"car1_2": ("car1", 4)})
    assert [r.name for r in read] == ["car1", "car1_2"]
    assert read[0].absent.tolist() == [False, True, False, False, False]
    assert read[1].frames[0].name == "000004.jpg" and len(read[1]) == 2


def test_trackingnet_reader(tmp_path):
    chunk = tmp_path / "TRAIN_0"
    _jpgs(chunk / "frames" / "abc_1", ["0.jpg", "1.jpg", "2.jpg"])
    (chunk / "anno").mkdir()
    (chunk / "anno" / "abc_1.txt").write_text("1,1,2,2\n2,2,2,2\n3,3,2,2\n")
    (read,) = read_trackingnet(tmp_path)
    assert read.name == "abc_1" and read.frames[2].name == "2.jpg"
    assert read.boxes[2].tolist() == [3, 3, 2, 2]
    with pytest.raises(FileNotFoundError, match="TRAIN_<k>/anno"):
        read_trackingnet(tmp_path, chunks=("TRAIN_1",))


def test_missing_paths_name_the_layout(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="groundtruth_rect.txt"):
        read_otb(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="list.txt"):
        read_got10k(tmp_path, split="train")
    with pytest.raises(FileNotFoundError, match="full_occlusion"):
        read_lasot(tmp_path / "nope")
    monkeypatch.setenv("FRUGALCV_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="UAV123"):
        read_uav123()
    monkeypatch.delenv("FRUGALCV_DATA")
    with pytest.raises(FileNotFoundError, match="FRUGALCV_DATA"):
        read_got10k()
