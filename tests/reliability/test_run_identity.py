"""Run identity (issue 7, cases 1 and 2): a resumed run is always the same run.

The identity is the resolved config (runtime-only keys aside), the world size and the data
(source and fingerprints of what was loaded); its sha256 is stored in config.json (config part),
in every checkpoint and in every summary, and a folder or checkpoint of another run is refused
before any work, with the differing keys named.
"""

import json
import struct

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from frugalcv.cli import app
from frugalcv.core.checkpoint import load_checkpoint
from frugalcv.testing import classify_cli

pytestmark = pytest.mark.unit
runner = CliRunner()

BASE = classify_cli(max_steps=6)


def _run(*args, env=None):
    return runner.invoke(app, [*BASE, *args], env=env)


def test_identity_is_stored_in_config_checkpoint_and_summary_and_replay_works(recipe_env, tmp_path):
    out = tmp_path / "run"
    res = _run(f"--train.out_dir={out}")
    assert res.exit_code == 0, res.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["_run"]["world_size"] == 1 and len(cfg["_run"]["config_fingerprint"]) == 64
    ckpt = load_checkpoint(out / "last.pt")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fingerprint"] == ckpt["fingerprint"] and len(ckpt["fingerprint"]) == 64
    ident = ckpt["identity"]
    assert ident["world_size"] == 1 and ident["train.devices"] == 1
    assert ident["data.source"] == "sklearn load_digits" or ident["data.source"] == ""
    assert len(ident["data.train"]) == 16 and "train.out_dir" not in ident
    # config.json replays (its "_run" block is not a config key), and the same command resumes.
    res = runner.invoke(app, ["run", "classify", "--config", str(out / "config.json")])
    assert res.exit_code == 0 and "resumed" in res.output, res.output
    res = _run(f"--train.out_dir={out}", "--train.log_every=3")  # a runtime-only key may change
    assert res.exit_code == 0 and "resumed" in res.output, res.output


def test_another_world_size_is_refused_before_any_work(recipe_env, tmp_path):
    out = tmp_path / "run"
    assert _run(f"--train.out_dir={out}").exit_code == 0
    before = (out / "last.pt").read_bytes()
    res = _run(f"--train.out_dir={out}", "--train.devices=2")
    assert res.exit_code == 2, res.output
    assert "train.devices" in res.output and "world_size (1 -> 2)" in res.output
    assert "--train.out_dir" in res.output and "--train.overwrite=true" in res.output
    assert (out / "last.pt").read_bytes() == before
    assert json.loads((out / "summary.json").read_text())["world_size"] == 1


def _write_mnist(root, shift: int) -> None:
    """A 40/20-image MNIST in idx format: class c is a vertical bar at column 4 + 2c + shift."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 40), ("t10k", 20)):
        labels = np.arange(n, dtype=np.uint8) % 10
        x = np.zeros((n, 28, 28), dtype=np.uint8)
        for i, c in enumerate(labels):
            x[i, 6:22, 4 + 2 * int(c) + shift] = 255
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 2051, n, 28, 28) + x.tobytes()
        )
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 2049, n) + labels.tobytes()
        )


def test_the_same_command_on_other_data_is_refused(recipe_env, tmp_path):
    # Issue case 1b: FRUGALCV_DATA is not in the config, so only the data fingerprint tells the
    # two runs apart; before the fix the second command resumed and trained on the other data.
    data_a, data_b = tmp_path / "a", tmp_path / "b"
    _write_mnist(data_a, shift=0)
    _write_mnist(data_b, shift=1)
    out = tmp_path / "run"
    args = ["--data.name=mnist", "--train.batch_size=8", f"--train.out_dir={out}"]
    res = _run(*args, env={"FRUGALCV_DATA": str(data_a)})
    assert res.exit_code == 0, res.output
    summary = (out / "summary.json").read_text()
    res = _run(*args, "--train.max_steps=9", env={"FRUGALCV_DATA": str(data_b)})
    assert res.exit_code == 2, res.output
    assert "train.max_steps" in res.output  # the config check comes first, before data loads
    res = _run(*args, env={"FRUGALCV_DATA": str(data_b)})
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert "holds a checkpoint of another run" in text and "data.train" in text
    assert "data.val" in text and "--train.overwrite=true" in text
    assert (out / "summary.json").read_text() == summary  # nothing trained, nothing written
    # The named fix works: the old run moves aside (nothing deleted), the new one trains.
    res = _run(*args, "--train.overwrite=true", env={"FRUGALCV_DATA": str(data_b)})
    assert res.exit_code == 0, res.output
    (old,) = tmp_path.glob("run.old-*")
    assert json.loads((old / "summary.json").read_text()) == json.loads(summary)
    new = load_checkpoint(out / "last.pt")
    assert new["fingerprint"] != load_checkpoint(old / "last.pt")["fingerprint"]


def test_a_stage_folder_of_another_run_is_never_resumed_or_overwritten(recipe_env, tmp_path):
    # Issue case 2: `run classify --train.out_dir=<an ickd run>/teacher` resumed the teacher.
    ickd = tmp_path / "ickd"
    res = runner.invoke(
        app,
        [
            "run",
            "ickd",
            "--data.name=digits",
            "--distill.teacher=tiny_cnn",
            "--distill.student=tiny_cnn",
            "--distill.teacher_only=true",
            "--data.num_train=0",
            "--data.num_test=0",
            "--train.max_steps=4",
            "--train.batch_size=32",
            "--train.progress=false",
            "--train.accelerator=cpu",
            f"--train.out_dir={ickd}",
        ],
    )
    assert res.exit_code == 0, res.output
    before = {p.name: p.read_bytes() for p in (ickd / "teacher").iterdir()}
    res = _run(f"--train.out_dir={ickd / 'teacher'}")
    assert res.exit_code == 2, res.output
    assert "in use" in res.output and "no config.json" in " ".join(res.output.split())
    assert {p.name: p.read_bytes() for p in (ickd / "teacher").iterdir()} == before


def test_a_checkpoint_of_another_run_or_without_fingerprint_is_refused(recipe_env, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert _run(f"--train.out_dir={a}").exit_code == 0
    assert _run(f"--train.out_dir={b}", "--train.seed=1").exit_code == 0
    (a / "last.pt").write_bytes((b / "last.pt").read_bytes())  # same config.json, other run
    res = _run(f"--train.out_dir={a}")
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert "another run" in text and "train.seed: 1 -> 0" in text
    # A checkpoint without a fingerprint (an older frugalcv, or written outside a recipe).
    state = load_checkpoint(b / "last.pt")
    for key in ("fingerprint", "identity", "stage"):
        state.pop(key)
    torch.save(state, b / "last.pt")
    res = _run(f"--train.out_dir={b}", "--train.seed=1")
    assert res.exit_code == 2 and "no run fingerprint" in " ".join(res.output.split())
