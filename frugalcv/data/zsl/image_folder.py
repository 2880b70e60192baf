"""Zero-shot sets of images on disk, for end-to-end models (`load_zsl_image_folder`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from frugalcv.data.semantics import normalize_semantics
from frugalcv.data.zsl.container import ZSLData

__all__ = ["load_zsl_image_folder"]


_IMAGE_SPLITS = ("trainval", "test_seen", "test_unseen")


def _read_lines(path: Path, *, what: str) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(
            f"{what} not found: {path} does not exist (see load_zsl_image_folder for the layout)"
        )
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]


def load_zsl_image_folder(
    root: str | Path,
    *,
    image_size: int = 64,
    normalize: str = "l2",
    name: str | None = None,
) -> ZSLData:
    """A zero-shot set of images on disk, for end-to-end models.

    Layout (the class id of a line is its 1-based line number in ``classes.txt``, as in CUB's
    ``classes.txt`` and AwA2's ``classes.txt``)::

        root/classes.txt         one class name per line
        root/attributes.txt      one row of whitespace-separated numbers per class, same order
        root/attribute_names.txt (optional) one attribute name per line
        root/trainval.txt, test_seen.txt, test_unseen.txt
                                 lines "<path relative to root/images> <1-based class id>"
        root/images/...

    Images are read with PIL, converted to RGB and resized to ``image_size`` (bilinear).

    Returns:
        ZSLData with x: (N, 3, image_size, image_size) float32 in [0, 1]; seen classes are those
        of trainval.txt, unseen classes those of test_unseen.txt.
    """
    from PIL import Image

    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"zero-shot image folder {root} does not exist; it must hold classes.txt, "
            "attributes.txt, trainval.txt, test_seen.txt, test_unseen.txt and images/"
        )
    class_names = _read_lines(root / "classes.txt", what="class list")
    rows = _read_lines(root / "attributes.txt", what="class attribute file")
    try:
        att = np.array([[float(v) for v in r.split()] for r in rows], dtype=np.float32)
    except ValueError as e:
        raise ValueError(f"{root / 'attributes.txt'}: every row must hold numbers ({e})") from e
    if att.ndim != 2 or len(att) != len(class_names):
        raise ValueError(
            f"{root / 'attributes.txt'} must have one row of equal length per class "
            f"({len(class_names)} classes in classes.txt); got {len(rows)} rows"
        )
    attr_names: list[str] = []
    if (root / "attribute_names.txt").is_file():
        attr_names = _read_lines(root / "attribute_names.txt", what="attribute names")

    out: dict[str, tuple[Tensor, Tensor]] = {}
    for split in _IMAGE_SPLITS:
        path = root / f"{split}.txt"
        images, labels = [], []
        for k, line in enumerate(_read_lines(path, what=f"{split} split file")):
            parts = line.rsplit(maxsplit=1)
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise ValueError(f"{path} line {k + 1}: expected '<image path> <class id>'")
            label = int(parts[1])
            if not 1 <= label <= len(class_names):
                raise ValueError(
                    f"{path} line {k + 1}: class id {label} is outside 1..{len(class_names)}; "
                    "class ids are 1-based line numbers of classes.txt"
                )
            file = root / "images" / parts[0]
            if not file.is_file():
                raise FileNotFoundError(f"{path} line {k + 1}: image {file} does not exist")
            with Image.open(file) as im:
                im = im.convert("RGB").resize((image_size, image_size), Image.BILINEAR)
                images.append(torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()))
            labels.append(label - 1)
        if not images:
            raise ValueError(f"{path} lists no images")
        x = torch.stack(images).permute(0, 3, 1, 2).float().div_(255.0)  # (N, 3, S, S)
        out[split] = (x, torch.tensor(labels, dtype=torch.int64))

    seen = torch.unique(out["trainval"][1])
    unseen = torch.unique(out["test_unseen"][1])
    return ZSLData(
        name=name or root.name,
        x_train=out["trainval"][0],
        y_train=out["trainval"][1],
        x_test_seen=out["test_seen"][0],
        y_test_seen=out["test_seen"][1],
        x_test_unseen=out["test_unseen"][0],
        y_test_unseen=out["test_unseen"][1],
        semantics=normalize_semantics(torch.from_numpy(att), normalize=normalize),
        seen_classes=seen,
        unseen_classes=unseen,
        class_names=class_names,
        attribute_names=attr_names,
        source=f"image folder {root}",
    )
