"""Where weight slicing pays: 224 px supernets, sliced vs masked, on the CPU (no training).

    OMP_NUM_THREADS=1 frugalcv bench dsnet_latency

MobileNetV2-1.0- and ResNet-50-sized DS supernets with random weights, batch 1 and 8: the
full width, each narrower slice (dense, smaller convolutions) and the masking of the authors'
code (full-width convolutions, then channels past the width zeroed), all timed round-robin in
one process (``dsnet`` recipe with ``latency.only=true``). The metric is
``efficiency = speed-up / MAC reduction`` (``t_full / t`` over ``MACs_full / MACs_w``): 1.0 is
the limit of a perfectly compute-bound slice, masking sits near ``1 / MAC reduction``.
"""

from __future__ import annotations

from collections.abc import Sequence

from frugalcv.benchmarks.spec import Benchmark, Claim, Job, RowSpec, Source

NETS = (("ds_mobilenet", "mobilenet_v2"), ("ds_resnet", "resnet50"))
BATCHES = (1, 8)
WIDTHS = (0.25, 0.5, 0.75)  # below full width
REPEATS = 10  # timed rounds (a ResNet-50 batch of 8 takes about a second on one thread)


def jobs(seeds: Sequence[int], quick: bool) -> list[Job]:
    return [
        Job(
            name=f"seed{seed}",
            recipe="dsnet",
            overrides={
                "latency.only": True,
                "latency.nets": tuple(a for a, _ in NETS),
                "latency.image_size": 32 if quick else 224,  # quick: overhead-bound
                "latency.batch_sizes": BATCHES,
                "latency.repeats": 2 if quick else REPEATS,
                "latency.warmup": 1 if quick else 3,
                "train.seed": seed,
            },
        )
        for seed in seeds
    ]


def row_name(net: str, batch: int, width: float, mode: str) -> str:
    return f"{net} b{batch} w{width:g} {mode}"


def rows(seeds: Sequence[int]) -> list[RowSpec]:
    return [
        RowSpec(
            name=row_name(net, b, w, mode),
            sources=tuple(Source(f"seed{s}", row=row_name(net, b, w, mode)) for s in seeds),
            metric="efficiency",
            copy=("macs", "macs_full", "mac_reduction", "batch_size", "image_size"),
            mean={"median_ms": "median_ms", "full_ms": "full_ms", "speedup": "speedup"},
        )
        for _, net in NETS
        for b in BATCHES
        for w in WIDTHS
        for mode in ("sliced", "masked")
    ]


CLAIMS = tuple(
    Claim(
        text=f"{net} batch {b}: the w{w:g} slice turns more of its MAC saving into time than "
        "masking does",
        left=row_name(net, b, w, "sliced"),
        op=">",
        right=row_name(net, b, w, "masked"),
    )
    for _, net in NETS
    for b in BATCHES
    for w in (0.25, 0.5)
)

BENCHMARK = Benchmark(
    name="dsnet_latency",
    about="DS-Net slicing vs masking: CPU latency of 224 px MobileNetV2/ResNet-50 supernets",
    dataset="random 224 px inputs (no data)",
    metric="efficiency = speed-up over full width / MAC reduction (1.0 is the limit)",
    higher_is_better=True,
    jobs=jobs,
    rows=rows,
    claims=CLAIMS,
    notes="Random-weight supernets (ds_mobilenet_v2_imagenet: 300.8M MACs, ds_resnet50: 4.09G "
    "MACs at full width; stem and first stage always at full width, as in the trained nets), "
    f"batch {BATCHES}, {REPEATS} timed rounds after 3 warm-up rounds, every variant of one net "
    "and batch size timed once per round (round-robin, so load changes on a shared machine hit "
    "all alike); medians. 'sliced': the sub-network at that width; 'masked': the authors' "
    "dynamic mode (full-width convs, per-sample channel mask, BN with that width's "
    "statistics). MACs from torch's FlopCounterMode. One seed: the measurement is the repeat.",
    seeds=(0,),
    quick_seeds=(0,),
    metric_range=None,  # efficiencies can exceed 1 by timing noise
)
