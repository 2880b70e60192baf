"""The dynamic slimmable supernet contract and its two dynamic execution paths.

A supernet is ``trunk -> gate -> body``: the trunk (stem and first stage(s)) always runs at one
width, the gate reads its output and picks one of K widths, and the body (the rest, classifier
included) runs at that width. DS-Net (Li et al., CVPR 2021, Fig. 3) routes the later stages this
way; its routing space is the set of sub-networks ``forward(x, width=w)`` for ``w`` in
``widths``.

Dynamic execution that is really faster (:meth:`SlimSupernet.forward_dynamic`): the batch is
split by route, each group runs the sliced body at its width (a dense, smaller computation) and
the outputs are scattered back in the original order. Batch 1 runs only the chosen slice.
:func:`forward_masked` reproduces the authors' code instead (full-width body, then zero the
channels past each sample's width): same outputs, full-width cost.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from frugalcv.layers.slimmable import Width, per_sample_widths, set_width
from frugalcv.slim.gate import DynamicGate, GateOutput

__all__ = ["SlimSupernet", "forward_masked", "grouped_forward"]


def _check_widths(widths: Sequence[float]) -> tuple[float, ...]:
    ws = tuple(sorted(float(w) for w in widths))
    if len(ws) < 2 or len(set(ws)) != len(ws) or ws[0] <= 0 or ws[-1] > 1:
        raise ValueError(f"widths must be >= 2 distinct ratios in (0, 1]; got {list(widths)}")
    return ws


class SlimSupernet(nn.Module):
    """Base class: subclasses build ``trunk``, ``body`` and ``gate`` and call ``super().__init__``
    first.

    Args:
        widths: the K routing widths (ratios, ascending); ``widths[-1]`` is the largest
            sub-network, ``widths[0]`` the slimmest.
        trunk_width: width at which the trunk always runs (a routed forward needs one fixed
            trunk); None: the trunk follows ``width`` (a plain slimmable network, no
            :meth:`forward_dynamic`).

    Contract: ``forward(x, width=w)`` (``w`` a ratio or ``{role: ratio}``) -> logits
    ``(B, num_classes)``; ``forward_trunk``, ``forward_body``, ``forward_dynamic``.
    """

    trunk: nn.Module
    body: nn.Module
    gate: DynamicGate

    def __init__(self, *, widths: Sequence[float], trunk_width: float | None) -> None:
        super().__init__()
        self.widths = _check_widths(widths)
        if trunk_width is not None and not 0 < trunk_width <= 1:
            raise ValueError(f"trunk_width must be in (0, 1] or None; got {trunk_width}")
        self.trunk_width = trunk_width

    @property
    def num_choices(self) -> int:
        return len(self.widths)

    def all_widths(self) -> tuple[float, ...]:
        """Every ratio a layer may see (for per-width BN lists): routing widths and the trunk's."""
        extra = () if self.trunk_width is None else (self.trunk_width,)
        return tuple(sorted(set(self.widths + extra + (1.0,))))

    def forward_trunk(self, x: Tensor, *, width: Width | None = None) -> Tensor:
        """Trunk at ``trunk_width`` (or at ``width`` when ``trunk_width`` is None), then the
        gate's attention head (identity unless the gate has one)."""
        tw = self.trunk_width if self.trunk_width is not None else width
        if tw is None:
            raise ValueError("trunk_width is None: pass width= to forward_trunk")
        set_width(self.trunk, tw)
        return self.gate.attend(self.trunk(x))

    def set_body_width(self, width: Width) -> None:
        """Size the body's layers for ``width`` (subclasses add non-layer state, e.g. DS-ViT)."""
        set_width(self.body, width)

    def forward_body(self, f: Tensor, width: Width) -> Tensor:
        """Body (classifier included) at ``width`` on trunk features ``f``."""
        self.set_body_width(width)
        return self.body(f)

    def forward(self, x: Tensor, width: Width = 1.0) -> Tensor:
        return self.forward_body(self.forward_trunk(x, width=width), width)

    def route(self, f: Tensor) -> GateOutput:
        """The gate on trunk features (sampled in training, argmax in eval)."""
        return self.gate(f)

    def forward_dynamic(self, x: Tensor, *, return_route: bool = False):
        """Gate-routed inference with real slicing: each sample runs its chosen width only.

        Returns logits ``(B, num_classes)``, and the route ``(B,)`` (indices into ``widths``)
        with ``return_route``.
        """
        if self.trunk_width is None:
            raise ValueError("forward_dynamic needs a fixed trunk: build with trunk_width set")
        f = self.forward_trunk(x)
        g = self.route(f)
        out = grouped_forward(self, f, g.index)
        return (out, g.index) if return_route else out


def grouped_forward(model: SlimSupernet, f: Tensor, route: Tensor, weights: Tensor | None = None):
    """Split ``f`` by ``route``, run each group's body at its width, scatter back in order.

    Args:
        f: trunk features ``(B, ...)``.
        route: ``(B,)`` long indices into ``model.widths``.
        weights: optional ``(B, K)`` straight-through gate weights; each group's output is
            multiplied by its sample's weight of the chosen width (value 1, gradient to the gate).

    Returns:
        ``(B, num_classes)``.
    """
    if route.shape != (f.shape[0],):
        raise ValueError(f"route must be (B,) = ({f.shape[0]},); got {tuple(route.shape)}")
    choices = torch.unique(route).tolist()
    if len(choices) == 1:  # batch 1 or a uniform route: no gather/scatter at all
        k = int(choices[0])
        out = model.forward_body(f, model.widths[k])
        return out if weights is None else out * weights[:, k : k + 1]
    out = None
    for k in choices:
        idx = (route == k).nonzero(as_tuple=True)[0]
        part = model.forward_body(f.index_select(0, idx), model.widths[int(k)])  # (n_k, classes)
        if weights is not None:
            part = part * weights.index_select(0, idx)[:, int(k) : int(k) + 1]
        if out is None:
            out = part.new_zeros((f.shape[0],) + part.shape[1:])
        out = out.index_copy(0, idx, part)
    return out


@torch.no_grad()
def forward_masked(model: SlimSupernet, x: Tensor, *, return_route: bool = False):
    """The authors' dynamic mode: full-width body, each sample's channels past its width zeroed.

    Eval mode only (the per-sample BN path uses running statistics). Outputs equal
    :meth:`SlimSupernet.forward_dynamic` up to float error, at full-width cost; it is here so
    the benchmark can show that masking is not faster.
    """
    if model.training:
        raise ValueError("forward_masked is eval-only: call model.eval() first")
    if model.trunk_width is None:
        raise ValueError("forward_masked needs a fixed trunk: build with trunk_width set")
    f = model.forward_trunk(x)
    g = model.route(f)
    model.set_body_width(1.0)
    with per_sample_widths(model.body, list(model.widths), g.index):
        out = model.body(f)
    return (out, g.index) if return_route else out
