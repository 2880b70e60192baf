"""The benchmark runner: plan the jobs, train them (in-process or in parallel), write results.

``frugalcv bench NAME [--seeds 0,1,2] [--quick] [--jobs N] [--results-dir D]`` calls
:func:`run_benchmark`. Folders:

- runs: ``$FRUGALCV_RUNS`` (default ``runs``) ``/bench/<name>/<job>`` (``<name>_quick`` for
  ``--quick``); a finished job (its ``summary.json`` or ``rows.json`` is there and its saved
  ``config.json`` matches) is not run again, a partial one resumes from its ``last.pt``.
- results: ``--results-dir``, else ``$FRUGALCV_RESULTS``, else ``./benchmarks/results`` of the
  current folder; ``<name>.json`` (``<name>_quick.json`` for ``--quick``).
- job records: ``<results>/jobs/<name>/<job>`` (not for ``--quick``). When a job finishes, its
  ``config.json``, ``summary.json``/``rows.json`` and the pictures the benchmark declares for it
  are copied there (paths made portable), to be committed with the results file. A job whose run
  folder is missing but whose record holds the same config counts as finished and is read from
  the record, so a benchmark longer than one machine's session can be finished on another, and
  the results file can be rebuilt from the records alone. A recorded job is trained again only
  when an unfinished job needs its run folder (a checkpoint it reads) and no pack restores it.
- packs: ``frugalcv bench NAME --pack`` (:func:`pack_jobs`) writes ``<record>/partial.tar.gz``, the
  run folder of each unfinished job that has started and of each finished job an unfinished one
  reads. A later run restores a pack into an empty run folder (same config only) and resumes
  from its checkpoints; packs are deleted when no unfinished job needs them any more.

With ``jobs=1`` every job runs in this process, in dependency order. With ``jobs=N`` independent
jobs run as ``python -m frugalcv run ...`` subprocesses, at most N at a time, each with
``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` set to its share of the cores (or to
``$FRUGALCV_JOB_THREADS`` when several benchmarks share the machine); a job starts once the jobs
it depends on have finished. Both paths write the same run folders, so the numbers agree.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from frugalcv.benchmarks.spec import Benchmark, Job, Output, RowSpec, ScheduleCheck
from frugalcv.core.config import RUNTIME_KEYS, apply_overrides, config_diff, to_dict
from frugalcv.core.jsonio import read_json
from frugalcv.reporting.format import format_table
from frugalcv.reporting.results import (
    Claim,
    Figure,
    PlateauCheck,
    Results,
    Row,
    write_results,
)

PACKED = "partial.tar.gz"
NO_PACK = "no packed run"

__all__ = [
    "PACKED",
    "Plan",
    "PlannedJob",
    "aggregate",
    "make_plan",
    "pack_jobs",
    "records_path",
    "results_path",
    "run_benchmark",
    "run_jobs",
    "save_record",
]


@dataclass
class PlannedJob:
    """A job with its resolved overrides, its config (built and checked) and its run folder."""

    job: Job
    module: ModuleType
    overrides: dict[str, Any]
    cfg: Any
    out_dir: Path
    record_dir: Path | None = None  # <results>/jobs/<name>/<job>; None: no records (--quick)

    def cli_args(self) -> list[str]:
        """``run <recipe> --preset P --key=value ...``: the command line of this job."""
        args = ["run", self.job.recipe, "--preset", self.job.preset]
        return args + [f"--{k}={_cli_value(v)}" for k, v in self.overrides.items()]

    def _same_config(self, saved: Any, *, strict: bool = False) -> bool:
        """``saved`` (a config.json) equals this job's config, runtime keys aside; unless
        ``strict``, the checkpoint interval aside too (it changes when a finished run saved,
        not what it computed; a checkpoint to resume from needs it equal, as its run identity
        holds it)."""
        if not isinstance(saved, dict):
            return False
        defaults = to_dict(type(self.cfg)())
        ignore = RUNTIME_KEYS if strict else RUNTIME_KEYS | {"train.ckpt_every"}
        return not config_diff(saved, to_dict(self.cfg), ignore=ignore, defaults=defaults)

    def _config_in(self, folder: Path, *, strict: bool = False) -> bool:
        try:
            return self._same_config(read_json(folder / "config.json"), strict=strict)
        except (OSError, ValueError):
            return False

    def _finished_in(self, folder: Path) -> bool:
        if not ((folder / "summary.json").is_file() or (folder / "rows.json").is_file()):
            return False
        return self._config_in(folder)

    def ran_here(self) -> bool:
        """True when the run folder holds this job's summary and a config equal to this job's."""
        return self._finished_in(self.out_dir)

    def recorded(self) -> bool:
        """True when the job record holds this job's summary and a config equal to this job's."""
        return self.record_dir is not None and self._finished_in(self.record_dir)

    def finished(self) -> bool:
        """True when the run folder or the job record holds this job's summary and config."""
        return self.ran_here() or self.recorded()

    def _folder(self) -> Path:
        if self.ran_here() or not self.recorded():
            return self.out_dir
        assert self.record_dir is not None
        return self.record_dir

    def outputs(self) -> dict[str | None, dict]:
        """The job's summaries: ``{None: summary.json}`` and ``{row name: rows.json entry}``,
        from the run folder, else from the job record."""
        folder = self._folder()
        out: dict[str | None, dict] = {}
        if (folder / "summary.json").is_file():
            out[None] = read_json(folder / "summary.json")
        if (folder / "rows.json").is_file():
            out.update({r["name"]: r for r in read_json(folder / "rows.json")["rows"]})
        if not out:
            raise FileNotFoundError(
                f"Job '{self.job.name}' left no summary.json or rows.json in {self.out_dir}; "
                "rerun the benchmark (finished jobs are not retrained)."
            )
        return out

    def file(self, name: str) -> Path:
        """A file the job wrote (a picture): in the run folder, else in the job record."""
        here = self.out_dir / name
        if here.is_file() or self.record_dir is None:
            return here
        return self.record_dir / name

    @property
    def packed(self) -> Path | None:
        """``<record>/partial.tar.gz``: the run folder packed by :meth:`pack` (None: no records)."""
        return None if self.record_dir is None else self.record_dir / PACKED

    def started_here(self) -> bool:
        """True when the run folder holds work (a checkpoint or a summary) under a config equal
        to this job's: a run that a rerun resumes, finished or not."""
        from frugalcv.core.recipe import _holds_work

        if not (self.out_dir.is_dir() and _holds_work(self.out_dir)):
            return False
        return self._config_in(self.out_dir, strict=True)

    def pack(self) -> Path | None:
        """Pack the run folder (checkpoints, metrics, finished stages) into the job record, so
        another machine resumes this job where it stopped (:meth:`unpack`); None (nothing
        written) without records or without work under this job's config in the run folder.

        Each file is read whole before it is added, and the archive is written to a temporary
        file first, so a checkpoint being replaced meanwhile is packed whole, old or new.
        """
        if self.packed is None or not self.started_here():
            return None
        import io
        import tarfile

        self.packed.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.packed.with_name(self.packed.name + ".tmp")
        with tarfile.open(tmp, "w:gz") as tar:
            for path in sorted(self.out_dir.rglob("*")):
                if not path.is_file() or path.name.endswith(".tmp"):
                    continue
                data = path.read_bytes()
                info = tarfile.TarInfo(path.relative_to(self.out_dir).as_posix())
                info.size, info.mtime, info.mode = len(data), int(path.stat().st_mtime), 0o644
                tar.addfile(info, io.BytesIO(data))
        os.replace(tmp, self.packed)
        return self.packed

    def unpack(self) -> str:
        """Restore the run folder packed in the job record into an empty run folder.

        Returns ``""`` when restored, else why not (no pack, the run folder already holds work,
        the pack's config differs from this job's). A corrupt pack raises ``ValueError`` naming
        it and what to do, before anything is written to the run folder.
        """
        import tarfile

        if self.packed is None or not self.packed.is_file():
            return NO_PACK
        if self.out_dir.is_dir() and any(self.out_dir.iterdir()):
            return f"the run folder {self.out_dir} is not empty"
        try:
            with tarfile.open(self.packed, "r:gz") as tar:
                member = tar.extractfile("config.json")
                saved = json.loads(member.read()) if member is not None else None
                if not self._same_config(saved, strict=True):
                    return "its config differs from this job's"
                # into a sibling first: a pack that breaks half-way leaves the run folder as it was
                tmp = self.out_dir.with_name(self.out_dir.name + ".unpacking")
                shutil.rmtree(tmp, ignore_errors=True)
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError, KeyError, EOFError, ValueError) as e:
            shutil.rmtree(self.out_dir.with_name(self.out_dir.name + ".unpacking"), True)
            raise ValueError(
                f"The packed run {self.packed} cannot be read ({type(e).__name__}: {e}). Delete it "
                f"(the job then trains from the start) or restore it from version control."
            ) from None
        if self.out_dir.is_dir():
            self.out_dir.rmdir()  # empty (checked above)
        self.out_dir.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, self.out_dir)
        return ""

    def save_record(self, extra: Iterable[str] = ()) -> bool:
        """Copy the finished run's config and summaries (paths made portable) and the ``extra``
        files it wrote into the job record; False (nothing written) when there is no record
        folder or the run folder does not hold this job finished."""
        if self.record_dir is None or not self.ran_here():
            return False
        from frugalcv.core.jsonio import write_json

        self.record_dir.mkdir(parents=True, exist_ok=True)
        kept = ("config.json", "summary.json", "rows.json")
        for name in kept:
            if (self.out_dir / name).is_file():
                write_json(self.record_dir / name, _portable(read_json(self.out_dir / name)))
        for name in extra:
            if name not in kept and (self.out_dir / name).is_file():
                (self.record_dir / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.out_dir / name, self.record_dir / name)
        return True


