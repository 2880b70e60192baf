"""The ``alt`` tracker: its Task and inference tracker from the config, one-pass evaluation on
the test sequences, and the round's tracker scoring the pool (features for ALT, confidence for
uncertainty sampling)."""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor

from frugalcv.data.tracking import Sequence
from frugalcv.track.alt_recipe.config import MODEL_BASED, ALTConfig
from frugalcv.track.metrics import ope_scores
from frugalcv.track.siamese import SiamBoxNet, SiamTracker, TrackerTask, frame_features
from frugalcv.track.tracker import run_tracker

__all__ = ["evaluate_ope", "make_task", "score_pool"]


def make_task(a: ALTConfig) -> TrackerTask:
    """A fresh `TrackerTask` (the caller seeds torch first, so every round starts alike)."""
    return TrackerTask(
        model=SiamBoxNet(),
        box_loss=a.box_loss,
        alpha=a.alpha,
        beta=a.beta,
        box_weight=a.box_weight,
        pos_radius=a.pos_radius,
    )


def make_tracker(model: SiamBoxNet, a: ALTConfig) -> SiamTracker:
    return SiamTracker(model, window_influence=a.window_influence, size_lr=a.size_lr)


def evaluate_ope(tracker: Any, sequences: list[Sequence]) -> tuple[dict, list[Tensor]]:
    """OPE scores of ``tracker`` over ``sequences`` plus ``fps`` (all frames over all time).

    Returns:
        ``(scores, boxes)``: `ope_scores` keys without the curves, and ``fps``; the (T, 4)
        predictions per sequence.
    """
    results, boxes, frames, seconds = [], [], 0, 0.0
    for seq in sequences:
        out = run_tracker(tracker, seq)
        results.append((out["boxes"], seq.boxes))
        boxes.append(out["boxes"])
        if math.isfinite(out["fps"]):
            frames += len(seq) - 1
            seconds += (len(seq) - 1) / out["fps"]
    scores = ope_scores(results)
    keep = ("success_auc", "success_rate", "precision", "mean_iou")
    out = {k: scores[k] for k in keep}
    out["fps"] = frames / seconds if seconds > 0 else None
    return out, boxes


def score_pool(
    model: SiamBoxNet, a: ALTConfig, sequences: list[Sequence]
) -> tuple[list[Tensor] | None, list[Tensor] | None]:
    """The round's tracker over each pool sequence from its first box: ``(features, confidence)``.

    Features (ALT): backbone embeddings of crops around the tracked boxes (``alt.features=box``)
    or of whole frames (``frame``); confidence (uncertainty): the peak score per frame.
    """
    if a.selector not in MODEL_BASED:
        return None, None
    features, confidence = [], []
    for seq in sequences:
        needs_run = a.selector == "uncertainty" or a.features == "box"
        out = run_tracker(make_tracker(model, a), seq) if needs_run else None
        if a.selector == "uncertainty":
            confidence.append(out["confidence"])
        else:
            boxes = out["boxes"] if a.features == "box" else None
            features.append(frame_features(model.backbone, seq, boxes=boxes))
    return (features or None), (confidence or None)
