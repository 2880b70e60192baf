"""Vadam: steps against hand-derived values from the update equations, invariants, learning."""

import math

import pytest
import torch

from frugalcv.nas import Vadam

pytestmark = pytest.mark.unit


def _quadratic_closure(p, h, c):
    """L(a) = 0.5 * h * (a - c)^2 summed; grad h (a - c)."""

    def closure():
        loss = (0.5 * h * (p - c) ** 2).sum()
        loss.backward()
        return loss

    return closure


def test_two_steps_match_hand_derivation_on_1d_quadratic():
    h, c, n, lam, lr, b1, b2 = 2.0, 0.5, 10, 1.0, 0.1, 0.5, 0.999
    mu0 = 1.0
    p = torch.tensor([mu0], dtype=torch.float64, requires_grad=True)
    opt = Vadam(
        [p],
        lr=lr,
        betas=(b1, b2),
        prior_prec=lam,
        prec_init=lam,
        train_set_size=n,
        generator=torch.Generator().manual_seed(7),
    )
    g_eps = torch.Generator().manual_seed(7)  # the same noise stream, drawn by hand
    decay = lam / n

    # Step 1: s0 = (prec_init - lam) / N = 0, so sigma = 1 / sqrt(lam) = 1.
    assert float(opt.sigma()[0]) == 1.0
    eps1 = float(torch.randn((1,), generator=g_eps, dtype=torch.float64))
    a1 = mu0 + eps1 * 1.0
    g1 = h * (a1 - c)
    m1 = (1 - b1) * (g1 + decay * mu0)
    s1 = (1 - b2) * g1**2
    mu1 = mu0 - lr * (m1 / (1 - b1)) / (math.sqrt(s1 / (1 - b2)) + decay)
    loss = opt.step(_quadratic_closure(p, h, c))
    assert p.item() == pytest.approx(mu1, rel=1e-12)
    assert float(loss) == pytest.approx(0.5 * h * (a1 - c) ** 2, rel=1e-12)
    assert float(opt.precision()[0]) == pytest.approx(n * s1 + lam, rel=1e-12)

    # Step 2: sigma = 1 / sqrt(N s1 + lam) (raw, not bias-corrected s).
    sigma2 = 1 / math.sqrt(n * s1 + lam)
    assert float(opt.sigma()[0]) == pytest.approx(sigma2, rel=1e-12)
    eps2 = float(torch.randn((1,), generator=g_eps, dtype=torch.float64))
    a2 = mu1 + eps2 * sigma2
    g2 = h * (a2 - c)
    m2 = b1 * m1 + (1 - b1) * (g2 + decay * mu1)
    s2 = b2 * s1 + (1 - b2) * g2**2
    mu2 = mu1 - lr * (m2 / (1 - b1**2)) / (math.sqrt(s2 / (1 - b2**2)) + decay)
    opt.step(_quadratic_closure(p, h, c))
    assert p.item() == pytest.approx(mu2, rel=1e-12)
    assert opt.state[p]["step"] == 2


def test_monte_carlo_average_of_gradients_and_squares():
    # S = 3 samples; grad is linear so g = h (mean_k a_k - c), g2 = mean_k (h (a_k - c))^2.
    h, c, n = 1.0, 0.0, 4
    p = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
    opt = Vadam(
        [p], lr=0.01, betas=(0.9, 0.999), train_set_size=n, num_samples=3,
        generator=torch.Generator().manual_seed(1),
    )  # fmt: skip
    g_eps = torch.Generator().manual_seed(1)
    eps = [float(torch.randn((1,), generator=g_eps, dtype=torch.float64)) for _ in range(3)]
    grads = [h * (0.3 + e - c) for e in eps]
    calls = []

    def closure():
        calls.append(p.item())
        loss = (0.5 * h * (p - c) ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    assert calls == pytest.approx([0.3 + e for e in eps])  # each sample's grad is its own
    assert float(opt.state[p]["exp_avg"]) == pytest.approx(
        0.1 * (sum(grads) / 3 + 0.3 / n), rel=1e-12
    )
    assert float(opt.state[p]["exp_avg_sq"]) == pytest.approx(
        0.001 * sum(g * g for g in grads) / 3, rel=1e-12
    )


def test_sigma_starts_at_one_and_shrinks_under_constant_gradient():
    p = torch.zeros(5, requires_grad=True)
    opt = Vadam([p], lr=3e-4, betas=(0.5, 0.999), train_set_size=25000)  # BaLeNAS settings
    torch.testing.assert_close(opt.sigma()[0], torch.ones(5))
    prev = opt.sigma()[0].clone()
    for _ in range(5):

        def closure():
            p.grad = torch.full_like(p, 0.01)  # constant gradient, independent of the sample
            return torch.zeros(())

        opt.step(closure)
        cur = opt.sigma()[0]
        assert (cur < prev).all()
        prev = cur.clone()


def test_parameters_end_at_the_mean_even_if_closure_raises():
    p = torch.tensor([1.0], requires_grad=True)
    opt = Vadam([p], train_set_size=10)

    def bad():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        opt.step(bad)
    assert p.item() == 1.0


def test_errors():
    p = torch.zeros(1, requires_grad=True)
    with pytest.raises(ValueError, match="closure"):
        Vadam([p], train_set_size=10).step()
    with pytest.raises(ValueError, match="prec_init"):
        Vadam([p], train_set_size=10, prior_prec=2.0, prec_init=1.0)
    with pytest.raises(ValueError, match="train_set_size"):
        Vadam([p], train_set_size=0)
    with pytest.raises(ValueError, match="num_samples"):
        Vadam([p], train_set_size=10, num_samples=0)


def test_linear_regression_mean_reaches_posterior_mean_region():
    # y = 2 x - 1 + noise; the mean should approach the least-squares solution.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 1, generator=g)
    y = 2 * x[:, 0] - 1 + 0.1 * torch.randn(200, generator=g)
    w = torch.zeros(2, requires_grad=True)
    opt = Vadam([w], lr=0.05, train_set_size=200, generator=torch.Generator().manual_seed(1))

    def closure():
        loss = ((x[:, 0] * w[0] + w[1] - y) ** 2).mean()
        loss.backward()
        return loss

    for _ in range(400):
        opt.step(closure)
    assert w[0].item() == pytest.approx(2.0, abs=0.15)
    assert w[1].item() == pytest.approx(-1.0, abs=0.15)
    # sigma fell from 1: the precision N s + lambda grew (fixed point ~ (4 N)^(-1/4) ~ 0.19 here)
    assert (opt.sigma()[0] < 0.3).all()


def test_state_dict_round_trip():
    p = torch.tensor([0.5], requires_grad=True)
    opt = Vadam([p], train_set_size=10, generator=torch.Generator().manual_seed(0))
    opt.step(_quadratic_closure(p, 1.0, 0.0))
    q = torch.tensor([0.5], requires_grad=True)
    opt2 = Vadam([q], train_set_size=10)
    opt2.load_state_dict(opt.state_dict())
    torch.testing.assert_close(opt2.sigma()[0], opt.sigma()[0])