def _portable(obj: Any) -> Any:
    from frugalcv.reporting.provenance import portable

    if isinstance(obj, str):
        return portable(obj)
    if isinstance(obj, dict):
        return {k: _portable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_portable(v) for v in obj]
    return obj


@dataclass
class Plan:
    """Every job of one benchmark invocation, in dependency order, with its folder and config."""

    benchmark: Benchmark
    seeds: list[int]
    quick: bool
    root: Path
    jobs: dict[str, PlannedJob]
    sources: dict[str, str] = field(default_factory=dict)  # data set name -> where it is read

    def dir(self, job: str) -> Path:
        return self.jobs[job].out_dir

    def outputs(self, job: str) -> dict[str | None, dict]:
        """Job ``job``'s summaries (:meth:`PlannedJob.outputs`), joined with those of the jobs
        that are ``part_of`` it and completed by ``Benchmark.complete``."""
        out = self.jobs[job].outputs()
        parts = [pj for pj in self.jobs.values() if pj.job.part_of == job]
        if not parts:
            return out
        for pj in parts:
            for name, row in pj.outputs().items():
                if name is not None and name not in out:
                    out[name] = row
        complete = self.benchmark.complete
        if complete is not None:
            named = [r for k, r in out.items() if k is not None]
            out = {None: out[None]} if None in out else {}
            out.update({r["name"]: r for r in complete(named)})
        return out

    def config(self, job: str) -> Any:
        return self.jobs[job].cfg


