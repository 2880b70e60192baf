"""The one training loop. Devices, mixed precision and DDP come from Lightning Fabric.

``fit`` runs ``task.step`` for a number of optimizer steps, sets the learning rate per step,
evaluates and checkpoints on a step schedule, logs to ``metrics.jsonl`` and shows a rich progress
bar. A run resumed from ``last.pt`` continues to the same result as an uninterrupted run: the data
order depends only on (seed, epoch), and the checkpoint holds the RNG state.

Under a recipe (``identity=``, see :class:`RunIdentity`), every checkpoint carries the run's
fingerprint and a checkpoint of another run is refused before any step; ``train.resume_from``
starts a new run from an earlier run's checkpoint. A checkpoint is written only when every
parameter and buffer is finite, so the one a NaN stop names is usable. Ctrl-C ends in
:class:`RunInterrupted`, one line saying where the run stopped.

The helpers around the loop live beside it and are re-exported here: :mod:`frugalcv.core.resume`
(run identity, RNG state, resume sources), :mod:`frugalcv.core.distributed` (Fabric, world size,
batch scope) and :mod:`frugalcv.core.optim` (optimizers, learning-rate schedules).
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from frugalcv.core.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_state_dict_checked,
    nonfinite_entries,
    save_checkpoint,
)
from frugalcv.core.config import (
    ConfigError,
    OptimConfig,
    TrainConfig,
    identity_diff,
    identity_fingerprint,
)
from frugalcv.core.distributed import batch_scope_note, check_batch_scope

# ``name as name``: moved out of this module, still importable from it.
from frugalcv.core.distributed import end_distributed as end_distributed
from frugalcv.core.distributed import make_fabric as make_fabric
from frugalcv.core.distributed import world_size_of as world_size_of
from frugalcv.core.hooks import Hook, JsonlLogger, ProgressHook
from frugalcv.core.optim import Schedule, make_optimizer, make_schedule
from frugalcv.core.optim import _config_schedule as _config_schedule
from frugalcv.core.optim import lr_factor as lr_factor
from frugalcv.core.resume import (
    RunIdentity,
    _loader_fingerprint,
    _mismatch,
    _move_aside,
    _record_resumed_from,
    _resume_source,
    _stage_of,
    rng_state,
    set_rng_state,
)
from frugalcv.core.task import NonFiniteLossError, Task, external_state, fabric_batch


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C inside ``fit``: nothing half-written is left, and ``str(e)`` is one line,
    "stopped at step S/T; last checkpoint PATH (step K); rerun the same command to resume".

    A ``KeyboardInterrupt`` subclass, so code that catches ``Exception`` still lets it through.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "stopped"


def seed_all(seed: int) -> None:
    """Seed python, numpy and torch (every process gets the same seed; DDP syncs weights)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class FitResult:
    """What ``fit`` returns: ``final`` is the last evaluation, ``best`` the best (with its step)."""

    final: dict[str, float]
    best: dict[str, float]
    steps: int
    wall_s: float
    history: list[dict[str, float]] = field(default_factory=list)
    replica_max_abs_diff: float | None = None  # DDP only: max |param - rank0 param| at the end
    fingerprint: str | None = None  # the run identity's fingerprint (with ``identity=``)
    resumed_from: dict | None = None  # {path, fingerprint, changed_keys} (train.resume_from)


@dataclass
class LoopState:
    """What hooks see: progress, the task being trained and its optimizers (detectron2-style)."""

    step: int
    total_steps: int
    steps_per_epoch: int
    epoch: int
    fabric: Any
    out_dir: Path
    task: Any = None
    optimizers: Sequence[torch.optim.Optimizer] = ()
    losses: dict[str, float] = field(default_factory=dict)
    lr: float = 0.0


def _hook_key(i: int, hook: Hook) -> str:
    return f"{i}:{type(hook).__name__}"


def _stateful(hooks: Sequence[Hook]) -> dict[str, Hook]:
    """User hooks that carry state (``state_dict``/``load_state_dict``), by position and class."""
    return {
        _hook_key(i, h): h
        for i, h in enumerate(hooks)
        if callable(getattr(h, "state_dict", None))
        and callable(getattr(h, "load_state_dict", None))
    }


def to_channels_last(batch: Any) -> Any:
    """Every 4-D tensor of a nested batch in NHWC memory layout (values unchanged)."""
    if torch.is_tensor(batch):
        return batch.contiguous(memory_format=torch.channels_last) if batch.dim() == 4 else batch
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_channels_last(b) for b in batch)
    if isinstance(batch, dict):
        return {k: to_channels_last(v) for k, v in batch.items()}
    return batch


