"""The Task: what one method computes per batch. The loop never branches on the method.

A Task is an ``nn.Module`` that owns the trainable model(s) and any frozen helpers (a teacher).
``forward(batch)`` returns a dict of losses with the key ``"loss"`` (what is minimised); every other
key is logged. Methods with unusual updates (several widths per batch, bilevel NAS steps) override
:meth:`Task.step`; outer loops (active-learning rounds, self-paced schedules) call ``fit`` again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn


class Task(nn.Module):
    """Base class. Subclasses implement :meth:`training_step` and :meth:`validation_step`."""

    def forward(self, batch: Any) -> dict[str, Tensor]:
        # Training goes through forward so that DDP (wrapped by Fabric) sees the call.
        return self.training_step(batch)

    def training_step(self, batch: Any) -> dict[str, Tensor]:
        raise NotImplementedError(f"{type(self).__name__} must implement training_step(batch)")

    def validation_step(self, batch: Any) -> dict[str, Tensor]:
        """Per-batch metrics, each a mean over the batch; the loop weights them by batch size."""
        raise NotImplementedError(f"{type(self).__name__} must implement validation_step(batch)")

    @torch.no_grad()
    def evaluate(self, loader: Iterable, *, fabric: Any) -> dict[str, float]:
        """Batch-size-weighted means of :meth:`validation_step` over ``loader``, summed over ranks.

        Override for metrics that are not means of per-batch means (e.g. mIoU from a confusion
        matrix: keep a torchmetrics metric and compute it at the end).
        """
        sums: dict[str, Tensor] = {}
        count = torch.zeros((), dtype=torch.float64)
        for batch in loader:
            batch = _to_device(batch, fabric.device)
            with fabric.autocast():
                out = self.validation_step(batch)
            n = self.batch_size(batch)
            count += n
            for k, v in out.items():
                v = torch.as_tensor(v, dtype=torch.float64).detach().cpu() * n
                sums[k] = sums.get(k, torch.zeros((), dtype=torch.float64)) + v
        keys = sorted(sums)
        packed = torch.stack([count] + [sums[k] for k in keys]).to(fabric.device)
        if fabric.world_size > 1:
            packed = fabric.all_reduce(packed, reduce_op="sum")
        packed = packed.cpu()
        return {k: float(packed[i + 1] / packed[0]) for i, k in enumerate(keys)}

    def trainable_parameters(self) -> Iterable[nn.Parameter]:
        """Parameters the default optimiser updates (frozen teachers excluded)."""
        return (p for p in self.parameters() if p.requires_grad)

    def step(
        self,
        batch: Any,
        *,
        forward: Any,
        optimizers: Sequence[torch.optim.Optimizer],
        fabric: Any,
        grad_clip: float = 0.0,
    ) -> dict[str, Tensor]:
        """One optimisation step; override for multi-forward or bilevel updates.

        Args:
            forward: the Fabric-wrapped task; call ``forward(batch)`` instead of ``self(batch)``
                so gradient synchronisation under DDP happens.
            optimizers: as given to ``fit`` (the default uses the first).
            fabric: the ``lightning.fabric.Fabric`` instance (``fabric.backward``).
        """
        opt = optimizers[0]
        opt.zero_grad(set_to_none=True)
        losses = forward(batch)
        check_finite(losses)
        fabric.backward(losses["loss"])
        if grad_clip > 0:
            fabric.clip_gradients(forward, opt, max_norm=grad_clip)
        opt.step()
        return losses

    def batch_size(self, batch: Any) -> int:
        """Number of samples in a batch (first tensor's first dim); used to weight metrics."""
        first = batch[0] if isinstance(batch, (tuple, list)) else batch
        if isinstance(first, dict):
            first = next(iter(first.values()))
        return int(first.shape[0])


def _to_device(batch: Any, device: torch.device) -> Any:
    if torch.is_tensor(batch):
        return batch.to(device)
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; raised before the bad update is applied."""


def check_finite(losses: dict[str, Tensor]) -> None:
    """Raise :class:`NonFiniteLossError` naming the loss terms that are NaN/inf."""
    bad = {
        k: float(v.detach())
        for k, v in losses.items()
        if torch.is_tensor(v) and v.numel() == 1 and not torch.isfinite(v.detach()).all()
    }
    if "loss" not in losses:
        raise KeyError("Task.training_step must return a dict with the key 'loss'.")
    if bad:
        raise NonFiniteLossError(f"non-finite loss terms {bad}")
