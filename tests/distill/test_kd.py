"""Tests for frugalcv.distill.kd: Hinton KD hand values and invariants."""

import math

import pytest
import torch
import torch.nn.functional as F

from frugalcv.distill import kd_loss

pytestmark = pytest.mark.unit


def _rand(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_zero_when_logits_equal(temperature):
    logits = _rand(5, 10)
    assert kd_loss(logits, logits.clone(), temperature=temperature).abs().item() < 1e-15


def test_hand_value_two_classes():
    # Teacher p_t = (3/4, 1/4), student p_s = (1/2, 1/2):
    # KL = 3/4 log(3/2) + 1/4 log(1/2) = 3/4 log 3 - log 2.
    expected = 0.75 * math.log(3) - math.log(2)
    logits_s = torch.zeros(1, 2, dtype=torch.float64)
    logits_t = torch.tensor([[math.log(3), 0.0]], dtype=torch.float64)
    torch.testing.assert_close(
        kd_loss(logits_s, logits_t, temperature=1.0), torch.tensor(expected, dtype=torch.float64)
    )
    # At T = 2 the same probabilities need logits scaled by 2; the loss is multiplied by T^2 = 4.
    torch.testing.assert_close(
        kd_loss(logits_s, 2 * logits_t, temperature=2.0),
        torch.tensor(4 * expected, dtype=torch.float64),
    )


@pytest.mark.parametrize("temperature", [0.5, 2.0, 4.0])
def test_t_squared_scaling(temperature):
    logits_s, logits_t = _rand(4, 7, seed=1), _rand(4, 7, seed=2)
    torch.testing.assert_close(
        kd_loss(temperature * logits_s, temperature * logits_t, temperature=temperature),
        temperature**2 * kd_loss(logits_s, logits_t, temperature=1.0),
    )


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_matches_kl_div_formulations(temperature):
    logits_s, logits_t = _rand(6, 9, seed=3), _rand(6, 9, seed=4)
    log_p_s = F.log_softmax(logits_s / temperature, dim=1)
    p_t = F.softmax(logits_t / temperature, dim=1)
    # RepDistiller DistillKL: sum reduction divided by the batch size.
    repdistiller = F.kl_div(log_p_s, p_t, reduction="sum") * temperature**2 / 6
    batchmean = F.kl_div(log_p_s, p_t, reduction="batchmean") * temperature**2
    loss = kd_loss(logits_s, logits_t, temperature=temperature)
    torch.testing.assert_close(loss, repdistiller)
    torch.testing.assert_close(loss, batchmean)


def test_gradient_is_t_times_probability_gap():
    # d/d logits_s of T^2 * KL(p_t || softmax(s/T)) averaged over B is T * (p_s - p_t) / B.
    temperature = 3.0
    logits_s = _rand(4, 5, seed=5).requires_grad_(True)
    logits_t = _rand(4, 5, seed=6)
    kd_loss(logits_s, logits_t, temperature=temperature).backward()
    p_s = F.softmax(logits_s.detach() / temperature, dim=1)
    p_t = F.softmax(logits_t / temperature, dim=1)
    torch.testing.assert_close(logits_s.grad, temperature * (p_s - p_t) / 4)


def test_gradcheck():
    logits_s = _rand(3, 4, seed=7).requires_grad_(True)
    logits_t = _rand(3, 4, seed=8)
    assert torch.autograd.gradcheck(lambda s: kd_loss(s, logits_t, temperature=2.0), (logits_s,))


def test_large_logits_stay_finite():
    logits_s = torch.tensor([[1000.0, -1000.0, 0.0]], dtype=torch.float64)
    logits_t = torch.tensor([[-1000.0, 1000.0, 0.0]], dtype=torch.float64)
    loss = kd_loss(logits_s, logits_t, temperature=1.0)
    # p_t is one-hot on class 1; log p_s[1] = -2000: KL = 2000.
    torch.testing.assert_close(loss, torch.tensor(2000.0, dtype=torch.float64))


def test_errors():
    with pytest.raises(ValueError, match="same shape"):
        kd_loss(torch.randn(2, 3), torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"\(B, K\)"):
        kd_loss(torch.randn(2, 3, 4), torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match="temperature"):
        kd_loss(torch.randn(2, 3), torch.randn(2, 3), temperature=0.0)
