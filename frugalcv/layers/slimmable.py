"""Slimmable layers: run a contiguous prefix of the stored weights, so a narrower path really
computes less.

Weight slicing as in J. Yu et al., "Slimmable Neural Networks" (ICLR 2019) and C. Li et al.,
"Dynamic Slimmable Network" (CVPR 2021) / "DS-Net++" (arXiv 2109.10060): a layer with ``C_out``
stored filters runs at ``c_out <= C_out`` by using ``weight[:c_out, :c_in]``, where ``c_in`` is
read from the input. The first filters are shared by every width (nested sub-networks), nothing
is masked and the sliced call is an ordinary dense convolution / matrix product on a smaller
weight view (no copy), so FLOPs and latency fall with the width.

How a width is chosen (one convention for every layer here):

- Input sizes are never configured: each layer reads ``c_in`` from ``x`` (``x.shape[1]`` for
  conv/BN, ``x.shape[-1]`` for linear/LayerNorm/attention).
- Output sizes are a per-layer attribute ``active_out`` (heads: ``active_heads``), an int that
  :func:`set_width` sets from a ratio: ``active_out = scaled_channels(out, ratio)``. A layer has a
  ``role`` (``"channels"`` for CNN filters; ``"embed"``, ``"heads"``, ``"mlp"`` for transformers;
  ``None`` for a layer whose output never shrinks, e.g. a classifier), and ``set_width`` takes one
  ratio for every role or a mapping ``{role: ratio}``. :func:`using_width` does the same for a
  ``with`` block and restores the previous sizes afterwards. Layers can also be sized one by one
  (assign ``active_out``), which per-layer channel search (AutoSlim, DDS-Net tailoring) needs.
- Per-sample widths for the *masking* comparison (the authors' DS-Net code: full-width compute,
  then zero the channels past each sample's width) go through :func:`per_sample_widths`; they are
  never used by the sliced path.

At full width every layer here equals its torch counterpart on the same weights (the parameter
names match torch's, so ``load_state_dict`` works across).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from frugalcv.core.measure import to_module

__all__ = [
    "ROLES",
    "SlimBatchNorm2d",
    "SlimConv2d",
    "SlimLayerNorm",
    "SlimLinear",
    "SlimMultiheadAttention",
    "per_sample_widths",
    "recalibrate_bn",
    "scaled_channels",
    "set_width",
    "slim_layers",
    "using_width",
]

ROLES = ("channels", "embed", "heads", "mlp")

Width = float | Mapping[str, float]


def scaled_channels(channels: int, ratio: float, *, divisor: int = 1) -> int:
    """Channels kept at width ``ratio``: ``ratio * channels`` rounded to the nearest multiple of
    ``divisor`` (halves round up), at least ``divisor`` and at most ``channels``.

    Example: ``scaled_channels(64, 0.35, divisor=8) == 24`` (22.4 -> 3 * 8).
    """
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"width ratio must be in (0, 1]; got {ratio}")
    if divisor < 1:
        raise ValueError(f"divisor must be >= 1; got {divisor}")
    c = int(math.floor(ratio * channels / divisor + 0.5)) * divisor
    return int(min(channels, max(divisor, c)))


def _check_role(role: str | None) -> None:
    if role is not None and role not in ROLES:
        raise ValueError(f"unknown role {role!r}; use one of {ROLES} or None (never sliced)")


def _ratio_for(width: Width, role: str | None) -> float:
    if role is None:
        return 1.0
    if isinstance(width, Mapping):
        if role not in width:
            raise ValueError(
                f"the width mapping {dict(width)} has no ratio for role {role!r}; give every "
                f"role used by the model (or pass one float for all)"
            )
        return float(width[role])
    return float(width)


def _sample_mask(counts: Tensor, size: int, ndim: int, channel_dim: int) -> Tensor:
    """(B,) active counts -> a 0/1 mask broadcastable to a (B, ..., size, ...) tensor."""
    mask = (torch.arange(size, device=counts.device)[None] < counts[:, None]).float()  # (B, size)
    shape = [counts.shape[0]] + [1] * (ndim - 1)
    shape[channel_dim] = size
    return mask.view(shape)


class _SlimMixin:
    """Shared width bookkeeping: ``role``, ``divisor``, ``active_out``, per-sample counts."""

    role: str | None
    divisor: int
    active_out: int
    sample_out: Tensor | None

    def full_out(self) -> int:
        raise NotImplementedError

    def channels_at(self, ratio: float) -> int:
        """Output size at width ``ratio`` (full size when the role is None)."""
        if self.role is None:
            return self.full_out()
        return scaled_channels(self.full_out(), ratio, divisor=self.divisor)

    def apply_width(self, width: Width) -> None:
        self.active_out = self.channels_at(_ratio_for(width, self.role))

    def set_sample_widths(self, choices: Sequence[Width] | None, route: Tensor | None) -> None:
        if choices is None or route is None:
            self.sample_out = None
            return
        lut = torch.tensor(
            [self.channels_at(_ratio_for(c, self.role)) for c in choices], device=route.device
        )
        self.sample_out = lut[route]


class SlimConv2d(_SlimMixin, nn.Conv2d):
    """``nn.Conv2d`` that runs ``weight[:active_out, :c_in]``.

    Args:
        in_channels, out_channels: stored (largest) sizes.
        groups: 1, or a grouped / depthwise conv. Grouped convs keep the channels *per group*
            fixed and slice whole groups: at input width ``c_in`` they run
            ``g = c_in / (in_channels / groups)`` groups and ``g * out_channels / groups``
            outputs (depthwise: ``g = c_in``), so prefixes stay nested; ``active_out`` is
            then ignored.
        role: what :func:`set_width` scales ``active_out`` with (None: never sliced).
        divisor: output sizes are multiples of it (MobileNet uses 8).

    Shapes: ``x: (B, c_in, H, W)`` with ``c_in <= in_channels`` -> ``(B, c_out, H', W')``.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        role: str | None = "channels",
        divisor: int = 1,
    ) -> None:
        _check_role(role)
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
        self.role, self.divisor = role, divisor
        self.active_out = out_channels
        self.sample_out = None

    def full_out(self) -> int:
        return self.out_channels

    def forward(self, x: Tensor) -> Tensor:
        c_in = x.shape[1]
        if c_in > self.in_channels:
            raise ValueError(
                f"input has {c_in} channels but this SlimConv2d stores only {self.in_channels}"
            )
        masked = self.sample_out is not None
        if self.groups == 1:
            c_out = self.out_channels if masked else self.active_out
            weight = self.weight[:c_out, :c_in]
            groups = 1
        else:
            per_in = self.in_channels // self.groups
            if c_in % per_in:
                raise ValueError(
                    f"grouped conv with {per_in} input channels per group got {c_in} channels; "
                    f"slice the previous layer to a multiple of {per_in}"
                )
            groups = c_in // per_in
            c_out = groups * (self.out_channels // self.groups)
            weight = self.weight[:c_out]
        bias = self.bias[:c_out] if self.bias is not None else None
        y = F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, groups)
        if masked:
            y = y * _sample_mask(self.sample_out, c_out, 4, 1)
        return y


