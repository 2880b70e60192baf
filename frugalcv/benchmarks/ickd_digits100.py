"""ICKD on a many-class miniature of CIFAR-100: the ``ickd`` rows on 100 two-digit classes.

    FRUGALCV_DATA=<folder holding MNIST/raw> frugalcv bench ickd_digits100 --jobs 14

``mnist-rot-back-2digit`` (:mod:`frugalcv.data.twodigit`): 100 classes "00".."99", each image two
mnist-rot-back digits side by side (28 x 56), 20000 training images from MNIST's training digits
and 4000 test images from its test digits, balanced over the classes. Class relations carry
information here (``"37"`` resembles ``"35"`` and ``"87"``), as in CIFAR-100, which is what KD's
soft targets and ICKD's channel correlations are meant to transfer.

Same teacher, student, rows, weights and schedule rule as ``frugalcv bench ickd`` (resnet32x4
trained once, seed 0 -> resnet8, one job per seed and row, doubled-schedule checks for the
teacher and the student alone); the epochs are set so the students take about as many steps as
in ``ickd`` (20 x 312 = 6.2k steps of 64).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from frugalcv.benchmarks import ickd
from frugalcv.benchmarks.spec import Benchmark, Claim, Job, RowSpec, Source

EPOCHS = 20  # every student row: 20 x 312 = 6.2k steps of 64 on 20000 images
TEACHER_EPOCHS = 20  # the teacher, trained once (seed 0)
NUM_TRAIN = 20000  # the data set's default size
NUM_TEST = 4000
QUICK_TRAIN, QUICK_TEST = 100, 100  # --quick: one image per class, embedded digits


def data_overrides(*, quick: bool) -> dict[str, Any]:
    """Full MNIST for the benchmark; the embedded 5000 digits for --quick."""
    return {
        "data.name": "mnist5k-rot-back-2digit" if quick else "mnist-rot-back-2digit",
        "data.num_train": QUICK_TRAIN if quick else NUM_TRAIN,
        "data.num_test": QUICK_TEST if quick else NUM_TEST,
    }


# Explanation test (issue #8): the 20-epoch schedule failed the one-point check (the student
# alone gained 2.3 points at 40 epochs), so the claims are re-stated with every row at 40 epochs
# on the first two seeds (same teacher; about 7 GPU-minutes, see the page).
X2_SEEDS = 2
X2_TAG = f"[{2 * EPOCHS} epochs, {X2_SEEDS} seeds]"


def jobs(seeds: Sequence[int], quick: bool) -> list[Job]:
    data = data_overrides(quick=quick)
    out = ickd.make_jobs(seeds, quick, data=data, epochs=EPOCHS, teacher_epochs=TEACHER_EPOCHS)
    if not quick:
        out += [
            ickd.student_job(
                f"explain/x2/seed{seed}/{row}",
                row,
                seed,
                data=data,
                teacher=ickd.TEACHER,
                student=ickd.STUDENT,
                epochs=2 * EPOCHS,
                quick=False,
            )
            for seed in seeds[:X2_SEEDS]
            for row in ickd.ROWS
        ]
    return out


def rows(seeds: Sequence[int]) -> list[RowSpec]:
    return ickd.make_rows(seeds, teacher_epochs=TEACHER_EPOCHS)


def explain_rows(seeds: Sequence[int]) -> list[RowSpec]:
    return [
        RowSpec(
            name=f"{ickd.row_label(row)} {X2_TAG}",
            sources=tuple(
                Source(f"explain/x2/seed{seed}/{row}", row=row) for seed in seeds[:X2_SEEDS]
            ),
            metric="acc",
            mean={"best_acc_mean": "best.acc"},
        )
        for row in ickd.ROWS
    ]


PAPER_CLAIMS = ickd.make_claims()
EXPLAIN_CLAIMS = tuple(
    Claim(
        text=f"{X2_TAG} {c.text}",
        left=f"{c.left} {X2_TAG}",
        op=c.op,
        right=f"{c.right} {X2_TAG}",
        margin=c.margin,
        explains=c.text,
    )
    for c in PAPER_CLAIMS
    if not c.text.startswith("precondition")
)


BENCHMARK = Benchmark(
    name="ickd_digits100",
    about="ICKD at a plateau on 100 two-digit classes (mnist-rot-back-2digit), ickd's rows",
    dataset="mnist-rot-back-2digit",
    metric="test accuracy (final epoch, 100 classes)",
    higher_is_better=True,
    jobs=jobs,
    rows=rows,
    claims=PAPER_CLAIMS + EXPLAIN_CLAIMS,
    explain_rows=explain_rows,
    notes=ickd.notes(
        data=f"mnist-rot-back-2digit, {NUM_TRAIN} training / {NUM_TEST} test images (28x56, "
        "100 classes)",
        epochs=EPOCHS,
        teacher_epochs=TEACHER_EPOCHS,
    ),
    measure=ickd.make_step_cost(),
    schedule_checks=ickd.make_checks(epochs=EPOCHS, teacher_epochs=TEACHER_EPOCHS),
)
