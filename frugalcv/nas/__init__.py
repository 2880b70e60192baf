"""Differentiable architecture search: NAS-Bench-201 and DARTS spaces, DARTS, BaLeNAS, proxies.

Components (no config, no trainer needed):

- spaces: :class:`NB201Supernet`, :class:`NB201Network`, arch strings (:func:`parse_nb201_arch`,
  :func:`format_nb201_arch`); :class:`DartsSupernet`, :class:`DartsNetwork`, :class:`Genotype`.
- searchers (Tasks with a bilevel ``step``): :class:`DartsSearchTask` (first / second order),
  :class:`BaLeNASTask` (Vadam on alpha); :func:`random_search`.
- :class:`Vadam`: the NGVI optimiser, usable on its own.
- BaLeNAS-TF: :func:`balenas_tf_select` with the training-free proxies in :data:`PROXIES`.
- diagnostics: :func:`hessian_max_eigenvalue`, :func:`arch_hessian_max_eigenvalue`,
  :func:`skip_share`; lookup: :class:`NB201Lookup`.
"""

from frugalcv.nas.darts_space import (
    DARTS_OPS,
    DartsNetwork,
    DartsSupernet,
    Genotype,
    darts_genotype,
    darts_skip_share,
)
from frugalcv.nas.diagnostics import (
    arch_hessian_max_eigenvalue,
    hessian_max_eigenvalue,
    skip_share,
)
from frugalcv.nas.lookup import NB201Lookup, default_nb201_csv
from frugalcv.nas.nb201 import (
    NB201_EDGES,
    NB201_OPS,
    NB201Network,
    NB201Supernet,
    format_nb201_arch,
    nb201_arch_from_indices,
    nb201_arch_to_indices,
    nb201_derive,
    nb201_skip_share,
    parse_nb201_arch,
    sample_nb201_arch,
)
from frugalcv.nas.proxies import (
    PROXIES,
    TFSelection,
    balenas_tf_select,
    grad_norm_score,
    jacob_cov_score,
    naswot_kernel,
    naswot_score,
    sample_architectures,
    snip_score,
    synflow_score,
)
from frugalcv.nas.search import (
    SEARCH_ORDERS,
    BaLeNASTask,
    DartsSearchTask,
    RandomSearchResult,
    make_search_batches,
    random_search,
    unrolled_arch_grads,
)
from frugalcv.nas.vadam import Vadam

__all__ = [
    "DARTS_OPS",
    "NB201_EDGES",
    "NB201_OPS",
    "PROXIES",
    "SEARCH_ORDERS",
    "BaLeNASTask",
    "DartsNetwork",
    "DartsSearchTask",
    "DartsSupernet",
    "Genotype",
    "NB201Lookup",
    "NB201Network",
    "NB201Supernet",
    "RandomSearchResult",
    "TFSelection",
    "Vadam",
    "arch_hessian_max_eigenvalue",
    "balenas_tf_select",
    "darts_genotype",
    "darts_skip_share",
    "default_nb201_csv",
    "format_nb201_arch",
    "grad_norm_score",
    "hessian_max_eigenvalue",
    "jacob_cov_score",
    "make_search_batches",
    "naswot_kernel",
    "naswot_score",
    "nb201_arch_from_indices",
    "nb201_arch_to_indices",
    "nb201_derive",
    "nb201_skip_share",
    "parse_nb201_arch",
    "random_search",
    "sample_architectures",
    "sample_nb201_arch",
    "skip_share",
    "snip_score",
    "synflow_score",
    "unrolled_arch_grads",
]
