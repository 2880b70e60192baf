"""The ickd_seg teacher study (benchmarks/studies/ickd_seg_teacher.py): each run is the ickd_seg
benchmark's teacher job with only the model and the scenes changed, its rotated fcn_resnet20 run
is the benchmark's teacher, and the committed results back the benchmark's choice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from frugalcv.benchmarks import get_benchmark, ickd_seg
from frugalcv.benchmarks.runner import make_plan
from frugalcv.core.config import config_diff, to_dict
from frugalcv.testing import load_study

pytestmark = pytest.mark.unit
ROOT = Path(__file__).parents[2]


def test_runs_change_only_model_and_scenes():
    study = load_study("ickd_seg_teacher")
    plan = make_plan(study.STUDY, seeds=[0], runs_dir="unused", check_data=False)
    bench = make_plan(get_benchmark("ickd_seg"), seeds=[0], runs_dir="unused", check_data=False)
    teacher = bench.config("teacher")
    # the benchmark's teacher is one of the study's runs, config for config
    same = plan.config(study.job_name("rotated", ickd_seg.TEACHER))
    assert config_diff(to_dict(same), to_dict(teacher)) == []
    assert len(plan.jobs) == sum(len(models) for _, models in study.SCENES.values()) == 5
    for scenes, (data, models) in study.SCENES.items():
        for model in models:
            cfg = plan.config(study.job_name(scenes, model))
            assert cfg.distill.teacher == model and cfg.distill.teacher_only
            assert cfg.data.rotate == (scenes == "rotated")
            assert cfg.data.source == data.get("data.source", "digits")
            changed = {"distill.teacher", "data.rotate", "data.source"}
            assert set(config_diff(to_dict(cfg), to_dict(teacher))) <= changed


def test_results_report_each_teacher_lead():
    study = load_study("ickd_seg_teacher")
    miou = {
        (s, m): 0.8 + 0.01 * i
        for i, (s, m) in enumerate(
            (s, m) for s, (_, models) in study.SCENES.items() for m in models
        )
    }
    res = study.results(miou)
    assert [r.name for r in res.rows] == [f"{s}: {m}" for s, m in miou]
    assert "upright +0.0100" in res.notes and "rotated +0.0100" in res.notes
    assert res.seeds == [0] and not res.claims


def test_committed_results_back_the_benchmark_design():
    study = load_study("ickd_seg_teacher")
    raw = json.loads((ROOT / study.PATH).read_text())
    value = {r["name"]: r["values"][0] for r in raw["rows"]}
    assert list(value) == [f"{s}: {m}" for s, (_, ms) in study.SCENES.items() for m in ms]
    scenes = "rotated" if ickd_seg.ROTATE else "upright"
    lead = value[f"{scenes}: {ickd_seg.TEACHER}"] - value[f"{scenes}: {ickd_seg.STUDENT}"]
    assert lead >= ickd_seg.GAP  # the chosen pair has the gap, in this seed-0 pilot
    assert value[f"upright: {ickd_seg.TEACHER}"] - value[f"upright: {ickd_seg.STUDENT}"] < lead
