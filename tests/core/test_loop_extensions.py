"""Loop extension points: per-optimizer schedules, the task's monitor, hooks with state (EMA),
the DataLoader path, all RNG streams in checkpoints."""

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from frugalcv.core.checkpoint import CheckpointError, load_checkpoint, load_model
from frugalcv.core.config import OptimConfig, TrainConfig
from frugalcv.core.hooks import EMAHook, Hook
from frugalcv.core.loader import DatasetLoader, TensorLoader, list_collate
from frugalcv.core.loop import fit, make_fabric, make_schedule, seed_all
from frugalcv.core.task import Task
from frugalcv.testing import ToyTask, params_equal, toy_data

pytestmark = pytest.mark.unit


def _train(max_steps=24, **kw):
    base = dict(
        max_steps=max_steps,
        batch_size=32,
        eval_every=8,
        ckpt_every=5,
        progress=False,
        accelerator="cpu",
    )
    return TrainConfig(**{**base, **kw})


def _loaders(seed=0):
    x, y = toy_data(256, seed=seed)
    return (
        TensorLoader((x, y), batch_size=32, shuffle=True, seed=seed, drop_last=True),
        TensorLoader(toy_data(64, seed=seed + 100), batch_size=64),
    )


class _KillAt(Hook):
    def __init__(self, step):
        self.step = step

    def after_step(self, state):
        if state.step == self.step:
            raise KeyboardInterrupt


def _interrupted_then_resumed(make_task, out, *, kill_at, loaders, train, fit_kwargs):
    """Run until ``kill_at`` (checkpoint before it), then resume in a fresh task."""
    optim = OptimConfig(lr=0.1, schedule="cosine")
    seed_all(0)
    task = make_task()
    with pytest.raises(KeyboardInterrupt):
        fit(
            task,
            train_loader=loaders[0],
            val_loader=loaders[1],
            train=train,
            optim=optim,
            out_dir=out,
            fabric=make_fabric(train),
            **fit_kwargs(task, _KillAt(kill_at)),
        )
    torch.manual_seed(1234)  # a fresh process: other RNG state, other init
    random.seed(99)
    np.random.seed(99)
    task = make_task()
    kwargs = fit_kwargs(task, None)
    res = fit(
        task,
        train_loader=loaders[0],
        val_loader=loaders[1],
        train=train,
        optim=optim,
        out_dir=out,
        fabric=make_fabric(train),
        **kwargs,
    )
    return task, res, kwargs


def _uninterrupted(make_task, out, *, loaders, train, fit_kwargs):
    optim = OptimConfig(lr=0.1, schedule="cosine")
    seed_all(0)
    task = make_task()
    kwargs = fit_kwargs(task, None)
    res = fit(
        task,
        train_loader=loaders[0],
        val_loader=loaders[1],
        train=train,
        optim=optim,
        out_dir=out,
        fabric=make_fabric(train),
        **kwargs,
    )
    return task, res, kwargs


def _only_kill_hook(task, kill):
    return {"hooks": [kill] if kill else []}


def _run_both(make_task, tmp_path, *, kill_at, loaders, train, fit_kwargs=_only_kill_hook):
    """An uninterrupted run in ``a`` and a killed-then-resumed one in ``b``: both results."""
    a = _uninterrupted(
        make_task, tmp_path / "a", loaders=loaders, train=train, fit_kwargs=fit_kwargs
    )
    b = _interrupted_then_resumed(
        make_task,
        tmp_path / "b",
        kill_at=kill_at,
        loaders=loaders,
        train=train,
        fit_kwargs=fit_kwargs,
    )
    return a, b


def test_per_optimizer_schedules_and_none_keeps_lr_fixed(tmp_path):
    torch.manual_seed(0)
    task = ToyTask()
    head = list(task.net[-1].parameters())
    body = [p for n, p in task.named_parameters() if not n.startswith("net.6")]
    opt_body = torch.optim.SGD(body, lr=0.1)
    opt_head = torch.optim.SGD(head, lr=0.01)
    seen = []

    class Record(Hook):
        def after_step(self, state):
            seen.append([o.param_groups[0]["lr"] for o in state.optimizers])

    train = _train(max_steps=10)
    optim = OptimConfig(lr=0.1, schedule="cosine")
    fit(
        task,
        train_loader=_loaders()[0],
        val_loader=None,
        train=train,
        optim=optim,
        out_dir=tmp_path,
        fabric=make_fabric(train),
        optimizers=[opt_body, opt_head],
        schedules=[make_schedule(optim), None],
        hooks=[Record()],
    )
    assert [h for _, h in seen] == [0.01] * 10  # no schedule: the lr never moves
    body_lrs = [b for b, _ in seen]
    assert body_lrs[0] == pytest.approx(0.1) and body_lrs[-1] == pytest.approx(
        0.1 * 0.5 * (1 + np.cos(np.pi * 9 / 10))
    )
    with pytest.raises(ValueError, match="one schedule"):
        fit(
            ToyTask(),
            train_loader=_loaders()[0],
            val_loader=None,
            train=train,
            optim=optim,
            out_dir=tmp_path / "b",
            fabric=make_fabric(train),
            schedules=[None, None],
        )