class SlimLinear(_SlimMixin, nn.Linear):
    """``nn.Linear`` that runs ``weight[:active_out, :d_in]`` with ``d_in = x.shape[-1]``.

    Shapes: ``x: (..., d_in)`` -> ``(..., active_out)``. ``role=None`` keeps all outputs
    (a classifier over a sliced feature vector).
    """

    def __init__(
        self,
        *,
        in_features: int,
        out_features: int,
        bias: bool = True,
        role: str | None = "channels",
        divisor: int = 1,
    ) -> None:
        _check_role(role)
        super().__init__(in_features, out_features, bias=bias)
        self.role, self.divisor = role, divisor
        self.active_out = out_features
        self.sample_out = None

    def full_out(self) -> int:
        return self.out_features

    def forward(self, x: Tensor) -> Tensor:
        d_in = x.shape[-1]
        if d_in > self.in_features:
            raise ValueError(
                f"input has {d_in} features but this SlimLinear stores only {self.in_features}"
            )
        masked = self.sample_out is not None
        d_out = self.out_features if masked else self.active_out
        bias = self.bias[:d_out] if self.bias is not None else None
        y = F.linear(x, self.weight[:d_out, :d_in], bias)
        if masked:
            y = y * _sample_mask(self.sample_out, d_out, y.dim(), y.dim() - 1)
        return y


