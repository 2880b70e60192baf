"""ICKD's claim in miniature: student + ICKD (+KD) vs + KD vs alone, same epochs, 3 seeds.

    FRUGALCV_DATA=../shared/data frugalcv bench ickd

The teacher is trained once (seed 0) and shared by every student seed, as the paper distils from
one fixed pretrained teacher. Also measures each loss's training-step cost relative to plain CE.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from frugalcv.classify import load_data
from frugalcv.core.bench import finish, run_dir
from frugalcv.core.config import apply_overrides
from frugalcv.core.results import Row
from frugalcv.distill import recipes

EPOCHS = 6
ROWS = ("student", "kd", "ickd", "ickd_kd")


def scaled_milestones(epochs: float) -> tuple[float, ...]:
    return tuple(epochs * m / 240 for m in (150, 180, 210))


def config(seed: int, *, quick: bool, teacher_ckpt: str = "") -> recipes.Config:
    name = "ickd" + ("_quick" if quick else "")
    return apply_overrides(
        recipes.tiny(),
        {
            "data.name": "mnist-rot-back",
            "data.num_train": 300 if quick else 6000,
            "data.num_test": 300 if quick else 0,
            "distill.teacher": "resnet8x2",
            "distill.student": "resnet8",
            "distill.teacher_ckpt": teacher_ckpt,
            "distill.rows": ",".join(ROWS),
            "optim.lr": 0.05,
            "optim.schedule": "multistep",
            "optim.milestones": scaled_milestones(EPOCHS),
            "optim.warmup_steps": 0,
            "train.epochs": 1 if quick else EPOCHS,
            "train.seed": seed,
            "train.progress": False,
            "train.out_dir": run_dir(name, f"seed{seed}"),
        },
    )


def step_cost(cfg: recipes.Config, teacher_ckpt: str, *, steps: int = 15) -> dict[str, float]:
    """Seconds per training step (forward, backward, SGD) of each row on one fixed batch."""
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
            if i >= 3:
                times.append(time.perf_counter() - t)
        out[row] = sorted(times)[len(times) // 2]
    return out


def main(*, seeds: list[int], quick: bool = False) -> dict:
    t0 = time.time()
    per_seed = []
    teacher_ckpt = ""
    for seed in seeds:
        s = recipes.run(config(seed, quick=quick, teacher_ckpt=teacher_ckpt), preset="bench")
        per_seed.append({r["name"]: r for r in s["rows"]})
        if not teacher_ckpt:
            teacher_ckpt = str(Path(config(seed, quick=quick).train.out_dir) / "teacher/last.pt")
    cost = step_cost(config(seeds[0], quick=quick), teacher_ckpt)
    teacher = per_seed[0]["teacher"]
    rows = [
        Row(
            name="teacher (resnet8x2)",
            values=[teacher["final"]["acc"]],
            extra={
                "params": teacher["params"],
                "macs": teacher["macs"],
                "note": "trained once (first seed), shared by all student seeds",
            },
        )
    ]
    for row in ROWS:
        runs = [p[row] for p in per_seed]
        rows.append(
            Row(
                name=f"resnet8 {row.replace('_', '+')}" if row != "student" else "resnet8 alone",
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
        command=f"frugalcv bench ickd --seeds {','.join(map(str, seeds))}",
        dataset="mnist-rot-back",
        metric="test accuracy (final epoch)",
        higher_is_better=True,
        seeds=seeds,
        rows=rows,
        quick=quick,
        t0=t0,
        notes=f"resnet8x2 -> resnet8; 6000 training images, {EPOCHS} epochs for every row, SGD "
        "0.05, lr x0.1 at 150/180/210 of 240 (scaled); CE 1, KD alpha 1 at T=4, ICKD beta "
        "2.5 (official_cifar normalisation, 1x1 embed). step_cost_vs_ce: median seconds per "
        "training step (batch 64) relative to the CE-only student, measured in one run.",
    )
