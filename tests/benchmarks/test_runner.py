"""The runner: dependency order, up-front config checks, resume, --jobs 2 == --jobs 1, CLI."""

from pathlib import Path

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


def _chained_jobs(seeds, quick):
    """Two jobs of seed 0, the second reading the first's run folder."""
    return [
        Job(name="tiny_cnn/seed0", recipe="classify", overrides=_tiny(0, "tiny_cnn")),
        Job(
            name="resnet8/seed0",
            recipe="classify",
            overrides=_tiny(0, "resnet8"),
            needs=("tiny_cnn/seed0",),
        ),
    ]


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


@pytest.mark.recipe
def test_explanation_rows_and_claims_are_kept_only_when_their_jobs_ran(tmp_path):
    """An explanation test (a claim re-stated under one changed condition) gets its own rows and a
    claim with ``explains``; a run without its jobs (here: quick) leaves both out, the paper's
    claims stay, and the report counts only the paper's claims."""
    from frugalcv.reporting.report import build_report

    def jobs(seeds, quick):
        out = [
            Job(name=f"{m}/seed{s}", recipe="classify", overrides=_tiny(s, m))
            for m in ("tiny_cnn", "resnet8")
            for s in seeds
        ]
        if not quick:
            out += [
                Job(
                    name=f"x2/{m}",
                    recipe="classify",
                    overrides={**_tiny(0, m), "train.max_steps": 8},
                )
                for m in ("tiny_cnn", "resnet8")
            ]
        return out

    def explain_rows(seeds):
        return [
            RowSpec(name=f"{m} [2x steps]", sources=(Source(f"x2/{m}"),), metric="acc")
            for m in ("tiny_cnn", "resnet8")
        ]

    paper = Claim(text="resnet beats cnn", left="resnet8", op=">", right="tiny_cnn")
    test = Claim(
        text="[2x steps] resnet beats cnn",
        left="resnet8 [2x steps]",
        op=">",
        right="tiny_cnn [2x steps]",
        explains="resnet beats cnn",
    )
    bench = _bench(jobs=jobs, claims=(paper, test), explain_rows=explain_rows)
    kw = dict(results_dir=tmp_path / "r", runs_dir=tmp_path / "a", echo=lambda s: None)
    res, path = run_benchmark(bench, **kw)
    assert [r.name for r in res.rows][-2:] == ["tiny_cnn [2x steps]", "resnet8 [2x steps]"]
    assert res.claims == [paper, test]
    assert read_results(path).claims == [paper, test]  # `explains` survives the file
    quick, _ = run_benchmark(bench, quick=True, **kw)
    assert [r.name for r in quick.rows] == ["tiny_cnn", "resnet8"] and quick.claims == [paper]
    report = build_report(results_dir=tmp_path / "r", out_dir=tmp_path / "rep", runs_dir=None)
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "1 explanation tests re-state failed claims" in md
    assert "(re-tests: resnet beats cnn)" in md
    assert report is not None


def test_zsl_and_erpcnet_explanation_tests_name_rows_their_plans_train():
    """Every explanation row is fed by jobs of the full plan, every claim names existing rows, the
    explanation jobs change only their condition's keys, and --quick plans none of them."""
    from frugalcv.benchmarks import get_benchmark
    from frugalcv.core.config import to_dict
    from frugalcv.testing import check_explanation_tests

    for name in ("zsl", "erpcnet"):
        bench = get_benchmark(name)
        plan = make_plan(bench, check_data=False, runs_dir="/nonexistent-runs")
        check_explanation_tests(bench, plan)
        x2 = plan.config(
            "explain/x2/zsl-digits/seed0/" + ("bgsnet" if name == "zsl" else "erpcnet")
        )
        base = plan.config("zsl-digits/seed0/" + ("bgsnet" if name == "zsl" else "erpcnet"))
        flat = lambda c: {  # noqa: E731
            f"{g}.{k}": v
            for g, d in to_dict(c).items()
            if isinstance(d, dict)
            for k, v in d.items()
        }
        changed = {k for k, v in flat(x2).items() if flat(base)[k] != v}
        assert changed == {"train.epochs", "train.eval_every", "train.out_dir"}
        if bench.figures is not None:  # erpcnet: the localities its policies chose
            assert all(src.job in plan.jobs for _, src in bench.figures(plan.seeds))


