"""Throughput of the signature-graph features against the CNN forward that feeds them.

Conventions follow :func:`frugalcv.core.measure.interleaved_latency` (eval mode, ``no_grad``,
warm-up runs, CUDA synchronised before reading the clock, median of the timed runs, the two parts
timed round-robin so that a change of machine load does not bias their ratio). The graph part is
:class:`~frugalcv.signature.sgn.SignatureSpectrum` alone on precomputed feature maps: channel
grouping, patch extrema, edges and weights, Laplacian and ``eigvalsh``; the CNN part is
``forward_features`` of the backbone (no head).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from frugalcv.core.measure import interleaved_latency, to_module

__all__ = ["graph_speed_ratio"]


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
        warmup, repeats, device: as in :func:`frugalcv.core.measure.interleaved_latency` (the
            two parts are timed round-robin, one of each per round).

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
    first = next(iter(model.parameters()), None)
    old_device, was_training = (first.device if first is not None else None), model.training
    spectrum_training = spectrum.training
    try:
        model.to(device).eval()
        spectrum.to(device).eval()  # usually inside the model already
        x = to_module(x, model)
        with torch.no_grad():
            f = model.forward_features(x)  # (B, C, h, w): the graph layer's input
        # round-robin: a change of machine load hits both timings alike (their ratio is the claim)
        ms = interleaved_latency(
            {"cnn": lambda: model.forward_features(x), "graph": lambda: spectrum(f)},
            warmup=warmup,
            repeats=repeats,
            device=device,
        )
    finally:
        model.train(was_training)
        spectrum.train(spectrum_training)
        if old_device is not None:
            model.to(old_device)
            spectrum.to(old_device)
    graph, cnn = {"median_ms": ms["graph"]}, {"median_ms": ms["cnn"]}
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
