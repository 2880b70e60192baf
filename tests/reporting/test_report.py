"""Report generator: summary of claims, markdown + static HTML + PNG plots, no machine paths."""

import json
import re
from pathlib import Path

import pytest

from frugalcv.reporting import results as results_mod
from frugalcv.reporting.report import (
    build_report,
    display_path,
    find_run_dirs,
    read_metrics_jsonl,
    read_summary,
)
from frugalcv.reporting.results import Claim, Results, Row, find_absolute_paths, write_results

pytestmark = pytest.mark.unit

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _fast_env(monkeypatch, tmp_path):
    monkeypatch.setenv("FRUGALCV_DATA", str(tmp_path / "data"))
    # env_info imports torch and calls git; its own test lives in test_results.py.
    monkeypatch.setattr(
        results_mod, "env_info", lambda: {"python": "3.11.0", "torch": "2.14.1", "cpu_count": 2}
    )


def _write_results(results_dir: Path) -> None:
    write_results(
        results_dir / "distill.json",
        Results(
            benchmark="distill_toy",
            command="frugalcv bench distill --preset tiny",
            dataset="toy-test",
            metric="acc",
            higher_is_better=True,
            seeds=[0, 1],
            rows=[
                Row(name="student", values=[0.9, 0.92], extra={"macs": 1_000_000, "params": 5_000}),
                Row(
                    name="teacher",
                    values=[0.97, 0.99],
                    extra={"macs": 50_000_000, "params": 90_000},
                ),
            ],
            claims=[
                Claim(text="the teacher is better", left="teacher", op=">", right="student"),
                Claim(text="by 0.1", left="teacher", op=">=", right="student", margin=0.1),
            ],
        ),
    )
    write_results(
        results_dir / "latency.json",
        Results(
            benchmark="latency_toy",
            command="frugalcv bench latency",
            dataset="random 32x32",
            metric="latency_ms",
            higher_is_better=False,
            seeds=[],
            rows=[Row(name="net_a", values=[3.25]), Row(name="net_b", values=[1.5, 2.5])],
            claims=[Claim(text="net_b is faster", left="net_b", op="<", right="net_a")],
            notes=f"data from {results_dir.parent / 'data'}",  # written as $FRUGALCV_DATA
        ),
    )


def _write_run(run_dir: Path, *, recipe: str, seed: int, bad_line: bool = False) -> None:
    run_dir.mkdir(parents=True)
    lines = []
    for step in (0, 10, 20, 30):
        lines.append({"step": step, "split": "train", "loss": 2.0 / (step + 1), "lr": 0.1})
        if step % 20 == 0:
            lines.append({"step": step, "split": "val", "acc": 0.5 + step / 100})
    text = "\n".join(json.dumps(x) for x in lines) + "\n"
    if bad_line:
        text += '{"step": 40, "split": "tr\n'  # truncated line, e.g. a killed run
    (run_dir / "metrics.jsonl").write_text(text)
    summary = {
        "recipe": recipe,
        "preset": "tiny",
        "seed": seed,
        "final": {"acc": 0.69},
        "best": {"acc": 0.7, "step": 20},
        "wall_s": 3.5,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary))
    (run_dir / "config.json").write_text("{}")


def _img_sources(index: Path) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', index.read_text())


def test_build_report_full(tmp_path, monkeypatch):
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")  # the folders are outside the current folder
    results_dir, runs_dir, out = tmp_path / "results", tmp_path / "runs", tmp_path / "out"
    _write_results(results_dir)
    _write_run(runs_dir / "ickd" / "tiny" / "student_kd", recipe="ickd", seed=0)
    _write_run(runs_dir / "ickd" / "tiny" / "student_kd_s1", recipe="ickd", seed=1)

    index = build_report(results_dir=results_dir, runs_dir=runs_dir, out_dir=out)

    assert index == out / "index.html"
    md = (out / "report.md").read_text()
    # The summary opens the report: per benchmark, each claim, its verdict, both means ± std.
    assert md.index("## Summary") < md.index("## Benchmarks") < md.index("## Runs")
    assert "2 of 3 claims hold" in md  # teacher 0.98 - student 0.91 = 0.07: '>' holds, '>= 0.1' not
    assert (
        "| distill_toy | the teacher is better: teacher > student | **holds** "
        "| 0.980 ± 0.014 | 0.910 ± 0.014 |"
    ) in md
    assert "| distill_toy | by 0.1: teacher >= student + 0.1 | **fails** |" in md
    assert (
        "| latency_toy | net_b is faster: net_b < net_a | **holds** | 2.00 ± 0.71 | 3.250 |" in md
    )
    # student: mean 0.91, sample std 0.01414 -> 3 decimals; net_a has one value: mean only.
    assert "| student | 0.910 ± 0.014 | 2 | 1M | 5000 |" in md
    assert "| teacher | 0.980 ± 0.014 | 2 | 50M | 90k |" in md
    assert "| net_a | 3.250 | 1 |" in md
    assert "| net_b | 2.00 ± 0.71 | 2 |" in md
    assert "- **fails**: by 0.1 (teacher >= student): 0.980 ± 0.014 vs 0.910 ± 0.014" in md
    assert "frugalcv bench distill --preset tiny" in md
    assert "toy-test" in md and "lower is better" in md
    assert "python 3.11.0" in md and "torch 2.14.1" in md
    # run table: final and best are named and the best step is given
    assert "final (last step)" in md and "best (at step)" in md
    assert "| ickd/tiny/student_kd | ickd | tiny | 0 | acc=0.69 | acc=0.7 @ step 20 | 3.5 |" in md
    assert "Warnings" not in md
    # No absolute path of this machine anywhere, and no "None" for a folder.
    assert find_absolute_paths(md) == [] and str(tmp_path) not in md
    assert "Notes: data from $FRUGALCV_DATA" in md
    assert "`…/results`" in md and "`…/runs`" in md and "None" not in md

    sources = _img_sources(index)
    # two bar charts, one cost plot (only distill has a cost), one curves figure for recipe ickd
    assert sorted(Path(s).name for s in sources) == [
        "curves_ickd.png",
        "distill_bar.png",
        "distill_cost.png",
        "latency_bar.png",
    ]
    for src in sources:
        png = out / src
        assert png.is_file() and png.stat().st_size > 1000
        assert png.read_bytes()[:8] == _PNG_MAGIC
    html = index.read_text()
    assert "<table>" in html and "<script" not in html and "http" not in html
    assert "<strong>holds</strong>" in html and str(tmp_path) not in html


