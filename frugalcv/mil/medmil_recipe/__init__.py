"""``medmil``: MED-MIL (self-paced MIL with a visual-semantic loss) against MIL baselines.

Luo et al., "Reliable Shot Identification for Complex Event Detection via Visual-Semantic
Embedding", CVIU 2021 (arXiv 2110.08063); every detail below the abstract is a reconstruction
(docs/methods/medmil.md). Each row is a one-vs-rest event detector per event, trained on the same
training bags and scored on the same test bags; the metric is mean average precision over events
(the TRECVID MED metric, :func:`frugalcv.mil.mean_average_precision`).

Rows (``medmil.rows``):

- ``mean_pooling``: logistic regression on mean-pooled video vectors (:class:`MeanPoolingMIL`);
- ``mi_svm`` / ``MI_SVM``: Andrews et al. 2002 (:class:`miSVM`, :class:`MISVM`, linear);
- ``attention_mil``: gated attention MIL (Ilse et al. 2018), :class:`AttentionMILTask` trained
  by the shared ``fit`` (the only gradient-trained row);
- ``full``: :class:`MEDMIL` with ``medmil.regularizer`` and the semantic term;
- ``no_semantic``: the same without the semantic term (mu = 0);
- ``no_self_pacing``: every segment of a positive video at v = 1 (single-instance learning with
  the video label, the solver's round-0 classifier): no curriculum, no reliability;
- ``spl_<name>``: the full method with another self-paced regulariser.

The scikit-learn rows are fitted here (they take no gradient steps) and write the same
``summary.json`` keys as a trained row: ``final.map``, ``best`` (= final, with its step: these
models are evaluated once), ``steps`` (solver rounds / SVM iterations over all events),
``wall_s`` (fit seconds). The full method's curriculum is plotted to ``<run>/admitted.png``.
"""

from frugalcv.mil.medmil_recipe.attention import bag_scores, fit_attention_row

# ``name as name``: public names of the old module outside its __all__, still importable here.
from frugalcv.mil.medmil_recipe.config import MEDMIL_ROWS as MEDMIL_ROWS
from frugalcv.mil.medmil_recipe.config import (
    PRESETS,
    ROWS,
    AttentionConfig,
    Config,
    DataConfig,
    MedMilConfig,
    paper_medtest,
    paper_mnist_bags,
    paper_musk1,
    tiny,
)
from frugalcv.mil.medmil_recipe.config import ROW_NOTES as ROW_NOTES
from frugalcv.mil.medmil_recipe.config import TEXT_DIM as TEXT_DIM
from frugalcv.mil.medmil_recipe.config import DataName as DataName
from frugalcv.mil.medmil_recipe.config import Regularizer as Regularizer
from frugalcv.mil.medmil_recipe.config import RowName as RowName
from frugalcv.mil.medmil_recipe.config import Semantics as Semantics
from frugalcv.mil.medmil_recipe.data import load_data, resolve_semantics
from frugalcv.mil.medmil_recipe.figures import plot_admitted
from frugalcv.mil.medmil_recipe.recipe import run
from frugalcv.mil.medmil_recipe.rows import fit_estimator_row, make_estimator

__all__ = [
    "ROWS",
    "AttentionConfig",
    "Config",
    "DataConfig",
    "MedMilConfig",
    "PRESETS",
    "bag_scores",
    "fit_attention_row",
    "fit_estimator_row",
    "load_data",
    "make_estimator",
    "paper_medtest",
    "paper_mnist_bags",
    "paper_musk1",
    "plot_admitted",
    "resolve_semantics",
    "run",
    "tiny",
]
