"""The classify schedule study (benchmarks/studies/classify_schedule.py): its runs are the classify
benchmark's mnist-rot-back/tiny_cnn row with only the length (and the step schedule scaled to it)
and the learning rate changed, and its results hold one plateau check per doubling."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from frugalcv.benchmarks import get_benchmark
from frugalcv.benchmarks.classify import ROW_EPOCHS
from frugalcv.benchmarks.runner import make_plan
from frugalcv.benchmarks.spec import scaled_milestones
from frugalcv.core.config import config_diff, to_dict
from frugalcv.testing import load_study

pytestmark = pytest.mark.unit
ROOT = Path(__file__).parents[2]


def test_runs_change_only_length_and_learning_rate():
    study = load_study("classify_schedule")
    plan = make_plan(study.STUDY, seeds=[0], runs_dir="unused", check_data=False)
    bench = make_plan(get_benchmark("classify"), seeds=[0], runs_dir="unused", check_data=False)
    row = f"{study.DATASET}/{study.MODEL}"
    base = bench.config(f"{row}/seed0")
    grid = {(lr, e) for lr, counts in study.GRID.items() for e in counts}
    assert len(plan.jobs) == len(grid)
    # the benchmark's run of this row is a grid point, config for config
    same = plan.config(study.job_name(base.optim.lr, int(base.train.epochs)))
    assert config_diff(to_dict(same), to_dict(base)) == []
    for lr, epochs in grid:
        cfg = plan.config(study.job_name(lr, epochs))
        assert cfg.train.epochs == epochs
        assert cfg.optim == replace(base.optim, lr=lr, milestones=scaled_milestones(epochs))
        # model, data and every other train key as the benchmark's (runtime keys aside)
        changed = {"optim.lr", "optim.milestones", "train.epochs"}
        assert set(config_diff(to_dict(cfg), to_dict(base))) <= changed


def test_results_hold_one_plateau_check_per_doubling():
    study = load_study("classify_schedule")
    acc = {(lr, e): 0.5 + e / 1000 for lr, counts in study.GRID.items() for e in counts}
    res = study.results(acc)
    doublings = sum(b == 2 * a for c in study.GRID.values() for a, b in zip(c, c[1:], strict=False))
    assert len(res.plateau) == doublings == 4 and len(res.rows) == len(acc)
    first = res.plateau[0]
    assert first.what == "epochs 30 -> 60" and first.tolerance == 0.01
    assert first.doubled - first.value == pytest.approx(0.03)
    assert not first.holds


def test_committed_results_cover_the_grid():
    study = load_study("classify_schedule")
    raw = json.loads((ROOT / study.PATH).read_text())
    names = [r["name"] for r in raw["rows"]]
    assert names == [f"lr {lr:g}, {e} epochs" for lr, c in study.GRID.items() for e in c]
    # the benchmark's schedule for this row is the longest length studied at its lr
    assert ROW_EPOCHS[study.DATASET, study.MODEL] == max(study.GRID[study.BASE_LR])
