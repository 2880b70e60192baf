"""The NAS-Bench-201 search space: cell, macro skeleton, supernet, discrete network, arch strings.

Xuanyi Dong, Yi Yang, "NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture
Search", ICLR 2020. The space is re-implemented from the description of the reference code
(D-X-Y/AutoDL-Projects, MIT: ``xautodl/models/cell_operations.py``, ``cell_searchs/
search_cells.py``, ``cell_searchs/search_model_darts.py``, ``cell_infers/tiny_network.py``) in
the research notes (shared/research/nas_sgn.md section 3); no code was copied.

Cell: a DAG of 4 nodes. Node 0 is the cell input, node 3 the output; every pair j < i is an edge
(6 edges) carrying one of 5 ops; ``node_i = sum_{j<i} op_{i<-j}(node_j)`` (sum, not concat).
Edge order (AutoDL's ``edge2index``, sorted keys ``"i<-j"``): (1,0), (2,0), (2,1), (3,0), (3,1),
(3,2), which is also the order of the arch string
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (node 1's inputs, then node 2's, then node 3's).

Macro skeleton: stem Conv3x3 + BN (C) -> N cells (C) -> ResNet block (C->2C, stride 2) -> N cells
(2C) -> ResNet block (2C->4C, stride 2) -> N cells (4C) -> BN + ReLU -> global average pool ->
Linear. The benchmark uses C = 16, N = 5 on 32 x 32 inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "NB201_EDGES",
    "NB201_NUM_EDGES",
    "NB201_OPS",
    "NB201Network",
    "NB201SearchCell",
    "NB201Supernet",
    "ResNetBasicBlock",
    "ReLUConvBN",
    "format_nb201_arch",
    "nb201_arch_from_indices",
    "nb201_arch_to_indices",
    "nb201_derive",
    "nb201_make_op",
    "nb201_skip_share",
    "parse_nb201_arch",
    "sample_nb201_arch",
]

# Op names and their order (AutoDL `SearchSpaceNames["nas-bench-201"]`); the column order of the
# (6, 5) architecture weights.
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NB201_MAX_NODES = 4  # nodes 0..3 (AutoDL `max_nodes=4`)
# (to_node, from_node) per edge, in AutoDL's edge2index order (sorted "i<-j" keys).
NB201_EDGES = tuple((i, j) for i in range(1, NB201_MAX_NODES) for j in range(i))
NB201_NUM_EDGES = len(NB201_EDGES)  # 6


class ReLUConvBN(nn.Module):
    """ReLU -> Conv2d -> BatchNorm2d, the NAS-Bench-201 conv op.

    As in AutoDL's ``ReLUConvBN``: the conv has a bias exactly when the BN is not affine, and
    padding keeps H, W at stride 1.

    Shapes: (B, C_in, H, W) -> (B, C_out, H / stride, W / stride).
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=(kernel_size - 1) // 2,
                bias=not affine,
            ),
            nn.BatchNorm2d(out_channels, affine=affine, track_running_stats=track_running_stats),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.op(x)


class _Zero(nn.Module):
    """The ``none`` op: a zero tensor of the input's shape (cells use stride 1, C_in = C_out)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.mul(0.0)


class _AvgPool3x3(nn.Module):
    """AvgPool2d(3, stride 1, padding 1, count_include_pad=False) (AutoDL ``POOLING``)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


def nb201_make_op(
    name: str, *, channels: int, affine: bool = True, track_running_stats: bool = True
) -> nn.Module:
    """One NAS-Bench-201 op on a cell edge (stride 1, ``channels`` in and out).

    Inside a cell every edge keeps the channel count and resolution, so ``skip_connect`` is the
    identity and ``avg_pool_3x3`` needs no 1x1 pre-projection (AutoDL adds those only when
    C_in != C_out or stride 2, which never happens inside NB201 cells).

    Args:
        name: one of :data:`NB201_OPS`.
        channels: C of the edge's input and output.
        affine: BN affine flag (False in the search cells, True in the discrete network).
        track_running_stats: BN flag (AutoDL's ``--track_running_stats``; it changes search
            results by points: AutoDL-Projects issue 70).
    """
    if name == "none":
        return _Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name in ("nor_conv_1x1", "nor_conv_3x3"):
        return ReLUConvBN(
            in_channels=channels,
            out_channels=channels,
            kernel_size=1 if name == "nor_conv_1x1" else 3,
            affine=affine,
            track_running_stats=track_running_stats,
        )
    if name == "avg_pool_3x3":
        return _AvgPool3x3()
    raise ValueError(f"unknown NAS-Bench-201 op {name!r}; valid ops are {', '.join(NB201_OPS)}")


