"""SGN's claims in miniature: CNN alone / + MHA / + SGN / + SGN + MHA on one backbone, 3 seeds.

    FRUGALCV_DATA=<folder holding MNIST/raw> frugalcv bench sgn

Hamdi et al., "Signature-Graph Networks" (arXiv 2110.11551). Every row is the same ``tiny_cnn``
backbone from the same initialisation (per seed), with the same data, schedule and augmentation;
the rows differ only in the classifier head (``frugalcv.signature.create_sgn_model``). Also
measures, in one run, the images/s of the graph features alone against the CNN forward that
feeds them (``graph_speed_ratio``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from frugalcv.benchmarks.spec import Benchmark, Claim, Job, RowSpec, ScheduleCheck, Source

DATASETS = ("mnist", "mnist-back", "mnist-rot-back")
VARIANTS = ("cnn", "cnn_mha", "sgn", "sgn_mha")
BACKBONE = "tiny_cnn"
NUM_TRAIN = 12000  # all of mnist-back / -rot-back; 12,000 of MNIST's 60,000 (CPU budget)
# Epochs per data set (every row of a data set shares its schedule). mnist is near its ceiling at 30
# (30 -> 60: +0.5 points); the baseline on mnist-back moved +1.9 points from 30 to 60, and on
# mnist-rot-back +8.1 / +5.3 / +2.2 points from 30 to 60 / 120 / 240 epochs (docs/methods/sgn.md,
# "Schedule"). Each data set has its own E -> 2E check.
EPOCHS = {"mnist": 30, "mnist-back": 60, "mnist-rot-back": 240}
BATCH = 64
EVALS = 2  # test-set evaluations per run (half-way and at the end): the CPU budget
QUICK_SIZE = 128  # --quick: training and test images
SPEED_BATCH = 256  # images per timed forward in the speed measurement
SPEED_RUNS = 5  # measurements of 20 round-robin rounds each; the median ratio is reported


QUICK_STAND_INS = {
    "mnist": "mnist5k",
    "mnist-back": "mnist5k-back",
    "mnist-rot-back": "mnist5k-rot-back",
}


def _steps_per_epoch(num_train: int) -> int:
    return num_train // BATCH  # the recipe's loader drops the last incomplete batch


def overrides(dataset: str, variant: str, seed: int, *, quick: bool) -> dict[str, Any]:
    """The ``sgn`` recipe's settings for one row of one seed."""
    num_train = QUICK_SIZE if quick else NUM_TRAIN
    epochs = 1 if quick else EPOCHS[dataset]
    return {
        # --quick has no FRUGALCV_DATA to rely on: it uses the embedded mnist5k stand-ins
        "data.name": QUICK_STAND_INS[dataset] if quick else dataset,
        "data.num_train": num_train,
        "data.num_test": QUICK_SIZE if quick else 0,  # 0 = all 10,000 test images
        "data.augment": True,  # pad 3 px and random crop, every row
        "data.flip": False,
        "model.variant": variant,
        "model.variants": (),
        "model.backbone": BACKBONE,
        "model.ceil_mode": True,  # 28 px -> 7x7 maps: last row/column of 2x2 patches is 1 px
        "optim.name": "adamw",
        "optim.lr": 3e-3,
        "optim.weight_decay": 1e-4,
        "optim.schedule": "cosine",
        "optim.warmup_steps": 0,
        "train.batch_size": BATCH,
        "train.epochs": epochs,
        "train.eval_every": 0 if quick else _steps_per_epoch(num_train) * epochs // EVALS,
        "train.seed": seed,
    }


def job_name(dataset: str, variant: str, seed: int) -> str:
    return f"{dataset}/{variant}/seed{seed}"


STUDY_VARIANT = "cnn"  # the schedule studies' row: the baseline, seed 0, on every data set


def study_name(dataset: str) -> str:
    return "study/" + job_name(dataset, STUDY_VARIANT, 0)


