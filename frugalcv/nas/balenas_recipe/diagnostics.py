"""`SearchDiagnostics`: the per-epoch Hessian and skip-share record of a search, and its plot."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from frugalcv.core.hooks import Hook
from frugalcv.core.jsonio import write_json
from frugalcv.core.measure import module_device, to_module
from frugalcv.nas.diagnostics import arch_hessian_max_eigenvalue, skip_share

__all__ = ["SearchDiagnostics", "plot_diagnostics"]


class SearchDiagnostics(Hook):
    """Per-epoch stability record of a differentiable search, saved in checkpoints.

    At step 0 and every ``every`` epochs (and at the end) it records, for the supernet of
    ``state.task``: ``hessian`` = the dominant eigenvalue of d^2 L_val / d alpha^2 on a fixed
    validation batch (power iteration, :func:`arch_hessian_max_eigenvalue`, supernet in train
    mode as during search, BN statistics restored afterwards), ``arch`` = the derived cell,
    ``skip_share`` and, for a Vadam optimizer, ``sigma_mean`` / ``sigma_min`` of q(alpha). It
    also times the steps: ``step_s`` is the median wall time between consecutive steps, leaving
    out the step after each record or evaluation. Writes ``diagnostics.json`` (atomic) after each
    record and ``diagnostics.png`` at the end (files from rank 0 only).

    Args:
        x, y: the validation batch, ``(B, C, H, W)`` and ``(B,)``.
        every: epochs between records (0: only at steps 0 and the last).
        num_iters, tol: power-iteration limits.
    """

    def __init__(
        self, *, x: Tensor, y: Tensor, every: float = 1.0, num_iters: int = 20, tol: float = 1e-3
    ) -> None:
        self.x, self.y = x, y
        self.every = every
        self.num_iters, self.tol = num_iters, tol
        self.records: list[dict[str, Any]] = []
        self.step_times: list[float] = []
        self._last: float | None = None
        self._out: Path | None = None

    # --- state (checkpointed by the loop) ---
    def state_dict(self) -> dict[str, Any]:
        return {"records": self.records, "step_times": self.step_times}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.records = [dict(r) for r in d["records"]]
        self.step_times = [float(t) for t in d["step_times"]]

    # --- events ---
    def before_train(self, state: Any) -> None:
        self._out = Path(state.out_dir)
        self._last = None
        if state.step == 0 and not self.records:
            self._record(state)

    def after_step(self, state: Any) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.step_times.append(now - self._last)
        per = state.steps_per_epoch
        every_steps = max(1, round(self.every * per)) if self.every > 0 else 0
        due = state.step == state.total_steps or (every_steps and state.step % every_steps == 0)
        if due:
            self._record(state)
        # the next interval holds this record and possibly an evaluation: do not time it
        evaluated = state.step % per == 0
        self._last = None if (due or evaluated) else time.perf_counter()

    def after_train(self, state: Any) -> None:
        if state.fabric.is_global_zero and self.records:
            plot_diagnostics(self.records, Path(state.out_dir) / "diagnostics.png")

    # --- helpers ---
    def step_seconds(self) -> float | None:
        """Median seconds per search step (None before two steps were timed)."""
        return statistics.median(self.step_times) if self.step_times else None

    def _record(self, state: Any) -> None:
        # Every rank computes the record (no collectives; DDP replicas are identical), so every
        # rank's recipe sees the same diagnostics; rank 0 writes the file.
        supernet = state.task.supernet
        rec: dict[str, Any] = {
            "step": int(state.step),
            "epoch": round(state.step / state.steps_per_epoch, 4),
        }
        saved = {k: b.detach().clone() for k, b in supernet.named_buffers()}
        x, y = to_module(self.x, supernet), self.y.to(module_device(supernet))
        with torch.random.fork_rng(devices=[]):
            gen = torch.Generator().manual_seed(int(state.step))
            rec["hessian"] = arch_hessian_max_eigenvalue(
                supernet, x, y, num_iters=self.num_iters, tol=self.tol, generator=gen
            )
        with torch.no_grad():  # the extra forward passes must not move the BN statistics
            for k, b in supernet.named_buffers():
                b.copy_(saved[k])
        arch = supernet.derive()
        rec["arch"] = str(arch)
        rec["skip_share"] = skip_share(arch)
        for opt in state.optimizers:
            if callable(getattr(opt, "sigma", None)):
                sigma = torch.cat([s.flatten() for s in opt.sigma()])
                rec["sigma_mean"] = float(sigma.mean())
                rec["sigma_min"] = float(sigma.min())
        self.records.append(rec)
        if state.fabric.is_global_zero:
            write_json(self._out / "diagnostics.json", {"records": self.records})


def plot_diagnostics(records: Sequence[dict], path: Path) -> None:
    """PNG of the Hessian eigenvalue and the skip share per epoch (matplotlib Agg, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 3.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    with_h = [r for r in records if "hessian" in r]
    ax1.plot([r["epoch"] for r in with_h], [r["hessian"] for r in with_h], marker="o")
    ax1.set(xlabel="epoch", ylabel="dominant eigenvalue", title="Hessian of L_val w.r.t. alpha")
    ax2.plot([r["epoch"] for r in records], [r["skip_share"] for r in records], marker="o")
    ax2.set(xlabel="epoch", ylabel="share of edges", title="skip_connect in the derived cell")
    ax2.set_ylim(-0.05, 1.05)
    fig.savefig(path, dpi=110)
