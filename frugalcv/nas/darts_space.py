"""The DARTS search space: 8 ops, normal and reduction cells, supernet, genotype, discrete network.

Hanxiao Liu, Karen Simonyan, Yiming Yang, "DARTS: Differentiable Architecture Search", ICLR 2019.
Re-implemented from the paper and the description of the reference code (quark0/darts
``cnn/operations.py``, ``cnn/model_search.py``, ``cnn/genotypes.py``, ``cnn/model.py``); no code
was copied.

Cell: inputs c_{k-2}, c_{k-1} (each preprocessed to C channels), 4 intermediate nodes, node i
sums one mixed op from every earlier state (2 + i edges, 14 edges in all); the cell output is the
channel concat of the 4 intermediate nodes (4C). Reduction cells (at 1/3 and 2/3 of the depth)
use stride 2 on the edges from the two inputs and double C. Normal cells share ``alpha_normal``
(14, 8), reduction cells ``alpha_reduce`` (14, 8); edge weights are softmax over ops (eq. 2).
Genotype (DARTS sec. 2.4): per node keep the 2 strongest incoming edges, strength = max weight
over the non-``none`` ops, and the argmax non-``none`` op on each kept edge.
"""

from __future__ import annotations

from collections import namedtuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "DARTS_OPS",
    "DartsNetwork",
    "DartsSupernet",
    "FactorizedReduce",
    "Genotype",
    "darts_genotype",
    "darts_make_op",
    "darts_skip_share",
]

# quark0/darts cnn/genotypes.py PRIMITIVES, in that order (the columns of the alphas).
DARTS_OPS = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
DARTS_STEPS = 4  # intermediate nodes per cell (DARTS)
DARTS_MULTIPLIER = 4  # nodes concatenated at the output (DARTS)
DARTS_NUM_EDGES = sum(2 + i for i in range(DARTS_STEPS))  # 14

# The DARTS genotype structure, field for field: normal/reduce are lists of (op, input) with two
# entries per intermediate node; input 0 = c_{k-2}, 1 = c_{k-1}, 2.. = earlier nodes.
Genotype = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")


def _relu_conv_bn(c_in: int, c_out: int, k: int, stride: int, pad: int, affine: bool):
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(c_in, c_out, k, stride=stride, padding=pad, bias=False),
        nn.BatchNorm2d(c_out, affine=affine),
    )


def _dil_conv(c_in, c_out, k, stride, pad, dilation, affine):
    """ReLU -> depthwise k x k (dilated) -> pointwise 1x1 -> BN."""
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(c_in, c_in, k, stride, pad, dilation=dilation, groups=c_in, bias=False),
        nn.Conv2d(c_in, c_out, 1, bias=False),
        nn.BatchNorm2d(c_out, affine=affine),
    )


def _sep_conv(c_in, c_out, k, stride, pad, affine):
    """Two stacked (ReLU, depthwise, pointwise, BN) units, the first with the stride."""
    return nn.Sequential(
        *_dil_conv(c_in, c_in, k, stride, pad, 1, affine),
        *_dil_conv(c_in, c_out, k, 1, pad, 1, affine),
    )


class _Zero(nn.Module):
    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """ReLU, two 1x1 stride-2 convs (the second shifted by one pixel), concat, BN.

    Shapes: (B, C_in, H, W) -> (B, C_out, H/2, W/2); C_out even.
    """

    def __init__(self, *, in_channels: int, out_channels: int, affine: bool = True) -> None:
        super().__init__()
        if out_channels % 2:
            raise ValueError(f"FactorizedReduce needs an even out_channels; got {out_channels}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(in_channels, out_channels // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(in_channels, out_channels // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, affine=affine)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(x)
        shifted = F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))  # keeps odd sizes aligned with conv_1
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


def darts_make_op(name: str, *, channels: int, stride: int, affine: bool = True) -> nn.Module:
    """One DARTS op (C in and out; stride 1 or 2). Kernel/padding/dilation as quark0/darts.

    Args:
        name: one of :data:`DARTS_OPS`.
        channels: C in and out.
        stride: 2 on the input edges of a reduction cell, else 1.
        affine: BN affine flag (False in the supernet).
    """
    if name == "none":
        return _Zero(stride)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    if name == "skip_connect":
        if stride == 1:
            return nn.Identity()
        return FactorizedReduce(in_channels=channels, out_channels=channels, affine=affine)
    if name == "sep_conv_3x3":
        return _sep_conv(channels, channels, 3, stride, 1, affine)
    if name == "sep_conv_5x5":
        return _sep_conv(channels, channels, 5, stride, 2, affine)
    if name == "dil_conv_3x3":
        return _dil_conv(channels, channels, 3, stride, 2, 2, affine)
    if name == "dil_conv_5x5":
        return _dil_conv(channels, channels, 5, stride, 4, 2, affine)
    raise ValueError(f"unknown DARTS op {name!r}; valid ops are {', '.join(DARTS_OPS)}")


