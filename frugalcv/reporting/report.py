"""Static report of benchmark results and training runs: ``report.md``, ``index.html``, PNG plots.

Inputs:

- ``results_dir``: benchmark results files (``*.json``, see :mod:`frugalcv.reporting.results`).
- ``runs_dir``: a tree of run folders; every folder holding a ``summary.json`` is a run. A run may
  also hold ``metrics.jsonl`` (one JSON object per line with ``"step": int``,
  ``"split": "train" | "val"`` and metric names mapped to numbers) for its training curves.

Outputs, in ``out_dir``: ``report.md``, ``index.html`` (the same content; readable offline, no
JavaScript, images referenced as files in ``figures/``) and the PNG plots in ``figures/``.

The report opens with a summary: per benchmark, each of its claims and whether it holds, decided
from the row means at build time. Folders and files are named relative to the current folder (or
by their ``$FRUGALCV_*`` variable), never by an absolute path of the machine. A file that cannot
be read (bad JSON, a missing key, a malformed ``metrics.jsonl`` line) is listed under "Warnings"
and skipped; it never stops the report.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from frugalcv.reporting.format import format_mean_std, format_value
from frugalcv.reporting.plots import cost_key, metric_label, plot_bar, plot_cost, plot_curves
from frugalcv.reporting.results import Claim, Results, is_number, portable, read_results

__all__ = ["build_report", "display_path", "find_run_dirs", "read_metrics_jsonl", "read_summary"]

log = logging.getLogger(__name__)

_SPLITS = ("train", "val")


@dataclass
class _Run:
    """A run folder: its summary and its metrics records split by ``train`` / ``val``."""

    name: str  # path relative to runs_dir, posix style
    summary: dict
    train: list[dict] = field(default_factory=list)
    val: list[dict] = field(default_factory=list)


def display_path(path: Path) -> str:
    """``path`` as the report shows it: relative to the current folder, else by its variable
    (``$FRUGALCV_RUNS/...``), else ``…/<name>``; never an absolute path of this machine."""
    path = Path(path)
    cwd = Path.cwd().resolve()
    if cwd != Path(cwd.anchor):  # relative to "/" would still be a machine path
        try:
            return path.resolve().relative_to(cwd).as_posix() or "."
        except ValueError:
            pass
    shown = portable(str(path.resolve()))
    return f"…/{path.name}" if shown.startswith("/") else shown


def find_run_dirs(runs_dir: Path) -> list[Path]:
    """Every folder under ``runs_dir`` (itself included) that holds a ``summary.json``, sorted."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    return sorted(p.parent for p in runs_dir.rglob("summary.json") if p.is_file())


def read_summary(path: Path) -> dict:
    """Read a run's ``summary.json`` and check the keys the report relies on.

    Required: ``recipe`` (str), ``preset`` (str), ``seed`` (int), ``final`` (object of metric ->
    number), ``best`` (object of metric -> number with an int ``step``). Other keys are kept.

    Raises:
        ValueError: invalid JSON or a missing/badly typed key; the message names the key.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e}).") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path}: top level must be a JSON object.")
    for key, typ in (("recipe", str), ("preset", str), ("seed", int), ("final", dict)):
        if key not in data:
            raise ValueError(f"{path}: missing key '{key}'.")
        if not isinstance(data[key], typ) or isinstance(data[key], bool):
            raise ValueError(f"{path}: key '{key}' must be {typ.__name__}, got {data[key]!r:.60}.")
    if not isinstance(data.get("best"), dict):
        raise ValueError(f"{path}: missing key 'best' (an object with the best metric and 'step').")
    step = data["best"].get("step")
    if not isinstance(step, int) or isinstance(step, bool):
        raise ValueError(f"{path}: key 'best.step' must be the int step of the best metric.")
    return data


def read_metrics_jsonl(path: Path) -> tuple[list[dict], list[str]]:
    """Read a ``metrics.jsonl`` file, skipping malformed lines.

    A valid line is a JSON object with an int ``step`` and a ``split`` of ``train`` or ``val``;
    non-numeric metric values on a valid line are dropped.

    Returns:
        ``(records, problems)``: the valid records in file order, and one message per skipped line
        (``"line 7: ..."``).
    """
    records: list[dict] = []
    problems: list[str] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                problems.append(f"line {lineno}: not valid JSON ({e.msg})")
                continue
            if not isinstance(rec, dict):
                problems.append(f"line {lineno}: not a JSON object")
                continue
            step, split = rec.get("step"), rec.get("split")
            if not isinstance(step, int) or isinstance(step, bool):
                problems.append(f"line {lineno}: missing or non-int 'step'")
                continue
            if split not in _SPLITS:
                problems.append(f"line {lineno}: 'split' must be 'train' or 'val', got {split!r}")
                continue
            clean = {k: float(v) for k, v in rec.items() if is_number(v) and k != "step"}
            clean["step"] = step
            clean["split"] = split
            records.append(clean)
    return records, problems


def _slug(text: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "figure"
    slug, i = base, 2
    while slug in taken:
        slug, i = f"{base}_{i}", i + 1
    taken.add(slug)
    return slug


def _md_cell(text: object) -> str:
    """Make text safe inside a markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _md_table(header: list[str], rows: list[list[str]], align: list[str]) -> list[str]:
    sep = {"l": "---", "r": "---:"}
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |"]
    lines.append("| " + " | ".join(sep[a] for a in align) + " |")
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return lines


