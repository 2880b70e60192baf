"""PASCAL VOC detection: its class list, VOC XML reading and the 16/4 ZSD split."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from frugalcv.data.base import data_root, data_source
from frugalcv.data.detection.dataset import (
    DetectionDataset,
    ZSDData,
    _ids,
    _split_sets,
    _text_semantics,
)

__all__ = ["VOC_DETECTION_CLASSES", "VOC_UNSEEN_16_4", "load_voc_zsd", "read_voc_detection"]

# PASCAL VOC's 20 object classes in the devkit's order.
VOC_DETECTION_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
)  # fmt: skip
# Unseen classes of VOC 16/4 (Demirel et al. 2018; nasir6/zero_shot_detection splits.py).
VOC_UNSEEN_16_4: tuple[str, ...] = ("car", "dog", "sofa", "train")


def read_voc_detection(
    voc_dir: str | Path, image_set: str, *, keep_difficult: bool = False
) -> DetectionDataset:
    """One VOC image set (``ImageSets/Main/<image_set>.txt``) as a :class:`DetectionDataset`.

    Boxes are ``(xmin - 1, ymin - 1, xmax, ymax)`` (VOC's 1-based inclusive pixel corners to
    0-based xyxy, torchvision's convention); objects marked ``difficult`` are dropped unless
    ``keep_difficult`` (torchmetrics cannot ignore them the way the VOC devkit does).

    Args:
        voc_dir: e.g. ``<root>/VOCdevkit/VOC2007``.
        image_set: "train", "val", "trainval" or "test".
    """
    voc_dir = Path(voc_dir)
    list_file = voc_dir / "ImageSets" / "Main" / f"{image_set}.txt"
    if not list_file.is_file():
        raise FileNotFoundError(f"VOC image list {list_file} is missing; put the devkit there")
    names = [line.split()[0] for line in list_file.read_text().splitlines() if line.strip()]
    index = {n: i for i, n in enumerate(VOC_DETECTION_CLASSES)}
    paths, boxes, labels = [], [], []
    for name in names:
        xml_file = voc_dir / "Annotations" / f"{name}.xml"
        if not xml_file.is_file():
            raise FileNotFoundError(f"VOC annotation {xml_file} is missing")
        root = ET.parse(xml_file).getroot()
        b, y = [], []
        for obj in root.iter("object"):
            cls = obj.findtext("name", "").strip()
            if cls not in index:
                raise ValueError(f"{xml_file}: unknown VOC class {cls!r}")
            if not keep_difficult and obj.findtext("difficult", "0").strip() == "1":
                continue
            bb = obj.find("bndbox")
            x0, y0, x1, y1 = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            b.append([x0 - 1.0, y0 - 1.0, x1, y1])
            y.append(index[cls])
        paths.append(voc_dir / "JPEGImages" / f"{name}.jpg")
        boxes.append(torch.tensor(b, dtype=torch.float32).reshape(-1, 4))
        labels.append(torch.tensor(y, dtype=torch.long))
    return DetectionDataset(
        image_paths=paths, boxes=boxes, labels=labels, class_names=VOC_DETECTION_CLASSES
    )


def _concat(sets: Sequence[DetectionDataset]) -> DetectionDataset:
    return DetectionDataset(
        image_paths=[p for s in sets for p in s.image_paths],
        boxes=[b for s in sets for b in s.boxes],
        labels=[y for s in sets for y in s.labels],
        class_names=sets[0].class_names,
    )


def load_voc_zsd(
    *,
    root: str | Path | None = None,
    train_years: Sequence[str] = ("2007", "2012"),
    test_year: str = "2007",
    semantics: Tensor | None = None,
) -> ZSDData:
    """PASCAL VOC with the 16/4 ZSD split (unseen car, dog, sofa, train).

    Train: ``trainval`` of each of ``train_years`` with the ZSD rule; test: ``test`` of
    ``test_year`` (VOC 2007+2012 train, VOC07 test, as Meta-ZSDETR section 4.1 describes).

    Args:
        root: data root (default ``$FRUGALCV_DATA``); reads ``<root>/VOCdevkit/VOC<year>/``.
        semantics: (20, d) class vectors in :data:`VOC_DETECTION_CLASSES` order; None embeds the
            class names with all-MiniLM-L6-v2 (the papers use word2vec / fastText).
    """
    base = data_root(root) / "VOCdevkit"
    for year in (*train_years, test_year):
        if not (base / f"VOC{year}").is_dir():
            raise FileNotFoundError(
                f"VOC{year} missing: put the devkit folder at "
                f"{data_source(root, 'VOCdevkit', f'VOC{year}')}"
            )
    train = _concat([read_voc_detection(base / f"VOC{y}", "trainval") for y in train_years])
    test = read_voc_detection(base / f"VOC{test_year}", "test")
    unseen = _ids(VOC_DETECTION_CLASSES, VOC_UNSEEN_16_4)
    seen = torch.tensor([c for c in range(20) if c not in set(unseen.tolist())])
    names = [
        {"aeroplane": "airplane", "diningtable": "dining table", "motorbike": "motorbike",
         "pottedplant": "potted plant", "tvmonitor": "tv monitor"}.get(n, n)
        for n in VOC_DETECTION_CLASSES
    ]  # fmt: skip
    return _split_sets(
        "voc-16-4",
        train,
        None,
        test,
        seen=seen,
        unseen=unseen,
        semantics=_text_semantics(names, semantics),
        source=f"{data_source(root, 'VOCdevkit')} (16/4)",
    )
