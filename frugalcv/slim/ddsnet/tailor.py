"""DDS-Net Stage 2: progressive channel tailoring of the supernet into a ladder of rungs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from frugalcv.core.measure import to_module
from frugalcv.layers.slimmable import recalibrate_bn
from frugalcv.slim.ddsnet.metrics import config_macs, psnr_per_image
from frugalcv.slim.ddsnet.supernet import Config, SlimDnCNN

__all__ = ["CRITERIA", "Rung", "pick_rungs", "tailor"]

CRITERIA = ("psnr_per_mac", "psnr")


@dataclass
class Rung:
    """One sub-network of the ladder.

    Attributes:
        config: channel count per hidden layer.
        psnr: mean PSNR (dB) on the tailoring images, with this rung's BN statistics.
        macs: MACs for one image of the tailoring images' size.
        bn_mean, bn_var: per body BN layer, ``(c_i,)`` statistics recalibrated for this
            configuration (hidden layer ``i + 1``'s count ``c_i``).
    """

    config: Config
    psnr: float
    macs: int
    bn_mean: list[Tensor] = field(repr=False)
    bn_var: list[Tensor] = field(repr=False)

    def to_dict(self) -> dict:
        return {"config": list(self.config), "psnr": self.psnr, "macs": self.macs}


def _snapshot_bn(supernet: SlimDnCNN, config: Config) -> tuple[list[Tensor], list[Tensor]]:
    means, variances = [], []
    for bn, c in zip(supernet.norms(), config[1:], strict=True):
        k = bn.width_index(c)
        # on the CPU: a Rung outlives the device the supernet was tailored on
        means.append(bn.running_mean[k, :c].detach().cpu().clone())
        variances.append(bn.running_var[k, :c].detach().cpu().clone())
    return means, variances


@torch.no_grad()
def _load_bn(supernet: SlimDnCNN, config: Config, means: Sequence[Tensor], var: Sequence[Tensor]):
    for bn, c, m, v in zip(supernet.norms(), config[1:], means, var, strict=True):
        k = bn.width_index(c)
        bn.running_mean[k, :c].copy_(m)
        bn.running_var[k, :c].copy_(v)


@torch.no_grad()
def _mean_psnr(supernet: SlimDnCNN, noisy: Tensor, clean: Tensor, cfg: Config, bs: int) -> float:
    supernet.eval()
    scores = []
    for i in range(0, len(noisy), bs):
        out = supernet(to_module(noisy[i : i + bs], supernet), config=cfg)  # model's device
        scores.append(psnr_per_image(out, clean[i : i + bs].to(out)).cpu())
    return float(torch.cat(scores).mean())


@torch.no_grad()
def tailor(
    supernet: SlimDnCNN,
    images_noisy: Tensor,
    images_clean: Tensor,
    *,
    step: int | None = None,
    min_width: int | None = None,
    calib: Tensor | None = None,
    criterion: str = "psnr_per_mac",
    recalibrate: str = "candidate",
    batch_size: int = 16,
    max_rungs: int | None = None,
) -> list[Rung]:
    """Stage 2: progressive channel tailoring; one greedy pass gives the whole ladder.

    From the largest configuration, repeat: for every layer ``l`` with ``c_l - step >=
    min_width``, try ``c_l -> c_l - step``, recalibrate BN for the candidate, measure the mean
    PSNR ``P`` on the held-out images; keep the candidate with the smallest
    ``(P_current - P_candidate) / (MACs_current - MACs_candidate)`` (``"psnr_per_mac"``, dB lost
    per MAC saved) or the smallest drop (``"psnr"``); ties go to the lower layer. Each kept
    candidate is a :class:`Rung`; the pass ends when every layer is at ``min_width``.

    Args:
        supernet: trained in Stage 1. Its BN buffers, configuration and train flag are restored
            on return; each rung carries its own statistics.
        images_noisy, images_clean: held-out ``(N, C, H, W)`` pairs that score the candidates.
        step: channels cut per move (default ``supernet.channel_step``; a multiple of it).
        min_width: smallest count per layer (default the supernet's smallest choice).
        calib: noisy inputs for BN recalibration (default ``images_noisy``; no labels used).
        criterion: ``"psnr_per_mac"`` or ``"psnr"``.
        recalibrate: ``"candidate"`` (every candidate gets fresh BN statistics before it is
            scored), ``"rung"`` (candidates are scored with the supernet's per-width rows and
            only kept rungs are recalibrated; cheaper) or ``"none"``.
        max_rungs: stop after this many rungs (None: the full ladder).

    Returns:
        Rungs in tailoring order: MACs strictly decreasing from the largest configuration.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; use one of {CRITERIA}")
    if recalibrate not in ("candidate", "rung", "none"):
        raise ValueError(f"recalibrate must be 'candidate', 'rung' or 'none'; got {recalibrate!r}")
    if images_noisy.shape != images_clean.shape or images_noisy.dim() != 4:
        raise ValueError(
            f"images_noisy and images_clean must be equal (N, C, H, W) shapes; got "
            f"{tuple(images_noisy.shape)} and {tuple(images_clean.shape)}"
        )
    step = supernet.channel_step if step is None else int(step)
    if step < 1 or step % supernet.channel_step:
        raise ValueError(f"step must be a multiple of channel_step={supernet.channel_step}")
    min_width = supernet.choices[0] if min_width is None else int(min_width)
    if min_width not in supernet.choices:
        raise ValueError(f"min_width must be one of {list(supernet.choices)}; got {min_width}")
    calib = images_noisy if calib is None else calib
    calib_batches = [calib[i : i + batch_size] for i in range(0, len(calib), batch_size)]
    size = tuple(images_noisy.shape[-2:])
    saved_buffers = {k: v.clone() for k, v in supernet.named_buffers()}
    saved_config, was_training = supernet.config, supernet.training

    def calibrate(cfg: Config) -> None:
        if recalibrate != "none":
            recalibrate_bn(
                supernet, calib_batches, widths=[cfg], forward=lambda x, c: supernet(x, config=c)
            )

    def evaluate(cfg: Config) -> tuple[float, list[Tensor], list[Tensor]]:
        p = _mean_psnr(supernet, images_noisy, images_clean, cfg, batch_size)
        return (p, *_snapshot_bn(supernet, cfg))

    try:
        cfg = supernet.largest_config
        calibrate(cfg)
        psnr, means, variances = evaluate(cfg)
        macs = config_macs(supernet, cfg, image_size=size)
        ladder = [Rung(cfg, psnr, macs, means, variances)]
        while max_rungs is None or len(ladder) < max_rungs:
            best = None
            for layer in range(supernet.num_layers):
                if cfg[layer] - step < min_width:
                    continue
                cand = cfg[:layer] + (cfg[layer] - step,) + cfg[layer + 1 :]
                if recalibrate == "candidate":
                    calibrate(cand)
                p, m_, v_ = evaluate(cand)
                cand_macs = config_macs(supernet, cand, image_size=size)
                drop = psnr - p
                score = drop / (macs - cand_macs) if criterion == "psnr_per_mac" else drop
                if best is None or score < best[0]:
                    best = (score, cand, p, cand_macs, m_, v_)
            if best is None:
                break
            _, cfg, psnr, macs, means, variances = best
            if recalibrate == "rung":
                calibrate(cfg)
                psnr, means, variances = evaluate(cfg)
            ladder.append(Rung(cfg, psnr, macs, means, variances))
        return ladder
    finally:
        for k, v in supernet.named_buffers():
            v.copy_(saved_buffers[k])
        supernet.set_config(saved_config)
        supernet.train(was_training)


def pick_rungs(ladder: Sequence[Rung], num: int) -> list[Rung]:
    """``num`` rungs spread evenly in MACs, the largest and smallest included: for each target
    ``linspace(max MACs, min MACs, num)`` the nearest rung not yet taken. Returned in ladder
    order (MACs decreasing)."""
    if not 1 <= num <= len(ladder):
        raise ValueError(f"num must be in [1, {len(ladder)}] (the ladder's length); got {num}")
    macs = np.array([r.macs for r in ladder], dtype=np.float64)
    targets = np.linspace(macs.max(), macs.min(), num)
    taken: list[int] = []
    for t in targets:
        order = np.argsort(np.abs(macs - t), kind="stable")
        taken.append(next(int(i) for i in order if int(i) not in taken))
    return [ladder[i] for i in sorted(taken)]
