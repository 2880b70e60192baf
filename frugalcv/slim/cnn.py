"""Slimmable CNN supernets: DS-MobileNetV2 and DS-ResNet, CIFAR-sized and ImageNet-sized.

Every conv is a :class:`~frugalcv.layers.SlimConv2d` (filters sliced by the width ratio), every
BN a :class:`~frugalcv.layers.SlimBatchNorm2d` with statistics for each width the network can
run at; the classifier reads the sliced feature vector and always has ``num_classes`` outputs.
The trunk is the stem and the first stage; the gate sits after it (see ``supernet.py``).

Differences from the paper: DS-Net's released supernet is a MobileNetV1-like net (no
residuals, Swish, 14 widths); DS-ResNet was never released. These are MobileNetV2 (Sandler et
al. 2018) and ResNet (He et al. 2016) layouts with the DS-Net slicing, a reconstruction.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from frugalcv.layers.slimmable import SlimBatchNorm2d, SlimConv2d, SlimLinear, scaled_channels
from frugalcv.slim.gate import DynamicGate
from frugalcv.slim.supernet import SlimSupernet

__all__ = [
    "MBV2_CIFAR",
    "MBV2_IMAGENET",
    "DSMobileNetV2",
    "DSResNet",
    "ds_mobilenet_v2_cifar",
    "ds_mobilenet_v2_imagenet",
    "ds_resnet50",
    "ds_resnet_cifar",
]

# (expansion t, channels c, repeats n, stride s) as in Sandler et al. 2018, Table 2.
MBV2_IMAGENET = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
# A shortened layout for 28-32 px inputs (strides 1,1,2,2,1 -> 8x8 at the end of a 32 px input).
MBV2_CIFAR = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 2, 2), (6, 64, 2, 2), (6, 96, 1, 1))


class _Builder:
    """Makes convs and BNs whose per-width statistics cover every width the net can run."""

    def __init__(self, ratios: Sequence[float], divisor: int) -> None:
        self.ratios, self.divisor = tuple(ratios), divisor

    def conv(self, cin: int, cout: int, k: int, *, stride: int = 1, groups: int = 1) -> SlimConv2d:
        return SlimConv2d(
            in_channels=cin,
            out_channels=cout,
            kernel_size=k,
            stride=stride,
            padding=k // 2,
            groups=groups,
            bias=False,
            divisor=self.divisor,
        )

    def bn(self, c: int) -> SlimBatchNorm2d:
        widths = [scaled_channels(c, r, divisor=self.divisor) for r in self.ratios]
        return SlimBatchNorm2d(num_features=c, widths=widths, divisor=self.divisor)

    def conv_bn_act(
        self,
        cin: int,
        cout: int,
        k: int,
        *,
        stride: int = 1,
        groups: int = 1,
        act: type[nn.Module] | None = nn.ReLU,
    ) -> nn.Sequential:
        layers = [self.conv(cin, cout, k, stride=stride, groups=groups), self.bn(cout)]
        if act is not None:
            layers.append(act(inplace=True))
        return nn.Sequential(*layers)


def _init_weights(net: nn.Module) -> None:
    """torchvision's ResNet/MobileNetV2 init: Kaiming-normal (fan-out) convs, N(0, 0.01) fc."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


