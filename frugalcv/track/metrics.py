"""One-pass evaluation (OPE) of single-object trackers: success AUC and precision at 20 px.

Conventions follow the **GOT-10k toolkit's OTB experiment** (got-10k/toolkit,
``got10k/experiments/otb.py`` and ``got10k/utils/metrics.py``), the lightest reference
implementation, which can be cross-checked with ``pip install got10k``:

- boxes are ``(x, y, w, h)``; IoU uses continuous areas ``w * h`` (no +1 pixel), centres
  ``x + w / 2`` (the toolkit's ``x + (w - 1) / 2`` gives the same centre *differences*);
- the tracker's first-frame box is replaced by the ground truth before scoring
  (``boxes[0] = anno[0]``), so frame 1 always counts as IoU 1 and error 0;
- success curve: fraction of frames with ``IoU > thr`` for 21 thresholds ``linspace(0, 1, 21)``;
  **success AUC = mean of the curve**; success rate = the curve at 0.5 (``IoU > 0.5``);
- precision curve: fraction of frames with centre error ``<= thr`` for ``thr = 0..50`` px;
  **precision = the curve at 20 px**;
- over a data set, the per-sequence curves are averaged (every sequence weighs the same).

Frames with invalid ground truth (NaN, or ``w <= 0`` / ``h <= 0``): the got10k OTB experiment has
none to handle (OTB has none). ``invalid="fail"`` (default) scores such frames as failures (IoU 0,
error infinite) but keeps them in the denominator, as pysot's OPE benchmark does
(``toolkit/utils/statistics.py``); ``invalid="exclude"`` drops them, as pytracking's
``exclude_invalid_frames=True`` does. Other toolkits differ (pytracking uses the +1-pixel IoU and
``arange(0, 1.05, 0.05)`` thresholds), so the same tracker output scores differently: name the
toolkit with every number.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import torch
from torch import Tensor

from frugalcv.track.boxes import box_centre, box_iou

__all__ = [
    "PRECISION_THRESHOLDS",
    "SUCCESS_THRESHOLDS",
    "centre_errors",
    "ope_scores",
    "overlaps",
    "precision_curve",
    "success_curve",
]

# got10k/experiments/otb.py: nbins_iou = 21, thresholds linspace(0, 1, 21).
SUCCESS_THRESHOLDS = torch.linspace(0, 1, 21, dtype=torch.float64)
# got10k/experiments/otb.py: nbins_ce = 51, thresholds 0..50 px; the score is the value at 20 px.
PRECISION_THRESHOLDS = torch.arange(0, 51, dtype=torch.float64)
_PRECISION_AT = 20

Invalid = Literal["fail", "exclude"]


def _valid_gt(gt: Tensor) -> Tensor:
    return torch.isfinite(gt).all(-1) & (gt[..., 2] > 0) & (gt[..., 3] > 0)


def _prepare(pred: Tensor, gt: Tensor, first_frame_gt: bool) -> tuple[Tensor, Tensor]:
    pred = torch.as_tensor(pred, dtype=torch.float64)
    gt = torch.as_tensor(gt, dtype=torch.float64)
    if pred.shape != gt.shape or pred.ndim != 2 or pred.shape[1] != 4:
        raise ValueError(
            f"pred and gt must both be (T, 4) boxes (x, y, w, h); got {tuple(pred.shape)} and "
            f"{tuple(gt.shape)}"
        )
    if first_frame_gt and len(pred):
        pred = pred.clone()
        pred[0] = gt[0]  # got10k ExperimentOTB: boxes[0] = anno[0]
    return pred, gt


def overlaps(pred: Tensor, gt: Tensor, *, first_frame_gt: bool = True) -> Tensor:
    """(T,) IoU per frame (continuous areas); NaN where the ground truth is invalid.

    Args:
        pred, gt: (T, 4) ``(x, y, w, h)``.
        first_frame_gt: replace ``pred[0]`` by ``gt[0]`` first (got10k OTB convention).
    """
    pred, gt = _prepare(pred, gt, first_frame_gt)
    iou = box_iou(pred, gt)
    iou = torch.where(torch.isfinite(pred).all(-1), iou, torch.zeros_like(iou))  # lost = 0
    return torch.where(_valid_gt(gt), iou, torch.full_like(iou, float("nan")))


def centre_errors(pred: Tensor, gt: Tensor, *, first_frame_gt: bool = True) -> Tensor:
    """(T,) Euclidean distance between box centres in pixels; NaN where gt is invalid.

    A prediction with non-finite values counts as infinitely far.
    """
    pred, gt = _prepare(pred, gt, first_frame_gt)
    err = (box_centre(pred) - box_centre(gt)).norm(dim=-1)
    err = torch.where(torch.isfinite(err), err, torch.full_like(err, float("inf")))
    return torch.where(_valid_gt(gt), err, torch.full_like(err, float("nan")))


def _rates(values: Tensor, thresholds: Tensor, *, above: bool, invalid: str) -> Tensor:
    if invalid not in ("fail", "exclude"):
        raise ValueError(f"invalid must be 'fail' or 'exclude'; got {invalid!r}")
    valid = ~torch.isnan(values)
    if invalid == "exclude":
        values = values[valid]
        if len(values) == 0:
            raise ValueError("no frame has valid ground truth; nothing to score")
        valid = torch.ones_like(values, dtype=torch.bool)
    hits = values[:, None] > thresholds if above else values[:, None] <= thresholds  # (T, K)
    hits &= valid[:, None]  # NaN compares False anyway; kept explicit
    return hits.double().mean(0)


def success_curve(
    pred: Tensor, gt: Tensor, *, first_frame_gt: bool = True, invalid: Invalid = "fail"
) -> Tensor:
    """(21,) fraction of frames with ``IoU > thr`` for ``thr`` in `SUCCESS_THRESHOLDS`."""
    return _rates(
        overlaps(pred, gt, first_frame_gt=first_frame_gt),
        SUCCESS_THRESHOLDS,
        above=True,
        invalid=invalid,
    )


def precision_curve(
    pred: Tensor, gt: Tensor, *, first_frame_gt: bool = True, invalid: Invalid = "fail"
) -> Tensor:
    """(51,) fraction of frames with centre error ``<= thr`` px, ``thr = 0..50``."""
    return _rates(
        centre_errors(pred, gt, first_frame_gt=first_frame_gt),
        PRECISION_THRESHOLDS,
        above=False,
        invalid=invalid,
    )


def ope_scores(
    results: Iterable[tuple[Tensor, Tensor]],
    *,
    first_frame_gt: bool = True,
    invalid: Invalid = "fail",
) -> dict[str, float | list[float]]:
    """OPE scores over a data set, got10k-toolkit OTB conventions (module docstring).

    Worked example (one sequence, ``first_frame_gt=False``): IoUs (1, 0.5, 0) give a curve of
    2/3 for the 10 thresholds 0..0.45, 1/3 for the 10 thresholds 0.5..0.95 and 0 at 1, so
    AUC = (10 * 2/3 + 10 * 1/3) / 21 = 10/21 ~ 0.476 and the success rate is 1/3 (IoU 0.5 is not
    > 0.5).

    Args:
        results: (pred, gt) pairs of (T_i, 4) boxes, one per sequence.

    Returns:
        ``success_auc`` (mean success curve over thresholds and sequences), ``success_rate``
        (IoU > 0.5), ``precision`` (centre error <= 20 px), ``mean_iou`` (over sequences of the
        per-sequence mean IoU, invalid frames as 0 or excluded), the mean ``success_curve`` and
        ``precision_curve`` as lists, and ``num_sequences``.
    """
    succ, prec, mean_iou = [], [], []
    for pred, gt in results:
        succ.append(success_curve(pred, gt, first_frame_gt=first_frame_gt, invalid=invalid))
        prec.append(precision_curve(pred, gt, first_frame_gt=first_frame_gt, invalid=invalid))
        iou = overlaps(pred, gt, first_frame_gt=first_frame_gt)
        iou = iou[~iou.isnan()] if invalid == "exclude" else iou.nan_to_num(0.0)
        mean_iou.append(float(iou.mean()))
    if not succ:
        raise ValueError("results is empty: pass at least one (pred, gt) pair")
    s, p = torch.stack(succ).mean(0), torch.stack(prec).mean(0)
    return {
        "success_auc": float(s.mean()),
        "success_rate": float(s[10]),  # threshold 0.5
        "precision": float(p[_PRECISION_AT]),
        "mean_iou": sum(mean_iou) / len(mean_iou),
        "success_curve": s.tolist(),
        "precision_curve": p.tolist(),
        "num_sequences": len(succ),
    }
