"""``dsnet``: DS-Net / DS-Net++ in two stages, then static, dynamic and random-gate rows.

C. Li et al., "Dynamic Slimmable Network" (CVPR 2021) and "DS-Net++" (arXiv 2109.10060).

1. Stage I (:class:`~frugalcv.slim.SupernetTask`): the weight-sharing supernet with the sandwich
   rule, in-place bootstrapping from an EMA copy and, optionally, multi-view consistency.
2. BN recalibration of every routing width (:func:`~frugalcv.slim.recalibrate_supernet`).
3. Stage II (:class:`~frugalcv.slim.GateTask`): the gate of the frozen supernet, with its own
   optimizer and schedule (or a fixed lr).
4. Rows, all on the same test set: the supernet's static sub-networks at each width, the dynamic
   network (gate-routed, sliced, grouped by route), a random gate at exactly the same cost (the
   gate's routes shuffled over the test images) and, as the reference curve, independently
   trained static networks at each width (same architecture, init, data and schedule).
   Each row carries its accuracy, mean MACs per image and CPU latency at batch 1 and 64
   (medians of interleaved runs in this process).

``latency.only=true`` trains nothing: it times random-weight 224 px supernets (full width, each
slice, and the authors' masking at each width) for the ``dsnet_latency`` benchmark.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from frugalcv.core.config import ConfigError, OptimConfig, TrainConfig
from frugalcv.core.loader import DatasetLoader, TensorLoader, random_crop_flip
from frugalcv.core.loop import make_schedule
from frugalcv.core.measure import module_device, to_module
from frugalcv.core.recipe import start_run, write_rows
from frugalcv.core.stages import train_rows, train_stage
from frugalcv.core.task import Task
from frugalcv.layers.slimmable import per_sample_widths
from frugalcv.slim.cnn import DSMobileNetV2, DSResNet, ds_mobilenet_v2_imagenet, ds_resnet50
from frugalcv.slim.cost import macs_per_width
from frugalcv.slim.dsnet import GateTask, SupernetTask, recalibrate_supernet
from frugalcv.slim.supernet import SlimSupernet, grouped_forward
from frugalcv.slim.vit import DSViT

__all__ = [
    "PRESETS",
    "Config",
    "DSNetConfig",
    "DataConfig",
    "LatencyConfig",
    "ModelConfig",
    "StaticWidth",
    "build_supernet",
    "evaluate_rows",
    "interleaved_latency",
    "latency_rows",
    "paper_imagenet",
    "run",
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
    ema_decay: float = 0.997  # EMA teacher decay (yml model_ema_decay)
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


def tiny() -> Config:
    """About 40 CPU-seconds: DS-ResNet-8 on 2000 embedded mnist-back digits at 14 px, both
    stages, the static reference curve and every evaluation row."""
    return Config(
        data=DataConfig(name="mnist5k-back", num_train=2000, num_test=1000, resize=14),
        model=ModelConfig(arch="ds_resnet", resnet_depth=8),
        dsnet=DSNetConfig(ema_decay=0.95, gate_epochs=4, gate_lr=0.1),
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


# ---------------------------------------------------------------------------------------------
# Models


def build_supernet(
    cfg: ModelConfig, *, num_classes: int, in_chans: int, image_size: int
) -> SlimSupernet:
    """The supernet of ``cfg`` for ``(in_chans, image_size, image_size)`` inputs."""
    common = dict(widths=cfg.widths, trunk_width=cfg.trunk_width)
    if cfg.scale == "imagenet":
        if cfg.arch == "ds_mobilenet":
            return ds_mobilenet_v2_imagenet(num_classes=num_classes, **common)
        if cfg.arch == "ds_resnet":
            return ds_resnet50(num_classes=num_classes, **common)
        # DeiT-Ti layout (Touvron et al. 2021): patch 16, dim 192, depth 12, 3 heads
        return DSViT(
            image_size=image_size,
            patch=16,
            in_channels=in_chans,
            num_classes=num_classes,
            embed_dim=192,
            depth=12,
            num_heads=3,
            gate_attention=cfg.gate_attention,
            **common,
        )
    if cfg.arch == "ds_mobilenet":
        return DSMobileNetV2(
            num_classes=num_classes,
            in_channels=in_chans,
            gate_attention=cfg.gate_attention,
            **common,
        )
    if cfg.arch == "ds_resnet":
        n = (cfg.resnet_depth - 2) // 6
        return DSResNet(
            block="basic",
            layers=(n, n, n),
            planes=(16, 32, 64),
            stem="cifar",
            num_classes=num_classes,
            in_channels=in_chans,
            gate_attention=cfg.gate_attention,
            **common,
        )
    if image_size % cfg.vit_patch:
        raise ConfigError(
            f"model.vit_patch={cfg.vit_patch} does not divide the {image_size} px images; "
            f"choose a divisor (28 px: 4 or 7; 32 px: 4 or 8)."
        )
    return DSViT(
        image_size=image_size,
        patch=cfg.vit_patch,
        in_channels=in_chans,
        num_classes=num_classes,
        embed_dim=cfg.vit_embed_dim,
        depth=cfg.vit_depth,
        num_heads=cfg.vit_heads,
        gate_attention=cfg.gate_attention,
        **common,
    )


class StaticWidth(nn.Module):
    """A supernet used at one fixed width only: an independently trained static network.

    Only the slice ``weight[:w C_out, :w C_in]`` of each layer (and that width's BN statistics)
    is ever used, so it is the width-``w`` network of the same architecture, initialised like
    the supernet. Shapes: ``x: (B, C, H, W)`` -> ``(B, num_classes)``.
    """

    def __init__(self, *, model: SlimSupernet, width: float) -> None:
        super().__init__()
        self.model, self.width = model, float(width)
        model.gate.requires_grad_(False)  # never used by a static network

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x, width=self.width)


class _ClassifyTask(Task):
    """Label-smoothed CE for a static row (the same loss as Stage I's largest width)."""

    monitor = ("acc", "max")

    def __init__(self, *, model: nn.Module, label_smoothing: float) -> None:
        super().__init__()
        self.model, self.label_smoothing = model, label_smoothing

    def training_step(self, batch: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
        x, y = batch
        logits = self.model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        return {"loss": loss, "acc": (logits.argmax(1) == y).float().mean().detach()}

    def validation_step(self, batch: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
        x, y = batch
        logits = self.model(x)
        return {"loss": F.cross_entropy(logits, y), "acc": (logits.argmax(1) == y).float().mean()}


# ---------------------------------------------------------------------------------------------
# Data


def _two_views(transform: Callable) -> Callable:
    """A batch transform giving two independently augmented views: ``(x, y) -> (x1, x2, y)``."""

    def apply(batch: tuple[Tensor, ...], g: torch.Generator) -> tuple[Tensor, ...]:
        x1 = transform(batch, g)[0]
        x2 = transform(batch, g)[0]  # the generator has moved on: another crop
        return (x1, x2, *batch[1:])

    return apply


class _TwoViewDataset(torch.utils.data.Dataset):
    """``dataset[i]`` drawn twice (two random transforms): ``(x1, x2, y)``."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, int]:
        x1, y = self.dataset[i]
        x2, _ = self.dataset[i]
        return x1, x2, y


@dataclass
class _Data:
    """Loaders and facts of one data set: train (plain and, for MvCo, two-view), test."""

    name: str
    source: str
    num_classes: int
    input_shape: tuple[int, int, int]
    train: Any
    train_views: Any
    test: Any


def load_data(cfg: Config) -> _Data:
    """In-memory sets through :func:`frugalcv.data.load_images`; ``imagefolder`` streamed."""
    d, t = cfg.data, cfg.train
    two = cfg.dsnet.mvco_weight > 0
    if d.name == "imagefolder":
        from frugalcv.data import imagefolder_datasets

        train_ds, val_ds = imagefolder_datasets(d.root or None, image_size=d.image_size)

        def loader(ds: Any, shuffle: bool, bs: int) -> DatasetLoader:
            return DatasetLoader(
                ds,
                batch_size=bs,
                shuffle=shuffle,
                seed=t.seed,
                drop_last=shuffle,
                num_workers=d.num_workers,
            )

        return _Data(
            name="imagefolder",
            source="ImageFolder",
            num_classes=len(train_ds.classes),
            input_shape=(3, d.image_size, d.image_size),
            train=loader(train_ds, True, t.batch_size),
            train_views=loader(_TwoViewDataset(train_ds), True, t.batch_size) if two else None,
            test=loader(val_ds, False, t.eval_batch_size),
        )
    from frugalcv.data import load_images

    data = load_images(
        d.name,
        root=d.root or None,
        seed=t.seed,
        num_train=d.num_train or None,
        num_test=d.num_test or None,
    )
    if d.resize:
        data = dataclasses.replace(
            data,
            x_train=F.interpolate(data.x_train, size=(d.resize, d.resize), mode="area"),
            x_test=F.interpolate(data.x_test, size=(d.resize, d.resize), mode="area"),
        )
    transform = None
    if d.augment or d.flip:
        pad = max(1, data.x_train.shape[-1] // 8) if d.augment else 0
        transform = random_crop_flip(pad=pad, flip=d.flip)

    def train_loader(tf: Callable | None) -> TensorLoader:
        return TensorLoader(
            (data.x_train, data.y_train),
            batch_size=t.batch_size,
            shuffle=True,
            seed=t.seed,
            drop_last=True,
            transform=tf,
        )

    views = None
    if two:
        views = train_loader(_two_views(transform or (lambda b, g: b)))
    return _Data(
        name=data.name,
        source=data.source,
        num_classes=data.num_classes,
        input_shape=tuple(data.x_train.shape[1:]),
        train=train_loader(transform),
        train_views=views,
        test=TensorLoader((data.x_test, data.y_test), batch_size=t.eval_batch_size),
    )


# ---------------------------------------------------------------------------------------------
# Latency


def interleaved_latency(
    variants: dict[str, Callable[[], Any]], *, warmup: int, repeats: int
) -> dict[str, float]:
    """Median milliseconds of each zero-argument call, timed round-robin.

    Each round times every variant once, so a change of machine load (other processes on a
    shared CPU) hits all variants alike instead of biasing the ones timed during it. Runs under
    ``torch.no_grad``; the callables must already be in eval mode.
    """
    times: dict[str, list[float]] = {k: [] for k in variants}
    with torch.no_grad():
        for _ in range(warmup):
            for fn in variants.values():
                fn()
        for _ in range(repeats):
            for k, fn in variants.items():
                t0 = time.perf_counter()
                fn()
                times[k].append((time.perf_counter() - t0) * 1e3)
    return {k: float(statistics.median(v)) for k, v in times.items()}


def _masked_at(model: SlimSupernet, x: Tensor, k: int) -> Tensor:
    """The authors' execution of width ``model.widths[k]``: full-width body, channels masked."""
    f = model.forward_trunk(x)
    model.set_body_width(1.0)
    route = torch.full((x.shape[0],), k, dtype=torch.long, device=x.device)
    with per_sample_widths(model.body, list(model.widths), route):
        return model.body(f)


def latency_rows(cfg: LatencyConfig, *, seed: int) -> list[dict]:
    """Rows of the 224 px latency study: for each net, batch size and width below 1, the
    sliced sub-network and the masked full-width pass, with ``efficiency = speed-up / MAC
    reduction`` (``speed-up = t_full / t``, ``MAC reduction = MACs_full / MACs_w``; 1.0 is the
    limit of a perfectly compute-bound slice). Random weights; all variants of one net and batch
    size timed round-robin in this process."""
    rows = []
    for arch in cfg.nets:
        torch.manual_seed(seed)
        mc = ModelConfig(arch=arch, scale="imagenet")
        model = build_supernet(mc, num_classes=1000, in_chans=3, image_size=cfg.image_size)
        model.eval()
        shape = (3, cfg.image_size, cfg.image_size)
        macs = macs_per_width(model, input_shape=shape)
        label = {"ds_mobilenet": "mobilenet_v2", "ds_resnet": "resnet50", "ds_vit": "deit_tiny"}
        for b in cfg.batch_sizes:
            x = torch.randn(b, *shape, generator=torch.Generator().manual_seed(seed))
            variants: dict[str, Callable[[], Any]] = {"full": lambda m=model, x=x: m(x, width=1.0)}
            for k, w in enumerate(model.widths[:-1]):
                variants[f"w{w:g} sliced"] = lambda m=model, x=x, w=w: m(x, width=w)
                variants[f"w{w:g} masked"] = lambda m=model, x=x, k=k: _masked_at(m, x, k)
            t0 = time.time()
            ms = interleaved_latency(variants, warmup=cfg.warmup, repeats=cfg.repeats)
            wall = round(time.time() - t0, 2)
            for w in model.widths[:-1]:
                reduction = macs[1.0] / macs[w]
                for mode in ("sliced", "masked"):
                    t = ms[f"w{w:g} {mode}"]
                    eff = ms["full"] / t / reduction
                    rows.append(
                        {
                            "name": f"{label[arch]} b{b} w{w:g} {mode}",
                            "final": {"efficiency": eff},
                            "best": {"efficiency": eff, "step": 0},
                            "steps": 0,
                            "wall_s": wall,
                            "macs": macs[w] if mode == "sliced" else macs[1.0],
                            "macs_full": macs[1.0],
                            "mac_reduction": round(reduction, 4),
                            "median_ms": round(t, 3),
                            "full_ms": round(ms["full"], 3),
                            "speedup": round(ms["full"] / t, 4),
                            "batch_size": b,
                            "image_size": cfg.image_size,
                            "num_threads": torch.get_num_threads(),
                            "repeats": cfg.repeats,
                        }
                    )
    return rows


# ---------------------------------------------------------------------------------------------
# Evaluation rows


def _gate_macs(model: SlimSupernet) -> int:
    g = model.gate
    return g.reduce.in_features * g.reduce.out_features + g.slim_head.in_features * (
        g.slim_head.out_features
    )


@torch.no_grad()
def evaluate_rows(
    model: SlimSupernet,
    test: Any,
    *,
    input_shape: Sequence[int],
    latency: LatencyConfig,
    seed: int,
) -> dict[str, dict]:
    """Accuracy, mean MACs and latency of the sub-networks, the dynamic net and a random gate.

    The random gate routes each test image to the width the trained gate gave another, randomly
    chosen test image (a seeded permutation of the routes): the same histogram of widths, so
    exactly the same mean MACs, but no information about the input.

    Returns:
        ``{"sub_w<w>": ..., "dynamic": ..., "random_gate": ...}``, each with ``acc``, ``macs``,
        ``latency_b<B>_ms`` and ``speedup_b<B>`` (over the full width) for each batch size;
        the dynamic row also has ``route_pct_w<100 w>``, the fraction of test images routed
        to each width (no dot in the key: summary keys are read as dotted paths).
    """
    model.eval()
    widths = model.widths
    macs = macs_per_width(model, input_shape=input_shape)
    choice_macs = torch.tensor([float(macs[w]) for w in widths])
    correct = {w: 0 for w in widths}
    xs, ys, routes, dyn_ok = [], [], [], 0
    for batch in test:
        x, y = batch[0].cpu(), batch[-1].cpu()  # kept on the CPU; each forward moves a copy
        xd = to_module(x, model)  # the model's device (where Fabric left it)
        for w in widths:
            correct[w] += int((model(xd, width=w).argmax(-1).cpu() == y).sum())
        logits, route = model.forward_dynamic(xd, return_route=True)
        dyn_ok += int((logits.argmax(-1).cpu() == y).sum())
        xs.append(x)
        ys.append(y)
        routes.append(route.cpu())
    n = sum(len(y) for y in ys)
    route_all = torch.cat(routes)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    rand_route = route_all[perm]
    rand_ok, start = 0, 0
    for x, y in zip(xs, ys, strict=True):
        r = rand_route[start : start + len(y)]
        start += len(y)
        xd = to_module(x, model)
        logits = grouped_forward(model, model.forward_trunk(xd), r.to(xd.device))
        rand_ok += int((logits.argmax(-1).cpu() == y).sum())
    gate = _gate_macs(model)
    dyn_macs = float(choice_macs[route_all].mean()) + gate
    rows: dict[str, dict] = {
        f"sub_w{w:g}": {"acc": correct[w] / n, "macs": macs[w], "width": w} for w in widths
    }
    frac = torch.bincount(route_all, minlength=len(widths)).float() / n
    rows["dynamic"] = {
        "acc": dyn_ok / n,
        "macs": dyn_macs,
        **{f"route_pct_w{round(100 * w)}": float(frac[k]) for k, w in enumerate(widths)},
    }
    # Same routes as the dynamic row, shuffled; no gate head is run.
    rows["random_gate"] = {"acc": rand_ok / n, "macs": float(choice_macs[rand_route].mean())}

    # Latency is CPU latency (the benchmark's column): the model is timed on the CPU and moved
    # back to its device afterwards.
    home = module_device(model)
    model.cpu()
    x_all = to_module(torch.cat(xs), model)
    try:
        _latency_rows(model, rows, x_all, route_all, frac, widths=widths, n=n, latency=latency)
    finally:
        model.to(home)
    for r in rows.values():
        r["num_threads"] = torch.get_num_threads()
    return rows


def _latency_rows(
    model: SlimSupernet,
    rows: dict[str, dict],
    x_all: Tensor,
    route_all: Tensor,
    frac: Tensor,
    *,
    widths: Sequence[float],
    n: int,
    latency: LatencyConfig,
) -> None:
    """Add ``latency_b<B>_ms`` and ``speedup_b<B>`` to ``rows`` (see :func:`evaluate_rows`)."""
    for b in latency.batch_sizes:
        xb = x_all[: min(b, n)]
        variants: dict[str, Callable[[], Any]] = {
            f"sub_w{w:g}": (lambda w=w, xb=xb: model(xb, width=w)) for w in widths
        }
        if b == 1:
            # Per-image cost depends on the route: one test image per route taken, timed
            # through the whole dynamic path (trunk, gate, slice), weighted by route frequency.
            for k in range(len(widths)):
                idx = (route_all == k).nonzero()
                if len(idx):
                    xk = x_all[int(idx[0]) : int(idx[0]) + 1]
                    variants[f"dyn_route{k}"] = lambda xk=xk: model.forward_dynamic(xk)
        else:
            variants["dynamic"] = lambda xb=xb: model.forward_dynamic(xb)
        ms = interleaved_latency(variants, warmup=latency.warmup, repeats=latency.repeats)
        if b == 1:
            ms["dynamic"] = sum(
                float(frac[k]) * ms[f"dyn_route{k}"]
                for k in range(len(widths))
                if f"dyn_route{k}" in ms
            )
        full = ms[f"sub_w{widths[-1]:g}"]
        for name in [f"sub_w{w:g}" for w in widths] + ["dynamic"]:
            rows[name][f"latency_b{b}_ms"] = round(ms[name], 4)
            rows[name][f"speedup_b{b}"] = round(full / ms[name], 4)
        # The random gate runs the same widths as often (its latency is the dynamic path's,
        # less the negligible gate head): copied, not re-timed.
        rows["random_gate"][f"latency_b{b}_ms"] = rows["dynamic"][f"latency_b{b}_ms"]
        rows["random_gate"][f"speedup_b{b}"] = rows["dynamic"][f"speedup_b{b}"]


def interpolate_static(static: dict[float, tuple[float, float]], macs: float) -> tuple[float, str]:
    """Accuracy of the static curve at ``macs``: linear in MACs between the two trained widths
    that bracket it; clamped to the end point outside the curve.

    Args:
        static: width -> (MACs, accuracy) of the independently trained networks.

    Returns:
        ``(accuracy, how)`` with ``how`` naming the bracketing widths.

    Example: static ``{0.5: (10, 0.80), 1.0: (30, 0.90)}`` at 20 MACs gives 0.85.
    """
    pts = sorted(static.items(), key=lambda kv: kv[1][0])
    if macs <= pts[0][1][0]:
        return pts[0][1][1], f"clamped to w{pts[0][0]:g}"
    if macs >= pts[-1][1][0]:
        return pts[-1][1][1], f"clamped to w{pts[-1][0]:g}"
    for (w0, (m0, a0)), (w1, (m1, a1)) in zip(pts, pts[1:], strict=False):
        if m0 <= macs <= m1:
            t = (macs - m0) / (m1 - m0)
            return a0 + t * (a1 - a0), f"between w{w0:g} and w{w1:g}"
    raise AssertionError("unreachable")


def _eval_summary(name: str, r: dict, *, steps: int, wall_s: float) -> dict:
    acc = r.pop("acc")
    return {
        "name": name,
        "final": {"acc": acc},
        "best": {"acc": acc, "step": steps},
        "steps": steps,
        "wall_s": round(wall_s, 2),
        **r,
    }


# ---------------------------------------------------------------------------------------------
# The recipe


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
    shape = data.input_shape

    def new_supernet() -> SlimSupernet:
        torch.manual_seed(cfg.train.seed)  # the supernet and every static row: same init
        return build_supernet(
            cfg.model, num_classes=data.num_classes, in_chans=shape[0], image_size=shape[-1]
        )

    stage1 = SupernetTask(
        model=new_supernet(),
        num_random=d.num_random,
        bootstrap=d.bootstrap,
        ema_decay=d.ema_decay,
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

    static: dict[float, tuple[float, float]] = {}
    macs = macs_per_width(supernet, input_shape=shape)
    if d.static_rows:
        widths = {f"static_w{w:g}": w for w in cfg.model.widths}

        def make_task(row: str) -> Task:
            net = StaticWidth(model=new_supernet(), width=widths[row])
            return _ClassifyTask(model=net, label_smoothing=d.label_smoothing)

        summaries = train_rows(
            ctx,
            cfg,
            rows=list(widths),
            make_task=make_task,
            loaders=(data.train, data.test),
            extra=lambda row, task: {"width": widths[row], "macs": macs[widths[row]]},
        )
        for s in summaries:
            static[s["width"]] = (float(s["macs"]), float(s["final"]["acc"]))
        rows += summaries

    t0 = time.time()
    evaluated = evaluate_rows(
        supernet, data.test, input_shape=shape, latency=cfg.latency, seed=cfg.train.seed
    )
    wall = time.time() - t0
    steps = int(s1.get("steps", 0))
    if static:  # static nets have the sub-networks' shapes: same latency, timed once
        for w in cfg.model.widths:
            for k, v in evaluated[f"sub_w{w:g}"].items():
                if k.startswith(("latency_", "speedup_")):
                    rows_by = next(r for r in rows if r.get("name") == f"static_w{w:g}")
                    rows_by[k] = v
    evaluated_rows = [_eval_summary(k, v, steps=steps, wall_s=wall) for k, v in evaluated.items()]
    rows += evaluated_rows
    if static:
        dyn = next(r for r in evaluated_rows if r["name"] == "dynamic")
        acc, how = interpolate_static(static, dyn["macs"])
        full_acc = static[cfg.model.widths[-1]][1]
        rows.append(
            {
                "name": "static_interp",
                "final": {"acc": acc},
                "best": {"acc": acc, "step": 0},
                "steps": 0,
                "wall_s": 0.0,
                "macs": dyn["macs"],
                "derived": f"static curve at the dynamic net's mean MACs, linear, {how}",
            }
        )
        rows.append(
            {
                "name": "static_full_minus_1pt",
                "final": {"acc": full_acc - 0.01},
                "best": {"acc": full_acc - 0.01, "step": 0},
                "steps": 0,
                "wall_s": 0.0,
                "macs": static[cfg.model.widths[-1]][0],
                "derived": "full-width static accuracy minus 0.01 (the 1-point tolerance)",
            }
        )
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
    if "static_w1" in by:
        stat = ", ".join(f"w{w:g} {acc(f'static_w{w:g}'):.3f}" for w in widths)
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
