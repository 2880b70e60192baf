"""Shared pieces of the scripts under ``benchmarks/``: seeds loop bookkeeping and printing.

A benchmark runs the method and its baselines side by side with the same data and schedule, one
run folder per (row, seed) under ``runs/bench/<name>/``, and writes
``benchmarks/results/<name>.json`` (mean and sample std over seeds). Reruns resume finished runs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from rich.console import Console

from frugalcv.core.results import Row, format_table, write_results


def results_path(name: str) -> Path:
    """``benchmarks/results/<name>.json`` of the source checkout (or of the current folder)."""
    here = Path(__file__).resolve().parents[2] / "benchmarks"  # source checkout
    root = here if here.is_dir() else Path.cwd() / "benchmarks"
    return root / "results" / f"{name}.json"


def run_dir(name: str, *parts: str) -> str:
    return str(Path(os.environ.get("FRUGALCV_RUNS", "runs")) / "bench" / name / Path(*parts))


def data_root_note() -> str:
    root = os.environ.get("FRUGALCV_DATA", "")
    return f"FRUGALCV_DATA={root}" if root else "embedded data only (FRUGALCV_DATA unset)"


def scaled_milestones(epochs: float) -> tuple[float, ...]:
    """RepDistiller's lr decays at epochs 150/180/210 of 240, scaled to ``epochs``."""
    return tuple(epochs * m / 240 for m in (150, 180, 210))


def finish(
    name: str,
    *,
    dataset: str,
    metric: str,
    higher_is_better: bool,
    seeds: list[int],
    rows: list[Row],
    notes: str,
    quick: bool,
    t0: float,
) -> dict:
    """Write ``benchmarks/results/<name>.json`` and print the table.

    With ``quick`` (a smoke run, not for results) the file goes under the runs folder instead.
    The command recorded is ``frugalcv bench <name> --seeds ...``.
    """
    command = f"frugalcv bench {name} --seeds {','.join(map(str, seeds))}"
    notes = (
        f"{notes} This invocation took {time.time() - t0:.0f} s (runs finished earlier are "
        f"resumed from their checkpoints, not retrained). {data_root_note()}."
    )
    path = Path(run_dir(name)) / f"{name}.quick.json" if quick else results_path(name)
    res = write_results(
        path,
        benchmark=name,
        command=command,
        dataset=dataset,
        metric=metric,
        higher_is_better=higher_is_better,
        seeds=seeds,
        rows=rows,
        notes=notes,
    )
    Console().print(format_table(res))
    print(f"written: {path}")
    return res
