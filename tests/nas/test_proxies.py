"""Training-free proxies (hand values, brute-force references, degenerate cases) and BaLeNAS-TF."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from frugalcv.nas import (
    PROXIES,
    NB201Network,
    balenas_tf_select,
    grad_norm_score,
    jacob_cov_score,
    naswot_kernel,
    naswot_score,
    nb201_derive,
    parse_nb201_arch,
    sample_architectures,
    snip_score,
    synflow_score,
)

pytestmark = pytest.mark.unit

ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
GOOD = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
    "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
)


def _chain():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 3, bias=False), nn.ReLU(), nn.Linear(3, 1, bias=False))


def test_synflow_of_a_linear_chain_is_depth_times_path_sum():
    net = _chain()
    w1, w2 = net[0].weight.detach().double().abs(), net[2].weight.detach().double().abs()
    r = float((w2 @ w1).sum())  # R = sum over paths of products of |weights|, input ones
    assert synflow_score(net, torch.zeros(5, 2)) == pytest.approx(2 * r, rel=1e-12)


def test_synflow_is_zero_with_a_zeroed_layer():
    net = _chain()
    with torch.no_grad():
        net[0].weight.zero_()
    assert synflow_score(net, torch.zeros(1, 2)) == 0.0
    # A NAS-Bench-201 network whose cells are all `none` carries no signal either.
    nb = NB201Network(arch=ALL_NONE, channels=4, num_cells=1, num_classes=3, in_channels=1)
    assert synflow_score(nb, torch.zeros(1, 1, 8, 8)) == 0.0
    good = NB201Network(arch=GOOD, channels=4, num_cells=1, num_classes=3, in_channels=1)
    assert synflow_score(good, torch.zeros(1, 1, 8, 8)) > 0.0


def test_synflow_ignores_batchnorm():
    torch.manual_seed(0)
    conv, lin = nn.Conv2d(1, 2, 3), nn.Linear(2 * 4 * 4, 1)
    bn = nn.BatchNorm2d(2)
    with torch.no_grad():
        bn.weight.fill_(5.0)
        bn.running_var.fill_(9.0)
    with_bn = nn.Sequential(conv, bn, nn.ReLU(), nn.Flatten(), lin)
    without = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), lin)
    x = torch.zeros(1, 1, 6, 6)
    assert synflow_score(with_bn, x) == pytest.approx(synflow_score(without, x), rel=1e-12)


def test_naswot_kernel_hand_values():
    relu = nn.Sequential(nn.ReLU())
    x = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])  # codes (1, 0) and (0, 1): agree on no unit
    torch.testing.assert_close(
        naswot_kernel(relu, x), torch.tensor([[2.0, 0.0], [0.0, 2.0]]).double()
    )
    assert naswot_score(relu, x) == pytest.approx(math.log(4.0))
    x = torch.tensor([[1.0, -1.0], [1.0, 1.0]])  # codes (1, 0), (1, 1): K = [[2, 1], [1, 2]]
    assert naswot_score(relu, x) == pytest.approx(math.log(3.0))
    two = nn.Sequential(nn.ReLU(), nn.ReLU())  # kernels add over ReLUs
    assert naswot_score(two, x) == pytest.approx(math.log(16 - 4))


def test_naswot_identical_inputs_give_minus_inf():
    net = NB201Network(arch=GOOD, channels=4, num_cells=1, num_classes=3, in_channels=1)
    x = torch.randn(1, 1, 8, 8).repeat(4, 1, 1, 1)
    assert naswot_score(net, x) == float("-inf")
    with pytest.raises(ValueError, match="ReLU"):
        naswot_score(nn.Linear(2, 2), torch.randn(3, 2))


def test_jacob_cov_hand_value_for_linear_net():
    torch.manual_seed(0)
    net = nn.Linear(3, 1, bias=False)  # J = w for every sample: corr = ones(2, 2), eig {0, 2}
    k = 1e-5
    expected = -(math.log(k) + 1 / k + math.log(2 + k) + 1 / (2 + k))
    assert jacob_cov_score(net, torch.randn(2, 3)) == pytest.approx(expected, rel=1e-6)


def test_jacob_cov_matches_brute_force_reference():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))
    x = torch.randn(6, 4)
    rows = []
    for b in range(6):  # per-sample input gradient of the summed outputs
        xb = x[b : b + 1].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(net(xb).sum(), xb)
        rows.append(g[0].numpy().astype(np.float64))
    v = np.linalg.eigvalsh(np.corrcoef(np.stack(rows)))
    expected = -float(np.sum(np.log(v + 1e-5) + 1.0 / (v + 1e-5)))
    assert jacob_cov_score(net, x) == pytest.approx(expected, rel=1e-5)
    # A network whose output ignores the input has no informative Jacobian.
    nb = NB201Network(arch=ALL_NONE, channels=4, num_cells=1, num_classes=3, in_channels=1)
    assert jacob_cov_score(nb, torch.randn(4, 1, 8, 8)) == float("-inf")


def test_snip_and_grad_norm_hand_values():
    torch.manual_seed(0)
    net = nn.Linear(2, 2, bias=False)
    x, y = torch.randn(4, 2), torch.tensor([0, 1, 1, 0])
    w = net.weight.detach()
    p = F.softmax(x @ w.T, dim=1)
    grad = (p - F.one_hot(y, 2).float()).T @ x / 4  # dCE/dW for the batch mean
    assert snip_score(net, x, y) == pytest.approx(float((w * grad).abs().sum()), rel=1e-5)
    assert grad_norm_score(net, x, y) == pytest.approx(float(grad.norm()), rel=1e-5)


def test_proxies_leave_the_network_untouched_and_are_finite():
    torch.manual_seed(0)
    net = NB201Network(arch=GOOD, channels=4, num_cells=1, num_classes=3, in_channels=1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 3, (8,))
    for name, proxy in PROXIES.items():
        s = proxy(net, x, y)
        assert math.isfinite(s), name
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in net.parameters())


def test_sample_architectures_statistics():
    mu = [torch.tensor([1.0, -2.0])]
    sigma = [torch.tensor([0.5, 2.0])]
    s = sample_architectures(
        mu, sigma, num_samples=4000, generator=torch.Generator().manual_seed(0)
    )
    stacked = torch.stack([a[0] for a in s])
    torch.testing.assert_close(stacked.mean(0), mu[0], atol=0.1, rtol=0)
    torch.testing.assert_close(stacked.std(0), sigma[0], atol=0.1, rtol=0)


def _build(arch):
    return NB201Network(arch=arch, channels=4, num_cells=1, num_classes=3, in_channels=1)


def test_balenas_tf_with_zero_sigma_returns_the_argmax():
    torch.manual_seed(0)
    mu = [torch.randn(6, 5)]
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 3, (8,))
    sel = balenas_tf_select(
        mu, [torch.zeros(6, 5)], decode=lambda a: nb201_derive(a[0]), build_network=_build,
        x=x, y=y, proxy="naswot", num_samples=5,
    )  # fmt: skip
    assert sel.arch == nb201_derive(mu[0]) and sel.counts == {sel.arch: 5}
    assert sel.score == pytest.approx(naswot_score(_build_seeded(sel.arch), x))


def _build_seeded(arch):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return _build(arch)


def test_balenas_tf_picks_the_best_scored_candidate():
    mu, sigma = [torch.zeros(6, 5)], [torch.ones(6, 5)]
    x, y = torch.randn(4, 1, 8, 8), torch.randint(0, 3, (4,))

    def count_conv3(net, _x, _y):
        return float(sum(op == "nor_conv_3x3" for op in parse_nb201_arch(net.arch)))

    sel = balenas_tf_select(
        mu, sigma, decode=lambda a: nb201_derive(a[0]), build_network=_build, x=x, y=y,
        proxy=count_conv3, num_samples=30, generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert sum(sel.counts.values()) == 30 and len(sel.scores) > 20
    assert sel.score == max(sel.scores.values()) == count_conv3(_build(sel.arch), x, y)
    with pytest.raises(ValueError, match="unknown proxy"):
        balenas_tf_select(
            mu, sigma, decode=lambda a: nb201_derive(a[0]), build_network=_build, x=x, y=y,
            proxy="zen",
        )  # fmt: skip
