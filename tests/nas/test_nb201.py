"""NAS-Bench-201 space: arch strings, cell wiring (hand values), op details, parameter counts."""

import itertools

import pytest
import torch
from torch import nn

from frugalcv.nas import (
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
from frugalcv.nas.nb201 import NB201SearchCell, ReLUConvBN, ResNetBasicBlock, _NB201InferCell

pytestmark = pytest.mark.unit

EXAMPLE = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
    "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
)
ALL_SKIP = (
    "|skip_connect~0|+|skip_connect~0|skip_connect~1|+"
    "|skip_connect~0|skip_connect~1|skip_connect~2|"
)


def test_parse_example_string():
    assert parse_nb201_arch(EXAMPLE) == (
        "nor_conv_3x3",
        "nor_conv_3x3",
        "avg_pool_3x3",
        "skip_connect",
        "nor_conv_3x3",
        "skip_connect",
    )
    assert NB201_EDGES == ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


def test_round_trip_all_15625_cells():
    seen = set()
    for idx in itertools.product(range(len(NB201_OPS)), repeat=6):
        s = nb201_arch_from_indices(list(idx))
        assert nb201_arch_to_indices(s) == list(idx)
        assert format_nb201_arch(parse_nb201_arch(s)) == s
        seen.add(s)
    assert len(seen) == 15625
    assert EXAMPLE in seen and ALL_SKIP in seen


def test_parse_accepts_any_input_order_and_canonicalises():
    shuffled = (
        "|nor_conv_3x3~0|+|avg_pool_3x3~1|nor_conv_3x3~0|+"
        "|skip_connect~2|skip_connect~0|nor_conv_3x3~1|"
    )
    assert format_nb201_arch(parse_nb201_arch(shuffled)) == EXAMPLE


@pytest.mark.parametrize(
    "bad",
    [
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|",  # 2 nodes
        "|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # unknown op
        "|none~0|+|none~0|none~0|+|none~0|none~1|none~2|",  # input repeated
        "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",  # input out of range
        "none~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # missing bar
        "|none0|+|none~0|none~1|+|none~0|none~1|none~2|",  # missing ~
    ],
)
def test_parse_errors(bad):
    with pytest.raises(ValueError):
        parse_nb201_arch(bad)


def test_derive_and_sample():
    alpha = torch.zeros(6, 5)
    for e, k in enumerate([3, 3, 4, 1, 3, 1]):
        alpha[e, k] = 1.0
    assert nb201_derive(alpha) == EXAMPLE
    g = torch.Generator().manual_seed(0)
    archs = {sample_nb201_arch(g) for _ in range(50)}
    assert len(archs) > 40  # 50 draws from 15,625 cells rarely repeat
    for a in archs:
        parse_nb201_arch(a)
    with pytest.raises(ValueError):
        nb201_derive(torch.zeros(5, 6))
    assert nb201_skip_share(ALL_SKIP) == 1.0
    assert nb201_skip_share(EXAMPLE) == pytest.approx(2 / 6)


def _onehot(ops):
    w = torch.zeros(6, 5)
    for e, op in enumerate(ops):
        w[e, NB201_OPS.index(op)] = 1.0
    return w


def test_search_cell_sums_nodes_hand_values():
    # All skip: node1 = x, node2 = x + node1 = 2x, node3 = x + node1 + node2 = 4x.
    cell = NB201SearchCell(channels=2)
    x = torch.randn(2, 2, 5, 5)
    torch.testing.assert_close(cell(x, _onehot(["skip_connect"] * 6)), 4 * x)
    # Pool on (1,0), skip elsewhere: node1 = P(x), node2 = x + P(x), node3 = 2x + 2P(x).
    ops = ["avg_pool_3x3"] + ["skip_connect"] * 5
    pooled = nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    torch.testing.assert_close(cell(x, _onehot(ops)), 2 * x + 2 * pooled)
    # `none` on the three edges into node 3 gives zeros.
    zeros_ops = ["skip_connect"] * 3 + ["none"] * 3
    assert torch.equal(cell(x, _onehot(zeros_ops)), torch.zeros_like(x))
    # The discrete cell wires the same DAG.
    infer = _NB201InferCell(ops=tuple(ops), channels=2)
    torch.testing.assert_close(infer(x), 2 * x + 2 * pooled)


