"""Multiple-instance learning for event detection: MED-MIL (self-paced MIL) and baselines.

Components need no config or trainer: regularisers and losses are numpy functions/objects, the
solvers are scikit-learn-style estimators (``fit(bags, y) -> self``), attention MIL is a torch
module with a :class:`~frugalcv.core.task.Task`. Data (bags, MNIST-bags, synthetic events, file
readers) live in :mod:`frugalcv.data.mil`.
"""

from frugalcv.mil.attention import AttentionMIL, AttentionMILTask, GatedAttentionPool, LeNetEncoder
from frugalcv.mil.baselines import MISVM, MeanPoolingMIL, miSVM
from frugalcv.mil.loss import (
    instance_event_similarity,
    semantic_loss,
    visual_loss,
    visual_semantic_loss,
)
from frugalcv.mil.metrics import average_precision_per_event, mean_average_precision
from frugalcv.mil.regularizers import (
    REGULARIZERS,
    ConcaveElasticNetSPL,
    GroupSPL,
    HardSPL,
    LinearSPL,
    MixtureSPL,
    NegativeElasticNetSPL,
    SelfPacedRegularizer,
    make_regularizer,
)
from frugalcv.mil.solver import MEDMIL

__all__ = [
    "MEDMIL",
    "MISVM",
    "REGULARIZERS",
    "AttentionMIL",
    "AttentionMILTask",
    "ConcaveElasticNetSPL",
    "GatedAttentionPool",
    "GroupSPL",
    "HardSPL",
    "LeNetEncoder",
    "LinearSPL",
    "MeanPoolingMIL",
    "MixtureSPL",
    "NegativeElasticNetSPL",
    "SelfPacedRegularizer",
    "average_precision_per_event",
    "instance_event_similarity",
    "make_regularizer",
    "mean_average_precision",
    "miSVM",
    "semantic_loss",
    "visual_loss",
    "visual_semantic_loss",
]