def _env_summary(env: dict) -> str:
    parts = [
        f"{k} {env[k]}"
        for k in ("python", "torch", "torchvision", "timm", "lightning", "numpy")
        if env.get(k)
    ]
    if env.get("platform"):
        parts.append(str(env["platform"]))
    if env.get("cpu_count") is not None:
        threads = env.get("torch_threads")
        parts.append(
            f"{env['cpu_count']} CPUs" + (f" ({threads} torch threads)" if threads else "")
        )
    parts.append(f"GPU: {env.get('cuda_device') or 'none'}")
    commit = env.get("git_commit")
    if commit:
        parts.append(f"git {str(commit)[:10]}" + (" (dirty)" if env.get("git_dirty") else ""))
    return " · ".join(parts)


def _fmt_metrics(d: dict) -> str:
    items = [f"{k}={format_value(v)}" for k, v in d.items() if k != "step"]
    return ", ".join(items) or "—"


def _threshold(c: Claim) -> str:
    """The right side a claim's left row is compared with: ``base + 0.05`` for ``>``/``>=``,
    ``base - 0.05`` for ``<``/``<=`` (a negative margin, a tolerance, flips the sign)."""
    if not c.margin:
        return c.right
    shift = c.margin if c.op in (">", ">=") else -c.margin
    return f"{c.right} {'+' if shift > 0 else '-'} {abs(shift):g}"


def _summary_section(loaded: list[tuple[str, Results]]) -> list[str]:
    """Per benchmark: each claim, whether it holds, and the two means with their spreads."""
    md = ["## Summary", ""]
    if not loaded:
        return md + ["No benchmark results yet.", ""]
    header = ["benchmark", "claim", "verdict", "left (mean ± std)", "right (mean ± std)"]
    rows = []
    for _, res in loaded:
        results = [cr for cr in res.evaluate_claims() if not cr.claim.explains]
        if not results:
            rows.append([res.benchmark, "(no claims stated)", "—", "—", "—"])
        for cr in results:
            c = cr.claim
            rows.append(
                [
                    res.benchmark + (" (quick)" if res.quick else ""),
                    f"{c.text}: {c.left} {c.op} {_threshold(c)}"
                    + (f" ({c.column})" if c.column else ""),
                    f"**{cr.verdict}**",
                    cr.side(cr.left),
                    cr.side(cr.right),
                ]
            )
    paper = [cr for _, r in loaded for cr in r.evaluate_claims() if not cr.claim.explains]
    held, total = sum(cr.holds for cr in paper), len(paper)
    md += [f"{held} of {total} claims hold (decided from the row means at build time).", ""]
    explained = sum(bool(c.explains) for _, r in loaded for c in r.claims)
    if explained:
        md += [
            f"{explained} explanation tests re-state failed claims under one changed condition "
            "(listed under each benchmark).",
            "",
        ]
    md += _md_table(header, rows, ["l", "l", "l", "r", "r"]) + [""]
    checks = [(res.benchmark, p) for _, res in loaded for p in res.plateau]
    if checks:
        at = sum(p.holds for _, p in checks)
        md += [f"Schedule studies: {at} of {len(checks)} checked rows are at a plateau.", ""]
        md += [f"- {name}: {p.describe()}" for name, p in checks] + [""]
    return md


