"""Static report of benchmark results and training runs: ``report.md``, ``index.html``, PNG plots.

Inputs:

- ``results_dir``: benchmark results files (``*.json``, see :mod:`frugalcv.core.results`).
- ``runs_dir``: a tree of run folders; every folder holding a ``summary.json`` is a run. A run may
  also hold ``metrics.jsonl`` (one JSON object per line with ``"step": int``,
  ``"split": "train" | "val"`` and metric names mapped to numbers) for its training curves.

Outputs, in ``out_dir``: ``report.md``, ``index.html`` (the same content; readable offline, no
JavaScript, images referenced as files in ``figures/``) and the PNG plots in ``figures/``. Plots
are drawn with matplotlib's Agg canvas directly, so building a report never touches pyplot's
global state or the user's interactive backend.

A file that cannot be read (bad JSON, a missing key, a malformed ``metrics.jsonl`` line) is listed
under "Warnings" in the report and skipped; it never stops the report.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, NullFormatter

from frugalcv.core.results import (
    extra_keys,
    format_mean_std,
    format_value,
    read_results,
)

__all__ = ["build_report", "find_run_dirs", "read_metrics_jsonl", "read_summary"]

log = logging.getLogger(__name__)

# Cost columns for the accuracy-vs-cost plot, in order of preference, with their axis labels.
_COST_KEYS: tuple[tuple[str, str], ...] = (
    ("macs", "MACs"),
    ("latency_ms", "latency (ms)"),
    ("params", "parameters"),
)
_SPLITS = ("train", "val")
_DPI = 110


@dataclass
class _Run:
    """A run folder: its summary and its metrics records split by ``train`` / ``val``."""

    name: str  # path relative to runs_dir, posix style
    summary: dict
    train: list[dict] = field(default_factory=list)
    val: list[dict] = field(default_factory=list)


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


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
        ValueError: invalid JSON or a missing/badly typed key; the message names the file and key.
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
            clean = {k: float(v) for k, v in rec.items() if _is_number(v) and k != "step"}
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
    parts = []
    for key in ("python", "torch", "torchvision", "timm", "lightning", "numpy"):
        if env.get(key):
            parts.append(f"{key} {env[key]}")
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


def _new_figure(w: float, h: float) -> Figure:
    fig = Figure(figsize=(w, h), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> None:
    fig.savefig(path, dpi=_DPI)


def _metric_label(results: dict) -> str:
    arrow = "higher is better" if results["higher_is_better"] else "lower is better"
    return f"{results['metric']} ({arrow})"


def _plot_bar(results: dict, path: Path) -> None:
    """Horizontal bars of row means with std error bars, rows top to bottom in file order."""
    rows = results["rows"]
    names = [r["name"] for r in rows]
    fig = _new_figure(7.0, 1.2 + 0.45 * len(rows))
    ax = fig.add_subplot()
    y = list(range(len(rows)))
    ax.barh(
        y,
        [r["mean"] for r in rows],
        xerr=[r["std"] for r in rows],
        color="#4C72B0",
        ecolor="black",
        capsize=4,
        height=0.6,
    )
    # Numbers right of each error bar, where they cannot collide with it.
    for yi, r in zip(y, rows, strict=True):
        text = format_mean_std(r["mean"], r["std"], n=len(r["values"]))
        ax.annotate(
            text,
            (r["mean"] + r["std"], yi),
            xytext=(5, 0),
            textcoords="offset points",
            va="center",
            size=8,
        )
    ax.margins(x=0.18)
    ax.set_yticks(y, labels=names)
    ax.invert_yaxis()
    ax.set_xlabel(_metric_label(results))
    ax.set_title(f"{results['benchmark']} — {results['dataset']} (mean ± std)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    _save(fig, path)


def _cost_key(results: dict) -> tuple[str, str] | None:
    for key, label in _COST_KEYS:
        if any(_is_number(r.get("extra", {}).get(key)) for r in results["rows"]):
            return key, label
    return None


def _plot_cost(results: dict, key: str, label: str, path: Path) -> None:
    """Metric mean (± std) against a cost column, one labelled point per row."""
    rows = [r for r in results["rows"] if _is_number(r.get("extra", {}).get(key))]
    rows.sort(key=lambda r: r["extra"][key])
    xs = [float(r["extra"][key]) for r in rows]
    fig = _new_figure(7.0, 4.8)
    ax = fig.add_subplot()
    ax.errorbar(
        xs,
        [r["mean"] for r in rows],
        yerr=[r["std"] for r in rows],
        fmt="o",
        color="#C44E52",
        ecolor="gray",
        capsize=3,
    )
    # Alternate labels above/below the points so that neighbours overlap less.
    for i, (x, r) in enumerate(zip(xs, rows, strict=True)):
        dy = 7 if i % 2 == 0 else -14
        ax.annotate(r["name"], (x, r["mean"]), xytext=(5, dy), textcoords="offset points", size=8)
    # Costs often span decades (a student vs its teacher); a log axis keeps the cheap rows apart.
    positive = [x for x in xs if x > 0]
    if len(positive) == len(xs) and positive and max(positive) / min(positive) > 10:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
    if key in ("macs", "params"):
        ax.xaxis.set_major_formatter(EngFormatter())
    ax.margins(x=0.15, y=0.15)
    ax.set_xlabel(label)
    ax.set_ylabel(_metric_label(results))
    ax.set_title(f"{results['benchmark']}: {results['metric']} vs {label}")
    ax.grid(alpha=0.3)
    _save(fig, path)


def _loss_key(records: list[dict]) -> str | None:
    keys = {k for r in records for k in r if k not in ("step", "split")}
    if "loss" in keys:
        return "loss"
    losses = sorted(k for k in keys if k.startswith("loss"))
    return losses[0] if losses else None


def _val_key(run: _Run) -> str | None:
    keys = [k for r in run.val for k in r if k not in ("step", "split")]
    for k in run.summary.get("best", {}):
        if k != "step" and k in keys:
            return k
    return keys[0] if keys else None


def _series(records: list[dict], key: str) -> tuple[list[int], list[float]]:
    pts = sorted((r["step"], r[key]) for r in records if key in r)
    return [p[0] for p in pts], [p[1] for p in pts]


def _plot_curves(recipe: str, runs: list[_Run], path: Path) -> bool:
    """Train loss and val metric against step for all runs of one recipe; False if no data."""
    fig = _new_figure(11.0, 4.2)
    ax_loss, ax_val = fig.subplots(1, 2)
    val_keys = {_val_key(r) for r in runs} - {None}
    loss_keys = {_loss_key(r.train) for r in runs} - {None}
    handles, labels = [], []
    drew = False
    for i, run in enumerate(runs):
        color = f"C{i % 10}"
        line = None
        lk = _loss_key(run.train)
        if lk is not None:
            (line,) = ax_loss.plot(*_series(run.train, lk), color=color, lw=1.3)
        vk = _val_key(run)
        if vk is not None:
            (vline,) = ax_val.plot(*_series(run.val, vk), color=color, marker="o", ms=3, lw=1.3)
            line = line or vline
        if line is not None:
            drew = True
            label = run.name if len(val_keys) <= 1 else f"{run.name} ({vk})"
            handles.append(line)
            labels.append(label)
    if not drew:
        return False
    ax_loss.set_title("train " + (loss_keys.pop() if len(loss_keys) == 1 else "loss"))
    ax_val.set_title("val " + (next(iter(val_keys)) if len(val_keys) == 1 else "metric"))
    for ax in (ax_loss, ax_val):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    _maybe_log_y(ax_loss)
    fig.suptitle(f"{recipe}: training curves")
    fig.legend(handles, labels, loc="outside lower center", ncols=min(3, len(labels)), fontsize=8)
    _save(fig, path)
    return True


def _maybe_log_y(ax) -> None:
    """Log y when a positive quantity spans more than two decades (loss curves often do)."""
    ys = [y for line in ax.get_lines() for y in line.get_ydata() if math.isfinite(y)]
    if ys and min(ys) > 0 and max(ys) / min(ys) > 100:
        ax.set_yscale("log")


def _fmt_metrics(d: dict) -> str:
    items = [f"{k}={format_value(v)}" for k, v in d.items() if k != "step"]
    return ", ".join(items) or "—"


def _results_section(
    path: Path, results: dict, fig_dir: Path, taken: set[str], warnings: list[str]
) -> list[str]:
    md = [f"### {results['benchmark']}", ""]
    md.append(
        f"Dataset: **{results['dataset']}** · metric: **{_metric_label(results)}** · "
        f"seeds: {results['seeds'] or '—'} · date: {results['date']} · file: `{path.name}`"
    )
    md += ["", "Command:", "", "```sh", f"$ {results['command']}", "```", ""]
    md += [f"Environment: {_env_summary(results['env'])}", ""]
    if results.get("notes"):
        md += [f"Notes: {results['notes']}", ""]
    keys = extra_keys(results)
    header = ["name", f"{results['metric']} (mean ± std)", "n", *keys]
    rows = [
        [
            r["name"],
            format_mean_std(r["mean"], r["std"], n=len(r["values"])),
            str(len(r["values"])),
            *(format_value(r["extra"].get(k)) for k in keys),
        ]
        for r in results["rows"]
    ]
    md += _md_table(header, rows, ["l", "r", "r", *["r"] * len(keys)])
    md.append("")
    slug = _slug(path.stem, taken)
    figures: list[tuple[str, str]] = []
    try:
        _plot_bar(results, fig_dir / f"{slug}_bar.png")
        figures.append((f"{results['benchmark']}: mean ± std", f"{slug}_bar.png"))
        cost = _cost_key(results)
        if cost is not None:
            _plot_cost(results, *cost, fig_dir / f"{slug}_cost.png")
            figures.append(
                (f"{results['benchmark']}: {results['metric']} vs {cost[1]}", f"{slug}_cost.png")
            )
    except Exception as e:  # a plot must never take the whole report down
        warnings.append(f"`{path}`: could not plot ({type(e).__name__}: {e})")
    for alt, name in figures:
        md += [f"![{alt}](figures/{name})", ""]
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
                f"{wall:.1f}" if _is_number(wall) else "—",
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
            if _plot_curves(recipe, group, fig_dir / name):
                md += [f"![{recipe}: training curves](figures/{name})", ""]
        except Exception as e:  # a plot must never take the whole report down
            warnings.append(f"recipe `{recipe}`: could not plot curves ({type(e).__name__}: {e})")
    return md


def _load_runs(runs_dir: Path, warnings: list[str]) -> list[_Run]:
    runs = []
    for d in find_run_dirs(runs_dir):
        rel = d.relative_to(runs_dir).as_posix()
        name = rel if rel != "." else d.name
        try:
            summary = read_summary(d / "summary.json")
        except (ValueError, OSError) as e:
            warnings.append(f"run `{name}` skipped: {e}")
            continue
        except Exception as e:  # an unforeseen bad input must not take the report down
            warnings.append(f"run `{name}` skipped: {type(e).__name__}: {e}")
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
                warnings.append(f"`{metrics}`: skipped {len(problems)} malformed line(s): {shown}")
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

    loaded: list[tuple[Path, dict]] = []
    files = sorted(results_dir.glob("*.json")) if results_dir.is_dir() else []
    for path in files:
        try:
            loaded.append((path, read_results(path)))
        except (ValueError, OSError) as e:
            warnings.append(f"results file skipped: {e}")
        except Exception as e:  # an unforeseen bad input must not take the report down
            warnings.append(f"results file skipped: {path}: {type(e).__name__}: {e}")
    runs = _load_runs(Path(runs_dir), warnings) if runs_dir is not None else []

    bench_md: list[str] = ["## Benchmarks", ""]
    if loaded:
        for path, results in loaded:
            bench_md += _results_section(path, results, fig_dir, taken, warnings)
    else:
        bench_md += [f"No benchmark results yet (no readable `*.json` in `{results_dir}`).", ""]

    runs_md: list[str] = ["## Runs", ""]
    if runs:
        runs_md += _runs_section(runs, fig_dir, taken, warnings)
    elif runs_dir is None:
        runs_md += ["No runs folder given.", ""]
    else:
        runs_md += [f"No runs yet (no readable `summary.json` under `{runs_dir}`).", ""]

    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    md = ["# frugalcv report", ""]
    md += [f"Generated {now} from results `{results_dir}` and runs `{runs_dir}`.", ""]
    if not loaded and not runs:
        md += ["**Nothing to report yet:** no benchmark results and no runs were found.", ""]
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