def resolve_monitor(task: Task, train: TrainConfig) -> tuple[str, str]:
    """The metric and mode that define "best": ``train.monitor`` if set, else ``task.monitor``.

    A key set without a mode takes the task's mode when it is the task's key, else ``"min"`` for
    names containing "loss" and ``"max"`` otherwise.
    """
    key = train.monitor or task.monitor[0]
    if train.monitor_mode:
        return key, train.monitor_mode
    if key == task.monitor[0]:
        return key, task.monitor[1]
    return key, "min" if "loss" in key else "max"


def fit(
    task: Task,
    *,
    train_loader: Iterable,
    val_loader: Iterable | None,
    train: TrainConfig,
    optim: OptimConfig,
    out_dir: str | Path,
    fabric: Any,
    optimizers: Sequence[torch.optim.Optimizer] | None = None,
    schedules: Sequence[Schedule | None] | None = None,
    hooks: Sequence[Hook] = (),
    desc: str = "",
    identity: RunIdentity | None = None,
) -> FitResult:
    """Train ``task`` and return final/best validation metrics.

    Args:
        train_loader: re-iterable batches. A loader with ``shard`` (``TensorLoader``,
            ``DatasetLoader``) is sharded over DDP ranks here and one with ``iter_from`` resumes
            mid-epoch without loading the batches already seen; any other iterable must already
            yield this process's share.
        val_loader: batches for ``task.evaluate`` (None: no evaluation).
        train, optim: the shared config parts (length, schedule, checkpoints, devices).
        out_dir: folder for ``last.pt`` and ``metrics.jsonl``; resumed from when it holds a
            checkpoint and ``train.resume`` is true.
        fabric: a launched ``lightning.fabric.Fabric`` (``make_fabric(train)`` then ``launch()``).
        optimizers: defaults to one built from ``optim`` over ``task.trainable_parameters()``.
        schedules: one per optimizer: a :data:`Schedule`, or None to keep that optimizer's lr
            fixed (e.g. an architecture or gate optimizer). Default: ``optim``'s schedule for all.
        hooks: extra hooks; they see the task and optimizers in ``LoopState``, and those with
            ``state_dict``/``load_state_dict`` are saved in ``last.pt`` and restored on resume.

        identity: the run identity (recipes pass it through ``train_model``): checkpoints carry
            its fingerprint, a ``last.pt`` with another one is refused (or, with
            ``train.overwrite``, moved aside) before any step, and ``train.resume_from`` applies.
            None (plain library use): no identity check.

    Raises:
        NonFiniteLossError: a loss, or the model state at a checkpoint, is NaN/inf; the message
            names the last finite checkpoint and how to continue from it with changes.
        RunInterrupted: Ctrl-C; one line with the step and the checkpoint a rerun resumes from.

    The checkpoint holds ``"model"``: the state dict of ``task.deployable()`` (load it with
    :func:`frugalcv.core.checkpoint.load_model`), besides the full ``"task"`` state.
    """
    out_dir = Path(out_dir)
    t0 = time.time()
    world = fabric.world_size
    # The run identity (config, world size, data) before sharding: the whole data set counts.
    full_identity, fingerprint, stage = None, None, "."
    if identity is not None:
        full_identity = {
            **identity.keys,
            "data.source": identity.data_source,
            "data.train": _loader_fingerprint(train_loader),
            "data.val": _loader_fingerprint(val_loader),
        }
        fingerprint = identity_fingerprint(full_identity)
        stage = _stage_of(out_dir, identity.run_dir)
    if world > 1:
        if train.batch_scope == "global":
            check_batch_scope(train, world)
            if not hasattr(train_loader, "shard"):
                raise ValueError(
                    "train.batch_scope=global needs a loader with shard() (TensorLoader or "
                    "DatasetLoader) to split the batch over processes; use one, or "
                    "--train.batch_scope=process."
                )
        else:
            _show_batch_note(train, world, fabric)
    if hasattr(train_loader, "shard") and world > 1:
        per_process = 0
        if train.batch_scope == "global":
            per_process = max(1, int(train_loader.batch_size) // world)  # type: ignore[attr-defined]
        train_loader = train_loader.shard(
            rank=fabric.global_rank, world_size=world, batch_size=per_process
        )
    if val_loader is not None and hasattr(val_loader, "shard") and world > 1:
        val_loader = val_loader.shard(rank=fabric.global_rank, world_size=world)
    steps_per_epoch = len(train_loader)  # type: ignore[arg-type]
    if steps_per_epoch == 0:
        raise ValueError("The training loader yields no batch: lower train.batch_size.")
    total = train.max_steps if train.max_steps > 0 else math.ceil(train.epochs * steps_per_epoch)
    eval_every = train.eval_every or steps_per_epoch
    ckpt_every = train.ckpt_every or steps_per_epoch
    monitor_key, monitor_mode = resolve_monitor(task, train)

    if optimizers is None:
        optimizers = [make_optimizer(task.trainable_parameters(), optim)]
    if schedules is None:
        schedules = [make_schedule(optim)] * len(optimizers)
    if len(schedules) != len(optimizers):
        raise ValueError(
            f"fit got {len(optimizers)} optimizers but {len(schedules)} schedules: pass one "
            f"schedule (or None for a fixed lr) per optimizer."
        )
    user_hooks = list(hooks)
    stateful = _stateful(user_hooks)

    # Which checkpoint to start from, decided (and refused) before any work or write.
    ckpt_path = out_dir / "last.pt"
    state, resumed_from = None, None
    if train.resume and ckpt_path.is_file():
        state = load_checkpoint(ckpt_path)
        if full_identity is not None and state.get("fingerprint") != fingerprint:
            reason = _mismatch(state, full_identity)
            if not train.overwrite:
                raise ConfigError(
                    f"Run folder {out_dir} holds a checkpoint of another run: {ckpt_path} "
                    f"{reason}. Choose another --train.out_dir, or pass --train.overwrite=true "
                    f"to move the old run aside (nothing is deleted)."
                )
            fabric.barrier()  # every rank has read the old checkpoint before it moves
            if fabric.is_global_zero:
                _move_aside(out_dir, identity.run_dir)  # type: ignore[union-attr]
            fabric.barrier()
            state = None
    elif identity is not None and train.resume_from:
        found = _resume_source(Path(train.resume_from), stage)
        if found is not None:
            src, state = found
            changed = (
                identity_diff(state["identity"], full_identity)  # type: ignore[arg-type]
                if isinstance(state.get("identity"), dict)
                else ["<unknown: the checkpoint has no run identity>"]
            )
            resumed_from = {
                "path": str(src),
                "fingerprint": state.get("fingerprint"),
                "changed_keys": changed,
            }
    out_dir.mkdir(parents=True, exist_ok=True)

    if train.channels_last:
        task.to(memory_format=torch.channels_last)
    wrapped, *optimizers = fabric.setup(task, *optimizers)
    # The compiled module shares parameters with `wrapped`; only the training forward runs it.
    forward = torch.compile(wrapped) if train.compile else wrapped
    for opt in optimizers:
        for g in opt.param_groups:
            g.setdefault("initial_lr", g["lr"])

    step, best, history = 0, {}, []
    saved_step: int | None = None  # step of this folder's last.pt (None: none written yet)
    if state is not None:
        source = resumed_from["path"] if resumed_from else str(ckpt_path)
        saved_task = state["task"]
        if "external" in state:  # frozen submodules (a teacher) were left out: check, then fill
            _, sha = external_state(task)
            if sha != state["external"]["sha256"]:
                names = ", ".join(state["external"]["modules"])
                raise CheckpointError(
                    f"{source} was trained under other weights of its {names} than this run "
                    f"loaded. Point the run at the {names} it was trained with (e.g. "
                    "--distill.teacher_ckpt), or start a new --train.out_dir."
                )
            prefixes = tuple(f"{m}." for m in state["external"]["modules"])
            saved_task = {
                **{k: v for k, v in task.state_dict().items() if k.startswith(prefixes)},
                **saved_task,
            }
        load_state_dict_checked(task, saved_task, source=source)
        if len(state["optimizers"]) != len(optimizers):
            raise CheckpointError(
                f"{source} holds {len(state['optimizers'])} optimizer states but this run has "
                f"{len(optimizers)} optimizers: it was written by another recipe."
            )
        fresh_optimizer = resumed_from is not None and "optim.name" in resumed_from["changed_keys"]
        for opt, sd in zip(optimizers, state["optimizers"], strict=True):
            if fresh_optimizer:
                continue  # another optimizer type: its state (momenta, moments) does not carry
            # Starting from another run keeps this config's lr, momentum, weight decay (only the
            # per-parameter state carries over); a plain resume restores everything.
            groups = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
            opt.load_state_dict(sd)
            if resumed_from is not None:
                for g, own in zip(opt.param_groups, groups, strict=True):
                    g.update(own)
        if resumed_from is not None:
            resumed_from["optimizer_state"] = "fresh" if fresh_optimizer else "loaded"
            if fabric.is_global_zero:
                _record_resumed_from(identity.run_dir, stage, resumed_from)  # type: ignore[union-attr]
        saved_hooks = dict(state.get("hooks", {}))
        if set(saved_hooks) != set(stateful):
            raise CheckpointError(
                f"{source} holds the state of hooks {sorted(saved_hooks)} but this run has "
                f"stateful hooks {sorted(stateful)}: resume with the same hooks, or start in "
                f"another --train.out_dir."
            )
        for key, hook in stateful.items():
            hook.load_state_dict(saved_hooks[key])
        step, best, history = int(state["step"]), dict(state["best"]), list(state["history"])
        set_rng_state(state["rng"])
        t0 -= float(state.get("wall_s", 0.0))  # wall time accumulates over resumed sessions
        if resumed_from is None:
            saved_step = step
        if fabric.is_global_zero:
            if resumed_from is None:
                print(f"[frugalcv] resumed {out_dir} at step {step}/{total}")
            else:
                print(
                    f"[frugalcv] started {out_dir} from {source} at step {step}/{total}; "
                    f"changed: {', '.join(resumed_from['changed_keys']) or 'nothing'}"
                )
    del state

    state_ref = LoopState(
        step=step,
        total_steps=total,
        steps_per_epoch=steps_per_epoch,
        epoch=step // steps_per_epoch,
        fabric=fabric,
        out_dir=out_dir,
        task=task,
        optimizers=optimizers,
    )
    all_hooks: list[Hook] = []
    if fabric.is_global_zero:
        all_hooks.append(JsonlLogger(out_dir / "metrics.jsonl", every=train.log_every))
        if train.progress:
            all_hooks.append(ProgressHook(desc=desc or out_dir.name))
    all_hooks.extend(user_hooks)
    for h in all_hooks:
        h.before_train(state_ref)

    def last_good() -> str:
        return f"{ckpt_path} (step {saved_step})" if saved_step is not None else "none yet"

    def nan_stop(at_step: int, what: str) -> NonFiniteLossError:
        if saved_step is not None:
            how = (
                f"Last good checkpoint (every parameter and buffer finite): {last_good()}. "
                f"Rerunning the same command resumes there and meets the same values; to "
                f"continue from it with changes (a lower --optim.lr, --train.grad_clip), run "
                f"the command with them plus "
                f"--train.resume_from={ckpt_path} --train.out_dir=<a new folder>."
            )
        elif identity is not None and stage != ".":
            how = (
                f"This stage has no checkpoint yet. Lower --optim.lr, set --train.grad_clip, or "
                f"check the data, and run the command with those changes plus "
                f"--train.resume_from={identity.run_dir} --train.out_dir=<a new folder> "
                f"(finished stages are taken from there)."
            )
        else:
            how = (
                "No checkpoint was written yet. Lower --optim.lr, set --train.grad_clip, or "
                "check the data, and rerun (a folder without a checkpoint may be reused)."
            )
        return NonFiniteLossError(f"Training stopped at step {at_step}: {what}. {how}")

    def save(at_step: int) -> None:
        nonlocal saved_step
        # Never replace a good last.pt by a state that holds NaN/inf (e.g. an overflowed
        # BatchNorm running_var while the loss is still finite): stop instead.
        bad = nonfinite_entries(task.state_dict())
        any_bad = bool(bad)
        if world > 1:
            flag = torch.tensor(float(any_bad), device=fabric.device)
            any_bad = bool(fabric.all_reduce(flag, reduce_op="max") > 0)
        if any_bad:
            what = (
                f"the model's state became non-finite ({', '.join(bad[:3])}"
                f"{', ...' if len(bad) > 3 else ''})"
                if bad
                else "another process's model state became non-finite"
            )
            raise nan_stop(at_step, f"{what}; it was not saved")
        if fabric.is_global_zero:
            extra = {}
            if full_identity is not None:
                extra = {"fingerprint": fingerprint, "identity": full_identity, "stage": stage}
            own, external_sha = external_state(task)
            if external_sha:
                extra["external"] = {"modules": list(task.external), "sha256": external_sha}
            save_checkpoint(
                ckpt_path,
                {
                    "task": own,
                    "model": task.deployable().state_dict(),
                    "optimizers": [o.state_dict() for o in optimizers],
                    "hooks": {k: h.state_dict() for k, h in stateful.items()},
                    "step": at_step,
                    "best": best,
                    "history": history,
                    "rng": rng_state(),
                    "wall_s": time.time() - t0,
                    **extra,
                },
            )
        saved_step = at_step
        fabric.barrier()

    def evaluate(at_step: int) -> dict[str, float]:
        # Evaluation must not perturb the training RNG stream (resume equivalence).
        with torch.random.fork_rng(devices=[]):
            task.eval()
            metrics = task.evaluate(val_loader, fabric=fabric)
            task.train()
        if monitor_key not in metrics:
            raise ValueError(
                f"The monitored metric '{monitor_key}' is not among the metrics "
                f"{type(task).__name__} reports ({', '.join(sorted(metrics))}): set "
                f"--train.monitor to one of them (and --train.monitor_mode to max or min)."
            )
        metrics = {**metrics, "step": at_step}
        history.append(metrics)
        if not best or (
            metrics[monitor_key] > best[monitor_key]
            if monitor_mode == "max"
            else metrics[monitor_key] < best[monitor_key]
        ):
            best.clear()
            best.update(metrics)
        for h in all_hooks:
            h.after_eval(state_ref, metrics)
        return metrics

    task.train()
    try:
        while step < total:
            epoch = step // steps_per_epoch
            if hasattr(train_loader, "set_epoch"):
                train_loader.set_epoch(epoch)
            skip = step - epoch * steps_per_epoch
            if hasattr(train_loader, "iter_from"):
                batches = enumerate(train_loader.iter_from(skip), start=skip)
            else:
                batches = enumerate(train_loader)
            for i, batch in batches:
                if i < skip:
                    continue  # resumed mid-epoch: these batches were already seen
                if step >= total:
                    break
                for opt, schedule in zip(optimizers, schedules, strict=True):
                    if schedule is None:
                        continue
                    factor = schedule(step, total, steps_per_epoch)
                    for g in opt.param_groups:
                        g["lr"] = g["initial_lr"] * factor
                batch = fabric_batch(batch, fabric)
                if train.channels_last:
                    batch = to_channels_last(batch)
                try:
                    losses = task.step(
                        batch,
                        forward=forward,
                        optimizers=optimizers,
                        fabric=fabric,
                        grad_clip=train.grad_clip,
                    )
                except NonFiniteLossError as e:
                    raise nan_stop(step, f"{e}. No update was applied") from None
                step += 1
                state_ref.step, state_ref.epoch = step, epoch
                state_ref.losses = {
                    k: float(v.detach())
                    for k, v in losses.items()
                    if torch.is_tensor(v) and v.numel() == 1
                }
                state_ref.lr = optimizers[0].param_groups[0]["lr"]
                for h in all_hooks:
                    h.after_step(state_ref)
                if val_loader is not None and (step % eval_every == 0 or step == total):
                    evaluate(step)
                if step % ckpt_every == 0 or step == total:
                    save(step)
        if val_loader is not None and (not history or history[-1]["step"] != step):
            evaluate(step)
            save(step)
    except KeyboardInterrupt as e:
        if isinstance(e, RunInterrupted):
            raise
        last = f"last checkpoint {last_good()}" if saved_step is not None else "no checkpoint yet"
        raise RunInterrupted(
            f"stopped at step {step}/{total}; {last}; rerun the same command to resume"
        ) from None
    finally:
        for h in all_hooks:
            h.after_train(state_ref)

    diff = None
    if world > 1:
        flat = torch.cat([p.detach().flatten().float() for p in task.parameters()])
        ref = fabric.broadcast(flat.clone(), src=0)
        diff = float(fabric.all_reduce((flat - ref).abs().max(), reduce_op="max"))
    final = {k: v for k, v in (history[-1] if history else {}).items()}
    return FitResult(
        final=final,
        best=dict(best),
        steps=step,
        wall_s=time.time() - t0,
        history=history,
        replica_max_abs_diff=diff,
        fingerprint=fingerprint,
        resumed_from=resumed_from,
    )


_BATCH_NOTE_SHOWN = False  # the batch-scope note is printed once per process


def _show_batch_note(train: TrainConfig, world_size: int, fabric: Any) -> None:
    global _BATCH_NOTE_SHOWN
    note = batch_scope_note(train, world_size)
    if note and not _BATCH_NOTE_SHOWN and fabric.is_global_zero:
        print(note, file=sys.stderr)
    _BATCH_NOTE_SHOWN = True
