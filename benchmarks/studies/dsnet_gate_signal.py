"""Why the DS-Net gate routes every image to one width: how much do its inputs say?

Stage II trains the gate on sandwich gate sparsification targets: "hard" (route to the largest
width) when the slimmest sub-network is wrong on the image, else "easy". With argmax routing, an
image goes to the largest width only when the gate's P(hard) exceeds P(easy). This study asks
whether the gate's input, the pooled trunk features, carries the "hard" signal at all, and how
often even a well-fitted classifier on it would cross that threshold.

For every seed of ``frugalcv bench dsnet`` (nothing retrained: the Stage I EMA supernet of each
job's ``supernet/last.pt``, BN recalibrated on the training set as the recipe does) it fits a
logistic regression (scikit-learn, default L2) on the training images' pooled features and
scores the 10000 test images:

- ``auc_trunk``: ROC AUC of P(hard) from the gate's own input (pooled trunk features);
- ``auc_stage2``: the same from the features one residual stage later (a later gate position);
- ``auc_confidence``: the slimmest sub-network's own max-softmax confidence, which a gate
  cannot see before running the body (an upper reference, as in early-exit networks);
- ``routed_hard``: the fraction of test images whose fitted P(hard) from the trunk exceeds 0.5
  (what argmax routing on a perfectly trained binary gate would send to the largest width);
- ``hard_rate``: the fraction of test images that are "hard".

    FRUGALCV_RUNS=... FRUGALCV_DATA=... python benchmarks/studies/dsnet_gate_signal.py

Writes ``benchmarks/results/studies/dsnet_gate_signal.json`` (the benchmarks' schema, one row
per quantity with its per-seed values), with the two conditions the benchmark's gate claim needs
as claims that explain it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from frugalcv.benchmarks import get_benchmark
from frugalcv.benchmarks.runner import make_plan
from frugalcv.core.checkpoint import load_model
from frugalcv.reporting.results import Claim, Results, Row, write_results
from frugalcv.slim.dsnet import recalibrate_supernet
from frugalcv.slim.dsnet_recipe.data import load_data
from frugalcv.slim.dsnet_recipe.models import build_supernet
from frugalcv.slim.gate import sgs_targets

PATH = Path("benchmarks/results/studies/dsnet_gate_signal.json")
ARCH = "ds_resnet"


@torch.no_grad()
def features(model, loader) -> dict[str, np.ndarray]:
    """Pooled trunk and next-stage features, and the slimmest width's correctness/confidence."""
    out: dict[str, list] = {"trunk": [], "stage2": [], "hard": [], "conf": []}
    for x, y in loader:
        f = model.forward_trunk(x)
        z = model.forward_body(f, model.widths[0])
        p = torch.softmax(z, -1)
        # the gate's own training target ("official" rule: the largest width when the slimmest
        # is wrong; the largest sub-network's logits are not read by it)
        target = sgs_targets(z, z, y, num_choices=model.num_choices)
        out["hard"].append((target > 0).numpy())
        out["conf"].append(p.max(-1).values.numpy())
        out["trunk"].append(f.mean((2, 3)).numpy())
        model.set_body_width(1.0)
        out["stage2"].append(model.body[0](f).mean((2, 3)).numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def measure(plan, seed: int) -> dict[str, float]:
    job = f"{ARCH}/seed{seed}"
    cfg = plan.config(job)
    data = load_data(cfg)
    torch.manual_seed(cfg.train.seed)
    model = build_supernet(
        cfg.model,
        num_classes=data.num_classes,
        in_chans=data.input_shape[0],
        image_size=data.input_shape[-1],
    )
    load_model(model, plan.dir(job) / "supernet" / "last.pt")
    recalibrate_supernet(model, data.train, max_batches=cfg.dsnet.recal_batches or None)
    model.eval()
    tr, te = features(model, data.train), features(model, data.test)
    out = {"hard_rate": float(te["hard"].mean())}
    for key in ("trunk", "stage2"):
        clf = LogisticRegression(max_iter=5000).fit(tr[key], tr["hard"])
        p_hard = clf.predict_proba(te[key])[:, 1]
        out[f"auc_{key}"] = float(roc_auc_score(te["hard"], p_hard))
        if key == "trunk":
            out["routed_hard"] = float((p_hard > 0.5).mean())
    out["auc_confidence"] = float(roc_auc_score(te["hard"], -te["conf"]))
    return {k: round(v, 4) for k, v in out.items()}


LABELS = {
    "auc_trunk": "AUC of P(hard) from the pooled trunk features (the gate's input)",
    "auc_stage2": "AUC of P(hard) from the features one stage later",
    "auc_confidence": "AUC of the slimmest sub-network's own confidence (not a gate input)",
    "routed_hard": "fraction of test images with P(hard) from the trunk > 0.5",
    "hard_rate": "fraction of test images the slimmest gets wrong ('hard')",
}
CHANCE, NONE = "chance (AUC 0.5)", "no image (fraction 0)"
CLAIM = "ds_resnet: the trained gate beats a random gate at the same cost"  # the benchmark's


def results(per_seed: list[dict[str, float]], seeds: list[int]) -> Results:
    """One row per quantity (per-seed values), two reference rows, and the two conditions the
    benchmark's gate claim needs, stated as claims that explain it."""
    rows = [Row(name=label, values=[m[k] for m in per_seed]) for k, label in LABELS.items()]
    rows += [Row(name=CHANCE, values=[0.5] * len(seeds)), Row(name=NONE, values=[0.0] * len(seeds))]
    claims = [
        Claim(
            text="[gate input] the pooled trunk features predict the SGS target better than chance",
            left=LABELS["auc_trunk"],
            op=">",
            right=CHANCE,
            explains=CLAIM,
        ),
        Claim(
            text="[gate input] an argmax gate fitted on them sends some images to the largest "
            "width",
            left=LABELS["routed_hard"],
            op=">",
            right=NONE,
            explains=CLAIM,
        ),
    ]
    return Results(
        benchmark="dsnet_gate_signal",
        command="python benchmarks/studies/dsnet_gate_signal.py --seeds "
        + ",".join(map(str, seeds)),
        dataset="mnist-rot-back test images (10000), the dsnet benchmark's DS-ResNet-8 runs",
        metric="per row: the quantity its name says (AUCs: 'slimmest wrong' vs right)",
        higher_is_better=True,
        seeds=seeds,
        rows=rows,
        claims=claims,
        notes="Each seed's Stage I EMA supernet (nothing retrained), BN recalibrated on the "
        "training set; logistic regression (scikit-learn defaults) fitted on the 6000 training "
        "images. 'routed_hard' is what argmax routing on a perfectly fitted binary gate would "
        "send to the largest width. The last two rows are constant references for the claims.",
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    torch.set_num_threads(1)
    plan = make_plan(get_benchmark("dsnet"), seeds=seeds)
    per_seed = [measure(plan, s) for s in seeds]
    for s, m in zip(seeds, per_seed, strict=True):
        print(f"seed {s}: {m}", flush=True)
    res = results(per_seed, seeds)
    write_results(PATH, res)
    for cr in res.evaluate_claims():
        print(cr.describe())
    print("written:", PATH)


if __name__ == "__main__":
    main()
