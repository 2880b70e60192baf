"""Devices and processes: the Fabric a run uses, its world size and the batch-scope rules.

Under torchrun the sizes come from the environment (:func:`world_size_of`);
``train.batch_scope`` says whether ``train.batch_size`` is per process or split over processes
(:func:`check_batch_scope`, :func:`batch_scope_note`). Re-exported by :mod:`frugalcv.core.loop`.
"""

from __future__ import annotations

import os

from frugalcv.core.config import ConfigError, TrainConfig


def world_size_of(train: TrainConfig) -> tuple[int, int]:
    """``(devices, num_nodes)`` a run will use: the config's, or torchrun's environment."""
    devices, num_nodes = train.devices, train.num_nodes
    if "LOCAL_WORLD_SIZE" in os.environ and "WORLD_SIZE" in os.environ:  # launched by torchrun
        devices = int(os.environ["LOCAL_WORLD_SIZE"])
        num_nodes = max(1, int(os.environ["WORLD_SIZE"]) // devices)
    return devices, num_nodes


def check_batch_scope(train: TrainConfig, world_size: int) -> None:
    """Raise ConfigError when ``batch_scope="global"`` cannot split the batch evenly."""
    if train.batch_scope == "global" and train.batch_size % world_size:
        raise ConfigError(
            f"train.batch_scope=global splits train.batch_size={train.batch_size} over "
            f"{world_size} processes, which needs a multiple of {world_size}: set "
            f"--train.batch_size to one (e.g. {world_size * max(1, train.batch_size // world_size)}"
            f")."
        )


def batch_scope_note(train: TrainConfig, world_size: int) -> str:
    """The warning a multi-process run with ``batch_scope="process"`` prints ("" if none)."""
    if world_size <= 1 or train.batch_scope != "process":
        return ""
    length = (
        f"an epoch takes 1/{world_size} the optimizer steps of one process"
        if train.max_steps == 0
        else f"each of the {train.max_steps} steps sees {world_size}x the samples of one process"
    )
    return (
        f"[frugalcv] warning: train.batch_size={train.batch_size} is per process "
        f"(train.batch_scope=process): {world_size} processes make a global batch of "
        f"{world_size * train.batch_size}, so {length}. Pass --train.batch_scope=global to "
        f"keep one process's batch and number of steps."
    )


def make_fabric(train: TrainConfig):
    """A ``lightning.fabric.Fabric`` from the train config; under torchrun, sizes come from env."""
    from lightning.fabric import Fabric

    devices, num_nodes = world_size_of(train)
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
