"""Grid-level ICKD for dense prediction in miniature: student alone vs + grid ICKD (1x1, 4x4).

    frugalcv bench ickd_seg

Digits pasted on natural-image patches (embedded), per-pixel classes, mIoU. As in the paper, the
students distil from one fixed, fully trained teacher: fcn_resnet20 trained once for 45 epochs;
every student row trains 15 epochs with the same data, schedule and initialisation. The
``weak_teacher`` rows repeat the comparison under a teacher trained with the students' own
15-epoch schedule.
"""

from __future__ import annotations

import time
from pathlib import Path

from frugalcv.core.bench import finish, run_dir
from frugalcv.core.config import apply_overrides
from frugalcv.core.results import Row
from frugalcv.distill import seg_recipe

EPOCHS = 15  # every student row
TEACHER_EPOCHS = 45  # the teacher, trained once
GRIDS = (1, 4)


def config(seed: int, *, quick: bool, teacher_ckpt: str, folder: str) -> seg_recipe.Config:
    return apply_overrides(
        seg_recipe.tiny(),
        {
            "data.num_train": 200 if quick else 2000,
            "data.num_test": 100 if quick else 500,
            "data.image_size": 32,
            "distill.teacher": "fcn_resnet20",
            "distill.student": "fcn_resnet8",
            "distill.teacher_ckpt": teacher_ckpt,
            "distill.grids": ",".join(map(str, GRIDS)),
            "optim.lr": 0.1,
            "train.epochs": 1 if quick else EPOCHS,
            "train.seed": seed,
            "train.progress": False,
            "train.out_dir": run_dir(
                "ickd_seg" + ("_quick" if quick else ""), *folder.split("/"), f"seed{seed}"
            ),
        },
    )


def _teacher_row(summary: dict, name: str) -> Row:
    return Row(
        name=name,
        values=[summary["final"]["miou"]],
        extra={
            "params": summary["params"],
            "macs": summary["macs"],
            "pixel_acc_mean": summary["final"]["pixel_acc"],
        },
    )


def _rows(per_seed: list[dict], label: str) -> list[Row]:
    rows = []
    for name in ("student", *(f"grid{g}x{g}" for g in GRIDS)):
        runs = [p[name] for p in per_seed]
        what = "alone" if name == "student" else f"+ ICKD {name[4:]}"
        rows.append(
            Row(
                name=f"fcn_resnet8 {what}{label}",
                values=[r["final"]["miou"] for r in runs],
                extra={
                    "params": runs[0]["params"],
                    "macs": runs[0]["macs"],
                    "pixel_acc_mean": sum(r["final"]["pixel_acc"] for r in runs) / len(runs),
                    "best_miou_mean": sum(r["best"]["miou"] for r in runs) / len(runs),
                },
            )
        )
    return rows


def main(*, seeds: list[int], quick: bool = False) -> dict:
    t0 = time.time()
    # The fully trained teacher (45 epochs), then every seed's student rows under it.
    tcfg = apply_overrides(
        config(0, quick=quick, teacher_ckpt="", folder="teacher45"),
        {
            "distill.teacher_only": True,
            "train.epochs": 1 if quick else TEACHER_EPOCHS,
            "train.out_dir": run_dir("ickd_seg" + ("_quick" if quick else ""), "teacher45"),
        },
    )
    teacher = seg_recipe.run(tcfg, preset="bench")["rows"][0]
    ckpt = str(Path(tcfg.train.out_dir) / "teacher" / "last.pt")
    strong = [
        {
            r["name"]: r
            for r in seg_recipe.run(
                config(seed, quick=quick, teacher_ckpt=ckpt, folder="teacher45"), preset="bench"
            )["rows"]
        }
        for seed in seeds
    ]
    # The same rows under a teacher trained with the students' schedule (first seed trains it).
    weak, weak_ckpt = [], ""
    for seed in seeds:
        cfg = config(seed, quick=quick, teacher_ckpt=weak_ckpt, folder=".")
        weak.append({r["name"]: r for r in seg_recipe.run(cfg, preset="bench")["rows"]})
        weak_ckpt = weak_ckpt or str(Path(cfg.train.out_dir) / "teacher" / "last.pt")
    rows = [_teacher_row(teacher, f"teacher fcn_resnet20 ({TEACHER_EPOCHS} epochs)")]
    rows += _rows(strong, "")
    rows.append(_teacher_row(weak[0]["teacher"], f"weak teacher fcn_resnet20 ({EPOCHS} epochs)"))
    rows += _rows(weak, " (weak teacher)")
    return finish(
        "ickd_seg",
        dataset="digit-scenes (embedded, 32 px, 2000 train / 500 test)",
        metric="test mIoU (final epoch, 11 classes incl. background)",
        higher_is_better=True,
        seeds=seeds,
        rows=rows,
        quick=quick,
        t0=t0,
        notes=f"fcn_resnet20 teacher ({TEACHER_EPOCHS} epochs, trained once) -> fcn_resnet8; "
        f"{EPOCHS} epochs for every student row, SGD 0.1 cosine, batch 32; grid ICKD beta "
        "2.5 (official_cifar normalisation, 1x1 embed) on the backbone's last map (8x8 at "
        f"32 px). Weak-teacher rows: the teacher trained {EPOCHS} epochs inside the recipe "
        "(first seed) and shared. Teachers trained once, so their rows have one value.",
    )
