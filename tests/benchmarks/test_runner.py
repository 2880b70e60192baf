"""The runner: dependency order, up-front config checks, resume, --jobs 2 == --jobs 1, CLI."""

import pytest
from typer.testing import CliRunner

from frugalcv.benchmarks.runner import _cpu_count, make_plan, results_path, run_benchmark
from frugalcv.benchmarks.spec import Benchmark, Claim, Job, Output, RowSpec, Source
from frugalcv.cli import app
from frugalcv.reporting import results as results_mod
from frugalcv.reporting.results import read_results

runner = CliRunner()


@pytest.fixture(autouse=True)
def _fast_env(monkeypatch):
    monkeypatch.setattr(results_mod, "env_info", lambda: {"python": "3.x"})


def _tiny(seed: int, model: str) -> dict:
    """A few steps of the classify recipe on sklearn's 8x8 digits (embedded, instant)."""
    return {
        "data.name": "digits",
        "data.num_train": 96,
        "data.num_test": 64,
        "model.name": model,
        "optim.schedule": "constant",
        "optim.warmup_steps": 0,
        "train.batch_size": 32,
        "train.max_steps": 4,
        "train.seed": seed,
    }


def _bench(**kw) -> Benchmark:
    def jobs(seeds, quick):
        return [
            Job(name=f"{m}/seed{s}", recipe="classify", overrides=_tiny(s, m))
            for m in ("tiny_cnn", "resnet8")
            for s in seeds
        ]

    def rows(seeds):
        return [
            RowSpec(
                name=m,
                sources=tuple(Source(f"{m}/seed{s}") for s in seeds),
                metric="acc",
                copy=("params",),
                mean={"steps_mean": "steps"},
                extra={"note": "toy"},
            )
            for m in ("tiny_cnn", "resnet8")
        ]

    args = dict(
        name="toy",
        about="two tiny classify jobs",
        dataset="digits",
        metric="test accuracy",
        higher_is_better=True,
        jobs=jobs,
        rows=rows,
        claims=(Claim(text="resnet beats cnn", left="resnet8", op=">=", right="tiny_cnn"),),
        notes="toy.",
        seeds=(0,),
    )
    return Benchmark(**{**args, **kw})


