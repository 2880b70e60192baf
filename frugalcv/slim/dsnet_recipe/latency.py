"""CPU latency for the ``dsnet`` recipe: round-robin timing and the 224 px slicing study."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from frugalcv.core.measure import interleaved_latency
from frugalcv.layers.slimmable import per_sample_widths
from frugalcv.slim.cost import macs_per_width
from frugalcv.slim.dsnet_recipe.config import LatencyConfig, ModelConfig
from frugalcv.slim.dsnet_recipe.models import build_supernet
from frugalcv.slim.supernet import SlimSupernet

__all__ = ["interleaved_latency", "latency_rows"]


def _masked_at(model: SlimSupernet, x: Tensor, k: int) -> Tensor:
    """The authors' execution of width ``model.widths[k]``: full-width body, channels masked."""
    f = model.forward_trunk(x)
    model.set_body_width(1.0)
    route = torch.full((x.shape[0],), k, dtype=torch.long, device=x.device)
    with per_sample_widths(model.body, list(model.widths), route):
        return model.body(f)


def latency_rows(cfg: LatencyConfig, *, seed: int) -> list[dict]:
    """Rows of the 224 px latency study: for each net, batch size and width below 1, the
    sliced sub-network and the masked full-width pass, with ``efficiency = speed-up / MAC
    reduction`` (``speed-up = t_full / t``, ``MAC reduction = MACs_full / MACs_w``; 1.0 is the
    limit of a perfectly compute-bound slice). Random weights; all variants of one net and batch
    size timed round-robin in this process."""
    rows = []
    for arch in cfg.nets:
        torch.manual_seed(seed)
        mc = ModelConfig(arch=arch, scale="imagenet")
        model = build_supernet(mc, num_classes=1000, in_chans=3, image_size=cfg.image_size)
        model.eval()
        shape = (3, cfg.image_size, cfg.image_size)
        macs = macs_per_width(model, input_shape=shape)
        label = {"ds_mobilenet": "mobilenet_v2", "ds_resnet": "resnet50", "ds_vit": "deit_tiny"}
        for b in cfg.batch_sizes:
            x = torch.randn(b, *shape, generator=torch.Generator().manual_seed(seed))
            variants: dict[str, Callable[[], Any]] = {"full": lambda m=model, x=x: m(x, width=1.0)}
            for k, w in enumerate(model.widths[:-1]):
                variants[f"w{w:g} sliced"] = lambda m=model, x=x, w=w: m(x, width=w)
                variants[f"w{w:g} masked"] = lambda m=model, x=x, k=k: _masked_at(m, x, k)
            t0 = time.time()
            ms = interleaved_latency(variants, warmup=cfg.warmup, repeats=cfg.repeats)
            wall = round(time.time() - t0, 2)
            for w in model.widths[:-1]:
                reduction = macs[1.0] / macs[w]
                for mode in ("sliced", "masked"):
                    t = ms[f"w{w:g} {mode}"]
                    eff = ms["full"] / t / reduction
                    rows.append(
                        {
                            "name": f"{label[arch]} b{b} w{w:g} {mode}",
                            "final": {"efficiency": eff},
                            "best": {"efficiency": eff, "step": 0},
                            "steps": 0,
                            "wall_s": wall,
                            "macs": macs[w] if mode == "sliced" else macs[1.0],
                            "macs_full": macs[1.0],
                            "mac_reduction": round(reduction, 4),
                            "median_ms": round(t, 3),
                            "full_ms": round(ms["full"], 3),
                            "speedup": round(ms["full"] / t, 4),
                            "batch_size": b,
                            "image_size": cfg.image_size,
                            "num_threads": torch.get_num_threads(),
                            "repeats": cfg.repeats,
                        }
                    )
    return rows
