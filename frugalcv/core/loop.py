"""The one training loop. Devices, mixed precision and DDP come from Lightning Fabric.

``fit`` runs ``task.step`` for a number of optimizer steps, sets the learning rate per step,
evaluates and checkpoints on a step schedule, logs to ``metrics.jsonl`` and shows a rich progress
bar. A run resumed from ``last.pt`` continues to the same result as an uninterrupted run: the data
order depends only on (seed, epoch), and the checkpoint holds the RNG state.
"""

from __future__ import annotations

import functools
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from frugalcv.core.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_state_dict_checked,
    save_checkpoint,
)
from frugalcv.core.config import OptimConfig, TrainConfig
from frugalcv.core.hooks import Hook, JsonlLogger, ProgressHook
from frugalcv.core.task import NonFiniteLossError, Task, to_device

# A learning-rate schedule: (step, total_steps, steps_per_epoch) -> multiplier of the base lr.
Schedule = Callable[[int, int, int], float]


def make_fabric(train: TrainConfig):
    """A ``lightning.fabric.Fabric`` from the train config; under torchrun, sizes come from env."""
    from lightning.fabric import Fabric

    devices, num_nodes = train.devices, train.num_nodes
    if "LOCAL_WORLD_SIZE" in os.environ and "WORLD_SIZE" in os.environ:  # launched by torchrun
        devices = int(os.environ["LOCAL_WORLD_SIZE"])
        num_nodes = max(1, int(os.environ["WORLD_SIZE"]) // devices)
    strategy = "ddp" if devices * num_nodes > 1 else "auto"
    return Fabric(
        accelerator=train.accelerator,
        devices=devices,
        num_nodes=num_nodes,
        strategy=strategy,
        precision=train.precision,
    )


def end_distributed() -> None:
    """Leave the process group cleanly (barrier, then destroy) when one is running.

    A process that exits with its gloo/NCCL group alive can abort ("terminate called without an
    active exception") while a peer is still shutting down; call this at the end of a DDP job.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def seed_all(seed: int) -> None:
    """Seed python, numpy and torch (every process gets the same seed; DDP syncs weights)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(params: Iterable[nn.Parameter], optim: OptimConfig) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if optim.name == "sgd":
        return torch.optim.SGD(
            params,
            lr=optim.lr,
            momentum=optim.momentum,
            weight_decay=optim.weight_decay,
            nesterov=optim.nesterov,
        )
    if optim.name == "adamw":
        return torch.optim.AdamW(params, lr=optim.lr, weight_decay=optim.weight_decay)
    if optim.name == "adam":
        return torch.optim.Adam(params, lr=optim.lr, weight_decay=optim.weight_decay)
    raise ValueError(f"Unknown optimizer '{optim.name}'; use 'sgd', 'adam' or 'adamw'.")


def lr_factor(step: int, *, optim: OptimConfig, total_steps: int, steps_per_epoch: int) -> float:
    """Multiplier of the base lr before optimizer step ``step`` (0-based)."""
    if optim.warmup_steps > 0 and step < optim.warmup_steps:
        return (step + 1) / optim.warmup_steps
    if optim.schedule == "constant":
        return 1.0
    if optim.schedule == "multistep":
        epoch = step / max(1, steps_per_epoch)
        return optim.gamma ** sum(epoch >= m for m in optim.milestones)
    if optim.schedule == "cosine":
        t = (step - optim.warmup_steps) / max(1, total_steps - optim.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
    raise ValueError(f"Unknown schedule '{optim.schedule}'; use multistep, cosine or constant.")


def _config_schedule(step: int, total: int, per_epoch: int, *, optim: OptimConfig) -> float:
    return lr_factor(step, optim=optim, total_steps=total, steps_per_epoch=per_epoch)


def make_schedule(optim: OptimConfig) -> Schedule:
    """The schedule an ``OptimConfig`` describes, as a :data:`Schedule` for ``fit(schedules=)``."""
    return functools.partial(_config_schedule, optim=optim)


@dataclass
class FitResult:
    """What ``fit`` returns: ``final`` is the last evaluation, ``best`` the best (with its step)."""

    final: dict[str, float]
    best: dict[str, float]
    steps: int
    wall_s: float
    history: list[dict[str, float]] = field(default_factory=list)
    replica_max_abs_diff: float | None = None  # DDP only: max |param - rank0 param| at the end


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


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch (CPU, CUDA) generator states as tensors (``weights_only``-safe)."""
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": {
            "version": version,
            "mt": torch.tensor(mt, dtype=torch.int64),
            "gauss": gauss,
        },
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved (older checkpoints hold torch's state only)."""
    torch.set_rng_state(state["torch"])
    if "python" in state:
        p = state["python"]
        random.setstate((p["version"], tuple(int(v) for v in p["mt"].tolist()), p["gauss"]))
    if "numpy" in state:
        n = state["numpy"]
        keys = n["keys"].numpy().astype(np.uint32)
        np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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

    The checkpoint holds ``"model"``: the state dict of ``task.deployable()`` (load it with
    :func:`frugalcv.core.checkpoint.load_model`), besides the full ``"task"`` state.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if hasattr(train_loader, "shard") and fabric.world_size > 1:
        train_loader = train_loader.shard(rank=fabric.global_rank, world_size=fabric.world_size)
    if val_loader is not None and hasattr(val_loader, "shard") and fabric.world_size > 1:
        val_loader = val_loader.shard(rank=fabric.global_rank, world_size=fabric.world_size)
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
    if train.channels_last:
        task.to(memory_format=torch.channels_last)
    wrapped, *optimizers = fabric.setup(task, *optimizers)
    # The compiled module shares parameters with `wrapped`; only the training forward runs it.
    forward = torch.compile(wrapped) if train.compile else wrapped
    for opt in optimizers:
        for g in opt.param_groups:
            g.setdefault("initial_lr", g["lr"])
    user_hooks = list(hooks)
    stateful = _stateful(user_hooks)

    ckpt_path = out_dir / "last.pt"
    step, best, history = 0, {}, []
    if train.resume and ckpt_path.is_file():
        state = load_checkpoint(ckpt_path)
        load_state_dict_checked(task, state["task"], source=str(ckpt_path))
        for opt, sd in zip(optimizers, state["optimizers"], strict=True):
            opt.load_state_dict(sd)
        saved_hooks = dict(state.get("hooks", {}))
        if set(saved_hooks) != set(stateful):
            raise CheckpointError(
                f"{ckpt_path} holds the state of hooks {sorted(saved_hooks)} but this run has "
                f"stateful hooks {sorted(stateful)}: resume with the same hooks, or start in "
                f"another --train.out_dir."
            )
        for key, hook in stateful.items():
            hook.load_state_dict(saved_hooks[key])
        step, best, history = int(state["step"]), dict(state["best"]), list(state["history"])
        set_rng_state(state["rng"])
        t0 -= float(state.get("wall_s", 0.0))  # wall time accumulates over resumed sessions
        if fabric.is_global_zero:
            print(f"[frugalcv] resumed {out_dir} at step {step}/{total}")

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

    def save(at_step: int) -> None:
        if fabric.is_global_zero:
            save_checkpoint(
                ckpt_path,
                {
                    "task": task.state_dict(),
                    "model": task.deployable().state_dict(),
                    "optimizers": [o.state_dict() for o in optimizers],
                    "hooks": {k: h.state_dict() for k, h in stateful.items()},
                    "step": at_step,
                    "best": best,
                    "history": history,
                    "rng": rng_state(),
                    "wall_s": time.time() - t0,
                },
            )
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
                batch = to_device(batch, fabric.device)
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
                    last = (
                        f"{ckpt_path} (step {load_checkpoint(ckpt_path)['step']})"
                        if ckpt_path.is_file()
                        else "none yet"
                    )
                    raise NonFiniteLossError(
                        f"Training stopped at step {step}: {e}. No update was applied. Last good "
                        f"checkpoint: {last}. Lower --optim.lr, set --train.grad_clip, or check "
                        f"the data; then rerun the same command to resume from it."
                    ) from None
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
    finally:
        for h in all_hooks:
            h.after_train(state_ref)

    diff = None
    if fabric.world_size > 1:
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
    )
