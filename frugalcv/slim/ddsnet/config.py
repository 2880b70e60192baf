"""Configs and presets of the ``ddsnet`` recipe: data, model, the three stages and the rows."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from frugalcv.core.config import ConfigError, OptimConfig, TrainConfig
from frugalcv.data.denoise import BLIND_SIGMA_RANGE

__all__ = [
    "PRESETS",
    "Config",
    "DDSNetConfig",
    "DataConfig",
    "ModelConfig",
    "paper_bsd",
    "parse_sigma",
    "tiny",
]

DataName = Literal["skimage-grey", "skimage-color", "bsd68", "set12", "cbsd68", "kodak24"]


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
    static_widths: tuple[int, ...] = ()  # widths with a static row; () = every ddsnet.widths
    static_only: bool = False  # only the static rows (and the noisy input): a schedule study
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
        unknown = [w for w in self.static_widths if w not in self.widths]
        if unknown:
            raise ConfigError(
                f"ddsnet.static_widths {list(self.static_widths)} names widths that are not in "
                f"ddsnet.widths {list(self.widths)} ({unknown}): pick static widths from "
                "ddsnet.widths, or leave it empty for all of them."
            )
        if self.static_only and not self.static_rows:
            raise ConfigError(
                "ddsnet.static_only=true trains only the static rows, but ddsnet.static_rows="
                "false turns them off: set ddsnet.static_rows=true (or static_only=false)."
            )


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
    sigma 25, every stage and row (the classical rows included). The networks end well above the
    noisy input (about 24.8 dB vs about 20) but below the classical baselines (29-31 dB): a smoke
    run, not a measurement (the benchmark trains far longer)."""
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
