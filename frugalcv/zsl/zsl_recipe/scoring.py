"""The ``zsl`` recipe's scoring: ZSL/GZSL metrics of a view, the gamma choice, scores, MACs."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from frugalcv.core.measure import to_module
from frugalcv.core.task import Task
from frugalcv.zsl.zsl_recipe.data import View

__all__ = ["batched", "choose_gamma", "zsl_metrics"]


def _restricted(scores: Tensor, y: Tensor, classes: Tensor) -> tuple[Tensor, Tensor]:
    """Scores of ``classes`` only (columns) and labels as positions in ``classes``."""
    pos = torch.full((int(classes.max()) + 1,), -1, dtype=torch.long)
    pos[classes] = torch.arange(len(classes))
    return scores[:, classes], pos[y]


def zsl_metrics(s_seen: Tensor, view: View, s_unseen: Tensor, *, gamma: float) -> dict:
    """ZSL top-1 and GZSL U/S/H among the view's classes, calibrated by ``gamma``."""
    from frugalcv.zsl.metrics import gzsl_accuracy, zsl_accuracy

    classes = torch.cat([view.seen, view.unseen])
    a_s, t_s = _restricted(s_seen, view.y_seen, classes)
    a_u, t_u = _restricted(s_unseen, view.y_unseen, classes)
    local_seen = torch.arange(len(view.seen))
    g = gzsl_accuracy(a_s, t_s, a_u, t_u, seen_classes=local_seen, gamma=gamma)
    top1 = zsl_accuracy(s_unseen, view.y_unseen, unseen_classes=view.unseen)
    return {"zsl_top1": top1, "gzsl_unseen": g["unseen"], "gzsl_seen": g["seen"], "gzsl_h": g["h"]}


def choose_gamma(s_seen: Tensor, view: View, s_unseen: Tensor) -> tuple[float, dict]:
    """Calibrated-stacking gamma with the best H on the validation view (pseudo-unseen)."""
    from frugalcv.zsl.metrics import select_gamma

    classes = torch.cat([view.seen, view.unseen])
    a_s, t_s = _restricted(s_seen, view.y_seen, classes)
    a_u, t_u = _restricted(s_unseen, view.y_unseen, classes)
    return select_gamma(a_s, t_s, a_u, t_u, seen_classes=torch.arange(len(view.seen)))


@torch.no_grad()
def batched(fn, x: Tensor, *, batch_size: int = 256, module: nn.Module | None = None) -> Tensor:
    """``fn`` over ``x`` in batches, concatenated (float32, CPU).

    Args:
        module: the model ``fn`` runs; each batch is moved to its device (and floating dtype)
            first, so a CPU ``x`` works with a model that Fabric put on the GPU.
    """
    out = []
    for i in range(0, len(x), batch_size):
        chunk = x[i : i + batch_size]
        out.append(fn(chunk if module is None else to_module(chunk, module)).float().cpu())
    return torch.cat(out)


class _Scorer(nn.Module):
    """``x -> (B, num_classes)`` scores of a trained task (for MACs)."""

    def __init__(self, task: Task) -> None:
        super().__init__()
        self.task = task

    def forward(self, x: Tensor) -> Tensor:
        return self.task.scores(x)


def _cost(module: nn.Module, x: Tensor) -> dict:
    from frugalcv.core.measure import count_macs, count_params

    try:
        macs = count_macs(module, x[:1])
    except Exception:  # a backbone that the flop counter cannot trace: report params only
        macs = None
    return {"params": count_params(module), "macs": macs}