@pytest.mark.recipe
def test_figures_drawn_by_runs_are_copied_next_to_the_results_and_shown_in_the_report(tmp_path):
    """A declared picture that a run wrote travels with the results file (``figures/``) and the
    report embeds it; one the runs did not write is left out, never invented."""
    from frugalcv.reporting.report import build_report
    from frugalcv.reporting.results import Figure

    def figures(seeds):
        return [
            ("the run's config", Source(f"tiny_cnn/seed{seeds[0]}", row="config.json")),
            ("never drawn", Source(f"tiny_cnn/seed{seeds[0]}", row="nope.png")),
            ("drawn by measure", Source("", row="whole.png")),
        ]

    bench = _bench(figures=figures)
    (tmp_path / "a/bench/toy").mkdir(parents=True)
    (tmp_path / "a/bench/toy/whole.png").write_bytes(b"png")
    res, path = run_benchmark(
        bench, results_dir=tmp_path / "r", runs_dir=tmp_path / "a", echo=lambda s: None
    )
    fig, whole = res.figures
    assert whole.path == "figures/toy__whole.png"
    assert (path.parent / whole.path).read_bytes() == b"png"
    assert fig.caption == "the run's config" and not Path(fig.path).is_absolute()
    copied = path.parent / fig.path
    assert copied.read_text() == (tmp_path / "a/bench/toy/tiny_cnn/seed0/config.json").read_text()
    assert read_results(path).figures == [fig, whole]
    build_report(results_dir=tmp_path / "r", out_dir=tmp_path / "rep", runs_dir=None)
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "![the run's config](figures/" in md and "never drawn" not in md
    with pytest.raises(ValueError, match="relative"):
        Figure(caption="x", path=str(tmp_path / "abs.png"))


@pytest.mark.recipe
def test_job_records_finish_a_benchmark_on_a_machine_without_its_run_folders(tmp_path, monkeypatch):
    """Finished jobs are recorded beside the results (portable paths, declared pictures); with
    the run folders gone the records alone give the same results and nothing retrains; a changed
    config retrains; a recorded job whose run folder an unfinished job reads is trained again."""
    monkeypatch.setenv("FRUGALCV_RUNS", str(tmp_path / "a"))

    def figures(seeds):
        return [("hist", Source("tiny_cnn/seed0", row="metrics.jsonl"))]

    bench = _bench(figures=figures, jobs=_chained_jobs)
    first, path = run_benchmark(bench, results_dir=tmp_path / "r", echo=lambda s: None)
    record = tmp_path / "r" / "jobs" / "toy" / "tiny_cnn" / "seed0"
    assert sorted(p.name for p in record.iterdir()) == [
        "config.json",
        "metrics.jsonl",
        "summary.json",
    ]
    assert str(tmp_path) not in (record / "config.json").read_text()
    assert "$FRUGALCV_RUNS/bench/toy/tiny_cnn/seed0" in (record / "config.json").read_text()

    # Another machine: the same results folder (committed), no run folders.
    monkeypatch.setenv("FRUGALCV_RUNS", str(tmp_path / "b"))
    (path.parent / "figures").rename(tmp_path / "old_figures")
    lines: list[str] = []
    again, _ = run_benchmark(bench, results_dir=tmp_path / "r", echo=lines.append)
    assert sum("(job record" in s for s in lines) == 2
    assert not (tmp_path / "b" / "bench" / "toy" / "tiny_cnn").exists()  # nothing trained
    assert [r.values for r in again.rows] == [r.values for r in first.rows]
    assert [r.extra for r in again.rows] == [r.extra for r in first.rows]
    assert again.figures == first.figures  # pictures come from the record
    assert (path.parent / again.figures[0].path).is_file()

    # The student's record is gone: the teacher is recorded only, so it is trained again first.
    for f in (record.parent.parent / "resnet8" / "seed0").iterdir():
        f.unlink()
    lines.clear()
    third, _ = run_benchmark(bench, results_dir=tmp_path / "r", echo=lines.append)
    assert any("tiny_cnn/seed0: only recorded; trained again" in s for s in lines)
    assert (tmp_path / "b" / "bench" / "toy" / "tiny_cnn" / "seed0" / "summary.json").is_file()
    assert [r.values for r in third.rows] == [r.values for r in first.rows]

    # A changed config does not match the record: that job trains.
    changed = _bench(
        figures=figures,
        jobs=lambda seeds, quick: [
            Job(name="tiny_cnn/seed0", recipe="classify", overrides=_tiny(1, "tiny_cnn"))
        ],
        rows=lambda seeds: [
            RowSpec(name="tiny_cnn", sources=(Source("tiny_cnn/seed0"),), metric="acc")
        ],
        claims=(),
    )
    lines.clear()
    run_benchmark(changed, results_dir=tmp_path / "r", runs_dir=tmp_path / "c", echo=lines.append)
    assert not any("finished earlier" in s for s in lines)
    assert (tmp_path / "c" / "bench" / "toy" / "tiny_cnn" / "seed0" / "summary.json").is_file()


