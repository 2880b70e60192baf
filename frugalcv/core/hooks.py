"""Loop hooks: four events, no method logic. Logging and progress live here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class Hook:
    """Override any of the four events; ``state`` is the loop's ``LoopState``."""

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
