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
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from frugalcv.core.config import ConfigError, OptimConfig, TrainConfig
from frugalcv.core.jsonio import write_json
from frugalcv.core.loader import TensorLoader
from frugalcv.core.loop import make_schedule
from frugalcv.core.measure import count_params, to_module
from frugalcv.core.recipe import start_run, write_rows
from frugalcv.core.stages import train_rows, train_stage
from frugalcv.core.task import Task
from frugalcv.data.base import stream_generator
from frugalcv.data.denoise import (
    BLIND_SIGMA_RANGE,
    DenoiseData,
    add_gaussian_noise,
    load_denoise,
    noise_transform,
    random_crops,
)
from frugalcv.layers.slimmable import recalibrate_bn
from frugalcv.slim.ddsnet import (
    DenoiseGate,
    DenoiseGateTask,
    DenoiseSupernetTask,
    DynamicDenoiser,
    Rung,
    SlimDnCNN,
    config_macs,
    denoise_loss,
    nlm_denoise,
    per_image_latency,
    pick_rungs,
    psnr_per_image,
    ssim_per_image,
    tailor,
    tv_denoise,
    wavelet_denoise,
)

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
    "tile_test_images",
    "tiny",
]

DataName = Literal["skimage-grey", "skimage-color", "bsd68", "set12", "cbsd68", "kodak24"]
CLASSICAL: dict[str, Callable[..., Tensor]] = {
    "nlm": nlm_denoise,
    "wavelet": wavelet_denoise,
    "tv": tv_denoise,
}


def parse_sigma(text: str) -> float | tuple[float, float]:
    """``"25"`` -> 25.0; ``"blind"`` -> ``BLIND_SIGMA_RANGE`` (U[0, 55] per image, DnCNN-B)."""
    if text == "blind":
        return BLIND_SIGMA_RANGE
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(
            f"data.sigma must be a noise std on the 0-255 scale (15, 25, 50) or 'blind'; "
            f"got {text!r}."
        ) from None
    if not (math.isfinite(value) and 0 < value <= 255):
        raise ConfigError(f"data.sigma must be in (0, 255] or 'blind'; got {text!r}.")
    return value


@dataclass
class DataConfig:
    name: DataName = "skimage-grey"  # embedded; bsd68/set12 train on BSD400 (DnCNN)
    root: str = ""  # real sets: folder holding denoise/<Set>/ ("" = $FRUGALCV_DATA)
    sigma: str = "25"  # noise std, 0-255 scale (DnCNN: 15, 25, 50), or "blind" (U[0, 55])
    noise_seed: int = 0  # seeds the fixed test noise: every training seed sees the same images
    crop: int = 40  # training patch side in px (DnCNN-S: 40; DnCNN-B: 50)
    num_crops: int = 204800  # clean patches drawn once per run (DnCNN-S: 128 x 1600)
    augment: bool = True  # random flip + 90-degree rotation per patch (DnCNN's 8 modes)
    heldout_images: int = 2  # training images kept out of Stages 1 and 3 (tailoring, validation)
    heldout_crops: int = 32  # patches cut from them, with fixed noise
    heldout_crop: int = 48  # their side in px
    calib_crops: int = 256  # noisy training patches that recalibrate BN per configuration
    test_tile: int = 0  # > 0: cut test images into tiles of this side, each its own test image
    max_test: int = 0  # > 0: keep this many test images/tiles, evenly spaced

    def validate(self) -> None:
        parse_sigma(self.sigma)
        if self.crop < 11 or self.heldout_crop < 11 or (0 < self.test_tile < 11):
            raise ConfigError(
                "data.crop, data.heldout_crop and data.test_tile (when > 0) must be >= 11 px "
                "(SSIM's window)."
            )
        if min(self.num_crops, self.heldout_crops, self.calib_crops, self.heldout_images) < 1:
            raise ConfigError(
                "data.num_crops, data.heldout_crops, data.calib_crops and data.heldout_images "
                "must be >= 1."
            )
        if self.max_test < 0:
            raise ConfigError(f"data.max_test must be >= 0 (0 = all); got {self.max_test}.")


@dataclass
class ModelConfig:
    channels: int = 64  # widest hidden layer (DnCNN)
    depth: int = 17  # conv layers (DnCNN-S 17; DnCNN-B 20)
    min_channels: int = 16  # narrowest count per layer (reconstruction)
    channel_step: int = 8  # channel grid (reconstruction)

    def validate(self) -> None:
        if self.depth < 3:
            raise ConfigError(f"model.depth counts every conv and must be >= 3; got {self.depth}.")
        if not 1 <= self.min_channels <= self.channels or self.channel_step < 1:
            raise ConfigError(
                "need 1 <= model.min_channels <= model.channels and model.channel_step >= 1."
            )
        if (self.channels - self.min_channels) % self.channel_step:
            raise ConfigError(
                f"model.channels - model.min_channels must be a multiple of model.channel_step "
                f"({self.channels} - {self.min_channels} vs {self.channel_step})."
            )


