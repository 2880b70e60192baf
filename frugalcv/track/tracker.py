"""The `Tracker` protocol every tracker here follows, a floor baseline, and the OPE runner.

The protocol mirrors pytracking's ``BaseTracker.initialize(image, info)`` / ``track(image)`` and
got10k's ``init(image, box)`` / ``update(image)``: one call with the first frame and its box, then
one call per frame that returns the box. Frames are uint8 (H, W, 3); boxes ``(x, y, w, h)`` in
pixels (OTB convention).
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from frugalcv.data.tracking import Sequence

__all__ = ["IdentityTracker", "Tracker", "run_tracker"]


@runtime_checkable
class Tracker(Protocol):
    """A single-object tracker.

    ``confidence`` (a float in [0, 1] for the last tracked frame) is optional; trackers that have
    it feed uncertainty sampling (`frugalcv.track.selection.uncertainty_frames`).
    """

    def initialize(self, frame: Tensor, box: Tensor) -> None:
        """Start on ``frame`` (uint8 (H, W, 3)) with the target at ``box`` (4,) (x, y, w, h)."""

    def track(self, frame: Tensor) -> Tensor:
        """The target's (4,) box (x, y, w, h) in the next ``frame``."""


class IdentityTracker:
    """Returns the first box on every frame: the floor any tracker must beat (as got10k's
    ``IdentityTracker``)."""

    confidence: float = 1.0

    def initialize(self, frame: Tensor, box: Tensor) -> None:
        self.box = torch.as_tensor(box, dtype=torch.float32).clone()

    def track(self, frame: Tensor) -> Tensor:
        return self.box.clone()


def run_tracker(tracker: Tracker, sequence: Sequence) -> dict[str, Tensor | float]:
    """One-pass evaluation run: initialise on frame 0 with its ground truth, track the rest.

    Returns:
        ``boxes`` (T, 4) with ``boxes[0]`` the ground truth, ``confidence`` (T,) (1 at frame 0;
        NaN when the tracker has no ``confidence``), and ``fps`` over frames 1..T-1.
    """
    if len(sequence) < 1:
        raise ValueError(f"{sequence.name} has no frames")
    init = sequence.boxes[0]
    if not (torch.isfinite(init).all() and init[2] > 0 and init[3] > 0):
        raise ValueError(f"{sequence.name}: frame 0 needs a valid box to initialise; got {init}")
    tracker.initialize(sequence.frame(0), init)
    boxes = torch.empty(len(sequence), 4)
    conf = torch.full((len(sequence),), float("nan"))
    boxes[0], conf[0] = init, 1.0
    start = time.perf_counter()
    for t in range(1, len(sequence)):
        boxes[t] = torch.as_tensor(tracker.track(sequence.frame(t)), dtype=torch.float32)
        conf[t] = float(getattr(tracker, "confidence", float("nan")))
    elapsed = time.perf_counter() - start
    fps = (len(sequence) - 1) / elapsed if elapsed > 0 and len(sequence) > 1 else float("nan")
    return {"boxes": boxes, "confidence": conf, "fps": fps}
