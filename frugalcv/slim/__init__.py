"""Dynamic and slimmable networks: DS-Net / DS-Net++ (supernets, gate, Stage I/II Tasks)."""

from frugalcv.slim.cnn import (
    DSMobileNetV2,
    DSResNet,
    ds_mobilenet_v2_cifar,
    ds_mobilenet_v2_imagenet,
    ds_resnet50,
    ds_resnet_cifar,
)
from frugalcv.slim.cost import DYNAMIC_MODES, dynamic_macs, latency_table, macs_per_width
from frugalcv.slim.dsnet import (
    BOOTSTRAP_OPTIONS,
    DSNET_STEPS_PER_EPOCH,
    BufferEMA,
    GateTask,
    SupernetTask,
    ema_decay_for,
    ema_horizon_note,
    recalibrate_supernet,
    sandwich_widths,
    soft_cross_entropy,
)
from frugalcv.slim.gate import (
    SGS_RULES,
    DynamicGate,
    GateOutput,
    budget_curve,
    complexity_loss,
    gumbel_route,
    sgs_targets,
    threshold_for_share,
)
from frugalcv.slim.supernet import SlimSupernet, forward_masked, grouped_forward
from frugalcv.slim.vit import DSViT, SlimTransformerBlock, ds_vit_cifar

__all__ = [
    "BOOTSTRAP_OPTIONS",
    "DYNAMIC_MODES",
    "SGS_RULES",
    "BufferEMA",
    "DSNET_STEPS_PER_EPOCH",
    "ema_decay_for",
    "ema_horizon_note",
    "DSMobileNetV2",
    "DSResNet",
    "DSViT",
    "DynamicGate",
    "GateOutput",
    "GateTask",
    "SlimSupernet",
    "SlimTransformerBlock",
    "SupernetTask",
    "budget_curve",
    "complexity_loss",
    "ds_mobilenet_v2_cifar",
    "ds_mobilenet_v2_imagenet",
    "ds_resnet50",
    "ds_resnet_cifar",
    "ds_vit_cifar",
    "dynamic_macs",
    "forward_masked",
    "grouped_forward",
    "gumbel_route",
    "latency_table",
    "macs_per_width",
    "recalibrate_supernet",
    "sandwich_widths",
    "sgs_targets",
    "soft_cross_entropy",
    "threshold_for_share",
]
