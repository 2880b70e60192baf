"""Writers of the GOT-10k and OTB-2015 folder layouts (`write_got10k`, `write_otb`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from torch import Tensor

from frugalcv.data.tracking.sequence import Sequence

__all__ = ["write_got10k", "write_otb"]


def _save_jpg(frame: Tensor, path: Path) -> None:
    from PIL import Image

    Image.fromarray(frame.numpy()).save(path, quality=95)


def _box_lines(boxes: Tensor, sep: str) -> str:
    return "".join(sep.join(f"{v:.4f}" for v in row.tolist()) + "\n" for row in boxes)


def write_got10k(sequences: Iterable[Sequence], root: str | Path, *, split: str = "train") -> Path:
    """Store sequences in the GOT-10k layout under ``root/split``.

    Writes ``list.txt``, and per sequence ``00000001.jpg ...``, ``groundtruth.txt`` (x,y,w,h,
    comma separated), ``absence.label`` (0/1 per frame), ``cover.label`` (0 where absent, else 8:
    GOT-10k's cover scale is 0..8) and ``meta_info.ini`` (a header line, then ``key: value`` lines,
    with ``resolution: (W, H)`` as the toolkit reads it).

    Returns:
        The split folder.
    """
    out = Path(root) / split
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for seq in sequences:
        folder = out / seq.name
        folder.mkdir(exist_ok=True)
        for t in range(len(seq)):
            _save_jpg(seq.frame(t), folder / f"{t + 1:08d}.jpg")
        (folder / "groundtruth.txt").write_text(_box_lines(seq.boxes, ","))
        absent = seq.absent if seq.absent is not None else torch.zeros(len(seq), dtype=torch.bool)
        (folder / "absence.label").write_text("".join(f"{int(a)}\n" for a in absent))
        (folder / "cover.label").write_text("".join(f"{0 if a else 8}\n" for a in absent))
        h, w = seq.frame(0).shape[:2]
        tags = ", ".join(seq.attributes)
        (folder / "meta_info.ini").write_text(
            f"[METAINFO]\nresolution: ({w}, {h})\nattributes: {tags}\nsource: {seq.source}\n"
        )
        names.append(seq.name)
    (out / "list.txt").write_text("".join(n + "\n" for n in names))
    return out


def write_otb(sequences: Iterable[Sequence], root: str | Path) -> Path:
    """Store sequences in the OTB-2015 layout: ``root/<seq>/img/0001.jpg ...`` and
    ``root/<seq>/groundtruth_rect.txt`` (x,y,w,h, comma separated). Returns ``root``."""
    root = Path(root)
    for seq in sequences:
        img = root / seq.name / "img"
        img.mkdir(parents=True, exist_ok=True)
        for t in range(len(seq)):
            _save_jpg(seq.frame(t), img / f"{t + 1:04d}.jpg")
        (root / seq.name / "groundtruth_rect.txt").write_text(_box_lines(seq.boxes, ","))
    return root
