"""A start that fails leaves nothing that blocks the corrected command (issue 7, case 4), and the
OS faults of a run folder end in one line naming the folder and the fix (case 5)."""

import dataclasses
import errno
import json

import pytest
import torch
from typer.testing import CliRunner

from frugalcv.cli import app
from frugalcv.core.checkpoint import CheckpointWriteError, load_checkpoint, save_checkpoint
from frugalcv.core.config import ConfigError
from frugalcv.testing import classify_cli

pytestmark = pytest.mark.unit
runner = CliRunner()

BASE = classify_cli(max_steps=4)


def _run(*args):
    return runner.invoke(app, [*BASE, *args])


def test_an_invalid_config_built_in_python_leaves_no_trace(recipe_env, tmp_path):
    from frugalcv.classify import ModelConfig, run, tiny

    cfg = tiny()
    out = tmp_path / "run"
    cfg = dataclasses.replace(
        cfg,
        model=ModelConfig(name="tiny_cnn"),
        train=dataclasses.replace(cfg.train, epochs=-3, out_dir=str(out), progress=False),
    )
    with pytest.raises(ConfigError, match="train.epochs must be a finite number > 0"):
        run(cfg)  # before the fix: config.json written, 0 steps, an untrained model's summary
    assert not out.exists()


def test_a_row_name_typo_fails_before_the_teacher_trains(recipe_env, tmp_path):
    out = tmp_path / "ickd"
    res = runner.invoke(
        app, ["run", "ickd", "--distill.rows=student,kdd", f"--train.out_dir={out}"]
    )
    assert res.exit_code == 2 and "Did you mean 'kd'" in res.output
    assert not out.exists()


def test_a_failed_start_does_not_block_the_corrected_command(recipe_env, tmp_path):
    out = tmp_path / "run"
    res = _run("--data.name=mnist", f"--data.root={tmp_path / 'nope'}", f"--train.out_dir={out}")
    assert res.exit_code == 2 and "MNIST/raw" in res.output
    res = _run(f"--train.out_dir={out}")  # another config, same folder: free, nothing ran there
    assert res.exit_code == 0, res.output
    assert json.loads((out / "config.json").read_text())["data"]["name"] == "digits"
    assert load_checkpoint(out / "last.pt")["step"] == 4


def test_a_nan_before_the_first_checkpoint_does_not_block_the_corrected_command(
    recipe_env, tmp_path
):
    out = tmp_path / "run"
    res = _run("--optim.lr=1e6", "--train.max_steps=40", f"--train.out_dir={out}")
    assert res.exit_code == 2 and "No checkpoint was written yet" in res.output, res.output
    assert not (out / "last.pt").exists()
    res = _run("--optim.lr=0.05", "--train.max_steps=40", f"--train.out_dir={out}")
    assert res.exit_code == 0, res.output
    assert json.loads((out / "summary.json").read_text())["steps"] == 40


def test_an_out_dir_that_is_a_file_is_one_clear_line(recipe_env, tmp_path):
    target = tmp_path / "file"
    target.write_text("not a folder")
    res = _run(f"--train.out_dir={target}")
    assert res.exit_code == 2, res.output
    assert "is a file, not a folder" in res.output and "Traceback" not in res.output
    assert target.read_text() == "not a folder"


def test_an_unwritable_run_folder_is_one_clear_line(recipe_env, tmp_path, monkeypatch):
    import frugalcv.core.recipe as recipe

    def refuse(path, data, **kw):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(recipe, "write_json", refuse)
    res = _run(f"--train.out_dir={tmp_path / 'run'}")
    assert res.exit_code == 2, res.output
    assert "Cannot write config.json" in res.output and "writable --train.out_dir" in res.output


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        RuntimeError(
            "[enforce fail at inline_container.cc:626] . PytorchStreamWriter failed "
            "writing file data/0: file write failed"
        ),
        KeyboardInterrupt(),
    ],
    ids=["oserror", "torch-writer", "ctrl-c"],
)
def test_a_failed_checkpoint_write_keeps_the_old_one_and_leaves_no_tmp(
    tmp_path, monkeypatch, error
):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"step": 5, "w": torch.ones(3)})
    before = path.read_bytes()
    real_save = torch.save

    def half_write(obj, f, *a, **kw):
        real_save({"partial": torch.zeros(1000)}, f)  # bytes land in the .tmp file, then fail
        raise error

    monkeypatch.setattr(torch, "save", half_write)
    expected = KeyboardInterrupt if isinstance(error, KeyboardInterrupt) else CheckpointWriteError
    with pytest.raises(expected) as info:
        save_checkpoint(path, {"step": 6, "w": torch.zeros(3)})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no last.pt.tmp
    if expected is CheckpointWriteError:
        msg = str(info.value)
        assert "\n" not in msg and str(tmp_path) in msg and "free disk space" in msg


def test_a_full_disk_during_training_is_one_line_through_the_cli(recipe_env, tmp_path, monkeypatch):
    def full(obj, f, *a, **kw):
        with open(f, "wb") as fh:
            fh.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    out = tmp_path / "run"
    res = _run(f"--train.out_dir={out}")
    assert res.exit_code == 2, res.output
    assert "No space left on device" in res.output and "free disk space" in res.output
    assert not list(out.glob("*.tmp")) and not (out / "last.pt").exists()
