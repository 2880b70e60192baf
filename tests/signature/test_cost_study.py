"""The cost-scale study (benchmarks/studies/sgn_cost_scale.py): its settings build, its claims
explain the benchmark's cost claim, and its committed results hold every setting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from frugalcv.benchmarks.sgn import BENCHMARK, COST_CLAIM
from frugalcv.testing import load_study

pytestmark = pytest.mark.unit
ROOT = Path(__file__).parents[2]


def test_the_benchmark_setting_is_measured_with_the_benchmarks_graph():
    study = load_study("sgn_cost_scale")
    label = next(k for k, v in study.SETTINGS.items() if v[0] == "tiny_cnn")
    m = study.measure(label, runs=2, repeats=1, warmup=0)
    assert len(m["ratios"]) == 2 and all(r > 0 for r in m["ratios"])
    assert m["feature_map"] == "64x7x7" and m["nodes"] == 32  # 4x4 patches (ceil), 2 nodes each
    assert m["cnn_macs"] == 1919232  # tiny_cnn at 28 px, as the sgn benchmark's extra.macs


def test_claims_explain_the_benchmarks_cost_claim():
    study = load_study("sgn_cost_scale")
    assert COST_CLAIM in BENCHMARK.claims and COST_CLAIM.column == "graph_vs_cnn_speed"
    fake = {
        label: {"ratios": [r, r], "feature_map": "64x8x8", "nodes": 32, "cnn_macs": 1, "batch": 2}
        for label, r in zip(list(study.SETTINGS)[:2], (0.5, 3.0), strict=True)
    }
    res = study.results(fake, runs=2)
    verdicts = [v.holds for v in res.evaluate_claims()]
    assert verdicts == [False, True]
    assert {c.explains for c in res.claims} == {COST_CLAIM.text}
    assert res.rows[-1].name == study.REFERENCE and res.rows[-1].values == [1.0, 1.0]


def test_committed_results_cover_every_setting():
    study = load_study("sgn_cost_scale")
    raw = json.loads((ROOT / study.PATH).read_text())
    names = [r["name"] for r in raw["rows"]]
    assert names == [*study.SETTINGS, study.REFERENCE]
    assert all(len(r["values"]) == len(raw["seeds"]) for r in raw["rows"])
