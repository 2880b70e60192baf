"""How a benchmark is declared: jobs (recipe invocations), rows, claims, notes.

A benchmark is data plus two small functions of the seeds::

    def jobs(seeds, quick):                      # what to train
        teacher = Job(name="teacher", recipe="classify", overrides={"model.name": "resnet8x2"})
        return [teacher] + [
            Job(name=f"seed{s}", recipe="ickd", overrides={
                "train.seed": s, "distill.teacher_ckpt": Output("teacher", "last.pt")})
            for s in seeds
        ]

    def rows(seeds):                              # what to report
        return [RowSpec(name="resnet8 kd", metric="acc",
                        sources=tuple(Source(f"seed{s}", row="kd") for s in seeds))]

    BENCHMARK = Benchmark(name="ickd", jobs=jobs, rows=rows, claims=(Claim(...),), ...)

The runner (:mod:`frugalcv.benchmarks.runner`) builds every job's config up front (a typo in an
override fails before anything trains), trains the jobs in dependency order (an :class:`Output`
of another job is a dependency), resumes finished ones, reads each job's ``summary.json`` or
``rows.json``, aggregates the rows over seeds, evaluates the claims and writes the results file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from frugalcv.reporting.results import Claim, Row

if TYPE_CHECKING:
    from frugalcv.benchmarks.runner import Plan

__all__ = [
    "Benchmark",
    "Claim",
    "Job",
    "Output",
    "Row",
    "RowSpec",
    "ScheduleCheck",
    "Source",
    "no_jobs",
    "no_rows",
    "scaled_milestones",
]


@dataclass(frozen=True)
class Output:
    """A file another job writes, as an override value: ``<runs>/<job>/<path>``.

    Using it makes ``job`` a dependency: the runner trains ``job`` first.
    """

    job: str
    path: str = "last.pt"


@dataclass(frozen=True, kw_only=True)
class Job:
    """One recipe invocation: ``frugalcv run <recipe> --preset <preset> --<key>=<value> ...``.

    Args:
        name: unique in the benchmark; the run folder is ``<runs>/bench/<benchmark>/<name>``
            (``/`` makes sub-folders). The runner sets ``train.out_dir`` and ``train.progress``.
        recipe: a recipe of ``frugalcv list`` (``frugalcv.cli.RECIPES``).
        preset: the preset the overrides start from.
        overrides: dotted config keys -> values (numbers, strings, bools, tuples, or
            :class:`Output` of another job).
        needs: other jobs that must finish first, besides those named by an ``Output``.
        part_of: the name of another job whose rows this job's rows join: a long run split
            into jobs that fit one machine's session (the static reference rows trained apart
            from the supernet). Rows, schedule checks and figures read the joined rows under the
            main job's name, completed by ``Benchmark.complete``.
    """

    name: str
    recipe: str
    preset: str = "tiny"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    needs: tuple[str, ...] = ()
    part_of: str = ""

    def dependencies(self) -> tuple[str, ...]:
        """``needs`` plus the jobs whose outputs the overrides name, in order, no repeats."""
        deps = list(self.needs) + [v.job for v in self.overrides.values() if isinstance(v, Output)]
        return tuple(dict.fromkeys(deps))


@dataclass(frozen=True)
class Source:
    """Where one value of a row comes from: a job's ``summary.json``, or the entry called ``row``
    of its ``rows.json`` (multi-model recipes)."""

    job: str
    row: str | None = None


@dataclass(frozen=True, kw_only=True)
class RowSpec:
    """One row of the results file.

    Args:
        name: the row's label (claims refer to it).
        sources: one per value (per seed); a teacher trained once has one source.
        metric: key of the summaries' ``final`` dict (``acc``, ``miou``): the row's values.
        copy: summary keys copied from the first source into ``extra`` (``params``, ``macs``).
        mean: ``extra`` key -> dotted summary key averaged over the sources
            (``{"best_acc_mean": "best.acc"}``).
        extra: constant ``extra`` entries (``{"note": "trained once"}``).
    """

    name: str
    sources: tuple[Source, ...]
    metric: str
    copy: tuple[str, ...] = ()
    mean: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ScheduleCheck:
    """A schedule study: one row's value at the benchmark's schedule and at double it (one seed).

    The benchmark's ``jobs`` add the doubled-schedule job (usually for seed 0 only); the runner
    reads ``final.<metric>`` of both sources and writes a
    :class:`frugalcv.reporting.results.PlateauCheck` into the results file. A check whose jobs are
    not in the run (other seeds, or a ``--quick`` run without the doubled job) is left out.

    Args:
        row: the checked row's name, as in the results (usually the baseline).
        what: what is doubled, in words (``"epochs 30 -> 60"``).
        at, doubled: where the two values come from.
        metric: key of the summaries' ``final`` dict (default: the benchmark's rows' metric).
        tolerance: the largest move that counts as a plateau (about one point: 0.01 for
            accuracies; a PSNR benchmark states its own).
    """

    row: str
    what: str
    at: Source
    doubled: Source
    metric: str
    tolerance: float = 0.01


@dataclass(frozen=True, kw_only=True)
class Benchmark:
    """A side-by-side comparison: what to train, what to report, what the paper claims.

    Args:
        name: the name of ``frugalcv bench <name>`` and of ``<name>.json``.
        about: one line for ``frugalcv list``.
        dataset, metric, higher_is_better: as in the results file.
        jobs: ``(seeds, quick) -> [Job]``; ``quick`` is the ``--quick`` smoke version (tiny data,
            one epoch, under a minute on 2 cores), written to ``<name>_quick.json``.
        rows: ``seeds -> [RowSpec]``.
        claims: the paper's claims about the rows, evaluated from the row means.
        notes: settings in words, for the results file.
        seeds: default seeds; ``quick_seeds`` those of ``--quick``.
        measure: optional ``(plan) -> {row name: extra}``, run after training (e.g. step cost).
        metric_range: the interval every row value must lie in (accuracies, mIoU, mAP: 0..1);
            ``None`` for unbounded metrics (speed ratios, PSNR). The contract test checks it.
        compute: for a benchmark that trains nothing (timings of random-weight models):
            ``(seeds, quick) -> [Row]`` gives the rows directly; ``jobs`` and ``rows`` then
            return nothing (use :func:`no_jobs` and :func:`no_rows`).
        schedule_checks: plateau checks (:class:`ScheduleCheck`), reported with the claims.
        explain_rows: ``seeds -> [RowSpec]``: rows of the explanation tests (failed claims
            re-run under one changed condition), compared by claims with ``explains`` set. Like
            a schedule check, a row whose jobs are not in the run (``--quick``) is left out, and
            so is every explanation claim naming it.
        figures: ``seeds -> [(caption, Source)]``: pictures the runs draw, ``Source.row`` being
            the image's path inside the job's folder (``Source("", row=...)``: inside the
            benchmark's folder, for a picture ``measure`` draws); the runner copies those that
            exist next to the results file (``figures/``) and the report shows them.
        complete: ``[row dicts] -> [row dicts]``: applied to the joined rows of a job that has
            parts (``Job.part_of``), to add what the recipe adds when one run trains them all
            (derived rows; values copied between rows).
    """

    name: str
    about: str
    dataset: str
    metric: str
    higher_is_better: bool
    jobs: Callable[[Sequence[int], bool], list[Job]]
    rows: Callable[[Sequence[int]], list[RowSpec]]
    claims: tuple[Claim, ...]
    notes: str
    seeds: tuple[int, ...] = (0, 1, 2)
    quick_seeds: tuple[int, ...] = (0,)
    measure: Callable[[Plan], dict[str, dict[str, Any]]] | None = None
    compute: Callable[[Sequence[int], bool], list[Row]] | None = None
    metric_range: tuple[float, float] | None = (0.0, 1.0)
    schedule_checks: tuple[ScheduleCheck, ...] = ()
    explain_rows: Callable[[Sequence[int]], list[RowSpec]] | None = None
    figures: Callable[[Sequence[int]], list[tuple[str, Source]]] | None = None
    complete: Callable[[list[dict]], list[dict]] | None = None


def no_jobs(seeds: Sequence[int], quick: bool) -> list[Job]:
    """``jobs`` of a benchmark that trains nothing (see ``Benchmark.compute``)."""
    return []


def no_rows(seeds: Sequence[int]) -> list[RowSpec]:
    """``rows`` of a benchmark whose rows come from ``Benchmark.compute``."""
    return []


def scaled_milestones(epochs: float) -> tuple[float, ...]:
    """RepDistiller's lr decays at epochs 150/180/210 of 240, scaled to ``epochs``."""
    return tuple(epochs * m / 240 for m in (150, 180, 210))
