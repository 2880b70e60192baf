"""How long must the dsnet benchmark train its DS-ViT for the static baseline to plateau?

At 120 epochs the benchmark's schedule check holds for the CNN (full-width static row 0.8904 ->
0.8838 at 240 epochs) and fails for the ViT (0.7148 -> 0.8067): a 4x4-token ViT trained from
scratch on 6000 images is still learning. This study trains the ViT's full-width static row
alone (``dsnet.static_only``, seed 0; everything else as in the benchmark: data, augmentation,
init, batch 64, AdamW, cosine with one warm-up epoch) at more epochs and at a larger learning
rate, and reports each doubling's move. It decides the ViT's schedule for the next run.

    FRUGALCV_RUNS=... FRUGALCV_DATA=... OMP_NUM_THREADS=1 python \\
        benchmarks/studies/dsnet_vit_schedule.py [--jobs 2]

When it was first run, its 120- and 240-epoch points at lr 1e-3 were the benchmark's own runs
(``ds_vit/seed0`` and ``study/ds_vit/seed0`` of the 120-epoch benchmark); now that the benchmark
trains the ViT 480 epochs, the study trains every grid point itself (same configs). Runs go to
``$FRUGALCV_RUNS/bench/dsnet_vit_schedule/lr<lr>/epochs<n>`` through the benchmark runner
(finished runs are not retrained, an interrupted one resumes). Writes
``benchmarks/results/studies/dsnet_vit_schedule.json``: one row per (lr, epochs) with the test
accuracy (10000 mnist-rot-back test images), one plateau check per doubling.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from frugalcv.benchmarks import schedule
from frugalcv.benchmarks.dsnet import ARCH_OVERRIDES, STEPS_PER_EPOCH, STUDY_ROW, overrides
from frugalcv.benchmarks.spec import Job
from frugalcv.reporting.results import Results

PATH = Path("benchmarks/results/studies/dsnet_vit_schedule.json")
ARCH = "ds_vit"
UNIT = "epochs"
BASE_LR = ARCH_OVERRIDES[ARCH]["optim.lr"]
# learning rate -> epochs; each a separate run (the cosine spans its own length)
GRID: dict[float, tuple[int, ...]] = {
    BASE_LR: (120, 240, 480),  # 120: the benchmark's ViT schedule when the study was run
    3 * BASE_LR: (120, 240),
}
TOLERANCE = 0.01  # accuracy: the protocol's one point


def job_name(lr: float, epochs: int) -> str:
    return schedule.job_name(lr, epochs, UNIT)


def jobs(seeds: Sequence[int], quick: bool) -> list[Job]:
    def run(lr: float, epochs: int) -> dict[str, Any]:
        o = overrides(ARCH, seeds[0], quick=False)
        o.update(
            {
                "train.epochs": epochs,
                "optim.lr": lr,
                "dsnet.static_only": True,
                "dsnet.static_widths": (1.0,),
                # as when the study ran (the benchmark's values then): validation every 5
                # epochs; the gate's epochs are not used by a static-only run
                "train.eval_every": 5 * STEPS_PER_EPOCH,
                "dsnet.gate_epochs": 24,
            }
        )
        return o

    return schedule.grid_jobs(GRID, unit=UNIT, recipe="dsnet", overrides=run)


STUDY = schedule.study_benchmark(  # not registered: run by this script only
    "dsnet_vit_schedule",
    about="the dsnet benchmark's full-width static DS-ViT at longer schedules and a larger lr",
    dataset="mnist-rot-back",
    metric="test accuracy",
    jobs=jobs,
)


def results(acc: dict[tuple[float, int], float]) -> Results:
    return schedule.grid_results(
        acc,
        GRID,
        unit=UNIT,
        row=f"{STUDY_ROW} (DS-ViT)",
        tolerance=TOLERANCE,
        benchmark="dsnet_vit_schedule",
        dataset="mnist-rot-back (6000 training images of the 12000, the 10000 test images)",
        metric="test accuracy of the full-width static DS-ViT",
        notes=f"The dsnet benchmark's {STUDY_ROW} row of the DS-ViT alone (dsnet.static_only): "
        "patch 7, dim 64, depth 4, 4 heads, AdamW (wd 0.05), batch 64, cosine with one warm-up "
        f"epoch, label smoothing 0.1, augmentation as in the benchmark, seed 0. The benchmark "
        f"trained the ViT 120 epochs at lr {BASE_LR:g} when this study ran (its 120- and "
        "240-epoch runs were read from the benchmark's own runs); it now trains 480. Each row "
        "is its own run (the cosine spans its length).",
    )


def main() -> None:
    schedule.grid_study_main(
        STUDY,
        GRID,
        unit=UNIT,
        row=STUDY_ROW,
        metric="acc",
        results=results,
        path=PATH,
    )


if __name__ == "__main__":
    main()
