"""The ddsnet schedule study (benchmarks/studies/ddsnet_schedule.py): its runs are the
benchmark's static full-width row with only the length and learning rate changed, and its
results hold one plateau check per doubling."""

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
    study = load_study("ddsnet_schedule")
    plan = make_plan(study.STUDY, seeds=[0], runs_dir="unused", check_data=False)
    bench = make_plan(get_benchmark("ddsnet"), seeds=[0], runs_dir="unused", check_data=False)
    base = bench.config("sigma25/seed0")
    assert len(plan.jobs) == sum(len(v) for v in study.GRID.values())
    for lr, counts in study.GRID.items():
        for steps in counts:
            cfg = plan.config(study.job_name(lr, steps))
            assert cfg.optim.lr == lr and cfg.data.num_crops == steps * cfg.train.batch_size
            assert cfg.ddsnet.static_only and cfg.ddsnet.static_widths == (cfg.model.channels,)
            assert cfg.model == base.model and cfg.data.sigma == base.data.sigma
            assert cfg.train.batch_size == base.train.batch_size and cfg.train.seed == 0
    # the benchmark's schedule is one of the study's grid points
    steps = base.data.num_crops // base.train.batch_size
    assert steps in study.GRID[base.optim.lr]


def test_benchmark_schedule_check_is_the_static_row_alone_at_twice_the_steps():
    bench = get_benchmark("ddsnet")
    plan = make_plan(bench, seeds=[0, 1], runs_dir="unused", check_data=False)
    base, doubled = plan.config("sigma25/seed0"), plan.config("study/sigma25/seed0")
    assert doubled.data.num_crops == 2 * base.data.num_crops
    assert doubled.ddsnet.static_only and doubled.ddsnet.static_widths == (base.model.channels,)
    assert doubled.model == base.model and doubled.optim == base.optim
    assert replace(doubled.train, out_dir=base.train.out_dir) == base.train
    (check,) = bench.schedule_checks
    assert check.at.job == "sigma25/seed0" and check.doubled.job == "study/sigma25/seed0"
    assert check.at.row == check.doubled.row == f"static_c{base.model.channels}"
    assert "study/sigma25/seed1" not in plan.jobs  # seed 0 only


def test_results_hold_one_plateau_check_per_doubling():
    study = load_study("ddsnet_schedule")
    psnr = {(lr, s): 25.0 + s / 4000 for lr, counts in study.GRID.items() for s in counts}
    res = study.results(psnr)
    doublings = sum(b == 2 * a for c in study.GRID.values() for a, b in zip(c, c[1:], strict=False))
    assert len(res.plateau) == doublings and len(res.rows) == len(psnr)
    first = res.plateau[0]
    assert first.what == "steps 1000 -> 2000" and first.tolerance == 0.1
    assert first.doubled - first.value == pytest.approx(0.25)


def test_committed_results_cover_the_grid():
    study = load_study("ddsnet_schedule")
    raw = json.loads((ROOT / study.PATH).read_text())
    names = [r["name"] for r in raw["rows"]]
    assert names == [f"lr {lr:g}, {s} steps" for lr, c in study.GRID.items() for s in c]