@pytest.mark.recipe
def test_jobs_2_gives_the_numbers_of_jobs_1_and_finished_jobs_are_not_retrained(tmp_path):
    serial, _ = run_benchmark(
        _bench(), results_dir=tmp_path / "r1", runs_dir=tmp_path / "a", echo=lambda s: None
    )
    lines: list[str] = []
    parallel, path = run_benchmark(
        _bench(), jobs=2, results_dir=tmp_path / "r2", runs_dir=tmp_path / "b", echo=lines.append
    )
    assert path == tmp_path / "r2" / "toy.json"
    assert [r.values for r in parallel.rows] == [r.values for r in serial.rows]
    assert [r.extra for r in parallel.rows] == [r.extra for r in serial.rows]
    extra = serial.rows[0].extra
    assert list(extra) == ["params", "steps_mean", "note"]  # copy, mean, constant
    assert extra["steps_mean"] == 4.0 and extra["note"] == "toy" and extra["params"] > 1000
    threads = max(1, _cpu_count() // 2)  # each child's OMP/MKL threads: its share of the cores
    assert sum(f"started ({threads} threads)" in s for s in lines) == 2
    log = tmp_path / "b" / "bench" / "toy" / "logs" / "tiny_cnn__seed0.log"
    assert log.is_file()
    # Rerun: both jobs are finished (summary + same config), nothing retrains.
    summary = tmp_path / "a" / "bench" / "toy" / "resnet8" / "seed0" / "summary.json"
    before = summary.stat().st_mtime_ns
    lines.clear()
    again, _ = run_benchmark(
        _bench(), results_dir=tmp_path / "r1", runs_dir=tmp_path / "a", echo=lines.append
    )
    assert sum("finished earlier, not retrained" in s for s in lines) == 2
    assert summary.stat().st_mtime_ns == before
    assert [r.values for r in again.rows] == [r.values for r in serial.rows]
    back = read_results(tmp_path / "r1" / "toy.json")
    assert back.command == "frugalcv bench toy --seeds 0" and back.quick is False


def test_plan_orders_dependencies_and_resolves_outputs(tmp_path):
    def jobs(seeds, quick):
        return [
            Job(
                name="student",
                recipe="ickd",
                overrides={"distill.teacher_ckpt": Output("teacher", "teacher/last.pt")},
            ),
            Job(name="other", recipe="classify", needs=("student",)),
            Job(name="teacher", recipe="ickd", overrides={"distill.teacher_only": True}),
        ]

    plan = make_plan(_bench(jobs=jobs), runs_dir=tmp_path)
    assert list(plan.jobs) == ["teacher", "student", "other"]
    root = tmp_path / "bench" / "toy"
    assert plan.dir("student") == root / "student"
    assert plan.config("student").distill.teacher_ckpt == str(root / "teacher/teacher/last.pt")
    assert plan.config("student").train.out_dir == str(root / "student")
    assert plan.config("teacher").train.progress is False
    args = plan.jobs["student"].cli_args()
    assert args[:4] == ["run", "ickd", "--preset", "tiny"]
    assert f"--distill.teacher_ckpt={root}/teacher/teacher/last.pt" in args
    quick = make_plan(_bench(jobs=jobs), quick=True, runs_dir=tmp_path)
    assert quick.root == tmp_path / "bench" / "toy_quick" and quick.seeds == [0]


@pytest.mark.parametrize(
    ("jobs", "needle"),
    [
        ([Job(name="a", recipe="classify", overrides={"optim.lrr": 0.1})], "'optim.lr'?"),
        ([Job(name="a", recipe="classify", overrides={"optim.schedule": "cosin"})], "job 'a'"),
        ([Job(name="a", recipe="clasify")], "Unknown recipe 'clasify'"),
        ([Job(name="a", recipe="classify", preset="huge")], "has no preset 'huge'"),
        ([Job(name="a", recipe="classify", needs=("b",))], "depends on 'b'"),
        ([Job(name="a", recipe="classify"), Job(name="a", recipe="classify")], "two jobs"),
        (
            [Job(name="a", recipe="classify", needs=("b",)),
             Job(name="b", recipe="classify", needs=("a",))],
            "circle: a -> b -> a",
        ),
    ],
)  # fmt: skip
def test_bad_declarations_fail_before_anything_trains(tmp_path, jobs, needle):
    with pytest.raises(ValueError, match="Benchmark toy") as info:
        make_plan(_bench(jobs=lambda seeds, quick: jobs), runs_dir=tmp_path)
    assert needle in str(info.value)
    assert not (tmp_path / "bench").exists()


def test_results_path_defaults(tmp_path, monkeypatch):
    monkeypatch.delenv("FRUGALCV_RESULTS", raising=False)
    assert str(results_path("x", quick=False)) == "benchmarks/results/x.json"
    assert str(results_path("x", quick=True)) == "benchmarks/results/x_quick.json"
    monkeypatch.setenv("FRUGALCV_RESULTS", str(tmp_path))
    assert results_path("x", quick=False) == tmp_path / "x.json"
    assert results_path("x", quick=False, results_dir="d") == tmp_path.__class__("d/x.json")


def test_cli_bad_seeds_unknown_benchmark_and_list():
    res = runner.invoke(app, ["bench", "ickd", "--seeds", "a,b"])
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [
        "error: --seeds needs integers separated by commas, like 0,1,2; got 'a,b'."
    ]
    assert res.exception is None or isinstance(res.exception, SystemExit)
    res = runner.invoke(app, ["bench", "ickdd"])
    assert res.exit_code == 2 and "Did you mean 'ickd'?" in res.output
    res = runner.invoke(app, ["bench", "ickd", "--seeds", "0,0"])
    assert res.exit_code == 2 and "twice" in res.output
    res = runner.invoke(app, ["list"], terminal_width=200)
    assert res.exit_code == 0
    for name in ("classify", "ickd", "ickd_seg", "ickd_ablation"):
        assert f"│ {name} " in res.output


@pytest.mark.recipe
def test_schedule_check_reads_both_schedules_and_reports_the_plateau(tmp_path):
    """A doubled-schedule job becomes a PlateauCheck in the file; a check whose job did not run
    (another seed) is left out rather than invented."""
    from frugalcv.benchmarks.spec import ScheduleCheck

    def jobs(seeds, quick):
        out = [
            Job(name=f"cnn/seed{s}", recipe="classify", overrides=_tiny(s, "tiny_cnn"))
            for s in seeds
        ]
        if 0 in seeds:
            doubled = {**_tiny(0, "tiny_cnn"), "train.max_steps": 8}
            out.append(Job(name="cnn/x2", recipe="classify", overrides=doubled))
        return out

    def rows(seeds):
        return [
            RowSpec(name="cnn", sources=tuple(Source(f"cnn/seed{s}") for s in seeds), metric="acc")
        ]

    check = ScheduleCheck(
        row="cnn",
        what="steps 4 -> 8",
        at=Source("cnn/seed0"),
        doubled=Source("cnn/x2"),
        metric="acc",
    )
    bench = _bench(jobs=jobs, rows=rows, claims=(), schedule_checks=(check,))
    res, path = run_benchmark(
        bench, results_dir=tmp_path / "r", runs_dir=tmp_path / "a", echo=lambda s: None
    )
    (p,) = res.plateau
    doubled = results_mod.read_json(
        tmp_path / "a" / "bench" / "toy" / "cnn" / "x2" / "summary.json"
    )
    assert p.value == res.rows[0].values[0] and p.doubled == doubled["final"]["acc"]
    assert p.holds == (abs(p.doubled - p.value) < 0.01)
    assert read_results(path).plateau == [p]  # round trip through the file
    assert ("plateau" if p.holds else "NOT at a plateau") in p.describe()
    other, _ = run_benchmark(
        bench, seeds=[1], results_dir=tmp_path / "r", runs_dir=tmp_path / "a", echo=lambda s: None
    )
    assert other.plateau == []


def test_plateau_check_verdict_and_bad_values():
    from frugalcv.reporting.results import PlateauCheck

    assert PlateauCheck(row="a", what="e 1 -> 2", value=0.80, doubled=0.805).holds
    assert not PlateauCheck(row="a", what="e 1 -> 2", value=0.80, doubled=0.83).holds
    assert not PlateauCheck(row="a", what="e 1 -> 2", value=0.80, doubled=0.78).holds  # a drop too
    with pytest.raises(ValueError, match="finite"):
        PlateauCheck(row="a", what="x", value=float("nan"), doubled=0.5)