def _cli_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (tuple, list)):
        return ",".join(_cli_value(x) for x in v)
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _recipe_module(name: str) -> ModuleType:
    from frugalcv.cli import RECIPES  # the one table of recipes

    if name not in RECIPES:
        raise ValueError(
            f"Unknown recipe '{name}' in a benchmark job; known: {', '.join(RECIPES)}."
        )
    return importlib.import_module(RECIPES[name])


def _topological(jobs: Sequence[Job], *, benchmark: str) -> list[Job]:
    by_name: dict[str, Job] = {}
    for job in jobs:
        if job.name in by_name:
            raise ValueError(f"Benchmark {benchmark}: two jobs are named '{job.name}'.")
        by_name[job.name] = job
    for job in jobs:
        if job.part_of and (
            job.part_of not in by_name or job.part_of == job.name or by_name[job.part_of].part_of
        ):
            raise ValueError(
                f"Benchmark {benchmark}: job '{job.name}' is part_of '{job.part_of}', which is "
                "not another job of the benchmark that is not itself a part."
            )
        for dep in job.dependencies():
            if dep not in by_name:
                raise ValueError(
                    f"Benchmark {benchmark}: job '{job.name}' depends on '{dep}', which is not "
                    f"one of its jobs ({', '.join(by_name)})."
                )
    order: list[Job] = []
    state: dict[str, str] = {}

    def visit(job: Job, chain: tuple[str, ...]) -> None:
        if state.get(job.name) == "done":
            return
        if state.get(job.name) == "visiting":
            raise ValueError(
                f"Benchmark {benchmark}: jobs depend on each other in a circle: "
                f"{' -> '.join((*chain, job.name))}."
            )
        state[job.name] = "visiting"
        for dep in job.dependencies():
            visit(by_name[dep], (*chain, job.name))
        state[job.name] = "done"
        order.append(job)

    for job in jobs:  # declaration order, except that dependencies come first
        visit(job, ())
    return order


