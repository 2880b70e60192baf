"""The command line: one explicit table of recipes and benchmarks.

frugalcv list
frugalcv run classify --preset tiny --optim.lr=0.05
frugalcv run all --preset tiny
frugalcv bench classify --seeds 0,1,2
frugalcv report
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import typer

from frugalcv.benchmarks import BENCHMARKS  # name -> module path; imports nothing

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded at run time

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="frugalcv: learning-with-less vision methods. Start with `frugalcv list`.",
)

# The recipe table: name -> module with `Config`, `PRESETS` and `run(cfg, *, preset)`.
# Module paths (not imports) keep `frugalcv --help` fast; each is imported only when used.
RECIPES: dict[str, str] = {
    "classify": "frugalcv.classify",
    "ickd": "frugalcv.distill.recipes",
    "ickd_seg": "frugalcv.distill.seg_recipe",
    "dsnet": "frugalcv.slim.dsnet_recipe",
    "ddsnet": "frugalcv.slim.ddsnet.recipe",
    "sgn": "frugalcv.signature.recipe",
    "medmil": "frugalcv.mil.medmil_recipe",
    "zsl": "frugalcv.zsl.zsl_recipe",
    "balenas": "frugalcv.nas.balenas_recipe",
    "alt": "frugalcv.track.alt_recipe",
    "contrastzsd": "frugalcv.zsd.recipe",
}

# The benchmark table, BENCHMARKS, lives with the benchmarks (frugalcv/benchmarks/__init__.py).

EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


def recipe_module(name: str) -> ModuleType:
    import difflib
    import importlib

    if name not in RECIPES:
        close = difflib.get_close_matches(name, list(RECIPES), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise typer.BadParameter(f"Unknown recipe '{name}'.{hint} Known: {', '.join(RECIPES)}.")
    return importlib.import_module(RECIPES[name])


def build_config(mod: ModuleType, preset: str, config: Path | None, overrides: list[str]):
    from frugalcv.core.config import apply_overrides, load_config

    if config is not None:
        cfg = load_config(mod.Config, config)
    else:
        if preset not in mod.PRESETS:
            raise typer.BadParameter(
                f"Unknown preset '{preset}'. This recipe has: {', '.join(mod.PRESETS)}."
            )
        cfg = mod.PRESETS[preset]()
    return apply_overrides(cfg, overrides)


@app.command("list")
def list_cmd() -> None:
    """List recipes (with presets) and benchmarks."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="recipes: frugalcv run <recipe> --preset <preset>")
    table.add_column("recipe")
    table.add_column("presets")
    table.add_column("about")
    for name in RECIPES:
        mod = recipe_module(name)
        about = (mod.__doc__ or "").strip().splitlines()[0].replace("``", "") if mod.__doc__ else ""
        table.add_row(name, ", ".join(mod.PRESETS), about)
    Console().print(table)
    from frugalcv.benchmarks import get_benchmark

    bench = Table(title="benchmarks: frugalcv bench <name> -> benchmarks/results/<name>.json")
    bench.add_column("name")
    bench.add_column("seeds")
    bench.add_column("claims")
    bench.add_column("about")
    for name in BENCHMARKS:
        b = get_benchmark(name)
        bench.add_row(name, ",".join(map(str, b.seeds)), str(len(b.claims)), b.about)
    Console().print(bench)


def _run_one(
    name: str, preset: str, config: Path | None, overrides: list[str], show_config: bool
) -> dict | None:
    from frugalcv.core.config import describe

    mod = recipe_module(name)
    cfg = build_config(mod, preset, config, overrides)
    if show_config:
        typer.echo(describe(cfg))
        return None
    summary = mod.run(cfg, preset=preset if config is None else "replay")
    from frugalcv.core.loop import end_distributed

    end_distributed()  # a DDP run leaves its process group before the process exits
    return summary


@app.command("run", context_settings=EXTRA)
def run_cmd(
    ctx: typer.Context,
    recipe: str = typer.Argument(..., help="A recipe from `frugalcv list`, or 'all'."),
    preset: str = typer.Option("tiny", help="Preset name (tiny = embedded data, ~1 min)."),
    config: Path | None = typer.Option(None, help="Replay a written config.json."),
    show_config: bool = typer.Option(False, "--show-config", help="Print the config and exit."),
    report: bool = typer.Option(True, help="With 'all': write the report afterwards."),
) -> None:
    """Run a recipe. Extra options are dotted config overrides: --optim.lr=0.05 --train.epochs=2.

    Outputs go to runs/<recipe>/<preset>/ (config.json, metrics.jsonl, last.pt, summary.json).
    Rerunning the same command resumes from last.pt; devices: --train.devices=2, or torchrun.
    """
    overrides = list(ctx.args)
    names = list(RECIPES) if recipe == "all" else [recipe]
    failed = []
    t0 = time.time()
    for name in names:
        mod = recipe_module(name)
        if recipe == "all" and preset not in mod.PRESETS:
            continue
        typer.secho(f"== {name} ({preset})", bold=True)
        command = " ".join(["frugalcv run", name, "--preset", preset, *overrides])
        with _one_line_errors(command, fix=RUN_FOLDER_FIX, keep_going=recipe == "all") as outcome:
            summary = _run_one(name, preset, config, overrides, show_config)
        if outcome.failed:
            failed.append(name)
            continue
        if summary is not None:
            _print_summary(summary)
    if recipe == "all" and not show_config:
        typer.echo(f"all recipes done in {time.time() - t0:.0f} s")
        if report:
            write_report(results=None, runs=Path("runs"), out=Path("report"))
    if failed:
        typer.secho(f"failed: {', '.join(failed)}", fg="red", err=True)
        raise typer.Exit(1)


