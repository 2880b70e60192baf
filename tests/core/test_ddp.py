"""The distributed path: 2 CPU processes (gloo) launched by torchrun keep identical replicas."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit


def test_two_process_gloo_training_keeps_replicas_identical(tmp_path):
    script = Path(__file__).with_name("ddp_toy.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_PORT": "29533"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_port=29533",
        str(script),
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    assert r0["world_size"] == r1["world_size"] == 2
    assert r0["steps"] == r1["steps"] == 12
    assert r0["diff"] == 0.0 and r1["diff"] == 0.0
    assert r0["params"] == r1["params"]  # bitwise-identical replicas
    assert r0["acc"] == r1["acc"]  # evaluation is all-reduced over both shards
    assert (tmp_path / "last.pt").is_file()
