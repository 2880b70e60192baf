"""Explanation test for the failed GZSD claim of ``contrastzsd``: is it calibration?

The benchmark scores GZSD uncalibrated (``eval.gzsd_seen_bias=0``), where seen classes dominate.
This re-scores the trained plain and full models of every seed (their ``last.pt`` in the
benchmark's run folders, nothing retrained) with several constant seen-class biases (calibrated
stacking) and reports the GZSD harmonic mean of each. The biases are a sweep, not a tuned value:
the question is whether full > plain holds at every calibration, not which bias is best.

    FRUGALCV_RUNS=... python benchmarks/studies/contrastzsd_calibration.py [--seeds 0,1,2]

Writes ``benchmarks/results/studies/contrastzsd_calibration.json``.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from frugalcv.benchmarks import get_benchmark
from frugalcv.benchmarks.runner import make_plan
from frugalcv.core.checkpoint import load_model
from frugalcv.core.jsonio import write_json
from frugalcv.zsd import recipe
from frugalcv.zsd.metrics import gzsd_metrics

BIASES = (0.0, -1.0, -2.0, -3.0)
ROWS = ("plain", "full")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    plan = make_plan(get_benchmark("contrastzsd"), seeds=seeds, check_data=False)
    out: dict = {
        "claim": {  # the benchmark's claim this study tries to explain, as data
            "text": "full ContrastZSD beats the plain semantic detector on GZSD harmonic mean",
            "left": "full",
            "op": ">",
            "right": "plain",
        },
        "biases": list(BIASES),
        "rows": {},
    }
    for seed in seeds:
        cfg = plan.config(f"seed{seed}")
        data = recipe.load_data(cfg.data, seed=cfg.train.seed)
        classes = torch.cat([data.seen_classes, data.unseen_classes])
        for row in ROWS:
            torch.manual_seed(0)
            task = recipe.make_task(cfg, data, row)
            load_model(task.deployable(), plan.dir(f"seed{seed}") / row)
            task.eval()
            for b in BIASES:
                seen, unseen = len(data.seen_classes), len(data.unseen_classes)
                bias = torch.cat([torch.full((seen,), b), torch.zeros(unseen)])
                preds, targets = recipe.predict_set(
                    task, data.test_gzsd, classes=classes, bias=bias, batch_size=16
                )
                g = gzsd_metrics(
                    preds,
                    targets,
                    seen_classes=data.seen_classes,
                    unseen_classes=data.unseen_classes,
                )
                key = f"{row} bias {b:g}"
                out["rows"].setdefault(key, []).append(
                    {k: round(float(g[k]), 4) for k in ("map_seen", "map_unseen", "map_hm")}
                )
                print(seed, key, out["rows"][key][-1], flush=True)
    summary = {}
    for key, vals in out["rows"].items():
        hm = [v["map_hm"] for v in vals]
        summary[key] = {"hm_mean": round(statistics.mean(hm), 4), "hm_values": hm}
    out["summary"] = summary
    out["claim_holds_at_bias"] = {}
    for b in BIASES:
        p, f = summary[f"plain bias {b:g}"], summary[f"full bias {b:g}"]
        out["claim_holds_at_bias"][f"{b:g}"] = f["hm_mean"] > p["hm_mean"]  # from the means above
        print(f"bias {b:g}: plain H {p['hm_mean']:.3f}  full H {f['hm_mean']:.3f}")
    path = Path("benchmarks/results/studies/contrastzsd_calibration.json")
    write_json(path, out)
    print("written:", path)


if __name__ == "__main__":
    main()