class ResNetBasicBlock(nn.Module):
    """The residual reduction block between NAS-Bench-201 stages (AutoDL ``ResNetBasicblock``).

    out = conv_b(conv_a(x)) + shortcut(x), conv_a = ReLUConvBN 3x3 stride s, conv_b = ReLUConvBN
    3x3; shortcut = AvgPool2d(2, 2) then Conv1x1 (no bias, no BN) when s = 2, ReLUConvBN 1x1
    when only the channels change, identity otherwise.

    Shapes: (B, C_in, H, W) -> (B, C_out, H / stride, W / stride).
    """

    def __init__(self, *, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2; got {stride}")
        self.conv_a = ReLUConvBN(
            in_channels=in_channels, out_channels=out_channels, kernel_size=3, stride=stride
        )
        self.conv_b = ReLUConvBN(in_channels=out_channels, out_channels=out_channels, kernel_size=3)
        if stride == 2:
            self.shortcut: nn.Module = nn.Sequential(
                nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
                nn.Conv2d(in_channels, out_channels, 1, bias=False),
            )
        elif in_channels != out_channels:
            self.shortcut = ReLUConvBN(
                in_channels=in_channels, out_channels=out_channels, kernel_size=1
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_b(self.conv_a(x)) + self.shortcut(x)


def _check_ops(ops: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    ops = tuple(ops)
    if len(ops) != NB201_NUM_EDGES:
        raise ValueError(f"a NAS-Bench-201 cell has {NB201_NUM_EDGES} edges; got {len(ops)} ops")
    for op in ops:
        if op not in NB201_OPS:
            raise ValueError(f"unknown NAS-Bench-201 op {op!r}; valid ops are {NB201_OPS}")
    return ops


def parse_nb201_arch(arch: str) -> tuple[str, ...]:
    """Parse a benchmark arch string into the 6 edge ops in :data:`NB201_EDGES` order.

    Format (AutoDL ``Structure.tostr``): ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``: one ``+``-
    separated group per node 1..3, each listing ``op~j`` for every input node j < i. Inputs may be
    listed in any order but each j must appear exactly once.

    Example: ``parse_nb201_arch("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|
    nor_conv_3x3~1|skip_connect~2|")`` gives ``("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3",
    "skip_connect", "nor_conv_3x3", "skip_connect")``.
    """
    if not isinstance(arch, str):
        raise ValueError(f"arch must be a string like '|op~0|+|op~0|op~1|+...'; got {arch!r}")
    nodes = arch.split("+")
    if len(nodes) != NB201_MAX_NODES - 1:
        raise ValueError(
            f"a NAS-Bench-201 arch string has {NB201_MAX_NODES - 1} '+'-separated node groups; "
            f"got {len(nodes)} in {arch!r}"
        )
    ops: list[str] = []
    for i, node in enumerate(nodes, start=1):
        if not (node.startswith("|") and node.endswith("|")):
            raise ValueError(f"node group {node!r} of {arch!r} must start and end with '|'")
        by_input: dict[int, str] = {}
        for entry in node[1:-1].split("|"):
            op, sep, src = entry.partition("~")
            if not sep or not src.isdigit():
                raise ValueError(f"entry {entry!r} of {arch!r} must look like 'op_name~j'")
            j = int(src)
            if j >= i or j in by_input:
                raise ValueError(
                    f"node {i} of {arch!r} must list each input 0..{i - 1} exactly once; "
                    f"got input {j} again or out of range"
                )
            if op not in NB201_OPS:
                raise ValueError(f"unknown op {op!r} in {arch!r}; valid ops are {NB201_OPS}")
            by_input[j] = op
        if len(by_input) != i:
            raise ValueError(f"node {i} of {arch!r} needs {i} inputs; got {len(by_input)}")
        ops.extend(by_input[j] for j in range(i))
    return tuple(ops)


def format_nb201_arch(ops: tuple[str, ...] | list[str]) -> str:
    """The benchmark string of 6 edge ops given in :data:`NB201_EDGES` order."""
    ops = _check_ops(ops)
    groups, k = [], 0
    for i in range(1, NB201_MAX_NODES):
        groups.append("|" + "|".join(f"{ops[k + j]}~{j}" for j in range(i)) + "|")
        k += i
    return "+".join(groups)


def nb201_arch_from_indices(indices: Tensor | list[int]) -> str:
    """Arch string from 6 op indices (columns of :data:`NB201_OPS`)."""
    idx = [int(i) for i in (indices.tolist() if torch.is_tensor(indices) else indices)]
    if len(idx) != NB201_NUM_EDGES or not all(0 <= i < len(NB201_OPS) for i in idx):
        raise ValueError(f"need {NB201_NUM_EDGES} op indices in [0, {len(NB201_OPS)}); got {idx}")
    return format_nb201_arch([NB201_OPS[i] for i in idx])


def nb201_arch_to_indices(arch: str) -> list[int]:
    """The 6 op indices of an arch string (inverse of :func:`nb201_arch_from_indices`)."""
    return [NB201_OPS.index(op) for op in parse_nb201_arch(arch)]


def nb201_derive(alpha: Tensor) -> str:
    """Discretise architecture weights: argmax per edge over all 5 ops (``none`` included).

    This is AutoDL's ``genotype()`` rule for the NB201 DARTS search model.

    Args:
        alpha: (6, 5) weights or logits (argmax is the same for both).
    """
    if alpha.shape != (NB201_NUM_EDGES, len(NB201_OPS)):
        raise ValueError(
            f"alpha must have shape ({NB201_NUM_EDGES}, {len(NB201_OPS)}); got {tuple(alpha.shape)}"
        )
    return nb201_arch_from_indices(alpha.detach().argmax(dim=-1))


def sample_nb201_arch(generator: torch.Generator | None = None) -> str:
    """One arch drawn uniformly from the 5^6 = 15,625 cells."""
    idx = torch.randint(len(NB201_OPS), (NB201_NUM_EDGES,), generator=generator)
    return nb201_arch_from_indices(idx)


def nb201_skip_share(arch: str) -> float:
    """Share of the 6 edges that are ``skip_connect`` (DARTS' collapse gives 1.0 on NB201)."""
    return sum(op == "skip_connect" for op in parse_nb201_arch(arch)) / NB201_NUM_EDGES


class NB201SearchCell(nn.Module):
    """Mixed-op cell: every edge holds all 5 ops, mixed by per-edge weights.

    node_i = sum_{j<i} sum_o w[e(i,j), o] * o(node_j), with w = softmax(alpha) given by the
    supernet (DARTS eq. 2). Ops are built with BN ``affine=False`` as in AutoDL's search cells.

    Shapes: forward(x: (B, C, H, W), weights: (6, 5)) -> (B, C, H, W).
    """

    def __init__(self, *, channels: int, track_running_stats: bool = True) -> None:
        super().__init__()
        self.edges = nn.ModuleList(
            nn.ModuleList(
                nb201_make_op(
                    name,
                    channels=channels,
                    affine=False,
                    track_running_stats=track_running_stats,
                )
                for name in NB201_OPS
            )
            for _ in NB201_EDGES
        )

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        nodes = [x]
        e = 0
        for i in range(1, NB201_MAX_NODES):
            total = 0.0
            for j in range(i):
                total = total + sum(
                    w * op(nodes[j]) for w, op in zip(weights[e], self.edges[e], strict=True)
                )
                e += 1
            nodes.append(total)
        return nodes[-1]


class _NB201InferCell(nn.Module):
    """Discrete cell: one op per edge (``none`` edges are dropped; they add zeros)."""

    def __init__(self, *, ops: tuple[str, ...], channels: int) -> None:
        super().__init__()
        self.ops = ops
        self.edges = nn.ModuleDict(
            {
                str(e): nb201_make_op(op, channels=channels)
                for e, op in enumerate(ops)
                if op != "none"
            }
        )

    def forward(self, x: Tensor) -> Tensor:
        nodes = [x]
        e = 0
        for i in range(1, NB201_MAX_NODES):
            total = torch.zeros_like(x)
            for j in range(i):
                if str(e) in self.edges:
                    total = total + self.edges[str(e)](nodes[j])
                e += 1
            nodes.append(total)
        return nodes[-1]


class _NB201Skeleton(nn.Module):
    """Stem, 3 stages of N cells with 2 residual reductions, BN+ReLU, pooling, classifier."""

    def __init__(
        self,
        *,
        make_cell,
        channels: int,
        num_cells: int,
        num_classes: int,
        in_channels: int,
    ) -> None:
        super().__init__()
        if channels < 1 or num_cells < 1 or num_classes < 2 or in_channels < 1:
            raise ValueError(
                f"need channels >= 1, num_cells >= 1, num_classes >= 2, in_channels >= 1; got "
                f"{channels}, {num_cells}, {num_classes}, {in_channels}"
            )
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        layers: list[nn.Module] = []
        c_prev = channels
        for stage, c in enumerate((channels, 2 * channels, 4 * channels)):
            if stage > 0:
                layers.append(ResNetBasicBlock(in_channels=c_prev, out_channels=c, stride=2))
            layers.extend(make_cell(c) for _ in range(num_cells))
            c_prev = c
        self.cells = nn.ModuleList(layers)
        # `lastact` of AutoDL's TinyNetwork; NASLib once missed it and lost 5-6 points (issue 86).
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=False))
        self.classifier = nn.Linear(c_prev, num_classes)

    def _head(self, x: Tensor) -> Tensor:
        x = self.lastact(x)
        return self.classifier(x.mean(dim=(2, 3)))  # (B, 4C) -> (B, num_classes)


class NB201Supernet(_NB201Skeleton):
    """The NAS-Bench-201 one-shot supernet with softmax-mixed edges (DARTS relaxation).

    Architecture weights ``alpha``: (6, 5), initialised to 1e-3 * N(0, 1) (AutoDL
    ``search_model_darts.py``, DARTS). All cells share the one ``alpha``.

    Args:
        channels: C of the first stage (benchmark 16).
        num_cells: N cells per stage (benchmark 5).
        num_classes: output classes.
        in_channels: image channels (3 for CIFAR; 1 for digits).
        track_running_stats: BN flag of the search cells.

    Shapes: forward(x: (B, in_channels, H, W)) -> (B, num_classes) logits. H, W divisible by 4.

    Protocol used by the searchers: :meth:`arch_parameters`, :meth:`weight_parameters`,
    :meth:`derive`.
    """

    def __init__(
        self,
        *,
        channels: int = 16,
        num_cells: int = 5,
        num_classes: int = 10,
        in_channels: int = 3,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__(
            make_cell=lambda c: NB201SearchCell(
                channels=c, track_running_stats=track_running_stats
            ),
            channels=channels,
            num_cells=num_cells,
            num_classes=num_classes,
            in_channels=in_channels,
        )
        # 1e-3 * randn: the DARTS / AutoDL initialisation of the architecture weights.
        self.alpha = nn.Parameter(1e-3 * torch.randn(NB201_NUM_EDGES, len(NB201_OPS)))

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alpha]

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if n != "alpha"]

    def edge_weights(self) -> Tensor:
        """softmax(alpha) per edge: (6, 5)."""
        return F.softmax(self.alpha, dim=-1)

    def derive(self) -> str:
        """The argmax arch string of the current ``alpha``."""
        return nb201_derive(self.alpha)

    def forward(self, x: Tensor) -> Tensor:
        weights = self.edge_weights()  # (6, 5)
        x = self.stem(x)
        for layer in self.cells:
            x = layer(x, weights) if isinstance(layer, NB201SearchCell) else layer(x)
        return self._head(x)


class NB201Network(_NB201Skeleton):
    """A discrete NAS-Bench-201 network built from an arch string (AutoDL ``TinyNetwork``).

    Args:
        arch: benchmark string, e.g. ``"|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|
            skip_connect~0|nor_conv_3x3~1|skip_connect~2|"``.
        channels, num_cells, num_classes, in_channels: as :class:`NB201Supernet`.

    Shapes: forward(x: (B, in_channels, H, W)) -> (B, num_classes) logits.

    Differences from the reference: ``none`` edges get no module (AutoDL keeps a parameter-free
    Zero op there); outputs are identical.
    """

    def __init__(
        self,
        *,
        arch: str,
        channels: int = 16,
        num_cells: int = 5,
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> None:
        ops = parse_nb201_arch(arch)
        super().__init__(
            make_cell=lambda c: _NB201InferCell(ops=ops, channels=c),
            channels=channels,
            num_cells=num_cells,
            num_classes=num_classes,
            in_channels=in_channels,
        )
        self.arch = format_nb201_arch(ops)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for layer in self.cells:
            x = layer(x)
        return self._head(x)
