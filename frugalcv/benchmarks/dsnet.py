"""DS-Net's claims in miniature on mnist-rot-back: dynamic vs static widths vs a random gate.

    FRUGALCV_DATA=<folder holding MNIST/raw> OMP_NUM_THREADS=1 frugalcv bench dsnet

For a DS-ResNet (ResNet-8 layout) and a DS-ViT (4 blocks, dim 64, 16 tokens of 7x7 px), each
seed runs the ``dsnet`` recipe once: Stage I supernet, BN recalibration, Stage II gate, the
independently trained static networks at each width (same init, data, schedule and
augmentation as the supernet), then the evaluation rows. Accuracy is the metric; every row's
``extra`` holds mean MACs per image and CPU latency at batch 1 and 64 (medians of interleaved
runs in one process, ``OMP_NUM_THREADS`` threads).

Claims against the static curve use a derived row: the static networks' accuracy linearly
interpolated in MACs at the dynamic network's mean MACs, per seed (a dynamic net sits between
two widths, never on one). The paper's speed-up claim (>= 1.5x at batch 1 with <= 1 point lost)
is split: the accuracy half is a claim against "full width - 1 point" (the full-width static
network's accuracy minus 0.01, per seed); the speed-up half compares the ``speedup_b1`` column
of the dynamic row with the full-width sub-network's (1.0 by definition) plus 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from frugalcv.benchmarks.spec import (
    Benchmark,
    Claim,
    Job,
    Output,
    RowSpec,
    ScheduleCheck,
    Source,
)
from frugalcv.slim.dsnet import ema_decay_for
from frugalcv.slim.dsnet_recipe.evaluate import complete_rows

ARCHS = ("ds_resnet", "ds_vit")
WIDTHS = (0.25, 0.5, 0.75, 1.0)
# Stage I and every static row, per net. The full-width static CNN moved +6.1 points from 15 to
# 30 epochs, +1.7 from 60 to 120 and -0.7 from 120 to 240 (a plateau); the static DS-ViT moved
# +9.2 from 120 to 240 and +2.2 from 240 to 480 (benchmarks/studies/dsnet_vit_schedule.py).
EPOCHS = {"ds_resnet": 120, "ds_vit": 480}
# Stage II: DS-Net trains the gate 30 epochs after 150 supernet epochs (1/5)
GATE_EPOCHS = {arch: e // 5 for arch, e in EPOCHS.items()}
NUM_TRAIN = 6000  # of the 12000 built from full MNIST (as the classify/ickd benchmarks)
STEPS_PER_EPOCH = NUM_TRAIN // 64
# validation on the 10000 test images (and after the last step): every 5 epochs for the CNN (as
# in its 120-epoch run), every 24 for the ViT (20 points on its curve)
EVAL_EVERY = {"ds_resnet": 5 * STEPS_PER_EPOCH, "ds_vit": 24 * STEPS_PER_EPOCH}
# DS-Net's EMA decay 0.997 rescaled to the same horizon in epochs (0.13 of an epoch): with 93
# steps per epoch 0.997 itself averages over 3.6 epochs, and the bootstrapped sub-networks then
# learn from a near-uniform teacher for the first third of a short run (measured: all widths
# stuck at 11% after 5 epochs; 37% with the rescaled decay).
EMA_DECAY = round(ema_decay_for(STEPS_PER_EPOCH), 4)
QUICK_SIZE = 128  # --quick: training and test images
LATENCY_REPEATS = 50

# Per architecture: model keys and the optimiser (SGD for the CNN as in DS-Net; AdamW for the
# ViT, DeiT's choice, since no DS-ViT++ schedule was released).
ARCH_OVERRIDES: dict[str, dict[str, Any]] = {
    "ds_resnet": {
        "model.resnet_depth": 8,
        "optim.name": "sgd",
        "optim.lr": 0.05,  # the classify/ickd benchmarks' batch-64 lr
        "optim.nesterov": True,  # timm SGD in the DS-Net code
        "optim.weight_decay": 5e-4,
    },
    "ds_vit": {
        "model.vit_patch": 7,  # 28 px -> 4x4 tokens
        "model.vit_embed_dim": 64,
        "model.vit_depth": 4,
        "model.vit_heads": 4,
        "optim.name": "adamw",
        "optim.lr": 1e-3,  # DeiT 5e-4 per 512 images, raised for the short schedule
        "optim.weight_decay": 0.05,  # DeiT
    },
}


def _per_net(epochs: dict[str, int]) -> str:
    return f"{epochs['ds_resnet']} (CNN) / {epochs['ds_vit']} (ViT) epochs"


def overrides(arch: str, seed: int, *, quick: bool) -> dict[str, Any]:
    """The ``dsnet`` recipe's settings for one architecture and seed."""
    steps_per_epoch = (QUICK_SIZE if quick else NUM_TRAIN) // 64
    ema_decay = round(ema_decay_for(steps_per_epoch), 4)
    return {
        "data.name": "mnist5k-rot-back" if quick else "mnist-rot-back",
        "data.resize": 0,
        "data.num_train": QUICK_SIZE if quick else NUM_TRAIN,
        "data.num_test": QUICK_SIZE if quick else 0,  # 0 = all (10000 from full MNIST)
        "data.augment": True,
        "model.arch": arch,
        "model.scale": "small",
        "model.widths": WIDTHS,
        "model.trunk_width": 1.0,
        **ARCH_OVERRIDES[arch],
        "optim.schedule": "cosine",
        "optim.warmup_steps": steps_per_epoch,  # one epoch
        "dsnet.num_random": 2,
        "dsnet.bootstrap": "ema",
        "dsnet.ema_decay": ema_decay,
        "dsnet.gate_epochs": 1 if quick else GATE_EPOCHS[arch],
        "dsnet.gate_lr": 0.08,
        "dsnet.gate_weight_decay": 0.01,
        "dsnet.complexity_weight": 0.5,
        "dsnet.static_rows": True,
        "latency.batch_sizes": (1, 64),
        "latency.repeats": 3 if quick else LATENCY_REPEATS,
        "latency.warmup": 1 if quick else 5,
        "train.batch_size": 64,
        "train.epochs": 1 if quick else EPOCHS[arch],
        "train.eval_every": 0 if quick else EVAL_EVERY[arch],
        "train.seed": seed,
    }


