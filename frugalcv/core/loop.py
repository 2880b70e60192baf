"""The one training loop. Devices, mixed precision and DDP come from Lightning Fabric.

``fit`` runs ``task.step`` for a number of optimizer steps, sets the learning rate per step,
evaluates and checkpoints on a step schedule, logs to ``metrics.jsonl`` and shows a rich progress
bar. A run resumed from ``last.pt`` continues to the same result as an uninterrupted run: the data
order depends only on (seed, epoch), and the checkpoint holds the RNG state.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from frugalcv.core.checkpoint import load_checkpoint, load_state_dict_checked, save_checkpoint
from frugalcv.core.config import OptimConfig, TrainConfig
from frugalcv.core.hooks import Hook, JsonlLogger, ProgressHook
from frugalcv.core.task import NonFiniteLossError, Task, _to_device


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


def seed_all(seed: int) -> None:
    """Seed python, numpy and torch (every process gets the same seed; DDP syncs weights)."""
    import numpy as np

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
    step: int
    total_steps: int
    steps_per_epoch: int
    epoch: int
    fabric: Any
    out_dir: Path
    losses: dict[str, float] = field(default_factory=dict)
    lr: float = 0.0


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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
    hooks: Sequence[Hook] = (),
    desc: str = "",
) -> FitResult:
    """Train ``task`` and return final/best validation metrics.

    Args:
        train_loader: re-iterable batches; a ``TensorLoader`` is sharded over DDP ranks here,
            any other iterable must already yield this process's share.
        val_loader: batches for ``task.evaluate`` (None: no evaluation).
        train, optim: the shared config parts (length, schedule, checkpoints, devices).
        out_dir: folder for ``last.pt`` and ``metrics.jsonl``; resumed from when it holds a
            checkpoint and ``train.resume`` is true.
        fabric: a launched ``lightning.fabric.Fabric`` (``make_fabric(train)`` then ``launch()``).
        optimizers: defaults to one built from ``optim`` over ``task.trainable_parameters()``.
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

    if optimizers is None:
        optimizers = [make_optimizer(task.trainable_parameters(), optim)]
    wrapped, *optimizers = fabric.setup(task, *optimizers)
    for opt in optimizers:
        for g in opt.param_groups:
            g.setdefault("initial_lr", g["lr"])

    ckpt_path = out_dir / "last.pt"
    step, best, history = 0, {}, []
    if train.resume and ckpt_path.is_file():
        state = load_checkpoint(ckpt_path)
        load_state_dict_checked(task, state["task"], source=str(ckpt_path))
        for opt, sd in zip(optimizers, state["optimizers"], strict=True):
            opt.load_state_dict(sd)
        step, best, history = int(state["step"]), dict(state["best"]), list(state["history"])
        _set_rng_state(state["rng"])
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
    )
    all_hooks: list[Hook] = []
    if fabric.is_global_zero:
        all_hooks.append(JsonlLogger(out_dir / "metrics.jsonl", every=train.log_every))
        if train.progress:
            all_hooks.append(ProgressHook(desc=desc or out_dir.name))
    all_hooks.extend(hooks)
    for h in all_hooks:
        h.before_train(state_ref)

    def save(at_step: int) -> None:
        if fabric.is_global_zero:
            save_checkpoint(
                ckpt_path,
                {
                    "task": task.state_dict(),
                    "optimizers": [o.state_dict() for o in optimizers],
                    "step": at_step,
                    "best": best,
                    "history": history,
                    "rng": _rng_state(),
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
        metrics = {**metrics, "step": at_step}
        history.append(metrics)
        key, mode = train.monitor, train.monitor_mode
        if key in metrics and (
            not best or (metrics[key] > best[key] if mode == "max" else metrics[key] < best[key])
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
            for i, batch in enumerate(train_loader):
                if i < skip:
                    continue  # resumed mid-epoch: these batches were already seen
                if step >= total:
                    break
                factor = lr_factor(
                    step, optim=optim, total_steps=total, steps_per_epoch=steps_per_epoch
                )
                for opt in optimizers:
                    for g in opt.param_groups:
                        g["lr"] = g["initial_lr"] * factor
                batch = _to_device(batch, fabric.device)
                try:
                    losses = task.step(
                        batch,
                        forward=wrapped,
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


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON atomically (temporary file then rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
