"""The full (not --quick) plans of the classify / ickd family benchmarks, built without training:
per-row weights, one teacher shared by every row, and schedule checks whose jobs exist."""

from __future__ import annotations

import pytest

from frugalcv.benchmarks import classify, ickd, ickd_ablation, ickd_digits100, ickd_seg
from frugalcv.benchmarks.runner import make_plan

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _register_twodigit(monkeypatch, tmp_path):
    """A data folder whose MNIST/raw files exist (plans check files, never read them), and,
    until the registry lists the two-digit sets, those sets registered for these plans."""
    from frugalcv.data import IMAGE_DATASETS, twodigit
    from frugalcv.data.digits import MNIST_FILES

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in MNIST_FILES:
        (raw / f).write_bytes(b"")
    monkeypatch.setenv("FRUGALCV_DATA", str(tmp_path))

    monkeypatch.setitem(
        IMAGE_DATASETS, "mnist-rot-back-2digit", twodigit.load_mnist_rot_back_2digit
    )
    monkeypatch.setitem(
        IMAGE_DATASETS, "mnist5k-rot-back-2digit", twodigit.load_mnist5k_rot_back_2digit
    )


def _plan(mod, seeds=(0, 1, 2)):
    return make_plan(
        mod.BENCHMARK, seeds=list(seeds), quick=False, runs_dir="unused", check_data=False
    )


@pytest.mark.parametrize("mod", [ickd, ickd_digits100])
def test_rows_have_the_authors_weights_and_share_one_teacher(mod):
    plan = _plan(mod)
    cfg = {name: pj.cfg for name, pj in plan.jobs.items()}
    assert list(plan.jobs)[0] == "teacher" and cfg["teacher"].model.name == "resnet32x4"
    kd, ickd_row, both = (
        cfg["seed1/kd"].distill,
        cfg["seed1/ickd"].distill,
        cfg["seed1/ickd_kd"].distill,
    )
    assert (kd.ce, kd.kd, kd.temperature) == (0.1, 0.9, 4.0)  # RepDistiller -r 0.1 -a 0.9
    assert (ickd_row.ce, ickd_row.ickd) == (1.0, 2.5)  # authors' README -r 1 -b 2.5
    assert (both.ce, both.kd, both.ickd) == (1.0, 1.0, 2.5)
    for seed in (0, 1, 2):
        for row in ickd.ROWS:
            c = cfg[f"seed{seed}/{row}"]
            assert c.distill.rows == (row,) and c.train.seed == seed
            assert c.distill.teacher_ckpt.endswith("teacher/last.pt")
            assert c.train.epochs == cfg["teacher"].train.epochs  # teacher: the students' epochs
            assert c.data == cfg["seed0/student"].data  # same data in every row
    assert cfg["teacher_x2"].train.epochs == 2 * cfg["teacher"].train.epochs
    assert cfg["student_x2"].train.epochs == 2 * cfg["seed0/student"].train.epochs
    assert cfg["student_x2"].optim.milestones == tuple(
        2 * m for m in cfg["seed0/student"].optim.milestones
    )


@pytest.mark.parametrize("mod", [classify, ickd, ickd_digits100, ickd_seg])
def test_schedule_checks_name_jobs_of_the_full_run(mod):
    plan = _plan(mod)
    checks = mod.BENCHMARK.schedule_checks
    assert checks
    rows = {r.name for r in mod.BENCHMARK.rows([0, 1, 2])}
    for c in checks:
        assert c.row in rows and c.at.job in plan.jobs and c.doubled.job in plan.jobs
        at, doubled = plan.jobs[c.at.job].cfg, plan.jobs[c.doubled.job].cfg
        assert doubled.train.epochs == 2 * at.train.epochs
        assert doubled.data == at.data
    quick = make_plan(mod.BENCHMARK, seeds=[0], quick=True, runs_dir="unused")
    assert not any(name.endswith("_x2") or name.endswith("/x2") for name in quick.jobs)


def test_classify_uses_all_images_and_starts_the_longest_jobs_first():
    plan = _plan(classify)
    names = list(plan.jobs)
    assert all(n.endswith("/x2") for n in names[:6]) and len(names) == 6 + 18
    assert {pj.cfg.data.num_train for pj in plan.jobs.values()} == {12000}


def test_ablation_rows_vary_one_thing_each():
    plan = _plan(ickd_ablation, seeds=(0, 1))
    cfg = {name: pj.cfg.distill for name, pj in plan.jobs.items() if name != "teacher"}
    assert cfg["seed0/ickd_b4"].ickd == 4.0 and cfg["seed0/ickd_b2.5"].ickd == 2.5
    assert cfg["seed0/ickd_stage2"].stage == 2 and cfg["seed0/ickd_b2.5"].stage == 0
    assert cfg["seed0/wide_ickd"].student == "resnet8x4"
    assert {c.teacher for c in cfg.values()} == {"resnet32x4"}


def test_seg_rows_are_one_job_each():
    plan = _plan(ickd_seg)
    cfg = {name: pj.cfg for name, pj in plan.jobs.items()}
    assert cfg["seed2/student"].distill.alone and cfg["seed2/student"].distill.grids == ()
    assert cfg["seed2/grid6x6"].distill.grids == (6,) and not cfg["seed2/grid6x6"].distill.alone
    assert cfg["teacher"].distill.teacher == "fcn_resnet20" and cfg["teacher"].data.image_size == 48
    # every job, teacher included, sees the same rotated scenes: one data config for all seeds,
    # so no student's test digits were among the (seed-0) teacher's training digits
    assert all(c.data.rotate and c.data.source == "digits" for c in cfg.values())
    assert all(c.data == cfg["teacher"].data for c in cfg.values())
    assert {c.train.seed for c in cfg.values()} == {0, 1, 2}


def test_digits100_explanation_rows_double_only_the_student_schedule():
    """The 40-epoch re-test (issue #8): every row of seeds 0-1 once more at twice the epochs,
    differing from the base job only in epochs, milestones and out_dir, the same teacher; the
    explanation claims re-state the paper claims (not the precondition) on those rows."""
    from frugalcv.core.config import to_dict
    from frugalcv.testing import check_explanation_tests

    plan = _plan(ickd_digits100)
    bench = ickd_digits100.BENCHMARK
    x2 = [n for n in plan.jobs if n.startswith("explain/x2/")]
    assert len(x2) == 2 * len(ickd.ROWS)
    for name in x2:
        base_name = name.removeprefix("explain/x2/")
        base, job = to_dict(plan.config(base_name)), to_dict(plan.config(name))
        assert job["train"]["epochs"] == 2 * base["train"]["epochs"]
        assert job["optim"]["milestones"] == [2 * m for m in base["optim"]["milestones"]]
        job["train"]["epochs"], job["optim"]["milestones"] = (
            base["train"]["epochs"],
            base["optim"]["milestones"],
        )
        job["train"]["out_dir"] = base["train"]["out_dir"]
        assert job == base
    tests = check_explanation_tests(bench, plan)
    assert sorted(c.explains for c in tests) == sorted(
        c.text for c in bench.claims if not c.explains and not c.text.startswith("precondition")
    )
