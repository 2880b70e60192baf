"""Frame selectors: budgets, determinism, coverage and nearest-neighbour screening."""

import itertools

import pytest
import torch

from frugalcv.track import (
    SELECTORS,
    ALTSelector,
    FramePool,
    RandomSelector,
    UncertaintySelector,
    UniformSelector,
    alt_frames,
    coverage_score,
    coverage_select,
    frame_budget,
    knn_distance,
    nn_screen,
    uncertainty_frames,
    uniform_frames,
)


def trajectory(num_segments=4, length=10, dim=8, noise=0.05, seed=0):
    """A hand-made feature trajectory: the appearance stays near one direction per segment
    (e.g. a target that turns around), so frames of a segment explain each other."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for s in range(num_segments):
        base = torch.zeros(dim)
        base[s] = 1.0
        rows.append(base + noise * torch.rand(length, dim, generator=g))
    return torch.cat(rows)  # (num_segments * length, dim)


def test_frame_budget():
    assert frame_budget(100, 0.05) == 5
    assert frame_budget(10, 0.01) == 1  # at least one frame
    assert frame_budget(7, 1.0) == 7
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        frame_budget(10, 0.0)


def test_uniform_every_kth():
    assert uniform_frames(10, 5).tolist() == [0, 2, 4, 6, 8]
    assert uniform_frames(10, 3).tolist() == [0, 3, 6]


def test_uncertainty_picks_least_confident_and_first():
    conf = torch.tensor([0.9, 0.2, 0.8, 0.1, 0.5, 0.3])
    assert uncertainty_frames(conf, 3).tolist() == [0, 1, 3]
    assert uncertainty_frames(conf, 3, keep_first=False).tolist() == [1, 3, 5]


@pytest.mark.parametrize("budget", [0.05, 0.1, 0.25, 0.5])
def test_every_selector_respects_the_budget_and_is_deterministic(budget):
    feats = [trajectory(seed=i, length=5 + 3 * i) for i in range(3)]
    conf = [
        torch.rand(len(f), generator=torch.Generator().manual_seed(i)) for i, f in enumerate(feats)
    ]
    pool = FramePool(features=feats, confidence=conf)
    for name, cls in SELECTORS.items():
        sel = cls()
        a = sel.select(pool, budget=budget, seed=3)
        b = sel.select(pool, budget=budget, seed=3)
        for idx, f, idx_b in zip(a, feats, b, strict=True):
            assert torch.equal(idx, idx_b), name
            assert len(idx) <= frame_budget(len(f), budget), name
            assert len(idx) == len(idx.unique()), name
            assert idx.min() >= 0 and idx.max() < len(f), name
            assert torch.equal(idx, idx.sort().values), name


def test_random_depends_on_seed():
    pool = FramePool(num_frames=[200])
    a = RandomSelector().select(pool, budget=0.1, seed=0)[0]
    b = RandomSelector().select(pool, budget=0.1, seed=1)[0]
    assert len(a) == 20 and not torch.equal(a, b)


def test_coverage_beats_first_k_on_a_segmented_trajectory():
    feats = trajectory()  # 4 segments of 10 frames
    chosen = coverage_select(feats, 4)
    first_k = torch.arange(4)
    assert coverage_score(feats, chosen) > 0.95
    assert coverage_score(feats, first_k) < 0.4  # frames 0..3 explain only segment 0
    # One frame per segment: the selected set covers the sequence.
    assert sorted((chosen // 10).tolist()) == [0, 1, 2, 3]
    # Uniform sampling also covers this evenly segmented case; greedy is within 1% of it.
    assert coverage_score(feats, chosen) >= 0.99 * coverage_score(feats, uniform_frames(40, 4))


def test_window_restricts_who_explains_whom():
    feats = torch.ones(30, 4)  # identical appearance throughout
    assert coverage_score(feats, torch.tensor([0]), window=None) == pytest.approx(1.0)
    assert coverage_score(feats, torch.tensor([0]), window=4) == pytest.approx(5 / 30)
    chosen = coverage_select(feats, 3, window=4)
    # With identical features only time matters: the picks spread out along the sequence.
    assert (chosen.diff() >= 5).all()


def test_greedy_coverage_within_bound_of_brute_force():
    g = torch.Generator().manual_seed(0)
    feats = torch.rand(9, 3, generator=g)
    best = max(
        coverage_score(feats, torch.tensor(c), window=3)
        for c in itertools.combinations(range(9), 3)
    )
    greedy = coverage_score(feats, coverage_select(feats, 3, window=3), window=3)
    assert greedy >= (1 - 1 / torch.e) * best - 1e-12
    assert greedy <= best + 1e-12


def test_knn_distance_hand_value():
    # Unit vectors at 0, 0 and 90 degrees: NN distances (cosine) 0, 0 and 1.
    feats = torch.tensor([[1.0, 0], [2.0, 0], [0, 1.0]])
    assert torch.allclose(knn_distance(feats, k=1), torch.tensor([0.0, 0, 1], dtype=torch.float64))
    # k = 2: each first two average (0 + 1) / 2; the third (1 + 1) / 2.
    assert torch.allclose(
        knn_distance(feats, k=2), torch.tensor([0.5, 0.5, 1.0], dtype=torch.float64)
    )


def test_nn_screening_removes_an_injected_outlier():
    feats = trajectory()
    outlier = 17
    feats[outlier] = -1.0  # a corrupt frame: far from every other frame
    keep = nn_screen(feats, k=5, tau=1.5)
    assert not keep[outlier]
    assert keep.sum() == len(feats) - 1
    # Plain coverage selection is drawn to the unexplained outlier; ALT never picks it.
    assert outlier in coverage_select(feats, 5).tolist()
    assert outlier not in alt_frames(feats, 5, window=None).tolist()
    assert (
        outlier not in ALTSelector(window=None).select(FramePool(features=[feats]), budget=0.5)[0]
    )


def test_alt_keeps_first_frame_and_covers():
    feats = trajectory()
    idx = alt_frames(feats, 4, window=None)
    assert idx[0] == 0 and sorted((idx // 10).tolist()) == [0, 1, 2, 3]


def test_selectors_need_their_inputs():
    pool = FramePool(num_frames=[10])
    with pytest.raises(ValueError, match="features"):
        ALTSelector().select(pool, budget=0.5)
    with pytest.raises(ValueError, match="confidence"):
        UncertaintySelector().select(pool, budget=0.5)
    assert UniformSelector().select(pool, budget=0.5)[0].tolist() == [0, 2, 4, 6, 8]
    with pytest.raises(ValueError, match="differ"):
        FramePool(features=[torch.zeros(5, 2)], confidence=[torch.zeros(4)])


def test_coverage_beats_uniform_on_uneven_segments():
    # A long static stretch then three short appearance changes (frames 25-29, 30-34, 35-39).
    feats = torch.cat([trajectory(1, 25), trajectory(4, 5)[5:]])
    segment = torch.tensor([0] * 25 + [1] * 5 + [2] * 5 + [3] * 5)
    chosen = coverage_select(feats, 4)
    assert sorted(segment[chosen].tolist()) == [0, 1, 2, 3]
    uniform = uniform_frames(40, 4)  # 0, 10, 20, 30: misses segments 1 and 3
    assert coverage_score(feats, chosen) > coverage_score(feats, uniform) + 0.2
