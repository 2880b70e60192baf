"""DARTS space: ops, cells, genotype rule (hand-built alphas), discrete network."""

import pytest
import torch

from frugalcv.nas import DARTS_OPS, DartsNetwork, DartsSupernet, Genotype, darts_genotype
from frugalcv.nas.darts_space import FactorizedReduce, darts_make_op, darts_skip_share

pytestmark = pytest.mark.unit


def test_ops_shapes_and_strides():
    x = torch.randn(2, 4, 8, 8)
    for name in DARTS_OPS:
        assert darts_make_op(name, channels=4, stride=1)(x).shape == (2, 4, 8, 8), name
        assert darts_make_op(name, channels=4, stride=2)(x).shape == (2, 4, 4, 4), name
    with pytest.raises(ValueError, match="unknown DARTS op"):
        darts_make_op("conv_9x9", channels=4, stride=1)


def test_factorized_reduce_odd_size_and_even_parity():
    fr = FactorizedReduce(in_channels=3, out_channels=4)
    assert fr(torch.randn(1, 3, 7, 7)).shape == (1, 4, 4, 4)
    # Even sizes: conv_2 sees odd pixels (1, 3, ...) exactly as DARTS' x[:, :, 1:, 1:].
    x = torch.randn(1, 3, 6, 6)
    ref = fr.conv_2(fr.relu(x)[:, :, 1:, 1:])
    torch.testing.assert_close(
        fr.conv_2(torch.nn.functional.pad(fr.relu(x)[:, :, 1:, 1:], (0, 1, 0, 1))), ref
    )


def _alpha_with(choices):
    """(14, 8) logits where edge e prefers op choices[e] with strength s (others 0)."""
    a = torch.zeros(14, 8)
    for e, (op, s) in choices.items():
        a[e, DARTS_OPS.index(op)] = s
    return a


def test_genotype_rule_top2_edges_excluding_none():
    # Node 0: edges 0, 1. Node 1: edges 2-4. Node 2: 5-8. Node 3: 9-13.
    a = _alpha_with(
        {
            0: ("sep_conv_3x3", 2.0),
            1: ("skip_connect", 1.0),
            2: ("none", 9.0),  # `none` is ignored, even though huge
            3: ("dil_conv_3x3", 3.0),
            4: ("max_pool_3x3", 1.0),
            5: ("avg_pool_3x3", 0.5),
            8: ("sep_conv_5x5", 4.0),
            6: ("dil_conv_5x5", 2.0),
            13: ("skip_connect", 5.0),
            10: ("sep_conv_3x3", 1.0),
        }
    )
    g = darts_genotype(a, a)
    assert isinstance(g, Genotype) and g._fields == (
        "normal",
        "normal_concat",
        "reduce",
        "reduce_concat",
    )
    assert g.normal == [
        ("sep_conv_3x3", 0),
        ("skip_connect", 1),
        ("dil_conv_3x3", 1),
        ("max_pool_3x3", 2),
        ("sep_conv_5x5", 3),
        ("dil_conv_5x5", 1),
        ("skip_connect", 4),
        ("sep_conv_3x3", 1),
    ]
    assert g.normal_concat == [2, 3, 4, 5] and g.reduce == g.normal
    assert darts_skip_share(g) == pytest.approx(2 / 8)
    assert all(op != "none" for op, _ in g.normal)


def test_supernet_forward_and_parameters():
    torch.manual_seed(0)
    net = DartsSupernet(channels=4, num_layers=3, num_classes=3, in_channels=1)
    assert [c.reduction for c in net.cells] == [False, True, True]
    out = net(torch.randn(2, 1, 8, 8))
    assert out.shape == (2, 3)
    assert [a.shape for a in net.arch_parameters()] == [(14, 8), (14, 8)]
    assert len(net.weight_parameters()) + 2 == len(list(net.parameters()))
    g = net.derive()
    assert len(g.normal) == 8 and len(g.reduce) == 8


def test_discrete_network_runs_and_counts_params():
    g = Genotype(
        normal=[("skip_connect", 0), ("skip_connect", 1)] * 4,
        normal_concat=[2, 3, 4, 5],
        reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1)] * 4,
        reduce_concat=[2, 3, 4, 5],
    )
    net = DartsNetwork(genotype=g, channels=2, num_layers=3, num_classes=3, in_channels=1)
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 3)
    # Parameter-free cell ops: only stem, preprocessing and classifier carry parameters.
    stem = 1 * 6 * 9 + 2 * 6
    cell0 = (6 * 2 + 4) + (6 * 2 + 4)  # pre0/pre1: 1x1 conv + BN(2) each (C=2)
    cell1 = (6 * 4 + 8) + (8 * 4 + 8)  # reduction, C=4: pre0 from stem (6), pre1 from 4*2=8
    cell2 = (2 * (8 * 4) + 16) + (16 * 8 + 16)  # reduction after reduction: FactorizedReduce
    head = 32 * 3 + 3
    assert sum(p.numel() for p in net.parameters()) == stem + cell0 + cell1 + cell2 + head
