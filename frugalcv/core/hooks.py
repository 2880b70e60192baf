"""Loop hooks: four events, no method logic. Logging and progress live here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class Hook:
    """Override any of the four events; ``state`` is the loop's ``LoopState``.

    ``state.task`` and ``state.optimizers`` give access to what is trained. A hook that defines
    ``state_dict()`` and ``load_state_dict(d)`` has that state saved in ``last.pt`` and restored
    before ``before_train`` on resume (tensors, numbers, strings and containers of them only).
    """

    def before_train(self, state: Any) -> None: ...

    def after_step(self, state: Any) -> None: ...

    def after_eval(self, state: Any, metrics: dict[str, float]) -> None: ...

    def after_train(self, state: Any) -> None: ...


class JsonlLogger(Hook):
    """Append train losses (every ``every`` steps) and validation metrics to ``metrics.jsonl``.

    On resume, lines logged after the checkpoint's step are dropped so the log has no duplicates.
    """

    def __init__(self, path: str | Path, *, every: int = 20) -> None:
        self.path = Path(path)
        self.every = max(1, every)
        self._f = None

    def before_train(self, state: Any) -> None:
        if self.path.is_file():
            kept = []
            for line in self.path.read_text().splitlines():
                try:
                    if json.loads(line).get("step", 0) <= state.step:
                        kept.append(line)
                except json.JSONDecodeError:
                    continue  # a line cut by an interruption
            self.path.write_text("".join(k + "\n" for k in kept))
        self._f = self.path.open("a")

    def _write(self, rec: dict) -> None:
        assert self._f is not None
        self._f.write(json.dumps(rec) + "\n")
        self._f.flush()

    def after_step(self, state: Any) -> None:
        if state.step % self.every == 0 or state.step == state.total_steps:
            self._write(
                {
                    "step": state.step,
                    "split": "train",
                    "epoch": state.epoch,
                    "lr": state.lr,
                    **state.losses,
                }
            )

    def after_eval(self, state: Any, metrics: dict[str, float]) -> None:
        self._write({"split": "val", **metrics})

    def after_train(self, state: Any) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


class ProgressHook(Hook):
    """A rich progress bar with ETA, the current loss and the last validation metric."""

    def __init__(self, *, desc: str) -> None:
        self.desc = desc
        self.progress = None
        self.task_id = None
        self.last_val = ""

    def before_train(self, state: Any) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            transient=False,
        )
        self.progress.start()
        self.task_id = self.progress.add_task(
            self.desc, total=state.total_steps, completed=state.step, info=""
        )

    def after_step(self, state: Any) -> None:
        loss = state.losses.get("loss", float("nan"))
        self.progress.update(
            self.task_id, completed=state.step, info=f"loss {loss:.3f} {self.last_val}"
        )

    def after_eval(self, state: Any, metrics: dict[str, float]) -> None:
        shown = [f"{k} {v:.4f}" for k, v in metrics.items() if k != "step"][:3]
        self.last_val = "| val " + " ".join(shown)

    def after_train(self, state: Any) -> None:
        if self.progress is not None:
            self.progress.stop()


class EMAHook(Hook):
    """Exponential moving average of the deployable model's weights (timm ``ModelEmaV2`` rule).

    After every ``every``-th step, each floating-point parameter and buffer ``w`` of
    ``task.deployable()`` updates its shadow ``s <- decay * s + (1 - decay) * w``; integer buffers
    (BN's ``num_batches_tracked``) are copied. The shadow is saved in checkpoints, so a resumed
    run ends with the same average as an uninterrupted one. ``copy_to(model)`` loads it.
    """

    def __init__(self, *, decay: float = 0.999, every: int = 1) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1); got {decay}.")
        self.decay = decay
        self.every = max(1, every)
        self.shadow: dict[str, Any] | None = None

    def _model_state(self, state: Any) -> dict[str, Any]:
        return state.task.deployable().state_dict()

    def before_train(self, state: Any) -> None:
        if self.shadow is None:  # fresh run (a resumed one was given its saved shadow)
            self.shadow = {k: v.detach().clone() for k, v in self._model_state(state).items()}

    def after_step(self, state: Any) -> None:
        if state.step % self.every:
            return
        import torch

        with torch.no_grad():
            for k, v in self._model_state(state).items():
                s = self.shadow[k]
                if s.is_floating_point():
                    s.mul_(self.decay).add_(v.detach().to(s.dtype), alpha=1.0 - self.decay)
                else:
                    s.copy_(v)

    def copy_to(self, model: Any) -> Any:
        """Load the averaged weights into ``model`` (same architecture as the deployable one)."""
        if self.shadow is None:
            raise ValueError("EMAHook has no average yet: it fills during fit().")
        model.load_state_dict(self.shadow)
        return model

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "shadow": self.shadow or {}}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.shadow = {k: v.clone() for k, v in d["shadow"].items()} or None
