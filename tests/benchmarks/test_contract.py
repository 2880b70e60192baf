"""Every registered benchmark runs its --quick version end to end, from an empty runs folder.

The quick file must hold the declared rows (the same names as the committed results file), the
quick seeds, finite values, claims that name existing rows and evaluate, and no machine path.
"""

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from frugalcv.benchmarks import BENCHMARKS, get_benchmark
from frugalcv.benchmarks.runner import make_plan
from frugalcv.cli import app
from frugalcv.reporting.results import find_absolute_paths, read_results

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"

pytestmark = pytest.mark.recipe

runner = CliRunner()


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    """Run each benchmark's --quick once (lazily) in its own empty folders; name -> folders."""
    done: dict[str, dict] = {}

    def run(name: str) -> dict:
        if name not in done:
            root = tmp_path_factory.mktemp(f"quick_{name}")
            runs, results = root / "runs", root / "results"
            mp = pytest.MonkeyPatch()
            mp.setenv("FRUGALCV_RUNS", str(runs))
            mp.chdir(root)
            try:
                res = runner.invoke(app, ["bench", name, "--quick", "--results-dir", str(results)])
            finally:
                mp.undo()
            assert res.exit_code == 0, res.output + repr(res.exception)
            done[name] = {"runs": runs, "results": results, "output": res.output}
        return done[name]

    return run


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_quick_contract(name, quick_runs, committed_results):
    bench = get_benchmark(name)
    out = quick_runs(name)
    path = out["results"] / f"{name}_quick.json"
    assert path.is_file() and not (out["results"] / f"{name}.json").exists()
    res = read_results(path)
    assert res.quick is True and res.benchmark == name
    assert res.seeds == list(bench.quick_seeds)
    seeds = ",".join(map(str, bench.quick_seeds))
    assert res.command == f"frugalcv bench {name} --seeds {seeds} --quick"
    declared = [s.name for s in bench.rows(bench.quick_seeds)]
    if bench.compute is None:
        assert [r.name for r in res.rows] == declared
    else:  # rows computed directly (timings) come after any declared ones
        assert [r.name for r in res.rows][: len(declared)] == declared and res.rows
    for row in res.rows:
        assert all(math.isfinite(v) for v in row.values)
        if bench.metric_range is not None:  # accuracies, mIoU, mAP
            lo, hi = bench.metric_range
            assert lo <= row.mean <= hi, (row.name, row.mean)
    # pictures the quick runs drew are copied and listed (a quick run may draw none)
    assert all((path.parent / f.path).is_file() for f in res.figures)
    paper = [c for c in bench.claims if not c.explains]  # explanation tests: not in --quick
    assert res.claims == paper and res.claims
    verdicts = res.evaluate_claims()
    assert len(verdicts) == len(paper)
    rows_by_name = {r.name: r for r in res.rows}
    decide = {
        ">": lambda a, b, m: a - b > m,
        ">=": lambda a, b, m: a - b >= m,
        "<": lambda a, b, m: b - a > m,
        "<=": lambda a, b, m: b - a >= m,
    }
    for v in verdicts:  # decided from the two means (or the named column), as the text says
        c = v.claim
        left, right = (
            rows_by_name[n].extra[c.column] if c.column else rows_by_name[n].mean
            for n in (c.left, c.right)
        )
        assert v.holds == decide[c.op](left, right, c.margin)
        assert f"{v.verdict}: {v.claim.text}" in " ".join(out["output"].split())
    raw = json.loads(path.read_text())
    assert find_absolute_paths(raw) == []
    assert "holds" not in json.dumps(raw["claims"])  # claims are data, never a verdict
    # The declaration matches the committed results: same rows, same claims. A benchmark whose
    # full run has not been committed yet still had its --quick checked above.
    committed = committed_results(name)
    if committed is None:
        pytest.skip(f"no committed benchmarks/results/{name}.json yet: run `frugalcv bench {name}`")
    explain = {r.name for r in bench.explain_rows(committed.seeds)} if bench.explain_rows else set()
    rows = [r.name for r in committed.rows if r.name not in explain]  # quick runs no explanations
    if bench.compute is None:
        assert rows == [r.name for r in res.rows]
    else:  # a timing benchmark's --quick may leave out its slowest rows (torch.compile)
        assert {r.name for r in res.rows} <= set(rows)
    assert [c for c in committed.claims if not c.explains] == res.claims
    assert {c.left for c in committed.claims if c.explains} <= explain | set(rows)
    assert all((RESULTS / f.path).is_file() for f in committed.figures)  # committed with it
    assert committed.metric == res.metric and committed.dataset == res.dataset


def test_ickd_ablation_runs_from_an_empty_runs_folder(quick_runs):
    """The old bug: a row read a teacher only a later row wrote. The teacher is a job, trained
    first; every row is its own job that loads it."""
    bench = get_benchmark("ickd_ablation")
    plan = make_plan(bench, seeds=[0], quick=True, runs_dir="unused")
    order = list(plan.jobs)
    assert order[0] == "teacher"
    assert order.index("seed0/ickd_b4") < order.index("seed0/wide_ickd")  # declared order kept
    for name, pj in plan.jobs.items():
        if name != "teacher":
            assert pj.job.dependencies() == ("teacher",)
            assert pj.cfg.distill.teacher_ckpt.endswith("teacher/last.pt")
            assert len(pj.cfg.distill.rows) == 1
    assert plan.jobs["seed0/ickd_b4"].cfg.distill.ickd == 4.0
    assert plan.jobs["seed0/ickd_stage2"].cfg.distill.stage == 2
    assert plan.jobs["seed0/kd"].cfg.distill.ce == 0.1  # RepDistiller's KD row: -r 0.1 -a 0.9
    assert plan.jobs["seed0/kd"].cfg.distill.kd == 0.9
    out = quick_runs("ickd_ablation")  # started from a folder that did not exist
    root = out["runs"] / "bench" / "ickd_ablation_quick"
    assert (root / "teacher" / "last.pt").is_file()
    rows = json.loads((root / "seed0" / "ickd_b4" / "rows.json").read_text())["rows"]
    assert [r["name"] for r in rows] == ["teacher", "ickd"]
    assert rows[0]["loaded_from"].endswith("teacher/last.pt")


@pytest.fixture
def committed_results():
    folder = RESULTS

    def read(name):
        path = folder / f"{name}.json"
        return read_results(path) if path.is_file() else None

    return read
