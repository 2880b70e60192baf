"""``classify``: plain supervised training, the baseline row of every method's benchmark."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch.nn.functional as F
from torch import Tensor, nn

from frugalcv.core.config import ConfigError, OptimConfig, TrainConfig
from frugalcv.core.loader import TensorLoader, random_crop_flip
from frugalcv.core.recipe import start_run, train_model
from frugalcv.core.task import Task


@dataclass
class DataConfig:
    name: str = "mnist-rot-back"  # a key of frugalcv.data.IMAGE_DATASETS
    root: str = ""  # "" = $FRUGALCV_DATA (embedded sets need neither)
    num_train: int = 0  # 0 = the data set's default size
    num_test: int = 0
    augment: bool = True  # zero-pad (size/8 px) and random crop, as RepDistiller's CIFAR crop
    flip: bool = False  # horizontal flip (off for digits: mirroring changes their shape)

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


@dataclass
class ModelConfig:
    name: str = "resnet8x4"  # a key of frugalcv.zoo.MODELS, or "timm/<name>"

    def validate(self) -> None:
        from frugalcv.zoo import MODELS

        if not (self.name in MODELS or self.name.startswith("timm/")):
            import difflib

            close = difflib.get_close_matches(self.name, list(MODELS), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"model.name '{self.name}' is not in the zoo.{hint} Use a name from "
                f"frugalcv.zoo.MODELS or 'timm/<name>'."
            )


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def tiny() -> Config:
    """About 30 s on 2 CPU cores: resnet8 on the 5000 embedded MNIST digits (4000 train / 1000
    test), far above chance (0.1) after 3 epochs."""
    return Config(
        data=DataConfig(name="mnist5k", num_train=0, num_test=0),
        model=ModelConfig(name="resnet8"),
        optim=OptimConfig(lr=0.05, schedule="cosine", warmup_steps=20),
        train=TrainConfig(epochs=3, batch_size=64, eval_every=0),
    )


def paper_cifar100() -> Config:
    """RepDistiller's CIFAR-100 student schedule (240 epochs, SGD 0.05, decays 150/180/210)."""
    return Config(
        data=DataConfig(name="cifar100", flip=True),
        model=ModelConfig(name="resnet8x4"),
        optim=OptimConfig(),
        train=TrainConfig(),
    )


PRESETS = {"tiny": tiny, "paper_cifar100": paper_cifar100}


class ClassifyTask(Task):
    """Cross-entropy on ``(x, y)`` batches. ``x: (B, C, H, W)``, ``y: (B,)``."""

    monitor = ("acc", "max")

    def __init__(self, *, model: nn.Module, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.model = model
        self.label_smoothing = label_smoothing

    def training_step(self, batch: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
        x, y = batch
        logits = self.model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        return {"loss": loss, "acc": (logits.argmax(1) == y).float().mean().detach()}

    def validation_step(self, batch: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
        x, y = batch
        logits = self.model(x)
        return {"loss": F.cross_entropy(logits, y), "acc": (logits.argmax(1) == y).float().mean()}


def load_data(cfg: DataConfig, *, seed: int):
    from frugalcv.data import load_images

    return load_images(
        cfg.name,
        root=cfg.root or None,
        seed=seed,
        num_train=cfg.num_train or None,
        num_test=cfg.num_test or None,
    )


def make_loaders(data, cfg: Config) -> tuple[TensorLoader, TensorLoader]:
    """Seeded in-memory loaders; augmentation from ``cfg.data``."""
    transform = None
    if cfg.data.augment or cfg.data.flip:
        pad = max(1, min(data.x_train.shape[-2:]) // 8) if cfg.data.augment else 0  # 28x56: 3
        transform = random_crop_flip(pad=pad, flip=cfg.data.flip)
    train = TensorLoader(
        (data.x_train, data.y_train),
        batch_size=cfg.train.batch_size,
        shuffle=True,
        seed=cfg.train.seed,
        drop_last=True,
        transform=transform,
    )
    val = TensorLoader((data.x_test, data.y_test), batch_size=cfg.train.eval_batch_size)
    return train, val


def model_extra(model: nn.Module, data) -> dict:
    """Parameters and MACs at the data's input size (for results files and summaries)."""
    from frugalcv.core.measure import count_macs, count_params

    x = data.x_test[:1]
    return {"params": count_params(model), "macs": count_macs(model, x)}


def run(cfg: Config, *, preset: str = "custom") -> dict:
    """Train ``cfg.model`` on ``cfg.data``; returns the summary (final and best accuracy)."""
    ctx = start_run(cfg, recipe="classify", preset=preset)
    data = load_data(cfg.data, seed=cfg.train.seed)
    model = _create(cfg.model.name, data)
    extra = {
        "dataset": data.name,
        "data_source": data.source,
        "data_fingerprint": data.fingerprint,
        "model": cfg.model.name,
        **model_extra(model, data),
    }
    return train_model(
        ctx,
        cfg,
        task=ClassifyTask(model=model),
        loaders=make_loaders(data, cfg),
        name="classify",
        extra=extra,
    )


def _create(name: str, data) -> nn.Module:
    from frugalcv.zoo import create_model

    return create_model(name, num_classes=data.num_classes, in_chans=data.in_chans)


__all__ = [
    "ClassifyTask",
    "Config",
    "DataConfig",
    "ModelConfig",
    "PRESETS",
    "run",
    "tiny",
    "paper_cifar100",
]
