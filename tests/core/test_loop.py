"""The shared loop: learning, exact resume, NaN stop, bad checkpoints, run-folder safety."""

import json

import pytest
import torch

from frugalcv.core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from frugalcv.core.config import OptimConfig, TrainConfig
from frugalcv.core.hooks import Hook
from frugalcv.core.loader import TensorLoader, random_crop_flip
from frugalcv.core.loop import fit, lr_factor, make_fabric
from frugalcv.core.task import NonFiniteLossError
from frugalcv.testing import ToyTask, params_equal, toy_data

pytestmark = pytest.mark.unit


def _setup(tmp_path, *, max_steps=30, ckpt_every=7, nan_at_step=-1, seed=0):
    torch.manual_seed(seed)
    task = ToyTask(nan_at_step=nan_at_step)
    x, y = toy_data(256, seed=seed)
    xv, yv = toy_data(128, seed=seed + 100)
    train = TrainConfig(
        max_steps=max_steps,
        batch_size=32,
        eval_every=10,
        ckpt_every=ckpt_every,
        log_every=5,
        progress=False,
        accelerator="cpu",
        monitor="acc",
        seed=seed,
    )
    optim = OptimConfig(lr=0.1, schedule="cosine", warmup_steps=3)
    loaders = (
        TensorLoader(
            (x, y),
            batch_size=32,
            shuffle=True,
            seed=seed,
            drop_last=True,
            transform=random_crop_flip(pad=1, flip=False),
        ),
        TensorLoader((xv, yv), batch_size=64),
    )
    fabric = make_fabric(train)
    return task, loaders, train, optim, fabric


def _fit(task, loaders, train, optim, fabric, out):
    return fit(
        task,
        train_loader=loaders[0],
        val_loader=loaders[1],
        train=train,
        optim=optim,
        out_dir=out,
        fabric=fabric,
    )


def test_fit_learns_and_logs(tmp_path):
    task, loaders, train, optim, fabric = _setup(tmp_path, max_steps=40)
    res = _fit(task, loaders, train, optim, fabric, tmp_path / "run")
    assert res.steps == 40
    assert res.final["acc"] > 0.9  # the toy classes are separable
    assert res.best["acc"] >= res.final["acc"] and "step" in res.best
    lines = [json.loads(s) for s in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if r["split"] == "val"] == [10, 20, 30, 40]
    assert all("loss" in r and "lr" in r for r in lines if r["split"] == "train")


def test_resume_matches_uninterrupted_run(tmp_path):
    task_a, loaders, train, optim, fabric = _setup(tmp_path, max_steps=30, ckpt_every=7)
    res_a = _fit(task_a, loaders, train, optim, fabric, tmp_path / "a")

    # Interrupted run: killed during step 15 (checkpoint at 14 is mid-epoch: 8 batches/epoch) ...
    task_b, loaders, train_b, optim, fabric = _setup(tmp_path, max_steps=30, ckpt_every=7)

    class Kill(Hook):
        def after_step(self, state):
            if state.step == 15:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(
            task_b,
            train_loader=loaders[0],
            val_loader=loaders[1],
            train=train_b,
            optim=optim,
            out_dir=tmp_path / "b",
            fabric=fabric,
            hooks=[Kill()],
        )
    assert load_checkpoint(tmp_path / "b" / "last.pt")["step"] == 14
    # ... then a fresh process-like start (new model, other RNG state) resumes from last.pt.
    torch.manual_seed(1234)
    task_c, loaders, train_c, optim, fabric = _setup(tmp_path, max_steps=30, ckpt_every=7, seed=0)
    torch.manual_seed(999)
    res_c = _fit(task_c, loaders, train_c, optim, fabric, tmp_path / "b")
    assert params_equal(task_a, task_c)
    assert res_c.final == res_a.final
    steps = [
        json.loads(s)["step"]
        for s in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
        if '"val"' in s
    ]
    assert steps == [10, 20, 30]  # no duplicated log lines after resume


