"""Wide residual networks (Zagoruyko & Komodakis, 2016) as in the CRD / RepDistiller benchmark.

Zagoruyko, Komodakis, "Wide Residual Networks", BMVC 2016: WRN-d-k has a 3x3 stem of 16 channels and
three stages of ``n = (d - 4) / 6`` pre-activation blocks with ``16k, 32k, 64k`` channels at strides
1, 2, 2, followed by BN-ReLU, global pooling and a linear classifier. Widths and block layout match
RepDistiller ``models/wrn.py`` (dropout rate 0 as used there):

- block: ``o = relu(bn1(x)); out = conv2(relu(bn2(conv1(o)))) + shortcut``, where the shortcut is
  ``x`` when the block keeps its channels and a strided 1x1 conv of ``o`` (the activated input)
  otherwise.

Zoo contract (see :mod:`frugalcv.zoo`): ``forward_features`` returns the last stage after the final
BN+ReLU. ``forward_intermediates`` returns the three stage outputs, stem excluded; the first two are
the raw residual sums (a pre-activation net has no activation at a stage end) and the last is the
post BN+ReLU map, so that it equals ``forward_features``.

Note: RepDistiller's ``feat[-2]`` for WRNs (what ICKD distils there) is the raw output of the last
stage *before* the final BN+ReLU; get it with :meth:`WideResNet.forward_raw_features`.

Differences from the reference: adaptive average pooling (any input size), configurable
``in_chans``, no dropout option, ``num_classes=0`` drops the classifier.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from frugalcv.zoo.cifar_resnet import _check_sizes, _init_weights

__all__ = ["PreActBlock", "WideResNet", "wrn_16_1", "wrn_16_2", "wrn_40_1", "wrn_40_2"]


class PreActBlock(nn.Module):
    """Pre-activation residual block (He et al., ECCV 2016 "Identity Mappings"), WRN layout.

    Args:
        in_chs: input channels.
        out_chs: output channels.
        stride: stride of the first 3x3 conv and of the 1x1 shortcut conv.

    Shapes: ``x: (B, in_chs, H, W) -> (B, out_chs, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(self, *, in_chs: int, out_chs: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_chs)
        self.conv1 = nn.Conv2d(in_chs, out_chs, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chs)
        self.conv2 = nn.Conv2d(out_chs, out_chs, 3, stride=1, padding=1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_chs != out_chs:
            self.shortcut = nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        o = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(o))))
        # The projection shortcut sees the activated input (as in the WRN reference code).
        return out + (x if self.shortcut is None else self.shortcut(o))


class WideResNet(nn.Module):
    """WRN-depth-widen_factor for 28-32 px inputs.

    Args:
        depth: ``6n + 4`` (n blocks per stage).
        widen_factor: k, stage widths ``16k, 32k, 64k``.
        num_classes: classifier outputs; 0 drops the classifier.
        in_chans: input channels.

    Shapes: ``x: (B, in_chans, H, W)``; features ``(B, 64k, ceil(H/4), ceil(W/4))``;
    logits ``(B, num_classes)``.
    """

    def __init__(
        self, *, depth: int, widen_factor: int, num_classes: int, in_chans: int = 3
    ) -> None:
        super().__init__()
        if depth < 10 or (depth - 4) % 6 != 0:
            raise ValueError(f"depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, 40), got {depth}.")
        if widen_factor < 1:
            raise ValueError(f"widen_factor must be >= 1, got {widen_factor}.")
        _check_sizes(num_classes=num_classes, in_chans=in_chans)
        n = (depth - 4) // 6
        widths = [16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.depth = depth
        self.widen_factor = widen_factor
        self.num_classes = num_classes
        self.stage_channels = list(widths)
        self.num_features = widths[2]
        self.head_hidden_size = widths[2]

        self.conv1 = nn.Conv2d(in_chans, 16, 3, padding=1, bias=False)  # stem: 16 (WRN paper)
        stages = []
        in_chs = 16
        for out_chs, stride in zip(widths, (1, 2, 2), strict=True):
            blocks = [PreActBlock(in_chs=in_chs, out_chs=out_chs, stride=stride)]
            blocks += [PreActBlock(in_chs=out_chs, out_chs=out_chs) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            in_chs = out_chs
        self.block1, self.block2, self.block3 = stages
        self.bn1 = nn.BatchNorm2d(widths[2])
        self.fc: nn.Module = nn.Linear(widths[2], num_classes) if num_classes else nn.Identity()
        _init_weights(self)
        if isinstance(self.fc, nn.Linear):
            nn.init.zeros_(self.fc.bias)  # RepDistiller models/wrn.py zeroes the linear bias

    def forward_raw_features(self, x: Tensor) -> Tensor:
        """Last stage output *before* the final BN+ReLU, ``(B, num_features, H/4, W/4)``.

        This is RepDistiller's ``feat[-2]`` for WRNs.
        """
        return self.block3(self.block2(self.block1(self.conv1(x))))

    def forward_intermediates(self, x: Tensor) -> list[Tensor]:
        """Stage outputs, stem excluded: raw sums of stages 1-2, then stage 3 after BN+ReLU.

        Returns:
            ``[(B, 16k, H, W), (B, 32k, H/2, W/2), (B, 64k, H/4, W/4)]``; the last equals
            ``forward_features(x)``.
        """
        f1 = self.block1(self.conv1(x))
        f2 = self.block2(f1)
        f3 = F.relu(self.bn1(self.block3(f2)))
        return [f1, f2, f3]

    def forward_features(self, x: Tensor) -> Tensor:
        """``(B, in_chans, H, W) -> (B, num_features, H/4, W/4)``, after the final BN+ReLU."""
        return F.relu(self.bn1(self.forward_raw_features(x)))

    def forward_head(self, f: Tensor, *, pre_logits: bool = False) -> Tensor:
        """``(B, C, h, w) -> (B, num_classes)``, or pooled ``(B, num_features)`` with pre_logits."""
        f = F.adaptive_avg_pool2d(f, 1).flatten(1)  # (B, C)
        return f if pre_logits else self.fc(f)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def wrn_16_1(*, num_classes: int, in_chans: int = 3) -> WideResNet:
    """WRN-16-1: 2 blocks per stage, widths 16/32/64. 0.18M params at 100 classes."""
    return WideResNet(depth=16, widen_factor=1, num_classes=num_classes, in_chans=in_chans)


def wrn_16_2(*, num_classes: int, in_chans: int = 3) -> WideResNet:
    """WRN-16-2: 2 blocks per stage, widths 32/64/128. 0.70M params at 100 classes."""
    return WideResNet(depth=16, widen_factor=2, num_classes=num_classes, in_chans=in_chans)


def wrn_40_1(*, num_classes: int, in_chans: int = 3) -> WideResNet:
    """WRN-40-1: 6 blocks per stage, widths 16/32/64. 0.57M params at 100 classes."""
    return WideResNet(depth=40, widen_factor=1, num_classes=num_classes, in_chans=in_chans)


def wrn_40_2(*, num_classes: int, in_chans: int = 3) -> WideResNet:
    """WRN-40-2: 6 blocks per stage, widths 32/64/128. 2.26M params at 100 classes."""
    return WideResNet(depth=40, widen_factor=2, num_classes=num_classes, in_chans=in_chans)