STUDY_ROW = "static_w1"  # the schedule studies: each net's full-width static network


def study_job(arch: str) -> Job:
    """The schedule study of one net: its full-width static row alone (seed 0) at twice the
    epochs, everything else as in the main run."""
    doubled = overrides(arch, 0, quick=False)
    doubled["train.epochs"] = 2 * EPOCHS[arch]
    doubled["dsnet.static_only"] = True
    doubled["dsnet.static_widths"] = (1.0,)
    return Job(name=f"study/{arch}/seed0", recipe="dsnet", overrides=doubled)


def static_job(arch: str, seed: int, width: float, *, quick: bool) -> Job:
    """One static reference row trained apart from the supernet (``dsnet.static_only``): the
    rows of ``<arch>/seed<seed>`` are joined with it (``part_of``), so each job fits one
    session (a 480-epoch ViT run with its four static rows does not)."""
    o = overrides(arch, seed, quick=quick)
    o.update({"dsnet.static_only": True, "dsnet.static_widths": (width,)})
    return Job(
        name=f"{arch}/static_w{width:g}/seed{seed}",
        recipe="dsnet",
        overrides=o,
        part_of=f"{arch}/seed{seed}",
    )


def jobs(seeds: Sequence[int], quick: bool) -> list[Job]:
    # per net and seed: the supernet run (Stage I, gate, evaluation) and one job per static
    # width; the longest first (the ViT's 960-epoch check and 480-epoch runs, the widest static
    # rows), so a parallel run does not end waiting on one long job alone
    out: list[Job] = []
    for arch in sorted(ARCHS, key=lambda a: -EPOCHS[a]):
        if not quick and 0 in seeds:
            out.append(study_job(arch))
        for seed in seeds:
            o = overrides(arch, seed, quick=quick)
            o["dsnet.static_rows"] = False  # trained by the static jobs below
            out.append(Job(name=f"{arch}/seed{seed}", recipe="dsnet", overrides=o))
        out += [static_job(arch, seed, w, quick=quick) for w in reversed(WIDTHS) for seed in seeds]
    return out if quick else out + explain_jobs(seeds)


