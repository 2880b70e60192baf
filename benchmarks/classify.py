"""Baseline accuracies on the shared hard digit tasks (mnist-back, mnist-rot-back), 3 seeds.

    frugalcv bench classify            # FRUGALCV_DATA=../shared/data for full-MNIST digits

Every method's benchmark reuses these models and schedules as its baseline row.
"""

from __future__ import annotations

import time

from frugalcv import classify
from frugalcv.core.bench import finish, run_dir, scaled_milestones
from frugalcv.core.config import apply_overrides
from frugalcv.core.results import Row

DATASETS = ("mnist-back", "mnist-rot-back")
MODELS = ("tiny_cnn", "resnet8", "resnet8x2")
EPOCHS = 6


def config(dataset: str, model: str, seed: int, *, quick: bool) -> classify.Config:
    cfg = classify.tiny()
    return apply_overrides(
        cfg,
        {
            "data.name": dataset,
            "data.num_train": 300 if quick else 6000,  # of the 12000 built from full MNIST
            "data.num_test": 300 if quick else 0,  # 0 = all (10000 from full MNIST)
            "model.name": model,
            "optim.lr": 0.05,  # RepDistiller / ICKD
            "optim.schedule": "multistep",
            "optim.milestones": scaled_milestones(EPOCHS),
            "optim.warmup_steps": 0,
            "train.epochs": 1 if quick else EPOCHS,
            "train.seed": seed,
            "train.progress": False,
            "train.out_dir": run_dir(
                "classify" + ("_quick" if quick else ""), dataset, model, f"seed{seed}"
            ),
        },
    )


def main(*, seeds: list[int], quick: bool = False) -> dict:
    t0 = time.time()
    rows = []
    for dataset in DATASETS:
        for model in MODELS:
            runs = [
                classify.run(config(dataset, model, seed, quick=quick), preset="bench")
                for seed in seeds
            ]
            extra = {
                "params": runs[0]["params"],
                "macs": runs[0]["macs"],
                "data_source": runs[0]["data_source"],
                "best_acc_mean": sum(r["best"]["acc"] for r in runs) / len(runs),
                "train_s_mean": round(sum(r["wall_s"] for r in runs) / len(runs), 1),
            }
            rows.append(
                Row(
                    name=f"{dataset}/{model}", values=[r["final"]["acc"] for r in runs], extra=extra
                )
            )
    return finish(
        "classify",
        dataset=", ".join(DATASETS),
        metric="test accuracy (final epoch)",
        higher_is_better=True,
        seeds=seeds,
        rows=rows,
        quick=quick,
        t0=t0,
        notes="6000 training images, 6 epochs, SGD 0.05 momentum 0.9 wd 5e-4, lr x0.1 at "
        "150/180/210 of 240 (scaled), batch 64, pad-crop augmentation; value = accuracy "
        "after the last epoch (best-epoch mean in extra).",
    )
