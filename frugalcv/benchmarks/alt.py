"""ALT's claims in miniature: frame selection under a labelling budget, and the Tversky box loss.

    frugalcv bench alt

Per seed, on procedural tracking sequences (embedded data; the seed draws the sequences and the
initialisation): budgets of 5, 10 and 20 % of each training sequence's frames labelled by random,
uniform (every k-th frame), uncertainty (least tracker confidence) and ALT selection; every frame
labelled (the upper bound); and, at full labels, the box head trained with the Tversky, L1 and IoU
losses. Each row is one ``alt`` recipe run; its final tracker is scored by one-pass evaluation on
held-out test sequences (success AUC, got10k-toolkit OTB conventions).

ALT's second target, "at least 90 % of the full-label success AUC at 20 %", compares a row with a
fraction of another row, which a claim (row vs row) cannot state: ``measure`` writes the ratio
``auc_vs_all_frames`` into every budget row's ``extra``, and the notes say so. ``measure`` also
draws the success AUC against the budget per selector (``<runs>/bench/alt/alt_auc_vs_budget.png``).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from frugalcv.benchmarks.spec import Benchmark, Claim, Job, Output, RowSpec, ScheduleCheck, Source

BUDGETS = (0.05, 0.10, 0.20)
SELECTORS = ("random", "uniform", "uncertainty", "alt")
BOX_LOSSES = ("tversky", "l1", "iou")
NUM_ROUNDS = 2  # model-based selectors: round 0 on frame 0, round 1 on the full budget
# Sized for about 2 CPU-hours on one thread for 3 seeds (see the notes).
NUM_TRAIN, NUM_TEST, NUM_FRAMES = 16, 24, 60  # 960 pool frames; 1440 test frames
# Schedule study (docs/methods/alt.md): 1200 -> 2400 steps moved the all-frames row by 1.7 AUC
# points, so the benchmark trains 2400 and checks 2400 -> 4800 in every full run.
NUM_PAIRS, STEPS = 3000, 2400
PLOT = "alt_auc_vs_budget.png"  # drawn by ``measure`` in the benchmark's folder
# Explanation tests (full runs only), at the paper's headline budget: 3 more seeds for ALT,
# random and uniform (OPE on short sequences is noisy), and ALT with the pool scored by the
# all-frames tracker of the same seed (the authors select with a pretrained, well-trained
# tracker; here round 0 trains from scratch on frame 0 of each sequence).
EXTRA_SEEDS, EXPLAIN_BUDGET = 3, 0.20
COMPARED = ("random", "uniform")


def _pct(budget: float) -> str:
    return f"{round(100 * budget)}%"


def row_name(selector: str, budget: float | None = None, box_loss: str = "tversky") -> str:
    if selector == "all":
        return "all frames" if box_loss == "tversky" else f"all frames, {box_loss} box loss"
    return f"{selector} {_pct(budget)}"


def overrides(seed: int, *, quick: bool) -> dict[str, Any]:
    """Data, tracker and schedule shared by every row of one seed."""
    return {
        "data.source": "procedural",
        "data.target": "shape",
        "data.num_train": 2 if quick else NUM_TRAIN,
        "data.num_test": 1 if quick else NUM_TEST,
        "data.num_frames": 20 if quick else NUM_FRAMES,
        "alt.num_rounds": NUM_ROUNDS,
        "alt.num_pairs": 32 if quick else NUM_PAIRS,
        "alt.num_val_pairs": 16 if quick else 256,
        "optim.name": "adam",
        "optim.lr": 3e-3,
        "optim.weight_decay": 0.0,
        "optim.schedule": "cosine",
        "optim.warmup_steps": 2 if quick else 20,
        "train.batch_size": 16 if quick else 32,
        "train.max_steps": 2 if quick else STEPS,
        "train.eval_every": 0,
        "train.seed": seed,
    }


def _job_name(seed: int, selector: str, budget: float | None, box_loss: str) -> str:
    if selector == "all":
        return f"seed{seed}/all_{box_loss}"
    return f"seed{seed}/{selector}{round(100 * budget)}"


def _selection_job(
    seed: int, selector: str, budget: float, *, quick: bool, prefix: str = "", **extra: Any
) -> Job:
    """One selector at one budget (Tversky box loss); ``extra``: more ``alt.*`` overrides."""
    return Job(
        name=prefix + _job_name(seed, selector, budget, "tversky"),
        recipe="alt",
        overrides={
            **overrides(seed, quick=quick),
            "alt.selector": selector,
            "alt.budget": budget,
            **{f"alt.{k}": v for k, v in extra.items()},
        },
    )


def jobs(seeds: Sequence[int], quick: bool) -> list[Job]:
    out = []
    for seed in seeds:
        base = overrides(seed, quick=quick)
        out += [_selection_job(seed, sel, b, quick=quick) for b in BUDGETS for sel in SELECTORS]
        for box_loss in BOX_LOSSES:
            out.append(
                Job(
                    name=_job_name(seed, "all", None, box_loss),
                    recipe="alt",
                    overrides={**base, "alt.selector": "all", "alt.box_loss": box_loss},
                )
            )
    if 0 in seeds and not quick:  # the schedule study: all frames at twice the steps
        doubled = {**overrides(0, quick=False), "alt.selector": "all", "alt.box_loss": "tversky"}
        doubled["train.max_steps"] = 2 * STEPS
        out.append(
            Job(
                name="study/" + _job_name(0, "all", None, "tversky"),
                recipe="alt",
                overrides=doubled,
            )
        )
    if not quick:
        out += explain_jobs(seeds)
    return out


def more_seeds(seeds: Sequence[int]) -> list[int]:
    return list(range(max(seeds) + 1, max(seeds) + 1 + EXTRA_SEEDS))


def explain_jobs(seeds: Sequence[int]) -> list[Job]:
    out = [
        _selection_job(seed, selector, EXPLAIN_BUDGET, quick=False)
        for seed in more_seeds(seeds)
        for selector in ("alt", *COMPARED)
    ]
    out += [
        _selection_job(
            seed,
            "alt",
            EXPLAIN_BUDGET,
            quick=False,
            prefix="explain/scorer/",
            scorer_ckpt=Output(_job_name(seed, "all", None, "tversky"), "round0"),
        )
        for seed in seeds
    ]
    return out


def _seeds_label(selector: str) -> str:
    return f"{row_name(selector, EXPLAIN_BUDGET)} [+{EXTRA_SEEDS} seeds]"


SCORED = f"{row_name('alt', EXPLAIN_BUDGET)} [pool scored by the all-frames tracker]"


def explain_rows(seeds: Sequence[int]) -> list[RowSpec]:
    every = [*seeds, *more_seeds(seeds)]
    out = [
        RowSpec(
            name=_seeds_label(selector),
            sources=tuple(
                Source(_job_name(s, selector, EXPLAIN_BUDGET, "tversky"), row=_last_round(selector))
                for s in every
            ),
            metric="success_auc",
            copy=("params", "labelled_fraction"),
            mean=MEANS,
        )
        for selector in ("alt", *COMPARED)
    ]
    out.append(
        RowSpec(
            name=SCORED,
            sources=tuple(
                Source(
                    "explain/scorer/" + _job_name(s, "alt", EXPLAIN_BUDGET, "tversky"),
                    row=_last_round("alt"),
                )
                for s in seeds
            ),
            metric="success_auc",
            copy=("params", "labelled_fraction"),
            mean=MEANS,
        )
    )
    return out


def _last_round(selector: str) -> str:
    return f"round{NUM_ROUNDS - 1}" if selector in ("alt", "uncertainty") else "round0"


MEANS = {
    "precision": "final.precision",
    "fps": "final.fps",
    "labelled_frames": "labelled_frames",
    "identity_auc": "identity_auc",
}


def rows(seeds: Sequence[int]) -> list[RowSpec]:
    out = []
    for budget in BUDGETS:
        for selector in SELECTORS:
            out.append(
                RowSpec(
                    name=row_name(selector, budget),
                    sources=tuple(
                        Source(_job_name(s, selector, budget, "tversky"), row=_last_round(selector))
                        for s in seeds
                    ),
                    metric="success_auc",
                    copy=("params", "labelled_fraction"),
                    mean=MEANS,
                )
            )
    for box_loss in BOX_LOSSES:
        out.append(
            RowSpec(
                name=row_name("all", box_loss=box_loss),
                sources=tuple(
                    Source(_job_name(s, "all", None, box_loss), row="round0") for s in seeds
                ),
                metric="success_auc",
                copy=("params", "labelled_fraction"),
                mean=MEANS,
            )
        )
    return out


def claims() -> tuple[Claim, ...]:
    out = []
    for budget in BUDGETS:
        for other in ("random", "uniform"):
            out.append(
                Claim(
                    text=f"ALT selection beats {other} selection at {_pct(budget)} of the frames",
                    left=row_name("alt", budget),
                    op=">",
                    right=row_name(other, budget),
                )
            )
    for other in COMPARED:
        paper = f"ALT selection beats {other} selection at {_pct(EXPLAIN_BUDGET)} of the frames"
        out.append(
            Claim(
                text=f"[+{EXTRA_SEEDS} seeds] {paper}",
                left=_seeds_label("alt"),
                op=">",
                right=_seeds_label(other),
                explains=paper,
            )
        )
        out.append(
            Claim(
                text=f"[pool scored by the all-frames tracker] {paper}",
                left=SCORED,
                op=">",
                right=row_name(other, EXPLAIN_BUDGET),
                explains=paper,
            )
        )
    for other in ("l1", "iou"):
        out.append(
            Claim(
                text=f"the Tversky box loss beats the {other.upper()} loss at full labels",
                left=row_name("all"),
                op=">",
                right=row_name("all", box_loss=other),
            )
        )
    return tuple(out)


def _auc_means(plan: Any) -> dict[tuple[str, float | None, str], float]:
    means = {}
    for selector in (*SELECTORS, "all"):
        for budget in BUDGETS if selector != "all" else (None,):
            for box_loss in BOX_LOSSES if selector == "all" else ("tversky",):
                values = [
                    plan.jobs[_job_name(s, selector, budget, box_loss)].outputs()[
                        _last_round(selector)
                    ]["final"]["success_auc"]
                    for s in plan.seeds
                ]
                means[(selector, budget, box_loss)] = statistics.fmean(values)
    return means


def measure(plan: Any) -> dict[str, dict[str, Any]]:
    """``auc_vs_all_frames`` (row mean / all-frames mean) per budget row, and the plot."""
    means = _auc_means(plan)
    full = means[("all", None, "tversky")]
    extra = {
        row_name(sel, b): {"auc_vs_all_frames": round(means[(sel, b, "tversky")] / full, 4)}
        for sel in SELECTORS
        for b in BUDGETS
    }
    _plot(plan, means)
    return extra


def _plot(plan: Any, means: dict) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs = [100 * b for b in BUDGETS]
    for selector, marker in zip(SELECTORS, "sx^o", strict=True):
        ax.plot(
            xs, [means[(selector, b, "tversky")] for b in BUDGETS], marker=marker, label=selector
        )
    full = means[("all", None, "tversky")]
    ax.axhline(full, color="k", lw=1, label="all frames")
    ax.axhline(0.9 * full, color="k", lw=0.8, ls=":", label="90 % of all frames")
    ax.set_xlabel("labelled frames (% of each training sequence)")
    ax.set_ylabel("success AUC (OPE, test sequences)")
    ax.set_xticks(xs)
    ax.set_title(f"alt: AUC vs budget (mean over seeds {plan.seeds})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    plan.root.mkdir(parents=True, exist_ok=True)
    fig.savefig(plan.root / PLOT, dpi=110)


def figures(seeds: Sequence[int]) -> list[tuple[str, Source]]:
    """The AUC-vs-budget plot, and test frames with true (green) and predicted (red) boxes from
    the first seed's ALT, random (20 %) and all-frames trackers."""
    s = seeds[0]
    out = [("success AUC against the labelling budget per selector", Source("", row=PLOT))]
    for selector, budget in (("alt", 0.20), ("random", 0.20), ("all", None)):
        name = row_name(selector, budget)
        out.append(
            (
                f"seed {s}, {name}: test frames, true (green) and predicted (red) boxes",
                Source(_job_name(s, selector, budget, "tversky"), row="frames.png"),
            )
        )
    return out