class _MixedOp(nn.Module):
    def __init__(self, *, channels: int, stride: int) -> None:
        super().__init__()
        ops = []
        for name in DARTS_OPS:
            op = darts_make_op(name, channels=channels, stride=stride, affine=False)
            if "pool" in name:  # DARTS model_search.py: pools get a non-affine BN in the supernet
                op = nn.Sequential(op, nn.BatchNorm2d(channels, affine=False))
            ops.append(op)
        self.ops = nn.ModuleList(ops)

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        return sum(w * op(x) for w, op in zip(weights, self.ops, strict=True))


def _preprocess(c_pp, c_p, c, reduction_prev, affine):
    pre0 = (
        FactorizedReduce(in_channels=c_pp, out_channels=c, affine=affine)
        if reduction_prev
        else _relu_conv_bn(c_pp, c, 1, 1, 0, affine)
    )
    return pre0, _relu_conv_bn(c_p, c, 1, 1, 0, affine)


class _SearchCell(nn.Module):
    def __init__(self, *, c_pp, c_p, c, reduction, reduction_prev) -> None:
        super().__init__()
        self.reduction = reduction
        self.pre0, self.pre1 = _preprocess(c_pp, c_p, c, reduction_prev, affine=False)
        self.ops = nn.ModuleList(
            _MixedOp(channels=c, stride=2 if reduction and j < 2 else 1)
            for i in range(DARTS_STEPS)
            for j in range(2 + i)
        )

    def forward(self, s0: Tensor, s1: Tensor, weights: Tensor) -> Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        offset = 0
        for _ in range(DARTS_STEPS):
            s = sum(self.ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[-DARTS_MULTIPLIER:], dim=1)  # (B, 4C, H', W')


def _reduction_layers(num_layers: int) -> tuple[int, int]:
    return num_layers // 3, 2 * num_layers // 3


def darts_genotype(alpha_normal: Tensor, alpha_reduce: Tensor) -> Genotype:
    """DARTS' discretisation: top-2 incoming edges per node by their best non-``none`` weight.

    Args:
        alpha_normal, alpha_reduce: (14, 8) logits; softmax is applied per edge first, as in
            quark0/darts ``Network.genotype``.
    """
    none = DARTS_OPS.index("none")

    def parse(alpha: Tensor) -> list[tuple[str, int]]:
        if alpha.shape != (DARTS_NUM_EDGES, len(DARTS_OPS)):
            raise ValueError(
                f"DARTS alphas must have shape ({DARTS_NUM_EDGES}, {len(DARTS_OPS)}); got "
                f"{tuple(alpha.shape)}"
            )
        w = F.softmax(alpha.detach().double(), dim=-1)
        w[:, none] = -1.0  # never pick `none`, never rank an edge by it
        gene, start = [], 0
        for i in range(DARTS_STEPS):
            block = w[start : start + 2 + i]  # (2 + i, 8): edges into node i
            strength = block.max(dim=1).values
            # stable sort: ties keep the lower input index, like Python's sorted in DARTS
            order = sorted(range(2 + i), key=lambda j: -float(strength[j]))[:2]
            for j in order:
                gene.append((DARTS_OPS[int(block[j].argmax())], j))
            start += 2 + i
        return gene

    concat = list(range(2 + DARTS_STEPS - DARTS_MULTIPLIER, DARTS_STEPS + 2))
    return Genotype(
        normal=parse(alpha_normal),
        normal_concat=concat,
        reduce=parse(alpha_reduce),
        reduce_concat=concat,
    )


def darts_skip_share(genotype: Genotype) -> float:
    """Share of the normal cell's 8 kept edges that are ``skip_connect`` (collapse indicator)."""
    return sum(op == "skip_connect" for op, _ in genotype.normal) / len(genotype.normal)


class _DartsSkeleton(nn.Module):
    def __init__(self, *, channels, num_layers, num_classes, in_channels, stem_multiplier, cell):
        super().__init__()
        if channels < 1 or num_layers < 1 or num_classes < 2:
            raise ValueError(
                f"need channels >= 1, num_layers >= 1, num_classes >= 2; got {channels}, "
                f"{num_layers}, {num_classes}"
            )
        c_curr = stem_multiplier * channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr)
        )
        c_pp, c_p, c_curr = c_curr, c_curr, channels
        cells, reduction_prev = [], False
        for i in range(num_layers):
            reduction = i in _reduction_layers(num_layers)
            if reduction:
                c_curr *= 2
            cells.append(
                cell(
                    c_pp=c_pp, c_p=c_p, c=c_curr, reduction=reduction, reduction_prev=reduction_prev
                )
            )
            reduction_prev = reduction
            c_pp, c_p = c_p, DARTS_MULTIPLIER * c_curr
        self.cells = nn.ModuleList(cells)
        self.classifier = nn.Linear(c_p, num_classes)