@dataclass
class DDSNetConfig:
    # Stage 1
    num_random: int = 2  # random configurations per batch besides largest/smallest (DS-Net)
    random_mode: Literal["layerwise", "uniform"] = "layerwise"  # reconstruction
    loss: Literal["l2", "l1"] = "l2"  # DnCNN's MSE
    distill_weight: float = 0.0  # in-place distillation from the largest (off: exact target)
    supernet_ckpt: str = ""  # checkpoint or run folder of a Stage 1 run; "" = train it here
    # Stage 2
    criterion: Literal["psnr_per_mac", "psnr"] = "psnr_per_mac"  # reconstruction
    recalibrate: Literal["candidate", "rung", "none"] = "candidate"  # BN per candidate
    tailor_step: int = 0  # channels cut per move; 0 = model.channel_step
    num_rungs: int = 4  # sub-networks the gate chooses from (reconstruction)
    # Stage 3
    gate_rule: Literal["cheapest_within", "binary"] = "cheapest_within"  # reconstruction
    tolerance: float = 0.1  # dB: the easy/hard threshold (the claim's 0.1 dB)
    complexity_weight: float = 0.0  # DS-Net's (E[MACs]/MACs_max)^2 penalty; off
    gate_crop: int = 64  # gate training patch side (the test tile size, so features match)
    gate_crops: int = 2048  # gate training patches
    gate_epochs: float = 2.0  # passes over them
    gate_lr: float = 1e-3  # Adam (reconstruction)
    gate_schedule: Literal["cosine", "none"] = "cosine"  # none: a fixed gate lr
    # Rows
    widths: tuple[int, ...] = (16, 32, 48, 64)  # uniform sub-networks and static rows
    static_rows: bool = True  # individually trained static DnCNNs at each width
    classical: bool = True  # NLM, wavelet and TV rows (scikit-image)
    latency_images: int = 16  # test images timed per row (evenly spaced), batch 1
    latency_repeats: int = 3  # timed runs per image (median), after 1 warm-up
    figure: bool = True  # write the two PNGs

    def validate(self) -> None:
        if self.num_random < 0 or self.tailor_step < 0:
            raise ConfigError("ddsnet.num_random and ddsnet.tailor_step must be >= 0.")
        if self.num_rungs < 2:
            raise ConfigError(f"ddsnet.num_rungs must be >= 2; got {self.num_rungs}.")
        for key in ("distill_weight", "tolerance", "complexity_weight"):
            v = getattr(self, key)
            if not (math.isfinite(v) and v >= 0):
                raise ConfigError(f"ddsnet.{key} must be a finite number >= 0; got {v}.")
        if not (self.gate_epochs > 0 and self.gate_lr > 0):
            raise ConfigError("ddsnet.gate_epochs and ddsnet.gate_lr must be > 0.")
        if self.gate_crop < 11 or self.gate_crops < 1:
            raise ConfigError("ddsnet.gate_crop must be >= 11 px and ddsnet.gate_crops >= 1.")
        if not self.widths or list(self.widths) != sorted(set(self.widths)):
            raise ConfigError(
                f"ddsnet.widths must be distinct ascending channel counts; got {self.widths}."
            )
        if self.latency_images < 1 or self.latency_repeats < 1:
            raise ConfigError("ddsnet.latency_images and ddsnet.latency_repeats must be >= 1.")


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    ddsnet: DDSNetConfig = field(default_factory=DDSNetConfig)
    # Stage 1 and the static rows: Adam 1e-3, x0.2 at epochs 30/60/90, no weight decay
    # (cszn/DnCNN TrainingCodes/dncnn_pytorch/main_train.py).
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(
            name="adam", lr=1e-3, weight_decay=0.0, milestones=(30, 60, 90), gamma=0.2
        )
    )
    # DnCNN: batch 128; the PyTorch code trains 180 epochs of its patch set.
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=180, batch_size=128))

    def validate(self) -> None:
        m, d = self.model, self.ddsnet
        choices = set(range(m.min_channels, m.channels + 1, m.channel_step))
        bad = [w for w in d.widths if w not in choices]
        if bad or d.widths[-1] != m.channels:
            raise ConfigError(
                f"ddsnet.widths must be channel counts of the supernet "
                f"({sorted(choices)}) ending at model.channels={m.channels}; got {d.widths}."
            )
        if d.tailor_step % m.channel_step:
            raise ConfigError(
                f"ddsnet.tailor_step must be a multiple of model.channel_step={m.channel_step}."
            )
        layers = m.depth - 1
        ladder = 1 + layers * (m.channels - m.min_channels) // (d.tailor_step or m.channel_step)
        if d.num_rungs > ladder:
            raise ConfigError(
                f"ddsnet.num_rungs={d.num_rungs} exceeds the ladder's {ladder} rungs; lower it."
            )


