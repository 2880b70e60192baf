"""Detection data: the ZSD rule, the procedural set, COCO and VOC readers on tiny files."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from frugalcv.data.detection import (
    COCO_CLASSES,
    DetectionDataset,
    coco_split_classes,
    load_coco_zsd,
    load_voc_zsd,
    read_coco_detection,
    write_coco_detection,
    zsd_subset,
)

pytestmark = pytest.mark.unit


def test_procedural_set_follows_the_zsd_rule(zsd_digits):
    d = zsd_digits
    assert torch.equal(d.unseen_classes, torch.tensor([7, 8, 9]))
    assert d.semantics.shape == (10, 9)
    train_labels = torch.cat(d.train.labels)
    assert not torch.isin(train_labels, d.unseen_classes).any()  # no unseen object in training
    assert not torch.isin(torch.cat(d.val.labels), d.unseen_classes).any()
    assert 0 < len(d.train) < 48  # images with unseen digits were removed
    assert torch.isin(torch.cat(d.test_zsd.labels), d.unseen_classes).all()
    assert all(len(y) > 0 for y in d.test_zsd.labels)
    assert len(d.test_gzsd) == 24 and len(d.test_zsd) < 24
    # files were written as COCO json and read back; boxes lie inside the image
    image, target = d.test_gzsd[0]
    assert image.shape == (3, 128, 128) and 0.0 <= image.min() and image.max() <= 1.0
    boxes = torch.cat(d.test_gzsd.boxes)
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= 128).all()
    assert ((boxes[:, 3] - boxes[:, 1]) >= 20).all()  # digit height >= 0.2 * 128 - margin
    folder = d.test_gzsd.image_paths[0].parent.parent
    ann = json.loads((folder / "annotations" / "test.json").read_text())
    assert len(ann["images"]) == 24 and ann["categories"][7]["name"] == "seven"


def test_zsd_subset_modes_by_hand():
    ds = DetectionDataset(
        image_paths=["a.png", "b.png", "c.png", "d.png"],
        boxes=[torch.zeros(n, 4) for n in (2, 2, 1, 1)],
        labels=[torch.tensor(y) for y in ([0, 1], [0, 2], [3], [2])],
        class_names=["s0", "s1", "u2", "unused3"],
    )
    train = zsd_subset(ds, seen_classes=[0, 1], unseen_classes=[2], mode="train")
    assert [p.name for p in train.image_paths] == ["a.png"]
    zsd = zsd_subset(ds, seen_classes=[0, 1], unseen_classes=[2], mode="zsd")
    assert [p.name for p in zsd.image_paths] == ["b.png", "d.png"]
    assert [y.tolist() for y in zsd.labels] == [[2], [2]]
    gzsd = zsd_subset(ds, seen_classes=[0, 1], unseen_classes=[2], mode="gzsd")
    assert [y.tolist() for y in gzsd.labels] == [[0, 1], [0, 2], [2]]  # class 3 unused
    with pytest.raises(ValueError, match="unknown mode"):
        zsd_subset(ds, seen_classes=[0], unseen_classes=[2], mode="test")


def _png(path, h=20, w=30):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(path)


def test_coco_reader_round_trip_and_crowd(tmp_path):
    _png(tmp_path / "img" / "x.png")
    ann = write_coco_detection(
        tmp_path / "ann.json",
        file_names=["x.png"],
        sizes=[(20, 30)],
        boxes=[torch.tensor([[1.0, 2.0, 11.0, 7.0], [0.0, 0.0, 5.0, 5.0]])],
        labels=[torch.tensor([1, 0])],
        class_names=["hot_dog", "cat"],
    )
    raw = json.loads(ann.read_text())
    assert raw["annotations"][0]["bbox"] == [1.0, 2.0, 10.0, 5.0]
    raw["annotations"].append(
        {"id": 9, "image_id": 1, "category_id": 1, "bbox": [0, 0, 3, 3], "area": 9, "iscrowd": 1}
    )
    ann.write_text(json.dumps(raw))
    ds = read_coco_detection(ann, tmp_path / "img", class_names=["cat", "hot dog"])
    image, target = ds[0]
    assert image.shape == (3, 20, 30) and image[0, 0, 0] == pytest.approx(128 / 255)
    assert torch.equal(target["boxes"], torch.tensor([[1.0, 2.0, 11.0, 7.0], [0.0, 0.0, 5.0, 5.0]]))
    assert target["labels"].tolist() == [0, 1]  # crowd dropped; ids follow class_names (cat 0)
    with pytest.raises(ValueError, match="not categories"):
        read_coco_detection(ann, tmp_path / "img", class_names=["dog"])
    with pytest.raises(FileNotFoundError, match="missing"):
        read_coco_detection(tmp_path / "nope.json", tmp_path)


def test_coco_split_class_lists():
    seen, unseen = coco_split_classes("65_15")
    assert len(seen) == 65 and len(unseen) == 15 and not torch.isin(seen, unseen).any()
    assert COCO_CLASSES[int(unseen[0])] == "airplane"
    seen, unseen = coco_split_classes("48_17")
    assert len(seen) == 48 and len(unseen) == 17 and not torch.isin(seen, unseen).any()
    with pytest.raises(ValueError, match="65_15"):
        coco_split_classes("40_40")


def test_load_coco_zsd_on_tiny_files(tmp_path):
    base = tmp_path / "coco"
    # image 1: person (seen) + cow (unseen in 48/17); image 2: person + traffic light (unused)
    person, cow, light = (COCO_CLASSES.index(n) for n in ("person", "cow", "traffic light"))
    for split in ("train2014", "val2014"):
        for name in ("1.png", "2.png"):
            _png(base / split / name)
        write_coco_detection(
            base / "annotations" / f"instances_{split}.json",
            file_names=["1.png", "2.png"],
            sizes=[(20, 30)] * 2,
            boxes=[torch.tensor([[0.0, 0, 5, 5], [6, 6, 12, 12]])] * 2,
            labels=[torch.tensor([person, cow]), torch.tensor([person, light])],
            class_names=COCO_CLASSES,
        )
    d = load_coco_zsd(root=tmp_path, split="48_17", semantics=torch.randn(80, 4))
    assert len(d.train) == 1 and d.train.labels[0].tolist() == [person]  # light dropped
    assert [y.tolist() for y in d.test_zsd.labels] == [[cow]]
    assert [y.tolist() for y in d.test_gzsd.labels] == [[person, cow], [person]]
    with pytest.raises(FileNotFoundError, match="coco"):
        load_coco_zsd(root=tmp_path / "empty", semantics=torch.randn(80, 4))


def _voc_xml(path, objects):
    body = "".join(
        f"<object><name>{n}</name><difficult>{int(d)}</difficult><bndbox><xmin>{b[0]}</xmin>"
        f"<ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for n, d, b in objects
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<annotation><filename>{path.stem}.jpg</filename>{body}</annotation>")


def test_load_voc_zsd_on_tiny_files(tmp_path):
    voc = tmp_path / "VOCdevkit" / "VOC2007"
    objects = {
        "000001": [("person", False, (11, 21, 40, 50)), ("bus", True, (1, 1, 5, 5))],
        "000002": [("dog", False, (1, 1, 10, 10)), ("cat", False, (2, 2, 9, 9))],
        "000003": [("sofa", False, (3, 3, 20, 20))],
    }
    for name, objs in objects.items():
        _voc_xml(voc / "Annotations" / f"{name}.xml", objs)
        _png(voc / "JPEGImages" / f"{name}.jpg")
    (voc / "ImageSets" / "Main").mkdir(parents=True)
    (voc / "ImageSets" / "Main" / "trainval.txt").write_text("000001\n000002\n")
    (voc / "ImageSets" / "Main" / "test.txt").write_text("000002\n000003\n")
    d = load_voc_zsd(root=tmp_path, train_years=("2007",), semantics=torch.randn(20, 5))
    names = d.class_names
    assert sorted(names[i] for i in d.unseen_classes) == ["car", "dog", "sofa", "train"]
    assert len(d.seen_classes) == 16
    # training keeps image 1 only (image 2 has a dog); the difficult bus is dropped
    assert len(d.train) == 1 and [names[i] for i in d.train.labels[0]] == ["person"]
    assert d.train.boxes[0].tolist() == [[10.0, 20.0, 40.0, 50.0]]  # 1-based corners shifted
    assert [[names[i] for i in y] for y in d.test_zsd.labels] == [["dog"], ["sofa"]]
    assert [[names[i] for i in y] for y in d.test_gzsd.labels] == [["dog", "cat"], ["sofa"]]
    with pytest.raises(FileNotFoundError, match="VOC2012"):
        load_voc_zsd(root=tmp_path, semantics=torch.randn(20, 5))
