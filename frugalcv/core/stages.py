"""Staged recipes: a stage trained (or loaded) once, rows compared from one initialisation, rounds.

Three shapes cover every family's recipe:

- :func:`train_stage`: train a stage's task in ``<run>/<name>`` (a teacher, a supernet, a search),
  or load its deployable model from a checkpoint or run folder instead. Rerunning resumes.
- :func:`train_rows`: one model per row (student alone, +KD, +ICKD, ...), each in ``<run>/<row>``,
  every row starting from the same initialisation (the global torch seed is reset to
  ``train.seed`` before each row's task is built) on the same data and schedule.
- :func:`run_rounds`: train, select, retrain (active learning, self-paced curricula): each round
  trains in ``<run>/round<r>`` and the selection it makes is saved as ``selection.json``, so a
  resumed run replays saved selections instead of recomputing them.

Each writes the usual ``summary.json`` per trained model; the recipe gathers them with
:func:`frugalcv.core.recipe.write_rows`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from frugalcv.core.checkpoint import load_model
from frugalcv.core.jsonio import write_json
from frugalcv.core.recipe import RunContext, train_model
from frugalcv.core.task import Task


def train_stage(
    ctx: RunContext,
    cfg: Any,
    *,
    name: str,
    task: Task,
    loaders: tuple,
    ckpt: str = "",
    extra: dict | None = None,
    **fit_kwargs: Any,
) -> tuple[nn.Module, dict]:
    """Train ``task`` in ``<run>/<name>`` or, with ``ckpt``, load its deployable model.

    Args:
        ckpt: a checkpoint file or run folder of an earlier frugalcv run ("" = train here).
        fit_kwargs: passed to ``fit`` (``optimizers``, ``schedules``, ``hooks``).

    Returns:
        ``(task.deployable(), summary)``: the trained model and its summary (for a loaded stage
        ``{"name": name, "loaded_from": ckpt}``).
    """
    if ckpt:
        load_model(task.deployable(), ckpt)
        return task.deployable(), {"name": name, "loaded_from": str(ckpt)}
    summary = train_model(
        ctx,
        cfg,
        task=task,
        loaders=loaders,
        name=name,
        out_dir=ctx.out_dir / name,
        extra=extra,
        **fit_kwargs,
    )
    return task.deployable(), summary


def train_rows(
    ctx: RunContext,
    cfg: Any,
    *,
    rows: Sequence[str],
    make_task: Callable[[str], Task],
    loaders: tuple,
    extra: Callable[[str, Task], dict] | None = None,
) -> list[dict]:
    """Train one task per row in ``<run>/<row>``, all from the same initialisation.

    Args:
        make_task: builds a row's task; it creates the row's model(s) first so that the same
            seed gives every row the same initial weights.
        extra: ``(row, task) -> dict`` stored in that row's summary (params, MACs, labels).
    """
    summaries = []
    for row in rows:
        torch.manual_seed(cfg.train.seed)  # every row starts from the same init
        task = make_task(row)
        summaries.append(
            train_model(
                ctx,
                cfg,
                task=task,
                loaders=loaders,
                name=row,
                out_dir=ctx.out_dir / row,
                extra=extra(row, task) if extra else None,
            )
        )
    return summaries


def run_rounds(
    ctx: RunContext,
    *,
    num_rounds: int,
    train_round: Callable[[int, Path, Any], dict],
    select: Callable[[int, dict, Any], Any],
    initial: Any = None,
) -> list[dict]:
    """Train, select, retrain, for ``num_rounds`` rounds.

    Args:
        train_round: ``(r, out_dir, selection) -> summary``; trains round ``r`` in ``out_dir``
            on the current selection (e.g. the labelled frames) and returns its summary.
        select: ``(r, summary, selection) -> new selection`` (JSON-able: lists, dicts, numbers);
            saved atomically as ``round<r>/selection.json``, read back instead of recomputed
            when the run resumes.
        initial: the selection of round 0.

    Returns:
        One dict per round: the round's summary plus the selection it trained on.
    """
    if num_rounds < 1:
        raise ValueError(f"num_rounds must be >= 1; got {num_rounds}.")
    selection, history = initial, []
    for r in range(num_rounds):
        out = ctx.out_dir / f"round{r}"
        summary = train_round(r, out, selection)
        history.append({**summary, "round": r, "selection": selection})
        if r == num_rounds - 1:
            break
        saved = out / "selection.json"
        if saved.is_file():
            selection = json.loads(saved.read_text())
        else:
            selection = select(r, summary, selection)
            if ctx.is_main:
                write_json(saved, selection)
    return history
