"""``alt``: a tracker trained on a labelling budget: select frames, reveal their boxes, retrain.

Yuan et al., "Active Learning for Deep Visual Tracking" (IEEE TNNLS 2023, arXiv 2110.13259).
Only the abstract is public; every definition below the component names is a reconstruction
(docs/methods/alt.md).

The unlabelled pool is every frame of the training sequences. Each sequence comes with its first
box (a tracker is always initialised with one), so **round 0** trains the tracker
(:class:`frugalcv.track.TrackerTask` through the shared ``fit``; pairs from
:func:`frugalcv.track.make_pairs` over labelled frames only) on frame 0 of every sequence. The
round's tracker then runs over each training sequence from its first box (no other label used):
its peak scores are the confidences of uncertainty sampling, and crops around its boxes, embedded
by its backbone, are the features of ALT's selection. The selector adds frames up to the round's
share of the budget (``alt.budget`` of each sequence's frames at the last round, frame 0
included), their ground truth is revealed, and the next round retrains from the same
initialisation (:func:`frugalcv.core.stages.run_rounds`; each selection is saved and replayed on
resume).

Selectors that need no model (``random``, ``uniform``, and ``all``: every frame labelled, the
upper bound) draw their frames up front and train once: retraining from the same initialisation
makes their last round exactly this run. Every selector's set holds frame 0.

Evaluation (every round): one-pass evaluation (OPE) of :class:`frugalcv.track.SiamTracker` on the
held-out test sequences, got10k-toolkit OTB conventions (:func:`frugalcv.track.ope_scores`):
``final.success_auc`` (the metric), ``final.precision`` (centre error <= 20 px),
``final.success_rate`` and ``final.fps`` (frames per second of the whole tracking loop, this
process's threads), besides the loop's pair metrics (``iou``, ``centre_error`` on test-sequence
pairs: logged only, nothing is selected on them; ``final`` is the last step). The test frames
with predicted and true boxes are drawn to ``<run>/frames.png``.
"""

# ``name as name``: public names of the old module outside its __all__, still importable here.
from frugalcv.track.alt_recipe.config import MODEL_BASED as MODEL_BASED
from frugalcv.track.alt_recipe.config import (
    PRESETS,
    SELECTOR_NAMES,
    ALTConfig,
    Config,
    DataConfig,
    paper_got10k,
    paper_lasot,
    tiny,
)
from frugalcv.track.alt_recipe.config import SELECTOR_NOTES as SELECTOR_NOTES
from frugalcv.track.alt_recipe.config import SelectorName as SelectorName
from frugalcv.track.alt_recipe.data import load_sequences
from frugalcv.track.alt_recipe.figure import plot_frames
from frugalcv.track.alt_recipe.model import evaluate_ope, make_task, score_pool
from frugalcv.track.alt_recipe.model import make_tracker as make_tracker
from frugalcv.track.alt_recipe.recipe import run
from frugalcv.track.alt_recipe.selection import extend_selection, initial_selection, round_counts

# ``name as name``: read off the old module by its tests (the budget the rounds grow to).
from frugalcv.track.selection import frame_budget as frame_budget

__all__ = [
    "ALTConfig",
    "Config",
    "DataConfig",
    "PRESETS",
    "SELECTOR_NAMES",
    "evaluate_ope",
    "extend_selection",
    "initial_selection",
    "load_sequences",
    "make_task",
    "paper_got10k",
    "paper_lasot",
    "plot_frames",
    "round_counts",
    "run",
    "score_pool",
    "tiny",
]
