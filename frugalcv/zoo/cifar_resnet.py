"""CIFAR-style ResNets (He et al., 2016, section 4.2) as used by the CRD / RepDistiller benchmark.

He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016: the CIFAR variant
has a 3x3 stem and three stages of ``n`` basic blocks at strides 1, 2, 2, depth ``6n + 2``.
Tian, Krishnan, Isola, "Contrastive Representation Distillation", ICLR 2020 (code: RepDistiller
``models/resnet.py``) fix the widths used across the distillation literature:

- ``resnet{8,14,20,32,44,56,110}``: stem 16, stages 16/32/64.
- ``resnet8x4``, ``resnet32x4``: stem 32, stages 64/128/256.

Block layout (as in RepDistiller): conv3x3-BN-ReLU-conv3x3-BN, plus a shortcut that is the identity,
or a strided 1x1 conv + BN when the shape changes ("option B"), then ReLU after the sum.

Every model follows the zoo contract (see :mod:`frugalcv.zoo`): ``forward_features`` returns the
output of the last block of the last stage after its ReLU (RepDistiller's ``feat[-2]``, the map
ICKD distils), ``forward_intermediates`` returns the three stage outputs (stem excluded).

Differences from the reference: the stride-8 ``AvgPool2d(8)`` is an adaptive average pool, so 28x28
(and any other size) inputs work; ``in_chans`` is configurable; ``num_classes=0`` drops the
classifier (``forward`` then returns pooled features).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "BasicBlock",
    "CifarResNet",
    "TinyCNN",
    "resnet8",
    "resnet14",
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "resnet110",
    "resnet8x2",
    "resnet20x2",
    "resnet8x4",
    "resnet32x4",
    "tiny_cnn",
]


class BasicBlock(nn.Module):
    """Post-activation residual block: ``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))``.

    Args:
        in_chs: input channels.
        out_chs: output channels.
        stride: stride of the first 3x3 conv (and of the 1x1 shortcut conv).

    Shapes: ``x: (B, in_chs, H, W) -> (B, out_chs, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(self, *, in_chs: int, out_chs: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chs, out_chs, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_chs)
        self.conv2 = nn.Conv2d(out_chs, out_chs, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chs)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_chs != out_chs:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=False), nn.BatchNorm2d(out_chs)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


