"""Knowledge distillation components: losses and embeds as plain tensor functions and modules."""

from frugalcv.distill.ickd import (
    NORMALIZE_OPTIONS,
    REDUCTION_OPTIONS,
    DistillWeights,
    ICKDEmbed,
    ICKDLoss,
    grid_ickd_loss,
    ickd_loss,
)
from frugalcv.distill.kd import kd_loss

__all__ = [
    "NORMALIZE_OPTIONS",
    "REDUCTION_OPTIONS",
    "DistillWeights",
    "ICKDEmbed",
    "ICKDLoss",
    "grid_ickd_loss",
    "ickd_loss",
    "kd_loss",
]
