"""DS-Net gate: deterministic eval routing, straight-through sampling, SGS targets, penalty."""

import pytest
import torch
from torch.testing import assert_close

from frugalcv.slim import (
    DynamicGate,
    budget_curve,
    complexity_loss,
    gumbel_route,
    sgs_targets,
    threshold_for_share,
)

pytestmark = pytest.mark.unit


def _gate(**kw):
    torch.manual_seed(0)
    gate = DynamicGate(in_channels=8, num_choices=4, **kw)
    with torch.no_grad():
        for p in gate.parameters():
            p.normal_(0, 1.0)
    return gate


def test_eval_routing_is_deterministic_argmax_without_noise():
    gate = _gate().eval()
    f = torch.randn(16, 8, 4, 4, generator=torch.Generator().manual_seed(1))
    routes = []
    for seed in range(3):
        torch.manual_seed(seed)  # a different global RNG state must not matter
        g = gate(f)
        routes.append(g.index)
        assert_close(g.index, g.logits.argmax(-1))
        assert torch.equal(g.weights, torch.nn.functional.one_hot(g.index, 4).float())
    assert torch.equal(routes[0], routes[1]) and torch.equal(routes[1], routes[2])
    assert len(torch.unique(routes[0])) > 1  # the test input does exercise several routes


def test_training_samples_with_straight_through_gradient():
    gate = _gate().train()
    f = torch.randn(64, 8, 4, 4, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    a = gate(f)
    torch.manual_seed(1)
    b = gate(f)
    assert not torch.equal(a.index, b.index)  # Gumbel noise: routes vary between draws
    assert_close(a.weights.detach(), torch.nn.functional.one_hot(a.index, 4).float())
    (a.weights[:, 0] * torch.arange(64.0)).sum().backward()
    assert gate.slim_head.weight.grad.abs().sum() > 0  # gradient of the soft sample


def test_gumbel_at_eval_reproduces_the_authors_random_eval_routing():
    gate = _gate(gumbel_at_eval=True).eval()
    f = torch.randn(64, 8, 4, 4, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    a = gate(f).index
    torch.manual_seed(1)
    assert not torch.equal(a, gate(f).index)


def test_gumbel_route_argmax_and_rejects_bad_shape():
    logits = torch.tensor([[0.0, 2.0, 1.0], [3.0, -1.0, 0.0]])
    out = gumbel_route(logits, sample=False)
    assert out.index.tolist() == [1, 0]
    with pytest.raises(ValueError, match="\\(B, K\\)"):
        gumbel_route(torch.zeros(3))


def test_attention_head_rescales_features_between_zero_and_one():
    gate = _gate(attention=True)
    f = torch.rand(2, 8, 3, 3) + 0.1
    a = gate.attend(f) / f
    assert torch.all((a > 0) & (a < 1))
    assert_close(a[:, :, 0, 0], a[:, :, 2, 1])  # one scale per channel
    assert _gate().attend(f) is f


def test_sgs_targets_hand_values():
    y = torch.tensor([0, 1, 2, 0])
    small = torch.eye(3)[[0, 0, 2, 1]] * 5  # right, wrong, right, wrong
    large = torch.eye(3)[[0, 1, 1, 2]] * 5  # right, right, wrong, wrong
    assert sgs_targets(small, large, y, num_choices=4).tolist() == [0, 3, 0, 3]
    assert sgs_targets(small, large, y, num_choices=4, rule="paper").tolist() == [0, 3, 0, 0]
    with pytest.raises(ValueError, match="unknown SGS rule"):
        sgs_targets(small, large, y, num_choices=4, rule="x")


def test_complexity_loss_hand_value_and_gradient():
    weights = torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    macs = torch.tensor([1e8, 3e8])
    loss = complexity_loss(weights, macs, unit=1e9)
    assert_close(loss, torch.tensor(0.04))  # mean MACs 2e8 -> (0.2)^2
    loss.backward()
    # d/dw_bk of (mean_b sum_k w m / u)^2 = 2 * 0.2 * m_k / (B u)
    assert_close(weights.grad, torch.tensor([[0.02, 0.06], [0.02, 0.06]]))


def test_gumbel_sampling_matches_softmax_frequencies():
    # Gumbel-max: P(index = k) = softmax(logits)_k
    logits = torch.tensor([[1.0, 0.0, -1.0]]).repeat(20000, 1)
    torch.manual_seed(0)
    out = gumbel_route(logits)
    assert torch.isfinite(out.soft).all()
    freq = torch.bincount(out.index, minlength=3).float() / 20000
    assert_close(freq, torch.softmax(logits[0], -1), atol=0.015, rtol=0)


def test_threshold_for_share_routes_the_requested_share():
    s = torch.arange(10.0)  # 0..9
    assert threshold_for_share(s, 0.0) == float("inf")
    assert threshold_for_share(s, 1.0) == float("-inf")
    for q in (0.1, 0.3, 0.5, 0.9):
        t = threshold_for_share(s, q)
        assert int((s > t).sum()) == round(10 * q)
    # ties cannot be split by a threshold: all of a tied block goes the same way
    tied = torch.tensor([1.0, 1.0, 1.0, 0.0])
    assert int((tied > threshold_for_share(tied, 0.5)).sum()) in (0, 3)
    with pytest.raises(ValueError, match=r"share must be in \[0, 1\]"):
        threshold_for_share(s, 1.5)
    with pytest.raises(ValueError, match="non-empty"):
        threshold_for_share(torch.zeros(2, 2), 0.5)


def test_budget_curve_against_hand_counts():
    # 6 images: the small width is right on 0-2, the large on 0-4; image 5 nobody gets
    small = torch.tensor([1, 1, 1, 0, 0, 0], dtype=torch.bool)
    large = torch.tensor([1, 1, 1, 1, 1, 0], dtype=torch.bool)
    good = torch.tensor([0.1, 0.2, 0.3, 0.9, 0.8, 0.5])  # ranks the two gains first
    c = budget_curve(
        good, good, small, large, macs_small=10, macs_large=100, shares=[0, 1 / 3, 1], gate_macs=1
    )
    assert_close(c["share"], torch.tensor([0.0, 1 / 3, 1.0], dtype=torch.float64))
    assert_close(c["macs"], torch.tensor([11.0, 41.0, 101.0], dtype=torch.float64))
    assert_close(c["acc"], torch.tensor([0.5, 5 / 6, 5 / 6], dtype=torch.float64))
    assert_close(c["oracle_acc"], c["acc"])  # this score is an oracle
    assert_close(c["random_acc"], torch.tensor([0.5, 0.5 + 1 / 9, 5 / 6], dtype=torch.float64))
    # a score ranking the other way loses to random routing at the same share
    bad = -good
    b = budget_curve(bad, bad, small, large, macs_small=10, macs_large=100, shares=[1 / 3])
    assert float(b["acc"][0]) == 0.5 < float(b["random_acc"][0])
    # calibrated on other images, the share met is what the threshold really routed
    cal = torch.tensor([0.0, 1.0])  # share 0.5 -> threshold 0.5: 2 of the 6 images exceed it
    d = budget_curve(cal, good, small, large, macs_small=10, macs_large=100, shares=[0.5])
    assert_close(d["share"], torch.tensor([2 / 6], dtype=torch.float64))
    with pytest.raises(ValueError, match=r"must all be \(N,\)"):
        budget_curve(good, good, small[:3], large, macs_small=1, macs_large=2, shares=[0.5])