def _print_summary(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    rows = summary.get("rows") or [summary]
    table = Table(title=f"{summary.get('recipe')} ({summary.get('preset')})")
    for col in ("model", "final", "best (step)", "wall s"):
        table.add_column(col)
    for r in rows:
        final = ", ".join(f"{k} {v:.4f}" for k, v in r.get("final", {}).items())
        best = r.get("best", {})
        best_s = ", ".join(f"{k} {v:.4f}" for k, v in best.items() if k != "step")
        table.add_row(
            str(r.get("name")),
            final,
            f"{best_s} ({best.get('step', '-')})",
            f"{r.get('wall_s', 0):.0f}",
        )
    Console().print(table)


# ---------------------------------------------------------------------------------------------
# failures: one line each; a traceback only for what is a bug

# Exit codes: 2 = the input or the machine needs a change (the line says which), 130 = Ctrl-C
# (the shell convention 128 + SIGINT), 1 = a bug (the traceback is printed).
EXIT_USAGE, EXIT_INTERRUPTED, EXIT_BUG = 2, 130, 1

RUN_FOLDER_FIX = (
    "choose another folder (--train.out_dir for the run, FRUGALCV_CACHE for built data)"
)
BENCH_FOLDER_FIX = (
    "choose another folder (FRUGALCV_RUNS for runs, --results-dir for results, FRUGALCV_CACHE "
    "for built data)"
)


def os_error_line(e: OSError, *, fix: str) -> str:
    """One line for an OS fault while writing runs or results: what failed, where, the fix.

    Args:
        e: the error (PermissionError, NotADirectoryError, FileExistsError, ENOSPC, ...).
        fix: how to pick another folder, e.g. "choose another --train.out_dir".
    """
    import errno

    where = e.filename if e.filename is not None else "the output folder"
    if isinstance(e, PermissionError) or e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (
            f"cannot write {where}: {e.strerror or 'permission denied'}. Make the folder "
            f"writable, or {fix}."
        )
    if isinstance(e, FileExistsError) or e.errno == errno.EEXIST:
        return f"{where} is a file, not a folder: move the file away, or {fix}."
    if isinstance(e, NotADirectoryError) or e.errno == errno.ENOTDIR:
        return f"a part of {where} is a file, not a folder: move the file away, or {fix}."
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"no space left on the device while writing {where}: free disk space, or {fix}; "
            "rerun the same command to resume from the last checkpoint written."
        )
    return f"cannot write {where}: {e.strerror or e}. Check the path, or {fix}."


class _Outcome:
    failed = False


class _Bug(Exception):
    """Carries an unexpected RuntimeError (as its __cause__) to the bug report."""


