"""The NaN stop names a usable checkpoint and a way on (issue 7, case 3); Ctrl-C ends in one line.

Before the fix, ``--optim.lr=1e6 --train.ckpt_every=1`` saved a state with an infinite BatchNorm
running variance as the "last good checkpoint", and the advised lower ``--optim.lr`` was refused.
"""

import json
import re

import pytest
import torch
from typer.testing import CliRunner

from frugalcv.cli import app
from frugalcv.core.checkpoint import load_checkpoint
from frugalcv.core.config import OptimConfig, TrainConfig
from frugalcv.core.hooks import Hook
from frugalcv.core.loader import TensorLoader
from frugalcv.core.loop import RunInterrupted, fit, make_fabric
from frugalcv.testing import ToyTask, classify_cli, toy_data

pytestmark = pytest.mark.unit
runner = CliRunner()

BASE = classify_cli(max_steps=30, extra=("--train.eval_every=10",))


def _all_finite(state_dict: dict) -> bool:
    return all(
        bool(torch.isfinite(v).all())
        for v in state_dict.values()
        if torch.is_tensor(v) and v.is_floating_point()
    )


def test_nan_stop_at_lr_1e6_names_a_checkpoint_whose_parameters_and_buffers_are_finite(
    recipe_env, tmp_path
):
    out = tmp_path / "run"
    res = runner.invoke(
        app, [*BASE, "--optim.lr=1e6", "--train.ckpt_every=1", f"--train.out_dir={out}"]
    )
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    found = re.search(
        r"Last good checkpoint \(every parameter and buffer finite\): (\S+) \(step (\d+)\)", text
    )
    assert found, text
    path, step = found.group(1), int(found.group(2))
    assert path == str(out / "last.pt") and "--train.resume_from=" + path in text
    state = load_checkpoint(path)
    assert state["step"] == step >= 1
    assert _all_finite(state["task"]) and _all_finite(state["model"])  # BN buffers included
    # The same command with a lower lr in the same folder is another run: refused...
    res = runner.invoke(app, [*BASE, "--optim.lr=0.05", f"--train.out_dir={out}"])
    assert res.exit_code == 2 and "optim.lr" in res.output
    assert "--train.out_dir=<a new folder>" in text


def test_resume_from_the_named_checkpoint_with_changes_trains_to_the_end(recipe_env, tmp_path):
    # lr 0.05 for the first 9 steps, then x2e7 (a milestone at 0.2 epochs of 44 steps): the run
    # diverges after its step-7 checkpoint, which is the one a user can continue from.
    out, new = tmp_path / "run", tmp_path / "new"
    sched = ["--optim.warmup_steps=0", "--optim.schedule=multistep", "--optim.milestones=0.2"]
    res = runner.invoke(
        app,
        [*BASE, *sched, "--optim.gamma=2e7", "--train.ckpt_every=7", f"--train.out_dir={out}"],
    )
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    path = str(out / "last.pt")
    assert f"{path} (step 7)" in text and f"--train.resume_from={path}" in text
    state = load_checkpoint(path)
    cont = [
        *BASE,
        *sched,
        "--optim.gamma=0.1",
        "--train.ckpt_every=7",
        f"--train.resume_from={path}",
        f"--train.out_dir={new}",
    ]
    res = runner.invoke(app, cont)
    assert res.exit_code == 0, res.output
    summary = json.loads((new / "summary.json").read_text())
    assert summary["steps"] == 30 and summary["final"]["acc"] > 0.3  # 10 classes: chance 0.1
    record = summary["resumed_from"]
    assert record["path"] == path and record["fingerprint"] == state["fingerprint"]
    assert record["changed_keys"] == ["optim.gamma"] and record["optimizer_state"] == "loaded"
    cfg = json.loads((new / "config.json").read_text())
    assert cfg["_run"]["resumed_from"]["."] == record and cfg["train"]["resume_from"] == path
    metrics = [json.loads(line) for line in (new / "metrics.jsonl").read_text().splitlines()]
    assert min(m["step"] for m in metrics) > 7  # it continued from step 7; it did not restart
    # Rerunning the continuing command resumes the new folder (finished: nothing more to do).
    res = runner.invoke(app, cont)
    assert res.exit_code == 0 and "resumed" in res.output, res.output


class _CtrlC(Hook):
    def __init__(self, at: int) -> None:
        self.at = at

    def after_step(self, state) -> None:
        if state.step == self.at:
            raise KeyboardInterrupt


def _fit(out, *, hooks=()):
    torch.manual_seed(0)
    train = TrainConfig(
        max_steps=20, batch_size=32, ckpt_every=5, eval_every=10, progress=False, accelerator="cpu"
    )
    fabric = make_fabric(train)
    fabric.launch()
    return fit(
        ToyTask(),
        train_loader=TensorLoader(toy_data(256), batch_size=32, shuffle=True, drop_last=True),
        val_loader=TensorLoader(toy_data(64, seed=5), batch_size=32),
        train=train,
        optim=OptimConfig(lr=0.1, schedule="constant"),
        out_dir=out,
        fabric=fabric,
        hooks=hooks,
    )


def test_ctrl_c_ends_in_one_line_naming_the_step_and_the_checkpoint(one_thread, tmp_path):
    with pytest.raises(RunInterrupted) as info:
        _fit(tmp_path, hooks=[_CtrlC(at=7)])
    assert isinstance(info.value, KeyboardInterrupt)  # `except Exception` does not swallow it
    assert str(info.value) == (
        f"stopped at step 7/20; last checkpoint {tmp_path / 'last.pt'} (step 5); "
        "rerun the same command to resume"
    )
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 5
    assert not list(tmp_path.glob("*.tmp"))
    assert _fit(tmp_path).steps == 20  # the rerun resumes and finishes


def test_ctrl_c_before_any_checkpoint_says_so(one_thread, tmp_path):
    with pytest.raises(RunInterrupted, match=r"^stopped at step 3/20; no checkpoint yet; rerun"):
        _fit(tmp_path, hooks=[_CtrlC(at=3)])