def runs_root(name: str, *, quick: bool, runs_dir: str | os.PathLike | None = None) -> Path:
    """``<runs>/bench/<name>`` (``<name>_quick`` for ``--quick``); runs = $FRUGALCV_RUNS or runs."""
    runs = Path(runs_dir or os.environ.get("FRUGALCV_RUNS") or "runs")
    return runs / "bench" / (f"{name}_quick" if quick else name)


def records_path(
    name: str, *, quick: bool, results_dir: str | os.PathLike | None = None
) -> Path | None:
    """``<results>/jobs/<name>``: the benchmark's job records (None for ``--quick``)."""
    if quick:
        return None
    return results_path(name, quick=False, results_dir=results_dir).parent / "jobs" / name


def results_path(name: str, *, quick: bool, results_dir: str | os.PathLike | None = None) -> Path:
    """``<results>/<name>.json`` (``<name>_quick.json``); results = the argument, else
    $FRUGALCV_RESULTS, else ``benchmarks/results`` of the current folder."""
    root = Path(results_dir or os.environ.get("FRUGALCV_RESULTS") or "benchmarks/results")
    return root / (f"{name}_quick.json" if quick else f"{name}.json")


def make_plan(
    bench: Benchmark,
    *,
    seeds: Sequence[int] | None = None,
    quick: bool = False,
    runs_dir: str | os.PathLike | None = None,
    check_data: bool = True,
    records_dir: str | os.PathLike | None = None,
) -> Plan:
    """Resolve every job: folders, ``Output`` paths, and its config built and checked now.

    ``check_data=False`` skips the data check (:func:`data_sources`), for looking at a plan on a
    machine without the data; :func:`run_benchmark` always checks. ``records_dir``: the folder
    of this benchmark's job records (``<results>/jobs/<name>``, see the module docstring);
    None: no records.

    Raises:
        ValueError: an unknown recipe, preset or config key, a bad value, a job depending on a
            job that does not exist or on itself (nothing has trained yet).
    """
    seeds = list(bench.quick_seeds if quick else bench.seeds) if seeds is None else list(seeds)
    if not seeds:
        raise ValueError(f"Benchmark {bench.name}: give at least one seed.")
    root = runs_root(bench.name, quick=quick, runs_dir=runs_dir)
    planned: dict[str, PlannedJob] = {}
    for job in _topological(bench.jobs(seeds, quick), benchmark=bench.name):
        try:
            module = _recipe_module(job.recipe)
        except ValueError as e:
            raise ValueError(f"Benchmark {bench.name}, job '{job.name}': {e}") from None
        if job.preset not in module.PRESETS:
            raise ValueError(
                f"Benchmark {bench.name}, job '{job.name}': recipe {job.recipe} has no preset "
                f"'{job.preset}' ({', '.join(module.PRESETS)})."
            )
        out_dir = root / job.name
        overrides = {
            k: str(root / v.job / v.path) if isinstance(v, Output) else v
            for k, v in job.overrides.items()
        }
        overrides.update({"train.out_dir": str(out_dir), "train.progress": False})
        try:
            cfg = apply_overrides(module.PRESETS[job.preset](), overrides)
        except ValueError as e:
            raise ValueError(f"Benchmark {bench.name}, job '{job.name}': {e}") from None
        planned[job.name] = PlannedJob(
            job=job,
            module=module,
            overrides=overrides,
            cfg=cfg,
            out_dir=out_dir,
            record_dir=None if records_dir is None else Path(records_dir) / job.name,
        )
    sources = data_sources(planned.values(), benchmark=bench.name) if check_data else {}
    return Plan(benchmark=bench, seeds=seeds, quick=quick, root=root, jobs=planned, sources=sources)