def test_quick_runs_keep_no_job_records(tmp_path):
    from frugalcv.benchmarks.runner import records_path

    assert records_path("toy", quick=True, results_dir=tmp_path) is None
    assert records_path("toy", quick=False, results_dir=tmp_path) == tmp_path / "jobs" / "toy"


def test_part_jobs_join_the_main_jobs_rows_and_are_completed(tmp_path):
    """A job ``part_of`` another adds its rows under the main job's name (the main job's own
    row wins on a clash), then ``Benchmark.complete`` adds the derived rows; a part alone is not
    joined; a part of an unknown job, of itself or of a part is refused before any training."""
    from frugalcv.core.jsonio import write_json

    def jobs(seeds, quick):
        return [
            Job(name="main", recipe="classify"),
            Job(name="main_static", recipe="classify", part_of="main"),
        ]

    def complete(rows):
        by = {r["name"]: r for r in rows}
        extra = {"name": "derived", "final": {"acc": by["static"]["final"]["acc"] - 0.01}}
        return rows + [extra] if "static" in by else rows

    plan = make_plan(_bench(jobs=jobs, complete=complete), runs_dir=tmp_path)
    write_json(
        plan.dir("main") / "rows.json", {"rows": [{"name": "dynamic", "final": {"acc": 0.8}}]}
    )
    write_json(
        plan.dir("main_static") / "rows.json",
        {"rows": [{"name": "static", "final": {"acc": 0.9}}, {"name": "dynamic", "final": {}}]},
    )
    out = plan.outputs("main")
    assert list(out) == ["dynamic", "static", "derived"]
    assert out["dynamic"]["final"]["acc"] == 0.8
    assert out["derived"]["final"]["acc"] == pytest.approx(0.89)
    assert list(plan.outputs("main_static")) == ["static", "dynamic"]
    for bad in ("nope", "a", "b"):
        decl = [Job(name="b", recipe="classify"), Job(name="c", recipe="classify", part_of="b")]
        decl.append(Job(name="a", recipe="classify", part_of=bad if bad != "b" else "c"))
        with pytest.raises(ValueError, match="part_of"):
            make_plan(_bench(jobs=lambda s, q, d=decl: d), runs_dir=tmp_path)