# Explanation tests (failed claims re-run under one changed condition; see the page). The
# schedule was tested at 60 epochs (every ds_resnet row at 120 + 24, which is now the CNN's
# schedule; the page keeps that result). The setting that differs most from the authors': the
# complexity penalty's unit. The code divides MACs by 1e9, which makes the penalty vanish for
# nets of a few MMACs, while here it is normalised to the full width by default, a pull to the
# slimmest width that can collapse the gate onto it.
# Each test reuses the seed's Stage I (dsnet.supernet_ckpt) and retrains only the gate.
UNIT_LABEL = "[authors' 1e9 MACs unit]"


def explain_jobs(seeds: Sequence[int]) -> list[Job]:
    return [
        Job(
            name=f"explain/unit1e9/{arch}/seed{seed}",
            recipe="dsnet",
            overrides={
                **overrides(arch, seed, quick=False),
                "dsnet.supernet_ckpt": Output(f"{arch}/seed{seed}", "supernet/last.pt"),
                "dsnet.macs_unit": 1e9,
                "dsnet.static_rows": False,
                "latency.repeats": 3,
            },
        )
        for arch in ARCHS
        for seed in seeds
    ]


def explain_rows(seeds: Sequence[int]) -> list[RowSpec]:
    out = []
    for arch in ARCHS:
        for row in ("dynamic", "random_gate"):
            out.append(
                RowSpec(
                    name=f"{row_names(arch)[row]} {UNIT_LABEL}",
                    sources=tuple(
                        Source(f"explain/unit1e9/{arch}/seed{s}", row=row) for s in seeds
                    ),
                    metric="acc",
                    mean={"macs": "macs", "speedup_b1": "speedup_b1"},
                )
            )
    return out


LATENCY = {
    "latency_b1_ms": "latency_b1_ms",
    "latency_b64_ms": "latency_b64_ms",
    "speedup_b1": "speedup_b1",
    "speedup_b64": "speedup_b64",
}


def row_names(arch: str) -> dict[str, str]:
    """Recipe row -> results row name, for one architecture."""
    names = {f"static_w{w:g}": f"{arch}: static w{w:g}" for w in WIDTHS}
    names.update({f"sub_w{w:g}": f"{arch}: supernet w{w:g}" for w in WIDTHS})
    names.update(
        {
            "dynamic": f"{arch}: DS-Net dynamic",
            "random_gate": f"{arch}: random gate (same MACs)",
            "static_interp": f"{arch}: static curve at dynamic MACs",
            "static_full_minus_1pt": f"{arch}: static full width - 1 point",
        }
    )
    return names


def rows(seeds: Sequence[int]) -> list[RowSpec]:
    out = []
    for arch in ARCHS:
        for row, name in row_names(arch).items():
            mean: dict[str, str] = {"macs": "macs"}
            if row.startswith(("static_w", "sub_w")) or row in ("dynamic", "random_gate"):
                mean.update(LATENCY)
            if row == "dynamic":
                mean.update(
                    {f"route_pct_w{round(100 * w)}": f"route_pct_w{round(100 * w)}" for w in WIDTHS}
                )
            out.append(
                RowSpec(
                    name=name,
                    sources=tuple(Source(f"{arch}/seed{s}", row=row) for s in seeds),
                    metric="acc",
                    mean=mean,
                )
            )
    return out


