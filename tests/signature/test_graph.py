"""Signature graphs: hand-made maps, a networkx reference built pixel by pixel, invariants."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
import torch

from frugalcv.signature.graph import (
    adjacency_from_edges,
    graph_laplacian,
    group_channels,
    laplacian_spectrum,
    patch_extrema,
    patch_grid,
    signature_edges,
    signature_graph,
    signature_spectrum,
)

pytestmark = pytest.mark.unit

# The worked example of signature_graph's docstring: 2x4 map, 2x2 patches -> 2 patches, 4 nodes.
EXAMPLE = torch.tensor([[0.0, 1.0, 5.0, 2.0], [3.0, 0.0, 0.0, 4.0]])[None, None]


# ---------------------------------------------------------------------------------------------
# slow, obviously correct reference: Python loops over pixels, networkx graph


def reference_graph(
    fmap: np.ndarray,
    *,
    patch: tuple[int, int],
    nodes: str,
    pairs: str,
    weight: str,
    sigma_value: float,
    sigma_position: float,
) -> tuple[nx.Graph, list]:
    """The signature graph of one (H, W) map as a networkx graph, and our node order."""
    h, w = fmap.shape
    ph, pw = patch
    gh, gw = math.ceil(h / ph), math.ceil(w / pw)
    lo, hi = float(fmap.min()), float(fmap.max())
    kinds = ("max", "min") if nodes == "maxmin" else ("max",)
    g = nx.Graph()
    order = []
    for i in range(gh):
        for j in range(gw):
            for kind in kinds:
                best = None
                for r in range(i * ph, min((i + 1) * ph, h)):
                    for c in range(j * pw, min((j + 1) * pw, w)):
                        v = float(fmap[r, c])
                        better = best is None or (v > best[0] if kind == "max" else v < best[0])
                        if better:  # strict: the first pixel in raster order wins ties
                            best = (v, r, c)
                v, r, c = best
                g.add_node((i, j, kind), value=v, norm=(v - lo) / max(hi - lo, 1e-6), pos=(r, c))
                order.append((i, j, kind))

    def add(a, b):
        na, nb = g.nodes[a], g.nodes[b]
        dv2 = (na["norm"] - nb["norm"]) ** 2
        du2 = ((na["pos"][0] - nb["pos"][0]) / ph) ** 2 + ((na["pos"][1] - nb["pos"][1]) / pw) ** 2
        wv = math.exp(-dv2 / (2 * sigma_value**2))
        wu = math.exp(-du2 / (2 * sigma_position**2))
        wt = {"bilateral": wv * wu, "value": wv, "distance": wu, "binary": 1.0}[weight]
        g.add_edge(a, b, weight=wt)

    for i in range(gh):
        for j in range(gw):
            if nodes == "maxmin":
                add((i, j, "max"), (i, j, "min"))
            for di, dj in ((0, 1), (1, 0)):  # horizontal, vertical neighbour
                if i + di < gh and j + dj < gw:
                    for ka in kinds:
                        for kb in kinds:
                            if pairs == "same" and ka != kb:
                                continue
                            add((i, j, ka), (i + di, j + dj, kb))
    return g, order


CASES = [
    # (H, W, patch, nodes, pairs, weight, ceil_mode)
    (6, 4, (2, 2), "maxmin", "same", "bilateral", False),
    (6, 4, (2, 2), "maxmin", "all", "value", False),
    (4, 6, (2, 3), "max", "same", "distance", False),
    (6, 6, (3, 2), "maxmin", "same", "binary", False),
    (5, 7, (2, 3), "maxmin", "all", "bilateral", True),
]


@pytest.mark.parametrize("h, w, patch, nodes, pairs, weight, ceil_mode", CASES)
def test_batched_graph_equals_networkx_reference(h, w, patch, nodes, pairs, weight, ceil_mode):
    gen = torch.Generator().manual_seed(h * 100 + w)
    f = torch.randn(2, 3, h, w, generator=gen, dtype=torch.float64)
    f[0, 1, :2, :2] = 0.0  # ties inside a patch: both must pick the first pixel in raster order
    kw = dict(nodes=nodes, pairs=pairs, weight=weight, sigma_value=0.4, sigma_position=1.3)
    graph = signature_graph(f, patch_size=patch, ceil_mode=ceil_mode, **kw)
    spec = laplacian_spectrum(graph.adjacency, laplacian="normalized")
    spec_comb = laplacian_spectrum(graph.adjacency, laplacian="combinatorial")
    rng = np.random.default_rng(0)
    for b in range(2):
        for c in range(3):
            ref, order = reference_graph(f[b, c].numpy(), patch=patch, **kw)
            assert graph.num_nodes == ref.number_of_nodes() == len(order)
            assert len(graph.edges) == ref.number_of_edges()
            attrs = np.array([[ref.nodes[n]["value"], *ref.nodes[n]["pos"]] for n in order])
            np.testing.assert_array_equal(graph.nodes[b, c].numpy(), attrs)
            adj_ref = nx.to_numpy_array(ref, nodelist=order, weight="weight")
            np.testing.assert_allclose(graph.adjacency[b, c].numpy(), adj_ref, rtol=1e-12)
            # spectra under another node order (eigenvalues do not depend on the labelling)
            shuffled = [order[k] for k in rng.permutation(len(order))]
            lap = nx.normalized_laplacian_matrix(ref, nodelist=shuffled).toarray()
            np.testing.assert_allclose(spec[b, c].numpy(), np.linalg.eigvalsh(lap), atol=1e-10)
            lap = nx.laplacian_matrix(ref, nodelist=shuffled).toarray()
            np.testing.assert_allclose(spec_comb[b, c].numpy(), np.linalg.eigvalsh(lap), atol=1e-10)


def test_hand_made_map_nodes_edges_and_cycle_spectrum():
    g = signature_graph(EXAMPLE, patch_size=2, weight="binary")
    expected_nodes = [[3, 1, 0], [0, 0, 0], [5, 0, 2], [0, 1, 2]]  # max, min, max, min
    assert g.nodes[0, 0].tolist() == expected_nodes
    assert g.edges.tolist() == [[0, 1], [2, 3], [0, 2], [1, 3]]
    # a 4-cycle 0-1-3-2-0: normalised Laplacian spectrum {0, 1, 1, 2}, combinatorial {0, 2, 2, 4}
    torch.testing.assert_close(
        laplacian_spectrum(g.adjacency)[0, 0], torch.tensor([0.0, 1, 1, 2]), atol=1e-6, rtol=0
    )
    torch.testing.assert_close(
        laplacian_spectrum(g.adjacency, laplacian="combinatorial")[0, 0],
        torch.tensor([0.0, 2, 2, 4]),
        atol=1e-5,
        rtol=0,
    )


def test_hand_made_map_bilateral_weights():
    g = signature_graph(EXAMPLE.double(), patch_size=2, sigma_value=0.5, sigma_position=1.0)
    # values / 5 -> 0.6, 0, 1, 0; positions / 2 -> (0.5, 0), (0, 0), (0, 1), (0.5, 1)
    # w = exp(-dv^2 / (2 * 0.25) - du^2 / 2)
    expected = [
        math.exp(-(0.6**2) / 0.5 - 0.25 / 2),  # (0, 1)
        math.exp(-(1.0**2) / 0.5 - 0.25 / 2),  # (2, 3)
        math.exp(-(0.4**2) / 0.5 - 1.25 / 2),  # (0, 2)
        math.exp(-0.0 - 1.25 / 2),  # (1, 3)
    ]
    torch.testing.assert_close(g.weights[0, 0], torch.tensor(expected, dtype=torch.float64))


def test_max_nodes_on_a_grid_form_a_grid_graph():
    # one node per patch: a P_h x P_w grid graph, whose binary spectrum networkx knows
    f = torch.arange(48.0).reshape(1, 1, 6, 8)
    g = signature_graph(f, patch_size=2, nodes="max", weight="binary")
    ref = nx.grid_2d_graph(3, 4)
    order = [(i, j) for i in range(3) for j in range(4)]
    np.testing.assert_array_equal(g.adjacency[0, 0].numpy(), nx.to_numpy_array(ref, order))
    # the max of an increasing ramp is the bottom-right pixel of each patch
    assert g.nodes[0, 0, :, 1].tolist() == [1.0] * 4 + [3.0] * 4 + [5.0] * 4
    assert g.nodes[0, 0, :, 2].tolist() == [1.0, 3.0, 5.0, 7.0] * 3


@pytest.mark.parametrize("nodes, pairs, per_patch, per_pair", [
    ("max", "same", 0, 1), ("maxmin", "same", 1, 2), ("maxmin", "all", 1, 4)
])  # fmt: skip
def test_edge_counts(nodes, pairs, per_patch, per_pair):
    gh, gw = 3, 5
    m = 2 * gh * gw - gh - gw  # neighbouring patch pairs
    edges = signature_edges((gh, gw), nodes=nodes, pairs=pairs)
    assert len(edges) == per_patch * gh * gw + per_pair * m
    assert len({tuple(sorted(e)) for e in edges.tolist()}) == len(edges)  # each edge once


def _maps(seed=0, shape=(3, 2, 8, 8)):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_spectrum_bounds_connectivity_and_bipartite_top():
    f = _maps()
    spec = signature_spectrum(f, patch_size=2)  # (3, 2, 32)
    assert spec.shape == (3, 2, 32)
    assert (spec >= -1e-10).all() and (spec <= 2 + 1e-10).all()
    assert torch.all(spec[..., 1:] >= spec[..., :-1])  # ascending
    torch.testing.assert_close(spec[..., 0], torch.zeros(3, 2, dtype=torch.float64))
    # connected: exactly one zero eigenvalue of the combinatorial Laplacian
    comb = signature_spectrum(f, patch_size=2, laplacian="combinatorial")
    assert ((comb < 1e-9).sum(-1) == 1).all()
    # "same" pairs + max-min rungs colour as a checkerboard, so the graph is bipartite: λ_max = 2
    torch.testing.assert_close(spec[..., -1], torch.full((3, 2), 2.0, dtype=torch.float64))


@pytest.mark.parametrize(
    "transform",
    [
        lambda f: f.flip(-1),
        lambda f: f.flip(-2),
        lambda f: f.transpose(-1, -2),
        lambda f: torch.rot90(f, 1, (-2, -1)),
    ],
    ids=["hflip", "vflip", "transpose", "rot90"],
)
def test_spectrum_invariant_to_flips_and_rotations(transform):
    # a flipped / rotated map gives an isomorphic weighted graph (horizontal <-> vertical edges)
    f = _maps(1)
    torch.testing.assert_close(signature_spectrum(transform(f)), signature_spectrum(f))


def test_spectrum_invariant_to_affine_value_change_and_equivariant_to_batch_order():
    f = _maps(2)
    torch.testing.assert_close(signature_spectrum(3.0 * f - 7.0), signature_spectrum(f))
    perm = torch.tensor([2, 0, 1])
    torch.testing.assert_close(signature_spectrum(f[perm]), signature_spectrum(f)[perm])
    # raw values are not scale invariant
    raw = signature_spectrum(3.0 * f, normalize_values=False)
    assert not torch.allclose(raw, signature_spectrum(f, normalize_values=False))


def test_binary_weights_carry_no_information_about_the_map():
    # why the weights must depend on values/positions: the topology alone is the same for all maps
    spec = signature_spectrum(_maps(3), weight="binary")
    torch.testing.assert_close(spec, spec[:1, :1].expand_as(spec))
    assert not torch.allclose(*signature_spectrum(_maps(3))[:2, 0])


def test_gradient_matches_finite_differences():
    f = _maps(4, (1, 1, 4, 4)).requires_grad_()
    proj = torch.linspace(-1, 1, 8, dtype=torch.float64)  # a non-trivial function of λ

    def fn(x):
        return (signature_spectrum(x, patch_size=2) * proj).sum()

    assert torch.autograd.gradcheck(fn, (f,))
    fn(f).backward()
    assert (f.grad != 0).sum() >= 4  # reaches the selected pixels


def test_half_precision_maps_give_a_float32_spectrum():
    spec = signature_spectrum(_maps(5).to(torch.bfloat16))
    assert spec.dtype == torch.float32
    torch.testing.assert_close(spec, signature_spectrum(_maps(5)).float(), atol=0.05, rtol=0)


def test_isolated_node_gets_zero_row_like_networkx():
    adj = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    lap = graph_laplacian(adj)
    ref = nx.normalized_laplacian_matrix(nx.from_numpy_array(adj.numpy())).toarray()
    np.testing.assert_allclose(lap.numpy(), ref, atol=1e-7)


def test_adjacency_from_edges_is_symmetric_and_batched():
    edges = torch.tensor([[0, 1], [1, 2]])
    w = torch.tensor([[0.5, 0.25], [1.0, 2.0]])
    adj = adjacency_from_edges(w, edges, 3)
    assert adj[1].tolist() == [[0, 1, 0], [1, 0, 2], [0, 2, 0]]
    torch.testing.assert_close(adj, adj.transpose(-1, -2))


def test_group_channels_and_patch_grid():
    f = torch.arange(2 * 4 * 1 * 1.0).reshape(2, 4, 1, 1)
    assert group_channels(f, 2).flatten().tolist() == [0.5, 2.5, 4.5, 6.5]
    assert patch_grid((7, 9), 2, ceil_mode=True) == (4, 5)
    assert patch_grid((8, 6), (4, 3)) == (2, 2)


def test_ceil_mode_picks_real_pixels_only():
    f = -torch.ones(1, 1, 3, 3)
    f[0, 0, 2, 2] = -5.0
    nodes = patch_extrema(f, patch_size=2, ceil_mode=True)  # 2x2 grid, last patches 1 pixel wide
    assert nodes[0, 0, -2:].tolist() == [[-5.0, 2.0, 2.0], [-5.0, 2.0, 2.0]]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(patch_size=3), "cannot be split into equal 3x3 patches"),
        (dict(patch_size=9), "larger than"),
        (dict(nodes="min"), "unknown nodes='min'"),
        (dict(pairs="diag"), "unknown pairs"),
        (dict(weight="cosine"), "unknown weight"),
        (dict(sigma_value=0.0), "sigmas must be positive"),
        (dict(patch_size=(2, 2, 2)), "pair of ints"),
    ],
)
def test_bad_options_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        signature_graph(torch.zeros(1, 1, 8, 8), **kwargs)


def test_bad_shapes_raise_value_error():
    with pytest.raises(ValueError, match=r"\(B, G, H, W\)"):
        patch_extrema(torch.zeros(8, 8), patch_size=2)
    with pytest.raises(ValueError, match="divisor"):
        group_channels(torch.zeros(1, 6, 4, 4), 4)
    with pytest.raises(ValueError, match="unknown laplacian"):
        laplacian_spectrum(torch.zeros(1, 3, 3), laplacian="random_walk")
