"""``zsl``: one zero-shot method (ESZSL, attribute regression, bilinear, BGSNet, ERPCNet) per run.

Protocol (Xian et al., TPAMI 2019): train on the seen classes only; report ZSL top-1 (per-class
mean, predicting among the unseen classes) and GZSL U / S / H (predicting among all classes),
with calibrated stacking (Chao et al., ECCV 2016). Every run writes ``rows.json`` whose method row
carries all four numbers (and the gamma used) in ``final``.

Stages of one run (``<run>/`` folders):

1. ``val/...``: when ``zsl.gamma="val_classes"``, the same method is trained on the seen classes
   minus a few *validation classes* (xlsa17's ``val_loc`` classes when the data has them, else
   ``zsl.num_val_classes`` seen classes drawn with the seed). Its scores on held-out samples of
   the remaining seen classes and on the validation classes (pseudo-unseen) choose the
   calibrated-stacking gamma (:func:`frugalcv.zsl.select_gamma`) and, for the closed-form
   baselines, their regularisers (ESZSL gamma/lam, ridge lam; the papers' validation protocol).
   The unseen test classes never choose anything.
2. The final model, trained on every seen class (a stratified ``data.val_fraction`` of their
   training images held out for the ``seen_acc`` monitor), then evaluated on the test splits
   with that gamma.

Features: the trained methods (bilinear, BGSNet, ERPCNet) run end to end on images with a
``frugalcv.zoo`` backbone (``zsl.backbone``), or on xlsa17's fixed features without one. The
closed-form baselines run on the pooled features of a backbone trained by plain cross-entropy on
the seen classes only (the stage ``backbone``, and ``val/backbone`` on the reduced classes),
trained once and reused by other runs through ``zsl.backbone_from`` (the run folder that holds
them), or on xlsa17's fixed ResNet-101 features. Their runs also write two reference rows:
``chance`` and ``oracle`` (a ridge classifier given the test labels of every class, on the same
features: what the features allow; :func:`frugalcv.zsl.metrics.oracle_gzsl`).
"""

# ``name as name``: public names of the old module outside its __all__, still importable from
# here (the benchmark runner reads ``data_source`` off the registered recipe module).
from frugalcv.zsl.zsl_recipe.config import CLOSED_FORM as CLOSED_FORM
from frugalcv.zsl.zsl_recipe.config import METRICS as METRICS
from frugalcv.zsl.zsl_recipe.config import (
    PRESETS,
    BaselineConfig,
    BGSNetConfig,
    Config,
    DataConfig,
    ERPCNetConfig,
    ZSLConfig,
    paper_apy,
    paper_awa2,
    paper_images,
    tiny,
)
from frugalcv.zsl.zsl_recipe.config import DataName as DataName
from frugalcv.zsl.zsl_recipe.config import Method as Method
from frugalcv.zsl.zsl_recipe.data import View, load_data, split_views
from frugalcv.zsl.zsl_recipe.data import data_source as data_source
from frugalcv.zsl.zsl_recipe.data import validation_classes as validation_classes
from frugalcv.zsl.zsl_recipe.methods import make_task
from frugalcv.zsl.zsl_recipe.methods import total_steps as total_steps
from frugalcv.zsl.zsl_recipe.recipe import draw_episode as draw_episode
from frugalcv.zsl.zsl_recipe.recipe import reference_rows as reference_rows
from frugalcv.zsl.zsl_recipe.recipe import run
from frugalcv.zsl.zsl_recipe.scoring import batched as batched
from frugalcv.zsl.zsl_recipe.scoring import choose_gamma, zsl_metrics

__all__ = [
    "BGSNetConfig",
    "BaselineConfig",
    "Config",
    "DataConfig",
    "ERPCNetConfig",
    "PRESETS",
    "View",
    "ZSLConfig",
    "choose_gamma",
    "load_data",
    "make_task",
    "paper_apy",
    "paper_awa2",
    "paper_images",
    "run",
    "split_views",
    "tiny",
    "zsl_metrics",
]