def tiny() -> Config:
    """About 45 CPU-seconds: a 6-layer, 16-channel supernet on embedded grey photographs at
    sigma 25, every stage and row (the classical rows included); visibly above the noisy input
    and on par with the classical baselines."""
    return Config(
        data=DataConfig(
            crop=32,
            num_crops=640,
            heldout_crops=16,
            heldout_crop=32,
            calib_crops=64,
            test_tile=64,
            max_test=24,
        ),
        model=ModelConfig(channels=16, depth=6, min_channels=8, channel_step=4),
        ddsnet=DDSNetConfig(
            num_rungs=3,
            num_random=1,
            gate_crop=64,
            gate_crops=192,
            gate_epochs=2,
            gate_lr=3e-3,
            widths=(8, 16),
            latency_images=4,
            latency_repeats=2,
        ),
        optim=OptimConfig(
            name="adam", lr=3e-3, weight_decay=0.0, schedule="cosine", milestones=(), warmup_steps=5
        ),
        train=TrainConfig(epochs=3, batch_size=16, eval_every=0, log_every=10),
    )


def paper_bsd() -> Config:
    """BSD400 -> BSD68 (grey), DnCNN-S-17 at 64 channels, sigma 25, DnCNN's data protocol
    (40 px patches, 128 x 1600 of them, batch 128, Adam 1e-3 x0.2 at 30/60/90 of 180 epochs,
    as the PyTorch DnCNN code); needs ``$FRUGALCV_DATA/denoise/{BSD400,BSD68}``. The gate sees
    whole test images. Not run here."""
    return Config(
        data=DataConfig(name="bsd68", sigma="25", heldout_images=12, calib_crops=1024),
        ddsnet=DDSNetConfig(gate_crop=96, gate_crops=16384, gate_epochs=10, latency_images=68),
    )


PRESETS = {"tiny": tiny, "paper_bsd": paper_bsd}


# ---------------------------------------------------------------------------------------------
# Task and data


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


def _flip_rotate(clean: Tensor, generator: torch.Generator) -> Tensor:
    """One of DnCNN's 8 modes per patch: flip with prob. 1/2, then rot90 by k ~ U{0..3}."""
    ks = torch.randint(4, (clean.shape[0],), generator=generator).tolist()
    flips = torch.randint(2, (clean.shape[0],), generator=generator).tolist()
    return torch.stack(
        [
            torch.rot90(x.flip(-1) if f else x, k, dims=(-2, -1))
            for x, k, f in zip(clean, ks, flips, strict=True)
        ]
    )


def _train_transform(sigma: float | tuple[float, float], *, augment: bool) -> Callable:
    add_noise = noise_transform(sigma)

    def transform(batch: tuple[Tensor, ...], generator: torch.Generator) -> tuple[Tensor, Tensor]:
        clean = _flip_rotate(batch[0], generator) if augment else batch[0]
        return add_noise((clean,), generator)

    return transform


