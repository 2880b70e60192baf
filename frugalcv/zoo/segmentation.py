"""Small fully convolutional networks for dense-prediction distillation on 32-64 px inputs.

An FCN in the sense of Long, Shelhamer, Darrell, "Fully Convolutional Networks for Semantic
Segmentation", CVPR 2015: a classification backbone without global pooling, a conv head that
predicts per-pixel class scores, and bilinear upsampling to the input size. The backbone is a
CIFAR-style ResNet (:class:`frugalcv.zoo.cifar_resnet.CifarResNet`), whose strides 1, 1, 2, 2
give output stride 4 (a 48x48 input yields a 12x12 feature map). Head: 3x3 conv-BN-ReLU (as many
channels as the backbone's last stage) and a 1x1 conv to ``num_classes``.

``forward_features`` is the backbone's last stage after ReLU, the map that grid-ICKD distils.

Models (``SEG_MODELS``): ``fcn_resnet8`` (student), ``fcn_resnet20``, ``fcn_resnet8x4`` (cheap
teacher), ``fcn_resnet20x4`` (stronger teacher; ResNet-20 depth at the x4 widths 32/64/128/256).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from frugalcv.zoo.cifar_resnet import CifarResNet

__all__ = [
    "FCN",
    "SEG_MODELS",
    "create_seg_model",
    "fcn_resnet8",
    "fcn_resnet20",
    "fcn_resnet8x4",
    "fcn_resnet20x4",
]


class FCN(nn.Module):
    """CIFAR-ResNet backbone (output stride 4) + conv head + bilinear upsampling.

    Args:
        depth: backbone depth, ``6n + 2``.
        widths: backbone ``(stem, stage1, stage2, stage3)`` channels.
        num_classes: per-pixel classes (>= 1).
        in_chans: input channels.

    Shapes: ``x: (B, in_chans, H, W)``; features ``(B, widths[3], ceil(H/4), ceil(W/4))``;
    logits ``(B, num_classes, H, W)``.
    """

    def __init__(
        self, *, depth: int, widths: tuple[int, int, int, int], num_classes: int, in_chans: int = 3
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1 for segmentation, got {num_classes}.")
        self.backbone = CifarResNet(depth=depth, widths=widths, num_classes=0, in_chans=in_chans)
        c = self.backbone.num_features
        self.num_classes = num_classes
        self.num_features = c
        self.stage_channels = list(self.backbone.stage_channels)
        self.head = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, num_classes, 1),
        )
        nn.init.kaiming_normal_(self.head[0].weight, mode="fan_out", nonlinearity="relu")

    def forward_intermediates(self, x: Tensor) -> list[Tensor]:
        """The backbone's three stage outputs (stem excluded); last equals ``forward_features``."""
        return self.backbone.forward_intermediates(x)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(B, in_chans, H, W) -> (B, num_features, H/4, W/4)``."""
        return self.backbone.forward_features(x)

    def forward_head(self, f: Tensor, *, size: tuple[int, int]) -> Tensor:
        """``(B, C, h, w) -> (B, num_classes, *size)``: conv head, then bilinear upsampling."""
        logits = self.head(f)  # (B, num_classes, h, w)
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x), size=(x.shape[-2], x.shape[-1]))


def fcn_resnet8(*, num_classes: int, in_chans: int = 3) -> FCN:
    """FCN on ResNet-8 (widths 16/32/64): the student."""
    return FCN(depth=8, widths=(16, 16, 32, 64), num_classes=num_classes, in_chans=in_chans)


def fcn_resnet20(*, num_classes: int, in_chans: int = 3) -> FCN:
    """FCN on ResNet-20 (widths 16/32/64)."""
    return FCN(depth=20, widths=(16, 16, 32, 64), num_classes=num_classes, in_chans=in_chans)


def fcn_resnet8x4(*, num_classes: int, in_chans: int = 3) -> FCN:
    """FCN on ResNet-8x4 (stem 32, stages 64/128/256): a cheap teacher."""
    return FCN(depth=8, widths=(32, 64, 128, 256), num_classes=num_classes, in_chans=in_chans)


def fcn_resnet20x4(*, num_classes: int, in_chans: int = 3) -> FCN:
    """FCN on ResNet-20 at the x4 widths (stem 32, stages 64/128/256): the stronger teacher."""
    return FCN(depth=20, widths=(32, 64, 128, 256), num_classes=num_classes, in_chans=in_chans)


SEG_MODELS: dict[str, Callable[..., FCN]] = {
    "fcn_resnet8": fcn_resnet8,  # student, 16/32/64
    "fcn_resnet20": fcn_resnet20,  # deeper student / mid teacher, 16/32/64
    "fcn_resnet8x4": fcn_resnet8x4,  # cheap teacher, 64/128/256
    "fcn_resnet20x4": fcn_resnet20x4,  # stronger teacher, 64/128/256
}


def create_seg_model(name: str, *, num_classes: int, in_chans: int = 3) -> FCN:
    """Build a segmentation model from ``SEG_MODELS`` by name.

    Raises:
        ValueError: unknown name (the message lists the names and the closest match).
    """
    if name not in SEG_MODELS:
        close = difflib.get_close_matches(name, SEG_MODELS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"Unknown segmentation model {name!r}.{hint} Available: {', '.join(SEG_MODELS)}."
        )
    return SEG_MODELS[name](num_classes=num_classes, in_chans=in_chans)
