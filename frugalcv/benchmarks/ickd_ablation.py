"""Why ICKD trails here: the same rows under a weaker (6-epoch) teacher, and the ICKD weight swept.

    FRUGALCV_DATA=<folder holding MNIST/raw> frugalcv bench ickd_ablation --seeds 0,1

Settings of ``frugalcv bench ickd`` (resnet8x2 -> resnet8, 6000 images, 6 student epochs) except
the teacher: a resnet8x2 trained with the students' own 6-epoch schedule and the first seed
(job ``teacher6``, the ``ickd`` recipe with ``distill.teacher_only``), which every student job
loads. Rows: student alone, KD, and ICKD / ICKD+KD at beta 0.25, 1 and 2.5.
"""

from __future__ import annotations

from collections.abc import Sequence

from frugalcv.benchmarks.ickd import row_label, student_overrides
from frugalcv.benchmarks.spec import Benchmark, Claim, Job, Output, RowSpec, Source

BETAS = (0.25, 1.0, 2.5)  # 2.5 = the authors' README value
TEACHER = Output("teacher6", "teacher/last.pt")


def jobs(seeds: Sequence[int], quick: bool) -> list[Job]:
    out = [
        Job(
            name="teacher6",
            recipe="ickd",
            overrides={**student_overrides(seeds[0], quick=quick), "distill.teacher_only": True},
        )
    ]
    for seed in seeds:
        for beta in BETAS:
            # student and kd come only from the beta = 2.5 jobs
            job_rows = ("student", "kd", "ickd", "ickd_kd") if beta == 2.5 else ("ickd", "ickd_kd")
            out.append(
                Job(
                    name=f"seed{seed}/beta{beta}",
                    recipe="ickd",
                    overrides={
                        **student_overrides(seed, quick=quick),
                        "distill.rows": job_rows,
                        "distill.ickd": beta,
                        "distill.teacher_ckpt": TEACHER,
                    },
                )
            )
    return out


def rows(seeds: Sequence[int]) -> list[RowSpec]:
    def spec(row: str, beta: float, label: str) -> RowSpec:
        return RowSpec(
            name=label,
            sources=tuple(Source(f"seed{seed}/beta{beta}", row=row) for seed in seeds),
            metric="acc",
        )

    out = [
        RowSpec(
            name="6-epoch teacher (resnet8x2)",
            sources=(Source("teacher6", row="teacher"),),
            metric="acc",
        )
    ]
    out += [spec(row, 2.5, row_label(row)) for row in ("student", "kd")]
    out += [
        spec(row, beta, f"{row_label(row)} b={beta}")
        for row in ("ickd", "ickd_kd")
        for beta in BETAS
    ]
    return out


BENCHMARK = Benchmark(
    name="ickd_ablation",
    about="ICKD under a 6-epoch teacher, ICKD weight beta swept over 0.25, 1, 2.5",
    dataset="mnist-rot-back",
    metric="test accuracy (final epoch)",
    higher_is_better=True,
    jobs=jobs,
    rows=rows,
    claims=(
        Claim(
            text="ICKD improves the student (6-epoch teacher, beta 2.5)",
            left="resnet8 ickd b=2.5",
            op=">",
            right="resnet8 alone",
        ),
        Claim(
            text="ICKD adds to KD (6-epoch teacher, beta 2.5)",
            left="resnet8 ickd+kd b=2.5",
            op=">",
            right="resnet8 kd",
        ),
    ),
    notes="Settings of `frugalcv bench ickd` but a weaker teacher: resnet8x2 trained 6 epochs "
    "(the students' schedule; first seed, shared). beta = ICKD weight (2.5 = authors' README).",
    seeds=(0, 1),
)
