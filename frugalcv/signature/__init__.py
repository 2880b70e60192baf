"""Signature-graph networks (SGN, Hamdi et al., arXiv 2110.11551): graphs of feature-map extrema.

Components (no config, no trainer):

- :mod:`frugalcv.signature.graph`: batched tensor math: :func:`patch_extrema`,
  :func:`signature_edges`, :func:`edge_weights`, :func:`signature_graph`,
  :func:`graph_laplacian`, :func:`laplacian_spectrum`, :func:`signature_spectrum`,
  :func:`group_channels`;
- :mod:`frugalcv.signature.sgn`: :class:`SignatureSpectrum` (layer), :class:`SGNHead`,
  :class:`SGNModel` and :func:`create_sgn_model` for the variants ``cnn``, ``cnn_mha``, ``sgn``,
  ``sgn_mha``; train them with :class:`frugalcv.classify.ClassifyTask`;
- :func:`draw_signature_graph` (PNG) and :func:`graph_speed_ratio` (images/s, graph vs CNN).
"""

from frugalcv.signature.draw import draw_signature_graph
from frugalcv.signature.graph import (
    LAPLACIAN_OPTIONS,
    NODE_OPTIONS,
    PAIR_OPTIONS,
    WEIGHT_OPTIONS,
    SignatureGraph,
    adjacency_from_edges,
    edge_weights,
    graph_laplacian,
    group_channels,
    laplacian_spectrum,
    patch_extrema,
    patch_grid,
    signature_edges,
    signature_graph,
    signature_spectrum,
)
from frugalcv.signature.measure import graph_speed_ratio
from frugalcv.signature.sgn import (
    AGGREGATE_OPTIONS,
    SGN_VARIANTS,
    SGNHead,
    SGNModel,
    SignatureSpectrum,
    create_sgn_model,
)

__all__ = [
    "AGGREGATE_OPTIONS",
    "LAPLACIAN_OPTIONS",
    "NODE_OPTIONS",
    "PAIR_OPTIONS",
    "SGN_VARIANTS",
    "WEIGHT_OPTIONS",
    "SGNHead",
    "SGNModel",
    "SignatureGraph",
    "SignatureSpectrum",
    "adjacency_from_edges",
    "create_sgn_model",
    "draw_signature_graph",
    "edge_weights",
    "graph_laplacian",
    "graph_speed_ratio",
    "group_channels",
    "laplacian_spectrum",
    "patch_extrema",
    "patch_grid",
    "signature_edges",
    "signature_graph",
    "signature_spectrum",
]
