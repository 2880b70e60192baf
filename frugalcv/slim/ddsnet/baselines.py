"""Classical denoising baselines (scikit-image): non-local means, wavelets, total variation."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from frugalcv.slim.ddsnet.dynamic import estimate_sigma

__all__ = ["nlm_denoise", "tv_denoise", "wavelet_denoise"]


def _sigmas(x: Tensor, sigma: float | Tensor | None) -> list[float]:
    """Per-image sigma on the [0, 1] scale from a 0-255 value, or estimated."""
    s = estimate_sigma(x) if sigma is None else torch.as_tensor(sigma, dtype=torch.float64)
    s = s.expand(x.shape[0]) if s.dim() == 0 else s
    return [float(v) / 255.0 for v in s.tolist()]


def _per_image(x: Tensor, sigma: float | Tensor | None, fn: Callable[..., np.ndarray]) -> Tensor:
    if x.dim() != 4:
        raise ValueError(f"expected (B, C, H, W) images in [0, 1]; got {tuple(x.shape)}")
    outs = []
    for im, s in zip(x.detach().cpu().double().numpy(), _sigmas(x, sigma), strict=True):
        arr = im.transpose(1, 2, 0) if im.shape[0] > 1 else im[0]  # (H, W, C) or (H, W)
        axis = -1 if im.shape[0] > 1 else None
        res = fn(arr, s, axis)
        outs.append(res.transpose(2, 0, 1) if axis is not None else res[None])
    return torch.from_numpy(np.stack(outs)).to(x.dtype).to(x.device)


def nlm_denoise(
    x: Tensor,
    *,
    sigma: float | Tensor | None = None,
    patch_size: int = 5,
    patch_distance: int = 6,
    h_factor: float = 0.8,
) -> Tensor:
    """Non-local means (``skimage.restoration.denoise_nl_means``, fast mode) with
    ``h = h_factor * sigma`` (the scikit-image gallery's choice).

    Args:
        x: ``(B, C, H, W)`` noisy images in [0, 1].
        sigma: noise std on the 0-255 scale (float or ``(B,)``); None: :func:`estimate_sigma`.
    """
    from skimage.restoration import denoise_nl_means

    def fn(a, s, axis):
        return denoise_nl_means(
            a,
            patch_size=patch_size,
            patch_distance=patch_distance,
            h=h_factor * s,
            sigma=s,
            fast_mode=True,
            channel_axis=axis,
        )

    return _per_image(x, sigma, fn)


def wavelet_denoise(
    x: Tensor,
    *,
    sigma: float | Tensor | None = None,
    wavelet: str = "db1",
    method: str = "BayesShrink",
) -> Tensor:
    """Wavelet shrinkage (``skimage.restoration.denoise_wavelet``, soft thresholds, scikit-image
    defaults; colour images are denoised in YCbCr). Needs PyWavelets.

    Args:
        sigma: noise std, 0-255 scale; None: :func:`estimate_sigma`.
    """
    try:
        import pywt  # noqa: F401
    except ImportError as err:
        raise ImportError("wavelet_denoise needs PyWavelets: pip install PyWavelets") from err
    from skimage.restoration import denoise_wavelet

    def fn(a, s, axis):
        return denoise_wavelet(
            a,
            sigma=s,
            wavelet=wavelet,
            mode="soft",
            method=method,
            rescale_sigma=True,
            channel_axis=axis,
            convert2ycbcr=axis is not None,
        )

    return _per_image(x, sigma, fn)


def tv_denoise(
    x: Tensor, *, sigma: float | Tensor | None = None, weight_factor: float = 1.0
) -> Tensor:
    """Total-variation denoising (``skimage.restoration.denoise_tv_chambolle``) with
    ``weight = weight_factor * sigma`` (sigma on the [0, 1] scale).

    ``weight_factor = 1`` is our choice: on a 256x256 crop of ``camera`` at sigma 15/25/50 it
    was within 0.3 dB of the best of {0.5, 1, 1.5, 2} (best at 25 and 50).
    """
    from skimage.restoration import denoise_tv_chambolle

    def fn(a, s, axis):
        return denoise_tv_chambolle(a, weight=weight_factor * s, channel_axis=axis)

    return _per_image(x, sigma, fn)
