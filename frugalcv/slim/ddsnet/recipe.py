"""``ddsnet``: DDS-Net in three stages, then denoising rows on the test images.

Z. Jiang et al., "Dynamic Slimmable Denoising Network", arXiv 2110.08940 (no code published;
the reconstruction is described in ``docs/methods/ddsnet.md``).

1. Stage 1 (:class:`~frugalcv.slim.ddsnet.DenoiseSupernetTask`): the weight-shared slimmable
   DnCNN, sandwich rule over layer-wise channel configurations (``train_stage``).
2. Stage 2 (:func:`~frugalcv.slim.ddsnet.tailor`, a plain call): progressive channel tailoring
   on held-out training images (images never used by Stages 1 and 3), BN recalibrated on noisy
   training patches; the whole ladder goes to ``ladder.json`` and into the summary, and
   ``num_rungs`` rungs evenly spaced in MACs are kept for the gate.
3. Stage 3 (:class:`~frugalcv.slim.ddsnet.DenoiseGateTask`): the gate of the frozen, tailored
   supernet, with its own Adam optimizer and schedule (``fit``'s ``optimizers``/``schedules``).
4. Rows on the test images (whole images, or non-overlapping tiles with ``data.test_tile``):
   the noisy input, the classical scikit-image baselines (NLM, wavelet, TV), individually
   trained static DnCNNs at each width of ``ddsnet.widths`` (same data and schedule as Stage 1),
   the supernet's uniform-width sub-networks, the tailored rungs, and DDS-Net dynamic (per-image
   routing, each image run at its rung's slice). Each row: PSNR, SSIM, mean MACs per image and
   measured CPU latency per image (batch 1). Two derived rows state the claims: the static
   curve interpolated in MACs at DDS-Net's mean MACs, and the full-width networks' PSNR minus
   the 0.1 dB tolerance (a claim can only say "left exceeds right by a margin >= 0").

The run folder also gets ``ddsnet_denoised.png`` (a few test images: noisy, best classical,
full-width static, DDS-Net, clean) and ``ddsnet_psnr_vs_macs.png``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from frugalcv.core.config import OptimConfig
from frugalcv.core.jsonio import write_json
from frugalcv.core.loop import make_schedule
from frugalcv.core.measure import count_params
from frugalcv.core.recipe import start_run, write_rows
from frugalcv.core.stages import train_rows, train_stage
from frugalcv.core.task import Task
from frugalcv.slim.ddsnet import (
    DenoiseGate,
    DenoiseGateTask,
    DenoiseSupernetTask,
    DynamicDenoiser,
    SlimDnCNN,
    denoise_loss,
    pick_rungs,
    psnr_per_image,
    tailor,
)
from frugalcv.slim.ddsnet.config import (
    PRESETS,
    Config,
    DataConfig,
    DDSNetConfig,
    ModelConfig,
    paper_bsd,
    parse_sigma,
    tiny,
)
from frugalcv.slim.ddsnet.data import _Data, load_data, tile_test_images
from frugalcv.slim.ddsnet.evaluate import (
    CLASSICAL,
    _evaluate,
    _mean_pixels,
    _per_pixel_macs,
    _print_notes,
    interpolate_curve,
    noisy_row,
    static_rows,
)
from frugalcv.slim.ddsnet.figures import _figures

__all__ = [
    "PRESETS",
    "CLASSICAL",
    "Config",
    "DDSNetConfig",
    "DataConfig",
    "DenoiseTask",
    "ModelConfig",
    "interpolate_curve",
    "paper_bsd",
    "parse_sigma",
    "run",
    "tailor_ladder",
    "tile_test_images",
    "tiny",
]


class DenoiseTask(Task):
    """A static denoiser (one of the individually trained rows): ``loss(f(y), x)``."""

    monitor = ("psnr", "max")

    def __init__(self, *, model: nn.Module, loss: str = "l2") -> None:
        super().__init__()
        self.model, self.loss = model, loss

    def training_step(self, batch: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
        noisy, clean = batch
        return {"loss": denoise_loss(self.model(noisy), clean, kind=self.loss)}

    def validation_step(self, batch: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
        noisy, clean = batch
        return {"psnr": psnr_per_image(self.model(noisy), clean).mean()}


def _gate_stage(ctx: Any, cfg: Config, data: _Data, dyn: DynamicDenoiser) -> dict:
    d = cfg.ddsnet
    task = DenoiseGateTask(
        model=dyn, rule=d.gate_rule, tolerance=d.tolerance, complexity_weight=d.complexity_weight
    )
    opt = torch.optim.Adam(dyn.gate.parameters(), lr=d.gate_lr)
    gate_optim = OptimConfig(name="adam", lr=d.gate_lr, weight_decay=0.0, schedule="cosine")
    gate_cfg = dataclasses.replace(
        cfg,
        optim=gate_optim,
        train=dataclasses.replace(cfg.train, epochs=d.gate_epochs, max_steps=0),
    )
    _, summary = train_stage(
        ctx,
        gate_cfg,
        name="gate",
        task=task,
        loaders=(data.gate_train, data.heldout),
        optimizers=[opt],
        schedules=[make_schedule(gate_optim) if d.gate_schedule == "cosine" else None],
        extra={"gate_macs": dyn.gate_macs(tuple(data.test_clean[0].shape[-2:]))},
    )
    return summary


def tailor_ladder(cfg: Config, data: _Data, supernet: SlimDnCNN) -> list:
    """Stage 2 as the recipe runs it: the whole ladder, scored on the held-out pairs, BN
    recalibrated on the noisy training patches (deterministic given the supernet)."""
    d = cfg.ddsnet
    return tailor(
        supernet,
        data.heldout_noisy,
        data.heldout_clean,
        step=d.tailor_step or None,
        calib=torch.cat(data.calib),
        criterion=d.criterion,
        recalibrate=d.recalibrate,
        batch_size=cfg.train.eval_batch_size,
    )


def _train_static(
    ctx: Any, cfg: Config, data: _Data, new_net: Callable[[int], SlimDnCNN]
) -> tuple[dict[int, nn.Module], list[dict]]:
    """The individually trained static DnCNNs at ``static_widths`` (default: every width of
    ``ddsnet.widths``), same data and schedule as Stage 1; their modules and summaries."""
    d = cfg.ddsnet
    rows_w = {f"static_c{w}": w for w in (d.static_widths or d.widths)}
    static: dict[int, nn.Module] = {}

    def make_task(row: str) -> Task:
        task = DenoiseTask(model=new_net(rows_w[row]), loss=d.loss)
        static[rows_w[row]] = task.model
        return task

    summaries = train_rows(
        ctx,
        cfg,
        rows=list(rows_w),
        make_task=make_task,
        loaders=(data.train, data.heldout),
        extra=lambda row, task: {"channels": rows_w[row], "params": count_params(task.model)},
    )
    return static, summaries


def run(cfg: Config, *, preset: str = "custom") -> dict:
    """Stage 1, tailoring, Stage 3, then the evaluation rows (see the module doc)."""
    ctx = start_run(cfg, recipe="ddsnet", preset=preset)
    data = load_data(cfg)
    m, d = cfg.model, cfg.ddsnet

    def new_net(channels: int) -> SlimDnCNN:
        torch.manual_seed(cfg.train.seed)
        return SlimDnCNN(
            in_channels=data.in_chans,
            channels=channels,
            depth=m.depth,
            min_channels=m.min_channels if channels == m.channels else channels,
            channel_step=m.channel_step,
        )

    if d.static_only:  # the static rows alone, on the test images: a schedule study
        full = new_net(m.channels)
        full_macs = _per_pixel_macs(full, full.largest_config) * _mean_pixels(data)
        static, summaries = _train_static(ctx, cfg, data, new_net)
        rows = [noisy_row(data), *static_rows(cfg, data, static, summaries, full_macs=full_macs)]
        summary = write_rows(ctx, dataset=data.name, rows=rows)
        if ctx.is_main:
            _print_notes(rows, m.channels)
        return summary

    # Stage 1
    supernet = new_net(m.channels)
    stage1 = DenoiseSupernetTask(
        model=supernet,
        num_random=d.num_random,
        random_mode=d.random_mode,
        loss=d.loss,
        distill_weight=d.distill_weight,
    )
    supernet, s1 = train_stage(
        ctx,
        cfg,
        name="supernet",
        task=stage1,
        loaders=(data.train, data.heldout),
        ckpt=d.supernet_ckpt,
        extra={"params": count_params(supernet)},
    )
    supernet.requires_grad_(False)

    # Stage 2: one greedy pass on the held-out pairs
    t0 = time.time()
    ladder = tailor_ladder(cfg, data, supernet)
    picked = pick_rungs(ladder, d.num_rungs)
    picked_idx = [next(i for i, r in enumerate(ladder) if r is p) for p in picked]
    ladder_json = {
        "heldout": f"{len(data.heldout_noisy)} crops of {cfg.data.heldout_crop} px",
        "rungs": [r.to_dict() for r in ladder],
        "picked": picked_idx,
    }
    if ctx.is_main:
        write_json(ctx.out_dir / "ladder.json", ladder_json)
    s2 = {
        "name": "tailoring",
        "final": {"psnr": ladder[0].psnr},
        "best": {"psnr": ladder[0].psnr, "step": 0},
        "steps": len(ladder),
        "wall_s": round(time.time() - t0, 2),
        "ladder": ladder_json["rungs"],
        "picked": picked_idx,
    }

    # Stage 3
    torch.manual_seed(cfg.train.seed)
    dyn = DynamicDenoiser(
        supernet=supernet,
        rungs=picked,
        gate=DenoiseGate(in_channels=data.in_chans, num_choices=len(picked)),
    )
    s3 = _gate_stage(ctx, cfg, data, dyn)

    static: dict[int, nn.Module] = {}
    static_summaries: list[dict] = []
    if d.static_rows:
        static, static_summaries = _train_static(ctx, cfg, data, new_net)

    rows = _evaluate(cfg, data, supernet, dyn, static, static_summaries)
    summary = write_rows(ctx, dataset=data.name, rows=[s1, s2, s3, *rows])
    if ctx.is_main:
        if d.figure:
            _figures(ctx.out_dir, rows, ladder_json, data, dyn, static, cfg)
        _print_notes(rows, m.channels)
    return summary
