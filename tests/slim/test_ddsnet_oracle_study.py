"""The ddsnet oracle study (benchmarks/studies/ddsnet_oracle.py): its rows per setting and its
claims, each explaining one of the ddsnet benchmark's claims by its text."""

from __future__ import annotations

import pytest

from frugalcv.benchmarks.ddsnet import BENCHMARK
from frugalcv.testing import load_study

pytestmark = pytest.mark.unit


def fake(oracle: float, single: float) -> dict:
    point = {"psnr": oracle, "macs_frac": 0.6}
    return {
        "supernet_full": 31.5,
        "static_full": 31.6,
        "static_at_budget": 31.45,
        "trained_gate": {"psnr": 31.5, "macs_frac": 1.0},
        "oracle4": dict(point),
        "oracle_ladder": dict(point, psnr=oracle + 0.01),
        "single": {"psnr": single, "macs_frac": 0.58},
        "rule": {t: {"psnr": 31.45, "macs_frac": 0.7} for t in (0.1, 0.2, 0.3, 0.5)},
        "gap_easy_share": 0.3,
        "two_way": {
            "lo": 1,
            "share": 0.3,
            "macs_frac": 0.6,
            "gate": 31.4,
            "random": 31.38,
            "oracle": 31.5,
        },
        "auc": 0.55,
    }


def test_claims_explain_the_benchmarks_and_read_the_right_rows():
    study = load_study("ddsnet_oracle")
    per = {"25": [fake(31.45, 31.3), fake(31.47, 31.3)], "blind": []}
    res = study.results(per, {"25": [0, 1], "blind": []})
    texts = {c.text for c in BENCHMARK.claims}
    assert res.claims and all(c.explains in texts for c in res.claims)
    assert not any("blind" in r.name for r in res.rows)  # a setting without finished jobs
    # oracle 31.46 >= full - 0.1 = 31.4 (both), single 31.3 < 31.4, 31.46 > static 31.45
    assert [cr.holds for cr in res.evaluate_claims()] == [True, True, False, True, True]
    rows = {r.name: r for r in res.rows}
    rule = rows["sigma 25: perfect gate, its own rule at tolerance 0.1 dB"]
    assert rule.extra["macs_frac_mean"] == 0.7 and rule.extra["easy_tile_share_mean"] == 0.3
    assert "seeds 0,1" in res.dataset
    two = rows["sigma 25: gate's score, two-way budget routing at 0.6 of the MACs"]
    assert two.extra["auc_hard_mean"] == 0.55


def test_two_way_routing_spends_the_budget_and_ranks_by_score():
    import torch

    study = load_study("ddsnet_oracle")
    psnr = torch.tensor([[30.0, 31.0], [30.0, 30.2], [30.0, 30.5], [30.0, 30.1]])
    macs = torch.tensor([1.0, 3.0])
    # budget 2: half the tiles may run wide; the gate ranks tiles 1 and 3 first (gains 0.2, 0.1)
    r = study.two_way(psnr, macs, torch.tensor([0.1, 0.9, 0.2, 0.8]), 2.0)
    assert r["lo"] == 0 and r["share"] == 0.5 and r["macs_frac"] == pytest.approx(2.0 / 3.0)
    assert r["gate"] == pytest.approx(30.075) and r["oracle"] == pytest.approx(30.375)
    assert r["random"] == pytest.approx(30.0 + 0.5 * 0.45)
