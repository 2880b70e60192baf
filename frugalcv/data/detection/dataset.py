"""`DetectionDataset`, the ZSD split rule (`zsd_subset`), `ZSDData` and shared class helpers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from frugalcv.data.semantics import embed_texts

__all__ = ["ZSD_MODES", "DetectionDataset", "ZSDData", "zsd_subset"]

ZSD_MODES = ("train", "zsd", "gzsd")


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", " ")


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


def _text_semantics(names: Sequence[str], semantics: Tensor | None) -> Tensor:
    if semantics is not None:
        return torch.as_tensor(semantics, dtype=torch.float32)
    return embed_texts([_norm(n) for n in names])
