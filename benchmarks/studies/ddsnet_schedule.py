"""How long must the ddsnet benchmark train for its static baseline to reach a plateau?

The ``ddsnet`` benchmark's schedule check fails: its full-width static DnCNN (24 channels, 8
convs, sigma 25, seed 0) moves +1.25 dB when its 1000 steps are doubled, against a tolerance of
0.1 dB. This study trains that row alone (``ddsnet.static_only``, everything else as in the
benchmark: data, init, batch 16, Adam, cosine) at doubling step counts and three learning rates,
and reports each doubling's move. It decides the benchmark's next schedule and learning rate.

    FRUGALCV_RUNS=... OMP_NUM_THREADS=1 python benchmarks/studies/ddsnet_schedule.py [--jobs 2]

Runs go to ``$FRUGALCV_RUNS/bench/ddsnet_schedule/lr<lr>/steps<n>`` through the benchmark runner
(finished runs are not retrained, an interrupted one resumes). Writes
``benchmarks/results/studies/ddsnet_schedule.json``: one row per (lr, steps) with the test PSNR
(the four embedded test photographs as 64 px tiles), one plateau check per doubling.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from frugalcv.benchmarks import schedule
from frugalcv.benchmarks.ddsnet import BATCH, CHANNELS, overrides
from frugalcv.benchmarks.spec import Job
from frugalcv.reporting.results import Results

PATH = Path("benchmarks/results/studies/ddsnet_schedule.json")
ROW = f"static_c{CHANNELS}"
UNIT = "steps"
# learning rate -> step counts (each a separate run: the cosine schedule spans its own length)
GRID: dict[float, tuple[int, ...]] = {
    1e-3: (1000, 2000, 4000, 8000, 16000),  # the benchmark's lr (DnCNN's PyTorch code)
    3e-3: (4000, 8000),
    1e-2: (4000, 8000, 16000),
}
TOLERANCE = 0.1  # dB, the benchmark's


def job_name(lr: float, steps: int) -> str:
    return schedule.job_name(lr, steps, UNIT)


def jobs(seeds: Sequence[int], quick: bool) -> list[Job]:
    def run(lr: float, steps: int) -> dict[str, Any]:
        o = overrides("25", seeds[0], quick=False)
        o.update(
            {
                "data.num_crops": steps * BATCH,  # one pass: the step count
                "optim.lr": lr,
                "ddsnet.static_only": True,
                "ddsnet.static_widths": (CHANNELS,),
                "ddsnet.figure": False,
            }
        )
        return o

    return schedule.grid_jobs(GRID, unit=UNIT, recipe="ddsnet", overrides=run)


STUDY = schedule.study_benchmark(  # not registered: run by this script only
    "ddsnet_schedule",
    about="the ddsnet benchmark's static full-width DnCNN at doubling schedules",
    dataset="skimage-grey, sigma 25",
    metric="test PSNR (dB)",
    jobs=jobs,
)


def results(psnr: dict[tuple[float, int], float]) -> Results:
    return schedule.grid_results(
        psnr,
        GRID,
        unit=UNIT,
        row=ROW,
        tolerance=TOLERANCE,
        benchmark="ddsnet_schedule",
        dataset="skimage-grey (embedded photographs), sigma 25, the 4 test photographs as 64 px "
        "tiles",
        metric="test PSNR (dB) of the full-width static DnCNN",
        notes=f"The ddsnet benchmark's {ROW} row alone (ddsnet.static_only): {CHANNELS} "
        f"channels, 8 convs, batch {BATCH} patches of 40 px, Adam, cosine with 20 warm-up "
        f"steps, one pass over steps x {BATCH} random crops, seed 0. The benchmark trained "
        "1000 steps at lr 1e-3 when this study ran (it now trains 16000 at lr 1e-2). Each row "
        "is its own run (the cosine spans its length).",
    )


def main() -> None:
    schedule.grid_study_main(
        STUDY,
        GRID,
        unit=UNIT,
        row=ROW,
        metric="psnr",
        results=results,
        path=PATH,
        fmt="{:.2f} dB",
    )


if __name__ == "__main__":
    main()
