"""Models of the ``dsnet`` recipe: the supernet of a config and the static reference rows."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from frugalcv.core.config import ConfigError
from frugalcv.core.task import Task
from frugalcv.slim.cnn import DSMobileNetV2, DSResNet, ds_mobilenet_v2_imagenet, ds_resnet50
from frugalcv.slim.dsnet_recipe.config import ModelConfig
from frugalcv.slim.supernet import SlimSupernet
from frugalcv.slim.vit import DSViT

__all__ = ["StaticWidth", "build_supernet"]


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