def _noisy(
    clean: Tensor, sigma: float | tuple[float, float], generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Fixed noise for a stack of images: ``(noisy, sigmas)``, one sigma per image when blind."""
    if isinstance(sigma, tuple):
        lo, hi = sigma
        sigmas = lo + (hi - lo) * torch.rand(clean.shape[0], generator=generator)
    else:
        sigmas = torch.full((clean.shape[0],), float(sigma))
    return add_gaussian_noise(clean, sigmas, generator=generator), sigmas


def tile_test_images(
    data: DenoiseData, *, size: int, seed: int, max_images: int = 0
) -> tuple[list[Tensor], list[Tensor], Tensor]:
    """The test images as non-overlapping ``size x size`` tiles (row-major from the top-left
    corner; the remainder at the right and bottom is dropped), each with its own noise draw
    (stream 0 of ``stream_generator(seed, .)``, as ``load_denoise``). ``size = 0`` keeps the
    loader's whole noisy images. ``max_images > 0`` keeps that many, evenly spaced.

    Returns:
        ``(noisy, clean, sigmas)``: lists of ``(C, h, w)`` and ``(M,)`` sigmas (0-255 scale).
    """
    if size > 0:
        tiles = [
            im[:, r : r + size, c : c + size]
            for im in data.test_clean
            for r in range(0, im.shape[-2] - size + 1, size)
            for c in range(0, im.shape[-1] - size + 1, size)
        ]
        if not tiles:
            raise ValueError(f"data.test_tile={size} exceeds every test image; use a smaller one")
        clean = torch.stack(tiles)  # (M, C, size, size)
        noisy, sigmas = _noisy(clean, data.sigma, stream_generator(seed, 0))
        out_noisy, out_clean = list(noisy), list(clean)
    else:
        out_noisy, out_clean, sigmas = (
            list(data.test_noisy),
            list(data.test_clean),
            data.test_sigmas,
        )
    if max_images and max_images < len(out_clean):
        keep = np.unique(np.linspace(0, len(out_clean) - 1, max_images).round().astype(int))
        out_noisy = [out_noisy[i] for i in keep]
        out_clean = [out_clean[i] for i in keep]
        sigmas = sigmas[torch.as_tensor(keep)]
    return out_noisy, out_clean, sigmas


@dataclass
class _Data:
    name: str
    source: str
    in_chans: int
    sigma: float | tuple[float, float]
    train: TensorLoader  # Stage 1 and static rows: (noisy, clean) patches
    gate_train: TensorLoader  # Stage 3: larger patches
    heldout: TensorLoader  # fixed (noisy, clean) pairs from held-out training images
    heldout_noisy: Tensor
    heldout_clean: Tensor
    calib: list[Tensor]  # noisy training patches, in batches, for BN recalibration
    test_noisy: list[Tensor]
    test_clean: list[Tensor]
    test_sigmas: Tensor


def load_data(cfg: Config) -> _Data:
    d, t = cfg.data, cfg.train
    sigma = parse_sigma(d.sigma)
    data = load_denoise(d.name, sigma=sigma, seed=d.noise_seed, root=d.root or None)
    n = len(data.train)
    if d.heldout_images >= n:
        raise ConfigError(
            f"data.heldout_images={d.heldout_images} leaves no training image of {n}; lower it."
        )
    # evenly spaced held-out images (a fixed choice, the same for every seed)
    held = set(np.linspace(0, n - 1, d.heldout_images + 2)[1:-1].round().astype(int).tolist())
    train_imgs = [im for i, im in enumerate(data.train) if i not in held]
    held_imgs = [im for i, im in enumerate(data.train) if i in held]
    crops = random_crops(train_imgs, d.num_crops, d.crop, generator=stream_generator(t.seed, 1))
    gate_crops = random_crops(
        train_imgs,
        cfg.ddsnet.gate_crops,
        cfg.ddsnet.gate_crop,
        generator=stream_generator(t.seed, 2),
    )
    # held-out pairs and calibration inputs do not depend on the training seed
    h_clean = random_crops(
        held_imgs, d.heldout_crops, d.heldout_crop, generator=stream_generator(d.noise_seed, 3)
    )
    h_noisy, _ = _noisy(h_clean, sigma, stream_generator(d.noise_seed, 4))
    calib_clean = random_crops(
        train_imgs, d.calib_crops, d.crop, generator=stream_generator(d.noise_seed, 5)
    )
    calib_noisy, _ = _noisy(calib_clean, sigma, stream_generator(d.noise_seed, 6))
    bs = t.batch_size
    test_noisy, test_clean, test_sigmas = tile_test_images(
        data, size=d.test_tile, seed=d.noise_seed, max_images=d.max_test
    )
    transform = _train_transform(sigma, augment=d.augment)
    return _Data(
        name=f"{data.name} sigma={d.sigma}",
        source=data.source,
        in_chans=data.in_chans,
        sigma=sigma,
        train=TensorLoader(
            (crops,), batch_size=bs, shuffle=True, seed=t.seed, drop_last=True, transform=transform
        ),
        gate_train=TensorLoader(
            (gate_crops,),
            batch_size=bs,
            shuffle=True,
            seed=t.seed,
            drop_last=True,
            transform=transform,
        ),
        heldout=TensorLoader((h_noisy, h_clean), batch_size=t.eval_batch_size),
        heldout_noisy=h_noisy,
        heldout_clean=h_clean,
        calib=[calib_noisy[i : i + bs] for i in range(0, len(calib_noisy), bs)],
        test_noisy=test_noisy,
        test_clean=test_clean,
        test_sigmas=test_sigmas,
    )


# ---------------------------------------------------------------------------------------------
# evaluation helpers


def _batched(
    fn: Callable[[Tensor], Tensor],
    images: Sequence[Tensor],
    *,
    batch_size: int,
    module: nn.Module,
) -> list[Tensor]:
    """``fn`` over runs of equally sized images, ``batch_size`` at a time; outputs in order.

    Each batch is moved to ``module``'s device (and floating dtype) for ``fn``, and the outputs
    come back to the images' device and dtype.
    """
    out: list[Tensor] = []
    i = 0
    while i < len(images):
        j = i + 1
        while j < len(images) and j - i < batch_size and images[j].shape == images[i].shape:
            j += 1
        x = torch.stack(list(images[i:j]))
        out += list(fn(to_module(x, module)).to(x))
        i = j
    return out


def _scores(outputs: Sequence[Tensor], clean: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """Per-image PSNR and SSIM ``(M,)`` each."""
    psnr = torch.stack(
        [psnr_per_image(o[None], c[None])[0] for o, c in zip(outputs, clean, strict=True)]
    )
    ssim = torch.stack(
        [ssim_per_image(o[None], c[None])[0] for o, c in zip(outputs, clean, strict=True)]
    )
    return psnr, ssim


def _per_pixel_macs(net: SlimDnCNN, config: Sequence[int]) -> float:
    return config_macs(net, config, image_size=(8, 8)) / 64.0  # exact: stride 1, same padding


def interpolate_curve(points: Sequence[tuple[float, float]], x: float) -> tuple[float, str]:
    """``y`` of the piecewise-linear curve through ``(x, y)`` points at ``x``; clamped to the
    end points outside it. Example: ``[(10, 30.0), (30, 31.0)]`` at 20 gives 30.5."""
    pts = sorted(points)
    if x <= pts[0][0]:
        return pts[0][1], "clamped to the cheapest"
    if x >= pts[-1][0]:
        return pts[-1][1], "clamped to the widest"
    for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
        if x0 <= x <= x1:
            return y0 + (x - x0) / (x1 - x0) * (y1 - y0), "interpolated"
    raise AssertionError("unreachable")


def _row(name: str, psnr: Tensor, ssim: Tensor, *, steps: int = 0, **extra: Any) -> dict:
    """A row summary: test PSNR/SSIM means as ``final`` (and ``best``: nothing is selected)."""
    p, s = float(psnr.mean()), float(ssim.mean())
    return {
        "name": name,
        "final": {"psnr": p, "ssim": s},
        "best": {"psnr": p, "step": steps},
        "steps": steps,
        **extra,
    }


def _snapshot(net: SlimDnCNN, config: Sequence[int], psnr: float, macs: int) -> Rung:
    means, var = [], []
    for bn, c in zip(net.norms(), config[1:], strict=True):
        k = bn.width_index(c)
        means.append(bn.running_mean[k, :c].detach().cpu().clone())
        var.append(bn.running_var[k, :c].detach().cpu().clone())
    return Rung(tuple(config), psnr, macs, means, var)


def _recalibrated(net: SlimDnCNN, config: Sequence[int], calib: list[Tensor]) -> Rung:
    """A rung for ``config`` with BN statistics recalibrated on ``calib`` (PSNR/MACs unset)."""
    recalibrate_bn(net, calib, widths=[tuple(config)], forward=lambda x, c: net(x, config=c))
    return _snapshot(net, config, float("nan"), 0)


# ---------------------------------------------------------------------------------------------
# the recipe


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
    ladder = tailor(
        supernet,
        data.heldout_noisy,
        data.heldout_clean,
        step=d.tailor_step or None,
        calib=torch.cat(data.calib),
        criterion=d.criterion,
        recalibrate=d.recalibrate,
        batch_size=cfg.train.eval_batch_size,
    )
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

    # individually trained static networks
    static: dict[int, nn.Module] = {}
    static_summaries: list[dict] = []
    if d.static_rows:
        rows_w = {f"static_c{w}": w for w in d.widths}

        def make_task(row: str) -> Task:
            task = DenoiseTask(model=new_net(rows_w[row]), loss=d.loss)
            static[rows_w[row]] = task.model
            return task

        static_summaries = train_rows(
            ctx,
            cfg,
            rows=list(rows_w),
            make_task=make_task,
            loaders=(data.train, data.heldout),
            extra=lambda row, task: {"channels": rows_w[row], "params": count_params(task.model)},
        )

    rows = _evaluate(cfg, data, supernet, dyn, static, static_summaries)
    summary = write_rows(ctx, dataset=data.name, rows=[s1, s2, s3, *rows])
    if ctx.is_main:
        if d.figure:
            _figures(ctx.out_dir, rows, ladder_json, data, dyn, static, cfg)
        _print_notes(rows, m.channels)
    return summary


@torch.no_grad()
def _evaluate(
    cfg: Config,
    data: _Data,
    supernet: SlimDnCNN,
    dyn: DynamicDenoiser,
    static: dict[int, nn.Module],
    static_summaries: list[dict],
) -> list[dict]:
    """Every evaluation row (noisy, classical, static, uniform, rungs, dynamic, derived)."""
    d = cfg.ddsnet
    noisy, clean = data.test_noisy, data.test_clean
    bs = cfg.train.eval_batch_size
    pixels = float(np.mean([im.shape[-1] * im.shape[-2] for im in clean]))
    lat_idx = np.unique(
        np.linspace(0, len(noisy) - 1, min(d.latency_images, len(noisy))).round().astype(int)
    )
    lat_images = [noisy[i] for i in lat_idx]

    def latency(model: nn.Module, forward: Callable | None = None) -> float:
        model.eval()
        r = per_image_latency(
            model, lat_images, forward=forward, warmup=1, repeats=d.latency_repeats
        )
        return round(r["mean_ms"], 3)

    full_macs = _per_pixel_macs(supernet, supernet.largest_config) * pixels
    rows: list[dict] = []
    p, s = _scores(noisy, clean)
    rows.append(_row("noisy", p, s, macs=0, note="the noisy input"))

    if d.classical:
        known = not isinstance(data.sigma, tuple)  # blind: the baselines estimate sigma
        for name, fn in CLASSICAL.items():
            t0 = time.time()
            outs = []
            for i, y in enumerate(noisy):
                sig = float(data.test_sigmas[i]) if known else None
                outs.append(fn(y[None], sigma=sig)[0])
            p, s = _scores(outs, clean)
            sig_lat = float(data.test_sigmas[0]) if known else None
            ms = latency(nn.Identity(), lambda _m, x, f=fn, sg=sig_lat: f(x, sigma=sg))
            rows.append(
                _row(
                    name,
                    p,
                    s,
                    macs=0,
                    latency_ms=ms,
                    wall_s=round(time.time() - t0, 2),
                    sigma_known=known,
                )
            )

    supernet.eval()
    # individually trained static networks
    for summ in static_summaries:
        w = int(summ["channels"])
        net = static[w].eval()
        outs = _batched(net, noisy, batch_size=bs, module=net)
        p, s = _scores(outs, clean)
        macs = _per_pixel_macs(net, net.largest_config) * pixels
        rows.append(
            _row(
                f"static_c{w}",
                p,
                s,
                steps=summ["steps"],
                macs=macs,
                macs_frac=macs / full_macs,
                params=summ["params"],
                latency_ms=latency(net),
                wall_s=summ["wall_s"],
                heldout=summ["final"],
            )
        )

    # uniform-width sub-networks of the supernet, each with recalibrated BN
    calib = data.calib
    for w in d.widths:
        cfg_w = (w,) * supernet.num_layers
        _recalibrated(supernet, cfg_w, calib)
        supernet.eval()
        outs = _batched(
            lambda x, c=cfg_w: supernet(x, config=c), noisy, batch_size=bs, module=supernet
        )
        p, s = _scores(outs, clean)
        macs = _per_pixel_macs(supernet, cfg_w) * pixels
        ms = latency(supernet, lambda mm, x, c=cfg_w: mm(x, config=c))
        rows.append(
            _row(f"supernet_c{w}", p, s, macs=macs, macs_frac=macs / full_macs, latency_ms=ms)
        )

    # tailored rungs (MACs ascending) and the dynamic network
    dyn.eval()
    for k in range(dyn.num_choices):
        outs = _batched(lambda x, k=k: dyn.forward_rung(x, k), noisy, batch_size=bs, module=dyn)
        p, s = _scores(outs, clean)
        macs = _per_pixel_macs(supernet, dyn.config(k)) * pixels
        ms = latency(dyn, lambda mm, x, k=k: mm.forward_rung(x, k))
        rows.append(
            _row(
                f"rung{k}",
                p,
                s,
                macs=macs,
                macs_frac=macs / full_macs,
                latency_ms=ms,
                config=",".join(map(str, dyn.config(k))),
            )
        )
    t0 = time.time()
    outs, routes = dyn.denoise_each(noisy)
    wall = time.time() - t0
    p, s = _scores(outs, clean)
    route = torch.tensor(routes)
    per_px = torch.tensor(
        [_per_pixel_macs(supernet, dyn.config(k)) for k in range(dyn.num_choices)]
    )
    sizes = torch.tensor([float(im.shape[-1] * im.shape[-2]) for im in clean])
    gate_macs = float(dyn.gate_macs(tuple(noisy[0].shape[-2:])))
    macs = float((per_px[route] * sizes).mean()) + gate_macs
    frac = torch.bincount(route, minlength=dyn.num_choices).float() / len(route)

    def dyn_forward(mm: DynamicDenoiser, x: Tensor) -> Tensor:
        return mm.forward_rung(x, int(mm.route(x).index[0]))

    lat_route = route[torch.as_tensor(lat_idx)]
    rows.append(
        _row(
            "dynamic",
            p,
            s,
            macs=macs,
            macs_frac=macs / full_macs,
            gate_macs=gate_macs,
            latency_ms=latency(dyn, dyn_forward),
            latency_macs_frac=float((per_px[lat_route]).mean() / per_px[-1]),
            wall_s=round(wall, 2),
            **{f"route_pct_rung{k}": float(frac[k]) for k in range(dyn.num_choices)},
        )
    )
    by = {r["name"]: r for r in rows}
    full_lat = by[f"supernet_c{supernet.channels}"]["latency_ms"]
    for r in rows:
        if r.get("latency_ms") and "macs_frac" in r:
            r["speedup"] = round(full_lat / r["latency_ms"], 3)
        r["num_threads"] = torch.get_num_threads()
        r.setdefault("wall_s", 0.0)

    # derived rows: claims compare row means with a margin >= 0 only
    dyn_p = by["dynamic"]["final"]["psnr"]
    sup_full = by[f"supernet_c{supernet.channels}"]["final"]["psnr"]
    rows.append(
        _derived(
            "supernet_full_minus_tol",
            sup_full - d.tolerance,
            full_macs,
            f"supernet full-width PSNR minus {d.tolerance} dB",
        )
    )
    if static_summaries:
        curve = [
            (by[f"static_c{w}"]["macs"], by[f"static_c{w}"]["final"]["psnr"]) for w in d.widths
        ]
        interp, how = interpolate_curve(curve, macs)
        rows.append(
            _derived(
                "static_at_dynamic_macs",
                interp,
                macs,
                f"static curve at DDS-Net's mean MACs, linear in MACs, {how}",
            )
        )
        st_full = by[f"static_c{d.widths[-1]}"]["final"]["psnr"]
        rows.append(
            _derived(
                "static_full_minus_tol",
                st_full - d.tolerance,
                full_macs,
                f"static full-width PSNR minus {d.tolerance} dB",
            )
        )
    by["dynamic"]["gap_to_supernet_full_db"] = round(dyn_p - sup_full, 4)
    return rows


def _derived(name: str, psnr: float, macs: float, how: str) -> dict:
    return {
        "name": name,
        "final": {"psnr": psnr},
        "best": {"psnr": psnr, "step": 0},
        "steps": 0,
        "wall_s": 0.0,
        "macs": macs,
        "derived": how,
    }


def _print_notes(rows: list[dict], channels: int) -> None:
    by = {r["name"]: r for r in rows}
    noisy = by["noisy"]["final"]["psnr"]
    for r in rows:
        if "derived" in r:
            continue
        f = r["final"]
        extra = ""
        if "macs_frac" in r:
            extra = f", {r['macs_frac']:.2f}x full MACs, {r.get('latency_ms', 0):.1f} ms/image"
        print(
            f"{r['name']}: PSNR {f['psnr']:.2f} dB ({f['psnr'] - noisy:+.2f} vs noisy), "
            f"SSIM {f['ssim']:.3f}{extra}"
        )
    dyn, full = by["dynamic"], by[f"supernet_c{channels}"]
    gap = dyn["final"]["psnr"] - full["final"]["psnr"]
    print(
        f"notice: DDS-Net is {gap:+.2f} dB from the supernet's full width at "
        f"{dyn['macs_frac']:.2f}x its MACs (speed-up {dyn.get('speedup', float('nan')):.2f}x)"
    )
    if "static_at_dynamic_macs" in by:
        st = by["static_at_dynamic_macs"]["final"]["psnr"]
        print(
            f"notice: static networks at the same MACs reach {st:.2f} dB; DDS-Net "
            f"{'beats' if dyn['final']['psnr'] > st else 'trails'} them by "
            f"{abs(dyn['final']['psnr'] - st):.2f} dB"
        )


# ---------------------------------------------------------------------------------------------
# figures


@torch.no_grad()
def _figures(
    out_dir: Path,
    rows: list[dict],
    ladder: dict,
    data: _Data,
    dyn: DynamicDenoiser,
    static: dict[int, nn.Module],
    cfg: Config,
) -> None:
    """``ddsnet_psnr_vs_macs.png`` and ``ddsnet_denoised.png`` (matplotlib, Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    by = {r["name"]: r for r in rows}
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax, ax2 = fig.subplots(1, 2)
    series = (
        ("static_c", "static (trained alone)", "s-"),
        ("supernet_c", "supernet uniform", "o-"),
        ("rung", "tailored rungs", "^-"),
    )
    for prefix, label, style in series:
        pts = sorted(
            (r["macs"] / 1e6, r["final"]["psnr"]) for n, r in by.items() if n.startswith(prefix)
        )
        if pts:
            ax.plot(*zip(*pts, strict=True), style, label=label)
    dy = by["dynamic"]
    ax.plot([dy["macs"] / 1e6], [dy["final"]["psnr"]], "*", ms=14, label="DDS-Net dynamic")
    for name, style in (("nlm", ":"), ("wavelet", "-."), ("tv", "--"), ("noisy", "-")):
        if name in by:
            ax.axhline(by[name]["final"]["psnr"], ls=style, c="grey", lw=1)
            ax.annotate(name, (ax.get_xlim()[0], by[name]["final"]["psnr"]), fontsize=7)
    ax.set_xlabel("mean MACs per test image (M)")
    ax.set_ylabel("test PSNR (dB)")
    ax.set_title(f"test images ({data.name})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    lad = ladder["rungs"]
    ax2.plot([r["macs"] / 1e6 for r in lad], [r["psnr"] for r in lad], ".-", label="ladder")
    ax2.plot(
        [lad[i]["macs"] / 1e6 for i in ladder["picked"]],
        [lad[i]["psnr"] for i in ladder["picked"]],
        "o",
        label="rungs of the gate",
    )
    ax2.set_xlabel("MACs per held-out crop (M)")
    ax2.set_ylabel("held-out PSNR (dB)")
    ax2.set_title("Stage 2: one greedy tailoring pass")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8)
    fig.savefig(out_dir / "ddsnet_psnr_vs_macs.png", dpi=110)

    # a few test images side by side: one per route taken when possible
    _, routes = dyn.denoise_each(data.test_noisy)
    picks: list[int] = []
    for k in range(dyn.num_choices):
        picks += [i for i, r in enumerate(routes) if r == k][:1]
    picks = (picks + list(range(len(routes))))[:3]
    picks = list(dict.fromkeys(picks))
    classical = max(
        (n for n in CLASSICAL if n in by), key=lambda n: by[n]["final"]["psnr"], default=None
    )
    full_static = static.get(cfg.ddsnet.widths[-1])
    cols = ["noisy"] + ([classical] if classical else []) + (["static"] if full_static else [])
    cols += ["DDS-Net", "clean"]
    fig = Figure(figsize=(2.2 * len(cols), 2.3 * len(picks)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_2d(fig.subplots(len(picks), len(cols)))
    known = not isinstance(data.sigma, tuple)
    for r_i, i in enumerate(picks):
        y, x = data.test_noisy[i][None], data.test_clean[i][None]
        ims = {
            "noisy": y,
            "clean": x,
            "DDS-Net": dyn.forward_rung(to_module(y, dyn), routes[i]).to(y),
        }
        if classical:
            sig = float(data.test_sigmas[i]) if known else None
            ims[classical] = CLASSICAL[classical](y, sigma=sig)
        if full_static:
            ims["static"] = full_static.eval()(to_module(y, full_static)).to(y)
        for c_i, col in enumerate(cols):
            a = axes[r_i, c_i]
            im = ims[col][0].clamp(0, 1)
            a.imshow(im.permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray", vmin=0, vmax=1)
            title = col if col != "DDS-Net" else f"DDS-Net (rung {routes[i]})"
            if col != "clean":
                title += f"\n{float(psnr_per_image(ims[col], x)[0]):.2f} dB"
            a.set_title(title, fontsize=8)
            a.axis("off")
    fig.savefig(out_dir / "ddsnet_denoised.png", dpi=110)


def load_ladder(path: str | Path) -> dict:
    """Read a run's ``ladder.json`` (configurations, held-out PSNR and MACs of every rung)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no ladder at {path}; run `frugalcv run ddsnet` first")
    return json.loads(path.read_text())
