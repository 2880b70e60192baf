"""OPE metrics (got10k-toolkit OTB conventions) on hand-made boxes."""

import math

import pytest
import torch

from frugalcv.track import (
    PRECISION_THRESHOLDS,
    SUCCESS_THRESHOLDS,
    centre_errors,
    ope_scores,
    overlaps,
    precision_curve,
    success_curve,
)

GT = torch.tensor([[0.0, 0, 10, 10]] * 3)
# IoU 1; 0.5 (the lower half: I = 50, U = 100); 0. Centre errors 0, 2.5, 50.
PRED = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 5], [50, 0, 10, 10]])


def test_thresholds_match_toolkit():
    assert len(SUCCESS_THRESHOLDS) == 21 and SUCCESS_THRESHOLDS[10] == 0.5
    assert PRECISION_THRESHOLDS[20] == 20 and len(PRECISION_THRESHOLDS) == 51


def test_overlaps_and_centre_errors_hand_values():
    iou = overlaps(PRED, GT, first_frame_gt=False)
    assert torch.allclose(iou, torch.tensor([1.0, 0.5, 0.0], dtype=torch.float64))
    err = centre_errors(PRED, GT, first_frame_gt=False)
    assert torch.allclose(err, torch.tensor([0.0, 2.5, 50.0], dtype=torch.float64))


def test_success_auc_worked_example():
    scores = ope_scores([(PRED, GT)], first_frame_gt=False)
    assert scores["success_auc"] == pytest.approx(10 / 21)
    assert scores["success_rate"] == pytest.approx(1 / 3)  # 0.5 is not > 0.5
    assert scores["precision"] == pytest.approx(2 / 3)  # errors 0, 2.5 <= 20; 50 is not
    assert scores["mean_iou"] == pytest.approx(0.5)
    curve = success_curve(PRED, GT, first_frame_gt=False)
    assert torch.allclose(curve[:10], torch.full((10,), 2 / 3, dtype=torch.float64))
    assert torch.allclose(curve[10:20], torch.full((10,), 1 / 3, dtype=torch.float64))
    assert curve[20] == 0


def test_first_frame_replaced_by_ground_truth():
    pred = PRED.clone()
    pred[0] = torch.tensor([100.0, 100, 5, 5])  # ignored: the toolkit scores frame 1 as GT
    assert ope_scores([(pred, GT)])["success_auc"] == pytest.approx(10 / 21)
    assert ope_scores([(pred, GT)], first_frame_gt=False)["success_auc"] < 10 / 21


def test_precision_at_exactly_20px_counts():
    gt = torch.tensor([[0.0, 0, 10, 10]] * 2)
    pred = torch.tensor([[0.0, 0, 10, 10], [12, 16, 10, 10]])  # centre error 20 exactly
    assert precision_curve(pred, gt)[20] == 1.0
    assert precision_curve(pred, gt)[19] == 0.5


def test_sequences_are_averaged_not_frames():
    gt1, pred1 = GT[:1], GT[:1]  # one frame, perfect -> AUC 20/21 (IoU 1 is not > 1)
    scores = ope_scores([(pred1, gt1), (PRED, GT)], first_frame_gt=False)
    assert scores["success_auc"] == pytest.approx((20 / 21 + 10 / 21) / 2)
    assert scores["num_sequences"] == 2


def test_invalid_ground_truth_fail_or_exclude():
    gt = torch.tensor([[0.0, 0, 10, 10], [float("nan")] * 4, [0, 0, 0, 0]])
    pred = torch.tensor([[0.0, 0, 10, 10]] * 3)
    fail = ope_scores([(pred, gt)], invalid="fail")
    excl = ope_scores([(pred, gt)], invalid="exclude")
    assert fail["success_rate"] == pytest.approx(1 / 3)
    assert excl["success_rate"] == 1.0
    assert math.isnan(float(overlaps(pred, gt)[1]))
    with pytest.raises(ValueError, match="'fail' or 'exclude'"):
        ope_scores([(pred, gt)], invalid="skip")


def test_lost_prediction_is_a_failure():
    pred = PRED.clone()
    pred[1] = float("nan")
    assert overlaps(pred, GT)[1] == 0 and centre_errors(pred, GT)[1] == math.inf


def test_shape_errors():
    with pytest.raises(ValueError, match=r"\(T, 4\)"):
        overlaps(torch.zeros(3, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="empty"):
        ope_scores([])
