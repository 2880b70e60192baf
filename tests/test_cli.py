"""The command line: listing, config display and replay, clear errors, and the DDP spawn path."""

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from frugalcv.cli import BENCHMARKS, RECIPES, app

pytestmark = pytest.mark.unit
runner = CliRunner()


def test_list_names_every_recipe_and_benchmark():
    res = runner.invoke(app, ["list"])
    assert res.exit_code == 0, res.output
    for name in [*RECIPES, *BENCHMARKS]:
        assert name in res.output


def test_show_config_applies_overrides():
    res = runner.invoke(
        app,
        [
            "run",
            "ickd",
            "--preset",
            "tiny",
            "--show-config",
            "--distill.ickd=4",
            "--train.epochs",
            "2",
        ],
    )
    assert res.exit_code == 0, res.output
    cfg = json.loads(res.output[res.output.index("{") :])
    assert cfg["distill"]["ickd"] == 4.0 and cfg["train"]["epochs"] == 2.0


def test_unknown_key_recipe_and_preset_give_clear_errors():
    res = runner.invoke(app, ["run", "classify", "--optim.lrr=0.1"])
    assert res.exit_code == 2 and "Did you mean 'optim.lr'" in res.output
    res = runner.invoke(app, ["run", "clasify"])
    assert res.exit_code != 0 and "classify" in res.output
    res = runner.invoke(app, ["run", "classify", "--preset", "huge"])
    assert res.exit_code != 0 and "tiny" in res.output


def test_config_replay(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"optim": {"lr": 0.123}}))
    res = runner.invoke(
        app, ["run", "classify", "--config", str(tmp_path / "c.json"), "--show-config"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output[res.output.index("{") :])["optim"]["lr"] == 0.123


def test_missing_data_folder_says_where_to_put_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "FRUGALCV_DATA"}
    res = runner.invoke(
        app,
        [
            "run",
            "classify",
            "--data.name=mnist",
            f"--data.root={tmp_path / 'nope'}",
            f"--train.out_dir={tmp_path / 'run'}",
        ],
        env=env,
    )
    assert res.exit_code == 2
    assert "MNIST/raw" in res.output


def test_cli_spawns_two_ddp_processes_with_identical_replicas(tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FRUGALCV_CACHE": str(tmp_path / "cache")}
    cmd = [
        sys.executable,
        "-m",
        "frugalcv",
        "run",
        "classify",
        "--data.name=digits",
        "--model.name=tiny_cnn",
        "--train.devices=2",
        "--train.accelerator=cpu",
        "--train.max_steps=12",
        "--train.batch_size=32",
        "--train.progress=false",
        f"--train.out_dir={out}",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    s = json.loads((out / "summary.json").read_text())
    assert s["world_size"] == 2 and s["replica_max_abs_diff"] == 0.0 and s["steps"] == 12


def test_report_command_and_the_run_all_report_step(tmp_path):
    from frugalcv.cli import write_report

    res = runner.invoke(
        app, ["report", "--runs", str(tmp_path / "none"), "--out", str(tmp_path / "rep")]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "rep" / "index.html").is_file()
    # `run all` calls this helper directly (not the typer command, whose defaults are objects).
    index = write_report(results=None, runs=tmp_path / "none", out=tmp_path / "rep2")
    assert index.is_file() and (tmp_path / "rep2" / "report.md").read_text().startswith("#")