@pytest.mark.recipe
def test_packed_run_folders_carry_unfinished_jobs_to_another_machine(tmp_path, monkeypatch):
    """``pack_jobs`` packs an unfinished job's run folder and the run folder of a finished job it
    reads into their records; on a machine without run folders both are restored (nothing trains
    again from scratch), the results equal, and the packs are deleted once nothing needs them. A
    corrupt pack is refused by name before the run folder is touched."""
    from frugalcv.benchmarks.runner import PACKED, pack_jobs, records_path

    monkeypatch.setenv("FRUGALCV_RUNS", str(tmp_path / "a"))

    bench = _bench(jobs=_chained_jobs)
    first, _ = run_benchmark(bench, results_dir=tmp_path / "r", echo=lambda s: None)
    records = records_path("toy", quick=False, results_dir=tmp_path / "r")
    # The student stopped before its summary (its checkpoint is kept) and is not recorded.
    student = tmp_path / "a" / "bench" / "toy" / "resnet8" / "seed0"
    (student / "summary.json").unlink()
    for f in (records / "resnet8" / "seed0").iterdir():
        f.unlink()
    plan = make_plan(bench, check_data=False, records_dir=records)
    lines: list[str] = []
    assert pack_jobs(plan, echo=lines.append) == ["tiny_cnn/seed0", "resnet8/seed0"]
    assert (records / "resnet8" / "seed0" / PACKED).is_file()
    assert not list(records.rglob("*.tmp"))
    assert "is not empty" in plan.jobs["resnet8/seed0"].unpack()  # this machine's run wins

    # A corrupt pack: a clear error naming it, nothing written to the run folder.
    good = (records / "resnet8" / "seed0" / PACKED).read_bytes()
    (records / "resnet8" / "seed0" / PACKED).write_bytes(good[: len(good) // 2])
    monkeypatch.setenv("FRUGALCV_RUNS", str(tmp_path / "b"))
    with pytest.raises(ValueError, match=f"{PACKED} cannot be read.*Delete it"):
        run_benchmark(bench, results_dir=tmp_path / "r", echo=lambda s: None)
    assert not (tmp_path / "b" / "bench" / "toy" / "resnet8" / "seed0").exists()

    (records / "resnet8" / "seed0" / PACKED).write_bytes(good)
    lines.clear()
    again, _ = run_benchmark(bench, results_dir=tmp_path / "r", echo=lines.append)
    assert any("tiny_cnn/seed0: run folder restored from" in s for s in lines), lines
    assert any("resnet8/seed0: resumes from the run packed" in s for s in lines), lines
    assert not any("trained again" in s for s in lines)
    assert [r.values for r in again.rows] == [r.values for r in first.rows]
    metrics = tmp_path / "b" / "bench" / "toy" / "resnet8" / "seed0" / "metrics.jsonl"
    assert metrics.read_text() == (student / "metrics.jsonl").read_text()  # not restarted
    assert not list(records.rglob(PACKED))  # every job finished: the packs are gone

    # --quick keeps no records: nothing to pack into.
    quick = make_plan(bench, quick=True, check_data=False, records_dir=None)
    with pytest.raises(ValueError, match="keep no job records"):
        pack_jobs(quick)


def test_bench_pack_on_a_machine_with_no_runs_packs_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("FRUGALCV_RUNS", str(tmp_path / "runs"))
    res = runner.invoke(app, ["bench", "ddsnet", "--pack", "--results-dir", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert "nothing to pack" in res.output and not (tmp_path / "r").exists()
    res = runner.invoke(app, ["bench", "ddsnet", "--pack", "--quick"])
    assert res.exit_code != 0 and "keep no job records" in " ".join(res.output.split())


def test_a_record_counts_as_finished_whatever_its_checkpoint_interval_but_a_resume_does_not():
    """How often a finished run checkpointed does not change its numbers, so a record matches a
    job that now checkpoints more often; a checkpoint to resume from must match it exactly."""
    from frugalcv.core.config import to_dict

    pj = make_plan(_bench(), check_data=False).jobs["tiny_cnn/seed0"]
    saved = to_dict(pj.cfg)
    saved["train"]["ckpt_every"] = 7
    assert pj._same_config(saved) and not pj._same_config(saved, strict=True)
    saved["train"]["max_steps"] = 5
    assert not pj._same_config(saved)
