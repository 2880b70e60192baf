"""DDP batch semantics (issue 7, case 6): train.batch_scope says whether train.batch_size is per
process or global; "global" gives 2 processes the optimizer steps of one."""

import json
import os
import subprocess
import sys

import pytest
import torch

from frugalcv.core.config import ConfigError, TrainConfig
from frugalcv.core.loader import TensorLoader
from frugalcv.core.loop import batch_scope_note, check_batch_scope
from frugalcv.testing import classify_cli

pytestmark = pytest.mark.unit


def test_a_global_batch_split_over_two_ranks_is_the_one_process_batch():
    x = torch.arange(100).float()
    one = TensorLoader((x,), batch_size=10, shuffle=True, seed=3, drop_last=True)
    ranks = [one.shard(rank=r, world_size=2, batch_size=5) for r in range(2)]
    assert len(one) == len(ranks[0]) == len(ranks[1]) == 10
    for epoch in (0, 1):
        for loader in (one, *ranks):
            loader.set_epoch(epoch)
        for b, (whole, *halves) in enumerate(zip(one, *ranks, strict=True)):
            merged = torch.cat([h[0] for h in halves]).sort().values
            assert torch.equal(merged, whole[0].sort().values), (epoch, b)


def test_the_per_process_scope_warns_and_an_uneven_global_batch_is_refused():
    note = batch_scope_note(TrainConfig(batch_size=64), 2)
    assert "1/2 the optimizer steps" in note and "--train.batch_scope=global" in note
    assert "global batch of 128" in note
    assert batch_scope_note(TrainConfig(batch_size=64, batch_scope="global"), 2) == ""
    assert batch_scope_note(TrainConfig(batch_size=64), 1) == ""
    with pytest.raises(ConfigError, match="multiple of 2"):
        check_batch_scope(TrainConfig(batch_size=33, batch_scope="global"), 2)
    check_batch_scope(TrainConfig(batch_size=33, batch_scope="global"), 1)


def _run(tmp_path, name, *args):
    out = tmp_path / name
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FRUGALCV_CACHE": str(tmp_path / "cache")}
    args = (
        "--data.augment=false",
        "--train.epochs=1",
        "--optim.schedule=constant",
        "--optim.warmup_steps=0",
        f"--train.out_dir={out}",
        *args,
    )
    cmd = [sys.executable, "-m", "frugalcv", *classify_cli(max_steps=0, extra=args)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "summary.json").read_text()), proc.stderr


@pytest.mark.slow  # three Python starts with torch and Lightning: ~25 s quiet, 70 s loaded
def test_two_processes_with_a_global_batch_take_one_process_steps_and_reach_its_accuracy(
    tmp_path,
):
    one, _ = _run(tmp_path, "one")
    two, err = _run(tmp_path, "two", "--train.devices=2", "--train.batch_scope=global")
    assert one["world_size"] == 1 and two["world_size"] == 2
    assert two["steps"] == one["steps"] == 1297 // 32
    assert two["replica_max_abs_diff"] == 0.0 and "batch_scope=process" not in err
    # Same samples per step (see the test above); only BatchNorm's per-half statistics differ.
    # Measured here (1 epoch): 0.956 for one process, 0.948 for two.
    assert one["final"]["acc"] > 0.5
    assert abs(two["final"]["acc"] - one["final"]["acc"]) < 0.05
