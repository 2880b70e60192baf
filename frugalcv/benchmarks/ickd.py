"""ICKD's claim in miniature: student + ICKD (+KD) vs + KD vs alone, same epochs, 3 seeds.

    FRUGALCV_DATA=<folder holding MNIST/raw> frugalcv bench ickd

As in the paper, the students distil from one fixed, fully trained teacher: resnet8x2 trained once
for 18 epochs (plain ``classify``), then every student row trains 6 epochs on the same data with
the same schedule and initialisation. Also measures each loss's training-step cost relative to
plain CE. ``frugalcv bench ickd_ablation`` repeats the rows under a 6-epoch teacher and sweeps the
ICKD weight.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from frugalcv.benchmarks.spec import (
    Benchmark,
    Claim,
    Job,
    Output,
    RowSpec,
    Source,
    scaled_milestones,
)

EPOCHS = 6  # every student row
TEACHER_EPOCHS = 18  # the teacher, trained once
ROWS = ("student", "kd", "ickd", "ickd_kd")
QUICK_SIZE = 128  # --quick: training and test images


def base_overrides(*, quick: bool) -> dict[str, Any]:
    """Data and optimiser settings shared by the teacher and every student row."""
    return {
        "data.name": "mnist-rot-back",
        "data.num_train": QUICK_SIZE if quick else 6000,  # of the 12000 built from full MNIST
        "data.num_test": QUICK_SIZE if quick else 0,  # 0 = all (10000 from full MNIST)
        "optim.lr": 0.05,  # RepDistiller / ICKD CIFAR
        "optim.momentum": 0.9,
        "optim.weight_decay": 5e-4,
        "optim.schedule": "multistep",
        "optim.warmup_steps": 0,
        "train.batch_size": 64,
    }


def student_overrides(seed: int, *, quick: bool) -> dict[str, Any]:
    """The ``ickd`` recipe's settings for one seed's student rows (teacher_ckpt left out)."""
    return {
        **base_overrides(quick=quick),
        "distill.teacher": "resnet8x2",
        "distill.student": "resnet8",
        "distill.rows": ROWS,
        "distill.ce": 1.0,  # gamma
        "distill.kd": 1.0,  # alpha
        "distill.ickd": 2.5,  # beta (authors' README)
        "distill.temperature": 4.0,
        "optim.milestones": scaled_milestones(EPOCHS),
        "train.epochs": 1 if quick else EPOCHS,
        "train.seed": seed,
    }


def row_label(row: str) -> str:
    return "resnet8 alone" if row == "student" else f"resnet8 {row.replace('_', '+')}"


def jobs(seeds: Sequence[int], quick: bool) -> list[Job]:
    teacher = Job(
        name="teacher18",
        recipe="classify",
        overrides={
            **base_overrides(quick=quick),
            "model.name": "resnet8x2",
            "train.epochs": 1 if quick else TEACHER_EPOCHS,
            "optim.milestones": scaled_milestones(TEACHER_EPOCHS),
            "train.seed": 0,
        },
    )
    students = [
        Job(
            name=f"seed{seed}",
            recipe="ickd",
            overrides={
                **student_overrides(seed, quick=quick),
                "distill.teacher_ckpt": Output("teacher18", "last.pt"),
            },
        )
        for seed in seeds
    ]
    return [teacher, *students]


def rows(seeds: Sequence[int]) -> list[RowSpec]:
    teacher = RowSpec(
        name="teacher (resnet8x2)",
        sources=(Source("teacher18"),),
        metric="acc",
        copy=("params", "macs"),
        extra={"note": f"trained once, {TEACHER_EPOCHS} epochs"},
    )
    return [teacher] + [
        RowSpec(
            name=row_label(row),
            sources=tuple(Source(f"seed{seed}", row=row) for seed in seeds),
            metric="acc",
            copy=("params", "macs"),
            mean={"best_acc_mean": "best.acc"},
        )
        for row in ROWS
    ]


def step_seconds(cfg: Any, teacher_ckpt: str | Path, *, steps: int) -> dict[str, float]:
    """Median seconds per training step (forward, backward, SGD) of each row, batch of 64.

    The one place that builds the ``ickd`` recipe's row tasks outside the recipe.
    """
    import torch

    from frugalcv.classify import load_data
    from frugalcv.distill import recipes

    data = load_data(cfg.data, seed=0)
    x, y = data.x_train[:64], data.y_train[:64]
    teacher = recipes.load_teacher(cfg, data, teacher_ckpt)
    out = {}
    for row in ROWS:
        student = recipes._create(cfg.distill.student, data)
        task = recipes.make_distill_task(cfg.distill, row, student=student, teacher=teacher)
        params = [p for p in task.parameters() if p.requires_grad]
        opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
        times = []
        for i in range(steps + 3):
            t = time.perf_counter()
            opt.zero_grad()
            task.training_step((x, y))["loss"].backward()
            opt.step()
            if i >= 3:  # warm-up
                times.append(time.perf_counter() - t)
        out[row] = sorted(times)[len(times) // 2]
    return out


def step_cost(plan) -> dict[str, dict[str, Any]]:
    """``step_s`` and ``step_cost_vs_ce`` per student row (first seed's config, one run)."""
    cfg = plan.config(f"seed{plan.seeds[0]}")
    seconds = step_seconds(cfg, plan.dir("teacher18") / "last.pt", steps=3 if plan.quick else 15)
    return {
        row_label(row): {
            "step_s": round(seconds[row], 4),
            "step_cost_vs_ce": round(seconds[row] / seconds["student"], 2),
        }
        for row in ROWS
    }


BENCHMARK = Benchmark(
    name="ickd",
    about="ICKD: resnet8 alone / +KD / +ICKD / +ICKD+KD under an 18-epoch resnet8x2 teacher",
    dataset="mnist-rot-back",
    metric="test accuracy (final epoch)",
    higher_is_better=True,
    jobs=jobs,
    rows=rows,
    claims=(
        Claim(text="ICKD improves the student", left="resnet8 ickd", op=">", right="resnet8 alone"),
        Claim(text="ICKD adds to KD", left="resnet8 ickd+kd", op=">", right="resnet8 kd"),
        Claim(text="KD improves the student", left="resnet8 kd", op=">", right="resnet8 alone"),
    ),
    notes=f"resnet8x2 teacher ({TEACHER_EPOCHS} epochs, trained once) -> resnet8; 6000 "
    f"training images, {EPOCHS} epochs for every student row, SGD 0.05 momentum 0.9, "
    "lr x0.1 at 150/180/210 of 240 (scaled), batch 64, pad-crop; CE 1, KD alpha 1 at "
    "T=4, ICKD beta 2.5 (official_cifar normalisation, 1x1 embed). step_cost_vs_ce: "
    "median seconds per training step (batch 64, 1 thread when run with "
    "OMP_NUM_THREADS=1) relative to the CE-only student, one run.",
    measure=step_cost,
)
