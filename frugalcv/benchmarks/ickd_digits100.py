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
from frugalcv.benchmarks.spec import Benchmark, Job, RowSpec

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


def jobs(seeds: Sequence[int], quick: bool) -> list[Job]:
    return ickd.make_jobs(
        seeds,
        quick,
        data=data_overrides(quick=quick),
        epochs=EPOCHS,
        teacher_epochs=TEACHER_EPOCHS,
    )


def rows(seeds: Sequence[int]) -> list[RowSpec]:
    return ickd.make_rows(seeds, teacher_epochs=TEACHER_EPOCHS)


BENCHMARK = Benchmark(
    name="ickd_digits100",
    about="ICKD at a plateau on 100 two-digit classes (mnist-rot-back-2digit), ickd's rows",
    dataset="mnist-rot-back-2digit",
    metric="test accuracy (final epoch, 100 classes)",
    higher_is_better=True,
    jobs=jobs,
    rows=rows,
    claims=ickd.make_claims(),
    notes=ickd.notes(
        data=f"mnist-rot-back-2digit, {NUM_TRAIN} training / {NUM_TEST} test images (28x56, "
        "100 classes)",
        epochs=EPOCHS,
        teacher_epochs=TEACHER_EPOCHS,
    ),
    measure=ickd.make_step_cost(),
    schedule_checks=ickd.make_checks(epochs=EPOCHS, teacher_epochs=TEACHER_EPOCHS),
)
