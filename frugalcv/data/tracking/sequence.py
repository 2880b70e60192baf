"""The `Sequence` container (one annotated video) and `load_frame`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = ["Sequence", "load_frame"]


def load_frame(path: str | Path) -> Tensor:
    """Read one image file as a uint8 (H, W, 3) tensor (grey and RGBA images become RGB)."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"frame {path} does not exist")
    with Image.open(path) as image:
        return torch.from_numpy(np.asarray(image.convert("RGB")).copy())


@dataclass
class Sequence:
    """One annotated video.

    Attributes:
        name: sequence name, unique within a data set.
        frames: uint8 tensor (T, H, W, 3), or a list of T image paths read lazily by `frame`.
        boxes: (T, 4) float32 ground truth (x, y, w, h) in pixels; NaN rows where none is given.
        absent: (T,) bool, True where the target is not visible (full occlusion, out of view,
            or no ground truth), or None when the data set gives no such labels.
        attributes: challenge tags, e.g. ("OCC", "MB", "BC", "SV") for the procedural sequences.
        source: where the data came from, never a machine path.
    """

    name: str
    frames: Tensor | list[Path]
    boxes: Tensor
    absent: Tensor | None = None
    attributes: tuple[str, ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        self.boxes = torch.as_tensor(self.boxes, dtype=torch.float32)
        if self.boxes.ndim != 2 or self.boxes.shape[1] != 4:
            raise ValueError(
                f"{self.name}: boxes must be (T, 4) rows (x, y, w, h); "
                f"got {tuple(self.boxes.shape)}"
            )
        if torch.is_tensor(self.frames):
            if (
                self.frames.ndim != 4
                or self.frames.shape[-1] != 3
                or self.frames.dtype != torch.uint8
            ):
                raise ValueError(
                    f"{self.name}: frames must be a uint8 (T, H, W, 3) tensor or a list of paths; "
                    f"got {self.frames.dtype} {tuple(self.frames.shape)}"
                )
        else:
            self.frames = [Path(p) for p in self.frames]
        if len(self.frames) != len(self.boxes):
            raise ValueError(
                f"{self.name}: {len(self.frames)} frames but {len(self.boxes)} boxes; every frame "
                f"needs one ground-truth row"
            )
        if self.absent is not None:
            self.absent = torch.as_tensor(self.absent, dtype=torch.bool)
            if self.absent.shape != (len(self.boxes),):
                raise ValueError(
                    f"{self.name}: absent must be ({len(self.boxes)},); "
                    f"got {tuple(self.absent.shape)}"
                )

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def in_memory(self) -> bool:
        return torch.is_tensor(self.frames)

    def frame(self, index: int) -> Tensor:
        """Frame ``index`` as uint8 (H, W, 3); files are read on demand (not cached)."""
        if self.in_memory:
            return self.frames[index]
        return load_frame(self.frames[index])

    def load(self) -> Sequence:
        """This sequence with every frame read into one uint8 (T, H, W, 3) tensor."""
        if self.in_memory:
            return self
        frames = torch.stack([load_frame(p) for p in self.frames])
        return Sequence(
            name=self.name,
            frames=frames,
            boxes=self.boxes,
            absent=self.absent,
            attributes=self.attributes,
            source=self.source,
        )

    def visible(self) -> Tensor:
        """(T,) bool: target visible and ground truth valid (finite, positive w and h)."""
        valid = torch.isfinite(self.boxes).all(1) & (self.boxes[:, 2] > 0) & (self.boxes[:, 3] > 0)
        if self.absent is not None:
            valid &= ~self.absent
        return valid
