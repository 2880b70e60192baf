"""Grid-level ICKD for dense prediction in miniature: student alone vs + grid ICKD (1x1, 4x4).

    frugalcv bench ickd_seg

Digits pasted on natural-image patches (embedded), per-pixel classes, mIoU. As in the paper, the
students distil from one fixed, fully trained teacher: fcn_resnet20 trained once for 45 epochs;
every student row trains 15 epochs with the same data, schedule and initialisation. The
``weak teacher`` rows repeat the comparison under a teacher trained with the students' own
15-epoch schedule (first seed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from frugalcv.benchmarks.spec import Benchmark, Claim, Job, Output, RowSpec, Source

EPOCHS = 15  # every student row
TEACHER_EPOCHS = 45  # the teacher, trained once
GRIDS = (1, 4)


def overrides(seed: int, *, quick: bool) -> dict[str, Any]:
    """The ``ickd_seg`` recipe's settings for one seed (teacher_ckpt left out)."""
    return {
        "data.num_train": 64 if quick else 2000,
        "data.num_test": 32 if quick else 500,
        "data.image_size": 32,
        "distill.teacher": "fcn_resnet20",
        "distill.student": "fcn_resnet8",
        "distill.grids": GRIDS,
        "distill.ce": 1.0,
        "distill.ickd": 2.5,  # beta, as the authors' CIFAR code
        "optim.lr": 0.1,
        "optim.schedule": "cosine",
        "optim.warmup_steps": 10,
        "train.batch_size": 32,
        "train.epochs": 1 if quick else EPOCHS,
        "train.seed": seed,
    }


def jobs(seeds: Sequence[int], quick: bool) -> list[Job]:
    out = [
        Job(
            name="teacher45",
            recipe="ickd_seg",
            overrides={
                **overrides(0, quick=quick),
                "distill.teacher_only": True,
                "train.epochs": 1 if quick else TEACHER_EPOCHS,
            },
        ),
        Job(
            name="teacher15",
            recipe="ickd_seg",
            overrides={**overrides(seeds[0], quick=quick), "distill.teacher_only": True},
        ),
    ]
    for teacher, folder in (("teacher45", "strong"), ("teacher15", "weak")):
        out += [
            Job(
                name=f"{folder}/seed{seed}",
                recipe="ickd_seg",
                overrides={
                    **overrides(seed, quick=quick),
                    "distill.teacher_ckpt": Output(teacher, "teacher/last.pt"),
                },
            )
            for seed in seeds
        ]
    return out


def _teacher_row(job: str, name: str) -> RowSpec:
    return RowSpec(
        name=name,
        sources=(Source(job, row="teacher"),),
        metric="miou",
        copy=("params", "macs"),
        mean={"pixel_acc_mean": "final.pixel_acc"},
    )


def _student_rows(folder: str, seeds: Sequence[int], label: str) -> list[RowSpec]:
    out = []
    for row in ("student", *(f"grid{g}x{g}" for g in GRIDS)):
        what = "alone" if row == "student" else f"+ ICKD {row[4:]}"
        out.append(
            RowSpec(
                name=f"fcn_resnet8 {what}{label}",
                sources=tuple(Source(f"{folder}/seed{seed}", row=row) for seed in seeds),
                metric="miou",
                copy=("params", "macs"),
                mean={"pixel_acc_mean": "final.pixel_acc", "best_miou_mean": "best.miou"},
            )
        )
    return out


def rows(seeds: Sequence[int]) -> list[RowSpec]:
    return [
        _teacher_row("teacher45", f"teacher fcn_resnet20 ({TEACHER_EPOCHS} epochs)"),
        *_student_rows("strong", seeds, ""),
        _teacher_row("teacher15", f"weak teacher fcn_resnet20 ({EPOCHS} epochs)"),
        *_student_rows("weak", seeds, " (weak teacher)"),
    ]


BENCHMARK = Benchmark(
    name="ickd_seg",
    about="grid-level ICKD on embedded digit scenes: fcn_resnet8 alone vs + ICKD 1x1 / 4x4",
    dataset="digit-scenes (embedded, 32 px, 2000 train / 500 test)",
    metric="test mIoU (final epoch, 11 classes incl. background)",
    higher_is_better=True,
    jobs=jobs,
    rows=rows,
    claims=tuple(
        Claim(
            text=f"grid ICKD ({g}x{g}) improves the student on the dense task",
            left=f"fcn_resnet8 + ICKD {g}x{g}",
            op=">",
            right="fcn_resnet8 alone",
        )
        for g in GRIDS
    ),
    notes=f"fcn_resnet20 teacher ({TEACHER_EPOCHS} epochs, trained once) -> fcn_resnet8; "
    f"{EPOCHS} epochs for every student row, SGD 0.1 cosine, batch 32; grid ICKD beta "
    "2.5 (official_cifar normalisation, 1x1 embed) on the backbone's last map (8x8 at "
    f"32 px). Weak-teacher rows: the teacher trained {EPOCHS} epochs with the first seed "
    "and shared. Teachers trained once, so their rows have one value.",
)
