"""Signature graphs of feature maps and their Laplacian spectra, batched on tensors.

Ali Hamdi, Flora Salim, Du Yong Kim, Xiaojun Chang, "Signature-Graph Networks", arXiv 2110.11551
(2021). No code is public and only the abstract could be read here, so every rule below that the
abstract does not state is a reconstruction (listed in ``docs/methods/sgn.md``). What the abstract
states: a per-image undirected graph is built from CNN feature maps; the maps are split into equal
non-overlapping patches; nodes sit on the local maxima or minima of the patches; nodes are joined
by horizontal and vertical edges (the "signature graph"); the graph is represented by the
eigenvalues of its Laplacian.

Construction for one map ``F`` of size ``H x W`` and patch size ``p_h x p_w`` (grid
``P_h x P_w``, ``P = P_h P_w`` patches, ``K`` nodes per patch, ``N = K P`` nodes):

1. Nodes. For patch ``(i, j)`` the maximum node is ``(F[r, c], r, c)`` with
   ``(r, c) = argmax`` over the patch (the first in raster order on ties); with ``nodes="maxmin"``
   the minimum node follows it. Node ``K (i P_w + j) + t`` is kind ``t`` (0 max, 1 min) of patch
   ``(i, j)``.
2. Edges (undirected). ``pairs="same"``: max-max and min-min between horizontally and vertically
   neighbouring patches; ``pairs="all"``: every pair of nodes of neighbouring patches. With two
   nodes per patch the max and min of a patch are also joined (so the graph is connected).
3. Weights, with values min-max normalised over the map, ``v' = (v - min F) / (max F - min F)``,
   and positions in patch units, ``u = (r / p_h, c / p_w)``::

       w_ab = exp(-(v'_a - v'_b)^2 / (2 s_v^2)) * exp(-|u_a - u_b|^2 / (2 s_u^2))   ("bilateral")

   or only the value factor ("value"), only the distance factor ("distance"), or 1 ("binary").
4. Laplacian ``L = D - W`` ("combinatorial") or ``L = I - D^-1/2 W D^-1/2`` ("normalized",
   eigenvalues in [0, 2]; isolated nodes get a zero row as in networkx), and its eigenvalues in
   ascending order from ``torch.linalg.eigvalsh``: the signature spectrum, ``N`` numbers per map.

Every function works on a batch ``(B, G, H, W)`` of ``G`` maps per image (channels or channel
groups) at once: no Python loop over images, maps, patches or nodes. Node selection (argmax) has
no gradient; gradients reach the feature map through the selected values (weights and spectrum).
``eigvalsh`` has a well-defined gradient for eigenvalues (``dλ_k = u_k^T dL u_k``), even when some
are repeated; only eigenvector gradients need distinct eigenvalues.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "LAPLACIAN_OPTIONS",
    "NODE_OPTIONS",
    "PAIR_OPTIONS",
    "WEIGHT_OPTIONS",
    "SignatureGraph",
    "adjacency_from_edges",
    "edge_weights",
    "graph_laplacian",
    "group_channels",
    "laplacian_spectrum",
    "patch_extrema",
    "patch_grid",
    "signature_edges",
    "signature_graph",
    "signature_spectrum",
]

NODE_OPTIONS = ("maxmin", "max")
PAIR_OPTIONS = ("same", "all")
WEIGHT_OPTIONS = ("bilateral", "value", "distance", "binary")
LAPLACIAN_OPTIONS = ("normalized", "combinatorial")

# Guards the division by the value range of a constant map (all normalised values become 0).
_RANGE_EPS = 1e-6


def _check_option(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {name}={value!r}; valid options are {', '.join(valid)}")


def _pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < 1:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return pair  # type: ignore[return-value]


def _nodes_per_patch(nodes: str) -> int:
    _check_option("nodes", nodes, NODE_OPTIONS)
    return 2 if nodes == "maxmin" else 1


def patch_grid(
    size: tuple[int, int], patch_size: int | tuple[int, int], *, ceil_mode: bool = False
) -> tuple[int, int]:
    """Number of patches ``(P_h, P_w)`` along each side of an ``H x W`` map.

    Args:
        size: ``(H, W)``.
        patch_size: ``p`` or ``(p_h, p_w)``.
        ceil_mode: allow sides that are not multiples of the patch size; the last row / column
            of patches is then smaller (as ``max_pool2d(ceil_mode=True)``). The paper's patches
            are equal, so the default refuses such sizes.

    Raises:
        ValueError: a side is not a multiple of the patch size and ``ceil_mode`` is false.
    """
    (h, w), (ph, pw) = size, _pair(patch_size, "patch_size")
    if ph > h or pw > w:
        raise ValueError(f"patch_size {(ph, pw)} is larger than the {h}x{w} feature map")
    if not ceil_mode and (h % ph or w % pw):
        raise ValueError(
            f"a {h}x{w} feature map cannot be split into equal {ph}x{pw} patches: choose a patch "
            f"size that divides both sides, or pass ceil_mode=True for smaller last patches"
        )
    return -(-h // ph), -(-w // pw)


def group_channels(f: Tensor, groups: int) -> Tensor:
    """Mean over ``groups`` contiguous channel groups: ``(B, C, H, W) -> (B, groups, H, W)``.

    ``groups == C`` keeps one map per channel; ``groups == 1`` is the channel mean.
    """
    if f.dim() != 4:
        raise ValueError(f"f must be a feature map (B, C, H, W), got shape {tuple(f.shape)}")
    b, c, h, w = f.shape
    if groups < 1 or c % groups:
        raise ValueError(f"groups={groups} must be a positive divisor of the {c} channels")
    return f.reshape(b, groups, c // groups, h, w).mean(2)  # (B, G, H, W)


def patch_extrema(
    f: Tensor,
    *,
    patch_size: int | tuple[int, int],
    nodes: str = "maxmin",
    ceil_mode: bool = False,
) -> Tensor:
    """Nodes of the signature graph: the extrema of every patch, with their positions.

    Args:
        f: ``(B, G, H, W)`` maps (G graphs per image).
        patch_size: ``p`` or ``(p_h, p_w)``; the patches do not overlap.
        nodes: ``"maxmin"`` (maximum then minimum of each patch) or ``"max"``.
        ceil_mode: see :func:`patch_grid`.

    Returns:
        ``(B, G, N, 3)``: ``(value, row, col)`` of each node, rows/cols in pixels of the map
        (as floats), node order as in the module docstring. Gradients flow to ``value`` only.
    """
    if f.dim() != 4:
        raise ValueError(f"f must be (B, G, H, W) maps, got shape {tuple(f.shape)}")
    k = _nodes_per_patch(nodes)
    b, g, h, w = f.shape
    ph, pw = _pair(patch_size, "patch_size")
    gh, gw = patch_grid((h, w), (ph, pw), ceil_mode=ceil_mode)
    offs_r = (torch.arange(gh, device=f.device) * ph).view(gh, 1)  # (P_h, 1) first row of a patch
    offs_c = (torch.arange(gw, device=f.device) * pw).view(1, gw)  # (1, P_w)
    out = []
    for sign in (1.0, -1.0)[:k]:  # max of f, then max of -f (= min of f)
        x = f if sign > 0 else -f
        if gh * ph != h or gw * pw != w:  # ceil mode: -inf never wins a max
            x = F.pad(x, (0, gw * pw - w, 0, gh * ph - h), value=float("-inf"))
        x = x.reshape(b, g, gh, ph, gw, pw).permute(0, 1, 2, 4, 3, 5)  # (B, G, P_h, P_w, p_h, p_w)
        val, idx = x.reshape(b, g, gh, gw, ph * pw).max(-1)  # (B, G, P_h, P_w); first on ties
        rows = (offs_r + torch.div(idx, pw, rounding_mode="floor")).to(f.dtype)
        cols = (offs_c + idx % pw).to(f.dtype)
        out.append(torch.stack((sign * val, rows, cols), -1))  # (B, G, P_h, P_w, 3)
    return torch.stack(out, -2).reshape(b, g, gh * gw * k, 3)  # (B, G, N, 3)


@functools.lru_cache(maxsize=64)
def _edges_cpu(gh: int, gw: int, k: int, pairs: str) -> Tensor:
    patch = torch.arange(gh * gw).view(gh, gw)
    neighbours = torch.cat(
        [
            torch.stack((patch[:, :-1].flatten(), patch[:, 1:].flatten()), 1),  # horizontal
            torch.stack((patch[:-1, :].flatten(), patch[1:, :].flatten()), 1),  # vertical
        ]
    )  # (M, 2) patch pairs
    kinds = (
        [(t, t) for t in range(k)]
        if pairs == "same"
        else [(s, t) for s in range(k) for t in range(k)]
    )
    parts = []
    if k == 2:  # join the max and the min of each patch
        ids = torch.arange(gh * gw)
        parts.append(torch.stack((2 * ids, 2 * ids + 1), 1))
    for s, t in kinds:
        parts.append(torch.stack((neighbours[:, 0] * k + s, neighbours[:, 1] * k + t), 1))
    return torch.cat(parts)


def signature_edges(
    grid: tuple[int, int],
    *,
    nodes: str = "maxmin",
    pairs: str = "same",
    device: torch.device | str | None = None,
) -> Tensor:
    """Undirected edges of the signature graph on a ``P_h x P_w`` grid of patches.

    Args:
        grid: ``(P_h, P_w)``.
        nodes: ``"maxmin"`` or ``"max"`` (nodes per patch, see :func:`patch_extrema`).
        pairs: ``"same"`` joins nodes of the same kind in neighbouring patches; ``"all"`` joins
            every pair of nodes of neighbouring patches.

    Returns:
        ``(E, 2)`` int64 node indices, each edge once. Counts with ``M = 2 P_h P_w - P_h - P_w``
        neighbouring patch pairs: ``M`` ("max"), ``P + 2M`` ("maxmin", "same") or ``P + 4M``
        ("maxmin", "all").
    """
    gh, gw = _pair(grid, "grid")
    _check_option("pairs", pairs, PAIR_OPTIONS)
    return _edges_cpu(gh, gw, _nodes_per_patch(nodes), pairs).to(device)


def edge_weights(
    values: Tensor,
    positions: Tensor,
    edges: Tensor,
    *,
    weight: str = "bilateral",
    sigma_value: float = 0.5,
    sigma_position: float = 1.0,
) -> Tensor:
    """Edge weights from node values and positions (module docstring, step 3).

    Args:
        values: ``(..., N)`` node values (normalised by the caller).
        positions: ``(..., N, 2)`` node positions (in patch units in :func:`signature_graph`).
        edges: ``(E, 2)`` from :func:`signature_edges`.
        weight: one of ``WEIGHT_OPTIONS``.
        sigma_value: ``s_v`` of the value factor.
        sigma_position: ``s_u`` of the distance factor.

    Returns:
        ``(..., E)`` weights in (0, 1].
    """
    _check_option("weight", weight, WEIGHT_OPTIONS)
    if sigma_value <= 0 or sigma_position <= 0:
        raise ValueError(f"sigmas must be positive, got {sigma_value=}, {sigma_position=}")
    a, b = edges[:, 0], edges[:, 1]
    log_w = values.new_zeros(values.shape[:-1] + (len(edges),))  # (..., E)
    if weight in ("bilateral", "value"):
        log_w = log_w - (values[..., a] - values[..., b]).square() / (2 * sigma_value**2)
    if weight in ("bilateral", "distance"):
        d2 = (positions[..., a, :] - positions[..., b, :]).square().sum(-1)  # (..., E)
        log_w = log_w - d2 / (2 * sigma_position**2)
    return log_w.exp()


def adjacency_from_edges(w: Tensor, edges: Tensor, num_nodes: int) -> Tensor:
    """Symmetric weighted adjacency ``(..., N, N)`` from edge weights ``w: (..., E)``."""
    n = num_nodes
    a, b = edges[:, 0], edges[:, 1]
    flat = w.new_zeros(w.shape[:-1] + (n * n,))  # (..., N*N)
    flat = flat.index_add(-1, a * n + b, w).index_add(-1, b * n + a, w)
    return flat.reshape(w.shape[:-1] + (n, n))


def graph_laplacian(adj: Tensor, *, laplacian: str = "normalized") -> Tensor:
    """Laplacian of a batch of symmetric adjacency matrices ``(..., N, N)``.

    ``"combinatorial"``: ``L = D - W``. ``"normalized"``: ``L = D^-1/2 (D - W) D^-1/2``, with
    ``D^-1/2`` set to 0 for isolated nodes (networkx's ``normalized_laplacian_matrix``).
    """
    _check_option("laplacian", laplacian, LAPLACIAN_OPTIONS)
    deg = adj.sum(-1)  # (..., N)
    lap = torch.diag_embed(deg) - adj
    if laplacian == "normalized":
        positive = deg > 0
        inv_sqrt = torch.where(positive, deg.clamp_min(torch.finfo(deg.dtype).tiny).rsqrt(), 0.0)
        lap = inv_sqrt.unsqueeze(-1) * lap * inv_sqrt.unsqueeze(-2)
    return lap


def laplacian_spectrum(adj: Tensor, *, laplacian: str = "normalized") -> Tensor:
    """Eigenvalues of the Laplacian of ``adj: (..., N, N)``, ascending: ``(..., N)``.

    Half-precision inputs are computed in float32 (``eigvalsh`` has no half kernels); float64
    stays float64.
    """
    lap = graph_laplacian(adj, laplacian=laplacian)
    if lap.dtype in (torch.float16, torch.bfloat16):
        lap = lap.float()
    with torch.autocast(device_type=lap.device.type, enabled=False):
        return torch.linalg.eigvalsh(lap)


@dataclass
class SignatureGraph:
    """A batch of signature graphs (``B`` images, ``G`` maps each, ``N`` nodes, ``E`` edges).

    Attributes:
        nodes: ``(B, G, N, 3)`` raw ``(value, row, col)`` of each node, in pixels of the map.
        values: ``(B, G, N)`` values min-max normalised over each map (used by the weights).
        positions: ``(B, G, N, 2)`` positions in patch units, ``(row / p_h, col / p_w)``.
        edges: ``(E, 2)`` node index pairs, shared by every graph.
        weights: ``(B, G, E)`` edge weights.
        adjacency: ``(B, G, N, N)`` symmetric weighted adjacency.
        grid: ``(P_h, P_w)``.
        patch_size: ``(p_h, p_w)``.
    """

    nodes: Tensor
    values: Tensor
    positions: Tensor
    edges: Tensor
    weights: Tensor
    adjacency: Tensor
    grid: tuple[int, int]
    patch_size: tuple[int, int]

    @property
    def num_nodes(self) -> int:
        return self.nodes.shape[-2]


def signature_graph(
    f: Tensor,
    *,
    patch_size: int | tuple[int, int] = 2,
    nodes: str = "maxmin",
    pairs: str = "same",
    weight: str = "bilateral",
    sigma_value: float = 0.5,
    sigma_position: float = 1.0,
    normalize_values: bool = True,
    ceil_mode: bool = False,
) -> SignatureGraph:
    """Build the signature graph of every map of ``f: (B, G, H, W)`` (module docstring, 1-3).

    Args:
        f: maps; one graph per ``(image, map)``. Use :func:`group_channels` first to turn a
            ``(B, C, H, W)`` feature map into ``G`` channel-group maps.
        patch_size: ``p`` or ``(p_h, p_w)``.
        nodes: one of ``NODE_OPTIONS``.
        pairs: one of ``PAIR_OPTIONS``.
        weight: one of ``WEIGHT_OPTIONS``.
        sigma_value: ``s_v`` (normalised values lie in [0, 1]).
        sigma_position: ``s_u`` in patch units (neighbouring patches' nodes are 0-2 apart per axis).
        normalize_values: min-max normalise values per map (makes the graph invariant to
            ``F -> a F + b`` with ``a > 0``); else raw values.
        ceil_mode: see :func:`patch_grid`.

    Worked example (also a test): the 2x4 map ``[[0, 1, 5, 2], [3, 0, 0, 4]]`` with 2x2 patches
    has nodes max ``(3, 1, 0)``, min ``(0, 0, 0)`` in patch 0 and max ``(5, 0, 2)``, min
    ``(0, 1, 2)`` in patch 1, and edges ``(0, 1), (2, 3), (0, 2), (1, 3)``: a 4-cycle.
    """
    ph, pw = _pair(patch_size, "patch_size")
    node_attr = patch_extrema(f, patch_size=(ph, pw), nodes=nodes, ceil_mode=ceil_mode)
    grid = patch_grid(tuple(f.shape[-2:]), (ph, pw), ceil_mode=ceil_mode)
    edges = signature_edges(grid, nodes=nodes, pairs=pairs, device=f.device)
    values = node_attr[..., 0]  # (B, G, N)
    if normalize_values:
        lo = f.amin((-2, -1)).unsqueeze(-1)  # (B, G, 1)
        hi = f.amax((-2, -1)).unsqueeze(-1)
        values = (values - lo) / (hi - lo).clamp_min(_RANGE_EPS)
    scale = node_attr.new_tensor([ph, pw])
    positions = node_attr[..., 1:] / scale  # (B, G, N, 2) in patch units
    w = edge_weights(
        values,
        positions,
        edges,
        weight=weight,
        sigma_value=sigma_value,
        sigma_position=sigma_position,
    )
    adj = adjacency_from_edges(w, edges, node_attr.shape[-2])
    return SignatureGraph(node_attr, values, positions, edges, w, adj, grid, (ph, pw))


def signature_spectrum(
    f: Tensor,
    *,
    patch_size: int | tuple[int, int] = 2,
    nodes: str = "maxmin",
    pairs: str = "same",
    weight: str = "bilateral",
    sigma_value: float = 0.5,
    sigma_position: float = 1.0,
    normalize_values: bool = True,
    ceil_mode: bool = False,
    laplacian: str = "normalized",
) -> Tensor:
    """Laplacian eigenvalues of the signature graph of every map: ``(B, G, H, W) -> (B, G, N)``.

    Arguments as in :func:`signature_graph`, plus ``laplacian`` (one of ``LAPLACIAN_OPTIONS``).
    The spectrum is ascending; with the normalised Laplacian of a connected graph the first
    eigenvalue is 0 and all lie in [0, 2].
    """
    graph = signature_graph(
        f,
        patch_size=patch_size,
        nodes=nodes,
        pairs=pairs,
        weight=weight,
        sigma_value=sigma_value,
        sigma_position=sigma_position,
        normalize_values=normalize_values,
        ceil_mode=ceil_mode,
    )
    return laplacian_spectrum(graph.adjacency, laplacian=laplacian)
