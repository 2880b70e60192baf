"""DS-Net Tasks: sandwich Stage I learns with a plain loop; Stage II trains only the gate."""

import math
import random

import pytest
import torch
from torch.testing import assert_close

from frugalcv.slim import (
    DSNET_STEPS_PER_EPOCH,
    BufferEMA,
    DSResNet,
    GateTask,
    SupernetTask,
    ema_decay_for,
    ema_horizon_note,
    recalibrate_supernet,
    sandwich_widths,
    soft_cross_entropy,
)
from frugalcv.testing import toy_data

pytestmark = pytest.mark.unit


def _tiny(seed=0):
    torch.manual_seed(seed)
    random.seed(seed)  # the sandwich rule's random widths (sandwich_widths: Python's random)
    return DSResNet(layers=(1, 1), planes=(8, 32), in_channels=1, num_classes=4)


def _train_supernet(task, x, y, *, steps, lr=0.1, views=1, batch=64):
    """The plain loop: every step is task.step on one batch (no Fabric)."""
    opt = torch.optim.SGD(task.trainable_parameters(), lr=lr, momentum=0.9)
    task.train()
    history = []
    for s in range(steps):
        i = torch.randint(0, len(x), (batch,), generator=torch.Generator().manual_seed(s))
        b = (x[i],) * views + (y[i],)
        history.append(task.step(b, forward=task, optimizers=[opt], fabric=None))
    return history


def test_soft_cross_entropy_hand_value():
    logits = torch.tensor([[0.0, math.log(3.0)]])  # softmax = [1/4, 3/4]
    p = torch.tensor([[0.5, 0.5]])
    expected = -(0.5 * math.log(0.25) + 0.5 * math.log(0.75))
    assert_close(soft_cross_entropy(logits, p), torch.tensor(expected))


def test_sandwich_widths_has_largest_smallest_and_random_middles():
    ws = sandwich_widths([0.25, 0.5, 0.75, 1.0], 3, rng=random.Random(0))
    assert ws[:2] == [1.0, 0.25] and len(ws) == 5
    assert all(w in (0.5, 0.75) for w in ws[2:])
    assert sandwich_widths([0.5, 1.0], 1, rng=random.Random(0))[:2] == [1.0, 0.5]


def test_buffer_ema_holds_no_parameters_and_follows_the_formula():
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    ema = BufferEMA(net, decay=0.9)
    assert list(ema.parameters()) == []
    before = ema.module[0].weight.clone()
    with torch.no_grad():
        net[0].weight.add_(1.0)
        net[1].running_mean.fill_(5.0)
    ema.update(net)
    assert_close(ema.module[0].weight, 0.9 * before + 0.1 * net[0].weight)
    # BN statistics lag like the weights (timm ModelEma); the integer counter is copied
    assert_close(ema.module[1].running_mean, torch.full((2,), 0.5))
    net[1].num_batches_tracked.fill_(7)
    ema.update(net)
    assert int(ema.module[1].num_batches_tracked) == 7
    assert_close(ema.module[1].running_mean, torch.full((2,), 0.9 * 0.5 + 0.5))
    ema.train()
    assert not ema.module.training
    assert set(ema.state_dict()) == {f"module.{k}" for k in net.state_dict()}


def test_buffer_ema_copy_mode_and_errors():
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    ema = BufferEMA(net, decay=0.9, buffers="copy")
    with torch.no_grad():
        net[1].running_mean.fill_(5.0)
    ema.update(net)
    assert_close(ema.module[1].running_mean, torch.full((2,), 5.0))
    with pytest.raises(ValueError, match="buffers must be"):
        BufferEMA(net, decay=0.9, buffers="mean")


def test_ema_decay_for_keeps_the_horizon_in_epochs():
    assert ema_decay_for(DSNET_STEPS_PER_EPOCH) == pytest.approx(0.997)
    d = ema_decay_for(94)
    assert d == pytest.approx(0.923, abs=1e-3)
    # horizon in steps 1 / (1 - d) shrinks with the epoch: same fraction of an epoch
    ratio = (1 / (1 - d)) / 94
    assert ratio == pytest.approx((1 / (1 - 0.997)) / DSNET_STEPS_PER_EPOCH, rel=0.05)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        ema_decay_for(0)


def test_ema_horizon_note_warns_only_past_one_epoch():
    assert ema_horizon_note(0.9, 93) is None  # 10 steps
    assert ema_horizon_note(0.0, 93) is None
    note = ema_horizon_note(0.997, 93)
    assert note is not None and "333 steps" in note and "0.92" in note


def test_sandwich_task_learns_with_a_plain_loop():
    x, y = toy_data(512, seed=0, num_classes=4)
    task = SupernetTask(model=_tiny(), num_random=1, ema_decay=0.9)
    hist = _train_supernet(task, x, y, steps=40)
    first = torch.stack([h["loss"] for h in hist[:5]]).mean()
    last = torch.stack([h["loss"] for h in hist[-5:]]).mean()
    assert last < 0.5 * first
    xv, yv = toy_data(256, seed=1, num_classes=4)
    task.eval()
    with torch.no_grad():
        metrics = task.validation_step((xv, yv))
    # every width, the slimmest (8 and 8 channels) included, clears chance (0.25) by far
    assert all(metrics[f"acc@{w:g}"] > 0.8 for w in task.model.widths), metrics


