"""Run-folder bookkeeping shared by every recipe: config.json, safe reuse of a folder, summary.json.

A recipe's ``run(cfg)`` calls :func:`start_run` first and :func:`write_summary` for each model it
trains. Reusing a folder whose run had another config is an error (or, with
``train.overwrite=true``, the old folder is moved aside): nothing already written is lost.

Run identity, in two steps. :func:`start_run` validates the whole config before it launches or
writes anything, then compares the config and the world size with the folder's ``config.json``
(``_run.config_fingerprint``, ``_run.world_size``) before the recipe loads data. The data is
known only once the recipe has loaded it, so ``fit`` (through :func:`train_model`) completes the
identity with the data's source and fingerprints, stores the full fingerprint in every
checkpoint and summary, and refuses a ``last.pt`` with another fingerprint before any step. A
folder with a ``config.json`` but no checkpoint and no summary (a start that failed) is not in
use: any config may take it over.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frugalcv.core.config import (
    RUN_KEY,
    ConfigError,
    config_diff,
    identity_fingerprint,
    run_identity,
    to_dict,
    validate,
)
from frugalcv.core.jsonio import finite_or_none, write_json
from frugalcv.core.loop import (
    FitResult,
    RunIdentity,
    check_batch_scope,
    fit,
    make_fabric,
    seed_all,
    world_size_of,
)


class RunFolderError(ConfigError):
    """The run folder cannot be created or written (a file, read-only, disk full)."""


@dataclass
class RunContext:
    out_dir: Path
    fabric: Any
    recipe: str
    preset: str
    seed: int
    identity: dict[str, Any] | None = None  # run_identity(config, world size); fit adds the data

    @property
    def is_main(self) -> bool:
        return bool(self.fabric.is_global_zero)


def default_out_dir(recipe: str, preset: str) -> Path:
    return Path("runs") / recipe / (preset or "custom")


def _holds_work(out_dir: Path) -> bool:
    """A checkpoint or a summary anywhere in the folder: a run (finished or partial) lives here."""
    return any(any(out_dir.rglob(name)) for name in ("last.pt", "summary.json", "rows.json"))


def _prepare_folder(
    out_dir: Path,
    cfg_dict: dict,
    *,
    world_size: int,
    resume: bool,
    overwrite: bool,
    defaults: dict,
) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise RunFolderError(
            f"--train.out_dir {out_dir} is a file, not a folder: choose another --train.out_dir."
        )
    if not out_dir.is_dir() or not _holds_work(out_dir):
        return  # new, or a start that failed before its first checkpoint: free to take over
    old_cfg = out_dir / "config.json"
    if not old_cfg.is_file():
        reason = (
            "it holds checkpoints or summaries but no config.json (a stage folder of another "
            "run, or a run of an older frugalcv)"
        )
    else:
        try:
            old = json.loads(old_cfg.read_text())
            diff = config_diff(old, cfg_dict, defaults=defaults)
            old_world = (old.get(RUN_KEY) or {}).get("world_size")
            if old_world is not None and old_world != world_size:
                diff.append(f"world_size ({old_world} -> {world_size})")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            diff = ["<unreadable config.json>"]
        reason = None
        if diff:
            reason = f"its config differs in {diff[:6]}"
        elif not resume:
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
    """Validate the whole config, resolve the run folder, launch Fabric (DDP processes if asked),
    seed, write config.json.

    Nothing is written (no folder, no config.json) until the config has validated and the folder
    is free for this run, so a start that fails validation leaves no trace.
    """
    validate(cfg)  # a config built in Python (not through apply_overrides) is checked too
    train = cfg.train
    out_dir = Path(train.out_dir) if train.out_dir else default_out_dir(recipe, preset)
    devices, num_nodes = world_size_of(train)
    check_batch_scope(train, devices * num_nodes)
    source = Path(train.resume_from)
    if train.resume_from and not (source.is_file() or any(source.rglob("last.pt"))):
        raise ConfigError(
            f"train.resume_from={train.resume_from} is neither a checkpoint nor a run folder "
            f"holding one: pass the last.pt a NaN stop named, or the folder of the run to start "
            f"from."
        )
    cfg_dict = to_dict(cfg)
    world_size = devices * num_nodes
    identity = run_identity(cfg_dict, world_size=world_size)
    if _launch_rank() == 0:
        # Before launching: a refused folder must not leave DDP peers waiting for this process.
        _prepare_folder(
            out_dir,
            cfg_dict,
            world_size=world_size,
            resume=train.resume,
            overwrite=train.overwrite,
            defaults=to_dict(type(cfg)()),
        )
    fabric = make_fabric(train)
    fabric.launch()
    if fabric.is_global_zero:
        run = {"config_fingerprint": identity_fingerprint(identity), "world_size": world_size}
        write_run_file(out_dir / "config.json", {**cfg_dict, RUN_KEY: run})
    fabric.barrier()
    seed_all(train.seed)
    return RunContext(
        out_dir=out_dir,
        fabric=fabric,
        recipe=recipe,
        preset=preset,
        seed=train.seed,
        identity=identity,
    )


def _launch_rank() -> int:
    """This process's global rank as the launcher set it (0 before Fabric spawns its peers)."""
    for key in ("RANK", "LOCAL_RANK"):
        if key in os.environ:
            return int(os.environ[key]) + (
                0 if key == "RANK" else int(os.environ.get("NODE_RANK", 0))
            )
    return 0


