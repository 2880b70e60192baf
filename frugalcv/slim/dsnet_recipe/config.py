"""Configs and presets of the ``dsnet`` recipe: data, model, the two stages and latency."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from frugalcv.core.config import ConfigError, OptimConfig, TrainConfig

__all__ = [
    "PRESETS",
    "Config",
    "DSNetConfig",
    "DataConfig",
    "LatencyConfig",
    "ModelConfig",
    "paper_imagenet",
    "tiny",
]


Arch = Literal["ds_mobilenet", "ds_resnet", "ds_vit"]
Scale = Literal["small", "imagenet"]


@dataclass
class DataConfig:
    name: str = "mnist-rot-back"  # a key of frugalcv.data.IMAGE_DATASETS
    root: str = ""  # "" = $FRUGALCV_DATA (embedded sets need neither)
    num_train: int = 0  # 0 = the data set's default size (in-memory sets)
    num_test: int = 0
    augment: bool = True  # zero-pad (size/8 px) and random crop (in-memory sets)
    flip: bool = False  # horizontal flip (off for digits)
    resize: int = 0  # in-memory sets: resize images to this side first (area); 0 = as stored
    image_size: int = 224  # "imagefolder" only: streamed, random-resized crop + flip (timm)
    num_workers: int = 4  # "imagefolder" only: DataLoader workers

    def validate(self) -> None:
        from frugalcv.data import IMAGE_DATASETS

        if self.name not in IMAGE_DATASETS:
            import difflib

            close = difflib.get_close_matches(self.name, list(IMAGE_DATASETS), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"data.name '{self.name}' is not a known data set.{hint} "
                f"Known: {', '.join(IMAGE_DATASETS)}."
            )
        if self.num_train < 0 or self.num_test < 0:
            raise ConfigError("data.num_train and data.num_test must be >= 0 (0 = default size).")
        if self.image_size < 8 or self.num_workers < 0 or (0 < self.resize < 8):
            raise ConfigError(
                "data.image_size must be >= 8, data.resize 0 or >= 8, data.num_workers >= 0."
            )


@dataclass
class ModelConfig:
    arch: Arch = "ds_mobilenet"  # DS-Net's released supernet is a MobileNet
    scale: Scale = "small"  # small: 28-32 px layouts; imagenet: MobileNetV2-1.0/ResNet-50/DeiT-Ti
    widths: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)  # routing widths (reconstruction: 4 paths)
    trunk_width: float = 1.0  # stem + first stage always run at this width
    resnet_depth: int = 20  # small ds_resnet: CIFAR ResNet-(6n+2) with 16/32/64 channels
    vit_patch: int = 4  # small ds_vit: patch side (28 px -> 7x7 tokens)
    vit_embed_dim: int = 64
    vit_depth: int = 4
    vit_heads: int = 4
    gate_attention: bool = False  # DS-Net's double-headed gate (SE head trained in Stage I)

    def validate(self) -> None:
        ws = list(self.widths)
        if len(ws) < 2 or ws != sorted(set(ws)) or ws[0] <= 0 or ws[-1] != 1.0:
            raise ConfigError(
                f"model.widths must be >= 2 distinct ascending ratios in (0, 1] ending in 1.0 "
                f"(the full network); got {self.widths}."
            )
        if not 0 < self.trunk_width <= 1:
            raise ConfigError(f"model.trunk_width must be in (0, 1]; got {self.trunk_width}.")
        if self.resnet_depth < 8 or (self.resnet_depth - 2) % 6:
            raise ConfigError(
                f"model.resnet_depth must be 6n+2 >= 8 (8, 14, 20, 32, 56); got "
                f"{self.resnet_depth}."
            )
        if self.vit_depth < 2 or self.vit_patch < 1 or self.vit_heads < 1:
            raise ConfigError("model.vit_depth must be >= 2, vit_patch and vit_heads >= 1.")
        if self.vit_embed_dim % self.vit_heads:
            raise ConfigError(
                f"model.vit_embed_dim ({self.vit_embed_dim}) must be a multiple of "
                f"model.vit_heads ({self.vit_heads})."
            )


@dataclass
class DSNetConfig:
    # Stage I (train_slim.py, configs/mobilenetv1_bn_uniform.yml)
    num_random: int = 2  # random middle widths per batch (4 passes in all)
    bootstrap: Literal["ema", "live", "none"] = "ema"  # in-place bootstrapping teacher
    ema_decay: float = 0.997  # EMA teacher decay (yml model_ema_decay); see ema_decay_for
    ema_buffers: Literal["ema", "copy"] = "ema"  # BN statistics averaged (timm ModelEma) or copied
    ensemble: bool = False  # IEB (ensemble_ib, off at commit 15cd303)
    mvco_weight: float = 0.0  # multi-view consistency weight (DS-Net++; > 0 feeds two views)
    label_smoothing: float = 0.1  # both train scripts
    supernet_ckpt: str = ""  # checkpoint or run folder of a Stage I run; "" = train it here
    recal_batches: int = 0  # BN recalibration batches per width (0 = one pass over the train set)
    # Stage II (train_slim_gate.py, configs/*_gate.yml)
    gate_epochs: float = 30  # yml epochs
    gate_lr: float = 0.08  # yml lr (SGD, the optim section's momentum/nesterov)
    gate_weight_decay: float = 0.01  # yml weight-decay
    gate_schedule: Literal["cosine", "none"] = "cosine"  # none: a fixed gate lr
    sgs_weight: float = 1.0  # gate_loss weight
    ce_weight: float = 1.0  # end-to-end CE through the straight-through route
    complexity_weight: float = 0.5  # flops_loss weight
    sgs_rule: Literal["official", "paper"] = "official"
    macs_unit: float = 0.0  # penalty unit; 0 = the full width's MACs (reconstruction), 1e9 = code
    double_softmax: bool = False  # the code's SGS CE on Gumbel probabilities
    # Rows
    static_rows: bool = True  # independently trained static networks at each width (reference)
    static_widths: tuple[float, ...] = ()  # widths with a static row; () = every model.widths
    static_only: bool = False  # only the static rows: no stages, no gate (a schedule study)

    def validate(self) -> None:
        if self.num_random < 0 or self.recal_batches < 0:
            raise ConfigError("dsnet.num_random and dsnet.recal_batches must be >= 0.")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"dsnet.ema_decay must be in [0, 1); got {self.ema_decay}.")
        if self.ensemble and self.bootstrap != "ema":
            raise ConfigError("dsnet.ensemble=true (IEB) needs dsnet.bootstrap=ema.")
        if self.mvco_weight > 0 and self.bootstrap == "none":
            raise ConfigError("dsnet.mvco_weight > 0 needs a bootstrap teacher (ema or live).")
        for key in ("mvco_weight", "sgs_weight", "ce_weight", "complexity_weight", "macs_unit"):
            v = getattr(self, key)
            if not (math.isfinite(v) and v >= 0):
                raise ConfigError(f"dsnet.{key} must be a finite number >= 0; got {v}.")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(
                f"dsnet.label_smoothing must be in [0, 1); got {self.label_smoothing}."
            )
        if not (self.gate_epochs > 0 and self.gate_lr > 0 and self.gate_weight_decay >= 0):
            raise ConfigError(
                "dsnet.gate_epochs and dsnet.gate_lr must be > 0, dsnet.gate_weight_decay >= 0."
            )
        if self.static_only and not self.static_rows:
            raise ConfigError(
                "dsnet.static_only=true trains only the static rows, but dsnet.static_rows=false "
                "turns them off: set dsnet.static_rows=true (or static_only=false)."
            )
        if self.sgs_weight == 0 and self.ce_weight == 0:
            raise ConfigError(
                "dsnet.sgs_weight and dsnet.ce_weight are both 0: the gate would learn only to "
                "be cheap. Set one of them > 0."
            )


@dataclass
class LatencyConfig:
    batch_sizes: tuple[int, ...] = (1, 64)  # issue 9: batch 1 (per-image) and 64 (throughput)
    warmup: int = 5  # untimed runs per variant
    repeats: int = 50  # timed runs per variant, interleaved; the median is reported
    only: bool = False  # train nothing: time random-weight supernets (dsnet_latency benchmark)
    nets: tuple[Arch, ...] = ("ds_mobilenet", "ds_resnet")  # only=true: MobileNetV2-1.0, ResNet-50
    image_size: int = 224  # only=true: input side

    def validate(self) -> None:
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise ConfigError(f"latency.batch_sizes must be >= 1; got {self.batch_sizes}.")
        if self.warmup < 0 or self.repeats < 1:
            raise ConfigError("latency.warmup must be >= 0 and latency.repeats >= 1.")
        if self.only and (not self.nets or self.image_size < 32):
            raise ConfigError("latency.only=true needs latency.nets and latency.image_size >= 32.")


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    dsnet: DSNetConfig = field(default_factory=DSNetConfig)
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    # Stage I and the static rows: timm SGD (Nesterov) 0.08 for batch 512, cosine, wd 1e-4
    # (configs/mobilenetv1_bn_uniform.yml); the presets scale lr and length to their data.
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(
            lr=0.08, nesterov=True, weight_decay=1e-4, schedule="cosine", milestones=()
        )
    )
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=150, batch_size=64))

    def validate(self) -> None:
        unknown = [w for w in self.dsnet.static_widths if w not in self.model.widths]
        if unknown:
            raise ConfigError(
                f"dsnet.static_widths {list(self.dsnet.static_widths)} names widths that are not "
                f"in model.widths {list(self.model.widths)} ({unknown}): pick static widths from "
                "model.widths, or leave it empty for all of them."
            )


def tiny() -> Config:
    """About 40 CPU-seconds: DS-ResNet-8 on 2000 embedded mnist-back digits at 14 px, both
    stages, the static reference curve and every evaluation row."""
    return Config(
        data=DataConfig(name="mnist5k-back", num_train=2000, num_test=1000, resize=14),
        model=ModelConfig(arch="ds_resnet", resnet_depth=8),
        # ema_decay_for(31 steps per epoch): DS-Net's 0.997 at the same horizon in epochs
        dsnet=DSNetConfig(ema_decay=0.78, gate_epochs=4, gate_lr=0.1),
        latency=LatencyConfig(repeats=15, warmup=3),
        optim=OptimConfig(
            lr=0.1,
            nesterov=True,
            weight_decay=5e-4,
            schedule="cosine",
            warmup_steps=10,
            milestones=(),
        ),
        train=TrainConfig(epochs=6, batch_size=64, eval_every=0),
    )


def paper_imagenet() -> Config:
    """ImageNet (ImageFolder, 224 px) with the authors' schedules; set model.arch.

    Stage I: 150 epochs, Nesterov SGD lr 0.08 for 8 x 64 images, cosine, 5 warm-up epochs
    (12510 steps at 8 processes x 64), wd 1e-4 (configs/mobilenetv1_bn_uniform.yml). BN
    recalibration on 1000 batches per width (reset_bn). Stage II: 30 epochs, lr 0.08, cosine,
    wd 0.01 (configs/*_gate.yml). ds_vit: the same two stages with MvCo (weight 1, a
    reconstruction); its DeiT-style AdamW schedule is not in any released config, so this
    preset keeps the SGD one (reconstruction).
    """
    return Config(
        data=DataConfig(name="imagefolder", image_size=224, flip=True),
        model=ModelConfig(arch="ds_mobilenet", scale="imagenet"),
        dsnet=DSNetConfig(recal_batches=1000),
        latency=LatencyConfig(repeats=50),
        optim=OptimConfig(
            lr=0.08,
            nesterov=True,
            weight_decay=1e-4,
            schedule="cosine",
            warmup_steps=12510,
            milestones=(),
        ),
        train=TrainConfig(epochs=150, batch_size=64, eval_every=0, devices=8),
    )


PRESETS = {"tiny": tiny, "paper_imagenet": paper_imagenet}