def data_sources(jobs: Iterable[PlannedJob], *, benchmark: str) -> dict[str, str]:
    """Where each data set of the jobs is read, checked before anything trains: the registered
    image sets (``resolved_source``) and those of a recipe that defines ``data_source(cfg)``.

    Raises:
        FileNotFoundError: a job's data set needs files that are not there (the message names
            the fix); nothing has been written or trained yet.
    """
    from frugalcv.data.images import IMAGE_DATASETS, resolved_source

    out: dict[str, str] = {}
    for pj in jobs:
        data = getattr(pj.cfg, "data", None)
        name = getattr(data, "name", None)
        own = getattr(pj.module, "data_source", None)  # a recipe with data of its own
        if not isinstance(name, str) or name in out or (own is None and name not in IMAGE_DATASETS):
            continue
        root = getattr(data, "root", None) or None
        try:
            out[name] = own(pj.cfg) if own is not None else resolved_source(name, root=root)
        except FileNotFoundError as e:
            raise FileNotFoundError(f"Benchmark {benchmark}, job '{pj.job.name}': {e}") from None
    return out


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _job_threads(jobs: int) -> int:
    """Threads per child process: ``$FRUGALCV_JOB_THREADS`` if set (several benchmarks sharing one
    machine), else this process's share of the cores."""
    text = os.environ.get("FRUGALCV_JOB_THREADS", "").strip()
    if text:
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"FRUGALCV_JOB_THREADS must be a whole number >= 1; got {text!r}.")
        return int(text)
    return max(1, _cpu_count() // jobs)


def run_jobs(plan: Plan, *, jobs: int = 1, echo: Callable[[str], None] = print) -> None:
    """Train every unfinished job of ``plan``: in this process (``jobs=1``) or ``jobs`` at a time.

    Raises:
        RuntimeError: a job failed; the message names it and ends with its log's last lines.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1; got {jobs}.")
    tag = f"[bench {plan.benchmark.name}]"
    todo = []
    for name, pj in plan.jobs.items():
        if pj.ran_here():
            save_record(plan, name)  # a run finished before records were kept
            echo(f"{tag} {name}: finished earlier, not retrained")
        elif pj.recorded():
            echo(f"{tag} {name}: finished earlier (job record {pj.record_dir}), not retrained")
        else:
            why = pj.unpack()
            if not why:
                echo(f"{tag} {name}: resumes from the run packed in {pj.packed}")
            elif why != NO_PACK:
                echo(f"{tag} {name}: the run packed in {pj.packed} is not used: {why}")
            todo.append(name)
    # a recorded job whose run folder an unfinished job reads: restored from its pack, else
    # trained again first
    needed = {d for name in todo for d in plan.jobs[name].job.dependencies()}
    again = []
    for name in [n for n in plan.jobs if n in needed and n not in todo]:
        pj = plan.jobs[name]
        if pj.ran_here():
            continue
        if not pj.unpack() and pj.ran_here():
            echo(f"{tag} {name}: run folder restored from {pj.packed} for the jobs that read it")
            continue
        echo(f"{tag} {name}: only recorded; trained again for the jobs that read its run folder")
        again.append(name)
    todo = [n for n in plan.jobs if n in set(todo) | set(again)]  # dependency order
    if jobs == 1:
        for name in todo:
            pj = plan.jobs[name]
            echo(f"{tag} {name}: frugalcv {' '.join(pj.cli_args())}")
            pj.module.run(pj.cfg, preset=pj.job.preset)
            save_record(plan, name)
    else:
        _run_parallel(plan, todo, jobs=jobs, echo=echo, tag=tag)
    _prune_packs(plan)


def _prune_packs(plan: Plan) -> list[str]:
    """Delete the packs of finished jobs that no unfinished job reads; returns their names."""
    unfinished = [pj for pj in plan.jobs.values() if not pj.finished()]
    needed = {d for pj in unfinished for d in pj.job.dependencies()}
    pruned = []
    for name, pj in plan.jobs.items():
        if pj.packed is not None and pj.packed.is_file() and pj.finished() and name not in needed:
            pj.packed.unlink()
            pruned.append(name)
    return pruned


def pack_jobs(plan: Plan, *, echo: Callable[[str], None] = print) -> list[str]:
    """Pack the run folders another machine needs to go on where this one stopped: every
    unfinished job that has started here, and every finished job whose run folder an unfinished
    job reads (:meth:`PlannedJob.pack`). Stop the running jobs first (a running job is packed
    as of its last checkpoint). Packs no longer needed are deleted. Returns the packed jobs.

    Raises:
        ValueError: the plan keeps no job records (``--quick``).
    """
    tag = f"[bench {plan.benchmark.name}]"
    if any(pj.record_dir is None for pj in plan.jobs.values()):
        raise ValueError(
            f"Benchmark {plan.benchmark.name}: --quick runs keep no job records, so there is "
            "nothing to pack them into; pack a full run (without --quick)."
        )
    unfinished = [n for n, pj in plan.jobs.items() if not pj.finished()]
    needed = {d for n in unfinished for d in plan.jobs[n].job.dependencies()}
    packed = []
    for name, pj in plan.jobs.items():
        if name in unfinished or (name in needed and pj.ran_here()):
            path = pj.pack()
            if path is not None:
                size = path.stat().st_size / 2**20
                echo(f"{tag} {name}: run folder packed into {path} ({size:.1f} MiB)")
                packed.append(name)
    for name in _prune_packs(plan):
        echo(f"{tag} {name}: finished, pack no longer needed, deleted")
    if not packed:
        echo(f"{tag} nothing to pack: no unfinished job has started in {plan.root}")
    return packed


def save_record(plan: Plan, name: str) -> bool:
    """Keep job ``name``'s record (:meth:`PlannedJob.save_record`) with the pictures the
    benchmark declares for it."""
    pictures = []
    if plan.benchmark.figures is not None:
        pictures = [
            str(src.row) for _, src in plan.benchmark.figures(plan.seeds) if src.job == name
        ]
    return plan.jobs[name].save_record(pictures)


def _run_parallel(
    plan: Plan, todo: list[str], *, jobs: int, echo: Callable[[str], None], tag: str
) -> None:
    threads = _job_threads(jobs)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    done = set(plan.jobs) - set(todo)
    pending = list(todo)  # dependency order
    running: dict[str, tuple[subprocess.Popen, Path]] = {}
    failed: list[tuple[str, int, Path]] = []
    log_dir = plan.root / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    while pending or running:
        for name in list(pending):
            if failed or len(running) >= jobs:
                break
            pj = plan.jobs[name]
            if not all(d in done for d in pj.job.dependencies()):
                continue
            log = log_dir / f"{name.replace('/', '__')}.log"
            echo(f"{tag} {name}: started ({threads} threads), log {log}")
            with open(log, "w", encoding="utf-8") as f:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "frugalcv", *pj.cli_args()],
                    stdout=f,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
            running[name] = (proc, log)
            pending.remove(name)
        if failed and not running:
            break
        time.sleep(0.2)
        for name, (proc, log) in list(running.items()):
            rc = proc.poll()
            if rc is None:
                continue
            del running[name]
            if rc == 0:
                done.add(name)
                save_record(plan, name)
                echo(f"{tag} {name}: done")
            else:
                failed.append((name, rc, log))
                echo(f"{tag} {name}: FAILED (exit {rc}); waiting for the running jobs to end")
    if failed:
        name, rc, log = failed[0]
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:])
        raise RuntimeError(
            f"Benchmark {plan.benchmark.name}: job '{name}' failed (exit {rc}); jobs not started: "
            f"{', '.join(pending) or 'none'}. Last lines of {log}:\n{tail}"
        )


def _dotted(d: dict, key: str, *, where: str) -> Any:
    value: Any = d
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise ValueError(f"{where}: the summary has no '{key}' (keys: {', '.join(d)}).")
        value = value[part]
    return value


def _row(plan: Plan, spec: RowSpec, outputs: dict[str, dict[str | None, dict]]) -> Row:
    runs = []
    for src in spec.sources:
        if src.job not in plan.jobs:
            raise ValueError(
                f"Benchmark {plan.benchmark.name}, row '{spec.name}': no job '{src.job}'."
            )
        summaries = outputs[src.job]
        if src.row not in summaries:
            raise ValueError(
                f"Benchmark {plan.benchmark.name}, row '{spec.name}': job '{src.job}' has no "
                f"row '{src.row}' (it has {', '.join(map(str, summaries))})."
            )
        runs.append(summaries[src.row])
    where = f"Benchmark {plan.benchmark.name}, row '{spec.name}'"
    values = [_dotted(r, f"final.{spec.metric}", where=where) for r in runs]
    extra: dict[str, Any] = {k: _dotted(runs[0], k, where=where) for k in spec.copy}
    for key, dotted in spec.mean.items():
        extra[key] = sum(_dotted(r, dotted, where=where) for r in runs) / len(runs)
    extra.update(spec.extra)
    return Row(name=spec.name, values=values, extra=extra)


def aggregate(plan: Plan) -> list[Row]:
    """The benchmark's rows from its jobs' summaries, plus what ``measure`` adds to ``extra``."""
    outputs = {name: plan.outputs(name) for name in plan.jobs}
    rows = [_row(plan, spec, outputs) for spec in plan.benchmark.rows(plan.seeds)]
    if plan.benchmark.explain_rows is not None:  # left out when their jobs are not in this run
        rows += [
            _row(plan, spec, outputs)
            for spec in plan.benchmark.explain_rows(plan.seeds)
            if all(src.job in plan.jobs for src in spec.sources)
        ]
    if plan.benchmark.compute is not None:
        rows += plan.benchmark.compute(plan.seeds, plan.quick)
    if plan.benchmark.measure is not None:
        measured = plan.benchmark.measure(plan)
        rows = [
            Row(name=r.name, values=r.values, extra={**r.extra, **measured.get(r.name, {})})
            for r in rows
        ]
    return rows


def copy_figures(plan: Plan, results_file: Path) -> list[Figure]:
    """Copy the pictures the benchmark declares (those its runs drew) next to the results file."""
    if plan.benchmark.figures is None:
        return []
    import shutil

    out = []
    folder = results_file.parent / "figures"
    for caption, src in plan.benchmark.figures(plan.seeds):
        if not src.job:  # drawn by ``measure`` for the whole benchmark
            image = plan.root / str(src.row)
        else:
            image = plan.jobs[src.job].file(str(src.row)) if src.job in plan.jobs else None
        if image is None or not image.is_file():
            continue
        name = "__".join(p for p in (results_file.stem, src.job, Path(str(src.row)).name) if p)
        name = name.replace("/", "_")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(image, folder / name)
        out.append(Figure(caption=caption, path=f"figures/{name}"))
    return out


def claims_for(bench: Benchmark, rows: list[Row]) -> list[Claim]:
    """The benchmark's claims, less explanation claims naming a row this run left out."""
    names = {r.name for r in rows}
    return [c for c in bench.claims if not c.explains or {c.left, c.right} <= names]


def _plateau(plan: Plan, check: ScheduleCheck) -> PlateauCheck | None:
    """The check's two values, or None when one of its jobs is not part of this run."""
    values = []
    for src in (check.at, check.doubled):
        if src.job not in plan.jobs:
            return None
        summaries = plan.outputs(src.job)
        if src.row not in summaries:
            raise ValueError(
                f"Benchmark {plan.benchmark.name}, schedule check of '{check.row}': job "
                f"'{src.job}' has no row '{src.row}' (it has {', '.join(map(str, summaries))})."
            )
        where = f"Benchmark {plan.benchmark.name}, schedule check of '{check.row}'"
        values.append(_dotted(summaries[src.row], f"final.{check.metric}", where=where))
    return PlateauCheck(
        row=check.row,
        what=check.what,
        value=values[0],
        doubled=values[1],
        tolerance=check.tolerance,
    )


def plateau_checks(plan: Plan) -> list[PlateauCheck]:
    """The benchmark's schedule studies whose jobs ran in this plan."""
    found = (_plateau(plan, c) for c in plan.benchmark.schedule_checks)
    return [p for p in found if p is not None]


def _data_note(plan: Plan) -> str:
    """The data each job read (made portable when the results are written)."""
    if not plan.sources:
        return "Data: the recipes' own generated or embedded sets."
    return "Data: " + "; ".join(f"{k} from {v}" for k, v in sorted(plan.sources.items())) + "."


def run_benchmark(
    bench: Benchmark | str,
    *,
    seeds: Sequence[int] | None = None,
    quick: bool = False,
    jobs: int = 1,
    results_dir: str | os.PathLike | None = None,
    runs_dir: str | os.PathLike | None = None,
    echo: Callable[[str], None] = print,
) -> tuple[Results, Path]:
    """Train, aggregate, evaluate the claims and write the results file.

    Args:
        bench: a :class:`Benchmark` or a registered name (``frugalcv list``).
        seeds: default ``bench.seeds`` (``bench.quick_seeds`` with ``quick``).
        quick: the smoke version, written to ``<name>_quick.json`` (runs in ``<name>_quick``).
        jobs: parallel training processes (1 = in this process).
        results_dir, runs_dir: see the module docstring.

    Returns:
        ``(results, path)``: the results written and the file's path.
    """
    if isinstance(bench, str):
        from frugalcv.benchmarks import get_benchmark

        bench = get_benchmark(bench)
    records = records_path(bench.name, quick=quick, results_dir=results_dir)
    plan = make_plan(bench, seeds=seeds, quick=quick, runs_dir=runs_dir, records_dir=records)
    run_jobs(plan, jobs=jobs, echo=echo)
    rows = aggregate(plan)
    command = f"frugalcv bench {bench.name} --seeds {','.join(map(str, plan.seeds))}"
    results = Results(
        benchmark=bench.name,
        command=command + (" --quick" if quick else ""),
        dataset=bench.dataset,
        metric=bench.metric,
        higher_is_better=bench.higher_is_better,
        seeds=plan.seeds,
        rows=rows,
        claims=claims_for(bench, rows),
        plateau=plateau_checks(plan),
        notes=f"{bench.notes} {_data_note(plan)}",
        quick=quick,
    )
    path = results_path(bench.name, quick=quick, results_dir=results_dir)
    results.figures = copy_figures(plan, path)
    write_results(path, results)
    from rich.console import Console

    Console().print(format_table(results))
    echo(f"written: {path}")
    return results, path