def jobs(seeds: Sequence[int], quick: bool) -> list[Job]:
    """Every row and seed, plus (with seed 0, not --quick) the schedule studies: each data set's
    baseline at twice its epochs. Longest first, so that parallel jobs finish together."""
    by_length = sorted(DATASETS, key=lambda d: -EPOCHS[d])
    runs = [
        Job(
            name=job_name(dataset, variant, seed),
            recipe="sgn",
            overrides=overrides(dataset, variant, seed, quick=quick),
        )
        for dataset in by_length
        for variant in reversed(VARIANTS)  # the heaviest heads first
        for seed in seeds
    ]
    explain = [] if quick else explain_jobs(seeds)
    studies = []
    if 0 in seeds and not quick:
        for dataset in by_length:
            doubled = overrides(dataset, STUDY_VARIANT, 0, quick=False)
            doubled["train.epochs"] = 2 * EPOCHS[dataset]
            doubled["train.eval_every"] = 2 * doubled["train.eval_every"]
            studies.append(Job(name=study_name(dataset), recipe="sgn", overrides=doubled))
    return studies[:1] + explain + runs + studies[1:]


# Explanation tests of a claim that fails at the plateau (docs/methods/sgn.md): the sgn_mha row of
# mnist-rot-back, seeds 0 and 1, re-run under one changed condition each, compared with cnn_mha
# of the same seeds. The backbone gradient through the graph is the reconstruction most likely to
# differ from the authors' (who would train end to end; here the graph is built on detached
# features by default).
EXPLAIN_DATASET = "mnist-rot-back"
EXPLAIN_SEEDS = (0, 1)
EXPLAIN_TAG = "seeds " + ", ".join(map(str, EXPLAIN_SEEDS))
EXPLAIN = {  # job folder -> (label, changed settings)
    "graph_grad": ("backbone trained through the graph", {"model.detach_graph": False}),
}


def explain_jobs(seeds: Sequence[int]) -> list[Job]:
    if not set(EXPLAIN_SEEDS) <= set(seeds):
        return []
    return [
        Job(
            name=f"explain/{key}/" + job_name(EXPLAIN_DATASET, "sgn_mha", seed),
            recipe="sgn",
            overrides={**overrides(EXPLAIN_DATASET, "sgn_mha", seed, quick=False), **changed},
        )
        for key, (_, changed) in EXPLAIN.items()
        for seed in EXPLAIN_SEEDS
    ]


def _explain_row(variant: str, label: str | None = None) -> str:
    return f"{EXPLAIN_DATASET}/{variant} [{label + ', ' if label else ''}{EXPLAIN_TAG}]"


def explain_rows(seeds: Sequence[int]) -> list[RowSpec]:
    if not set(EXPLAIN_SEEDS) <= set(seeds):
        return []
    out = [
        RowSpec(
            name=_explain_row("cnn_mha"),
            sources=tuple(Source(job_name(EXPLAIN_DATASET, "cnn_mha", s)) for s in EXPLAIN_SEEDS),
            metric="acc",
        )
    ]
    for key, (label, _) in EXPLAIN.items():
        out.append(
            RowSpec(
                name=_explain_row("sgn_mha", label),
                sources=tuple(
                    Source(f"explain/{key}/" + job_name(EXPLAIN_DATASET, "sgn_mha", s))
                    for s in EXPLAIN_SEEDS
                ),
                metric="acc",
            )
        )
    return out


def explain_claims() -> tuple[Claim, ...]:
    return tuple(
        Claim(
            text=f"[{label}, {EXPLAIN_TAG}] SGN adds to MHA on {EXPLAIN_DATASET}",
            left=_explain_row("sgn_mha", label),
            op=">",
            right=_explain_row("cnn_mha"),
            explains=f"SGN adds to MHA on {EXPLAIN_DATASET}",
        )
        for label, _ in EXPLAIN.values()
    )


def rows(seeds: Sequence[int]) -> list[RowSpec]:
    return [
        RowSpec(
            name=f"{dataset}/{variant}",
            sources=tuple(Source(job_name(dataset, variant, seed)) for seed in seeds),
            metric="acc",
            copy=("params", "macs", "data_source"),
            mean={"best_acc_mean": "best.acc", "train_s_mean": "wall_s"},
        )
        for dataset in DATASETS
        for variant in VARIANTS
    ]