def claims() -> tuple[Claim, ...]:
    paper = paper_claims()
    return paper + explain_claims(paper)


def explain_claims(paper: tuple[Claim, ...]) -> tuple[Claim, ...]:
    """The accuracy claims again under one changed condition each (rows of explain_rows)."""
    out = []
    for c in paper:
        if c.column:  # the speed-up: scale is its explanation (dsnet_latency)
            continue
        # the gate tests have no static rows: the random gate is their own, the full-width
        # tolerance the main run's (it does not depend on the gate); the static curve at the
        # gate's MACs is not re-derived
        if not c.right.endswith("static curve at dynamic MACs"):
            own = c.right.endswith("random gate (same MACs)")
            out.append(
                Claim(
                    text=f"{UNIT_LABEL} {c.text}",
                    left=f"{c.left} {UNIT_LABEL}",
                    op=c.op,
                    right=f"{c.right} {UNIT_LABEL}" if own else c.right,
                    explains=c.text,
                )
            )
    return tuple(out)


def paper_claims() -> tuple[Claim, ...]:
    out = []
    for arch in ARCHS:
        n = row_names(arch)
        out += [
            Claim(
                text=f"{arch}: DS-Net is on or above the static curve at equal mean MACs",
                left=n["dynamic"],
                op=">",
                right=n["static_interp"],
            ),
            Claim(
                text=f"{arch}: the trained gate beats a random gate at the same cost",
                left=n["dynamic"],
                op=">",
                right=n["random_gate"],
            ),
            Claim(
                text=f"{arch}: DS-Net loses at most 1 point vs the full-width static network",
                left=n["dynamic"],
                op=">",
                right=n["static_full_minus_1pt"],
            ),
            Claim(  # speedup_b1 is over the supernet's full width, whose own value is 1.0
                text=f"{arch}: DS-Net's measured batch-1 CPU speed-up over the full width is at "
                "least 1.5x",
                left=n["dynamic"],
                op=">=",
                right=n["sub_w1"],
                margin=0.5,
                column="speedup_b1",
            ),
        ]
    return tuple(out)


