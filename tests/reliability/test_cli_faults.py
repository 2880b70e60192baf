"""Every ordinary fault ends in one line naming the fix, a set exit code and no traceback
(issue 7, part 5): folders that cannot be written, a full disk, labels out of range, bad
numbers and lists, missing data, Ctrl-C. Only a bug keeps its traceback.

Unwritable and full folders are simulated by monkeypatching the OS calls for one folder (the
tests run as root in CI, where a read-only mode bit stops nothing). Runs are tiny: 64 sklearn
digits, one epoch of tiny_cnn (2 steps).
"""

import errno
import os
import pathlib
import struct

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from frugalcv import classify
from frugalcv.cli import app

pytestmark = pytest.mark.unit
runner = CliRunner()

TINY = [
    "run",
    "classify",
    "--preset",
    "tiny",
    "--data.name=digits",
    "--data.num_train=64",
    "--data.num_test=32",
    "--train.epochs=1",
    "--train.batch_size=32",
    "--model.name=tiny_cnn",
    "--train.progress=false",
]


@pytest.fixture(autouse=True)
def env(one_thread, monkeypatch, tmp_path):
    monkeypatch.setenv("FRUGALCV_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FRUGALCV_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("FRUGALCV_DATA", raising=False)
    monkeypatch.chdir(tmp_path)  # a default folder (runs/, benchmarks/results) stays in tmp_path


def error_line(res, code: int, *needles: str, prefix: str = "error:") -> str:
    """The exit code is `code`, the run ended by a clean exit (no exception escaped), and the
    output holds exactly one `prefix` line, which contains every needle."""
    assert res.exit_code == code, res.output
    assert isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith(prefix)]
    assert len(lines) == 1, res.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    print(lines[0])
    return lines[0]


