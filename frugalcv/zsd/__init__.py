"""Zero-shot object detection: a semantic Faster R-CNN, ContrastZSD's losses and Task, metrics.

Components need no config or trainer: losses are functions of tensors
(:mod:`frugalcv.zsd.contrastzsd`), the detector is an ``nn.Module`` (:mod:`frugalcv.zsd.detector`),
metrics take lists of prediction and target dicts (:mod:`frugalcv.zsd.metrics`). Data lives in
:mod:`frugalcv.data.detection`.
"""

from frugalcv.zsd.contrastzsd import (
    ContrastZSDTask,
    class_similarity_targets,
    region_category_loss,
    region_region_loss,
    semantic_negative_weights,
)
from frugalcv.zsd.detector import (
    BACKBONES,
    DetectorOutput,
    SemanticBoxPredictor,
    SemanticFasterRCNN,
    TinyBackbone,
)
from frugalcv.zsd.metrics import (
    RECALL_IOUS,
    MeanAP50,
    gzsd_metrics,
    per_class_ap_recall,
    zsd_metrics,
)

__all__ = [
    "BACKBONES",
    "RECALL_IOUS",
    "ContrastZSDTask",
    "DetectorOutput",
    "MeanAP50",
    "SemanticBoxPredictor",
    "SemanticFasterRCNN",
    "TinyBackbone",
    "class_similarity_targets",
    "gzsd_metrics",
    "per_class_ap_recall",
    "region_category_loss",
    "region_region_loss",
    "semantic_negative_weights",
    "zsd_metrics",
]