def plot(plan: Any) -> dict[str, dict[str, Any]]:
    """Accuracy vs mean MACs and vs batch-1 latency (means over seeds), one panel per
    architecture, written as ``acc_vs_macs.png`` / ``acc_vs_latency.png`` into the
    benchmark's runs folder. Adds nothing to the rows."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    series = {"static w": "static (trained alone)", "supernet w": "supernet sub-networks"}
    points = {"DS-Net dynamic": "o", "random gate (same MACs)": "x"}
    for key, label, fname in (
        ("macs", "mean MACs per image", "acc_vs_macs.png"),
        ("latency_b1_ms", "CPU latency, batch 1 (ms)", "acc_vs_latency.png"),
    ):
        fig = Figure(figsize=(11, 4.5), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, len(ARCHS))
        for ax, arch in zip(axes, ARCHS, strict=True):
            rows_by: dict[str, list[dict]] = {}
            for s in plan.seeds:
                outputs = plan.outputs(f"{arch}/seed{s}")
                for name, r in outputs.items():
                    if name is not None:
                        rows_by.setdefault(name, []).append(r)

            def mean_of(row: str, k: str, rows_by: dict = rows_by) -> float:
                rs = rows_by[row]
                v = [r["final"]["acc"] if k == "acc" else r[k] for r in rs]
                return sum(v) / len(v)

            for prefix, lab in series.items():
                rk = "static_w" if prefix == "static w" else "sub_w"
                xs = [mean_of(f"{rk}{w:g}", key) for w in WIDTHS]
                ys = [mean_of(f"{rk}{w:g}", "acc") for w in WIDTHS]
                ax.plot(xs, ys, marker="s", label=lab)
            for row, lab in (("dynamic", "DS-Net dynamic"), ("random_gate", "random gate")):
                ax.plot(
                    [mean_of(row, key)],
                    [mean_of(row, "acc")],
                    marker=points.get(
                        "DS-Net dynamic" if row == "dynamic" else "random gate (same MACs)"
                    ),
                    ms=9,
                    ls="none",
                    label=lab,
                )
            ax.set_title(arch)
            ax.set_xlabel(label)
            ax.set_ylabel("test accuracy")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle(f"dsnet on mnist-rot-back (mean over seeds {plan.seeds})")
        plan.root.mkdir(parents=True, exist_ok=True)
        fig.savefig(plan.root / fname, dpi=110)
    return {}


BENCHMARK = Benchmark(
    name="dsnet",
    about="DS-Net: dynamic vs static widths vs random gate, DS-ResNet-8 and DS-ViT, CPU latency",
    dataset="mnist-rot-back",
    metric="test accuracy (final epoch)",
    higher_is_better=True,
    jobs=jobs,
    rows=rows,
    claims=claims(),
    explain_rows=explain_rows,
    notes=f"Per architecture and seed one dsnet run: {NUM_TRAIN} training images (28 px), "
    f"widths {WIDTHS} with the stem and first stage at full width; Stage I {_per_net(EPOCHS)} "
    "(sandwich rule, 2 random widths, EMA-teacher bootstrapping with timm-style EMA of "
    f"weights and BN statistics, decay {EMA_DECAY} = DS-Net's 0.997 at the same horizon in "
    "epochs, label smoothing 0.1), BN recalibration on one pass of the training set, Stage II "
    f"{_per_net(GATE_EPOCHS)} (SGD 0.08, wd 0.01, cosine; SGS + CE + 0.5 x (MACs/full "
    "MACs)^2); static rows as many epochs as Stage I, each from the supernet's init; test "
    f"accuracy every {EVAL_EVERY['ds_resnet'] // STEPS_PER_EPOCH} (CNN) / "
    f"{EVAL_EVERY['ds_vit'] // STEPS_PER_EPOCH} (ViT) epochs. DS-ResNet-8: Nesterov SGD "
    "0.05, wd 5e-4; DS-ViT (patch 7, dim 64, depth 4, 4 heads): AdamW 1e-3, wd 0.05; cosine "
    "with one warm-up epoch; batch 64; pad-crop. 'static curve at dynamic MACs': static "
    "accuracy interpolated linearly in MACs at the dynamic net's mean MACs, per seed. 'static "
    "full width - 1 point': the full-width static accuracy - 0.01. Speed-ups (extra.speedup_b1/"
    "b64) are over the full-width network, medians of interleaved CPU runs in the same "
    "process; the random gate shuffles the trained gate's routes over the test images (same "
    "MACs, latency copied from the dynamic row). Shrunk from the paper: ResNet-8/ViT-tiny "
    f"sized nets at 28 px, {EPOCHS['ds_resnet']} + {GATE_EPOCHS['ds_resnet']} (CNN) and "
    f"{EPOCHS['ds_vit']} + {GATE_EPOCHS['ds_vit']} (ViT) epochs of {NUM_TRAIN} images instead of "
    "150 + 30 of ImageNet, 4 widths instead of 14.",
    measure=plot,
    complete=lambda rows: complete_rows(rows, WIDTHS),
    figures=lambda seeds: [
        (
            "test accuracy vs mean MACs per image: static nets, supernet sub-networks, DS-Net "
            "and the random gate (means over seeds)",
            Source("", row="acc_vs_macs.png"),
        ),
        (
            "test accuracy vs measured batch-1 CPU latency (means over seeds)",
            Source("", row="acc_vs_latency.png"),
        ),
    ],
    schedule_checks=tuple(
        ScheduleCheck(
            row=row_names(arch)[STUDY_ROW],
            what=f"epochs {EPOCHS[arch]} -> {2 * EPOCHS[arch]}",
            at=Source(f"{arch}/seed0", row=STUDY_ROW),
            doubled=Source(f"study/{arch}/seed0", row=STUDY_ROW),
            metric="acc",
        )
        for arch in ARCHS
    ),
)
