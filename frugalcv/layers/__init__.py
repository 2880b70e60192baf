"""Layers shared by two or more method families (slimmable conv/linear/norm/attention)."""

from frugalcv.layers.slimmable import (
    ROLES,
    SlimBatchNorm2d,
    SlimConv2d,
    SlimLayerNorm,
    SlimLinear,
    SlimMultiheadAttention,
    per_sample_widths,
    recalibrate_bn,
    scaled_channels,
    set_width,
    slim_layers,
    using_width,
)

__all__ = [
    "ROLES",
    "SlimBatchNorm2d",
    "SlimConv2d",
    "SlimLayerNorm",
    "SlimLinear",
    "SlimMultiheadAttention",
    "per_sample_widths",
    "recalibrate_bn",
    "scaled_channels",
    "set_width",
    "slim_layers",
    "using_width",
]
