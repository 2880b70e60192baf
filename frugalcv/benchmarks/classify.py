"""Baseline accuracies on the shared hard digit tasks (mnist-back, mnist-rot-back), 3 seeds.

    FRUGALCV_DATA=<folder holding MNIST/raw> frugalcv bench classify

Every method's benchmark reuses these models and schedules as its baseline row.
"""

from __future__ import annotations

from collections.abc import Sequence

from frugalcv.benchmarks.spec import Benchmark, Claim, Job, RowSpec, Source, scaled_milestones

DATASETS = ("mnist-back", "mnist-rot-back")
MODELS = ("tiny_cnn", "resnet8", "resnet8x2")
EPOCHS = 6
QUICK_SIZE = 128  # --quick: training and test images


def jobs(seeds: Sequence[int], quick: bool) -> list[Job]:
    return [
        Job(
            name=f"{dataset}/{model}/seed{seed}",
            recipe="classify",
            overrides={
                "data.name": dataset,
                "data.num_train": QUICK_SIZE if quick else 6000,  # of the 12000 from full MNIST
                "data.num_test": QUICK_SIZE if quick else 0,  # 0 = all (10000 from full MNIST)
                "model.name": model,
                "optim.lr": 0.05,  # RepDistiller / ICKD
                "optim.momentum": 0.9,
                "optim.weight_decay": 5e-4,
                "optim.schedule": "multistep",
                "optim.milestones": scaled_milestones(EPOCHS),
                "optim.warmup_steps": 0,
                "train.batch_size": 64,
                "train.epochs": 1 if quick else EPOCHS,
                "train.seed": seed,
            },
        )
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
    notes="6000 training images, 6 epochs, SGD 0.05 momentum 0.9 wd 5e-4, lr x0.1 at "
    "150/180/210 of 240 (scaled), batch 64, pad-crop augmentation; value = accuracy "
    "after the last epoch (best-epoch mean in extra).",
)
