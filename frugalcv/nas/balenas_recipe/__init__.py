"""``balenas``: search a NAS-Bench-201 cell, then train the found cell from scratch.

Miao Zhang et al., "BaLeNAS: Differentiable Architecture Search via the Bayesian Learning Rule",
CVPR 2022 (arXiv 2111.13204), against DARTS (Liu et al., ICLR 2019) first and second order and
random search, in the NAS-Bench-201 space (Dong & Yang, ICLR 2020).

Stage 1, ``<run>/search``: ``search.searcher`` picks the cell.

- ``darts1`` / ``darts2``: :class:`~frugalcv.nas.DartsSearchTask` (SGD on the supernet weights,
  Adam on alpha), argmax of alpha per edge.
- ``balenas``: :class:`~frugalcv.nas.BaLeNASTask` (Vadam on alpha: q(alpha) = N(mu, sigma^2)),
  argmax of mu per edge.
- ``balenas_tf``: the same search, then K cells drawn from q(alpha) and the best by a
  training-free proxy at initialisation (:func:`~frugalcv.nas.balenas_tf_select`).
  ``search.ckpt`` reuses an earlier ``balenas``/``balenas_tf`` search folder instead of searching
  again (the benchmark shares one search between the BaLeNAS and BaLeNAS-TF rows).
- ``random``: ``search.random_samples`` cells drawn uniformly; each trains stand-alone on the
  search's training half for ``search.epochs / search.random_samples`` epochs (so all candidates
  together take as many weight steps as a supernet search) and the best accuracy on the other
  half wins (a reconstruction: the NB201 paper's random search reads the benchmark's table).

The gradient searchers run through the shared ``fit`` with :class:`SearchDiagnostics`, a hook that
records per epoch the dominant eigenvalue of the validation-loss Hessian w.r.t. alpha (Zela et al.
2020) and the skip-connection share of the derived cell, written to ``search/diagnostics.json``
and plotted to ``search/diagnostics.png``.

Stage 2, ``<run>/retrain``: the found cell as an :class:`~frugalcv.nas.NB201Network`, trained
from scratch on the whole training split with ``optim``/``train`` (NB201's 200-epoch protocol in
the paper presets); its summary carries the search's cost and diagnostics.
"""

# ``name as name``: classify's data config and loader, read off this module before the split
# (the balenas benchmark loads the search data with ``load_data``).
from frugalcv.classify import DataConfig as DataConfig
from frugalcv.classify import load_data as load_data

# ``name as name``: public names of the old module outside its __all__, still importable here.
from frugalcv.nas.balenas_recipe.config import BAYESIAN_SEARCHERS as BAYESIAN_SEARCHERS
from frugalcv.nas.balenas_recipe.config import GRADIENT_SEARCHERS as GRADIENT_SEARCHERS
from frugalcv.nas.balenas_recipe.config import (
    PRESETS,
    Config,
    SearchConfig,
    paper_cifar10,
    paper_imagenet16,
    tiny,
)
from frugalcv.nas.balenas_recipe.config import Proxy as Proxy
from frugalcv.nas.balenas_recipe.config import Searcher as Searcher
from frugalcv.nas.balenas_recipe.data import SearchLoader, cosine_floor
from frugalcv.nas.balenas_recipe.data import split_halves as split_halves
from frugalcv.nas.balenas_recipe.diagnostics import SearchDiagnostics
from frugalcv.nas.balenas_recipe.diagnostics import plot_diagnostics as plot_diagnostics
from frugalcv.nas.balenas_recipe.recipe import run
from frugalcv.nas.balenas_recipe.tasks import make_search_task, search_step_cost

__all__ = [
    "PRESETS",
    "Config",
    "SearchConfig",
    "SearchDiagnostics",
    "SearchLoader",
    "cosine_floor",
    "make_search_task",
    "paper_cifar10",
    "paper_imagenet16",
    "run",
    "search_step_cost",
    "tiny",
]
