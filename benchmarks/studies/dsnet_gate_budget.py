"""Does the DS-Net gate rank images usefully, even where its argmax routes them all one way?

In ``frugalcv bench dsnet`` the trained gate sends (almost) every test image to the slimmest
width, so "the trained gate beats a random gate at the same cost" cannot hold: both are the
slimmest sub-network. Argmax routing uses only the gate's decision at P = 0.5. This study reads
the gate's score instead, P(largest width) from its softmax, and routes by budget (an extension,
not the paper; :func:`frugalcv.slim.gate.budget_curve`): a threshold on the score sends a
target share of images to the largest width, the rest to the slimmest. Each half of the 10000
test images is routed with the threshold calibrated on the other half's scores (no labels read);
a threshold from the training images can miss the share on test images (the supernet fits its
training images). At the share each threshold really routes it compares, per seed:

- the gate's ranking against random routing of the same share (same mean MACs) and against the
  oracle (images only the largest width gets right go first);
- at 1.5x fewer MACs than the full width (the paper's speed-up claim, in MACs): the budgeted gate
  against the full-width static network minus one point and against the static curve.

Nothing is retrained: each seed's ``gate/last.pt`` (supernet with BN as recalibrated by the
recipe, and the trained gate) of the dsnet benchmark's runs.

    FRUGALCV_RUNS=... FRUGALCV_DATA=... python benchmarks/studies/dsnet_gate_budget.py

Writes ``benchmarks/results/studies/dsnet_gate_budget.json`` (the benchmarks' schema; the
conditions are claims that explain the benchmark's) and the curves in
``benchmarks/results/studies/figures/dsnet_gate_budget.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from frugalcv.benchmarks import get_benchmark
from frugalcv.benchmarks.runner import make_plan
from frugalcv.core.checkpoint import load_model
from frugalcv.reporting.results import Claim, Figure, Results, Row, write_results
from frugalcv.slim.cost import macs_per_width
from frugalcv.slim.dsnet_recipe.data import load_arrays
from frugalcv.slim.dsnet_recipe.evaluate import gate_macs, interpolate_static
from frugalcv.slim.dsnet_recipe.models import build_supernet
from frugalcv.slim.gate import budget_curve

PATH = Path("benchmarks/results/studies/dsnet_gate_budget.json")
FIGURE = Path("figures/dsnet_gate_budget.png")  # relative to the results file's folder
ARCHS = ("ds_resnet", "ds_vit")
SPEEDUP = 1.5  # the paper's claimed speed-up, here as a MACs budget
SHARES = [i / 20 for i in range(21)]
BATCH = 500


@torch.no_grad()
def scores(model, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """Gate score P(largest width), and (with labels) whether the slimmest / largest is right."""
    out: dict[str, list] = {"score": [], "small_ok": [], "large_ok": []}
    for i in range(0, len(x), BATCH):
        xb = x[i : i + BATCH]
        f = model.forward_trunk(xb)
        out["score"].append(model.route(f).soft[:, -1])
        if y is not None:
            yb = y[i : i + BATCH]
            out["small_ok"].append(model.forward_body(f, model.widths[0]).argmax(-1) == yb)
            out["large_ok"].append(model.forward_body(f, model.widths[-1]).argmax(-1) == yb)
    return {k: torch.cat(v) for k, v in out.items() if v}


def measure(plan, arch: str, seed: int) -> dict:
    job = f"{arch}/seed{seed}"
    cfg = plan.config(job)
    data = load_arrays(cfg)  # the recipe's tensors, without its training augmentation
    x_train, x_test = data.x_train, data.x_test
    shape = tuple(x_test.shape[1:])
    torch.manual_seed(cfg.train.seed)
    model = build_supernet(
        cfg.model, num_classes=data.num_classes, in_chans=shape[0], image_size=shape[-1]
    )
    load_model(model, plan.dir(job) / "gate" / "last.pt")
    model.eval()
    te = scores(model, x_test, data.y_test)
    macs = macs_per_width(model, input_shape=shape)
    small, large = float(macs[model.widths[0]]), float(macs[model.widths[-1]])
    g = float(gate_macs(model))
    target = (large / SPEEDUP - g - small) / (large - small)  # the share that meets 1.5x
    shares = [*SHARES, target]
    kw = {"macs_small": small, "macs_large": large, "shares": shares, "gate_macs": g}
    # Two-fold cross-calibration: each half's threshold comes from the other half's scores (no
    # labels are read; no image's own score sets its threshold), then the halves are averaged.
    half = torch.randperm(len(x_test), generator=torch.Generator().manual_seed(seed))
    a, b = half[: len(half) // 2], half[len(half) // 2 :]
    parts = [
        budget_curve(
            te["score"][cal], te["score"][ev], te["small_ok"][ev], te["large_ok"][ev], **kw
        )
        for cal, ev in ((b, a), (a, b))
    ]
    w = len(a) / len(half)
    curve = {k: w * parts[0][k] + (1 - w) * parts[1][k] for k in parts[0]}
    # For the notes: the share a threshold calibrated on the training images routes on test
    # images (the supernet fits its training images, so their scores can differ).
    on_train = budget_curve(
        scores(model, x_train, None)["score"],
        te["score"],
        te["small_ok"],
        te["large_ok"],
        **{**kw, "shares": [target]},
    )
    at = {k: float(v[-1]) for k, v in curve.items()}
    rows = plan.outputs(job)  # the supernet run's rows joined with its static jobs'

    static = {
        w: (float(rows[f"static_w{w:g}"]["macs"]), float(rows[f"static_w{w:g}"]["final"]["acc"]))
        for w in cfg.model.widths
    }
    hard = ~te["small_ok"]
    return {
        "train_calibrated_share": float(on_train["share"][0]),
        "curve": {k: [round(float(v), 5) for v in vals[:-1]] for k, vals in curve.items()},
        "full_macs": large,
        "auc": float(roc_auc_score(hard.numpy(), te["score"].numpy())),
        "budget": at,
        "static_at_budget": interpolate_static(static, at["macs"])[0],
        "static_full": static[cfg.model.widths[-1]][1],
        "static": static,
    }


def results(per: dict[str, list[dict]], seeds: list[int]) -> Results:
    rows, claims = [], []
    for arch, ms in per.items():
        n = f"{arch}: "
        b = f" at {SPEEDUP:g}x fewer MACs"
        extra = {
            "share_target_mean": round(float(np.mean([m["budget"]["target"] for m in ms])), 4),
            "share_routed_mean": round(float(np.mean([m["budget"]["share"] for m in ms])), 4),
            "share_if_train_calibrated_mean": round(
                float(np.mean([m["train_calibrated_share"] for m in ms])), 4
            ),
            "macs_frac_mean": round(
                float(np.mean([m["budget"]["macs"] / m["full_macs"] for m in ms])), 4
            ),
        }
        rows += [
            Row(
                name=n + "AUC of the gate's score for 'slimmest wrong'",
                values=[m["auc"] for m in ms],
            ),
            Row(name=n + "chance (AUC 0.5)", values=[0.5] * len(ms)),
            Row(name=n + "budgeted gate" + b, values=[m["budget"]["acc"] for m in ms], extra=extra),
            Row(
                name=n + "random routing" + b,
                values=[m["budget"]["random_acc"] for m in ms],
                extra=extra,
            ),
            Row(
                name=n + "oracle routing" + b,
                values=[m["budget"]["oracle_acc"] for m in ms],
                extra=extra,
            ),
            Row(name=n + "static curve" + b, values=[m["static_at_budget"] for m in ms]),
            Row(
                name=n + "static full width - 1 point", values=[m["static_full"] - 0.01 for m in ms]
            ),
        ]
        auc, gate = n + "AUC of the gate's score for 'slimmest wrong'", n + "budgeted gate" + b
        # (what the study's claim says, its right-hand row, the benchmark claim it explains)
        for text, right, explains in (
            (
                "the gate's score ranks 'slimmest wrong' images better than chance",
                n + "chance (AUC 0.5)",
                "the trained gate beats a random gate at the same cost",
            ),
            (
                "ranked by the gate's score, routing beats random routing" + b,
                n + "random routing" + b,
                "the trained gate beats a random gate at the same cost",
            ),
            (
                "the budgeted gate loses at most 1 point vs the full-width static network" + b,
                n + "static full width - 1 point",
                "DS-Net loses at most 1 point vs the full-width static network",
            ),
            (
                "the budgeted gate is on or above the static curve" + b,
                n + "static curve" + b,
                "DS-Net is on or above the static curve at equal mean MACs",
            ),
        ):
            claims.append(
                Claim(
                    text=f"[budget routing] {arch}: {text}",
                    left=auc if right.endswith("(AUC 0.5)") else gate,
                    op=">",
                    right=right,
                    explains=n + explains,
                )
            )
    return Results(
        benchmark="dsnet_gate_budget",
        command="python benchmarks/studies/dsnet_gate_budget.py --seeds "
        + ",".join(map(str, seeds)),
        dataset="mnist-rot-back test images (10000), the dsnet benchmark's runs",
        metric="test accuracy (AUC rows: ROC AUC)",
        higher_is_better=True,
        seeds=seeds,
        rows=rows,
        claims=claims,
        figures=[
            Figure(caption="accuracy vs mean MACs of budget routing (seed mean)", path=str(FIGURE))
        ],
        notes="Budget routing is an extension, not the paper: the trained gate's softmax on the "
        "largest width ranks images; a threshold routes a target share to the largest width, the "
        "rest to the slimmest; two-fold cross-calibration on the test images: each half's "
        "threshold is the score quantile of the other half (scores only, no labels), the "
        "halves' results averaged. A threshold calibrated on the training images instead can "
        "miss the share on test images (extra share_if_train_calibrated_mean). "
        f"Targets: the share whose MACs are 1/{SPEEDUP:g} of the full width's (gate included); "
        "rows are at the share really routed (extra: share_routed_mean, "
        "macs_frac_mean). Random routing = expected accuracy of routing that share at random; "
        "oracle = images only the largest width gets right go first. Static curve: the "
        "benchmark's static networks, linear in MACs between neighbours. Nothing retrained.",
    )


def plot(per: dict[str, list[dict]], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(5 * len(per), 4))
    FigureCanvasAgg(fig)
    for i, (arch, ms) in enumerate(per.items()):
        ax = fig.add_subplot(1, len(per), i + 1)
        full = np.mean([m["full_macs"] for m in ms])

        mean = {k: np.mean([m["curve"][k] for m in ms], axis=0) for k in ms[0]["curve"]}
        x = mean["macs"] / full
        ax.plot(x, mean["acc"], "o-", ms=3, label="gate score, budget routing")
        ax.plot(x, mean["random_acc"], "--", label="random routing (same share)")
        ax.plot(x, mean["oracle_acc"], ":", label="oracle routing")
        widths = sorted(ms[0]["static"])
        sx = [np.mean([m["static"][w][0] for m in ms]) / full for w in widths]
        sy = [np.mean([m["static"][w][1] for m in ms]) for w in widths]
        ax.plot(sx, sy, "s-", color="grey", ms=4, label="static networks")
        ax.axvline(1 / SPEEDUP, color="k", lw=0.6, ls="-.", label=f"{SPEEDUP:g}x fewer MACs")
        ax.set_xlabel("mean MACs / full width")
        ax.set_ylabel("test accuracy")
        ax.set_title(f"{arch} (mean of {len(ms)} seeds)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    torch.set_num_threads(1)
    plan = make_plan(get_benchmark("dsnet"), seeds=seeds)
    per: dict[str, list[dict]] = {}
    for arch in ARCHS:
        per[arch] = []
        for s in seeds:
            m = measure(plan, arch, s)
            per[arch].append(m)
            print(f"{arch} seed {s}: auc {m['auc']:.3f} budget {m['budget']}", flush=True)
    res = results(per, seeds)
    write_results(PATH, res)
    plot(per, PATH.parent / FIGURE)
    for cr in res.evaluate_claims():
        print(cr.describe())
    print("written:", PATH)


if __name__ == "__main__":
    main()