def _results_section(
    name: str,
    results: Results,
    fig_dir: Path,
    taken: set[str],
    warnings: list[str],
    *,
    folder: Path,
) -> list[str]:
    md = [f"### {results.benchmark}" + (" (quick smoke run)" if results.quick else ""), ""]
    md.append(
        f"Dataset: **{results.dataset}** · metric: **{metric_label(results)}** · "
        f"seeds: {results.seeds or '—'} · date: {results.date} · file: `{name}`"
    )
    md += ["", "Command:", "", "```sh", f"$ {results.command}", "```", ""]
    md += [f"Environment: {_env_summary(results.env)}", ""]
    if results.notes:
        md += [f"Notes: {portable(results.notes)}", ""]
    keys = results.extra_keys()
    header = ["name", f"{results.metric} (mean ± std)", "n", *keys]
    rows = [
        [
            r.name,
            format_mean_std(r.mean, r.std, n=r.n),
            str(r.n),
            *(
                format_value(portable(v) if isinstance(v, str) else v)
                for v in (r.extra.get(k) for k in keys)
            ),
        ]
        for r in results.rows
    ]
    md += _md_table(header, rows, ["l", "r", "r", *["r"] * len(keys)])
    md.append("")
    claims = results.evaluate_claims()
    paper = [cr for cr in claims if not cr.claim.explains]
    tests = [cr for cr in claims if cr.claim.explains]
    if paper:
        md += ["Claims:", ""]
        md += [f"- **{cr.verdict}**: {cr.describe().split(': ', 1)[1]}" for cr in paper]
        md.append("")
    if tests:
        md += ["Explanation tests (a claim re-stated under one changed condition):", ""]
        md += [
            f"- **{cr.verdict}**: {cr.describe().split(': ', 1)[1]} (re-tests: {cr.claim.explains})"
            for cr in tests
        ]
        md.append("")
    if results.plateau:
        md += ["Schedule study (doubling the schedule, one seed):", ""]
        md += [f"- {p.describe()}" for p in results.plateau]
        md.append("")
    slug = _slug(Path(name).stem, taken)
    figures: list[tuple[str, str]] = []
    try:
        plot_bar(results, fig_dir / f"{slug}_bar.png")
        figures.append((f"{results.benchmark}: mean ± std", f"{slug}_bar.png"))
        cost = cost_key(results)
        if cost is not None:
            plot_cost(results, *cost, fig_dir / f"{slug}_cost.png")
            figures.append(
                (f"{results.benchmark}: {results.metric} vs {cost[1]}", f"{slug}_cost.png")
            )
    except Exception as e:  # a plot must never take the whole report down
        warnings.append(f"`{name}`: could not plot ({type(e).__name__}: {e})")
    for fig in results.figures:  # drawn by the runs, copied next to the results file
        source = folder / fig.path
        if not source.is_file():
            warnings.append(f"`{name}`: figure {fig.path} is missing")
            continue
        target = f"{slug}_{Path(fig.path).name}"
        shutil.copyfile(source, fig_dir / target)
        figures.append((fig.caption, target))
    for alt, fig in figures:
        md += [f"![{alt}](figures/{fig})", ""]
    return md


def _runs_section(
    runs: list[_Run], fig_dir: Path, taken: set[str], warnings: list[str]
) -> list[str]:
    header = ["run", "recipe", "preset", "seed", "final (last step)", "best (at step)", "wall (s)"]
    rows = []
    for run in runs:
        s = run.summary
        best = s["best"]
        wall = s.get("wall_s")
        rows.append(
            [
                run.name,
                s["recipe"],
                s["preset"],
                str(s["seed"]),
                _fmt_metrics(s["final"]),
                f"{_fmt_metrics(best)} @ step {best['step']}",
                f"{wall:.1f}" if is_number(wall) else "—",
            ]
        )
    md = [
        "`final` is the metric at the end of training; `best` is the best validation value seen "
        "during training and the step where it occurred.",
        "",
    ]
    md += _md_table(header, rows, ["l", "l", "l", "r", "l", "l", "r"])
    md.append("")
    by_recipe: dict[str, list[_Run]] = {}
    for run in runs:
        if run.train or run.val:
            by_recipe.setdefault(run.summary["recipe"], []).append(run)
    if by_recipe:
        md += ["### Training curves", ""]
    for recipe, group in by_recipe.items():
        name = f"curves_{_slug(recipe, taken)}.png"
        try:
            if plot_curves(recipe, group, fig_dir / name):
                md += [f"![{recipe}: training curves](figures/{name})", ""]
        except Exception as e:  # a plot must never take the whole report down
            warnings.append(f"recipe `{recipe}`: could not plot curves ({type(e).__name__}: {e})")
    return md