def _init_weights(model: nn.Module) -> None:
    """Kaiming-normal (fan_out, ReLU) convs, BN at identity, as RepDistiller's ResNet/WRN."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _check_sizes(*, num_classes: int, in_chans: int) -> None:
    if num_classes < 0:
        raise ValueError(f"num_classes must be >= 0 (0 drops the classifier), got {num_classes}.")
    if in_chans < 1:
        raise ValueError(f"in_chans must be >= 1, got {in_chans}.")


class CifarResNet(nn.Module):
    """ResNet for 28-32 px inputs: 3x3 stem, three stages of basic blocks at strides 1, 2, 2.

    Args:
        depth: ``6n + 2`` (n blocks per stage, two 3x3 convs per block, plus stem and classifier).
        widths: ``(stem, stage1, stage2, stage3)`` channel counts, e.g. ``(16, 16, 32, 64)``.
        num_classes: classifier outputs; 0 drops the classifier (``forward`` returns pooled
            features).
        in_chans: input channels.

    Shapes: ``x: (B, in_chans, H, W)``; features ``(B, widths[3], ceil(H/4), ceil(W/4))``;
    logits ``(B, num_classes)``.
    """

    def __init__(
        self, *, depth: int, widths: tuple[int, int, int, int], num_classes: int, in_chans: int = 3
    ) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6 != 0:
            raise ValueError(f"depth must be 6n + 2 with n >= 1 (8, 14, 20, ...), got {depth}.")
        if len(widths) != 4:
            raise ValueError(f"widths must be (stem, stage1, stage2, stage3), got {widths}.")
        _check_sizes(num_classes=num_classes, in_chans=in_chans)
        n = (depth - 2) // 6
        self.depth = depth
        self.num_classes = num_classes
        self.stage_channels = list(widths[1:])
        self.num_features = widths[3]
        self.head_hidden_size = widths[3]

        self.conv1 = nn.Conv2d(in_chans, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        stages = []
        in_chs = widths[0]
        for out_chs, stride in zip(widths[1:], (1, 2, 2), strict=True):
            blocks = [BasicBlock(in_chs=in_chs, out_chs=out_chs, stride=stride)]
            blocks += [BasicBlock(in_chs=out_chs, out_chs=out_chs) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            in_chs = out_chs
        self.layer1, self.layer2, self.layer3 = stages
        self.fc: nn.Module = nn.Linear(widths[3], num_classes) if num_classes else nn.Identity()
        _init_weights(self)

    def forward_stem(self, x: Tensor) -> Tensor:
        """``(B, in_chans, H, W) -> (B, widths[0], H, W)``: conv3x3-BN-ReLU."""
        return F.relu(self.bn1(self.conv1(x)))

    def forward_intermediates(self, x: Tensor) -> list[Tensor]:
        """The three stage outputs (after the last block's ReLU), stem excluded.

        Returns:
            ``[(B, C1, H, W), (B, C2, H/2, W/2), (B, C3, H/4, W/4)]`` with ``C = stage_channels``;
            the last equals ``forward_features(x)``.
        """
        x = self.forward_stem(x)
        out = []
        for stage in (self.layer1, self.layer2, self.layer3):
            x = stage(x)
            out.append(x)
        return out

    def forward_features(self, x: Tensor) -> Tensor:
        """``(B, in_chans, H, W) -> (B, num_features, H/4, W/4)``, last stage after ReLU."""
        return self.layer3(self.layer2(self.layer1(self.forward_stem(x))))

    def forward_head(self, f: Tensor, *, pre_logits: bool = False) -> Tensor:
        """Global average pool and classifier: ``(B, C, h, w) -> (B, num_classes)``.

        With ``pre_logits`` returns the pooled features ``(B, num_features)``.
        """
        f = F.adaptive_avg_pool2d(f, 1).flatten(1)  # (B, C)
        return f if pre_logits else self.fc(f)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


class TinyCNN(nn.Module):
    """Three conv-BN-ReLU layers (strides 1, 2, 2), pool and linear: a seconds-scale model.

    Not from a paper: the smallest network for smoke tests and tiny presets on 2 CPU cores.
    Each conv layer counts as one stage.

    Args:
        widths: channels of the three conv layers.
        num_classes: classifier outputs; 0 drops the classifier.
        in_chans: input channels.

    Shapes: ``x: (B, in_chans, H, W)``; features ``(B, widths[2], ceil(H/4), ceil(W/4))``.
    """

    def __init__(
        self,
        *,
        widths: tuple[int, int, int] = (16, 32, 64),
        num_classes: int,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        if len(widths) != 3:
            raise ValueError(f"widths must hold three channel counts, got {widths}.")
        _check_sizes(num_classes=num_classes, in_chans=in_chans)
        self.num_classes = num_classes
        self.stage_channels = list(widths)
        self.num_features = widths[2]
        self.head_hidden_size = widths[2]
        layers = []
        in_chs = in_chans
        for out_chs, stride in zip(widths, (1, 2, 2), strict=True):
            layers.append(
                nn.Sequential(
                    nn.Conv2d(in_chs, out_chs, 3, stride=stride, padding=1, bias=False),
                    nn.BatchNorm2d(out_chs),
                    nn.ReLU(inplace=True),
                )
            )
            in_chs = out_chs
        self.stages = nn.Sequential(*layers)
        self.fc: nn.Module = nn.Linear(widths[2], num_classes) if num_classes else nn.Identity()
        _init_weights(self)

    def forward_intermediates(self, x: Tensor) -> list[Tensor]:
        """Outputs of the three conv layers; the last equals ``forward_features(x)``."""
        out = []
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out

    def forward_features(self, x: Tensor) -> Tensor:
        """``(B, in_chans, H, W) -> (B, num_features, H/4, W/4)``."""
        return self.stages(x)

    def forward_head(self, f: Tensor, *, pre_logits: bool = False) -> Tensor:
        """``(B, C, h, w) -> (B, num_classes)``, or pooled ``(B, num_features)`` with pre_logits."""
        f = F.adaptive_avg_pool2d(f, 1).flatten(1)  # (B, C)
        return f if pre_logits else self.fc(f)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


# Widths from RepDistiller models/resnet.py; the x2 variants halve the x4 widths (not in the paper).
_W1 = (16, 16, 32, 64)
_W2 = (16, 32, 64, 128)
_W4 = (32, 64, 128, 256)


def resnet8(*, num_classes: int, in_chans: int = 3) -> CifarResNet:
    """ResNet-8 (1 block per stage), widths 16/32/64. 0.08M params at 100 classes."""
    return CifarResNet(depth=8, widths=_W1, num_classes=num_classes, in_chans=in_chans)


def resnet14(*, num_classes: int, in_chans: int = 3) -> CifarResNet:
    """ResNet-14 (2 blocks per stage), widths 16/32/64."""
    return CifarResNet(depth=14, widths=_W1, num_classes=num_classes, in_chans=in_chans)


def resnet20(*, num_classes: int, in_chans: int = 3) -> CifarResNet:
    """ResNet-20 (3 blocks per stage), widths 16/32/64. 0.28M params at 100 classes."""
    return CifarResNet(depth=20, widths=_W1, num_classes=num_classes, in_chans=in_chans)


def resnet32(*, num_classes: int, in_chans: int = 3) -> CifarResNet:
    """ResNet-32 (5 blocks per stage), widths 16/32/64."""
    return CifarResNet(depth=32, widths=_W1, num_classes=num_classes, in_chans=in_chans)


def resnet44(*, num_classes: int, in_chans: int = 3) -> CifarResNet:
    """ResNet-44 (7 blocks per stage), widths 16/32/64."""
    return CifarResNet(depth=44, widths=_W1, num_classes=num_classes, in_chans=in_chans)


def resnet56(*, num_classes: int, in_chans: int = 3) -> CifarResNet:
    """ResNet-56 (9 blocks per stage), widths 16/32/64. 0.86M params at 100 classes."""
    return CifarResNet(depth=56, widths=_W1, num_classes=num_classes, in_chans=in_chans)


def resnet110(*, num_classes: int, in_chans: int = 3) -> CifarResNet:
    """ResNet-110 (18 blocks per stage), widths 16/32/64. 1.74M params at 100 classes."""
    return CifarResNet(depth=110, widths=_W1, num_classes=num_classes, in_chans=in_chans)


def resnet8x2(*, num_classes: int, in_chans: int = 3) -> CifarResNet:
    """ResNet-8 at half the x4 widths: stem 16, stages 32/64/128 (frugalcv, not RepDistiller)."""
    return CifarResNet(depth=8, widths=_W2, num_classes=num_classes, in_chans=in_chans)


def resnet20x2(*, num_classes: int, in_chans: int = 3) -> CifarResNet:
    """ResNet-20 at half the x4 widths: stem 16, stages 32/64/128 (frugalcv, not RepDistiller)."""
    return CifarResNet(depth=20, widths=_W2, num_classes=num_classes, in_chans=in_chans)


def resnet8x4(*, num_classes: int, in_chans: int = 3) -> CifarResNet:
    """ResNet-8x4: stem 32, stages 64/128/256. 1.23M params at 100 classes."""
    return CifarResNet(depth=8, widths=_W4, num_classes=num_classes, in_chans=in_chans)


def resnet32x4(*, num_classes: int, in_chans: int = 3) -> CifarResNet:
    """ResNet-32x4: stem 32, stages 64/128/256. 7.43M params at 100 classes."""
    return CifarResNet(depth=32, widths=_W4, num_classes=num_classes, in_chans=in_chans)


def tiny_cnn(*, num_classes: int, in_chans: int = 3) -> TinyCNN:
    """Three conv layers of 16/32/64 channels (frugalcv's smoke-test model, ~30k params)."""
    return TinyCNN(widths=(16, 32, 64), num_classes=num_classes, in_chans=in_chans)
