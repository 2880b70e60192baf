"""Run-folder bookkeeping shared by every recipe: config.json, safe reuse of a folder, summary.json.

A recipe's ``run(cfg)`` calls :func:`start_run` first and :func:`write_summary` for each model it
trains. Reusing a folder whose run had another config is an error (or, with
``train.overwrite=true``, the old folder is moved aside): nothing already written is lost.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frugalcv.core.config import ConfigError, config_diff, to_dict
from frugalcv.core.jsonio import write_json
from frugalcv.core.loop import FitResult, fit, make_fabric, seed_all


@dataclass
class RunContext:
    out_dir: Path
    fabric: Any
    recipe: str
    preset: str
    seed: int

    @property
    def is_main(self) -> bool:
        return bool(self.fabric.is_global_zero)


def default_out_dir(recipe: str, preset: str) -> Path:
    return Path("runs") / recipe / (preset or "custom")


def _prepare_folder(
    out_dir: Path, cfg_dict: dict, *, resume: bool, overwrite: bool, defaults: dict
) -> None:
    old_cfg = out_dir / "config.json"
    has_work = any(out_dir.rglob("last.pt")) or (out_dir / "summary.json").is_file()
    if not old_cfg.is_file() and not has_work:
        return
    try:
        old = json.loads(old_cfg.read_text()) if old_cfg.is_file() else None
        diff = config_diff(old, cfg_dict, defaults=defaults) if old is not None else []
    except json.JSONDecodeError:
        diff = ["<unreadable config.json>"]
    reason = None
    if diff:
        reason = f"its config differs in {diff[:6]}"
    elif not resume and has_work:
        reason = "it holds a finished or partial run and train.resume is false"
    if reason is None:
        return
    if overwrite:
        moved = out_dir.with_name(f"{out_dir.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.move(str(out_dir), str(moved))
        print(f"[frugalcv] moved the earlier run to {moved}")
        return
    raise ConfigError(
        f"Run folder {out_dir} is in use: {reason}. Choose another --train.out_dir, or pass "
        f"--train.overwrite=true to move the old run aside (nothing is deleted)."
    )


def start_run(cfg: Any, *, recipe: str, preset: str) -> RunContext:
    """Resolve the run folder, launch Fabric (DDP processes if asked), seed, write config.json."""
    train = cfg.train
    out_dir = Path(train.out_dir) if train.out_dir else default_out_dir(recipe, preset)
    fabric = make_fabric(train)
    fabric.launch()
    cfg_dict = to_dict(cfg)
    if fabric.is_global_zero:
        _prepare_folder(
            out_dir,
            cfg_dict,
            resume=train.resume,
            overwrite=train.overwrite,
            defaults=to_dict(type(cfg)()),
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(out_dir / "config.json", cfg_dict)
    fabric.barrier()
    seed_all(train.seed)
    return RunContext(out_dir=out_dir, fabric=fabric, recipe=recipe, preset=preset, seed=train.seed)


def write_summary(
    ctx: RunContext, out_dir: Path, result: FitResult, *, name: str, extra: dict | None = None
) -> dict:
    """Write ``summary.json`` for one trained model; returns the dict (every rank)."""
    summary = {
        "recipe": ctx.recipe,
        "preset": ctx.preset,
        "name": name,
        "seed": ctx.seed,
        "final": _finite({k: v for k, v in result.final.items() if k != "step"}),
        "final_step": result.final.get("step", result.steps),
        "best": _finite(result.best),
        "steps": result.steps,
        "wall_s": round(result.wall_s, 2),
        "world_size": ctx.fabric.world_size,
        "replica_max_abs_diff": result.replica_max_abs_diff,
        **(extra or {}),
    }
    if ctx.is_main:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        write_json(Path(out_dir) / "summary.json", summary)
    return summary


def _finite(metrics: dict) -> dict:
    """Metrics with NaN/inf as None: JSON files hold finite numbers only."""
    return {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in metrics.items()
    }


def write_rows(ctx: RunContext, *, dataset: str, rows: list[dict]) -> dict:
    """Write ``rows.json``: the summaries of every model a multi-model recipe trained."""
    summary = {
        "recipe": ctx.recipe,
        "preset": ctx.preset,
        "seed": ctx.seed,
        "dataset": dataset,
        "rows": rows,
    }
    if ctx.is_main:
        write_json(ctx.out_dir / "rows.json", summary)
    return summary


def train_model(
    ctx: RunContext,
    cfg,
    *,
    task: Any,
    loaders: tuple,
    name: str,
    out_dir=None,
    extra: dict | None = None,
    **fit_kwargs: Any,
) -> dict:
    """Fit one task under the run's context and write its summary; shared by recipes.

    ``cfg`` needs ``train`` and ``optim`` parts; ``loaders`` is ``(train_loader, val_loader)``.
    ``fit_kwargs`` go to :func:`fit` as they are (``optimizers``, ``schedules``, ``hooks``);
    ``fit`` rejects any other name.
    """
    out_dir = out_dir or ctx.out_dir
    train_loader, val_loader = loaders
    result = fit(
        task,
        train_loader=train_loader,
        val_loader=val_loader,
        train=cfg.train,
        optim=cfg.optim,
        out_dir=out_dir,
        fabric=ctx.fabric,
        desc=name,
        **fit_kwargs,
    )
    return write_summary(ctx, out_dir, result, name=name, extra=extra)
