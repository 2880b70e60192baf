"""Cost of a slimmable supernet per width and of its dynamic paths: MACs and latency.

MACs come from :func:`frugalcv.core.measure.count_macs` (``FlopCounterMode``: convolutions,
matrix products and attention; BN, activations, pooling and adds are not counted), per sample,
at batch 1. It sees the sliced shapes, so a width-0.5 forward is counted at its real size.
Latency is :func:`frugalcv.core.measure.measure_latency` (median of ``repeats`` timed runs after
``warmup`` runs, eval mode, no grad), at batch 1 and 64 by default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from frugalcv.core.measure import count_macs, measure_latency, module_device, to_module
from frugalcv.slim.supernet import SlimSupernet, forward_masked

__all__ = ["DYNAMIC_MODES", "dynamic_macs", "latency_table", "macs_per_width"]

DYNAMIC_MODES = ("sliced", "masked")


class _Call(nn.Module):
    """``model`` behind a one-argument forward (so the measure helpers can call it)."""

    def __init__(self, model: SlimSupernet, fn: Callable[[SlimSupernet, Tensor], Tensor]) -> None:
        super().__init__()
        self.model, self.fn = model, fn

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(self.model, x)


def _at_width(w: float) -> Callable[[SlimSupernet, Tensor], Tensor]:
    return lambda m, x: m(x, width=w)


def _dynamic(mode: str) -> Callable[[SlimSupernet, Tensor], Tensor]:
    if mode not in DYNAMIC_MODES:
        raise ValueError(f"unknown dynamic mode {mode!r}; use one of {DYNAMIC_MODES}")
    return (lambda m, x: m.forward_dynamic(x)) if mode == "sliced" else forward_masked


def macs_per_width(
    model: SlimSupernet, *, input_shape: Sequence[int], widths: Sequence[float] | None = None
) -> dict[float, int]:
    """Per-sample MACs of ``model(x, width=w)`` for each width (default: the routing widths).
    The gate's slimming head is not run (it is a few thousand MACs)."""
    was_training = model.training
    x = torch.zeros(1, *input_shape, device=next(model.parameters()).device)
    try:
        return {
            float(w): count_macs(_Call(model, _at_width(w)), x) for w in (widths or model.widths)
        }
    finally:
        model.train(was_training)


def dynamic_macs(model: SlimSupernet, x: Tensor, *, mode: str = "sliced") -> int:
    """MACs of one dynamic forward of the batch ``x`` (all samples, gate included):
    ``"sliced"`` is :meth:`SlimSupernet.forward_dynamic`, ``"masked"`` is
    :func:`~frugalcv.slim.supernet.forward_masked` (full-width compute whatever the route)."""
    was_training = model.training
    try:
        return count_macs(_Call(model, _dynamic(mode)), x)
    finally:
        model.train(was_training)


def latency_table(
    model: SlimSupernet,
    *,
    input_shape: Sequence[int],
    widths: Sequence[float] | None = None,
    dynamic: Sequence[str] = DYNAMIC_MODES,
    batch_sizes: Sequence[int] = (1, 64),
    warmup: int = 5,
    repeats: int = 30,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> list[dict]:
    """Median latency of each static width and each dynamic mode, at each batch size.

    Inputs are ``torch.randn`` from a local generator (``seed``), so routes are reproducible.
    Rows: ``{"mode": "width" | "sliced" | "masked", "width": float | None, "batch_size",
    "median_ms", "p90_ms", "mean_ms", "device", "num_threads"}``; dynamic rows also carry
    ``"route_counts"`` (samples per routing width).
    """
    gen = torch.Generator().manual_seed(seed)
    rows: list[dict] = []
    was_training, home = model.training, module_device(model)
    try:
        for b in batch_sizes:
            x = torch.randn(int(b), *input_shape, generator=gen)
            for w in widths or model.widths:
                lat = measure_latency(
                    _Call(model, _at_width(w)), x, warmup=warmup, repeats=repeats, device=device
                )
                rows.append({"mode": "width", "width": float(w), **lat})
            for mode in dynamic:
                lat = measure_latency(
                    _Call(model, _dynamic(mode)), x, warmup=warmup, repeats=repeats, device=device
                )
                model.eval()
                with torch.no_grad():
                    model.to(device)
                    _, route = model.forward_dynamic(to_module(x, model), return_route=True)
                counts = torch.bincount(route.cpu(), minlength=model.num_choices).tolist()
                rows.append({"mode": mode, "width": None, "route_counts": counts, **lat})
    finally:
        model.train(was_training)
        model.to(home)  # the measurements above moved it to `device`
    return rows
