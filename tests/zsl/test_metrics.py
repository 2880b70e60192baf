"""Tests for frugalcv.zsl.metrics: hand-derived ZSL / GZSL values and calibrated stacking."""

import pytest
import torch

from frugalcv.zsl import (
    calibrated_stacking,
    chance_accuracy,
    gzsl_accuracy,
    harmonic_mean,
    oracle_accuracy,
    per_class_accuracy,
    predict_among,
    select_gamma,
    zsl_accuracy,
)

pytestmark = pytest.mark.unit

SEEN, UNSEEN = torch.tensor([0, 1]), torch.tensor([2, 3])
# Two seen-class test samples (labels 0, 1) and two unseen ones (labels 2, 3), scored on 4 classes.
SCORES_S = torch.tensor([[5.0, 1.0, 4.0, 0.0], [1.0, 5.0, 0.0, 4.5]])
SCORES_U = torch.tensor([[5.0, 0.0, 4.0, 0.0], [0.0, 3.0, 0.0, 2.5]])
Y_S, Y_U = torch.tensor([0, 1]), torch.tensor([2, 3])


def test_per_class_accuracy_hand_value():
    # class 0: 2/3, class 1: 1/1, class 2: 1/2 -> mean 13/18 (the sample mean would be 4/6)
    target = torch.tensor([0, 0, 0, 1, 2, 2])
    pred = torch.tensor([0, 0, 1, 1, 2, 0])
    assert per_class_accuracy(pred, target) == pytest.approx(13 / 18)


def test_per_class_accuracy_rejects_class_without_samples():
    with pytest.raises(ValueError, match="class 5 has no samples"):
        per_class_accuracy(torch.tensor([0]), torch.tensor([0]), classes=torch.tensor([0, 5]))


def test_zsl_predicts_among_unseen_only():
    # Over all classes both samples go to class 0 or 1; among the unseen {2, 3} both are right.
    assert zsl_accuracy(SCORES_U, Y_U, unseen_classes=UNSEEN) == 1.0
    assert predict_among(SCORES_U, UNSEEN).tolist() == [2, 3]


@pytest.mark.parametrize(
    ("gamma", "seen", "unseen"),
    [(0.0, 1.0, 0.0), (0.75, 0.5, 0.5), (1.5, 0.0, 1.0)],
)
def test_gzsl_hand_values_with_calibrated_stacking(gamma, seen, unseen):
    # gamma 0.75: seen sample 2 flips to class 3 (4.25 < 4.5), unseen sample 2 to class 3
    r = gzsl_accuracy(SCORES_S, Y_S, SCORES_U, Y_U, seen_classes=SEEN, gamma=gamma)
    assert r == pytest.approx({"seen": seen, "unseen": unseen, "h": harmonic_mean(seen, unseen)})


def test_harmonic_mean_and_calibration():
    assert harmonic_mean(0.5, 0.5) == 0.5
    assert harmonic_mean(0.8, 0.2) == pytest.approx(0.32)
    assert harmonic_mean(0.0, 0.0) == 0.0
    out = calibrated_stacking(SCORES_S, seen_classes=SEEN, gamma=2.0)
    assert torch.equal(out[:, :2], SCORES_S[:, :2] - 2.0)
    assert torch.equal(out[:, 2:], SCORES_S[:, 2:])


def test_select_gamma_reaches_the_balanced_point():
    gamma, r = select_gamma(SCORES_S, Y_S, SCORES_U, Y_U, seen_classes=SEEN, gammas=[0, 0.75, 1.5])
    assert gamma == 0.75 and r["h"] == 0.5


def test_chance_and_oracle():
    assert chance_accuracy(3) == pytest.approx(1 / 3)
    g = torch.Generator().manual_seed(0)
    y = torch.arange(4).repeat_interleave(30)
    centres = torch.randn(4, 5, generator=g) * 5
    x = centres[y] + 0.1 * torch.randn(120, 5, generator=g)
    assert oracle_accuracy(x, y) == 1.0  # well-separated classes
    noise = torch.randn(120, 5, generator=g)  # features unrelated to the labels
    assert oracle_accuracy(noise, y) < 0.6
