"""Zero-shot learning: metrics, baselines and (later) methods; data lives in frugalcv.data.zsl.

Components need no config or trainer: metrics are functions of score tensors
(:mod:`frugalcv.zsl.metrics`), baselines are scikit-learn-style estimators or ``nn.Module`` s over
(B, D) features (:mod:`frugalcv.zsl.baselines`).
"""

from frugalcv.zsl.baselines import (
    COMPATIBILITY_LOSSES,
    ESZSL,
    AttributeRegression,
    BilinearCompatibility,
    BilinearTask,
    compatibility_loss,
    eszsl_solve,
    evaluate_zsl,
)
from frugalcv.zsl.bgsnet import BGSNet, BGSNetTask, diversity_loss, sample_episode
from frugalcv.zsl.erpcnet import ERPCNet, ERPCNetTask, draw_localities
from frugalcv.zsl.metrics import (
    calibrated_stacking,
    chance_accuracy,
    gzsl_accuracy,
    harmonic_mean,
    oracle_accuracy,
    oracle_gzsl,
    per_class_accuracy,
    predict_among,
    select_gamma,
    zsl_accuracy,
)

__all__ = [
    "BGSNet",
    "BGSNetTask",
    "COMPATIBILITY_LOSSES",
    "ERPCNet",
    "ERPCNetTask",
    "ESZSL",
    "AttributeRegression",
    "BilinearCompatibility",
    "BilinearTask",
    "calibrated_stacking",
    "chance_accuracy",
    "compatibility_loss",
    "diversity_loss",
    "draw_localities",
    "eszsl_solve",
    "evaluate_zsl",
    "gzsl_accuracy",
    "harmonic_mean",
    "oracle_accuracy",
    "oracle_gzsl",
    "per_class_accuracy",
    "predict_among",
    "sample_episode",
    "select_gamma",
    "zsl_accuracy",
]
