"""Does the signature graph cost less than the CNN it augments once the CNN is larger?

The ``sgn`` benchmark's cost claim (the graph features cost less than the CNN forward they
augment) fails on its ``tiny_cnn`` at 28 px. Scale is the likeliest explanation: the paper's
CIFAR and STL-10 numbers suggest a larger backbone and larger inputs, and the CNN's cost grows
with both while the graph's grows only with the feature map's patch count. This study times the
same ``sgn`` head (2x2 patches, 4 channel groups, the benchmark's graph settings) on several
backbones and input sizes, with :func:`frugalcv.signature.measure.graph_speed_ratio` (graph and
CNN timed round-robin, one thread, untrained weights: the cost does not depend on them):

- ``tiny_cnn`` at 28 px, one channel (the benchmark's setting);
- CIFAR ResNet-20 and ResNet-56 at 32 px (CIFAR-10's size; 8x8 maps);
- CIFAR ResNet-20 at 96 px (STL-10's size; 24x24 maps, 144 patches: the graph grows too), and
  the same with 6x6 patches (16 patches, the benchmark's graph size);
- timm ResNet-18 at 96 px (an ImageNet-style backbone on STL-10; 3x3 maps).

    OMP_NUM_THREADS=1 python benchmarks/studies/sgn_cost_scale.py

Writes ``benchmarks/results/studies/sgn_cost_scale.json`` (the benchmarks' schema): one row per
setting whose values are the ratios of ``--runs`` measurements (graph images/s over CNN
images/s; above 1 the graph costs less), a constant reference row at 1.0, and one claim per
setting that explains the benchmark's cost claim. Time it on a quiet machine: a shared CPU
moves single measurements by up to 2x (docs/methods/sgn.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from frugalcv.benchmarks.sgn import COST_CLAIM
from frugalcv.core.measure import count_macs
from frugalcv.reporting.results import Claim, Results, Row, write_results
from frugalcv.signature import create_sgn_model
from frugalcv.signature.measure import graph_speed_ratio

PATH = Path("benchmarks/results/studies/sgn_cost_scale.json")
REFERENCE = "the CNN forward itself (1.0)"
# label -> (backbone, input channels, image side, patch side, batch)
SETTINGS = {
    "tiny_cnn, 28 px, 1 channel (the benchmark)": ("tiny_cnn", 1, 28, 2, 256),
    "resnet20, 32 px (CIFAR-10 size)": ("resnet20", 3, 32, 2, 64),
    "resnet56, 32 px (CIFAR-10 size)": ("resnet56", 3, 32, 2, 64),
    "resnet20, 96 px (STL-10 size)": ("resnet20", 3, 96, 2, 16),
    "resnet20, 96 px, 6x6 patches": ("resnet20", 3, 96, 6, 16),
    "timm/resnet18, 96 px (STL-10 size)": ("timm/resnet18", 3, 96, 2, 16),
}


def measure(label: str, *, runs: int, repeats: int, warmup: int) -> dict:
    backbone, chans, side, patch, batch = SETTINGS[label]
    torch.manual_seed(0)
    model = create_sgn_model(
        "sgn",
        num_classes=10,
        in_chans=chans,
        image_size=side,
        backbone=backbone,
        patch_size=patch,
        ceil_mode=True,  # as the benchmark: smaller last patches on odd-sided maps
    ).eval()
    x = torch.rand(batch, chans, side, side)
    with torch.no_grad():
        f = model.forward_features(x[:1])
    ratios = [
        graph_speed_ratio(model, x, warmup=warmup, repeats=repeats)["ratio"] for _ in range(runs)
    ]
    return {
        "ratios": [round(r, 3) for r in ratios],
        "feature_map": f"{f.shape[1]}x{f.shape[2]}x{f.shape[3]}",
        "nodes": int(model.head.spectrum.num_nodes),
        "cnn_macs": count_macs(model.backbone, x[:1]),
        "batch": batch,
    }


def results(measured: dict[str, dict], runs: int) -> Results:
    rows = [
        Row(
            name=label,
            values=m["ratios"],
            extra={k: v for k, v in m.items() if k != "ratios"},
        )
        for label, m in measured.items()
    ]
    rows.append(Row(name=REFERENCE, values=[1.0] * runs))
    claims = [
        Claim(
            text=f"[scale: {label}] the graph features cost less than the CNN forward",
            left=label,
            op=">",
            right=REFERENCE,
            explains=COST_CLAIM.text,
        )
        for label in measured
    ]
    return Results(
        benchmark="sgn_cost_scale",
        command=f"python benchmarks/studies/sgn_cost_scale.py --runs {runs}",
        dataset="random inputs (the cost does not depend on the weights or the data)",
        metric="graph features' images/s / CNN forward_features' images/s (above 1: cheaper)",
        higher_is_better=True,
        seeds=list(range(runs)),
        rows=rows,
        claims=claims,
        notes="The sgn head of the benchmark (2x2 patches unless the label says otherwise, ceil "
        "mode, max+min nodes, bilateral weights, normalised Laplacian, 4 channel groups) on "
        "each backbone, untrained; one thread; each value is one measurement of "
        "graph_speed_ratio (round-robin rounds, the median of each side); the 'seeds' are "
        "repeated measurements. cnn_macs: the backbone's forward_features per image; nodes: "
        "the graph's nodes per channel group (two per patch; the Laplacian is nodes x nodes).",
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated labels' backbones (tests)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    labels = [k for k in SETTINGS if not args.only or SETTINGS[k][0] in args.only.split(",")]
    measured = {}
    for label in labels:
        measured[label] = measure(label, runs=args.runs, repeats=args.repeats, warmup=args.warmup)
        print(f"{label}: {measured[label]}", flush=True)
    res = results(measured, args.runs)
    if not args.only:
        write_results(PATH, res)
        print("written:", PATH)
    for cr in res.evaluate_claims():
        print(cr.describe())


if __name__ == "__main__":
    main()