def test_nan_loss_stops_with_clear_error_and_keeps_last_good_checkpoint(tmp_path):
    task, loaders, train, optim, fabric = _setup(
        tmp_path, max_steps=30, ckpt_every=5, nan_at_step=13
    )
    with pytest.raises(NonFiniteLossError, match=r"step 12.*Last good checkpoint.*step 10"):
        _fit(task, loaders, train, optim, fabric, tmp_path / "run")
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    assert state["step"] == 10
    assert all(torch.isfinite(v).all() for v in state["task"].values() if v.is_floating_point())
    assert all(torch.isfinite(p).all() for p in task.parameters())  # no bad update applied


def test_corrupt_checkpoint_gives_clear_error_and_is_kept(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt").write_bytes(b"not a checkpoint at all")
    task, loaders, train, optim, fabric = _setup(tmp_path)
    with pytest.raises(CheckpointError, match="corrupt"):
        _fit(task, loaders, train, optim, fabric, out)
    assert (out / "last.pt").read_bytes() == b"not a checkpoint at all"


def test_foreign_and_mismatched_checkpoints(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a frugalcv checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "nope.pt")
    out = tmp_path / "run"
    save_checkpoint(
        out / "last.pt",
        {
            "task": {"net.0.weight": torch.zeros(3)},
            "optimizers": [],
            "step": 1,
            "best": {},
            "history": [],
            "rng": {"torch": torch.get_rng_state()},
        },
    )
    task, loaders, train, optim, fabric = _setup(tmp_path)
    with pytest.raises(CheckpointError, match="does not fit ToyTask"):
        _fit(task, loaders, train, optim, fabric, out)


def test_checkpoint_with_pickled_objects_is_refused(tmp_path):
    import argparse

    # Any non-allow-listed object is refused by weights_only=True loading (no code execution).
    torch.save(
        {"format": "frugalcv-checkpoint-v1", "obj": argparse.Namespace(a=1)}, tmp_path / "evil.pt"
    )
    with pytest.raises(CheckpointError, match="non-tensor"):
        load_checkpoint(tmp_path / "evil.pt")


def test_lr_schedules():
    o = OptimConfig(schedule="multistep", milestones=(2, 4), gamma=0.1, warmup_steps=0)
    assert [
        round(lr_factor(s, optim=o, total_steps=60, steps_per_epoch=10), 6)
        for s in (0, 19, 20, 39, 40)
    ] == [1.0, 1.0, 0.1, 0.1, 0.01]
    c = OptimConfig(schedule="cosine", warmup_steps=4)
    assert lr_factor(0, optim=c, total_steps=104, steps_per_epoch=10) == 0.25
    assert lr_factor(54, optim=c, total_steps=104, steps_per_epoch=10) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="schedule"):
        lr_factor(0, optim=OptimConfig(schedule="poly"), total_steps=1, steps_per_epoch=1)


def test_loader_is_deterministic_and_shards_cover_data():
    x = torch.arange(10).float().view(10, 1)
    a = TensorLoader((x,), batch_size=3, shuffle=True, seed=1)
    b = TensorLoader((x,), batch_size=3, shuffle=True, seed=1)
    assert [t[0].tolist() for t in a] == [t[0].tolist() for t in b]
    a.set_epoch(1)
    assert [t[0].tolist() for t in a] != [t[0].tolist() for t in b]
    s0, s1 = a.shard(rank=0, world_size=2), a.shard(rank=1, world_size=2)
    s0.set_epoch(0)
    s1.set_epoch(0)
    seen = torch.cat([t[0] for t in s0] + [t[0] for t in s1]).flatten().tolist()
    assert sorted(set(seen)) == list(range(10)) and len(s0) == len(s1)
    with pytest.raises(ValueError, match="same first dimension"):
        TensorLoader((x, torch.zeros(3)), batch_size=2)


def test_bf16_mixed_precision_trains_on_cpu(tmp_path):
    from dataclasses import replace

    task, loaders, train, optim, _ = _setup(tmp_path, max_steps=20)
    train = replace(train, precision="bf16-mixed")
    res = _fit(task, loaders, train, optim, make_fabric(train), tmp_path / "bf16")
    assert res.steps == 20 and res.final["acc"] > 0.6  # autocast on CPU still learns the toy task
    assert all(p.dtype == torch.float32 for p in task.parameters())  # master weights stay fp32