@contextlib.contextmanager
def _one_line_errors(
    command: str,
    *,
    fix: str,
    keep_going: bool = False,
    extra: tuple[type[BaseException], ...] = (),
) -> Iterator[_Outcome]:
    """Turn every expected failure of `command` into ``error: <one line>`` and an exit code.

    Bad input, missing data, NaN stops and OS faults exit 2 with one line naming the fix; Ctrl-C
    exits 130 with the line of :class:`frugalcv.core.loop.RunInterrupted` (where the run stopped
    and how to resume); anything else is a bug: its traceback and a request to report it, exit 1.
    With ``keep_going`` (``run all``) a failure is printed, recorded in the outcome, and the
    caller moves on to the next recipe; Ctrl-C always stops.
    """
    from frugalcv.core.config import ConfigError
    from frugalcv.core.loop import RunInterrupted
    from frugalcv.core.task import NonFiniteLossError

    outcome = _Outcome()
    expected = (ConfigError, FileNotFoundError, NonFiniteLossError, ValueError, *extra)
    try:
        try:
            yield outcome
        except RuntimeError as e:
            if isinstance(e, (typer.Exit, *expected)) or _is_torch_write_failure(e):
                raise
            raise _Bug() from e
    except (typer.Exit, typer.BadParameter):  # a usage error: typer prints it with the usage
        raise
    except (RunInterrupted, KeyboardInterrupt) as e:
        line = str(e) if isinstance(e, RunInterrupted) else ""
        if not line:
            line = "interrupted outside training (no step was lost); rerun the same command"
        typer.secho(f"interrupted: {line}", fg="yellow", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except expected as e:  # FileNotFoundError before OSError: missing data names its own fix
        line, code = _first_line(e), EXIT_USAGE
    except OSError as e:
        line, code = os_error_line(e, fix=fix), EXIT_USAGE
    except _Bug as e:
        traceback.print_exception(e.__cause__)
        line = f"this is a bug in frugalcv; please report it with the command: {command}"
        code = EXIT_BUG
    except RuntimeError as e:  # only torch.save's write failures get here
        line = (
            f"torch.save could not finish a file ({_first_line(e)[:80]}); the disk is probably "
            f"full: free disk space, or {fix}; rerun the same command to resume from the last "
            "checkpoint written."
        )
        code = EXIT_USAGE
    except Exception:
        traceback.print_exc()
        line = f"this is a bug in frugalcv; please report it with the command: {command}"
        code = EXIT_BUG
    else:
        return
    typer.secho(f"error: {line}", fg="red", err=True)
    if not keep_going:
        raise typer.Exit(code)
    outcome.failed = True


def _is_torch_write_failure(e: RuntimeError) -> bool:
    """torch.save reports a full disk as a RuntimeError of its zip writer, not an OSError
    (seen on a full tmpfs: "[enforce fail at inline_container.cc:...] . unexpected pos")."""
    text = str(e)
    return "inline_container.cc" in text or "PytorchStreamWriter failed" in text


def _first_line(e: BaseException) -> str:
    """str(e) on one line (a multi-line message is joined; an empty one names the type)."""
    text = " ".join(part.strip() for part in str(e).splitlines() if part.strip())
    return text or type(e).__name__


def parse_seeds(text: str) -> list[int] | None:
    """``"0,1,2"`` -> ``[0, 1, 2]``; ``""`` -> None (the benchmark's own seeds)."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    try:
        seeds = [int(t) for t in items]
    except ValueError:
        raise ValueError(
            f"--seeds needs integers separated by commas, like 0,1,2; got '{text}'."
        ) from None
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds lists a seed twice: '{text}'.")
    return seeds or None


@app.command("bench")
def bench_cmd(
    name: str = typer.Argument(..., help="A benchmark from `frugalcv list`."),
    seeds: str = typer.Option("", help="Comma-separated seeds (default: the benchmark's own)."),
    quick: bool = typer.Option(
        False, "--quick", help="Smoke version (tiny data, 1 epoch) written to <name>_quick.json."
    ),
    jobs: int = typer.Option(1, "--jobs", help="Parallel training processes (1 = this one)."),
    results_dir: Path | None = typer.Option(
        None, "--results-dir", help="Default: $FRUGALCV_RESULTS, else ./benchmarks/results."
    ),
    pack: bool = typer.Option(
        False,
        "--pack",
        help="Train nothing: pack the run folders of unfinished jobs (and of finished jobs they "
        "read) into their job records, so a run on another machine resumes them. Stop the "
        "running jobs first.",
    ),
) -> None:
    """Run a benchmark: the method and its baselines side by side, written to
    benchmarks/results/<name>.json (mean and sample std over seeds, claims evaluated).

    Runs go to $FRUGALCV_RUNS/bench/<name>/ (default runs/); finished jobs are not retrained."""
    from frugalcv.benchmarks import get_benchmark
    from frugalcv.benchmarks.runner import make_plan, pack_jobs, records_path, run_benchmark

    command = " ".join(["frugalcv bench", name] + ([f"--seeds {seeds}"] if seeds else []))
    with _one_line_errors(command, fix=BENCH_FOLDER_FIX, extra=(RuntimeError,)):
        bench = get_benchmark(name)
        seed_list = parse_seeds(seeds)
        if jobs < 1:
            raise ValueError(f"--jobs must be >= 1; got {jobs}.")
        if pack:
            records = records_path(bench.name, quick=quick, results_dir=results_dir)
            plan = make_plan(
                bench, seeds=seed_list, quick=quick, check_data=False, records_dir=records
            )
            pack_jobs(plan, echo=typer.echo)
            return
        run_benchmark(bench, seeds=seed_list, quick=quick, jobs=jobs, results_dir=results_dir)


@app.command("report")
def report_cmd(
    results: Path = typer.Option(
        None, help="Folder of results files (default $FRUGALCV_RESULTS or benchmarks/results)."
    ),
    runs: Path = typer.Option(Path("runs"), help="Folder of run folders."),
    out: Path = typer.Option(Path("report"), help="Where report.md and index.html go."),
) -> None:
    """Gather results files and run summaries into report/report.md and report/index.html.

    The report opens with a summary: each benchmark's claims and whether they hold."""
    write_report(results=results, runs=runs, out=out)


def write_report(*, results: Path | None, runs: Path, out: Path) -> Path:
    """Build the report (shared by `frugalcv report` and `frugalcv run all`)."""
    from frugalcv.reporting.report import build_report

    results = results or Path(os.environ.get("FRUGALCV_RESULTS") or "benchmarks/results")
    index = build_report(results_dir=results, runs_dir=runs if runs.is_dir() else None, out_dir=out)
    typer.echo(f"report written: {index} (and {out / 'report.md'})")
    return index


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