def test_mixed_edge_is_weighted_sum():
    cell = NB201SearchCell(channels=2)
    x = torch.randn(2, 2, 4, 4)
    w = _onehot(["skip_connect"] * 6) * 0.5
    w[:, NB201_OPS.index("avg_pool_3x3")] = 0.5  # every edge: 0.5 x + 0.5 P(x)
    p = lambda t: nn.functional.avg_pool2d(t, 3, 1, 1, count_include_pad=False)  # noqa: E731
    n1 = 0.5 * x + 0.5 * p(x)
    n2 = 0.5 * x + 0.5 * p(x) + 0.5 * n1 + 0.5 * p(n1)
    n3 = sum(0.5 * t + 0.5 * p(t) for t in (x, n1, n2))
    torch.testing.assert_close(cell(x, w), n3)


def test_avg_pool_excludes_padding():
    x = torch.arange(9.0).view(1, 1, 3, 3)
    cell = NB201SearchCell(channels=1)
    pool = cell.edges[0][NB201_OPS.index("avg_pool_3x3")]
    assert pool(x)[0, 0, 0, 0] == pytest.approx((0 + 1 + 3 + 4) / 4)  # corner: 4 cells, not 9


def test_relu_conv_bn_order_and_bias_flag():
    op = ReLUConvBN(in_channels=2, out_channels=3, kernel_size=3, affine=True)
    assert [type(m) for m in op.op] == [nn.ReLU, nn.Conv2d, nn.BatchNorm2d]
    assert op.op[1].bias is None and op.op[1].padding == (1, 1)
    search = ReLUConvBN(in_channels=2, out_channels=2, kernel_size=1, affine=False)
    assert search.op[1].bias is not None and search.op[2].weight is None  # bias = not affine


def test_resnet_block_shapes_and_shortcut():
    blk = ResNetBasicBlock(in_channels=4, out_channels=8, stride=2)
    assert blk(torch.randn(2, 4, 8, 8)).shape == (2, 8, 4, 4)
    assert isinstance(blk.shortcut[0], nn.AvgPool2d) and blk.shortcut[1].bias is None


def _num_params(net):
    return sum(p.numel() for p in net.parameters())


def test_discrete_network_param_count_by_hand():
    # C=4, N=1, 1 input channel, 3 classes, all-skip cells (no parameters in the cells).
    stem = 1 * 4 * 9 + 2 * 4
    block1 = (4 * 8 * 9 + 2 * 8) + (8 * 8 * 9 + 2 * 8) + 4 * 8  # conv_a, conv_b, shortcut
    block2 = (8 * 16 * 9 + 2 * 16) + (16 * 16 * 9 + 2 * 16) + 8 * 16
    head = 2 * 16 + (16 * 3 + 3)  # lastact BN, classifier
    base = stem + block1 + block2 + head
    assert base == 4703
    net = NB201Network(arch=ALL_SKIP, channels=4, num_cells=1, num_classes=3, in_channels=1)
    assert _num_params(net) == base
    # One nor_conv_1x1 edge per cell adds C*C weights + 2C BN affine per stage (C = 4, 8, 16).
    one_conv = (
        "|nor_conv_1x1~0|+|skip_connect~0|skip_connect~1|+"
        "|skip_connect~0|skip_connect~1|skip_connect~2|"
    )
    net = NB201Network(arch=one_conv, channels=4, num_cells=1, num_classes=3, in_channels=1)
    assert _num_params(net) == base + sum(c * c + 2 * c for c in (4, 8, 16))
    # N cells per stage multiply the cell parameters.
    net = NB201Network(arch=one_conv, channels=4, num_cells=3, num_classes=3, in_channels=1)
    assert _num_params(net) == base + 3 * sum(c * c + 2 * c for c in (4, 8, 16))


def test_supernet_shapes_alpha_and_forward():
    torch.manual_seed(0)
    net = NB201Supernet(channels=4, num_cells=1, num_classes=3, in_channels=1)
    assert net.alpha.shape == (6, 5)
    assert net.alpha.abs().max() < 1e-2  # 1e-3 * randn
    assert len(net.cells) == 5  # 3 stages x 1 cell + 2 residual blocks
    out = net(torch.randn(2, 1, 8, 8))
    assert out.shape == (2, 3)
    arch_ids = {id(p) for p in net.arch_parameters()}
    assert all(id(p) not in arch_ids for p in net.weight_parameters())
    assert len(net.weight_parameters()) + 1 == len(list(net.parameters()))
    parse_nb201_arch(net.derive())
    torch.testing.assert_close(net.edge_weights().sum(-1), torch.ones(6))


def test_network_learns_on_toy_data():
    from frugalcv.testing import toy_data

    torch.manual_seed(0)
    x, y = toy_data(128, seed=0)
    net = NB201Network(arch=EXAMPLE, channels=4, num_cells=1, num_classes=4, in_channels=1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(30):
        loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    net.eval()
    acc = (net(x).argmax(1) == y).float().mean()
    assert losses[-1] < 0.5 * losses[0] and acc > 0.8
