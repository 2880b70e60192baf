"""PNG plots of results files and run curves, drawn on matplotlib's Agg canvas directly.

Building a report never touches pyplot's global state or the user's interactive backend.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, NullFormatter

from frugalcv.reporting.format import format_mean_std
from frugalcv.reporting.results import is_number

if TYPE_CHECKING:
    from frugalcv.reporting.results import Results

__all__ = ["COST_KEYS", "cost_key", "plot_bar", "plot_cost", "plot_curves"]

# Cost columns for the metric-vs-cost plot, in order of preference, with their axis labels.
COST_KEYS: tuple[tuple[str, str], ...] = (
    ("macs", "MACs"),
    ("latency_ms", "latency (ms)"),
    ("params", "parameters"),
)
_DPI = 110


def _new_figure(w: float, h: float) -> Figure:
    fig = Figure(figsize=(w, h), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def metric_label(results: Results) -> str:
    arrow = "higher is better" if results.higher_is_better else "lower is better"
    return f"{results.metric} ({arrow})"


def plot_bar(results: Results, path: Path) -> None:
    """Horizontal bars of row means with std error bars, rows top to bottom in file order."""
    rows = results.rows
    fig = _new_figure(7.0, 1.2 + 0.45 * len(rows))
    ax = fig.add_subplot()
    y = list(range(len(rows)))
    means = [r.mean for r in rows]
    stds = [r.std for r in rows]
    ax.barh(y, means, xerr=stds, color="#4C72B0", ecolor="black", capsize=4, height=0.6)
    # Numbers right of each error bar, where they cannot collide with it.
    for yi, r in zip(y, rows, strict=True):
        text = format_mean_std(r.mean, r.std, n=r.n)
        ax.annotate(
            text,
            (r.mean + r.std, yi),
            xytext=(5, 0),
            textcoords="offset points",
            va="center",
            size=8,
        )
    ax.margins(x=0.18)
    ax.set_yticks(y, labels=[r.name for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel(metric_label(results))
    ax.set_title(f"{results.benchmark} — {results.dataset} (mean ± std)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    fig.savefig(path, dpi=_DPI)


def cost_key(results: Results) -> tuple[str, str] | None:
    """The first of :data:`COST_KEYS` that some row reports as a number, with its label."""
    for key, label in COST_KEYS:
        if any(is_number(r.extra.get(key)) for r in results.rows):
            return key, label
    return None


def plot_cost(results: Results, key: str, label: str, path: Path) -> None:
    """Metric mean (± std) against a cost column, one labelled point per row."""
    rows = sorted(
        (r for r in results.rows if is_number(r.extra.get(key))), key=lambda r: r.extra[key]
    )
    xs = [float(r.extra[key]) for r in rows]
    fig = _new_figure(7.0, 4.8)
    ax = fig.add_subplot()
    ax.errorbar(
        xs,
        [r.mean for r in rows],
        yerr=[r.std for r in rows],
        fmt="o",
        color="#C44E52",
        ecolor="gray",
        capsize=3,
    )
    # Alternate labels above/below the points so that neighbours overlap less.
    for i, (x, r) in enumerate(zip(xs, rows, strict=True)):
        dy = 7 if i % 2 == 0 else -14
        ax.annotate(r.name, (x, r.mean), xytext=(5, dy), textcoords="offset points", size=8)
    # Costs often span decades (a student vs its teacher); a log axis keeps the cheap rows apart.
    positive = [x for x in xs if x > 0]
    if len(positive) == len(xs) and positive and max(positive) / min(positive) > 10:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
    if key in ("macs", "params"):
        ax.xaxis.set_major_formatter(EngFormatter())
    ax.margins(x=0.15, y=0.15)
    ax.set_xlabel(label)
    ax.set_ylabel(metric_label(results))
    ax.set_title(f"{results.benchmark}: {results.metric} vs {label}")
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=_DPI)


def _loss_key(records: list[dict]) -> str | None:
    keys = {k for r in records for k in r if k not in ("step", "split")}
    if "loss" in keys:
        return "loss"
    losses = sorted(k for k in keys if k.startswith("loss"))
    return losses[0] if losses else None


def _val_key(val: list[dict], best: dict) -> str | None:
    keys = [k for r in val for k in r if k not in ("step", "split")]
    for k in best:
        if k != "step" and k in keys:
            return k
    return keys[0] if keys else None


def _series(records: list[dict], key: str) -> tuple[list[int], list[float]]:
    pts = sorted((r["step"], r[key]) for r in records if key in r)
    return [p[0] for p in pts], [p[1] for p in pts]


def plot_curves(title: str, runs: list, path: Path) -> bool:
    """Train loss and val metric against step, one colour per run; False if there is no data.

    ``runs`` are objects with ``name``, ``summary`` (its ``best``), ``train`` and ``val``
    (``metrics.jsonl`` records split by ``split``).
    """
    fig = _new_figure(11.0, 4.2)
    ax_loss, ax_val = fig.subplots(1, 2)
    val_keys = {_val_key(r.val, r.summary.get("best", {})) for r in runs} - {None}
    loss_keys = {_loss_key(r.train) for r in runs} - {None}
    handles, labels = [], []
    for i, run in enumerate(runs):
        color = f"C{i % 10}"
        line = None
        lk = _loss_key(run.train)
        if lk is not None:
            (line,) = ax_loss.plot(*_series(run.train, lk), color=color, lw=1.3)
        vk = _val_key(run.val, run.summary.get("best", {}))
        if vk is not None:
            (vline,) = ax_val.plot(*_series(run.val, vk), color=color, marker="o", ms=3, lw=1.3)
            line = line or vline
        if line is not None:
            handles.append(line)
            labels.append(run.name if len(val_keys) <= 1 else f"{run.name} ({vk})")
    if not handles:
        return False
    ax_loss.set_title("train " + (loss_keys.pop() if len(loss_keys) == 1 else "loss"))
    ax_val.set_title("val " + (next(iter(val_keys)) if len(val_keys) == 1 else "metric"))
    for ax in (ax_loss, ax_val):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    # Log y when a positive quantity spans more than two decades (loss curves often do).
    ys = [y for line in ax_loss.get_lines() for y in line.get_ydata() if math.isfinite(y)]
    if ys and min(ys) > 0 and max(ys) / min(ys) > 100:
        ax_loss.set_yscale("log")
    fig.suptitle(f"{title}: training curves")
    fig.legend(handles, labels, loc="outside lower center", ncols=min(3, len(labels)), fontsize=8)
    fig.savefig(path, dpi=_DPI)
    return True