BENCHMARK = Benchmark(
    name="alt",
    about="ALT: random / uniform / uncertainty / ALT frames at 5-20 % labels; Tversky vs L1/IoU",
    dataset="procedural-shape",
    metric="success AUC (OPE, got10k OTB conventions, final step)",
    higher_is_better=True,
    jobs=jobs,
    rows=rows,
    claims=claims(),
    notes=f"Per seed: {NUM_TRAIN} procedural training sequences of {NUM_FRAMES} frames (96 x 128 "
    f"px, striped shapes over scikit-image photos, 1 distractor, occlusion, blur, scale drift) "
    f"as the unlabelled pool and {NUM_TEST} held-out test sequences (other image halves). "
    f"Budgets are fractions of each sequence's frames, frame 0 always labelled; ALT and "
    f"uncertainty run {NUM_ROUNDS} rounds (round 0 trains on frame 0 of every sequence and "
    "scores the pool; round 1 retrains from the same init on the full budget); random, "
    "uniform and all-frames train once. Every training run: SiamBoxNet from the same init, "
    f"{NUM_PAIRS} template/search pairs from the labelled frames, {STEPS} Adam steps (lr 3e-3, "
    "cosine, 20 warm-up steps), batch 32; Tversky alpha 0.3, beta 0.7 unless the row says "
    "otherwise. ALT: crops around the round-0 tracker's boxes embedded by its backbone, NN "
    "screening k=5, tau=1.5, coverage window 10 frames. Target 'ALT at 20 % reaches 90 % of "
    "the all-frames AUC' is not a row-vs-row claim: read extra.auc_vs_all_frames of the 'alt "
    "20%' row (>= 0.9 meets it). extra: precision (centre error <= 20 px), fps (whole tracking "
    "loop, one thread when run with OMP_NUM_THREADS=1), labelled_frames, identity_auc "
    "(IdentityTracker floor). Shrunk from the paper: a 3-layer CNN tracker on 32/64 px crops "
    "trained from scratch instead of a pretrained ResNet tracker, 960-frame pools instead of "
    "GOT-10k/LaSOT. Schedule study (seed 0, all frames): 1200 -> 2400 steps moved the AUC "
    "0.335 -> 0.352.",
    measure=measure,
    figures=figures,
    explain_rows=explain_rows,
    schedule_checks=(
        ScheduleCheck(
            row=row_name("all", box_loss="tversky"),
            what=f"steps {STEPS} -> {2 * STEPS}",
            at=Source(_job_name(0, "all", None, "tversky"), row="round0"),
            doubled=Source("study/" + _job_name(0, "all", None, "tversky"), row="round0"),
            metric="success_auc",
        ),
    ),
)
