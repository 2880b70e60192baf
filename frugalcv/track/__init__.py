"""Single-object tracking with a labelling budget: ALT (active learning for deep visual tracking).

Components need no config or trainer: box geometry and the Tversky loss (`boxes`), OPE metrics
(`metrics`), crops and training pairs (`crops`), the Siamese tracker, its Task and the `Tracker`
protocol (`siamese`, `tracker`), and frame selectors on feature tensors (`selection`). Data
(procedural sequences, OTB / GOT-10k / LaSOT / UAV123 / TrackingNet readers) live in
:mod:`frugalcv.data.tracking`.
"""

from frugalcv.track.boxes import (
    box_centre,
    box_iou,
    box_masks,
    box_tversky_index,
    box_tversky_loss,
    mask_tversky_index,
    mask_tversky_loss,
    xywh_to_xyxy,
    xyxy_to_xywh,
)
from frugalcv.track.crops import crop_resize, make_pairs, template_side
from frugalcv.track.metrics import (
    PRECISION_THRESHOLDS,
    SUCCESS_THRESHOLDS,
    centre_errors,
    ope_scores,
    overlaps,
    precision_curve,
    success_curve,
)
from frugalcv.track.selection import (
    SELECTORS,
    ALTSelector,
    FramePool,
    RandomSelector,
    UncertaintySelector,
    UniformSelector,
    alt_frames,
    coverage_score,
    coverage_select,
    frame_budget,
    knn_distance,
    nn_screen,
    random_frames,
    uncertainty_frames,
    uniform_frames,
)
from frugalcv.track.siamese import (
    SiamBoxNet,
    SiamTracker,
    TinyBackbone,
    TrackerTask,
    balanced_logistic_loss,
    frame_features,
    scaled_l1_box_loss,
    xcorr_depthwise,
)
from frugalcv.track.tracker import IdentityTracker, Tracker, run_tracker

__all__ = [
    "PRECISION_THRESHOLDS",
    "SELECTORS",
    "SUCCESS_THRESHOLDS",
    "ALTSelector",
    "FramePool",
    "IdentityTracker",
    "RandomSelector",
    "SiamBoxNet",
    "SiamTracker",
    "TinyBackbone",
    "Tracker",
    "TrackerTask",
    "UncertaintySelector",
    "UniformSelector",
    "alt_frames",
    "balanced_logistic_loss",
    "box_centre",
    "box_iou",
    "box_masks",
    "box_tversky_index",
    "box_tversky_loss",
    "centre_errors",
    "coverage_score",
    "coverage_select",
    "crop_resize",
    "frame_budget",
    "frame_features",
    "knn_distance",
    "make_pairs",
    "mask_tversky_index",
    "mask_tversky_loss",
    "nn_screen",
    "ope_scores",
    "overlaps",
    "precision_curve",
    "random_frames",
    "run_tracker",
    "scaled_l1_box_loss",
    "success_curve",
    "template_side",
    "uncertainty_frames",
    "uniform_frames",
    "xcorr_depthwise",
    "xywh_to_xyxy",
    "xyxy_to_xywh",
]
