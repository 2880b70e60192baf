"""Per-image PSNR and SSIM, the denoising loss, and a denoiser's MACs and CPU latency."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

from frugalcv.core.measure import count_macs, measure_latency
from frugalcv.slim.ddsnet.supernet import SlimDnCNN

__all__ = [
    "config_macs",
    "denoise_loss",
    "per_image_latency",
    "psnr_per_image",
    "ssim_per_image",
]


def psnr_per_image(pred: Tensor, target: Tensor, *, data_range: float = 1.0) -> Tensor:
    """``10 log10(range^2 / MSE)`` per image (torchmetrics); ``pred`` clipped to the range
    first (an 8-bit image cannot hold values outside it). ``(B, C, H, W)`` -> ``(B,)``."""
    return peak_signal_noise_ratio(
        pred.clamp(0.0, data_range),
        target,
        data_range=data_range,
        reduction="none",
        dim=(1, 2, 3),
    )


def ssim_per_image(pred: Tensor, target: Tensor, *, data_range: float = 1.0) -> Tensor:
    """SSIM per image (torchmetrics: Gaussian window 11, sigma 1.5, as Wang et al. 2004),
    ``pred`` clipped to the range. ``(B, C, H, W)`` with H, W >= 11 -> ``(B,)``."""
    return structural_similarity_index_measure(
        pred.clamp(0.0, data_range), target, data_range=data_range, reduction="none"
    )


def denoise_loss(output: Tensor, clean: Tensor, *, kind: str = "l2") -> Tensor:
    """``mean (output - clean)^2`` (``"l2"``) or ``mean |output - clean|`` (``"l1"``).

    With ``output = y - R(y)`` the L2 form is DnCNN's ``||R(y) - (y - x)||^2`` up to the factor
    ``1 / (2 N)`` vs ``1 / (N C H W)`` (a constant scale of the learning rate)."""
    if kind == "l2":
        return F.mse_loss(output, clean)
    if kind == "l1":
        return F.l1_loss(output, clean)
    raise ValueError(f"unknown loss kind {kind!r}; use 'l2' or 'l1'")


class _Call(nn.Module):
    """``fn(model, x)`` behind a one-argument module (so the measure helpers can call it)."""

    def __init__(self, model: nn.Module, fn: Callable[[nn.Module, Tensor], Tensor]) -> None:
        super().__init__()
        self.model, self.fn = model, fn
        # the measure helpers restore the wrapper's flag, and so the model's: start from its own
        self.train(model.training)

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(self.model, x)


# MACs are counted on an 8x8 input and scaled: every conv here has stride 1 and "same" padding,
# so MACs are exactly (per-pixel MACs) * H * W (FlopCounterMode counts output elements).
_MAC_PROBE = 8


def config_macs(supernet: SlimDnCNN, config: Sequence[int], *, image_size: tuple[int, int]) -> int:
    """MACs of ``supernet(x, config)`` for one ``(H, W)`` image (``count_macs``)."""
    cfg = supernet.check_config(config)
    dev = next(supernet.parameters()).device
    x = torch.zeros(1, supernet.in_channels, _MAC_PROBE, _MAC_PROBE, device=dev)
    with supernet.using_config(cfg):
        per_probe = count_macs(_Call(supernet, lambda m, z: m(z)), x)
    return per_probe * image_size[0] * image_size[1] // (_MAC_PROBE * _MAC_PROBE)


def per_image_latency(
    model: nn.Module,
    images: Sequence[Tensor],
    *,
    forward: Callable[[nn.Module, Tensor], Tensor] | None = None,
    warmup: int = 2,
    repeats: int = 5,
) -> dict:
    """CPU wall-clock time to denoise each image alone (batch 1), eval mode, no grad.

    Args:
        images: ``(C, H, W)`` tensors (sizes may differ).
        forward: ``forward(model, x)``, default ``model(x)``; e.g.
            ``lambda m, x: m(x, config=cfg)`` or a dynamic denoiser's ``forward``.

    Returns:
        ``{"median_ms"`` (median over images of each image's median), ``"mean_ms"``,
        ``"per_image_ms"`` (list), ``"num_threads"``, ``"device": "cpu"}``.
    """
    if not images:
        raise ValueError("per_image_latency needs at least one image")
    call = _Call(model, forward or (lambda m, x: m(x)))
    times = [
        measure_latency(call, im[None], warmup=warmup, repeats=repeats, device="cpu")["median_ms"]
        for im in images
    ]
    return {
        "median_ms": float(statistics.median(times)),
        "mean_ms": float(statistics.fmean(times)),
        "per_image_ms": times,
        "num_threads": torch.get_num_threads(),
        "device": "cpu",
    }
