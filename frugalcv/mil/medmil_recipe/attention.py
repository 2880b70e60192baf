"""The ``attention_mil`` row: one attention-MIL Task per event, trained by the shared ``fit``."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from frugalcv.core.jsonio import write_json
from frugalcv.core.loader import DatasetLoader
from frugalcv.core.recipe import RunContext
from frugalcv.core.stages import train_stage
from frugalcv.mil.medmil_recipe.config import Config
from frugalcv.mil.medmil_recipe.rows import _num_features, _summary

__all__ = ["bag_scores", "fit_attention_row"]


def _standardized(train, test):
    """Instance features standardised with the training instances' statistics (as every
    scikit-learn row does internally)."""
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train.features.reshape(train.num_instances, -1))

    def apply(bags):
        x = scaler.transform(bags.features.reshape(bags.num_instances, -1)).astype(np.float32)
        return dataclasses.replace(bags, features=x)

    return apply(train), apply(test)


@torch.no_grad()
def bag_scores(model: torch.nn.Module, bags, *, batch_size: int = 64) -> np.ndarray:
    """(B,) attention-MIL logits of every bag."""
    from frugalcv.core.measure import to_module
    from frugalcv.data.mil import BagDataset, collate_bags

    model.eval()
    data = BagDataset(bags)
    out = []
    for start in range(0, len(data), batch_size):
        batch = collate_bags([data[i] for i in range(start, min(len(data), start + batch_size))])
        # the bags stay on the CPU; the model is where Fabric left it
        logits, _ = model(*to_module((batch["x"], batch["mask"]), model))
        out.append(logits.float().cpu())
    return torch.cat(out).numpy()


def fit_attention_row(ctx: RunContext, cfg: Config, train, test) -> dict:
    """One :class:`AttentionMILTask` per event through the shared ``fit``
    (``<run>/attention_mil/<event>``), then the test mAP of their bag logits."""
    from frugalcv.core.measure import count_params
    from frugalcv.data.mil import BagDataset, collate_bags
    from frugalcv.mil import AttentionMIL, AttentionMILTask, mean_average_precision

    train_s, test_s = _standardized(train, test)
    scores = np.zeros((test.num_bags, test.num_events))
    wall_s, steps, params = 0.0, 0, 0
    for e, event in enumerate(train.event_names):
        torch.manual_seed(cfg.train.seed)  # every event's model from the same initialisation
        model = AttentionMIL(
            in_features=_num_features(train),
            dim=cfg.attention.dim,
            hidden=cfg.attention.hidden,
            gated=cfg.attention.gated,
            dropout=cfg.attention.dropout,
        )
        loaders = (
            DatasetLoader(
                BagDataset(train_s, event=e),
                batch_size=cfg.train.batch_size,
                collate_fn=collate_bags,
                shuffle=True,
                seed=cfg.train.seed,
            ),
            DatasetLoader(
                BagDataset(test_s, event=e),
                batch_size=cfg.train.eval_batch_size,
                collate_fn=collate_bags,
            ),
        )
        model, summary = train_stage(
            ctx,
            cfg,
            name=f"attention_mil/{event}",
            task=AttentionMILTask(model=model),
            loaders=loaders,
        )
        scores[:, e] = bag_scores(model, test_s, batch_size=cfg.train.eval_batch_size)
        wall_s += summary["wall_s"]
        steps += summary["steps"]
        params += count_params(model)
    mAP = mean_average_precision(scores, test.labels)
    summary = _summary(
        ctx,
        "attention_mil",
        mAP,
        scores,
        test,
        steps=steps,
        wall_s=wall_s,
        extra={"params": params},
    )
    write_json(ctx.out_dir / "attention_mil" / "summary.json", summary)
    return summary