def graph_speed(plan) -> dict[str, dict[str, Any]]:
    """Images/s of the graph features and of the CNN forward, one run on the first seed's
    ``sgn`` model of the first data set (untrained weights: the cost does not depend on them)."""
    import torch

    from frugalcv.signature.measure import graph_speed_ratio
    from frugalcv.signature.recipe import load_data, make_model

    cfg = plan.config(job_name(DATASETS[0], "sgn", plan.seeds[0]))
    data = load_data(cfg.data, seed=cfg.train.seed)
    torch.manual_seed(0)
    model = make_model(cfg.model, "sgn", data)
    x = data.x_test[: 32 if plan.quick else SPEED_BATCH]
    repeats = 3 if plan.quick else 20
    # several measurements, the median kept: on a shared 2-core VM one measurement of the CNN
    # forward ranged over 2x (docs/methods/sgn.md, "Measured here")
    runs = [
        graph_speed_ratio(model, x, warmup=1 if plan.quick else 10, repeats=repeats)
        for _ in range(1 if plan.quick else SPEED_RUNS)
    ]
    out = sorted(runs, key=lambda r: r["ratio"])[len(runs) // 2]
    speed = {
        "graph_images_per_s": round(out["graph_images_per_s"], 1),
        "cnn_images_per_s": round(out["cnn_images_per_s"], 1),
        "graph_vs_cnn_speed": round(out["ratio"], 3),
        "graph_vs_cnn_speed_min": round(min(r["ratio"] for r in runs), 3),
        "graph_vs_cnn_speed_max": round(max(r["ratio"] for r in runs), 3),
        "speed_threads": out["num_threads"],
    }
    out = {f"{dataset}/{v}": speed for dataset in DATASETS for v in ("sgn", "sgn_mha")}
    # the CNN forward against itself: the cost claim's reference side
    out.update({f"{dataset}/cnn": {"graph_vs_cnn_speed": 1.0} for dataset in DATASETS})
    return out


COST_CLAIM = Claim(  # speed is measured once (untrained weights), so one claim for all sets
    text="the graph features cost less than the CNN forward they augment (images/s ratio > 1)",
    left=f"{DATASETS[0]}/sgn",
    op=">",
    right=f"{DATASETS[0]}/cnn",
    column="graph_vs_cnn_speed",
)


BENCHMARK = Benchmark(
    name="sgn",
    about="SGN: tiny_cnn alone / +MHA / +SGN / +SGN+MHA on mnist, mnist-back, mnist-rot-back",
    dataset=", ".join(DATASETS),
    metric="test accuracy (final epoch)",
    higher_is_better=True,
    jobs=jobs,
    rows=rows,
    claims=tuple(
        claim
        for dataset in DATASETS
        for claim in (
            Claim(
                text=f"SGN improves its CNN on {dataset}",
                left=f"{dataset}/sgn",
                op=">",
                right=f"{dataset}/cnn",
            ),
            Claim(
                text=f"SGN adds to MHA on {dataset}",
                left=f"{dataset}/sgn_mha",
                op=">",
                right=f"{dataset}/cnn_mha",
            ),
        )
    )
    + (COST_CLAIM,)
    + explain_claims(),
    notes=f"{BACKBONE} backbone (the same init per seed in every row; rows differ only in the "
    f"head), {NUM_TRAIN} training images (class-stratified subset), all 10000 test images, "
    "epochs per data set "
    + ", ".join(f"{d} {e}" for d, e in EPOCHS.items())
    + " (each with its own E -> 2E check on the cnn row), AdamW lr 3e-3 wd 1e-4, cosine decay, "
    f"batch {BATCH}, pad-3 random crop; "
    "graph: 2x2 patches (ceil mode on the 7x7 maps), max+min nodes, bilateral weights, "
    "normalised Laplacian, 4 channel groups, graph built on detached features (no backbone "
    "gradient through it); value = accuracy after the last epoch (test set "
    f"evaluated {EVALS} times per run; best mean in extra). Cost claim: extra "
    "graph_vs_cnn_speed = images/s of the graph features alone / images/s of the CNN "
    f"forward_features, batch {SPEED_BATCH}, medians of 20 rounds timing the two round-robin "
    f"after 10 warm-up rounds; the median of {SPEED_RUNS} such measurements (their range in "
    "graph_vs_cnn_speed_min/max), untrained weights; the cnn rows carry 1.0, the CNN against "
    "itself. "
    "--quick uses the embedded mnist5k stand-ins (mnist5k, mnist5k-back, mnist5k-rot-back).",
    measure=graph_speed,
    explain_rows=explain_rows,
    schedule_checks=tuple(
        ScheduleCheck(
            row=f"{dataset}/{STUDY_VARIANT}",
            what=f"epochs {EPOCHS[dataset]} -> {2 * EPOCHS[dataset]}",
            at=Source(job_name(dataset, STUDY_VARIANT, 0)),
            doubled=Source(study_name(dataset)),
            metric="acc",
        )
        for dataset in DATASETS
    ),
)
