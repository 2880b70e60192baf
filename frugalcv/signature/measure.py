"""Throughput of the signature-graph features against the CNN forward that feeds them.

Conventions follow :func:`frugalcv.core.measure.measure_latency` (eval mode, ``no_grad``, warm-up
runs, CUDA synchronised before reading the clock, median of the timed runs). The graph part is
:class:`~frugalcv.signature.sgn.SignatureSpectrum` alone on precomputed feature maps: channel
grouping, patch extrema, edges and weights, Laplacian and ``eigvalsh``; the CNN part is
``forward_features`` of the backbone (no head).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from frugalcv.core.measure import measure_latency, to_module

__all__ = ["graph_speed_ratio"]


class _Features(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model.forward_features(x)


def graph_speed_ratio(
    model: nn.Module,
    x: Tensor,
    *,
    spectrum: nn.Module | None = None,
    warmup: int = 3,
    repeats: int = 10,
    device: str | torch.device = "cpu",
) -> dict:
    """Images per second of the graph features and of the CNN forward, and their ratio.

    Args:
        model: an :class:`~frugalcv.signature.sgn.SGNModel` (or any module with
            ``forward_features``).
        x: input batch ``(B, in_chans, H, W)``.
        spectrum: the graph layer to time; default ``model.head.spectrum``.
        warmup, repeats, device: as in :func:`frugalcv.core.measure.measure_latency`.

    Returns:
        ``{"graph_images_per_s", "cnn_images_per_s", "ratio", "graph_ms", "cnn_ms",
        "batch_size", "device", "num_threads"}`` with ``ratio = graph / cnn`` images per second
        (above 1: the graph features cost less than the CNN forward).
    """
    if spectrum is None:
        spectrum = getattr(getattr(model, "head", None), "spectrum", None)
    if spectrum is None:
        raise ValueError(
            "model has no signature-graph layer (model.head.spectrum); pass spectrum= or use an "
            "'sgn' / 'sgn_mha' model from create_sgn_model"
        )
    device = torch.device(device)
    features = _Features(model)
    cnn = measure_latency(features, x, warmup=warmup, repeats=repeats, device=device)
    first = next(iter(model.parameters()), None)
    old_device, was_training = (first.device if first is not None else None), model.training
    with torch.no_grad():
        model.to(device).eval()
        f = model.forward_features(to_module(x, model))  # (B, C, h, w)
    model.train(was_training)
    if old_device is not None:
        model.to(old_device)
    graph = measure_latency(spectrum, f, warmup=warmup, repeats=repeats, device=device)
    b = int(x.shape[0])
    graph_ips = b / (graph["median_ms"] / 1e3)
    cnn_ips = b / (cnn["median_ms"] / 1e3)
    return {
        "graph_images_per_s": graph_ips,
        "cnn_images_per_s": cnn_ips,
        "ratio": graph_ips / cnn_ips,
        "graph_ms": graph["median_ms"],
        "cnn_ms": cnn["median_ms"],
        "batch_size": b,
        "device": str(device),
        "num_threads": torch.get_num_threads(),
    }
