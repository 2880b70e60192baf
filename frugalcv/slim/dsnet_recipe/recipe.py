"""The ``dsnet`` run: Stage I, BN recalibration, Stage II, static rows, evaluation rows."""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from frugalcv.core.loop import make_schedule
from frugalcv.core.measure import module_device
from frugalcv.core.recipe import start_run, write_rows
from frugalcv.core.stages import train_rows, train_stage
from frugalcv.core.task import Task
from frugalcv.slim.cost import macs_per_width
from frugalcv.slim.dsnet import (
    GateTask,
    SupernetTask,
    ema_horizon_note,
    recalibrate_supernet,
)
from frugalcv.slim.dsnet_recipe.config import Config
from frugalcv.slim.dsnet_recipe.data import _Data, load_data
from frugalcv.slim.dsnet_recipe.evaluate import _eval_summary, complete_rows, evaluate_rows
from frugalcv.slim.dsnet_recipe.latency import latency_rows
from frugalcv.slim.dsnet_recipe.models import StaticWidth, _ClassifyTask, build_supernet
from frugalcv.slim.supernet import SlimSupernet

__all__ = ["run"]


def _materialise(cfg: Config, data: _Data, deployed: nn.Module) -> SlimSupernet:
    """A fresh supernet holding ``deployed``'s weights as parameters (the EMA copy keeps them
    as buffers), so the gate can train and nothing aliases the Stage I task."""
    model = build_supernet(
        cfg.model,
        num_classes=data.num_classes,
        in_chans=data.input_shape[0],
        image_size=data.input_shape[-1],
    )
    model.load_state_dict(deployed.state_dict())
    return model.to(module_device(deployed))  # BN recalibration runs where Stage I trained


def _gate_stage(ctx: Any, cfg: Config, data: _Data, model: SlimSupernet) -> dict:
    d = cfg.dsnet
    task = GateTask(
        model=model,
        input_shape=data.input_shape,
        sgs_weight=d.sgs_weight,
        ce_weight=d.ce_weight,
        complexity_weight=d.complexity_weight,
        sgs_rule=d.sgs_rule,
        macs_unit=d.macs_unit or None,
        double_softmax=d.double_softmax,
        label_smoothing=d.label_smoothing,
    )
    opt = torch.optim.SGD(
        model.gate.slim_parameters(),
        lr=d.gate_lr,
        momentum=cfg.optim.momentum,
        nesterov=cfg.optim.nesterov,
        weight_decay=d.gate_weight_decay,
    )
    gate_optim = dataclasses.replace(cfg.optim, lr=d.gate_lr, warmup_steps=0, schedule="cosine")
    gate_cfg = dataclasses.replace(
        cfg,
        optim=gate_optim,
        train=dataclasses.replace(cfg.train, epochs=d.gate_epochs, max_steps=0),
    )
    schedule = make_schedule(gate_optim) if d.gate_schedule == "cosine" else None
    _, summary = train_stage(
        ctx,
        gate_cfg,
        name="gate",
        task=task,
        loaders=(data.train, data.test),
        optimizers=[opt],
        schedules=[schedule],
    )
    return summary


def _static_rows(
    ctx: Any,
    cfg: Config,
    data: _Data,
    new_supernet: Callable[[], SlimSupernet],
    macs: dict[float, int],
) -> list[dict]:
    """One independently trained static network per width of ``dsnet.static_widths`` (all of
    ``model.widths`` when empty), each from the supernet's init, with its MACs."""
    chosen = cfg.dsnet.static_widths or cfg.model.widths
    widths = {f"static_w{w:g}": w for w in chosen}

    def make_task(row: str) -> Task:
        net = StaticWidth(model=new_supernet(), width=widths[row])
        return _ClassifyTask(model=net, label_smoothing=cfg.dsnet.label_smoothing)

    return train_rows(
        ctx,
        cfg,
        rows=list(widths),
        make_task=make_task,
        loaders=(data.train, data.test),
        extra=lambda row, task: {"width": widths[row], "macs": macs[widths[row]]},
    )