class _InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand -> 3x3 depthwise -> 1x1 project (+ identity if same shape)."""

    def __init__(self, b: _Builder, cin: int, cout: int, *, stride: int, t: int) -> None:
        super().__init__()
        hidden = cin * t
        layers: list[nn.Module] = []
        if t != 1:
            layers.append(b.conv_bn_act(cin, hidden, 1, act=nn.ReLU6))
        layers += [
            b.conv_bn_act(hidden, hidden, 3, stride=stride, groups=hidden, act=nn.ReLU6),
            b.conv_bn_act(hidden, cout, 1, act=None),
        ]
        self.block = nn.Sequential(*layers)
        self.use_res = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        y = self.block(x)
        return x + y if self.use_res else y


class _Head(nn.Module):
    """Global average pool + classifier over however many features arrive."""

    def __init__(self, in_features: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = SlimLinear(in_features=in_features, out_features=num_classes, role=None)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.dropout(x.mean(dim=(2, 3))))  # (B, C) -> (B, num_classes)


class DSMobileNetV2(SlimSupernet):
    """Slimmable MobileNetV2 supernet (trunk = stem + first block group).

    Args:
        cfg: ``(t, c, n, s)`` rows; the first row is part of the trunk.
        stem_channels, stem_stride: first 3x3 conv.
        last_channels: final 1x1 conv before pooling.
        widths, trunk_width: see :class:`SlimSupernet`.
        divisor: channel counts are multiples of it (8 in MobileNet).
        gate_attention: DS-Net's double-headed gate (SE attention head on the trunk output).

    Shapes: ``x: (B, in_channels, H, W)`` -> ``(B, num_classes)``.
    """

    def __init__(
        self,
        *,
        cfg: Sequence[tuple[int, int, int, int]] = MBV2_CIFAR,
        num_classes: int = 10,
        in_channels: int = 3,
        stem_channels: int = 32,
        stem_stride: int = 1,
        last_channels: int = 320,
        widths: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
        trunk_width: float | None = 1.0,
        divisor: int = 8,
        dropout: float = 0.0,
        gate_attention: bool = False,
    ) -> None:
        super().__init__(widths=widths, trunk_width=trunk_width)
        b = _Builder(self.all_widths(), divisor)
        trunk: list[nn.Module] = [
            b.conv_bn_act(in_channels, stem_channels, 3, stride=stem_stride, act=nn.ReLU6)
        ]
        body: list[nn.Module] = []
        cin = stem_channels
        for i, (t, c, n, s) in enumerate(cfg):
            for j in range(n):
                (trunk if i == 0 else body).append(
                    _InvertedResidual(b, cin, c, stride=s if j == 0 else 1, t=t)
                )
                cin = c
        body += [
            b.conv_bn_act(cin, last_channels, 1, act=nn.ReLU6),
            _Head(last_channels, num_classes, dropout),
        ]
        self.trunk, self.body = nn.Sequential(*trunk), nn.Sequential(*body)
        c_trunk = cfg[0][1]
        gate_in = scaled_channels(c_trunk, trunk_width or 1.0, divisor=divisor)
        self.gate = DynamicGate(
            in_channels=gate_in, num_choices=len(self.widths), attention=gate_attention
        )
        _init_weights(self)


class _BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, b: _Builder, cin: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = b.conv_bn_act(cin, planes, 3, stride=stride)
        self.conv2 = b.conv_bn_act(planes, planes, 3, act=None)
        self.shortcut = (
            b.conv_bn_act(cin, planes, 1, stride=stride, act=None)
            if stride != 1 or cin != planes
            else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        return (self.conv2(self.conv1(x)) + self.shortcut(x)).relu()


class _Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, b: _Builder, cin: int, planes: int, stride: int) -> None:
        super().__init__()
        cout = planes * 4
        self.conv1 = b.conv_bn_act(cin, planes, 1)
        self.conv2 = b.conv_bn_act(planes, planes, 3, stride=stride)
        self.conv3 = b.conv_bn_act(planes, cout, 1, act=None)
        self.shortcut = (
            b.conv_bn_act(cin, cout, 1, stride=stride, act=None)
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        return (self.conv3(self.conv2(self.conv1(x))) + self.shortcut(x)).relu()


class DSResNet(SlimSupernet):
    """Slimmable ResNet supernet (trunk = stem + first stage; projection shortcuts).

    Args:
        block: ``"basic"`` (CIFAR ResNet-20/32/56) or ``"bottleneck"`` (ResNet-50).
        layers: blocks per stage, e.g. ``(3, 3, 3)`` or ``(3, 4, 6, 3)``.
        planes: stage widths, e.g. ``(16, 32, 64)`` or ``(64, 128, 256, 512)``.
        stem: ``"cifar"`` (3x3 conv, stride 1) or ``"imagenet"`` (7x7 stride 2 + max-pool).

    Shapes: ``x: (B, in_channels, H, W)`` -> ``(B, num_classes)``.
    """

    def __init__(
        self,
        *,
        block: str = "basic",
        layers: Sequence[int] = (3, 3, 3),
        planes: Sequence[int] = (16, 32, 64),
        stem: str = "cifar",
        num_classes: int = 10,
        in_channels: int = 3,
        widths: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
        trunk_width: float | None = 1.0,
        divisor: int = 1,
        dropout: float = 0.0,
        gate_attention: bool = False,
    ) -> None:
        super().__init__(widths=widths, trunk_width=trunk_width)
        blocks = {"basic": _BasicBlock, "bottleneck": _Bottleneck}
        if block not in blocks:
            raise ValueError(f"unknown block {block!r}; use 'basic' or 'bottleneck'")
        if stem not in ("cifar", "imagenet"):
            raise ValueError(f"unknown stem {stem!r}; use 'cifar' or 'imagenet'")
        if len(layers) != len(planes) or len(layers) < 2:
            raise ValueError(f"layers {layers} and planes {planes} need the same length >= 2")
        blk = blocks[block]
        b = _Builder(self.all_widths(), divisor)
        if stem == "cifar":
            trunk: list[nn.Module] = [b.conv_bn_act(in_channels, planes[0], 3)]
        else:
            trunk = [
                b.conv_bn_act(in_channels, planes[0], 7, stride=2),
                nn.MaxPool2d(3, stride=2, padding=1),
            ]
        body: list[nn.Module] = []
        cin = planes[0]
        for i, (n, p) in enumerate(zip(layers, planes, strict=True)):
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                (trunk if i == 0 else body).append(blk(b, cin, p, stride))
                cin = p * blk.expansion
        body.append(_Head(cin, num_classes, dropout))
        self.trunk, self.body = nn.Sequential(*trunk), nn.Sequential(*body)
        gate_in = scaled_channels(planes[0] * blk.expansion, trunk_width or 1.0, divisor=divisor)
        self.gate = DynamicGate(
            in_channels=gate_in, num_choices=len(self.widths), attention=gate_attention
        )
        _init_weights(self)


def ds_mobilenet_v2_cifar(
    *,
    num_classes: int = 10,
    in_channels: int = 3,
    widths: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
    trunk_width: float | None = 1.0,
) -> DSMobileNetV2:
    """DS-MobileNetV2 for 28-32 px inputs (:data:`MBV2_CIFAR`, last conv 320)."""
    return DSMobileNetV2(
        cfg=MBV2_CIFAR,
        num_classes=num_classes,
        in_channels=in_channels,
        widths=widths,
        trunk_width=trunk_width,
    )


def ds_mobilenet_v2_imagenet(
    *,
    num_classes: int = 1000,
    widths: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
    trunk_width: float | None = 1.0,
) -> DSMobileNetV2:
    """MobileNetV2-1.0-sized supernet for 224 px (about 300M MACs at full width)."""
    return DSMobileNetV2(
        cfg=MBV2_IMAGENET,
        num_classes=num_classes,
        stem_channels=32,
        stem_stride=2,
        last_channels=1280,
        widths=widths,
        trunk_width=trunk_width,
        dropout=0.2,
    )


def ds_resnet_cifar(
    *,
    depth: int = 20,
    num_classes: int = 10,
    in_channels: int = 3,
    widths: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
    trunk_width: float | None = 1.0,
) -> DSResNet:
    """CIFAR ResNet-``depth`` (``depth = 6n + 2``; 16/32/64 channels) as a supernet."""
    if (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNet depth must be 6n+2 (20, 32, 56, ...); got {depth}")
    n = (depth - 2) // 6
    return DSResNet(
        block="basic",
        layers=(n, n, n),
        planes=(16, 32, 64),
        stem="cifar",
        num_classes=num_classes,
        in_channels=in_channels,
        widths=widths,
        trunk_width=trunk_width,
    )


def ds_resnet50(
    *,
    num_classes: int = 1000,
    widths: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
    trunk_width: float | None = 1.0,
) -> DSResNet:
    """ResNet-50-sized supernet for 224 px (about 4.1G MACs at full width)."""
    return DSResNet(
        block="bottleneck",
        layers=(3, 4, 6, 3),
        planes=(64, 128, 256, 512),
        stem="imagenet",
        num_classes=num_classes,
        widths=widths,
        trunk_width=trunk_width,
    )
