"""Readers of OTB-2015, GOT-10k, LaSOT, UAV123 and TrackingNet folders, and `read_boxes`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import Tensor

from frugalcv.data.base import data_root
from frugalcv.data.tracking.sequence import Sequence

__all__ = [
    "read_boxes",
    "read_got10k",
    "read_lasot",
    "read_otb",
    "read_trackingnet",
    "read_uav123",
]


def read_boxes(path: str | Path) -> Tensor:
    """Read an annotation file of ``x, y, w, h`` rows as float32 (T, 4).

    Accepts commas, tabs or spaces as separators (OTB mixes them) and ``NaN`` entries (UAV123
    marks out-of-view frames that way); blank lines are skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {path} does not exist")
    rows = []
    for i, line in enumerate(path.read_text().splitlines()):
        parts = [p for p in re.split(r"[,\s]+", line.strip()) if p]
        if not parts:
            continue
        if len(parts) != 4:
            raise ValueError(f"{path}, line {i + 1}: expected 4 values x,y,w,h; got {line!r}")
        try:
            rows.append([float(p) for p in parts])
        except ValueError:
            raise ValueError(f"{path}, line {i + 1}: not numbers: {line!r}") from None
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)


def _read_flags(path: Path, *, num: int) -> Tensor:
    """0/1 flags, one per frame: one per line (GOT-10k) or one comma-separated row (LaSOT)."""
    values = [int(float(v)) for v in re.split(r"[,\s]+", path.read_text().strip()) if v]
    if len(values) != num:
        raise ValueError(f"{path}: {len(values)} flags for {num} frames; expected one per frame")
    return torch.tensor(values, dtype=torch.bool)


def _dataset_root(root: str | Path | None, name: str, layout: str) -> Path:
    base = data_root(root) if root is not None else data_root(None) / name
    if not base.is_dir():
        raise FileNotFoundError(f"{name} folder {base} does not exist; expected layout: {layout}")
    return base


def _frames(folder: Path, pattern: str, *, num: int, layout: str, start: int = 1) -> list[Path]:
    frames = [folder / pattern.format(start + i) for i in range(num)]
    missing = [p for p in (frames[0], frames[-1]) if not p.is_file()] if frames else [folder]
    if missing:
        raise FileNotFoundError(f"frame {missing[0]} does not exist; expected layout: {layout}")
    return frames


def _names_from(names: Iterable[str] | None, available: list[str], where: Path) -> list[str]:
    if names is None:
        return available
    names = list(names)
    unknown = sorted(set(names) - set(available))
    if unknown:
        raise ValueError(f"sequences {unknown} are not in {where}; available: {available[:10]}...")
    return names


_OTB_LAYOUT = "root/<seq>/img/0001.jpg ... and root/<seq>/groundtruth_rect.txt"


def read_otb(
    root: str | Path | None = None, *, names: Iterable[str] | None = None
) -> list[Sequence]:
    """Read OTB-2015 sequences (frames read lazily).

    Args:
        root: the OTB folder; default ``$FRUGALCV_DATA/OTB2015``.
        names: sequences to read; default every folder that holds ``groundtruth_rect.txt``.

    Multi-target folders (Jogging, Skating2) hold ``groundtruth_rect.1.txt`` and ``.2.txt``; each
    becomes a sequence ``<seq>.1`` / ``<seq>.2``. The OTB toolkit's per-sequence frame trims
    (David starts at frame 300, ...) are not applied: pass trimmed copies if you need them.
    """
    base = _dataset_root(root, "OTB2015", _OTB_LAYOUT)
    entries: dict[str, tuple[Path, Path]] = {}
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        for gt in sorted(folder.glob("groundtruth_rect*.txt")):
            suffix = gt.name[len("groundtruth_rect") : -len(".txt")]
            entries[folder.name + suffix] = (folder, gt)
    if not entries:
        raise FileNotFoundError(f"no OTB sequences in {base}; expected layout: {_OTB_LAYOUT}")
    out = []
    for name in _names_from(names, sorted(entries), base):
        folder, gt = entries[name]
        boxes = read_boxes(gt)
        frames = _frames(folder / "img", "{:04d}.jpg", num=len(boxes), layout=_OTB_LAYOUT)
        out.append(Sequence(name=name, frames=frames, boxes=boxes, source=f"OTB2015/{name}"))
    return out


