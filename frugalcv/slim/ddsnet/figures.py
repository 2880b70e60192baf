"""Figures of the ``ddsnet`` recipe (PSNR vs MACs, denoised test images); ``ladder.json``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from frugalcv.core.measure import to_module
from frugalcv.slim.ddsnet import DynamicDenoiser, psnr_per_image
from frugalcv.slim.ddsnet.config import Config
from frugalcv.slim.ddsnet.data import _Data
from frugalcv.slim.ddsnet.evaluate import CLASSICAL

__all__ = ["load_ladder"]


@torch.no_grad()
def _figures(
    out_dir: Path,
    rows: list[dict],
    ladder: dict,
    data: _Data,
    dyn: DynamicDenoiser,
    static: dict[int, nn.Module],
    cfg: Config,
) -> None:
    """``ddsnet_psnr_vs_macs.png`` and ``ddsnet_denoised.png`` (matplotlib, Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    by = {r["name"]: r for r in rows}
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax, ax2 = fig.subplots(1, 2)
    series = (
        ("static_c", "static (trained alone)", "s-"),
        ("supernet_c", "supernet uniform", "o-"),
        ("rung", "tailored rungs", "^-"),
    )
    for prefix, label, style in series:
        pts = sorted(
            (r["macs"] / 1e6, r["final"]["psnr"]) for n, r in by.items() if n.startswith(prefix)
        )
        if pts:
            ax.plot(*zip(*pts, strict=True), style, label=label)
    dy = by["dynamic"]
    ax.plot([dy["macs"] / 1e6], [dy["final"]["psnr"]], "*", ms=14, label="DDS-Net dynamic")
    for name, style in (("nlm", ":"), ("wavelet", "-."), ("tv", "--"), ("noisy", "-")):
        if name in by:
            ax.axhline(by[name]["final"]["psnr"], ls=style, c="grey", lw=1)
            ax.annotate(name, (ax.get_xlim()[0], by[name]["final"]["psnr"]), fontsize=7)
    ax.set_xlabel("mean MACs per test image (M)")
    ax.set_ylabel("test PSNR (dB)")
    ax.set_title(f"test images ({data.name})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    lad = ladder["rungs"]
    ax2.plot([r["macs"] / 1e6 for r in lad], [r["psnr"] for r in lad], ".-", label="ladder")
    ax2.plot(
        [lad[i]["macs"] / 1e6 for i in ladder["picked"]],
        [lad[i]["psnr"] for i in ladder["picked"]],
        "o",
        label="rungs of the gate",
    )
    ax2.set_xlabel("MACs per held-out crop (M)")
    ax2.set_ylabel("held-out PSNR (dB)")
    ax2.set_title("Stage 2: one greedy tailoring pass")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8)
    fig.savefig(out_dir / "ddsnet_psnr_vs_macs.png", dpi=110)

    # a few test images side by side: one per route taken when possible
    _, routes = dyn.denoise_each(data.test_noisy)
    picks: list[int] = []
    for k in range(dyn.num_choices):
        picks += [i for i, r in enumerate(routes) if r == k][:1]
    picks = (picks + list(range(len(routes))))[:3]
    picks = list(dict.fromkeys(picks))
    classical = max(
        (n for n in CLASSICAL if n in by), key=lambda n: by[n]["final"]["psnr"], default=None
    )
    full_static = static.get(cfg.ddsnet.widths[-1])
    cols = ["noisy"] + ([classical] if classical else []) + (["static"] if full_static else [])
    cols += ["DDS-Net", "clean"]
    fig = Figure(figsize=(2.2 * len(cols), 2.3 * len(picks)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_2d(fig.subplots(len(picks), len(cols)))
    known = not isinstance(data.sigma, tuple)
    for r_i, i in enumerate(picks):
        y, x = data.test_noisy[i][None], data.test_clean[i][None]
        ims = {
            "noisy": y,
            "clean": x,
            "DDS-Net": dyn.forward_rung(to_module(y, dyn), routes[i]).to(y),
        }
        if classical:
            sig = float(data.test_sigmas[i]) if known else None
            ims[classical] = CLASSICAL[classical](y, sigma=sig)
        if full_static:
            ims["static"] = full_static.eval()(to_module(y, full_static)).to(y)
        for c_i, col in enumerate(cols):
            a = axes[r_i, c_i]
            im = ims[col][0].clamp(0, 1)
            a.imshow(im.permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray", vmin=0, vmax=1)
            title = col if col != "DDS-Net" else f"DDS-Net (rung {routes[i]})"
            if col != "clean":
                title += f"\n{float(psnr_per_image(ims[col], x)[0]):.2f} dB"
            a.set_title(title, fontsize=8)
            a.axis("off")
    fig.savefig(out_dir / "ddsnet_denoised.png", dpi=110)


def load_ladder(path: str | Path) -> dict:
    """Read a run's ``ladder.json`` (configurations, held-out PSNR and MACs of every rung)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no ladder at {path}; run `frugalcv run ddsnet` first")
    return json.loads(path.read_text())