def test_best_follows_the_task_monitor_and_unknown_key_fails_at_first_eval(tmp_path):
    class MinLossTask(ToyTask):
        monitor = ("loss", "min")

    train = _train(max_steps=24)
    optim = OptimConfig(lr=0.1, schedule="constant")
    torch.manual_seed(0)
    res = fit(
        MinLossTask(),
        train_loader=_loaders()[0],
        val_loader=_loaders()[1],
        train=train,
        optim=optim,
        out_dir=tmp_path / "a",
        fabric=make_fabric(train),
    )
    assert res.best["loss"] == min(h["loss"] for h in res.history)

    bad = _train(max_steps=24, monitor="H")  # a ZSL metric this task never reports
    evals = []

    class Count(Hook):
        def after_step(self, state):
            evals.append(state.step)

    with pytest.raises(
        ValueError, match=r"'H' is not among the metrics.*acc, loss.*--train\.monitor"
    ):
        fit(
            ToyTask(),
            train_loader=_loaders()[0],
            val_loader=_loaders()[1],
            train=bad,
            optim=optim,
            out_dir=tmp_path / "b",
            fabric=make_fabric(bad),
            hooks=[Count()],
        )
    assert max(evals) == 8  # stopped at the first evaluation, not at the end


def test_hooks_see_task_and_optimizers_and_ema_resumes_exactly(tmp_path):
    loaders, train = _loaders(), _train(max_steps=24)

    def kwargs(task, kill):
        hooks = [EMAHook(decay=0.9)] + ([kill] if kill else [])
        return {"hooks": hooks}

    (task_a, _, kw_a), (task_b, _, kw_b) = _run_both(
        ToyTask, tmp_path, kill_at=13, loaders=loaders, train=train, fit_kwargs=kwargs
    )
    assert load_checkpoint(tmp_path / "b" / "last.pt")["step"] == 24
    ema_a, ema_b = kw_a["hooks"][0], kw_b["hooks"][0]
    assert params_equal(task_a, task_b)
    assert all(torch.equal(ema_a.shadow[k], ema_b.shadow[k]) for k in ema_a.shadow)
    # The average differs from the last weights but lies near them.
    avg = ema_a.copy_to(ToyTask())
    assert not params_equal(avg, task_a)
    # A resume without the stateful hook is refused (its state would be lost).
    with pytest.raises(CheckpointError, match="hooks"):
        fit(
            ToyTask(),
            train_loader=loaders[0],
            val_loader=loaders[1],
            train=_train(max_steps=30),
            optim=OptimConfig(),
            out_dir=tmp_path / "a",
            fabric=make_fabric(train),
        )


class _NumpyRandomTask(ToyTask):
    """Drops a random input row chosen by NumPy and Python: both streams must resume exactly."""

    def training_step(self, batch):
        x, y = batch
        x = x.clone()
        x[:, :, int(np.random.randint(0, 8)), :] = 0
        x = x * (1.0 + 0.1 * random.random())
        return super().training_step((x, y))


def test_python_and_numpy_rng_resume_exactly(tmp_path):
    loaders, train = _loaders(), _train(max_steps=24)
    (a, res_a, _), (b, res_b, _) = _run_both(
        _NumpyRandomTask, tmp_path, kill_at=13, loaders=loaders, train=train
    )
    assert params_equal(a, b) and res_a.final == res_b.final


class _Shapes(torch.utils.data.Dataset):
    """Variable-size images with dict targets (a detection-like batch)."""

    def __init__(self, n=40):
        g = torch.Generator().manual_seed(0)
        self.items = []
        for i in range(n):
            s = 8 + int(torch.randint(0, 5, (1,), generator=g))
            label = i % 2
            x = 0.3 * torch.randn(1, s, s, generator=g) + (1.0 if label else -1.0)
            self.items.append((x, {"label": torch.tensor(label), "size": torch.tensor(s)}))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