class SlimBatchNorm2d(_SlimMixin, nn.Module):
    """BatchNorm with one set of running statistics per width and a shared, sliced affine.

    DS-Net's ``DSBatchNorm2d`` (changlin31/DS-Net ``dyn_slim/models/dyn_slim_ops.py``): private
    running mean/var for each width in ``widths`` (a sub-network's statistics differ from the
    full network's), one affine ``(gamma, beta)`` of the largest size sliced to ``c``. The row of
    statistics is picked by the input's channel count, so the width list is in channels.

    Args:
        num_features: largest channel count ``C``.
        widths: channel counts that get their own statistics (default ``[C]``); an input with
            another count is an error.
        role: used only by :func:`per_sample_widths` (masking path).

    Buffers: ``running_mean, running_var: (K, C)`` (row k uses its first ``widths[k]`` entries),
    ``num_batches_tracked: (K,)``. ``momentum=None`` gives the cumulative average per width, as
    torch does (used by :func:`recalibrate_bn`).

    Shapes: ``x: (B, c, *)`` with ``c`` in ``widths`` -> same shape.
    """

    def __init__(
        self,
        *,
        num_features: int,
        widths: Sequence[int] | None = None,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        role: str | None = "channels",
        divisor: int = 1,
    ) -> None:
        super().__init__()
        _check_role(role)
        widths = sorted(set(int(w) for w in (widths or [num_features])))
        if widths[0] < 1 or widths[-1] > num_features:
            raise ValueError(f"widths must lie in [1, {num_features}]; got {widths}")
        self.num_features, self.widths = num_features, tuple(widths)
        self.eps, self.momentum = eps, momentum
        self.role, self.divisor = role, divisor
        self.active_out = num_features
        self.sample_out = None
        self._index = {w: k for k, w in enumerate(self.widths)}
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        k = len(self.widths)
        self.register_buffer("running_mean", torch.zeros(k, num_features))
        self.register_buffer("running_var", torch.ones(k, num_features))
        self.register_buffer("num_batches_tracked", torch.zeros(k, dtype=torch.long))

    def full_out(self) -> int:
        return self.num_features

    def reset_running_stats(self) -> None:
        self.running_mean.zero_()
        self.running_var.fill_(1.0)
        self.num_batches_tracked.zero_()

    def width_index(self, c: int) -> int:
        if c not in self._index:
            raise ValueError(
                f"input has {c} channels but this SlimBatchNorm2d keeps statistics only for "
                f"{list(self.widths)} channels; build it with widths= that include {c}"
            )
        return self._index[c]

    def forward(self, x: Tensor) -> Tensor:
        if self.sample_out is not None:
            return self._masked_forward(x)
        c = x.shape[1]
        k = self.width_index(c)
        factor = 0.0
        if self.training:
            self.num_batches_tracked[k] += 1
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked[k])
            else:
                factor = self.momentum
        w = self.weight[:c] if self.weight is not None else None
        b = self.bias[:c] if self.bias is not None else None
        # Row views: F.batch_norm updates the selected statistics in place.
        return F.batch_norm(
            x,
            self.running_mean[k, :c],
            self.running_var[k, :c],
            w,
            b,
            self.training,
            factor,
            self.eps,
        )

    def _masked_forward(self, x: Tensor) -> Tensor:
        """Full-width input, per-sample statistics rows (as DS-Net's one-hot stats mixing)."""
        if self.training:
            raise ValueError("the per-sample (masked) path of SlimBatchNorm2d is eval-only")
        counts = self.sample_out
        table = torch.tensor(self.widths, device=counts.device)
        hit = counts[:, None] == table[None]  # (B, K)
        if not bool(hit.any(1).all()):
            raise ValueError(f"per-sample widths {counts.tolist()} not all in {list(self.widths)}")
        rows = hit.float().argmax(1)  # (B,)
        c = x.shape[1]
        shape = (x.shape[0], c) + (1,) * (x.dim() - 2)
        mean = self.running_mean[rows, :c].view(shape)
        var = self.running_var[rows, :c].view(shape)
        y = (x - mean) / torch.sqrt(var + self.eps)
        if self.weight is not None:
            y = y * self.weight[:c].view(1, c, *shape[2:]) + self.bias[:c].view(1, c, *shape[2:])
        return y * _sample_mask(counts, c, x.dim(), 1)