def _load_runs(runs_dir: Path, warnings: list[str]) -> list[_Run]:
    runs = []
    for d in find_run_dirs(runs_dir):
        rel = d.relative_to(runs_dir).as_posix()
        name = rel if rel != "." else d.name

        def warn(msg: str, name: str = name, d: Path = d) -> None:
            warnings.append(f"run `{name}` " + msg.replace(str(d), name))

        try:
            summary = read_summary(d / "summary.json")
        except (ValueError, OSError) as e:
            warn(f"skipped: {e}")
            continue
        except Exception as e:  # an unforeseen bad input must not take the report down
            warn(f"skipped: {type(e).__name__}: {e}")
            continue
        run = _Run(name=name, summary=summary)
        metrics = d / "metrics.jsonl"
        if metrics.is_file():
            try:
                records, problems = read_metrics_jsonl(metrics)
            except OSError as e:
                records, problems = [], [f"could not read ({e})"]
            if problems:
                shown = "; ".join(problems[:3]) + (" …" if len(problems) > 3 else "")
                warn(f"`{name}/metrics.jsonl`: skipped {len(problems)} malformed line(s): {shown}")
            run.train = [r for r in records if r["split"] == "train"]
            run.val = [r for r in records if r["split"] == "val"]
        runs.append(run)
    return runs


_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>frugalcv report</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       line-height: 1.45; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.92em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; }}
th {{ background: #f2f2f2; }}
tr:nth-child(even) td {{ background: #fafafa; }}
img {{ max-width: 100%; height: auto; display: block; margin: 0.5em 0 1.5em; }}
pre {{ background: #f6f6f6; padding: 0.6em; overflow-x: auto; }}
code {{ font-size: 0.92em; }}
h2 {{ border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }}
</style>
</head>
<body>
{body}
</body>
</html>
"""


def _to_html(md: str) -> str:
    # markdown-it-py ships with rich; html=False escapes any raw HTML found in names or notes.
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(md)
    return _HTML.format(body=body)


def build_report(*, results_dir: Path, runs_dir: Path | None, out_dir: Path) -> Path:
    """Build ``report.md``, ``index.html`` and plots from results files and run folders.

    Args:
        results_dir: folder of benchmark results ``*.json`` (missing or empty: none yet).
        runs_dir: root of the run folders, searched recursively for ``summary.json``; None to
            leave runs out.
        out_dir: destination; created. Plots go to ``out_dir/figures/``.

    Returns:
        Path of ``index.html``.

    Malformed inputs are listed under "Warnings" in the report and skipped.
    """
    results_dir = Path(results_dir)
    out_dir = Path(out_dir)
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    warnings: list[str] = []
    taken: set[str] = set()

    loaded: list[tuple[str, Results]] = []
    files = sorted(results_dir.glob("*.json")) if results_dir.is_dir() else []
    for path in files:
        try:
            loaded.append((path.name, read_results(path)))
        except Exception as e:  # a bad file is a warning, never the end of the report
            msg = str(e) if isinstance(e, (ValueError, OSError)) else f"{type(e).__name__}: {e}"
            warnings.append(f"results file `{path.name}` skipped: " + msg.replace(f"{path}: ", ""))
    runs = _load_runs(Path(runs_dir), warnings) if runs_dir is not None else []

    shown_results = display_path(results_dir)
    bench_md: list[str] = ["## Benchmarks", ""]
    for name, results in loaded:
        bench_md += _results_section(name, results, fig_dir, taken, warnings, folder=results_dir)
    if not loaded:
        bench_md += [f"No benchmark results yet (no readable `*.json` in `{shown_results}`).", ""]

    runs_md: list[str] = ["## Runs", ""]
    if runs:
        runs_md += _runs_section(runs, fig_dir, taken, warnings)
    elif runs_dir is None:
        runs_md += ["No runs folder given.", ""]
    else:
        runs_md += [
            f"No runs yet (no readable `summary.json` under `{display_path(runs_dir)}`).",
            "",
        ]

    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    source = f"{len(loaded)} results file(s) in `{shown_results}`"
    source += (
        f" and {len(runs)} run(s) in `{display_path(runs_dir)}`"
        if runs_dir
        else " (no runs folder given)"
    )
    md = ["# frugalcv report", "", f"Generated {now} from {source}.", ""]
    if not loaded and not runs:
        md += ["**Nothing to report yet:** no benchmark results and no runs were found.", ""]
    md += _summary_section(loaded)
    if warnings:
        md += ["## Warnings", ""]
        md += [f"- WARNING: {w}" for w in warnings]
        md.append("")
        for w in warnings:
            log.warning(w)
    md += bench_md + runs_md
    text = "\n".join(md).rstrip() + "\n"

    (out_dir / "report.md").write_text(text, encoding="utf-8")
    index = out_dir / "index.html"
    index.write_text(_to_html(text), encoding="utf-8")
    return index
