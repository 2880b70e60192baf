"""The DDS-Net supernet: a slimmable DnCNN, a static denoiser, and slice extraction."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from frugalcv.layers.slimmable import SlimBatchNorm2d, SlimConv2d

if TYPE_CHECKING:
    from frugalcv.slim.ddsnet.tailor import Rung

__all__ = ["ResidualDenoiser", "SlimDnCNN", "extract_subnet"]

Config = tuple[int, ...]


class SlimDnCNN(nn.Module):
    """DnCNN (Zhang et al., TIP 2017) with per-layer sliceable widths; ``y - R(y)``.

    ``conv3x3(in -> C) + ReLU``, then ``depth - 2`` of ``conv3x3(C -> C, no bias) + BN + ReLU``,
    then ``conv3x3(C -> in, no bias)`` predicting the noise ``R(y)``; the output is ``y - R(y)``
    (residual learning, DnCNN Eq. 1). Bias layout as the authors' PyTorch DnCNN (cszn/DnCNN
    ``TrainingCodes/dncnn_pytorch``: bias on the first conv only).

    Args:
        in_channels: 1 (grey) or 3 (colour).
        channels: C, the widest hidden layer (64 in DnCNN).
        depth: number of conv layers (17 for DnCNN-S, 20 for the blind DnCNN-B).
        min_channels, channel_step: each hidden layer may run at any of
            ``choices = (C, C - step, ...) >= min_channels`` channels (reconstruction: 16 and 8);
            every BN keeps running statistics per choice (``SlimBatchNorm2d``).

    Shapes: ``x: (B, in_channels, H, W)`` -> same shape.
    """

    def __init__(
        self,
        *,
        in_channels: int = 1,
        channels: int = 64,
        depth: int = 17,
        min_channels: int = 16,
        channel_step: int = 8,
    ) -> None:
        super().__init__()
        if depth < 3:
            raise ValueError(f"depth counts every conv and must be >= 3; got {depth}")
        if not 1 <= min_channels <= channels or channel_step < 1:
            raise ValueError(
                f"need 1 <= min_channels <= channels and channel_step >= 1; got "
                f"min_channels={min_channels}, channels={channels}, channel_step={channel_step}"
            )
        self.in_channels, self.channels, self.depth = in_channels, channels, depth
        self.channel_step = channel_step
        self.choices: tuple[int, ...] = tuple(range(channels, min_channels - 1, -channel_step))[
            ::-1
        ]
        self.head = SlimConv2d(
            in_channels=in_channels, out_channels=channels, kernel_size=3, padding=1, bias=True
        )
        self.body = nn.ModuleList(
            nn.Sequential(
                SlimConv2d(
                    in_channels=channels,
                    out_channels=channels,
                    kernel_size=3,
                    padding=1,
                    bias=False,
                ),
                SlimBatchNorm2d(num_features=channels, widths=self.choices),
                nn.ReLU(inplace=True),
            )
            for _ in range(depth - 2)
        )
        self.tail = SlimConv2d(
            in_channels=channels,
            out_channels=in_channels,
            kernel_size=3,
            padding=1,
            bias=False,
            role=None,  # always predicts every image channel
        )

    @property
    def num_layers(self) -> int:
        """Length of a configuration (hidden layers: head + body)."""
        return self.depth - 1

    def hidden_convs(self) -> list[SlimConv2d]:
        return [self.head] + [block[0] for block in self.body]

    def norms(self) -> list[SlimBatchNorm2d]:
        """The BN of body layer i normalises the output of hidden layer i + 1."""
        return [block[1] for block in self.body]

    @property
    def largest_config(self) -> Config:
        return (self.choices[-1],) * self.num_layers

    @property
    def smallest_config(self) -> Config:
        return (self.choices[0],) * self.num_layers

    @property
    def config(self) -> Config:
        return tuple(int(c.active_out) for c in self.hidden_convs())

    def check_config(self, config: Sequence[int]) -> Config:
        cfg = tuple(int(c) for c in config)
        if len(cfg) != self.num_layers or any(c not in self.choices for c in cfg):
            raise ValueError(
                f"a configuration is {self.num_layers} channel counts, each one of "
                f"{list(self.choices)}; got {list(cfg)}"
            )
        return cfg

    def set_config(self, config: Sequence[int]) -> None:
        for conv, c in zip(self.hidden_convs(), self.check_config(config), strict=True):
            conv.active_out = c

    @contextlib.contextmanager
    def using_config(self, config: Sequence[int]) -> Iterator[SlimDnCNN]:
        """``with net.using_config(cfg): y = net(x)``; the previous configuration is restored."""
        saved = self.config
        self.set_config(config)
        try:
            yield self
        finally:
            self.set_config(saved)

    def forward(self, x: Tensor, config: Sequence[int] | None = None) -> Tensor:
        if config is not None:
            self.set_config(config)
        f = F.relu(self.head(x))
        for block in self.body:
            f = block(f)
        return x - self.tail(f)


class ResidualDenoiser(nn.Module):
    """A static denoiser ``y - net(y)`` built from plain torch layers (a deployed rung)."""

    def __init__(self, net: nn.Sequential) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return x - self.net(x)


@torch.no_grad()
def extract_subnet(
    supernet: SlimDnCNN, config: Sequence[int], *, rung: Rung | None = None
) -> ResidualDenoiser:
    """Copy the slice ``config`` out of the supernet into ``nn.Conv2d`` / ``nn.BatchNorm2d``
    layers (weights ``[:c_out, :c_in]``; BN statistics from ``rung`` when given, else the
    supernet's row for each channel count). The result equals ``supernet(x, config)`` in eval
    mode and holds no slicing logic (for export)."""
    cfg = supernet.check_config(config)
    if rung is not None and tuple(rung.config) != cfg:
        raise ValueError(f"rung is for {list(rung.config)}, not {list(cfg)}")
    c_in = supernet.in_channels
    layers: list[nn.Module] = []
    for i, (conv, c) in enumerate(zip(supernet.hidden_convs(), cfg, strict=True)):
        plain = nn.Conv2d(c_in, c, 3, padding=1, bias=conv.bias is not None)
        plain.weight.copy_(conv.weight[:c, :c_in])
        if conv.bias is not None:
            plain.bias.copy_(conv.bias[:c])
        layers.append(plain)
        if i > 0:
            sbn = supernet.norms()[i - 1]
            bn = nn.BatchNorm2d(c, eps=sbn.eps)
            bn.weight.copy_(sbn.weight[:c])
            bn.bias.copy_(sbn.bias[:c])
            row = sbn.width_index(c)
            bn.running_mean.copy_(rung.bn_mean[i - 1] if rung else sbn.running_mean[row, :c])
            bn.running_var.copy_(rung.bn_var[i - 1] if rung else sbn.running_var[row, :c])
            layers.append(bn)
        layers.append(nn.ReLU(inplace=True))
        c_in = c
    tail = nn.Conv2d(c_in, supernet.in_channels, 3, padding=1, bias=False)
    tail.weight.copy_(supernet.tail.weight[:, :c_in])
    layers.append(tail)
    return ResidualDenoiser(nn.Sequential(*layers)).eval()
