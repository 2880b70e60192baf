"""Backbones with one interface, for distillation, pruning and cost measurement.

Every classification model built by :func:`create_model` has:

- ``forward(x: (B, in_chans, H, W)) -> (B, num_classes)`` logits;
- ``forward_features(x) -> (B, num_features, h, w)``: the last stage after its activation, before
  pooling (for CIFAR ResNets RepDistiller's ``feat[-2]``, the map ICKD distils);
- ``forward_head(f, *, pre_logits=False) -> (B, num_classes)``, or the pooled ``(B, num_features)``
  with ``pre_logits`` (``(B, head_hidden_size)`` for timm models with a conv head after the pool);
- ``forward_intermediates(x) -> list[Tensor]``: one map per entry of ``stage_channels``, the last
  equal to ``forward_features(x)``. frugalcv's own models exclude the stem (three stages); timm
  models follow timm's ``feature_info``, which includes the stem;
- attributes ``num_features``, ``num_classes``, ``stage_channels`` (and ``head_hidden_size``).

Names prefixed ``timm/`` (``timm/resnet18``, ``timm/mobilenetv3_small_050``) build the timm model
with ``pretrained=False`` behind the same interface (:class:`frugalcv.zoo.timm_models.TimmModel`).
Segmentation models live in :mod:`frugalcv.zoo.segmentation` (``create_seg_model``).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from torch import nn

from frugalcv.zoo import cifar_resnet, wrn
from frugalcv.zoo.segmentation import SEG_MODELS, create_seg_model

__all__ = ["MODELS", "SEG_MODELS", "create_model", "create_seg_model"]

# Parameter counts are at 100 classes and 3 input channels.
MODELS: dict[str, Callable[..., nn.Module]] = {
    # CIFAR ResNets, stem 16, stages 16/32/64 (RepDistiller models/resnet.py)
    "resnet8": cifar_resnet.resnet8,  # 0.08M
    "resnet14": cifar_resnet.resnet14,  # 0.18M
    "resnet20": cifar_resnet.resnet20,  # 0.28M
    "resnet32": cifar_resnet.resnet32,  # 0.47M
    "resnet44": cifar_resnet.resnet44,  # 0.67M
    "resnet56": cifar_resnet.resnet56,  # 0.86M
    "resnet110": cifar_resnet.resnet110,  # 1.74M
    # stem 32, stages 64/128/256 (RepDistiller's x4 variants)
    "resnet8x4": cifar_resnet.resnet8x4,  # 1.23M
    "resnet32x4": cifar_resnet.resnet32x4,  # 7.43M
    # stem 16, stages 32/64/128 (frugalcv: half the x4 widths, for tiny presets)
    "resnet8x2": cifar_resnet.resnet8x2,  # 0.32M
    "resnet20x2": cifar_resnet.resnet20x2,  # 1.09M
    # wide ResNets, pre-activation (RepDistiller models/wrn.py)
    "wrn_16_1": wrn.wrn_16_1,  # 0.18M
    "wrn_16_2": wrn.wrn_16_2,  # 0.70M
    "wrn_40_1": wrn.wrn_40_1,  # 0.57M
    "wrn_40_2": wrn.wrn_40_2,  # 2.26M
    # three conv layers 16/32/64 (frugalcv smoke-test model)
    "tiny_cnn": cifar_resnet.tiny_cnn,  # 0.03M
}

TIMM_PREFIX = "timm/"


def create_model(name: str, *, num_classes: int, in_chans: int = 3) -> nn.Module:
    """Build a classification model by name, following the zoo contract (module docstring).

    Args:
        name: a key of ``MODELS``, or ``"timm/<timm name>"`` (built with ``pretrained=False``).
        num_classes: classifier outputs.
        in_chans: input channels.

    Raises:
        ValueError: unknown name (the message lists the names and the closest match).
    """
    if name.startswith(TIMM_PREFIX):
        from frugalcv.zoo.timm_models import TimmModel

        return TimmModel(name=name[len(TIMM_PREFIX) :], num_classes=num_classes, in_chans=in_chans)
    if name not in MODELS:
        close = difflib.get_close_matches(name, MODELS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"Unknown model {name!r}.{hint} Available: {', '.join(MODELS)}, "
            f"or '{TIMM_PREFIX}<name>' for any timm model."
        )
    return MODELS[name](num_classes=num_classes, in_chans=in_chans)