_GOT_LAYOUT = (
    "root/<split>/list.txt, root/<split>/<seq>/00000001.jpg ..., root/<split>/<seq>/groundtruth.txt"
)


def read_got10k(
    root: str | Path | None = None, *, split: str = "train", names: Iterable[str] | None = None
) -> list[Sequence]:
    """Read a GOT-10k split (frames read lazily).

    ``absent`` comes from ``absence.label`` when present. The test split's ``groundtruth.txt``
    holds only the first frame's box; its remaining rows are NaN here.

    Args:
        root: the GOT-10k folder (holding ``train/``, ``val/``, ``test/``); default
            ``$FRUGALCV_DATA/GOT-10k``.
        split: "train", "val" or "test".
        names: sequences to read; default every name in ``list.txt``.
    """
    base = _dataset_root(root, "GOT-10k", _GOT_LAYOUT)
    listing = base / split / "list.txt"
    if not listing.is_file():
        raise FileNotFoundError(f"{listing} does not exist; expected layout: {_GOT_LAYOUT}")
    available = [n.strip() for n in listing.read_text().splitlines() if n.strip()]
    out = []
    for name in _names_from(names, available, listing):
        folder = base / split / name
        boxes = read_boxes(folder / "groundtruth.txt")
        num = len(sorted(folder.glob("*.jpg")))
        if num == 0:
            raise FileNotFoundError(f"no frames in {folder}; expected layout: {_GOT_LAYOUT}")
        if len(boxes) < num:  # test split: first frame only
            boxes = torch.cat([boxes, torch.full((num - len(boxes), 4), float("nan"))])
        absent = None
        if (folder / "absence.label").is_file():
            absent = _read_flags(folder / "absence.label", num=num)
        frames = _frames(folder, "{:08d}.jpg", num=num, layout=_GOT_LAYOUT)
        out.append(
            Sequence(
                name=name,
                frames=frames,
                boxes=boxes,
                absent=absent,
                source=f"GOT-10k/{split}/{name}",
            )
        )
    return out


_LASOT_LAYOUT = (
    "root/<category>/<category>-<k>/img/00000001.jpg ..., groundtruth.txt, full_occlusion.txt, "
    "out_of_view.txt"
)


def read_lasot(
    root: str | Path | None = None, *, names: Iterable[str] | None = None
) -> list[Sequence]:
    """Read LaSOT sequences (frames read lazily); ``absent = full_occlusion | out_of_view``.

    Args:
        root: the LaSOT folder holding one folder per category; default ``$FRUGALCV_DATA/LaSOT``.
        names: sequence names such as "airplane-1" (e.g. the lines of the protocol's
            ``testing_set.txt``); default every sequence found.
    """
    base = _dataset_root(root, "LaSOT", _LASOT_LAYOUT)
    available = sorted(
        p.name
        for cat in base.iterdir()
        if cat.is_dir()
        for p in cat.iterdir()
        if (p / "groundtruth.txt").is_file()
    )
    if not available:
        raise FileNotFoundError(f"no LaSOT sequences in {base}; expected layout: {_LASOT_LAYOUT}")
    out = []
    for name in _names_from(names, available, base):
        folder = base / name.rsplit("-", 1)[0] / name
        boxes = read_boxes(folder / "groundtruth.txt")
        absent = torch.zeros(len(boxes), dtype=torch.bool)
        for flag in ("full_occlusion.txt", "out_of_view.txt"):
            if not (folder / flag).is_file():
                raise FileNotFoundError(
                    f"{folder / flag} does not exist; expected: {_LASOT_LAYOUT}"
                )
            absent |= _read_flags(folder / flag, num=len(boxes))
        frames = _frames(folder / "img", "{:08d}.jpg", num=len(boxes), layout=_LASOT_LAYOUT)
        out.append(
            Sequence(name=name, frames=frames, boxes=boxes, absent=absent, source=f"LaSOT/{name}")
        )
    return out


_UAV_LAYOUT = "root/data_seq/UAV123/<seq>/000001.jpg ... and root/anno/UAV123/<seq>.txt"


