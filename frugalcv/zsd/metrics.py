"""Zero-shot detection metrics: ZSD mAP, Recall@100 and GZSD seen / unseen / harmonic mean.

Protocol (research notes section 4.5; the reference implementation is the COCOeval copy of
zhengye1995/Zero-shot-Instance-Segmentation): AP and recall per class with COCO's matching
(101-point interpolated AP, greedy matching by score), computed here by torchmetrics'
``MeanAveragePrecision`` (pycocotools backend), never by hand.

- ZSD: the detector predicts among the unseen classes only; mAP@0.5 and Recall@100 at IoU
  0.4 / 0.5 / 0.6 over the unseen classes (:func:`zsd_metrics`).
- GZSD: the detector predicts among all classes; per-class AP and recall at IoU 0.5 are averaged
  over the seen and over the unseen classes, and HM = 2 S U / (S + U) (:func:`gzsd_metrics`).

Inputs, as torchmetrics: ``preds`` is a list (one per image) of dicts with ``boxes`` (n, 4) xyxy,
``scores`` (n,) and ``labels`` (n,) int64 class ids; ``targets`` a list of dicts with ``boxes``
and ``labels``. A class counts in a mean only when it has ground truth (COCO's rule).

Note: the VOC papers report VOC07 11-point AP in some tables; this module always uses COCO's
101-point interpolation, so numbers are close to but not identical with 11-point values.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics.detection import MeanAveragePrecision

from frugalcv.zsl.metrics import harmonic_mean

__all__ = [
    "RECALL_IOUS",
    "MeanAP50",
    "gzsd_metrics",
    "per_class_ap_recall",
    "zsd_metrics",
]

# IoU thresholds of the COCO ZSD Recall@100 columns (Bansal et al. 2018; research notes 4.5).
RECALL_IOUS = (0.4, 0.5, 0.6)


class MeanAP50(MeanAveragePrecision):
    """``MeanAveragePrecision`` at IoU 0.5 whose ``compute()`` returns the mAP scalar.

    For ``Task.eval_metrics``, which needs a metric with one number; the plain metric returns a
    dict. Classes without ground truth are left out of the mean (COCO's rule).
    """

    def __init__(self) -> None:
        super().__init__(iou_type="bbox", iou_thresholds=[0.5], class_metrics=False)

    def compute(self) -> Tensor:
        return super().compute()["map"]


def _check_lists(preds: Sequence[dict], targets: Sequence[dict]) -> None:
    if len(preds) != len(targets):
        raise ValueError(
            f"preds and targets must hold one dict per image; got {len(preds)} and {len(targets)}"
        )
    for i, p in enumerate(preds):
        missing = {"boxes", "scores", "labels"} - set(p)
        if missing:
            raise ValueError(f"prediction {i} lacks keys {sorted(missing)}")
    for i, t in enumerate(targets):
        missing = {"boxes", "labels"} - set(t)
        if missing:
            raise ValueError(f"target {i} lacks keys {sorted(missing)}")


def _keep(d: dict, classes: Tensor, keys: tuple[str, ...]) -> dict:
    m = torch.isin(d["labels"].long().cpu(), classes)
    return {k: torch.as_tensor(d[k]).cpu()[m] for k in keys}


def per_class_ap_recall(
    preds: Sequence[dict],
    targets: Sequence[dict],
    *,
    iou_threshold: float = 0.5,
    max_detections: int = 100,
) -> dict[int, tuple[float, float]]:
    """AP and recall (at most ``max_detections`` per image) of every class with ground truth.

    Returns:
        {class id: (AP, recall)} at ``iou_threshold``, COCO matching (torchmetrics).
    """
    _check_lists(preds, targets)
    metric = MeanAveragePrecision(
        iou_type="bbox",
        iou_thresholds=[iou_threshold],
        max_detection_thresholds=[1, 10, max_detections],
        class_metrics=True,
    )
    metric.update(
        [{k: torch.as_tensor(p[k]).cpu() for k in ("boxes", "scores", "labels")} for p in preds],
        [{k: torch.as_tensor(t[k]).cpu() for k in ("boxes", "labels")} for t in targets],
    )
    out = metric.compute()
    gt = set(torch.cat([torch.as_tensor(t["labels"]).long().cpu() for t in targets]).tolist())
    classes = out["classes"].reshape(-1).tolist()
    ap = out["map_per_class"].reshape(-1).tolist()
    rec = out[f"mar_{max_detections}_per_class"].reshape(-1).tolist()
    return {int(c): (a, r) for c, a, r in zip(classes, ap, rec, strict=True) if int(c) in gt}


def _mean(values: list[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0


def zsd_metrics(
    preds: Sequence[dict],
    targets: Sequence[dict],
    *,
    unseen_classes: Tensor | Sequence[int],
    iou_threshold: float = 0.5,
    recall_ious: Sequence[float] = RECALL_IOUS,
) -> dict[str, float]:
    """ZSD: mAP and Recall@100 over the unseen classes, predictions among unseen classes.

    Target boxes of other classes are ignored (the ZSD test set keeps unseen objects only).

    Returns:
        ``map`` (at ``iou_threshold``) and ``recall@100_iou{t}`` for each t in ``recall_ious``,
        means over the unseen classes that have ground truth.

    Raises:
        ValueError: a prediction has a class outside ``unseen_classes`` (predict among the
            unseen classes for ZSD; use :func:`gzsd_metrics` for all classes).
    """
    _check_lists(preds, targets)
    unseen = torch.as_tensor(unseen_classes, dtype=torch.long).cpu()
    for i, p in enumerate(preds):
        outside = ~torch.isin(p["labels"].long().cpu(), unseen)
        if outside.any():
            raise ValueError(
                f"prediction {i} has classes {sorted(set(p['labels'][outside].tolist()))} outside "
                "the unseen classes; ZSD predicts among unseen classes only"
            )
    preds = [_keep(p, unseen, ("boxes", "scores", "labels")) for p in preds]
    targets = [_keep(t, unseen, ("boxes", "labels")) for t in targets]
    per_class = per_class_ap_recall(preds, targets, iou_threshold=iou_threshold)
    out = {"map": _mean([ap for ap, _ in per_class.values()])}
    for iou in recall_ious:
        pc = per_class_ap_recall(preds, targets, iou_threshold=iou)
        out[f"recall@100_iou{iou:g}"] = _mean([r for _, r in pc.values()])
    return out


def gzsd_metrics(
    preds: Sequence[dict],
    targets: Sequence[dict],
    *,
    seen_classes: Tensor | Sequence[int],
    unseen_classes: Tensor | Sequence[int],
    iou_threshold: float = 0.5,
) -> dict[str, float]:
    """GZSD: per-class AP and Recall@100 averaged over seen and unseen classes, and their HM.

    Predictions are among all classes; each class is scored on the whole GZSD test set.

    Returns:
        ``map_seen``, ``map_unseen``, ``map_hm``, ``recall_seen``, ``recall_unseen``,
        ``recall_hm`` at ``iou_threshold``.
    """
    seen = set(torch.as_tensor(seen_classes).tolist())
    unseen = set(torch.as_tensor(unseen_classes).tolist())
    if seen & unseen:
        raise ValueError(f"seen and unseen classes overlap: {sorted(seen & unseen)}")
    per_class = per_class_ap_recall(preds, targets, iou_threshold=iou_threshold)
    out = {}
    for name, group in (("seen", seen), ("unseen", unseen)):
        out[f"map_{name}"] = _mean([v[0] for c, v in per_class.items() if c in group])
        out[f"recall_{name}"] = _mean([v[1] for c, v in per_class.items() if c in group])
    out["map_hm"] = harmonic_mean(out["map_seen"], out["map_unseen"])
    out["recall_hm"] = harmonic_mean(out["recall_seen"], out["recall_unseen"])
    return out
