"""The Task: what one method computes per batch. The loop never branches on the method.

A Task is an ``nn.Module`` that owns the trainable model(s) and any frozen helpers (a teacher).
``forward(batch)`` returns a dict of losses with the key ``"loss"`` (what is minimised); every other
key is logged. Methods with unusual updates (several widths per batch, bilevel NAS steps) override
:meth:`Task.step`; outer loops (active-learning rounds, self-paced schedules) call ``fit`` again.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn


class Task(nn.Module):
    """Base class. Subclasses implement :meth:`training_step` and :meth:`validation_step`.

    Class attributes a subclass may set:
        monitor: ``(metric, "max" | "min")``, what "best" means for this task (a key that
            :meth:`evaluate` returns). ``train.monitor`` overrides it; a key the task never
            reports is an error at the first evaluation.
        external: names of frozen submodules whose weights come from elsewhere (a distillation
            teacher loaded from its own checkpoint). Checkpoints leave their weights out (a
            student's last.pt stays small enough to move between machines) and keep a sha256 of
            them instead: resuming under other weights is refused.
    """

    monitor: tuple[str, str] = ("loss", "min")
    external: tuple[str, ...] = ()

    def deployable(self) -> nn.Module:
        """The model a user deploys (saved under ``"model"`` in every checkpoint).

        Default: the attribute ``model`` when the task has one, else the task itself. Tasks that
        train a student under a teacher return the student.
        """
        model = getattr(self, "model", None)
        return model if isinstance(model, nn.Module) else self

    def forward(self, batch: Any) -> dict[str, Tensor]:
        # Training goes through forward so that DDP (wrapped by Fabric) sees the call.
        return self.training_step(batch)

    def training_step(self, batch: Any) -> dict[str, Tensor]:
        raise NotImplementedError(f"{type(self).__name__} must implement training_step(batch)")

    def validation_step(self, batch: Any) -> dict[str, Tensor]:
        """Per-batch metrics, each a mean over the batch; the loop weights them by batch size."""
        raise NotImplementedError(f"{type(self).__name__} must implement validation_step(batch)")

    def eval_metrics(self) -> dict[str, Any] | None:
        """Metrics accumulated over the whole evaluation set (torchmetrics objects), or None.

        Return fresh metric objects (e.g. ``{"miou": MulticlassJaccardIndex(...)}``) for metrics
        that are not means of per-batch means (mIoU from a confusion matrix, mAP); then
        :meth:`update_eval_metrics` feeds them each batch and :meth:`evaluate` returns their
        ``compute()``, synchronised across processes by torchmetrics.
        """
        return None

    def update_eval_metrics(self, metrics: dict[str, Any], batch: Any) -> None:
        """Update the objects of :meth:`eval_metrics` with one batch."""
        raise NotImplementedError(
            f"{type(self).__name__}.eval_metrics returns metrics: implement update_eval_metrics"
        )

    @torch.no_grad()
    def evaluate(self, loader: Iterable, *, fabric: Any) -> dict[str, float]:
        """Evaluation metrics over ``loader``, combined over every process.

        Either the batch-size-weighted means of :meth:`validation_step` (summed over ranks), or,
        when :meth:`eval_metrics` returns metric objects, their ``compute()`` at the end.
        """
        metrics = self.eval_metrics()
        if metrics is not None:
            metrics = {k: m.to(fabric.device) for k, m in metrics.items()}
            for batch in loader:
                batch = fabric_batch(batch, fabric)
                with fabric.autocast():
                    self.update_eval_metrics(metrics, batch)
            return {k: float(m.compute()) for k, m in metrics.items()}
        sums: dict[str, Tensor] = {}
        count = torch.zeros((), dtype=torch.float64)
        for batch in loader:
            batch = fabric_batch(batch, fabric)
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
        check_finite(losses, fabric=fabric)
        fabric.backward(losses["loss"])
        if grad_clip > 0:
            clip_gradients(fabric, forward, opt, max_norm=grad_clip)
        opt.step()
        return losses

    def batch_size(self, batch: Any) -> int:
        """Number of samples in a batch, used to weight metrics.

        The first element of a tuple batch: a tensor's first dimension, or the length of a list
        (variable-size images); a dict batch counts its first value.
        """
        first = batch[0] if isinstance(batch, tuple) else batch
        if isinstance(first, dict):
            first = next(iter(first.values()))
        if isinstance(first, list):
            return len(first)
        return int(first.shape[0])


def accumulate_pass(
    forward: Any, batch: Any, *, fabric: Any, last: bool, **kwargs: Any
) -> dict[str, Tensor]:
    """One of several forward/backward passes that share one optimizer step.

    For ``Task.step`` overrides that run the model several times per batch (the sandwich rule's
    widths, several channel configurations): ``forward(batch, **kwargs)`` goes through the
    Fabric-wrapped task, its losses are checked (agreed across ranks), and ``loss`` is
    backpropagated, accumulating into ``.grad``. Under DDP the gradient all-reduce is skipped
    (``fabric.no_backward_sync``) except for the ``last`` pass. ``fabric=None`` runs plain torch.
    """
    multi = fabric is not None and getattr(fabric, "world_size", 1) > 1
    sync = fabric.no_backward_sync(forward, enabled=not last) if multi else contextlib.nullcontext()
    with sync:
        out = forward(batch, **kwargs)
        check_finite(out, fabric=fabric)
        if fabric is None:
            out["loss"].backward()
        else:
            fabric.backward(out["loss"])
    return out


def clip_and_step(
    optimizer: torch.optim.Optimizer,
    *,
    forward: Any,
    fabric: Any,
    grad_clip: float,
    parameters: Iterable[nn.Parameter],
) -> None:
    """Clip the accumulated gradients to ``grad_clip`` (0 = off), then step ``optimizer``.

    ``parameters`` are clipped with torch when ``fabric`` is None; Fabric clips the optimizer's.
    """
    if grad_clip > 0:
        if fabric is None:
            norm = torch.nn.utils.clip_grad_norm_(list(parameters), grad_clip)
            if not torch.isfinite(norm):
                raise NonFiniteLossError(_NONFINITE_GRAD.format(norm=float(norm)))
        else:
            clip_gradients(fabric, forward, optimizer, max_norm=grad_clip)
    optimizer.step()


_NONFINITE_GRAD = (
    "the gradient norm is {norm} (non-finite) although the loss was finite: the update was "
    "skipped; lower --optim.lr or set a smaller --train.grad_clip"
)


def clip_gradients(fabric: Any, forward: Any, optimizer: Any, *, max_norm: float) -> None:
    """``fabric.clip_gradients``, with a non-finite gradient norm raised as
    :class:`NonFiniteLossError` (the loop then stops with its checkpoint advice) rather than
    torch's RuntimeError."""
    try:
        fabric.clip_gradients(forward, optimizer, max_norm=max_norm)
    except RuntimeError as e:
        if "non-finite" not in str(e):
            raise
        raise NonFiniteLossError(_NONFINITE_GRAD.format(norm="nan or inf")) from None


def to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor in a nested tuple/list/dict batch to ``device``."""
    if torch.is_tensor(batch):
        return batch.to(device)
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def fabric_batch(batch: Any, fabric: Any) -> Any:
    """A batch on Fabric's device, its floating tensors in the run's precision (``16-true``,
    ``bf16-true``, ``64-true`` convert them; the mixed precisions leave them as they are)."""
    return fabric.strategy.precision.convert_input(to_device(batch, fabric.device))


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; raised before the bad update is applied."""


def check_finite(losses: dict[str, Tensor], *, fabric: Any = None) -> None:
    """Raise :class:`NonFiniteLossError` naming the loss terms that are NaN/inf.

    With a multi-process ``fabric`` the verdict is agreed across ranks (a max all-reduce of a
    flag) before anyone calls backward, so a NaN on one shard stops every rank with the same
    error instead of leaving the others waiting in the gradient all-reduce.
    """
    if "loss" not in losses:
        raise KeyError("Task.training_step must return a dict with the key 'loss'.")
    bad = {
        k: float(v.detach())
        for k, v in losses.items()
        if torch.is_tensor(v) and v.numel() == 1 and not torch.isfinite(v.detach()).all()
    }
    if fabric is not None and fabric.world_size > 1:
        flag = torch.tensor(1.0 if bad else 0.0, device=fabric.device)
        if float(fabric.all_reduce(flag, reduce_op="max")) > 0 and not bad:
            raise NonFiniteLossError("non-finite loss on another process (this one was finite)")
    if bad:
        raise NonFiniteLossError(f"non-finite loss terms {bad}")


def external_state(task: Task) -> tuple[dict[str, Tensor], str]:
    """``(state without the external submodules, sha256 of theirs)``; ``""`` when none."""
    prefixes = tuple(f"{name}." for name in task.external)
    state = task.state_dict()
    if not prefixes:
        return state, ""
    digest = hashlib.sha256()
    own = {}
    for key, value in state.items():
        if key.startswith(prefixes):
            digest.update(key.encode())
            flat = value.detach().cpu().contiguous().reshape(-1)
            digest.update(flat.view(torch.uint8).numpy().tobytes())
        else:
            own[key] = value
    return own, digest.hexdigest()
