"""The distributed path: 2 CPU processes (gloo) launched by torchrun keep identical replicas."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit


def _torchrun(tmp_path, *args, port):
    script = Path(__file__).with_name("ddp_toy.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_PORT": str(port)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={port}",
        str(script),
        str(tmp_path),
        *args,
    ]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("loader", ["tensor", "dataset"])
def test_two_process_gloo_training_keeps_replicas_identical(tmp_path, loader):
    proc = _torchrun(tmp_path, "-1", loader, port=29533 if loader == "tensor" else 29535)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    assert r0["world_size"] == r1["world_size"] == 2
    assert r0["steps"] == r1["steps"] == 12
    assert r0["diff"] == 0.0 and r1["diff"] == 0.0
    assert r0["params"] == r1["params"]  # bitwise-identical replicas
    assert r0["acc"] == r1["acc"]  # evaluation is all-reduced over both shards
    assert (tmp_path / "last.pt").is_file()


def test_nan_on_one_rank_stops_every_rank_with_the_same_clear_error(tmp_path):
    # Rank 1's loss turns NaN at step 5; rank 0's stays finite. Without an agreed check rank 0
    # would wait forever in the gradient all-reduce (the timeout above would then fire).
    proc = _torchrun(tmp_path, "1", port=29534)
    assert proc.returncode != 0
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    assert "another process" in r0["error"] and "nan" in r1["error"].lower()
    for r in (r0, r1):
        assert "Training stopped at step 4" in r["error"] and "No update was applied" in r["error"]
