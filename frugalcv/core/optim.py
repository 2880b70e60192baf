"""Optimizers and learning-rate schedules built from an ``OptimConfig``.

:func:`make_optimizer` (SGD, Adam, AdamW over the trainable parameters) and the per-step lr
multiplier :func:`lr_factor` (warmup, then multistep, cosine or constant), wrapped as a
:data:`Schedule` for ``fit(schedules=)`` by :func:`make_schedule`. Re-exported by
:mod:`frugalcv.core.loop`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable

import torch
from torch import nn

from frugalcv.core.config import OptimConfig

# A learning-rate schedule: (step, total_steps, steps_per_epoch) -> multiplier of the base lr.
Schedule = Callable[[int, int, int], float]


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
