"""The ``zsl`` recipe's methods: the trained Tasks; the closed-form baselines' features and fits."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from frugalcv.core.loader import TensorLoader
from frugalcv.core.measure import to_module
from frugalcv.core.recipe import RunContext
from frugalcv.core.stages import train_stage
from frugalcv.core.task import Task
from frugalcv.zsl.zsl_recipe.config import BaselineConfig, Config
from frugalcv.zsl.zsl_recipe.data import View
from frugalcv.zsl.zsl_recipe.scoring import _cost, _Scorer, batched

__all__ = ["make_task", "total_steps"]


def _in_chans(x: Tensor) -> int:
    return int(x.shape[1]) if x.ndim == 4 else 0


def _create_backbone(cfg: Config, x: Tensor, *, num_classes: int = 1) -> nn.Module:
    from frugalcv.zoo import create_model

    return create_model(cfg.zsl.backbone, num_classes=num_classes, in_chans=_in_chans(x))


def _loaders(cfg: Config, x_fit, y_fit, x_val, y_val) -> tuple[TensorLoader, TensorLoader]:
    bs = min(cfg.train.batch_size, len(y_fit))
    train = TensorLoader(
        (x_fit, y_fit), batch_size=bs, shuffle=True, seed=cfg.train.seed, drop_last=True
    )
    return train, TensorLoader((x_val, y_val), batch_size=cfg.train.eval_batch_size)


def total_steps(cfg: Config, num_fit: int) -> int:
    """Optimizer steps of a run over ``num_fit`` images (the loop's own count)."""
    if cfg.train.max_steps > 0:
        return cfg.train.max_steps
    per_epoch = num_fit // min(cfg.train.batch_size, num_fit)
    return math.ceil(cfg.train.epochs * per_epoch)


def make_task(cfg: Config, data, view: View) -> Task:
    """The trained method's Task on ``view`` (bilinear, BGSNet or ERPCNet)."""
    from frugalcv.zsl.baselines import BilinearTask
    from frugalcv.zsl.bgsnet import BGSNetTask
    from frugalcv.zsl.erpcnet import ERPCNetTask

    method, sem = cfg.zsl.method, data.semantics
    images = view.x_fit.ndim == 4
    backbone = _create_backbone(cfg, view.x_fit) if images else None
    feature_dim = None if images else int(view.x_fit.shape[1])
    if method == "bilinear":
        b = cfg.baseline
        return BilinearTask(
            semantics=sem,
            seen_classes=view.seen,
            feature_dim=feature_dim,
            backbone=backbone,
            loss=b.bilinear_loss,
            margin=b.bilinear_margin,
        )
    if method == "bgsnet":
        g = cfg.bgsnet
        total = total_steps(cfg, len(view.y_fit))
        return BGSNetTask(
            semantics=sem,
            seen_classes=view.seen,
            feature_dim=feature_dim,
            backbone=backbone,
            branches=g.branches,
            attention=g.attention,
            diversity=g.diversity,
            dataset_balance=g.dataset_balance,
            episodic=g.episodic,
            num_extractors=g.num_extractors,
            num_keep=g.num_keep,
            # the annealing is counted in optimizer steps: set from this run's length
            anneal_start=round(g.anneal_start * total),
            anneal_steps=max(1, round(g.anneal_length * total)),
            embed_dim=g.embed_dim,
            n_way=min(g.n_way, len(view.seen)),
            n_support=g.n_support,
            n_query=g.n_query,
            n_pseudo_unseen=g.n_pseudo_unseen,
            div_weight=g.div_weight,
        )
    e = cfg.erpcnet
    return ERPCNetTask(
        semantics=sem,
        seen_classes=view.seen,
        backbone=backbone,
        hidden_dim=e.hidden_dim,
        num_steps=e.num_steps,
        grid=e.grid,
        use_localities=e.use_localities,
        entropy_weight=e.entropy_weight,
        correlation_weight=e.correlation_weight,
        seed=cfg.train.seed,
    )


class _SeenClassifier(Task):
    """Cross-entropy over the seen classes (global ids mapped to columns): the feature stage."""

    monitor = ("seen_acc", "max")

    def __init__(self, *, model: nn.Module, seen: Tensor, num_classes: int) -> None:
        super().__init__()
        self.model = model
        local = torch.full((num_classes,), -1, dtype=torch.long)
        local[seen] = torch.arange(len(seen))
        self.register_buffer("local_index", local)

    def training_step(self, batch: Any) -> dict[str, Tensor]:
        x, y = batch
        logits, target = self.model(x), self.local_index[y]
        loss = nn.functional.cross_entropy(logits, target)
        return {"loss": loss, "train_acc": (logits.argmax(1) == target).float().mean().detach()}

    def validation_step(self, batch: Any) -> dict[str, Tensor]:
        x, y = batch
        return {"seen_acc": (self.model(x).argmax(1) == self.local_index[y]).float().mean()}


def _trained(ctx: RunContext, cfg: Config, data, view: View, prefix: str) -> tuple[Task, dict]:
    """Train the method's task on ``view`` in ``<run>/<prefix><method>``; (task in eval mode,
    summary with ``epoch_s``, ``params``, ``macs``)."""
    task = make_task(cfg, data, view)
    name = f"{prefix}{cfg.zsl.method}"
    loaders = _loaders(cfg, view.x_fit, view.y_fit, view.x_val, view.y_val)
    _, summary = train_stage(ctx, cfg, name=name, task=task, loaders=loaders)
    task.eval()
    epochs = summary["steps"] / max(1, len(loaders[0]))
    summary = {**summary, "epoch_s": round(summary["wall_s"] / max(epochs, 1e-9), 4)}
    summary.update(_cost(_Scorer(task), view.x_seen))
    if hasattr(task, "components"):
        summary["components"] = ",".join(k for k, v in task.components.items() if v)
    return task, summary


def _backbone_features(
    ctx: RunContext, cfg: Config, data, view: View, prefix: str
) -> tuple[Any, dict]:
    """The seen-class feature extractor of the closed-form baselines: ``(features fn, summary)``.

    Fixed features (xlsa17) are used as they are. Images: a zoo backbone trained by
    cross-entropy on ``view.seen`` in ``<run>/<prefix>backbone`` (or loaded from
    ``zsl.backbone_from``'s same folder).
    """
    if view.x_fit.ndim == 2:
        return (lambda x: x), {"name": f"{prefix}features", "features": "fixed (data set's)"}
    model = _create_backbone(cfg, view.x_fit, num_classes=len(view.seen))
    task = _SeenClassifier(model=model, seen=view.seen, num_classes=data.num_classes)
    name = f"{prefix}backbone"
    ckpt = str(Path(cfg.zsl.backbone_from) / name) if cfg.zsl.backbone_from else ""
    loaders = _loaders(cfg, view.x_fit, view.y_fit, view.x_val, view.y_val)
    model, summary = train_stage(ctx, cfg, name=name, task=task, loaders=loaders, ckpt=ckpt)
    model.eval()

    def features(x: Tensor) -> Tensor:
        x = to_module(x, model)  # the data stays on the CPU; the model is where Fabric put it
        return model.forward_head(model.forward_features(x), pre_logits=True)

    return features, {**summary, **_cost(model, view.x_seen)}


def _closed_form(method: str, cfg: BaselineConfig, params: dict):
    from frugalcv.zsl.baselines import ESZSL, AttributeRegression

    if method == "eszsl":
        return ESZSL(gamma=params["gamma"], lam=params["lam"], targets=cfg.eszsl_targets)
    return AttributeRegression(lam=params["lam"])


def _fit_closed_form(method, cfg, params, feats, view, semantics):
    """Fit on the view's training features; (estimator, seen-test scores, unseen-test scores)."""
    est = _closed_form(method, cfg, params).fit(feats["fit"], view.y_fit, semantics=semantics)
    return est, est.decision_function(feats["seen"]), est.decision_function(feats["unseen"])


def _grid(method: str, cfg: BaselineConfig) -> list[dict]:
    if method == "eszsl":
        return [{"gamma": g, "lam": lam} for g in cfg.grid for lam in cfg.grid]
    return [{"lam": lam} for lam in cfg.grid]


def _default_params(method: str, cfg: BaselineConfig) -> dict:
    if method == "eszsl":
        return {"gamma": cfg.eszsl_gamma, "lam": cfg.eszsl_lam}
    return {"lam": cfg.ridge_lam}


def _features_of(fn, view: View) -> dict[str, Tensor]:
    return {
        "fit": batched(fn, view.x_fit).double(),
        "seen": batched(fn, view.x_seen).double(),
        "unseen": batched(fn, view.x_unseen).double(),
    }