class SlimLayerNorm(_SlimMixin, nn.LayerNorm):
    """``nn.LayerNorm`` over the last dim, normalising the first ``d = x.shape[-1]`` features
    with ``weight[:d], bias[:d]``.

    Shapes: ``x: (..., d)`` -> same shape.
    """

    def __init__(
        self, *, normalized_dim: int, eps: float = 1e-5, role: str | None = "embed"
    ) -> None:
        _check_role(role)
        super().__init__(normalized_dim, eps=eps)
        self.role, self.divisor = role, 1
        self.active_out = normalized_dim
        self.sample_out = None

    def full_out(self) -> int:
        return self.normalized_shape[0]

    def forward(self, x: Tensor) -> Tensor:
        d = x.shape[-1]
        if self.sample_out is None:
            return F.layer_norm(x, (d,), self.weight[:d], self.bias[:d], self.eps)
        m = _sample_mask(self.sample_out, d, x.dim(), x.dim() - 1)
        n = m.sum(-1, keepdim=True)
        mean = (x * m).sum(-1, keepdim=True) / n
        var = (((x - mean) * m) ** 2).sum(-1, keepdim=True) / n
        y = (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias
        return y * m


class SlimMultiheadAttention(_SlimMixin, nn.Module):
    """Self-attention with a sliced number of heads and a sliced embedding dim.

    Head dim ``h_d = embed_dim / num_heads`` is fixed; with ``h = active_heads`` heads and input
    dim ``d`` it computes ``Q = x W_q[:h h_d, :d]^T`` (same for K, V),
    ``softmax(Q K^T / sqrt(h_d)) V`` per head, and ``O W_o[:d, :h h_d]^T``; the output dim follows
    the input dim (it is added to the residual stream). Parameters are stored as in
    ``nn.MultiheadAttention`` (``in_proj_weight (3E, E)`` = [W_q; W_k; W_v], ``in_proj_bias``,
    ``out_proj``), so its ``state_dict`` loads directly.

    Shapes: ``x: (B, N, d)`` with ``d <= embed_dim`` -> ``(B, N, d)``.
    """

    def __init__(
        self, *, embed_dim: int, num_heads: int, bias: bool = True, role: str | None = "heads"
    ) -> None:
        super().__init__()
        _check_role(role)
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} must be divisible by num_heads {num_heads}")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        self.role, self.divisor = role, 1
        self.active_out = num_heads  # number of heads
        self.sample_out = None  # per-sample heads (masking path)
        self.sample_dim: Tensor | None = None  # per-sample embed dims (masking path)
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * embed_dim)) if bias else None
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        nn.init.xavier_uniform_(self.in_proj_weight)  # as nn.MultiheadAttention
        if bias:
            nn.init.zeros_(self.out_proj.bias)

    @property
    def active_heads(self) -> int:
        return self.active_out

    def full_out(self) -> int:
        return self.num_heads

    def set_sample_widths(self, choices: Sequence[Width] | None, route: Tensor | None) -> None:
        super().set_sample_widths(choices, route)
        if choices is None or route is None:
            self.sample_dim = None
            return
        lut = torch.tensor(
            [scaled_channels(self.embed_dim, _ratio_for(c, "embed")) for c in choices],
            device=route.device,
        )
        self.sample_dim = lut[route]

    def _proj(self, x: Tensor, i: int, inner: int) -> Tensor:
        e, d = self.embed_dim, x.shape[-1]
        w = self.in_proj_weight[i * e : i * e + inner, :d]
        b = self.in_proj_bias[i * e : i * e + inner] if self.in_proj_bias is not None else None
        return F.linear(x, w, b)

    def forward(self, x: Tensor) -> Tensor:
        bsz, n, d = x.shape
        if d > self.embed_dim:
            raise ValueError(f"input dim {d} exceeds the stored embed_dim {self.embed_dim}")
        masked = self.sample_out is not None
        h = self.num_heads if masked else self.active_out
        inner = h * self.head_dim
        q, k, v = (
            self._proj(x, i, inner).view(bsz, n, h, self.head_dim).transpose(1, 2)  # (B, h, N, hd)
            for i in range(3)
        )
        o = F.scaled_dot_product_attention(q, k, v)  # (B, h, N, hd)
        if masked:
            o = o * _sample_mask(self.sample_out, h, 4, 1)
        o = o.transpose(1, 2).reshape(bsz, n, inner)  # (B, N, h*hd)
        b = self.out_proj.bias[:d] if self.out_proj.bias is not None else None
        y = F.linear(o, self.out_proj.weight[:d, :inner], b)
        if masked and self.sample_dim is not None:
            y = y * _sample_mask(self.sample_dim, d, 3, 2)
        return y