def read_uav123(
    root: str | Path | None = None,
    *,
    names: Iterable[str] | None = None,
    start_frames: dict[str, tuple[str, int]] | None = None,
) -> list[Sequence]:
    """Read UAV123 sequences (frames read lazily); NaN rows (target out of view) are ``absent``.

    In the release, a few annotation files are parts of one longer video:
    ``anno/UAV123/bird1_2.txt`` annotates ``data_seq/UAV123/bird1/`` from some frame on. The
    start frames live in the benchmark's ``configSeqs.m``; pass them as
    ``start_frames={"bird1_2": ("bird1", first_frame), ...}`` (1-based).
    A part without an entry and without its own frame folder is an error that says so.

    Args:
        root: the UAV123 folder; default ``$FRUGALCV_DATA/UAV123``.
        names: sequences to read; default every ``anno/UAV123/*.txt``.
    """
    base = _dataset_root(root, "UAV123", _UAV_LAYOUT)
    anno = base / "anno" / "UAV123"
    if not anno.is_dir():
        raise FileNotFoundError(f"{anno} does not exist; expected layout: {_UAV_LAYOUT}")
    available = sorted(p.stem for p in anno.glob("*.txt"))
    start_frames = dict(start_frames or {})
    out = []
    for name in _names_from(names, available, anno):
        boxes = read_boxes(anno / f"{name}.txt")
        folder, start = base / "data_seq" / "UAV123" / name, 1
        if name in start_frames:
            video, start = start_frames[name]
            folder = base / "data_seq" / "UAV123" / video
        elif not folder.is_dir():
            raise FileNotFoundError(
                f"{folder} does not exist; expected layout: {_UAV_LAYOUT}. If {name} is a part of "
                f"a longer video, pass start_frames={{'{name}': (video, first_frame)}} from the "
                f"benchmark's configSeqs.m"
            )
        frames = _frames(folder, "{:06d}.jpg", num=len(boxes), layout=_UAV_LAYOUT, start=start)
        absent = ~torch.isfinite(boxes).all(1)
        out.append(
            Sequence(name=name, frames=frames, boxes=boxes, absent=absent, source=f"UAV123/{name}")
        )
    return out


_TNET_LAYOUT = "root/TRAIN_<k>/frames/<seq>/0.jpg ... and root/TRAIN_<k>/anno/<seq>.txt"


def read_trackingnet(
    root: str | Path | None = None,
    *,
    chunks: Iterable[str] = ("TRAIN_0",),
    names: Iterable[str] | None = None,
) -> list[Sequence]:
    """Read TrackingNet chunks (frames read lazily; frame files are numbered from 0, unpadded).

    The TEST chunk's annotation files hold only the first frame's box; the remaining rows are NaN.

    Args:
        root: the TrackingNet folder; default ``$FRUGALCV_DATA/TrackingNet``.
        chunks: chunk folders, e.g. ("TRAIN_0", "TRAIN_1") or ("TEST",).
        names: sequences to read (within the chunks); default all.
    """
    base = _dataset_root(root, "TrackingNet", _TNET_LAYOUT)
    entries: dict[str, Path] = {}
    for chunk in chunks:
        anno = base / chunk / "anno"
        if not anno.is_dir():
            raise FileNotFoundError(f"{anno} does not exist; expected layout: {_TNET_LAYOUT}")
        entries.update({p.stem: base / chunk for p in sorted(anno.glob("*.txt"))})
    out = []
    for name in _names_from(names, sorted(entries), base):
        chunk = entries[name]
        boxes = read_boxes(chunk / "anno" / f"{name}.txt")
        folder = chunk / "frames" / name
        num = len(list(folder.glob("*.jpg"))) if folder.is_dir() else 0
        if num == 0:
            raise FileNotFoundError(f"no frames in {folder}; expected layout: {_TNET_LAYOUT}")
        if len(boxes) < num:
            boxes = torch.cat([boxes, torch.full((num - len(boxes), 4), float("nan"))])
        frames = _frames(folder, "{}.jpg", num=num, layout=_TNET_LAYOUT, start=0)
        out.append(
            Sequence(
                name=name, frames=frames, boxes=boxes, source=f"TrackingNet/{chunk.name}/{name}"
            )
        )
    return out
