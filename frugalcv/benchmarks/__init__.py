"""Benchmarks: side-by-side comparisons declared as data, trained and written by one runner.

``BENCHMARKS`` is the registry (name -> module defining ``BENCHMARK``); module paths, not
imports, keep ``frugalcv --help`` fast. Results go to ``benchmarks/results/<name>.json`` of the
current folder (see :mod:`frugalcv.benchmarks.runner`); everything here runs from an installed
wheel, nothing is resolved relative to the source tree.
"""

from __future__ import annotations

import difflib
import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from frugalcv.benchmarks.spec import Benchmark

BENCHMARKS: dict[str, str] = {
    "classify": "frugalcv.benchmarks.classify",
    "ickd": "frugalcv.benchmarks.ickd",
    "ickd_seg": "frugalcv.benchmarks.ickd_seg",
    "ickd_ablation": "frugalcv.benchmarks.ickd_ablation",
    "ickd_digits100": "frugalcv.benchmarks.ickd_digits100",
    "medmil": "frugalcv.benchmarks.medmil",
    "dsnet": "frugalcv.benchmarks.dsnet",
    "ddsnet": "frugalcv.benchmarks.ddsnet",
    "dsnet_latency": "frugalcv.benchmarks.dsnet_latency",
    "sgn": "frugalcv.benchmarks.sgn",
    "zsl": "frugalcv.benchmarks.zsl",
    "erpcnet": "frugalcv.benchmarks.erpcnet",
    "balenas": "frugalcv.benchmarks.balenas",
    "contrastzsd": "frugalcv.benchmarks.contrastzsd",
    "alt": "frugalcv.benchmarks.alt",
    "loop_overhead": "frugalcv.benchmarks.loop_overhead",
}


def get_benchmark(name: str) -> Benchmark:
    """The registered benchmark ``name``.

    Raises:
        ValueError: an unknown name (the closest known one is suggested).
    """
    if name not in BENCHMARKS:
        close = difflib.get_close_matches(name, list(BENCHMARKS), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ValueError(f"Unknown benchmark '{name}'.{hint} Known: {', '.join(BENCHMARKS)}.")
    bench = importlib.import_module(BENCHMARKS[name]).BENCHMARK
    if bench.name != name:
        raise ValueError(f"{BENCHMARKS[name]} defines benchmark '{bench.name}', not '{name}'.")
    return bench


__all__ = ["BENCHMARKS", "get_benchmark"]
