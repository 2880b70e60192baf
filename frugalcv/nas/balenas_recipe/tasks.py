"""The search Task of each gradient searcher, and the cost of one search step."""

from __future__ import annotations

import statistics
import time

import torch
from torch import Tensor, nn

from frugalcv.nas.balenas_recipe.config import (
    BAYESIAN_SEARCHERS,
    GRADIENT_SEARCHERS,
    SearchConfig,
)
from frugalcv.nas.nb201 import NB201Supernet
from frugalcv.nas.search import BaLeNASTask, DartsSearchTask

__all__ = ["make_search_task", "search_step_cost"]


# ----------------------------------------------------------------------------- search tasks
def make_search_task(
    s: SearchConfig, *, num_classes: int, in_channels: int, alpha_set_size: int
) -> tuple[DartsSearchTask, list[torch.optim.Optimizer]]:
    """The search Task of ``s.searcher`` on a fresh NB201 supernet, with its two optimizers.

    Args:
        alpha_set_size: images in the half that fits alpha (Vadam's N when
            ``s.train_set_size`` is 0).

    Returns:
        ``(task, [SGD on the weights, Adam or Vadam on alpha])``.
    """
    if s.searcher not in GRADIENT_SEARCHERS:
        raise ValueError(
            f"make_search_task builds the gradient searchers {GRADIENT_SEARCHERS}; "
            f"got {s.searcher!r} (random search trains stand-alone cells)."
        )
    supernet = NB201Supernet(
        channels=s.channels,
        num_cells=s.num_cells,
        num_classes=num_classes,
        in_channels=in_channels,
        track_running_stats=s.track_running_stats,
    )
    weights = dict(lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay, nesterov=s.nesterov)
    if s.searcher in BAYESIAN_SEARCHERS:
        task: DartsSearchTask = BaLeNASTask(supernet=supernet, order=s.balenas_order)
        optimizers = task.make_optimizers(
            **weights,
            arch_lr=s.arch_lr,
            arch_betas=tuple(s.arch_betas),
            prior_prec=s.prior_prec,
            prec_init=s.prec_init,
            train_set_size=s.train_set_size or alpha_set_size,
            num_samples=s.num_mc,
        )
    else:
        task = DartsSearchTask(
            supernet=supernet, order="first" if s.searcher == "darts1" else "second"
        )
        optimizers = task.make_optimizers(
            **weights,
            arch_lr=s.arch_lr,
            arch_betas=tuple(s.arch_betas),
            arch_weight_decay=s.arch_weight_decay,
        )
    return task, optimizers


# ----------------------------------------------------------------------------- cost
class _StepProbe(nn.Module):
    """``forward(x)`` runs one full search step (alpha step + weight step) on a fixed batch."""

    def __init__(self, task: DartsSearchTask, optimizers, batch) -> None:
        super().__init__()
        self.task = task
        self.optimizers = optimizers
        self.batch = batch

    def forward(self, x: Tensor) -> Tensor:
        with torch.enable_grad():
            losses = self.task.step(
                self.batch, forward=self.task, optimizers=self.optimizers, fabric=None
            )
        return losses["loss"].detach()


def search_step_cost(
    s: SearchConfig,
    batch: tuple[Tensor, Tensor, Tensor, Tensor],
    *,
    num_classes: int,
    alpha_set_size: int,
    steps: int = 10,
    device: str | torch.device = "cpu",
    memory: bool = True,
) -> dict[str, float]:
    """Median seconds of one search step and its peak memory, on a fresh supernet.

    After 2 warm-up steps (optimizer state allocated), ``steps`` steps are timed; the peak memory
    is :func:`frugalcv.core.measure.peak_memory` of one more step (its conventions: parameters,
    buffers and ``x_train`` resident, plus the peak of allocations during the step; optimizer
    state allocated before). The global RNG is left untouched.

    Returns:
        ``{"step_s": float, "peak_memory_bytes": int}`` (the latter only with ``memory``).
    """
    from frugalcv.core.measure import peak_memory

    device = torch.device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        task, optimizers = make_search_task(
            s,
            num_classes=num_classes,
            in_channels=batch[0].shape[1],
            alpha_set_size=alpha_set_size,
        )
        task.to(device).train()
        batch = tuple(t.to(device) for t in batch)
        probe = _StepProbe(task, optimizers, batch)
        times = []
        for i in range(steps + 2 if steps > 0 else 1):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            probe(batch[0])
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i >= 2:
                times.append(time.perf_counter() - t0)
        out: dict[str, float] = {"step_s": statistics.median(times)} if times else {}
        if memory:
            out["peak_memory_bytes"] = peak_memory(probe, batch[0], device=device, train=False)
    return out