def test_gate_is_frozen_in_stage_one_and_ema_moves():
    x, y = toy_data(128, seed=0, num_classes=4)
    model = _tiny()
    task = SupernetTask(model=model, num_random=2, ema_decay=0.5)
    assert not any(p.requires_grad for p in model.gate.parameters())
    gate0 = {k: v.clone() for k, v in model.gate.state_dict().items()}
    ema0 = task.ema.module.body[0].conv1[0].weight.clone()
    _train_supernet(task, x, y, steps=2)
    assert all(torch.equal(gate0[k], v) for k, v in model.gate.state_dict().items())
    assert not torch.equal(ema0, task.ema.module.body[0].conv1[0].weight)


@pytest.mark.parametrize(
    "kw", [{"bootstrap": "live"}, {"bootstrap": "none"}, {"ensemble": True}, {"mvco_weight": 1.0}]
)
def test_stage_one_variants_learn(kw):
    x, y = toy_data(256, seed=0, num_classes=4)
    task = SupernetTask(model=_tiny(), num_random=1, ema_decay=0.9, **kw)
    hist = _train_supernet(task, x, y, steps=12, views=2 if "mvco_weight" in kw else 1)
    assert hist[-1]["loss_largest"] < hist[0]["loss_largest"]
    assert all(torch.isfinite(h["loss"]) for h in hist)


def test_mvco_cross_view_term_value():
    task = SupernetTask(model=_tiny(), mvco_weight=0.5)
    x1, x2 = torch.randn(2, 4, 1, 8, 8)
    y = torch.tensor([0, 1, 2, 3])
    t1, t2 = torch.softmax(torch.randn(2, 4, 4), -1)
    out = task.training_step((x1, x2, y), width=0.5, target=(t1, t2))
    z1, z2 = task.model(x1, width=0.5), task.model(x2, width=0.5)
    same = (soft_cross_entropy(z1, t1) + soft_cross_entropy(z2, t2)) / 2
    cross = (soft_cross_entropy(z1, t2) + soft_cross_entropy(z2, t1)) / 2
    assert_close(out["loss"], same + 0.5 * cross)


def test_stage_one_step_through_a_fabric_wrapped_task():
    from lightning.fabric import Fabric

    fabric = Fabric(accelerator="cpu", devices=1)
    x, y = toy_data(64, seed=0, num_classes=4)
    task = SupernetTask(model=_tiny(), num_random=1)
    opt = torch.optim.SGD(task.trainable_parameters(), lr=0.05)
    wrapped, opt = fabric.setup(task, opt)
    before = task.model.body[0].conv1[0].weight.clone()
    out = task.step((x, y), forward=wrapped, optimizers=[opt], fabric=fabric)
    assert set(out) == {"loss", "loss_largest", "loss_smallest"}
    assert not torch.equal(before, task.model.body[0].conv1[0].weight)


def test_recalibration_then_gate_task_trains_only_the_gate():
    x, y = toy_data(512, seed=0, num_classes=4)
    model = _tiny()
    _train_supernet(SupernetTask(model=model, num_random=1, ema_decay=0.9), x, y, steps=20)
    recalibrate_supernet(model, [(x[i : i + 128],) for i in range(0, 512, 128)])
    task = GateTask(model=model, input_shape=(1, 8, 8), complexity_weight=2.0)
    assert task.choice_macs.tolist() == sorted(task.choice_macs.tolist())
    trainable = {id(p) for p in task.trainable_parameters()}
    assert trainable == {id(p) for p in model.gate.parameters()}
    frozen = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("gate.")}
    gate0 = {k: v.clone() for k, v in model.gate.state_dict().items()}
    opt = torch.optim.SGD(task.trainable_parameters(), lr=0.5, momentum=0.9)
    task.train()
    assert not model.body.training and model.gate.training
    sgs = []
    for s in range(25):
        i = torch.randint(0, 512, (128,), generator=torch.Generator().manual_seed(s))
        opt.zero_grad()
        out = task.training_step((x[i], y[i]))  # one forward: the plain loop needs no step
        out["loss"].backward()
        opt.step()
        sgs.append(float(out["sgs"]))
    after = {k: v for k, v in model.state_dict().items() if not k.startswith("gate.")}
    assert all(torch.equal(frozen[k], after[k]) for k in frozen)  # weights and BN stats
    assert any(not torch.equal(gate0[k], v) for k, v in model.gate.state_dict().items())
    assert sum(sgs[-5:]) < sum(sgs[:5])  # the gate fits the SGS targets
    task.eval()
    with torch.no_grad():
        v1, v2 = task.validation_step((x[:256], y[:256])), task.validation_step((x[:256], y[:256]))
    assert v1 == v2  # deterministic routing in eval
    assert task.choice_macs[0] <= v1["macs"] <= task.choice_macs[-1]
    assert_close(sum(v1[f"route@{w:g}"] for w in model.widths), torch.tensor(1.0))
    # chance is 0.25; over Python random seeds 0-11 (the sandwich draws) this ranged 0.75-0.96
    assert v1["acc"] > 0.7
