"""Evaluation rows of the ``ddsnet`` recipe on the test images, and its printed notes."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from frugalcv.core.measure import to_module
from frugalcv.core.recipe import derived_row
from frugalcv.layers.slimmable import recalibrate_bn
from frugalcv.slim.ddsnet import (
    DynamicDenoiser,
    Rung,
    SlimDnCNN,
    config_macs,
    nlm_denoise,
    per_image_latency,
    psnr_per_image,
    ssim_per_image,
    tv_denoise,
    wavelet_denoise,
)
from frugalcv.slim.ddsnet.config import Config
from frugalcv.slim.ddsnet.data import _Data

__all__ = ["CLASSICAL", "interpolate_curve"]

CLASSICAL: dict[str, Callable[..., Tensor]] = {
    "nlm": nlm_denoise,
    "wavelet": wavelet_denoise,
    "tv": tv_denoise,
}


def _batched(
    fn: Callable[[Tensor], Tensor],
    images: Sequence[Tensor],
    *,
    batch_size: int,
    module: nn.Module,
) -> list[Tensor]:
    """``fn`` over runs of equally sized images, ``batch_size`` at a time; outputs in order.

    Each batch is moved to ``module``'s device (and floating dtype) for ``fn``, and the outputs
    come back to the images' device and dtype.
    """
    out: list[Tensor] = []
    i = 0
    while i < len(images):
        j = i + 1
        while j < len(images) and j - i < batch_size and images[j].shape == images[i].shape:
            j += 1
        x = torch.stack(list(images[i:j]))
        out += list(fn(to_module(x, module)).to(x))
        i = j
    return out


def _scores(outputs: Sequence[Tensor], clean: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """Per-image PSNR and SSIM ``(M,)`` each."""
    psnr = torch.stack(
        [psnr_per_image(o[None], c[None])[0] for o, c in zip(outputs, clean, strict=True)]
    )
    ssim = torch.stack(
        [ssim_per_image(o[None], c[None])[0] for o, c in zip(outputs, clean, strict=True)]
    )
    return psnr, ssim


def _per_pixel_macs(net: SlimDnCNN, config: Sequence[int]) -> float:
    return config_macs(net, config, image_size=(8, 8)) / 64.0  # exact: stride 1, same padding


def interpolate_curve(points: Sequence[tuple[float, float]], x: float) -> tuple[float, str]:
    """``y`` of the piecewise-linear curve through ``(x, y)`` points at ``x``; clamped to the
    end points outside it. Example: ``[(10, 30.0), (30, 31.0)]`` at 20 gives 30.5."""
    pts = sorted(points)
    if x <= pts[0][0]:
        return pts[0][1], "clamped to the cheapest"
    if x >= pts[-1][0]:
        return pts[-1][1], "clamped to the widest"
    for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
        if x0 <= x <= x1:
            return y0 + (x - x0) / (x1 - x0) * (y1 - y0), "interpolated"
    raise AssertionError("unreachable")


def _row(name: str, psnr: Tensor, ssim: Tensor, *, steps: int = 0, **extra: Any) -> dict:
    """A row summary: test PSNR/SSIM means as ``final`` (and ``best``: nothing is selected)."""
    p, s = float(psnr.mean()), float(ssim.mean())
    return {
        "name": name,
        "final": {"psnr": p, "ssim": s},
        "best": {"psnr": p, "step": steps},
        "steps": steps,
        **extra,
    }


def _snapshot(net: SlimDnCNN, config: Sequence[int], psnr: float, macs: int) -> Rung:
    means, var = [], []
    for bn, c in zip(net.norms(), config[1:], strict=True):
        k = bn.width_index(c)
        means.append(bn.running_mean[k, :c].detach().cpu().clone())
        var.append(bn.running_var[k, :c].detach().cpu().clone())
    return Rung(tuple(config), psnr, macs, means, var)


def _recalibrated(net: SlimDnCNN, config: Sequence[int], calib: list[Tensor]) -> Rung:
    """A rung for ``config`` with BN statistics recalibrated on ``calib`` (PSNR/MACs unset)."""
    recalibrate_bn(net, calib, widths=[tuple(config)], forward=lambda x, c: net(x, config=c))
    return _snapshot(net, config, float("nan"), 0)


def _mean_pixels(data: _Data) -> float:
    return float(np.mean([im.shape[-1] * im.shape[-2] for im in data.test_clean]))


def _latency_probe(cfg: Config, data: _Data) -> tuple[np.ndarray, Callable[..., float]]:
    """The test images timed per row (evenly spaced) and the batch-1 latency function."""
    d, noisy = cfg.ddsnet, data.test_noisy
    lat_idx = np.unique(
        np.linspace(0, len(noisy) - 1, min(d.latency_images, len(noisy))).round().astype(int)
    )
    lat_images = [noisy[i] for i in lat_idx]

    def latency(model: nn.Module, forward: Callable | None = None) -> float:
        model.eval()
        r = per_image_latency(
            model, lat_images, forward=forward, warmup=1, repeats=d.latency_repeats
        )
        return round(r["mean_ms"], 3)

    return lat_idx, latency


@torch.no_grad()
def static_rows(
    cfg: Config,
    data: _Data,
    static: dict[int, nn.Module],
    static_summaries: list[dict],
    *,
    full_macs: float,
) -> list[dict]:
    """Test rows of the individually trained static networks (``static_c<w>``), with MACs as a
    fraction of ``full_macs`` (the supernet's full width, per image)."""
    _, latency = _latency_probe(cfg, data)
    pixels = _mean_pixels(data)
    rows = []
    for summ in static_summaries:
        w = int(summ["channels"])
        net = static[w].eval()
        outs = _batched(net, data.test_noisy, batch_size=cfg.train.eval_batch_size, module=net)
        p, s = _scores(outs, data.test_clean)
        macs = _per_pixel_macs(net, net.largest_config) * pixels
        rows.append(
            _row(
                f"static_c{w}",
                p,
                s,
                steps=summ["steps"],
                macs=macs,
                macs_frac=macs / full_macs,
                params=summ["params"],
                latency_ms=latency(net),
                wall_s=summ["wall_s"],
                heldout=summ["final"],
            )
        )
    return rows


def noisy_row(data: _Data) -> dict:
    """The noisy input's row (the floor every denoiser is read against)."""
    p, s = _scores(data.test_noisy, data.test_clean)
    return _row("noisy", p, s, macs=0, note="the noisy input")


@torch.no_grad()
def _evaluate(
    cfg: Config,
    data: _Data,
    supernet: SlimDnCNN,
    dyn: DynamicDenoiser,
    static: dict[int, nn.Module],
    static_summaries: list[dict],
) -> list[dict]:
    """Every evaluation row (noisy, classical, static, uniform, rungs, dynamic, derived)."""
    d = cfg.ddsnet
    noisy, clean = data.test_noisy, data.test_clean
    bs = cfg.train.eval_batch_size
    pixels = _mean_pixels(data)
    lat_idx, latency = _latency_probe(cfg, data)
    full_macs = _per_pixel_macs(supernet, supernet.largest_config) * pixels
    rows: list[dict] = []
    rows.append(noisy_row(data))

    if d.classical:
        known = not isinstance(data.sigma, tuple)  # blind: the baselines estimate sigma
        for name, fn in CLASSICAL.items():
            t0 = time.time()
            outs = []
            for i, y in enumerate(noisy):
                sig = float(data.test_sigmas[i]) if known else None
                outs.append(fn(y[None], sigma=sig)[0])
            p, s = _scores(outs, clean)
            sig_lat = float(data.test_sigmas[0]) if known else None
            ms = latency(nn.Identity(), lambda _m, x, f=fn, sg=sig_lat: f(x, sigma=sg))
            rows.append(
                _row(
                    name,
                    p,
                    s,
                    macs=0,
                    latency_ms=ms,
                    wall_s=round(time.time() - t0, 2),
                    sigma_known=known,
                )
            )

    supernet.eval()
    rows += static_rows(cfg, data, static, static_summaries, full_macs=full_macs)

    # uniform-width sub-networks of the supernet, each with recalibrated BN
    calib = data.calib
    for w in d.widths:
        cfg_w = (w,) * supernet.num_layers
        _recalibrated(supernet, cfg_w, calib)
        supernet.eval()
        outs = _batched(
            lambda x, c=cfg_w: supernet(x, config=c), noisy, batch_size=bs, module=supernet
        )
        p, s = _scores(outs, clean)
        macs = _per_pixel_macs(supernet, cfg_w) * pixels
        ms = latency(supernet, lambda mm, x, c=cfg_w: mm(x, config=c))
        rows.append(
            _row(f"supernet_c{w}", p, s, macs=macs, macs_frac=macs / full_macs, latency_ms=ms)
        )

    # tailored rungs (MACs ascending) and the dynamic network
    dyn.eval()
    for k in range(dyn.num_choices):
        outs = _batched(lambda x, k=k: dyn.forward_rung(x, k), noisy, batch_size=bs, module=dyn)
        p, s = _scores(outs, clean)
        macs = _per_pixel_macs(supernet, dyn.config(k)) * pixels
        ms = latency(dyn, lambda mm, x, k=k: mm.forward_rung(x, k))
        rows.append(
            _row(
                f"rung{k}",
                p,
                s,
                macs=macs,
                macs_frac=macs / full_macs,
                latency_ms=ms,
                config=",".join(map(str, dyn.config(k))),
            )
        )
    t0 = time.time()
    outs, routes = dyn.denoise_each(noisy)
    wall = time.time() - t0
    p, s = _scores(outs, clean)
    route = torch.tensor(routes)
    per_px = torch.tensor(
        [_per_pixel_macs(supernet, dyn.config(k)) for k in range(dyn.num_choices)]
    )
    sizes = torch.tensor([float(im.shape[-1] * im.shape[-2]) for im in clean])
    gate_macs = float(dyn.gate_macs(tuple(noisy[0].shape[-2:])))
    macs = float((per_px[route] * sizes).mean()) + gate_macs
    frac = torch.bincount(route, minlength=dyn.num_choices).float() / len(route)

    def dyn_forward(mm: DynamicDenoiser, x: Tensor) -> Tensor:
        return mm.forward_rung(x, int(mm.route(x).index[0]))

    lat_route = route[torch.as_tensor(lat_idx)]
    rows.append(
        _row(
            "dynamic",
            p,
            s,
            macs=macs,
            macs_frac=macs / full_macs,
            gate_macs=gate_macs,
            latency_ms=latency(dyn, dyn_forward),
            latency_macs_frac=float((per_px[lat_route]).mean() / per_px[-1]),
            wall_s=round(wall, 2),
            **{f"route_pct_rung{k}": float(frac[k]) for k in range(dyn.num_choices)},
        )
    )
    by = {r["name"]: r for r in rows}
    full_lat = by[f"supernet_c{supernet.channels}"]["latency_ms"]
    for r in rows:
        if r.get("latency_ms") and "macs_frac" in r:
            r["speedup"] = round(full_lat / r["latency_ms"], 3)
        r["num_threads"] = torch.get_num_threads()
        r.setdefault("wall_s", 0.0)

    # derived rows: claims compare row means with a margin >= 0 only
    dyn_p = by["dynamic"]["final"]["psnr"]
    sup_full = by[f"supernet_c{supernet.channels}"]["final"]["psnr"]
    rows.append(
        _derived(
            "supernet_full_minus_tol",
            sup_full - d.tolerance,
            full_macs,
            f"supernet full-width PSNR minus {d.tolerance} dB",
        )
    )
    if static_summaries:
        curve = [
            (by[f"static_c{w}"]["macs"], by[f"static_c{w}"]["final"]["psnr"]) for w in d.widths
        ]
        interp, how = interpolate_curve(curve, macs)
        rows.append(
            _derived(
                "static_at_dynamic_macs",
                interp,
                macs,
                f"static curve at DDS-Net's mean MACs, linear in MACs, {how}",
            )
        )
        st_full = by[f"static_c{d.widths[-1]}"]["final"]["psnr"]
        rows.append(
            _derived(
                "static_full_minus_tol",
                st_full - d.tolerance,
                full_macs,
                f"static full-width PSNR minus {d.tolerance} dB",
            )
        )
    by["dynamic"]["gap_to_supernet_full_db"] = round(dyn_p - sup_full, 4)
    return rows


def _derived(name: str, psnr: float, macs: float, how: str) -> dict:
    return derived_row(name, "psnr", psnr, macs=macs, how=how)


def _print_notes(rows: list[dict], channels: int) -> None:
    by = {r["name"]: r for r in rows}
    noisy = by["noisy"]["final"]["psnr"]
    for r in rows:
        if "derived" in r:
            continue
        f = r["final"]
        extra = ""
        if "macs_frac" in r:
            extra = f", {r['macs_frac']:.2f}x full MACs, {r.get('latency_ms', 0):.1f} ms/image"
        print(
            f"{r['name']}: PSNR {f['psnr']:.2f} dB ({f['psnr'] - noisy:+.2f} vs noisy), "
            f"SSIM {f['ssim']:.3f}{extra}"
        )
    if "dynamic" not in by:  # static_only: the rows above are all there is
        return
    dyn, full = by["dynamic"], by[f"supernet_c{channels}"]
    gap = dyn["final"]["psnr"] - full["final"]["psnr"]
    print(
        f"notice: DDS-Net is {gap:+.2f} dB from the supernet's full width at "
        f"{dyn['macs_frac']:.2f}x its MACs (speed-up {dyn.get('speedup', float('nan')):.2f}x)"
    )
    if "static_at_dynamic_macs" in by:
        st = by["static_at_dynamic_macs"]["final"]["psnr"]
        print(
            f"notice: static networks at the same MACs reach {st:.2f} dB; DDS-Net "
            f"{'beats' if dyn['final']['psnr'] > st else 'trails'} them by "
            f"{abs(dyn['final']['psnr'] - st):.2f} dB"
        )
