"""ICKD's claim in miniature: student + ICKD (+KD) vs + KD vs alone, same epochs, 3 seeds.

    FRUGALCV_DATA=../shared/data frugalcv bench ickd

As in the paper, the students distil from one fixed, fully trained teacher: resnet8x2 trained once
for 18 epochs (plain ``classify``), then every student row trains 6 epochs on the same data with
the same schedule and initialisation. Also measures each loss's training-step cost relative to
plain CE. ``frugalcv bench ickd_ablation`` repeats the rows under a 6-epoch teacher and sweeps the
ICKD weight.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from frugalcv import classify
from frugalcv.classify import load_data
from frugalcv.core.bench import finish, run_dir, scaled_milestones
from frugalcv.core.config import apply_overrides
from frugalcv.core.results import Row
from frugalcv.distill import recipes

EPOCHS = 6  # every student row
TEACHER_EPOCHS = 18  # the teacher, trained once
ROWS = ("student", "kd", "ickd", "ickd_kd")


def base_overrides(*, quick: bool) -> dict:
    """Data and optimiser settings shared by the teacher and every student row."""
    return {
        "data.name": "mnist-rot-back",
        "data.num_train": 300 if quick else 6000,  # of the 12000 built from full MNIST
        "data.num_test": 300 if quick else 0,  # 0 = all (10000 from full MNIST)
        "optim.lr": 0.05,  # RepDistiller / ICKD CIFAR
        "optim.schedule": "multistep",
        "optim.warmup_steps": 0,
        "train.progress": False,
    }


def train_teacher(*, quick: bool) -> dict:
    """resnet8x2 trained ``TEACHER_EPOCHS`` epochs with ``classify`` (resumed if already done)."""
    epochs = 1 if quick else TEACHER_EPOCHS
    cfg = apply_overrides(
        classify.tiny(),
        {
            **base_overrides(quick=quick),
            "model.name": "resnet8x2",
            "train.epochs": epochs,
            "optim.milestones": scaled_milestones(TEACHER_EPOCHS),
            "train.out_dir": run_dir("ickd" + ("_quick" if quick else ""), "teacher18", "teacher"),
        },
    )
    s = classify.run(cfg, preset="bench")
    return {**s, "ckpt": str(Path(cfg.train.out_dir) / "last.pt")}


def config(seed: int, *, quick: bool, teacher_ckpt: str) -> recipes.Config:
    return apply_overrides(
        recipes.tiny(),
        {
            **base_overrides(quick=quick),
            "distill.teacher": "resnet8x2",
            "distill.student": "resnet8",
            "distill.teacher_ckpt": teacher_ckpt,
            "distill.rows": ",".join(ROWS),
            "optim.milestones": scaled_milestones(EPOCHS),
            "train.epochs": 1 if quick else EPOCHS,
            "train.seed": seed,
            "train.out_dir": run_dir(
                "ickd" + ("_quick" if quick else ""), "teacher18", f"seed{seed}"
            ),
        },
    )


def step_cost(cfg: recipes.Config, teacher_ckpt: str, *, steps: int = 15) -> dict[str, float]:
    """Median seconds per training step (forward, backward, SGD) of each row on one batch of 64."""
    data = load_data(cfg.data, seed=0)
    x, y = data.x_train[:64], data.y_train[:64]
    teacher = recipes.load_teacher(recipes._create(cfg.distill.teacher, data), teacher_ckpt)
    out = {}
    for row in ROWS:
        student = recipes._create(cfg.distill.student, data)
        task = recipes.make_distill_task(cfg.distill, row, student=student, teacher=teacher)
        opt = torch.optim.SGD(task.trainable_parameters(), lr=0.01, momentum=0.9)
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


def row_label(row: str) -> str:
    return "resnet8 alone" if row == "student" else f"resnet8 {row.replace('_', '+')}"


def main(*, seeds: list[int], quick: bool = False) -> dict:
    t0 = time.time()
    teacher = train_teacher(quick=quick)
    per_seed = []
    for seed in seeds:
        s = recipes.run(config(seed, quick=quick, teacher_ckpt=teacher["ckpt"]), preset="bench")
        per_seed.append({r["name"]: r for r in s["rows"]})
    cost = step_cost(config(seeds[0], quick=quick, teacher_ckpt=teacher["ckpt"]), teacher["ckpt"])
    rows = [
        Row(
            name="teacher (resnet8x2)",
            values=[teacher["final"]["acc"]],
            extra={
                "params": teacher["params"],
                "macs": teacher["macs"],
                "note": f"trained once, {TEACHER_EPOCHS} epochs",
            },
        )
    ]
    for row in ROWS:
        runs = [p[row] for p in per_seed]
        rows.append(
            Row(
                name=row_label(row),
                values=[r["final"]["acc"] for r in runs],
                extra={
                    "params": runs[0]["params"],
                    "macs": runs[0]["macs"],
                    "best_acc_mean": sum(r["best"]["acc"] for r in runs) / len(runs),
                    "step_s": round(cost[row], 4),
                    "step_cost_vs_ce": round(cost[row] / cost["student"], 2),
                },
            )
        )
    return finish(
        "ickd",
        dataset="mnist-rot-back",
        metric="test accuracy (final epoch)",
        higher_is_better=True,
        seeds=seeds,
        rows=rows,
        quick=quick,
        t0=t0,
        notes=f"resnet8x2 teacher ({TEACHER_EPOCHS} epochs, trained once) -> resnet8; 6000 "
        f"training images, {EPOCHS} epochs for every student row, SGD 0.05 momentum 0.9, "
        "lr x0.1 at 150/180/210 of 240 (scaled), batch 64, pad-crop; CE 1, KD alpha 1 at "
        "T=4, ICKD beta 2.5 (official_cifar normalisation, 1x1 embed). step_cost_vs_ce: "
        "median seconds per training step (batch 64, 1 thread when run with "
        "OMP_NUM_THREADS=1) relative to the CE-only student, one run.",
    )
