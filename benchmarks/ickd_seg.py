"""Grid-level ICKD for dense prediction in miniature: student alone vs + grid ICKD (1x1, 4x4).

    frugalcv bench ickd_seg

Digits pasted on natural-image patches (embedded), per-pixel classes, mIoU. The teacher is trained
once (first seed) and shared by every student seed.
"""

from __future__ import annotations

import time
from pathlib import Path

from frugalcv.core.bench import finish, run_dir
from frugalcv.core.config import apply_overrides
from frugalcv.core.results import Row
from frugalcv.distill import seg_recipe

EPOCHS = 15
GRIDS = (1, 4)


def config(seed: int, *, quick: bool, teacher_ckpt: str = "") -> seg_recipe.Config:
    name = "ickd_seg" + ("_quick" if quick else "")
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
            "train.out_dir": run_dir(name, f"seed{seed}"),
        },
    )


def main(*, seeds: list[int], quick: bool = False) -> dict:
    t0 = time.time()
    per_seed, teacher_ckpt = [], ""
    for seed in seeds:
        s = seg_recipe.run(config(seed, quick=quick, teacher_ckpt=teacher_ckpt), preset="bench")
        per_seed.append({r["name"]: r for r in s["rows"]})
        if not teacher_ckpt:
            teacher_ckpt = str(Path(config(seed, quick=quick).train.out_dir) / "teacher/last.pt")
    t = per_seed[0]["teacher"]
    rows = [
        Row(
            name="teacher (fcn_resnet20)",
            values=[t["final"]["miou"]],
            extra={
                "params": t["params"],
                "macs": t["macs"],
                "pixel_acc": t["final"]["pixel_acc"],
                "note": "trained once (first seed), shared by all student seeds",
            },
        )
    ]
    for name in ("student", *(f"grid{g}x{g}" for g in GRIDS)):
        runs = [p[name] for p in per_seed]
        label = "fcn_resnet8 alone" if name == "student" else f"fcn_resnet8 + ICKD {name[4:]}"
        rows.append(
            Row(
                name=label,
                values=[r["final"]["miou"] for r in runs],
                extra={
                    "params": runs[0]["params"],
                    "macs": runs[0]["macs"],
                    "pixel_acc_mean": sum(r["final"]["pixel_acc"] for r in runs) / len(runs),
                    "best_miou_mean": sum(r["best"]["miou"] for r in runs) / len(runs),
                },
            )
        )
    return finish(
        "ickd_seg",
        command=f"frugalcv bench ickd_seg --seeds {','.join(map(str, seeds))}",
        dataset="digit-scenes (embedded, 32 px, 2000 train / 500 test)",
        metric="test mIoU (final epoch, 11 classes incl. background)",
        higher_is_better=True,
        seeds=seeds,
        rows=rows,
        quick=quick,
        t0=t0,
        notes=f"fcn_resnet20 -> fcn_resnet8; {EPOCHS} epochs for every row, SGD 0.1 cosine, batch "
        "32; grid ICKD beta 2.5 (official_cifar normalisation, 1x1 embed) on the backbone's "
        "last map (8x8 at 32 px).",
    )
