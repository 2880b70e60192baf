"""DDS-Net: a slimmable DnCNN supernet, progressive channel tailoring and a dynamic gate.

Z. Jiang, C. Li, X. Chang, L. Chen, J. Zhu, Y. Yang, "Dynamic Slimmable Denoising Network",
arXiv 2110.08940 (IEEE TIP 2023). No code was published and only the abstract could be read, so
everything past its three stages is a reconstruction (listed in ``docs/methods/ddsnet.md``):

1. Stage 1 (:class:`DenoiseSupernetTask`): train a weight-shared slimmable denoiser
   (:class:`SlimDnCNN`) with the sandwich rule over per-layer channel configurations.
2. Stage 2 (:func:`tailor`): evaluate the supernet on held-out images and greedily cut, one layer
   at a time, the channels whose removal costs the least PSNR per MAC saved; every cut is a rung
   of a ladder of sub-networks (:class:`Rung`), each with its own recalibrated BN statistics.
3. Stage 3 (:class:`DenoiseGateTask`): label each training crop online as easy or hard from the
   PSNR gap between the rungs (:func:`gate_targets`) and train a tiny gate on the noisy input
   (:class:`DenoiseGate`) to pick the rung; :class:`DynamicDenoiser` runs the chosen slice.

Configurations: a tuple of channel counts, one per hidden layer (the head conv and each body
conv, ``depth - 1`` numbers); every count is one of ``SlimDnCNN.choices``. Slices are prefixes of
the stored filters (``frugalcv.layers.SlimConv2d``), so a smaller configuration computes less.
MACs follow ``frugalcv.core.measure`` (convolutions and matrix products only).
"""

from frugalcv.slim.ddsnet.baselines import nlm_denoise, tv_denoise, wavelet_denoise
from frugalcv.slim.ddsnet.dynamic import (
    GATE_RULES,
    DenoiseGate,
    DenoiseGateTask,
    DynamicDenoiser,
    estimate_sigma,
    gate_targets,
    haar_diagonal,
    oracle_routes,
)
from frugalcv.slim.ddsnet.metrics import (
    config_macs,
    denoise_loss,
    per_image_latency,
    psnr_per_image,
    ssim_per_image,
)
from frugalcv.slim.ddsnet.sandwich import (
    RANDOM_MODES,
    DenoiseSupernetTask,
    random_config,
    sandwich_configs,
)
from frugalcv.slim.ddsnet.supernet import ResidualDenoiser, SlimDnCNN, extract_subnet
from frugalcv.slim.ddsnet.tailor import CRITERIA, Rung, pick_rungs, tailor

__all__ = [
    "CRITERIA",
    "GATE_RULES",
    "RANDOM_MODES",
    "DenoiseGate",
    "DenoiseGateTask",
    "DenoiseSupernetTask",
    "DynamicDenoiser",
    "ResidualDenoiser",
    "Rung",
    "SlimDnCNN",
    "config_macs",
    "denoise_loss",
    "estimate_sigma",
    "extract_subnet",
    "gate_targets",
    "haar_diagonal",
    "nlm_denoise",
    "oracle_routes",
    "per_image_latency",
    "pick_rungs",
    "psnr_per_image",
    "random_config",
    "sandwich_configs",
    "ssim_per_image",
    "tailor",
    "tv_denoise",
    "wavelet_denoise",
]