def files_under(path: pathlib.Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


# ---------------------------------------------------------------------------------------------
# folders: read-only, a file in the way, a full disk


def deny_writes_under(monkeypatch, folder: pathlib.Path, err: int) -> None:
    """Make creating folders and files under `folder` fail with errno `err`, as a read-only
    mount (EROFS), a folder without write permission (EACCES) or a full disk (ENOSPC) would."""
    real_mkdir, real_open = os.mkdir, os.open
    prefix = str(folder)

    def refuse(path) -> None:
        if os.fspath(path).startswith(prefix):
            raise OSError(err, os.strerror(err), os.fspath(path))

    def mkdir(path, *args, **kwargs):
        refuse(path)
        return real_mkdir(path, *args, **kwargs)

    def open_(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", open_)


@pytest.mark.parametrize("err", [errno.EACCES, errno.EROFS])
def test_read_only_out_dir(tmp_path, monkeypatch, err):
    ro = tmp_path / "ro"
    ro.mkdir()
    deny_writes_under(monkeypatch, ro, err)
    res = runner.invoke(app, [*TINY, f"--train.out_dir={ro / 'run'}"])
    error_line(res, 2, str(ro / "run"), "--train.out_dir")
    assert files_under(ro) == []


def test_out_dir_that_is_a_file(tmp_path):
    f = tmp_path / "taken"
    f.write_text("mine")
    for out in (f, f / "sub"):
        res = runner.invoke(app, [*TINY, f"--train.out_dir={out}"])
        error_line(res, 2, "--train.out_dir")
    assert f.read_text() == "mine"


def test_cache_folder_that_is_a_file(tmp_path, monkeypatch):
    (tmp_path / "cachefile").write_text("")
    monkeypatch.setenv("FRUGALCV_CACHE", str(tmp_path / "cachefile"))
    args = [*TINY, "--data.name=mnist5k-back", f"--train.out_dir={tmp_path / 'run'}"]
    res = runner.invoke(app, args)
    error_line(res, 2, "cachefile", "is a file, not a folder", "FRUGALCV_CACHE")


def test_full_disk_while_checkpointing(tmp_path, monkeypatch):
    def save(obj, f, *args, **kwargs):
        with open(f, "wb") as fh:  # half a file, then the disk is full
            fh.write(b"PK\x03\x04 partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(f))

    monkeypatch.setattr(torch, "save", save)
    out = tmp_path / "run"
    res = runner.invoke(app, [*TINY, f"--train.out_dir={out}"])
    line = error_line(res, 2, "--train.out_dir")
    assert "space" in line
    assert not [p for p in files_under(out) if p.endswith(".tmp") or p.endswith(".pt")]


def test_full_disk_reported_by_torch_zip_writer(tmp_path, monkeypatch):
    # What torch.save raised on a real full 40 KiB tmpfs: a RuntimeError, not an OSError.
    def save(obj, f, *args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 30144")

    monkeypatch.setattr(torch, "save", save)
    res = runner.invoke(app, [*TINY, f"--train.out_dir={tmp_path / 'run'}"])
    error_line(res, 2, "disk", "free disk space", "--train.out_dir")


def test_full_disk_while_logging_metrics(tmp_path, monkeypatch):
    real_open = pathlib.Path.open

    def open_(self, *args, **kwargs):
        if self.name == "metrics.jsonl":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", open_)
    res = runner.invoke(app, [*TINY, f"--train.out_dir={tmp_path / 'run'}"])
    error_line(res, 2, "no space left", "metrics.jsonl", "free disk space", "resume")


# ---------------------------------------------------------------------------------------------
# bad values: labels, numbers, lists


def write_mnist(root: pathlib.Path, labels: list[int]) -> None:
    """MNIST/raw idx files with blank 28x28 images and the given labels (train and test)."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    y = np.array(labels, dtype=np.uint8)
    for prefix in ("train", "t10k"):
        x = np.zeros((len(y), 28, 28), dtype=np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 2051, len(y), 28, 28) + x.tobytes()
        )
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 2049, len(y)) + y.tobytes()
        )


def test_labels_out_of_range(tmp_path, monkeypatch):
    write_mnist(tmp_path / "data", [0, 1, 2, 12] * 8)
    monkeypatch.setenv("FRUGALCV_DATA", str(tmp_path / "data"))
    args = [*TINY, "--data.name=mnist", "--data.num_train=0", "--data.num_test=0"]
    res = runner.invoke(app, [*args, f"--train.out_dir={tmp_path / 'run'}"])
    error_line(res, 2, "label 12", "10 classes", "[0, 9]")


@pytest.mark.parametrize("value", ["0", "-3", "inf", "nan"])
def test_epochs_refused_before_anything_is_written(tmp_path, value):
    out = tmp_path / "run"
    res = runner.invoke(app, [*TINY, f"--train.epochs={value}", f"--train.out_dir={out}"])
    error_line(res, 2, "train.epochs")
    assert not out.exists()


def test_bench_seeds_must_be_integers(tmp_path):
    res = runner.invoke(app, ["bench", "classify", "--seeds", "a,b"])
    error_line(res, 2, "--seeds needs integers", "0,1,2")
    assert not (tmp_path / "runs").exists()


def test_bench_classify_without_frugalcv_data_names_the_fix(tmp_path):
    res = runner.invoke(app, ["bench", "classify", "--results-dir", str(tmp_path / "results")])
    error_line(res, 2, "needs full MNIST", "set FRUGALCV_DATA", "--data.name=mnist5k-back")
    assert not (tmp_path / "results").exists()


def test_bench_runs_folder_that_is_a_file(tmp_path, monkeypatch):
    (tmp_path / "runsfile").write_text("")
    monkeypatch.setenv("FRUGALCV_RUNS", str(tmp_path / "runsfile"))
    res = runner.invoke(
        app, ["bench", "classify", "--quick", "--results-dir", str(tmp_path / "results")]
    )
    error_line(res, 2, "runsfile")


# ---------------------------------------------------------------------------------------------
# Ctrl-C and bugs


def test_ctrl_c_during_training_says_where_it_stopped(tmp_path, monkeypatch):
    real_step = classify.ClassifyTask.training_step
    calls = []

    def step(self, batch):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_step(self, batch)

    monkeypatch.setattr(classify.ClassifyTask, "training_step", step)
    args = [*TINY, "--train.epochs=2", "--train.ckpt_every=1", f"--train.out_dir={tmp_path / 'r'}"]
    res = runner.invoke(app, args)
    error_line(res, 130, "stopped at step 1/", "rerun the same command", prefix="interrupted:")


def test_ctrl_c_before_training(tmp_path, monkeypatch):
    def load_data(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(classify, "load_data", load_data)
    res = runner.invoke(app, [*TINY, f"--train.out_dir={tmp_path / 'run'}"])
    error_line(res, 130, "outside training", "rerun", prefix="interrupted:")


def test_a_bug_keeps_its_traceback_and_asks_for_a_report(tmp_path, monkeypatch):
    def load_data(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(classify, "load_data", load_data)
    res = runner.invoke(app, [*TINY, f"--train.out_dir={tmp_path / 'run'}"])
    assert res.exit_code == 1, res.output
    assert "Traceback" in res.output and "ZeroDivisionError: boom" in res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "this is a bug" in lines[0]
    assert "frugalcv run classify --preset tiny --data.name=digits" in lines[0]
