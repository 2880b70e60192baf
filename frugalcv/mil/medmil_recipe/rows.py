"""The scikit-learn rows of ``medmil``: one estimator per event, scored by test mAP."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from frugalcv.core.jsonio import write_json
from frugalcv.core.recipe import RunContext
from frugalcv.mil.medmil_recipe.config import MEDMIL_ROWS, ROWS, Config, MedMilConfig
from frugalcv.mil.medmil_recipe.figures import plot_admitted

__all__ = ["fit_estimator_row", "make_estimator"]


def make_estimator(cfg: MedMilConfig, row: str, *, seed: int):
    """The scikit-learn estimator of one row (every row but ``attention_mil``)."""
    from frugalcv.mil import MEDMIL, MISVM, HardSPL, MeanPoolingMIL, make_regularizer, miSVM

    if row == "mean_pooling":
        return MeanPoolingMIL(pooling=cfg.pooling, C=cfg.C)
    if row in ("mi_svm", "MI_SVM"):
        cls = miSVM if row == "mi_svm" else MISVM
        return cls(C=cfg.svm_C, max_iter=cfg.svm_max_iter, random_state=seed)
    if row not in MEDMIL_ROWS:
        raise ValueError(f"unknown row {row!r}; valid rows: {', '.join(ROWS)}")
    common = dict(
        classifier=cfg.classifier,
        C=cfg.C,
        age_schedule=cfg.age_schedule,
        tol=cfg.tol,
        keep_one_per_bag=cfg.keep_one_per_bag,
        bag_score=cfg.bag_score,
        random_state=seed,
    )
    if row == "no_self_pacing":
        # Every segment admitted at v = 1 in the only round: the round-0 single-instance fit.
        return MEDMIL(
            regularizer=HardSPL(),
            semantic_weight=0.0,
            start_fraction=1.0,
            max_fraction=1.0,
            max_rounds=1,
            **common,
        )
    name = cfg.regularizer if row in ("full", "no_semantic") else row.removeprefix("spl_")
    return MEDMIL(
        regularizer=make_regularizer(name, lam=1.0, gamma=cfg.gamma_ratio),
        semantic_weight=0.0 if row == "no_semantic" else cfg.semantic_weight,
        start_fraction=cfg.start_fraction,
        growth=cfg.growth,
        max_fraction=cfg.max_fraction,
        max_rounds=cfg.max_rounds,
        **common,
    )


def _witness_stats(model, train, targets: np.ndarray) -> dict[str, float]:
    """Of the positive-video segments admitted (v > 0): the share that are key segments
    (precision) and the share of key segments admitted (recall)."""
    pos = targets[train.bag_index] == 1
    admitted = model.reliability_[pos] > 0
    key = train.instance_labels[pos] == 1
    return {
        "precision": float(key[admitted].mean()) if admitted.any() else 0.0,
        "recall": float(admitted[key].mean()) if key.any() else 0.0,
    }


def fit_estimator_row(ctx: RunContext, cfg: Config, row: str, train, test, semantics: str) -> dict:
    """Fit one scikit-learn row per event, score the test bags, write ``<run>/<row>``."""
    from frugalcv.mil import mean_average_precision

    out_dir = ctx.out_dir / row
    scores = np.zeros((test.num_bags, test.num_events))
    fit_s, steps, histories, witness = 0.0, 0, [], []
    use_sem = row in MEDMIL_ROWS and row not in ("no_semantic", "no_self_pacing")
    for e in range(train.num_events):
        model = make_estimator(cfg.medmil, row, seed=ctx.seed)
        targets = train.targets(e)
        kwargs = {}
        if use_sem and semantics != "none":
            kwargs["similarity"] = train.similarity(e)
        t0 = time.perf_counter()
        model.fit(train, targets, **kwargs)
        fit_s += time.perf_counter() - t0
        scores[:, e] = model.decision_function(test)
        if hasattr(model, "history_"):
            steps += model.n_rounds_
            histories.append(model.history_)
            if train.instance_labels is not None:
                witness.append(_witness_stats(model, train, targets))
        else:
            steps += getattr(model, "n_iter_", 1)
    mAP = mean_average_precision(scores, test.labels)
    extra: dict[str, Any] = {"params": train.num_events * (_num_features(train) + 1)}
    if witness:
        extra["admitted_key_precision"] = float(np.mean([w["precision"] for w in witness]))
        extra["admitted_key_recall"] = float(np.mean([w["recall"] for w in witness]))
    if histories:
        extra["semantics"] = semantics if use_sem else "none"
        write_json(
            out_dir / "history.json", {"events": list(train.event_names), "history": histories}
        )
    summary = _summary(ctx, row, mAP, scores, test, steps=steps, wall_s=fit_s, extra=extra)
    write_json(out_dir / "summary.json", summary)
    if row == "full" and histories:
        key_share = None
        if train.instance_labels is not None:
            key_share = [
                float(train.instance_labels[train.targets(e)[train.bag_index] == 1].mean())
                for e in range(train.num_events)
            ]
        plot_admitted(
            histories, list(train.event_names), ctx.out_dir / "admitted.png", key_share=key_share
        )
    return summary


def _num_features(bags) -> int:
    return int(np.prod(bags.features.shape[1:]))


def _summary(ctx, row, mAP, scores, test, *, steps, wall_s, extra) -> dict:
    from frugalcv.mil.metrics import average_precision_per_event

    ap = average_precision_per_event(scores, test.labels)
    return {
        "recipe": ctx.recipe,
        "preset": ctx.preset,
        "name": row,
        "seed": ctx.seed,
        "final": {"map": float(mAP)},
        "final_step": steps,
        # Evaluated once, after fitting: the best is the final value (no selection on test data).
        "best": {"map": float(mAP), "step": steps},
        "steps": steps,
        "wall_s": round(wall_s, 3),
        "per_event_ap": [round(float(a), 4) for a in ap],
        **extra,
    }
