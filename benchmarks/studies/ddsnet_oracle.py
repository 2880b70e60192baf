"""Could any gate reach DDS-Net's claim on the ddsnet benchmark's ladders?

In ``frugalcv bench ddsnet`` the trained gate sends every test tile to the widest rung, so
"DDS-Net is within 0.1 dB of the full width at no more than 60% of its MACs" fails on its MACs
half. Two explanations differ in what they blame: the gate (it could route cheaper and does
not) or the ladder (no routing over these sub-networks is good enough at 60% of the MACs). This
study separates them, without retraining anything, on each finished job's own test tiles:

- **oracle routing**: the routing that knows every tile's PSNR at every rung
  (:func:`frugalcv.slim.ddsnet.oracle_routes`), at 60% of the full width's MACs (the gate's own
  MACs taken off the budget). Over the benchmark's 4 rungs, and over the whole tailoring ladder
  (every rung of Stage 2). An upper bound for any gate on the same rungs.
- **the gate's own rule, done perfectly**: the rung the gate's training targets name for each
  test tile (:func:`~frugalcv.slim.ddsnet.gate_targets`, "cheapest rung within the tolerance of
  the widest") at the benchmark's 0.1 dB and at looser tolerances: the MACs a perfect gate
  would spend, and its PSNR.
- **no routing**: the best single rung of the ladder at no more than 60% of the MACs.

Against them: the supernet's full width (widest rung), the trained gate (the benchmark's row,
recomputed here as a check), and the static networks' curve at 60% of the MACs.

Each job's supernet, rungs and gate come from its ``gate/last.pt``; the whole ladder is rebuilt
with Stage 2 (``tailor``, deterministic) and checked against the job's ``ladder.json``.

    FRUGALCV_RUNS=... python benchmarks/studies/ddsnet_oracle.py [--settings 25,blind]

Jobs not finished in ``$FRUGALCV_RUNS`` are skipped (named on stdout; the file lists the seeds
used per setting). Writes ``benchmarks/results/studies/ddsnet_oracle.json`` (claims explain the
benchmark's) and ``benchmarks/results/studies/figures/ddsnet_oracle.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from frugalcv.benchmarks import get_benchmark
from frugalcv.benchmarks.ddsnet import SETTINGS
from frugalcv.benchmarks.runner import make_plan
from frugalcv.core.checkpoint import load_model
from frugalcv.reporting.results import Claim, Figure, Results, Row, write_results
from frugalcv.slim.ddsnet import (
    DenoiseGate,
    DynamicDenoiser,
    SlimDnCNN,
    gate_targets,
    oracle_routes,
    psnr_per_image,
)
from frugalcv.slim.ddsnet.data import load_data
from frugalcv.slim.ddsnet.evaluate import interpolate_curve
from frugalcv.slim.ddsnet.recipe import tailor_ladder

PATH = Path("benchmarks/results/studies/ddsnet_oracle.json")
FIGURE = Path("figures/ddsnet_oracle.png")  # relative to the results file's folder
BUDGET = 0.6  # the claim's MACs half: at most 60% of the full width's mean MACs
TOLERANCES = (0.1, 0.2, 0.3, 0.5)  # dB; the benchmark's gate is trained at 0.1
CURVE = [i / 40 for i in range(4, 41)]  # budgets (share of the full width) for the figure
LADDER_CHECK_DB = 1e-3


def rung_psnr(dyn: DynamicDenoiser, noisy: list[torch.Tensor], clean: list[torch.Tensor]):
    """``(N, K)`` PSNR of every rung of ``dyn`` on each test tile (batches of equal tiles)."""
    x, y = torch.stack(noisy), torch.stack(clean)
    cols = []
    for k in range(dyn.num_choices):
        out = torch.cat([dyn.forward_rung(x[i : i + 64], k) for i in range(0, len(x), 64)])
        cols.append(psnr_per_image(out, y))
    return torch.stack(cols, dim=1)


def routed(psnr: torch.Tensor, macs: torch.Tensor, route: torch.Tensor) -> tuple[float, float]:
    """Mean PSNR and mean MACs of a routing."""
    return float(psnr.gather(1, route[:, None]).mean()), float(macs[route].mean())


def two_way(psnr: torch.Tensor, macs: torch.Tensor, score: torch.Tensor, budget: float) -> dict:
    """Budget routing by the gate's score between two rungs: the widest, and the widest rung
    that fits the budget alone (``lo``). The share of tiles the budget lets through goes to
    the widest rung, highest scores first; next to it the same share at random (expected
    PSNR) and by the true gain (oracle). PSNR values and the MACs spent (share of the full)."""
    fits = (macs <= budget).nonzero()
    k = int(fits.max()) if len(fits) else 0
    lo, hi = psnr[:, k], psnr[:, -1]
    share = min(max((budget - float(macs[k])) / float(macs[-1] - macs[k]), 0.0), 1.0)
    n = int(share * len(lo))  # tiles routed to the widest rung

    def routed_by(order: torch.Tensor) -> float:
        wide = torch.zeros(len(lo), dtype=torch.bool)
        wide[order[:n]] = True
        return float(torch.where(wide, hi, lo).mean())

    return {
        "lo": k,
        "share": n / len(lo),
        "macs_frac": float(macs[k] + n / len(lo) * (macs[-1] - macs[k])) / float(macs[-1]),
        "gate": routed_by(torch.argsort(score, descending=True, stable=True)),
        "random": float(lo.mean() + n / len(lo) * (hi - lo).mean()),
        "oracle": routed_by(torch.argsort(hi - lo, descending=True, stable=True)),
    }


def measure(plan, setting: str, seed: int) -> dict:
    job = f"sigma{setting}/seed{seed}"
    folder = plan.dir(job)
    cfg = plan.config(job)
    data = load_data(cfg)
    m = cfg.model
    saved = json.loads((folder / "ladder.json").read_text())
    bench_rows = {r["name"]: r for r in json.loads((folder / "rows.json").read_text())["rows"]}

    def new_supernet() -> SlimDnCNN:
        return SlimDnCNN(
            in_channels=data.in_chans,
            channels=m.channels,
            depth=m.depth,
            min_channels=m.min_channels,
            channel_step=m.channel_step,
        )

    with torch.no_grad():
        # the whole ladder again (Stage 2 is deterministic), from Stage 1's supernet as the
        # recipe called it (the gate stage leaves the last rung's BN statistics in its copy)
        stage1 = load_model(new_supernet(), folder / "supernet" / "last.pt").eval()
        ladder = tailor_ladder(cfg, data, stage1)
        got = [r.psnr for r in ladder]
        want = [r["psnr"] for r in saved["rungs"]]
        if (
            len(got) != len(want)
            or max(abs(a - b) for a, b in zip(got, want, strict=True)) > LADDER_CHECK_DB
        ):
            raise RuntimeError(f"{job}: the rebuilt ladder differs from ladder.json; not compared")
        full = DynamicDenoiser(supernet=stage1, rungs=ladder).eval()
        # the benchmark's DDS-Net: the picked rungs and the trained gate (its checkpoint holds
        # the rungs' buffers too)
        picked = [ladder[i] for i in saved["picked"]]
        dyn = DynamicDenoiser(
            supernet=new_supernet(),
            rungs=picked,
            gate=DenoiseGate(in_channels=data.in_chans, num_choices=len(picked)),
        )
        load_model(dyn, folder / "gate" / "last.pt").eval()
        tiles = {tuple(t.shape[-2:]) for t in data.test_clean}
        if len(tiles) != 1:
            raise RuntimeError(f"{job}: test tiles of several sizes {tiles}; expected one")
        size = tiles.pop()
        p_all = rung_psnr(full, data.test_noisy, data.test_clean)  # (N, L), MACs ascending
        p4 = rung_psnr(dyn, data.test_noisy, data.test_clean)  # (N, 4)
        x = torch.stack(data.test_noisy)
        routes = [dyn.route(x[i : i + 64]) for i in range(0, len(x), 64)]
        gate_route = torch.cat([r.index for r in routes])
        soft = torch.cat([r.soft for r in routes])  # eval: the softmax, no Gumbel noise
    # the gate's score: its expected rung under the softmax (high = wants a wide rung)
    score = (soft * torch.arange(soft.shape[1], dtype=soft.dtype)).sum(1)
    macs_all = full.macs(size)
    macs4 = dyn.macs(size)
    top = float(macs_all[-1])
    gate = float(dyn.gate_macs(size))
    budget = BUDGET * top - gate  # the gate's own MACs count against DDS-Net's budget

    def oracle(p: torch.Tensor, c: torch.Tensor, b: float) -> tuple[float, float]:
        return routed(p, c, oracle_routes(p, c, b))

    gate_p, gate_m = routed(p4, macs4, gate_route)
    out = {
        "tiles": len(x),
        "full_macs": top,
        "gate_macs": gate,
        "supernet_full": float(p4[:, -1].mean()),
        "trained_gate": {"psnr": gate_p, "macs_frac": (gate_m + gate) / top},
        "oracle4": dict(zip(("psnr", "macs"), oracle(p4, macs4, budget), strict=True)),
        "oracle_ladder": dict(zip(("psnr", "macs"), oracle(p_all, macs_all, budget), strict=True)),
        "curve4": [oracle(p4, macs4, b * top - gate) for b in CURVE],
        "curve_ladder": [oracle(p_all, macs_all, b * top - gate) for b in CURVE],
        "ladder": [
            (float(c) / top, float(v)) for c, v in zip(macs_all, p_all.mean(0), strict=True)
        ],
        "gap_easy_share": float((p4[:, -1] - p4[:, 0] <= TOLERANCES[0]).float().mean()),
    }
    fits = [k for k in range(full.num_choices) if macs_all[k] <= BUDGET * top]
    best = max(fits, key=lambda k: float(p_all[:, k].mean()))
    out["two_way"] = two_way(p4, macs4, score, budget)
    hard = gate_targets(p4, tolerance=TOLERANCES[0]) == p4.shape[1] - 1
    mixed = 0 < int(hard.sum()) < len(hard)
    out["auc"] = float(roc_auc_score(hard.numpy(), score.numpy())) if mixed else 0.5
    out["single"] = {"psnr": float(p_all[:, best].mean()), "macs_frac": float(macs_all[best]) / top}
    out["rule"] = {}
    for t in TOLERANCES:
        pp, mm = routed(p4, macs4, gate_targets(p4, tolerance=t))
        out["rule"][t] = {"psnr": pp, "macs_frac": (mm + gate) / top}
    static = {}
    for w in cfg.ddsnet.widths:
        r = bench_rows[f"static_c{w}"]
        static[w] = (float(r["macs_frac"]), float(r["final"]["psnr"]))
    out["static"] = static
    out["static_full"] = static[max(static)][1]
    out["static_at_budget"] = interpolate_curve(list(static.values()), BUDGET)[0]
    for k in ("oracle4", "oracle_ladder"):
        out[k]["macs_frac"] = (out[k].pop("macs") + gate) / top
    return out


def results(per: dict[str, list[dict]], seeds: dict[str, list[int]]) -> Results:
    rows, claims = [], []
    at = f" at {BUDGET:g} of the MACs"
    for setting, ms in per.items():
        if not ms:
            continue
        tag = f"sigma {setting}: "

        def frac(key: str, ms=ms) -> dict:
            return {"macs_frac_mean": round(float(np.mean([m[key]["macs_frac"] for m in ms])), 4)}

        names = {
            "full": tag + "supernet full width (widest rung)",
            "full_tol": tag + "supernet full width - 0.1 dB",
            "static_tol": tag + "static full width - 0.1 dB",
            "static": tag + "static curve" + at,
            "gate": tag + "trained gate (the benchmark's DDS-Net)",
            "oracle4": tag + f"oracle routing over the 4 rungs{at}",
            "oracle_ladder": tag + f"oracle routing over the whole ladder{at}",
            "single": tag + f"best single ladder rung at <= {BUDGET:g} of the MACs",
            "two_gate": tag + f"gate's score, two-way budget routing{at}",
            "two_random": tag + f"random two-way routing{at}",
            "two_oracle": tag + f"oracle two-way routing{at}",
        }
        rows += [
            Row(name=names["full"], values=[m["supernet_full"] for m in ms]),
            Row(name=names["full_tol"], values=[m["supernet_full"] - 0.1 for m in ms]),
            Row(name=names["static_tol"], values=[m["static_full"] - 0.1 for m in ms]),
            Row(name=names["static"], values=[m["static_at_budget"] for m in ms]),
            Row(
                name=names["gate"],
                values=[m["trained_gate"]["psnr"] for m in ms],
                extra=frac("trained_gate"),
            ),
            Row(
                name=names["oracle4"],
                values=[m["oracle4"]["psnr"] for m in ms],
                extra=frac("oracle4"),
            ),
            Row(
                name=names["oracle_ladder"],
                values=[m["oracle_ladder"]["psnr"] for m in ms],
                extra=frac("oracle_ladder"),
            ),
            Row(
                name=names["single"], values=[m["single"]["psnr"] for m in ms], extra=frac("single")
            ),
            Row(
                name=names["two_gate"],
                values=[m["two_way"]["gate"] for m in ms],
                extra={
                    **frac("two_way"),
                    "share_widest_mean": round(
                        float(np.mean([m["two_way"]["share"] for m in ms])), 4
                    ),
                    "auc_hard_mean": round(float(np.mean([m["auc"] for m in ms])), 4),
                },
            ),
            Row(
                name=names["two_random"],
                values=[m["two_way"]["random"] for m in ms],
                extra=frac("two_way"),
            ),
            Row(
                name=names["two_oracle"],
                values=[m["two_way"]["oracle"] for m in ms],
                extra=frac("two_way"),
            ),
        ]
        for t in TOLERANCES:
            rule = [m["rule"][t] for m in ms]
            rows.append(
                Row(
                    name=tag + f"perfect gate, its own rule at tolerance {t:g} dB",
                    values=[r["psnr"] for r in rule],
                    extra={
                        "macs_frac_mean": round(float(np.mean([r["macs_frac"] for r in rule])), 4),
                        "easy_tile_share_mean": round(
                            float(np.mean([m["gap_easy_share"] for m in ms])), 4
                        )
                        if t == TOLERANCES[0]
                        else None,
                    },
                )
            )
        within = (
            f"sigma {setting}: DDS-Net is within 0.1 dB of the supernet's full width "
            "(MACs half: extra.macs_frac <= 0.6)"
        )
        above = f"sigma {setting}: DDS-Net beats the static networks at equal mean MACs"
        for text, left, op, right, explains in (
            (
                "oracle routing over the 4 rungs" + at + " is within 0.1 dB of the full width",
                names["oracle4"],
                ">=",
                names["full_tol"],
                within,
            ),
            (
                "oracle routing over the whole ladder" + at + " is within 0.1 dB of the full width",
                names["oracle_ladder"],
                ">=",
                names["full_tol"],
                within,
            ),
            (
                "the best single ladder rung" + at + " is within 0.1 dB of the full width",
                names["single"],
                ">=",
                names["full_tol"],
                within,
            ),
            (
                "ranked by the gate's score, two-way routing beats random routing" + at,
                names["two_gate"],
                ">",
                names["two_random"],
                within,
            ),
            (
                "oracle routing over the 4 rungs" + at + " beats the static curve there",
                names["oracle4"],
                ">",
                names["static"],
                above,
            ),
        ):
            claims.append(
                Claim(
                    text=f"[oracle] {tag}{text}", left=left, op=op, right=right, explains=explains
                )
            )
    used = "; ".join(f"sigma {s}: seeds {','.join(map(str, v))}" for s, v in seeds.items() if v)
    all_seeds = sorted({s for v in seeds.values() for s in v})
    return Results(
        benchmark="ddsnet_oracle",
        command="python benchmarks/studies/ddsnet_oracle.py --settings "
        + ",".join(s for s, v in seeds.items() if v),
        dataset="the ddsnet benchmark's test tiles (4 photographs, 64 px tiles) and finished runs "
        f"({used})",
        metric="test PSNR (dB)",
        higher_is_better=True,
        seeds=all_seeds,
        rows=rows,
        claims=claims,
        figures=[
            Figure(
                caption="test PSNR vs mean MACs: oracle routing, the gate's rule, the "
                "ladder, the static networks (seed mean)",
                path=str(FIGURE),
            )
        ],
        notes="Nothing retrained: each job's gate/last.pt (supernet, 4 rungs, gate); the whole "
        "ladder rebuilt by Stage 2 and checked against ladder.json. Oracle routing knows each "
        "tile's PSNR at every rung and maximises mean PSNR at a mean-MACs budget (Lagrangian, "
        f"frugalcv.slim.ddsnet.oracle_routes); budget {BUDGET:g} of the full width's MACs minus "
        "the gate's MACs. 'Perfect gate, its own rule': the rung the gate's training targets "
        "name for each test tile (cheapest within the tolerance of the widest); MACs include "
        "the gate. Two-way budget routing: the widest rung that fits the budget alone and the "
        "widest "
        "rung; the share of tiles the budget allows goes to the widest, ranked by the gate's "
        "score (its softmax's expected rung), at random (expected PSNR) or by the true gain "
        "(oracle); auc_hard: ROC AUC of that score for tiles whose rule target is the widest "
        "rung. Static curve: the benchmark's static networks, linear in MACs. extra: mean "
        "MACs as a share of the full width's; easy_tile_share: tiles whose cheapest rung is "
        "within 0.1 dB of the widest.",
    )


def plot(per: dict[str, list[dict]], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    per = {s: ms for s, ms in per.items() if ms}
    fig = MplFigure(figsize=(5.5 * len(per), 4.2))
    FigureCanvasAgg(fig)
    for i, (setting, ms) in enumerate(per.items()):
        ax = fig.add_subplot(1, len(per), i + 1)
        full = np.mean([m["full_macs"] for m in ms])
        for key, style, label in (
            ("curve_ladder", "-", "oracle routing, whole ladder"),
            ("curve4", "--", "oracle routing, the 4 rungs"),
        ):
            c = np.mean([np.array(m[key]) for m in ms], axis=0)
            ax.plot(c[:, 1] / full, c[:, 0], style, label=label)
        lad = np.mean([np.array(m["ladder"]) for m in ms], axis=0)
        ax.plot(lad[:, 0], lad[:, 1], ".", color="C2", label="ladder rungs (no routing)")
        rule = [
            (
                np.mean([m["rule"][t]["macs_frac"] for m in ms]),
                np.mean([m["rule"][t]["psnr"] for m in ms]),
            )
            for t in TOLERANCES
        ]
        ax.plot(
            *zip(*rule, strict=True),
            "^",
            color="C3",
            label="perfect gate, rule at " + "/".join(f"{t:g}" for t in TOLERANCES) + " dB",
        )
        g = (
            np.mean([m["trained_gate"]["macs_frac"] for m in ms]),
            np.mean([m["trained_gate"]["psnr"] for m in ms]),
        )
        ax.plot(*g, "*", ms=12, color="k", label="trained gate (benchmark)")
        ws = sorted(ms[0]["static"])
        sx = [np.mean([m["static"][w][0] for m in ms]) for w in ws]
        sy = [np.mean([m["static"][w][1] for m in ms]) for w in ws]
        ax.plot(sx, sy, "s-", color="grey", ms=4, label="static networks")
        ax.axhline(
            np.mean([m["supernet_full"] for m in ms]) - 0.1,
            color="k",
            lw=0.6,
            ls=":",
            label="supernet full width - 0.1 dB",
        )
        ax.axvline(BUDGET, color="k", lw=0.6, ls="-.", label=f"{BUDGET:g} of the MACs")
        ax.set_xlabel("mean MACs / full width")
        ax.set_ylabel("test PSNR (dB)")
        ax.set_title(f"sigma {setting} (mean of {len(ms)} seeds)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--settings", default=",".join(SETTINGS))
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    settings = args.settings.split(",")
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise SystemExit(f"unknown setting(s) {unknown}; use some of {SETTINGS}")
    torch.set_num_threads(1)
    plan = make_plan(get_benchmark("ddsnet"), seeds=seeds, check_data=False)
    per: dict[str, list[dict]] = {}
    used: dict[str, list[int]] = {}
    for setting in settings:
        per[setting], used[setting] = [], []
        for s in seeds:
            job = f"sigma{setting}/seed{s}"
            if not (plan.dir(job) / "rows.json").is_file():
                print(f"{job}: not finished in {plan.dir(job)}; skipped", flush=True)
                continue
            m = measure(plan, setting, s)
            per[setting].append(m)
            used[setting].append(s)
            print(
                f"{job}: full {m['supernet_full']:.3f}, gate {m['trained_gate']}, "
                f"oracle4 {m['oracle4']}, ladder {m['oracle_ladder']}, single {m['single']}, "
                f"rule {m['rule']}",
                flush=True,
            )
    if not any(per.values()):
        raise SystemExit("no finished ddsnet job in FRUGALCV_RUNS; run frugalcv bench ddsnet first")
    res = results(per, used)
    write_results(PATH, res)
    plot(per, PATH.parent / FIGURE)
    for cr in res.evaluate_claims():
        print(cr.describe())
    print("written:", PATH)


if __name__ == "__main__":
    main()