def write_run_file(path: Path, data: Any) -> Path:
    """:func:`write_json`, with an OS refusal (read-only folder, a file in the way, full disk) as
    a one-line :class:`RunFolderError` naming the folder and the fix."""
    try:
        return write_json(path, data)
    except OSError as e:
        raise RunFolderError(
            f"Cannot write {Path(path).name} in {Path(path).parent} ({type(e).__name__}: "
            f"{e.strerror or e}): choose a writable --train.out_dir, or free disk space."
        ) from None


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
        "fingerprint": result.fingerprint,
        **({"resumed_from": result.resumed_from} if result.resumed_from else {}),
        **(extra or {}),
    }
    if ctx.is_main:
        write_run_file(Path(out_dir) / "summary.json", summary)
    return summary


def _finite(metrics: dict) -> dict:
    """Metrics with NaN/inf as None: JSON files hold finite numbers only."""
    return {k: finite_or_none(v) for k, v in metrics.items()}


def derived_row(name: str, metric: str, value: float, *, macs: float, how: str) -> dict:
    """A row computed from other rows, not trained (``"full width - 1 point"``, a static curve
    read at some MACs): the row fields every recipe row has, with ``derived`` saying how."""
    return {
        "name": name,
        "final": {metric: value},
        "best": {metric: value, "step": 0},
        "steps": 0,
        "wall_s": 0.0,
        "macs": macs,
        "derived": how,
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
        write_run_file(ctx.out_dir / "rows.json", summary)
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
    ``fit`` rejects any other name. ``extra["data_source"]``, when the recipe gives it, enters
    the run identity beside the loaders' data fingerprints.
    """
    out_dir = out_dir or ctx.out_dir
    train_loader, val_loader = loaders
    identity = None
    if ctx.identity is not None:
        source = str((extra or {}).get("data_source", ""))
        identity = RunIdentity(keys=ctx.identity, run_dir=ctx.out_dir, data_source=source)
    result = fit(
        task,
        train_loader=train_loader,
        val_loader=val_loader,
        train=cfg.train,
        optim=cfg.optim,
        out_dir=out_dir,
        fabric=ctx.fabric,
        desc=name,
        identity=identity,
        **fit_kwargs,
    )
    return write_summary(ctx, out_dir, result, name=name, extra=extra)
