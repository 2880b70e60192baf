"""``dsnet``: DS-Net / DS-Net++ in two stages, then static, dynamic and random-gate rows.

C. Li et al., "Dynamic Slimmable Network" (CVPR 2021) and "DS-Net++" (arXiv 2109.10060).

1. Stage I (:class:`~frugalcv.slim.SupernetTask`): the weight-sharing supernet with the sandwich
   rule, in-place bootstrapping from an EMA copy and, optionally, multi-view consistency.
2. BN recalibration of every routing width (:func:`~frugalcv.slim.recalibrate_supernet`).
3. Stage II (:class:`~frugalcv.slim.GateTask`): the gate of the frozen supernet, with its own
   optimizer and schedule (or a fixed lr).
4. Rows, all on the same test set: the supernet's static sub-networks at each width, the dynamic
   network (gate-routed, sliced, grouped by route), a random gate at exactly the same cost (the
   gate's routes shuffled over the test images) and, as the reference curve, independently
   trained static networks at each width (same architecture, init, data and schedule).
   Each row carries its accuracy, mean MACs per image and CPU latency at batch 1 and 64
   (medians of interleaved runs in this process).

``latency.only=true`` trains nothing: it times random-weight 224 px supernets (full width, each
slice, and the authors' masking at each width) for the ``dsnet_latency`` benchmark.
"""

from frugalcv.slim.dsnet_recipe.config import (
    PRESETS,
    Config,
    DataConfig,
    DSNetConfig,
    LatencyConfig,
    ModelConfig,
    paper_imagenet,
    tiny,
)
from frugalcv.slim.dsnet_recipe.evaluate import evaluate_rows
from frugalcv.slim.dsnet_recipe.latency import interleaved_latency, latency_rows
from frugalcv.slim.dsnet_recipe.models import StaticWidth, build_supernet
from frugalcv.slim.dsnet_recipe.recipe import run

__all__ = [
    "PRESETS",
    "Config",
    "DSNetConfig",
    "DataConfig",
    "LatencyConfig",
    "ModelConfig",
    "StaticWidth",
    "build_supernet",
    "evaluate_rows",
    "interleaved_latency",
    "latency_rows",
    "paper_imagenet",
    "run",
    "tiny",
]
