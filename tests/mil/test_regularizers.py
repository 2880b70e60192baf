"""Self-paced regularisers: closed forms against brute-force minimisation, hand values, errors."""

import itertools

import numpy as np
import pytest

from frugalcv.mil import (
    REGULARIZERS,
    ConcaveElasticNetSPL,
    GroupSPL,
    HardSPL,
    LinearSPL,
    MixtureSPL,
    NegativeElasticNetSPL,
    make_regularizer,
)

PER_INSTANCE = [
    HardSPL(lam=0.8),
    LinearSPL(lam=1.3),
    MixtureSPL(lam=1.5, gamma=0.4),
    NegativeElasticNetSPL(lam=1.0, gamma=0.6),
    NegativeElasticNetSPL(lam=0.7, gamma=2.0),
    ConcaveElasticNetSPL(lam=0.6, gamma=0.5),
]
GRID = np.linspace(0.0, 1.0, 4001)


@pytest.mark.unit
@pytest.mark.parametrize("reg", PER_INSTANCE, ids=lambda r: type(r).__name__)
def test_closed_form_matches_grid_minimum(reg):
    losses = np.random.default_rng(0).uniform(0.0, 2.5, size=300)
    v = reg.weights(losses)
    assert v.shape == losses.shape and v.min() >= 0 and v.max() <= 1
    penalties = reg._f(GRID)  # (G,)
    for loss, vi in zip(losses, v, strict=True):
        grid_obj = GRID * loss + penalties
        closed = vi * loss + float(reg._f(np.array([vi]))[0])
        assert closed <= grid_obj.min() + 1e-9  # never worse than any grid point
        best = GRID[np.argmin(grid_obj)]
        if np.sum(grid_obj <= grid_obj.min() + 1e-7) == 1:  # unique minimiser: same point
            assert abs(best - vi) <= 1.0 / 4000 + 1e-9


@pytest.mark.unit
def test_hand_values():
    losses = np.array([0.1, 0.5, 0.9, 1.2])
    np.testing.assert_array_equal(HardSPL(lam=0.9).weights(losses), [1, 1, 0, 0])
    np.testing.assert_allclose(LinearSPL(lam=1.0).weights(losses), [0.9, 0.5, 0.1, 0.0])
    # clip((1 - l)/0.5): 1.8 -> 1, 1.0, 0.2, -0.4 -> 0
    np.testing.assert_allclose(
        NegativeElasticNetSPL(lam=1.0, gamma=0.5).weights(losses), [1.0, 1.0, 0.2, 0.0]
    )
    np.testing.assert_array_equal(
        ConcaveElasticNetSPL(lam=0.6, gamma=0.4).weights(losses), [1, 1, 1, 0]
    )
    # mixture lam=1, gamma=0.25: zeta = 1/3; l=0.5 -> (1/3)(0.5)/(0.5) = 1/3
    np.testing.assert_allclose(
        MixtureSPL(lam=1.0, gamma=0.25).weights(losses), [1.0, 1 / 3, (1 / 3) * 0.1 / 0.9, 0.0]
    )


@pytest.mark.unit
def test_elastic_net_interpolates_hard_and_linear():
    losses = np.random.default_rng(1).uniform(0, 2, size=200)
    np.testing.assert_allclose(
        NegativeElasticNetSPL(lam=1.1, gamma=1.1).weights(losses),
        LinearSPL(lam=1.1).weights(losses),
    )
    np.testing.assert_array_equal(
        NegativeElasticNetSPL(lam=1.1, gamma=1e-12).weights(losses),
        HardSPL(lam=1.1).weights(losses),
    )


@pytest.mark.unit
def test_group_spl_matches_brute_force_over_binary_and_grid():
    rng = np.random.default_rng(2)
    reg = GroupSPL(lam=0.5, gamma=0.8)
    for _ in range(60):
        groups = np.repeat(np.arange(3), rng.integers(1, 4, size=3))
        losses = rng.uniform(0, 1.6, size=len(groups))
        v = reg.weights(losses, groups)
        best = min(
            reg.objective(losses, np.array(b, float), groups)
            for b in itertools.product((0, 1), repeat=len(losses))
        )
        assert reg.objective(losses, v, groups) <= best + 1e-12
    # the concave objective has no better interior point: a grid over [0,1]^3 for one group
    losses, groups = np.array([0.3, 0.9, 1.4]), np.zeros(3, int)
    v = reg.weights(losses, groups)
    grid = np.linspace(0, 1, 21)
    interior = min(
        reg.objective(losses, np.array(p), groups) for p in itertools.product(grid, repeat=3)
    )
    assert reg.objective(losses, v, groups) <= interior + 1e-12
    # rank thresholds lam + gamma/(sqrt r + sqrt(r-1)) = 1.3, 0.831, 0.731: only 0.3 passes
    np.testing.assert_array_equal(v, [1, 0, 0])


@pytest.mark.unit
def test_group_spl_spreads_selection_over_groups():
    reg = GroupSPL(lam=0.1, gamma=1.0)
    losses = np.array([0.2, 0.45, 0.5, 0.9])
    groups = np.array([0, 0, 0, 1])
    # rank thresholds 1.1, 0.514, 0.418: group 0 keeps 2, group 1 keeps its only (0.9 < 1.1)
    np.testing.assert_array_equal(reg.weights(losses, groups), [1, 1, 0, 1])


@pytest.mark.unit
@pytest.mark.parametrize("name", sorted(REGULARIZERS))
def test_scaling_moves_threshold_and_admits_more(name):
    reg = make_regularizer(name, lam=1.0, gamma=0.5)
    losses = np.random.default_rng(3).uniform(0, 3, size=100)
    groups = np.arange(100) // 10
    assert reg.with_threshold(2.0).threshold == pytest.approx(2.0)
    counts = [np.count_nonzero(reg.scaled(f).weights(losses, groups)) for f in (0.5, 1, 2, 4)]
    assert counts == sorted(counts) and counts[-1] > counts[0]


@pytest.mark.unit
def test_bad_inputs():
    with pytest.raises(ValueError, match="lam must be a positive"):
        HardSPL(lam=-1)
    with pytest.raises(ValueError, match="lam > gamma"):
        MixtureSPL(lam=0.5, gamma=0.5)
    with pytest.raises(ValueError, match="gamma must be a positive"):
        NegativeElasticNetSPL(lam=1.0, gamma=0.0)
    with pytest.raises(ValueError, match="needs groups"):
        GroupSPL().weights([0.1, 0.2])
    with pytest.raises(ValueError, match="1-D"):
        HardSPL().weights(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        LinearSPL().weights([np.nan])
    with pytest.raises(ValueError, match="unknown self-paced regulariser 'soft'"):
        make_regularizer("soft")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        HardSPL().objective([0.1], [1.5])
