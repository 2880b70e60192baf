"""Schedule studies: one benchmark row retrained at several lengths and learning rates.

A study script (``benchmarks/studies/*_schedule.py``) names a grid ``{lr: (length, ...)}``,
declares one job per ``(lr, length)`` (:func:`grid_jobs`) in a :class:`Benchmark` that is not
registered (:func:`study_benchmark`), and :func:`run_grid_study` trains them through the
benchmark runner (finished runs are not retrained, an interrupted one resumes), reads the row's
metric from each and writes a results file with one row per ``(lr, length)`` and one plateau
check per doubling (:func:`grid_results`).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from frugalcv.benchmarks.spec import Benchmark, Job
from frugalcv.reporting.results import PlateauCheck, Results, Row, write_results

Grid = Mapping[float, Sequence[int]]  # learning rate -> lengths, each its own run


def job_name(lr: float, length: int, unit: str) -> str:
    """``"lr0.001/epochs240"``: the job (and folder) of one grid point."""
    return f"lr{lr:g}/{unit}{length}"


def grid_jobs(
    grid: Grid,
    *,
    unit: str,
    recipe: str,
    overrides: Callable[[float, int], dict[str, Any]],
) -> list[Job]:
    """One job per ``(lr, length)`` of ``grid``, with ``overrides(lr, length)``;
    the longest first, so a parallel run does not end waiting on one long job."""
    out = [
        (n, Job(name=job_name(lr, n, unit), recipe=recipe, overrides=overrides(lr, n)))
        for lr, lengths in grid.items()
        for n in lengths
    ]
    return [job for _, job in sorted(out, key=lambda p: -p[0])]


def study_benchmark(
    name: str, *, about: str, dataset: str, metric: str, jobs: Callable[..., list[Job]]
) -> Benchmark:
    """The runs of a study, as a benchmark the runner can plan and resume (seed 0 only; rows
    and claims come from the study, not from the runner)."""
    return Benchmark(
        name=name,
        about=about,
        dataset=dataset,
        metric=metric,
        higher_is_better=True,
        jobs=jobs,
        rows=lambda seeds: [],
        claims=(),
        notes="",
        seeds=(0,),
    )


def grid_results(
    values: Mapping[tuple[float, int], float],
    grid: Grid,
    *,
    unit: str,
    row: str,
    tolerance: float,
    benchmark: str,
    dataset: str,
    metric: str,
    notes: str,
) -> Results:
    """One row per ``(lr, length)`` (``"lr 0.001, 240 epochs"``, in ``grid`` order) and one
    plateau check of ``row`` per doubling of the length at the same lr (``unit``: ``"steps"``
    or ``"epochs"``), as the results file of ``benchmarks/studies/<benchmark>.py``."""
    rows = [
        Row(name=f"lr {lr:g}, {n} {unit}", values=[round(values[lr, n], 4)])
        for lr, lengths in grid.items()
        for n in lengths
    ]
    plateau = [
        PlateauCheck(
            row=f"{row}, lr {lr:g}",
            what=f"{unit} {a} -> {b}",
            value=round(values[lr, a], 4),
            doubled=round(values[lr, b], 4),
            tolerance=tolerance,
        )
        for lr, lengths in grid.items()
        for a, b in zip(lengths, lengths[1:], strict=False)
        if b == 2 * a
    ]
    return Results(
        benchmark=benchmark,
        command=f"python benchmarks/studies/{benchmark}.py",
        dataset=dataset,
        metric=metric,
        higher_is_better=True,
        seeds=[0],
        rows=rows,
        plateau=plateau,
        notes=notes,
    )


def run_grid_study(
    study: Benchmark,
    grid: Grid,
    *,
    unit: str,
    row: str | None,
    metric: str,
    results: Callable[[dict[tuple[float, int], float]], Results],
    path: str | os.PathLike,
    jobs: int = 1,
    fmt: str = "{:.4f}",
) -> Results:
    """Train the study's jobs, read ``final[metric]`` of rows.json entry ``row`` (None:
    of summary.json) at every grid point, write
    ``results(values)`` to ``path`` and print its rows and plateau checks."""
    from frugalcv.benchmarks.runner import make_plan, run_jobs

    plan = make_plan(study, seeds=[0])
    run_jobs(plan, jobs=jobs)
    values = {}
    for lr, lengths in grid.items():
        for n in lengths:
            source = plan.jobs[job_name(lr, n, unit)]
            values[lr, n] = float(source.outputs()[row]["final"][metric])
    res = results(values)
    write_results(path, res)
    for r in res.rows:
        print(f"{r.name}: {fmt.format(r.values[0])}")
    for p in res.plateau:
        print(p.describe())
    print("written:", path)
    return res


def grid_study_main(
    study: Benchmark, grid: Grid, *, argv: Sequence[str] | None = None, **kwargs: Any
) -> Results:
    """A study script's command line, ``[--jobs N]`` (jobs at a time, one thread each), then
    :func:`run_grid_study` with ``kwargs``."""
    parser = argparse.ArgumentParser(description=study.about)
    parser.add_argument("--jobs", type=int, default=1, help="jobs at a time (one thread each)")
    args = parser.parse_args(argv)
    return run_grid_study(study, grid, jobs=args.jobs, **kwargs)
