"""Schedule studies: one benchmark row retrained at several lengths and learning rates.

A study script (``benchmarks/studies/*_schedule.py``) declares its runs as a :class:`Benchmark`
that is not registered (:func:`study_benchmark`), runs them through the benchmark runner, and
turns ``{(lr, length): metric}`` into the results file's rows and one plateau check per doubling
(:func:`grid_results`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from frugalcv.benchmarks.spec import Benchmark, Job
from frugalcv.reporting.results import PlateauCheck, Row

Grid = Mapping[float, Sequence[int]]  # learning rate -> lengths, each its own run


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
) -> tuple[list[Row], list[PlateauCheck]]:
    """One row per ``(lr, length)`` (``"lr 0.001, 240 epochs"``, in ``grid`` order) and one
    plateau check of ``row`` per doubling of the length at the same lr (``unit``: ``"steps"``
    or ``"epochs"``)."""
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
    return rows, plateau
