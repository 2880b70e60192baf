"""ContrastZSD's ablation in miniature: plain semantic detector, +RC, +RR, full; 3 seeds.

    frugalcv bench contrastzsd

Zero-shot detection on the embedded digit scenes (``make_zsd_digits``: 1-4 MNIST digits per
128 px scene over natural-image patches; digits 0-6 seen, 7-9 unseen; class semantics = 9 stroke
attributes). Each seed is one run of the ``contrastzsd`` recipe, which trains the four rows from
the same initialisation on the same data and schedule (``train_rows``); the data set is drawn
with the seed too. The value is ZSD mAP@0.5 on the unseen classes (final model); the GZSD
harmonic mean of seen and unseen mAP is a second set of rows ("GZSD H: ...") so that a claim can
compare it. ``measure`` times one training step of each row (same batch, one process).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from frugalcv.benchmarks.spec import Benchmark, Claim, Job, RowSpec, ScheduleCheck, Source

ROWS = ("plain", "rc", "rr", "full")
LABELS = {
    "plain": "plain semantic detector",
    "rc": "+region-category",
    "rr": "+region-region",
    "full": "full ContrastZSD",
}
H_PREFIX = "GZSD H: "
# Schedule (docs/methods/contrastzsd.md "Schedule study"): the plain row moved by less than a
# point of ZSD mAP from STEPS / 2 to STEPS optimizer steps.
STEPS = 1600
BATCH = 8
DATA = {"data.num_train": 800, "data.num_val": 128, "data.num_test": 300}  # scenes drawn
QUICK_DATA = {"data.num_train": 48, "data.num_val": 8, "data.num_test": 24}


def overrides(seed: int, *, quick: bool) -> dict[str, Any]:
    """The ``contrastzsd`` recipe settings of one seed (all four rows)."""
    return {
        **(QUICK_DATA if quick else DATA),
        "data.name": "zsd-digits",
        "data.semantics": "attributes",
        "detector.backbone": "tiny",
        "contrast.rows": ROWS,
        "contrast.rc": 0.2,  # unofficial config lambda
        "contrast.rr": 0.4,  # unofficial config beta
        "eval.gzsd_seen_bias": 0.0,  # uncalibrated (nothing is tuned on unseen classes)
        "eval.draw_images": 2 if quick else 4,
        "optim.name": "adam",
        "optim.lr": 1e-3,
        "optim.weight_decay": 0.0,
        "optim.schedule": "cosine",
        "optim.warmup_steps": 0 if quick else 50,
        "train.batch_size": BATCH,
        "train.max_steps": 0 if quick else STEPS,
        "train.epochs": 1,  # used by --quick only (max_steps = 0)
        "train.eval_every": 0 if quick else STEPS // 4,
        "train.seed": seed,
    }


def jobs(seeds: Sequence[int], quick: bool) -> list[Job]:
    out = [
        Job(name=f"seed{seed}", recipe="contrastzsd", overrides=overrides(seed, quick=quick))
        for seed in seeds
    ]
    if 0 in seeds and not quick:  # the schedule study: the plain row at twice the steps
        doubled = {
            **overrides(0, quick=False),
            "contrast.rows": ("plain",),
            "eval.draw_images": 0,
            "train.max_steps": 2 * STEPS,
            "train.eval_every": STEPS // 2,
        }
        out.append(Job(name="plain_x2", recipe="contrastzsd", overrides=doubled))
    return out


EXTRA = {
    "zsd_recall100_iou40": "final.zsd_recall100_iou40",
    "zsd_recall100_iou50": "final.zsd_recall100_iou50",
    "zsd_recall100_iou60": "final.zsd_recall100_iou60",
    "gzsd_map_seen": "final.gzsd_map_seen",
    "gzsd_map_unseen": "final.gzsd_map_unseen",
    "gzsd_map_hm": "final.gzsd_map_hm",
    "gzsd_recall_hm": "final.gzsd_recall_hm",
    "val_map_seen": "final.map_seen",
    "step_s_with_evals": "step_s",
}


def rows(seeds: Sequence[int]) -> list[RowSpec]:
    zsd = [
        RowSpec(
            name=LABELS[row],
            sources=tuple(Source(f"seed{s}", row=row) for s in seeds),
            metric="zsd_map",
            copy=("params",),
            mean=EXTRA,
        )
        for row in ROWS
    ]
    gzsd = [
        RowSpec(
            name=H_PREFIX + LABELS[row],
            sources=tuple(Source(f"seed{s}", row=row) for s in seeds),
            metric="gzsd_map_hm",
            mean={k: EXTRA[k] for k in ("gzsd_map_seen", "gzsd_map_unseen")},
        )
        for row in ROWS
    ]
    return zsd + gzsd


def step_seconds(cfg: Any, *, steps: int) -> dict[str, float]:
    """Median seconds per training step (forward, backward, Adam) of each row, one batch."""
    import torch

    from frugalcv.core.loader import list_collate
    from frugalcv.zsd import recipe

    data = recipe.load_data(cfg.data, seed=cfg.train.seed)
    batch = list_collate([data.train[i] for i in range(min(cfg.train.batch_size, len(data.train)))])
    out = {}
    for row in ROWS:
        torch.manual_seed(0)
        task = recipe.make_task(cfg, data, row)
        opt = torch.optim.Adam([p for p in task.parameters() if p.requires_grad], lr=1e-4)
        times = []
        for i in range(steps + 2):
            t = time.perf_counter()
            opt.zero_grad()
            task.training_step(batch)["loss"].backward()
            opt.step()
            if i >= 2:  # warm-up
                times.append(time.perf_counter() - t)
        out[row] = sorted(times)[len(times) // 2]
    return out


def step_cost(plan) -> dict[str, dict[str, Any]]:
    """``step_s`` and ``step_cost_vs_plain`` per row (first seed's config, one process)."""
    cfg = plan.config(f"seed{plan.seeds[0]}")
    seconds = step_seconds(cfg, steps=3 if plan.quick else 15)
    return {
        LABELS[row]: {
            "step_s": round(seconds[row], 4),
            "step_cost_vs_plain": round(seconds[row] / seconds["plain"], 2),
        }
        for row in ROWS
    }


BENCHMARK = Benchmark(
    name="contrastzsd",
    about="ContrastZSD: plain semantic Faster R-CNN / +region-category / +region-region / full",
    dataset="zsd-digits",
    metric="ZSD mAP@0.5 on unseen classes (final model)",
    higher_is_better=True,
    jobs=jobs,
    rows=rows,
    claims=(
        Claim(
            text="full ContrastZSD beats the plain semantic detector on unseen (ZSD) mAP",
            left=LABELS["full"],
            op=">",
            right=LABELS["plain"],
        ),
        Claim(
            text="full ContrastZSD beats the plain semantic detector on GZSD harmonic mean",
            left=H_PREFIX + LABELS["full"],
            op=">",
            right=H_PREFIX + LABELS["plain"],
        ),
        Claim(
            text="the region-category subnet adds to the plain detector (ZSD mAP)",
            left=LABELS["rc"],
            op=">",
            right=LABELS["plain"],
        ),
        Claim(
            text="the region-region subnet adds to the plain detector (ZSD mAP)",
            left=LABELS["rr"],
            op=">",
            right=LABELS["plain"],
        ),
    ),
    notes=f"zsd-digits drawn per seed: {DATA['data.num_train']} training scenes (the ZSD rule "
    f"keeps those without an unseen digit, about 360), {DATA['data.num_val']} seen-only "
    f"validation scenes (the map_seen monitor), {DATA['data.num_test']} test scenes (ZSD: those "
    "with an unseen digit, unseen boxes only; GZSD: all); 128 px; digits 0-6 seen, 7-9 unseen; "
    "9-d stroke-attribute semantics. Detector (shrunk for CPU): SemanticFasterRCNN, tiny "
    "backbone (4 conv layers, one stride-8 map, 9 anchors), 128-d box head, 64 sampled RoIs and "
    "64 anchors per image, 100 proposals, from scratch; regions projected into the semantic "
    f"space, classifier tau 0.1. Every row: Adam 1e-3, cosine, 50 warm-up steps, {STEPS} steps "
    f"of batch {BATCH}, no augmentation, same init per seed. Weights: region-category 0.2, "
    "region-region 0.4, all temperatures 0.1, similarity-weighted negatives (strength 1). "
    "GZSD: predictions among all 10 classes, no calibration (seen bias 0; nothing is tuned on "
    "unseen classes). Metrics by torchmetrics/pycocotools (101-point AP at IoU 0.5; "
    "Recall@100 at IoU 0.4/0.5/0.6). The 'GZSD H: ...' rows repeat the four models with the "
    "GZSD harmonic mean of seen and unseen mAP as value. step_s / step_cost_vs_plain: median "
    "seconds of one training step (batch 8, one process; 1 thread under OMP_NUM_THREADS=1) "
    "relative to the plain row; step_s_with_evals: run wall time / steps.",
    measure=step_cost,
    schedule_checks=(
        ScheduleCheck(
            row=LABELS["plain"],
            what=f"steps {STEPS} -> {2 * STEPS}",
            at=Source("seed0", row="plain"),
            doubled=Source("plain_x2", row="plain"),
            metric="zsd_map",
        ),
    ),
)