class _ListTask(Task):
    monitor = ("acc", "max")

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(4, 2)

    def logits(self, images):
        feats = [self.conv(x[None]).mean((2, 3)) for x in images]  # each (1, 4)
        return self.fc(self.drop(torch.cat(feats)))

    def training_step(self, batch):
        images, targets = batch
        y = torch.stack([t["label"] for t in targets])
        return {"loss": F.cross_entropy(self.logits(images), y)}

    def validation_step(self, batch):
        images, targets = batch
        y = torch.stack([t["label"] for t in targets])
        return {"acc": (self.logits(images).argmax(1) == y).float().mean()}


def test_dataset_loader_variable_sizes_shards_and_resumes_mid_epoch(tmp_path):
    ds = _Shapes()
    loader = DatasetLoader(
        ds, batch_size=6, collate_fn=list_collate, shuffle=True, seed=3, drop_last=True
    )
    images, targets = next(iter(loader))
    assert isinstance(images, list) and len(images) == 6 and isinstance(targets[0], dict)
    assert len({im.shape for im in images}) > 1  # sizes really vary
    # Deterministic by (seed, epoch); shards cover the data with equal lengths.
    order = [t["size"].item() for _, ts in loader for t in ts]
    assert order == [t["size"].item() for _, ts in loader for t in ts]
    loader.set_epoch(1)
    assert order != [t["size"].item() for _, ts in loader for t in ts]
    s0, s1 = loader.shard(rank=0, world_size=2), loader.shard(rank=1, world_size=2)
    assert len(s0) == len(s1) == 20 // 6
    ids = [id(im) for sh in (s0, s1) for ims, _ in sh for im in ims]
    assert len(set(ids)) == len(ids)  # no sample twice within an epoch
    skipped = list(loader.iter_from(2))
    assert len(skipped) == len(loader) - 2
    assert skipped[0][0][0] is list(loader)[2][0][0]

    val = DatasetLoader(ds, batch_size=8, collate_fn=list_collate)
    train = _train(max_steps=18, ckpt_every=4, eval_every=6)
    loaders = (loader, val)
    (a, res_a, _), (b, res_b, _) = _run_both(
        _ListTask, tmp_path, kill_at=10, loaders=loaders, train=train
    )
    assert params_equal(a, b) and res_a.final == res_b.final
    assert res_a.final["acc"] > 0.8  # the two classes differ by brightness


def test_checkpoint_holds_the_deployable_model_under_one_key(tmp_path):
    from frugalcv.classify import ClassifyTask

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 4))
    train = _train(max_steps=4)
    fit(
        ClassifyTask(model=model),
        train_loader=_loaders()[0],
        val_loader=_loaders()[1],
        train=train,
        optim=OptimConfig(),
        out_dir=tmp_path,
        fabric=make_fabric(train),
    )
    state = load_checkpoint(tmp_path / "last.pt")
    assert set(state["model"]) == {"1.weight", "1.bias"}  # no "model." prefix
    fresh = load_model(nn.Sequential(nn.Flatten(), nn.Linear(64, 4)), tmp_path)  # a run folder
    assert params_equal(fresh, model)


def _fit_with(tmp_path, name, **train_kw):
    seed_all(0)
    task = ToyTask()
    # Dropout draws its mask in memory order, so NHWC activations get other masks: compare the
    # layouts on a net without dropout (the zoo's ResNets have none).
    task.net[3] = nn.Identity()
    train = _train(max_steps=16, **train_kw)
    res = fit(
        task,
        train_loader=_loaders()[0],
        val_loader=_loaders()[1],
        train=train,
        optim=OptimConfig(lr=0.1, schedule="constant"),
        out_dir=tmp_path / name,
        fabric=make_fabric(train),
    )
    return task, res


def test_channels_last_switch_trains_to_the_same_result_up_to_float_noise(tmp_path):
    eager, res_e = _fit_with(tmp_path, "eager")
    nhwc, res_c = _fit_with(tmp_path, "cl", channels_last=True)
    assert nhwc.net[0].weight.is_contiguous(memory_format=torch.channels_last)
    for a, b in zip(eager.parameters(), nhwc.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert res_e.final["acc"] == res_c.final["acc"]


@pytest.mark.slow  # the first torch.compile of a model takes tens of seconds on CPU
def test_compile_switch_trains_to_the_same_result_up_to_float_noise(tmp_path):
    eager, _ = _fit_with(tmp_path, "eager")
    compiled, _ = _fit_with(tmp_path, "compiled", compile=True)
    for a, b in zip(eager.parameters(), compiled.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
