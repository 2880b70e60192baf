"""ZSD / GZSD metrics on hand-made boxes (COCO 101-point AP via torchmetrics)."""

import pytest
import torch

from frugalcv.zsd import MeanAP50, gzsd_metrics, zsd_metrics

pytestmark = pytest.mark.unit

T = torch.tensor
BOX_A, BOX_B = [0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 40.0, 40.0]


def _pred(boxes, scores, labels):
    return {"boxes": T(boxes).reshape(-1, 4), "scores": T(scores), "labels": T(labels)}


def _gt(boxes, labels):
    return {"boxes": T(boxes).reshape(-1, 4), "labels": T(labels)}


def test_perfect_detection_gives_map_and_recall_one():
    targets = [_gt([BOX_A, BOX_B], [5, 6])]
    preds = [_pred([BOX_A, BOX_B], [0.9, 0.8], [5, 6])]
    out = zsd_metrics(preds, targets, unseen_classes=[5, 6])
    assert out == pytest.approx(
        {"map": 1.0, "recall@100_iou0.4": 1.0, "recall@100_iou0.5": 1.0, "recall@100_iou0.6": 1.0}
    )


def test_a_miss_halves_recall_and_gives_101_point_ap():
    # two objects of class 5, one found: recall 1/2; precision 1 up to recall 0.5, so 51 of the
    # 101 recall points (0, 0.01, ..., 0.5) have precision 1: AP = 51/101
    targets = [_gt([BOX_A, BOX_B], [5, 5])]
    preds = [_pred([BOX_A], [0.9], [5])]
    out = zsd_metrics(preds, targets, unseen_classes=[5])
    assert out["recall@100_iou0.5"] == pytest.approx(0.5)
    assert out["map"] == pytest.approx(51 / 101, abs=1e-6)
    metric = MeanAP50()
    metric.update(preds, targets)
    assert float(metric.compute()) == pytest.approx(51 / 101, abs=1e-6)


def test_recall_depends_on_iou_threshold():
    # prediction covers 11 of 20 columns of the box: IoU 0.55 -> a hit at 0.4 and 0.5, not 0.6
    targets = [_gt([BOX_B], [3])]
    preds = [_pred([[29.0, 20.0, 40.0, 40.0]], [0.9], [3])]
    out = zsd_metrics(preds, targets, unseen_classes=[3])
    assert out["recall@100_iou0.4"] == 1.0
    assert out["recall@100_iou0.5"] == 1.0
    assert out["recall@100_iou0.6"] == 0.0


def test_gzsd_seen_unseen_and_harmonic_mean():
    targets = [_gt([BOX_A, BOX_B], [0, 7]), _gt([BOX_A], [7])]
    preds = [_pred([BOX_A, BOX_B], [0.9, 0.8], [0, 7]), _pred([], [], [])]
    out = gzsd_metrics(preds, targets, seen_classes=[0, 1], unseen_classes=[7])
    ap_u = 51 / 101
    assert out["map_seen"] == pytest.approx(1.0)
    assert out["map_unseen"] == pytest.approx(ap_u, abs=1e-6)
    assert out["map_hm"] == pytest.approx(2 * ap_u / (1 + ap_u), abs=1e-6)
    assert out["recall_seen"] == 1.0 and out["recall_unseen"] == pytest.approx(0.5)
    assert out["recall_hm"] == pytest.approx(2 * 0.5 / 1.5)


def test_zsd_rejects_predictions_outside_unseen_classes():
    with pytest.raises(ValueError, match="outside the unseen classes"):
        zsd_metrics([_pred([BOX_A], [0.9], [0])], [_gt([BOX_A], [5])], unseen_classes=[5])
    with pytest.raises(ValueError, match="one dict per image"):
        zsd_metrics([], [_gt([BOX_A], [5])], unseen_classes=[5])