def run(cfg: Config, *, preset: str = "custom") -> dict:
    """Stage I, BN recalibration, Stage II, then the evaluation rows (see the module doc)."""
    ctx = start_run(cfg, recipe="dsnet", preset=preset)
    if cfg.latency.only:
        t0 = time.time()
        rows = latency_rows(cfg.latency, seed=cfg.train.seed)
        summary = write_rows(ctx, dataset=f"random {cfg.latency.image_size} px input", rows=rows)
        if ctx.is_main:
            _print_latency_notes(rows, time.time() - t0)
        return summary
    data = load_data(cfg)
    d = cfg.dsnet
    note = ema_horizon_note(d.ema_decay, len(data.train)) if d.bootstrap == "ema" else None
    if note and ctx.is_main:
        warnings.warn(note, stacklevel=2)
    shape = data.input_shape

    def new_supernet() -> SlimSupernet:
        torch.manual_seed(cfg.train.seed)  # the supernet and every static row: same init
        return build_supernet(
            cfg.model, num_classes=data.num_classes, in_chans=shape[0], image_size=shape[-1]
        )

    if d.static_only:  # the reference curve alone (a schedule study): no stages, no gate
        macs = macs_per_width(new_supernet(), input_shape=shape)
        static_only = _static_rows(ctx, cfg, data, new_supernet, macs)
        return write_rows(ctx, dataset=data.name, rows=static_only)

    stage1 = SupernetTask(
        model=new_supernet(),
        num_random=d.num_random,
        bootstrap=d.bootstrap,
        ema_decay=d.ema_decay,
        ema_buffers=d.ema_buffers,
        label_smoothing=d.label_smoothing,
        ensemble=d.ensemble,
        mvco_weight=d.mvco_weight,
    )
    deployed, s1 = train_stage(
        ctx,
        cfg,
        name="supernet",
        task=stage1,
        loaders=(data.train_views or data.train, data.test),
        ckpt=d.supernet_ckpt,
        extra={"arch": cfg.model.arch, "widths": ",".join(f"{w:g}" for w in cfg.model.widths)},
    )
    supernet = _materialise(cfg, data, deployed)
    recalibrate_supernet(supernet, data.train, max_batches=d.recal_batches or None)
    s2 = _gate_stage(ctx, cfg, data, supernet)
    rows: list[dict] = [s1, s2]

    macs = macs_per_width(supernet, input_shape=shape)
    if d.static_rows:
        rows += _static_rows(ctx, cfg, data, new_supernet, macs)

    t0 = time.time()
    evaluated = evaluate_rows(
        supernet, data.test, input_shape=shape, latency=cfg.latency, seed=cfg.train.seed
    )
    wall = time.time() - t0
    steps = int(s1.get("steps", 0))
    rows += [_eval_summary(k, v, steps=steps, wall_s=wall) for k, v in evaluated.items()]
    rows = complete_rows(rows, cfg.model.widths)
    summary = write_rows(ctx, dataset=data.name, rows=rows)
    if ctx.is_main:
        _print_notes(rows, cfg.model.widths)
    return summary


def _print_notes(rows: list[dict], widths: Sequence[float]) -> None:
    by = {r["name"]: r for r in rows}
    full = by[f"sub_w{widths[-1]:g}"]
    dyn = by["dynamic"]

    def acc(name: str) -> float:
        return by[name]["final"]["acc"]

    subs = ", ".join(f"w{w:g} {acc(f'sub_w{w:g}'):.3f}" for w in widths)
    print(f"supernet sub-networks (one set of weights): {subs}")
    stat_rows = [w for w in widths if f"static_w{w:g}" in by]
    if stat_rows:
        stat = ", ".join(f"w{w:g} {acc(f'static_w{w:g}'):.3f}" for w in stat_rows)
        print(f"static networks trained alone (reference curve): {stat}")
    print(
        f"dynamic: acc {acc('dynamic'):.3f} at {dyn['macs'] / full['macs']:.2f}x the full "
        f"width's MACs; batch-1 speed-up {dyn.get('speedup_b1', float('nan')):.2f}x "
        f"(full width acc {acc(f'sub_w{widths[-1]:g}'):.3f})"
    )
    print(
        f"random gate at the same cost: acc {acc('random_gate'):.3f} (the gate's routing is "
        f"worth {100 * (acc('dynamic') - acc('random_gate')):+.1f} points)"
    )
    if "static_interp" in by:
        print(
            f"static curve at the dynamic net's MACs: acc {acc('static_interp'):.3f} "
            f"(dynamic {'on or above' if acc('dynamic') >= acc('static_interp') else 'below'} it)"
        )


def _print_latency_notes(rows: list[dict], wall: float) -> None:
    for r in rows:
        print(
            f"{r['name']}: {r['median_ms']:.2f} ms vs full {r['full_ms']:.2f} ms, speed-up "
            f"{r['speedup']:.2f}x for {r['mac_reduction']:.2f}x fewer MACs "
            f"(efficiency {r['final']['efficiency']:.2f})"
        )
    print(f"slicing turns fewer MACs into time; masking does not ({wall:.0f} s)")