def test_malformed_inputs_become_warnings_without_absolute_paths(tmp_path):
    results_dir, runs_dir, out = tmp_path / "results", tmp_path / "runs", tmp_path / "out"
    _write_results(results_dir)
    (results_dir / "broken.json").write_text('{"benchmark": "x"')
    (results_dir / "missing_key.json").write_text(json.dumps({"benchmark": "x"}))
    _write_run(runs_dir / "good", recipe="kd", seed=0, bad_line=True)
    (runs_dir / "no_recipe").mkdir()
    (runs_dir / "no_recipe" / "summary.json").write_text(json.dumps({"seed": 0}))

    index = build_report(results_dir=results_dir, runs_dir=runs_dir, out_dir=out)

    md = (out / "report.md").read_text()
    warnings = [line for line in md.splitlines() if line.startswith("- WARNING:")]
    assert len(warnings) == 4
    text = "\n".join(warnings)
    assert "broken.json" in text and "not valid JSON" in text
    assert "missing_key.json" in text and "missing key 'command'" in text
    assert "good/metrics.jsonl" in text and "skipped 1 malformed line" in text and "line 7" in text
    assert "no_recipe" in text and "missing key 'recipe'" in text
    assert str(tmp_path) not in md
    # the good inputs are still reported
    assert "| student | 0.910 ± 0.014 |" in md
    assert "| good | kd | tiny | 0 |" in md
    assert all((out / s).is_file() for s in _img_sources(index))


def test_empty_inputs_say_nothing_yet(tmp_path):
    index = build_report(
        results_dir=tmp_path / "does_not_exist", runs_dir=tmp_path / "runs", out_dir=tmp_path / "o"
    )
    md = (tmp_path / "o" / "report.md").read_text()
    assert "Nothing to report yet" in md
    assert "No benchmark results yet" in md and "No runs yet" in md
    assert _img_sources(index) == []
    build_report(results_dir=tmp_path, runs_dir=None, out_dir=tmp_path / "o2")
    md2 = (tmp_path / "o2" / "report.md").read_text()
    assert "No runs folder given" in md2 and "(no runs folder given)" in md2 and "None" not in md2


def test_display_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    assert display_path(tmp_path / "benchmarks" / "results") == "benchmarks/results"
    assert display_path(Path("benchmarks/results")) == "benchmarks/results"
    monkeypatch.setenv("FRUGALCV_RUNS", "/somewhere/runs")
    assert display_path(Path("/somewhere/runs/bench")) == "$FRUGALCV_RUNS/bench"
    assert display_path(Path("/elsewhere/x/results")) == "…/results"


def test_read_metrics_jsonl_skips_bad_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(
        '{"step": 1, "split": "train", "loss": 0.5, "tag": "x"}\n'
        "\n"
        '{"step": "2", "split": "train", "loss": 0.4}\n'
        '{"step": 3, "split": "test", "acc": 0.1}\n'
        "[1, 2]\n"
        '{"step": 4, "split": "val", "acc": 0.75}\n'
    )
    records, problems = read_metrics_jsonl(path)
    assert records == [
        {"loss": 0.5, "step": 1, "split": "train"},
        {"acc": 0.75, "step": 4, "split": "val"},
    ]
    assert [p.split(":")[0] for p in problems] == ["line 3", "line 4", "line 5"]


def test_find_run_dirs_and_read_summary(tmp_path):
    _write_run(tmp_path / "a" / "b" / "c", recipe="r", seed=0)
    _write_run(tmp_path / "d", recipe="r", seed=1)
    assert find_run_dirs(tmp_path) == [tmp_path / "a" / "b" / "c", tmp_path / "d"]
    assert find_run_dirs(tmp_path / "missing") == []
    assert read_summary(tmp_path / "d" / "summary.json")["best"]["step"] == 20
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"recipe": "r", "preset": "p", "seed": 0, "final": {}, "best": {}}))
    with pytest.raises(ValueError, match="best.step"):
        read_summary(bad)


def test_summary_states_each_claims_threshold_with_its_sign():
    """``<`` with margin m means left < right - m; a negative margin (a tolerance) flips the sign;
    a column claim names its column."""
    from frugalcv.reporting.report import _threshold

    def claim(op, margin, column=""):
        return Claim(text="t", left="a", op=op, right="b", margin=margin, column=column)

    assert _threshold(claim(">=", 0.05)) == "b + 0.05"
    assert _threshold(claim("<", 0.5)) == "b - 0.5"
    assert _threshold(claim("<=", -0.1)) == "b + 0.1"  # at most 1.1x when b is 1.0
    assert _threshold(claim(">=", -0.01)) == "b - 0.01"
    assert _threshold(claim(">", 0.0)) == "b"