class DartsSupernet(_DartsSkeleton):
    """The DARTS CIFAR search network (quark0/darts ``model_search.Network``).

    Args:
        channels: initial C (DARTS search: 16; small values are fine for tests).
        num_layers: cells (DARTS search: 8); reductions at num_layers // 3 and 2 * num_layers // 3.
        num_classes: output classes.
        in_channels: image channels.
        stem_multiplier: stem width = stem_multiplier * C (DARTS: 3).

    Shapes: forward(x: (B, in_channels, H, W)) -> (B, num_classes).
    """

    def __init__(
        self,
        *,
        channels: int = 16,
        num_layers: int = 8,
        num_classes: int = 10,
        in_channels: int = 3,
        stem_multiplier: int = 3,
    ) -> None:
        super().__init__(
            channels=channels,
            num_layers=num_layers,
            num_classes=num_classes,
            in_channels=in_channels,
            stem_multiplier=stem_multiplier,
            cell=_SearchCell,
        )
        # 1e-3 * randn: DARTS model_search.py `_initialize_alphas`.
        self.alpha_normal = nn.Parameter(1e-3 * torch.randn(DARTS_NUM_EDGES, len(DARTS_OPS)))
        self.alpha_reduce = nn.Parameter(1e-3 * torch.randn(DARTS_NUM_EDGES, len(DARTS_OPS)))

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alpha_normal, self.alpha_reduce]

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def derive(self) -> Genotype:
        return darts_genotype(self.alpha_normal, self.alpha_reduce)

    def forward(self, x: Tensor) -> Tensor:
        s0 = s1 = self.stem(x)
        w_normal = F.softmax(self.alpha_normal, dim=-1)  # (14, 8)
        w_reduce = F.softmax(self.alpha_reduce, dim=-1)  # (14, 8)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, w_reduce if cell.reduction else w_normal)
        return self.classifier(s1.mean(dim=(2, 3)))


class _EvalCell(nn.Module):
    def __init__(self, *, genotype: Genotype, c_pp, c_p, c, reduction, reduction_prev) -> None:
        super().__init__()
        self.reduction = reduction
        self.pre0, self.pre1 = _preprocess(c_pp, c_p, c, reduction_prev, affine=True)
        gene = genotype.reduce if reduction else genotype.normal
        self.concat = list(genotype.reduce_concat if reduction else genotype.normal_concat)
        if len(gene) != 2 * DARTS_STEPS:
            raise ValueError(f"a DARTS genotype cell lists {2 * DARTS_STEPS} (op, input) pairs")
        self.inputs = [j for _, j in gene]
        self.ops = nn.ModuleList(
            darts_make_op(op, channels=c, stride=2 if reduction and j < 2 else 1) for op, j in gene
        )

    def forward(self, s0: Tensor, s1: Tensor) -> Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for i in range(DARTS_STEPS):
            a, b = 2 * i, 2 * i + 1
            states.append(self.ops[a](states[self.inputs[a]]) + self.ops[b](states[self.inputs[b]]))
        return torch.cat([states[k] for k in self.concat], dim=1)


class DartsNetwork(_DartsSkeleton):
    """A discrete DARTS network from a :class:`Genotype` (quark0/darts ``model.NetworkCIFAR``).

    Args:
        genotype: normal and reduction cells.
        channels, num_layers, num_classes, in_channels, stem_multiplier: as
            :class:`DartsSupernet` (DARTS evaluation: C = 36, 20 layers).

    Differences from the reference: no auxiliary head and no drop-path (training tricks of the
    evaluation recipe, not part of the architecture).
    """

    def __init__(
        self,
        *,
        genotype: Genotype,
        channels: int = 36,
        num_layers: int = 20,
        num_classes: int = 10,
        in_channels: int = 3,
        stem_multiplier: int = 3,
    ) -> None:
        super().__init__(
            channels=channels,
            num_layers=num_layers,
            num_classes=num_classes,
            in_channels=in_channels,
            stem_multiplier=stem_multiplier,
            cell=lambda **kw: _EvalCell(genotype=genotype, **kw),
        )
        self.genotype = genotype

    def forward(self, x: Tensor) -> Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(s1.mean(dim=(2, 3)))
