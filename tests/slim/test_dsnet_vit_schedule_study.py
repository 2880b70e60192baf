"""The DS-ViT schedule study (benchmarks/studies/dsnet_vit_schedule.py): its runs are the
dsnet benchmark's full-width static ViT with only the length and learning rate changed (and
validation as often as when it ran), and its results hold one plateau check per doubling."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from frugalcv.benchmarks import get_benchmark
from frugalcv.benchmarks.runner import make_plan
from frugalcv.testing import load_study

pytestmark = pytest.mark.unit
ROOT = Path(__file__).parents[2]


def test_runs_change_only_length_and_learning_rate():
    study = load_study("dsnet_vit_schedule")
    plan = make_plan(study.STUDY, seeds=[0], runs_dir="unused", check_data=False)
    bench = make_plan(get_benchmark("dsnet"), seeds=[0], runs_dir="unused", check_data=False)
    base = bench.config("ds_vit/seed0")
    grid = {(lr, e) for lr, counts in study.GRID.items() for e in counts}
    assert len(plan.jobs) == len(grid)
    # the benchmark's current ViT schedule is the study's longest point at its lr
    assert base.train.epochs == max(study.GRID[base.optim.lr])
    for lr, epochs in grid:
        cfg = plan.config(study.job_name(lr, epochs))
        assert cfg.optim == replace(base.optim, lr=lr) and cfg.train.epochs == epochs
        assert cfg.dsnet.static_only and cfg.dsnet.static_widths == (1.0,)
        assert cfg.model == base.model and cfg.data == base.data
        assert cfg.train.batch_size == base.train.batch_size and cfg.train.seed == 0
        assert cfg.train.eval_every == 5 * (cfg.data.num_train // cfg.train.batch_size)


def test_results_hold_one_plateau_check_per_doubling():
    study = load_study("dsnet_vit_schedule")
    acc = {(lr, e): 0.5 + e / 1200 for lr, counts in study.GRID.items() for e in counts}
    res = study.results(acc)
    doublings = sum(b == 2 * a for c in study.GRID.values() for a, b in zip(c, c[1:], strict=False))
    assert len(res.plateau) == doublings and len(res.rows) == len(acc)
    first = res.plateau[0]
    assert first.what == "epochs 120 -> 240" and first.tolerance == 0.01
    assert first.doubled - first.value == pytest.approx(0.1)
    assert not first.holds


def test_committed_results_cover_the_grid():
    study = load_study("dsnet_vit_schedule")
    raw = json.loads((ROOT / study.PATH).read_text())
    names = [r["name"] for r in raw["rows"]]
    assert names == [f"lr {lr:g}, {e} epochs" for lr, c in study.GRID.items() for e in c]
