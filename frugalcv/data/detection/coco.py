"""MS COCO detection: its class lists, COCO json read/write and the 65/15 and 48/17 splits."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from frugalcv.data.base import data_root, data_source
from frugalcv.data.detection.dataset import (
    DetectionDataset,
    ZSDData,
    _ids,
    _norm,
    _split_sets,
    _text_semantics,
)

__all__ = [
    "COCO_CLASSES",
    "COCO_SEEN_48_17",
    "COCO_UNSEEN_48_17",
    "COCO_UNSEEN_65_15",
    "coco_split_classes",
    "load_coco_zsd",
    "read_coco_detection",
    "write_coco_detection",
]

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