_SLIM_TYPES = (SlimConv2d, SlimLinear, SlimBatchNorm2d, SlimLayerNorm, SlimMultiheadAttention)


def slim_layers(module: nn.Module) -> Iterator[nn.Module]:
    """Every slimmable layer inside ``module`` (itself included)."""
    return (m for m in module.modules() if isinstance(m, _SLIM_TYPES))


def set_width(module: nn.Module, width: Width) -> None:
    """Size every slimmable layer in ``module`` for width ``width``.

    Args:
        width: a ratio in (0, 1] for every role, or ``{role: ratio}`` (e.g.
            ``{"embed": 0.5, "heads": 0.5, "mlp": 0.25}``) with a ratio for each role present.
    """
    for m in slim_layers(module):
        m.apply_width(width)


@contextlib.contextmanager
def using_width(module: nn.Module, width: Width) -> Iterator[nn.Module]:
    """``with using_width(net, 0.5): y = net(x)``; previous sizes are restored on exit."""
    saved = [(m, m.active_out) for m in slim_layers(module)]
    set_width(module, width)
    try:
        yield module
    finally:
        for m, a in saved:
            m.active_out = a


@contextlib.contextmanager
def per_sample_widths(
    module: nn.Module, choices: Sequence[Width], route: Tensor
) -> Iterator[nn.Module]:
    """Masking mode: every layer computes at full size, then zeroes each sample's outputs past
    its width ``choices[route[b]]`` (BatchNorm uses that width's statistics). Eval only.

    This reproduces how the authors' DS-Net code runs its ``dynamic`` mode (full conv, then a
    channel mask); it exists for comparisons and costs *full-width* compute.

    Args:
        choices: the K widths a route can name.
        route: ``(B,)`` long, index into ``choices`` for each sample.
    """
    layers = list(slim_layers(module))
    for m in layers:
        m.set_sample_widths(choices, route)
    try:
        yield module
    finally:
        for m in layers:
            m.set_sample_widths(None, None)


@torch.no_grad()
def recalibrate_bn(
    model: nn.Module,
    batches: Iterable,
    *,
    widths: Sequence[Width],
    forward=None,
    max_batches: int | None = None,
) -> None:
    """Recompute BatchNorm running statistics from data, separately for each width.

    Resets every ``SlimBatchNorm2d`` and torch ``_BatchNorm`` in ``model``, switches them to
    cumulative averaging (``momentum=None``), runs each width over ``batches`` in train mode
    without gradients, then restores momentum and the train/eval flag. This is the "BN
    recalibration" of slimmable networks (Yu et al. 2019; DS-Net ``reset_bn``).

    Args:
        batches: iterable of inputs ``x`` or of tuples whose first item is ``x`` (on any
            device: each ``x`` is moved to the model's device and floating dtype).
        widths: every width to recalibrate (each gets its own statistics row).
        forward: ``forward(x, width)``; default ``set_width(model, width); model(x)``.
        max_batches: use at most this many batches per width.
    """
    norms = [
        m
        for m in model.modules()
        if isinstance(m, (SlimBatchNorm2d, nn.modules.batchnorm._BatchNorm))
        and getattr(m, "running_mean", None) is not None
    ]
    saved = [(m, m.momentum) for m in norms]
    was_training = model.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    if forward is None:

        def forward(x: Tensor, width: Width) -> Tensor:
            set_width(model, width)
            return model(x)

    model.train()
    try:
        for w in widths:
            for i, batch in enumerate(batches):
                if max_batches is not None and i >= max_batches:
                    break
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                forward(to_module(x, model), w)  # CPU batches work with a model on the GPU
    finally:
        for m, mom in saved:
            m.momentum = mom
        model.train(was_training)
