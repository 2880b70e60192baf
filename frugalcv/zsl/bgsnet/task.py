"""BGSNetTask: end-to-end training of BGSNet on the seen classes, with ablation switches."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from frugalcv.core.task import Task
from frugalcv.zsl.bgsnet.components import (
    _INNER_LR,
    _SCALE,
    diversity_loss,
    eligible_classes,
    episode_loss,
    sample_episode,
)
from frugalcv.zsl.bgsnet.model import BGSNet

__all__ = ["BGSNetTask"]


class BGSNetTask(Task):
    """Train BGSNet end to end on the seen classes, with the ablation switches as arguments.

    Batches are ``(x, y)`` with global seen-class ids y; x is images (with ``backbone``), feature
    maps (B, C, H, W) or vectors (B, D). Per step (all on one forward of the batch)::

        L = w_g L_G + w_s L_S + w_div L_div + w_bal L_bal

    - ``L_G``: GNet's first-order episodic loss (:func:`episode_loss`) on an episode sampled
      from the batch (:func:`sample_episode`); ``episodic=False`` uses plain cross-entropy over
      all seen classes instead.
    - ``L_S``: cross-entropy of BSNet's score ``sum_k w_k s_k`` over all seen classes.
    - ``L_div``: :func:`diversity_loss` of the extractors' attention maps.
    - ``L_bal``: cross-entropy of the balanced score; the branch scores and the gate's input are
      detached, so it trains the instance gate only and each branch keeps its own objective.

    After each training step the dataset-level annealing advances one step.

    Ablation switches (each row of a benchmark is one constructor call): ``branches="gnet"`` or
    ``"bsnet"`` (one branch; the other and the gate are not built, so the switches that belong
    to the missing branch are inactive), ``diversity=False`` (no ``div`` term),
    ``dataset_balance=False`` (fixed uniform weights, no ``alpha``, no pruning),
    ``episodic=False``. :attr:`components` lists what is active.

    Validation: ``validation_step`` reports ``seen_acc``, top-1 among the seen classes on held-out
    samples of the *seen* training classes (split them off the training set, e.g. with
    ``frugalcv.data.base.stratified_split``); it is the ``monitor``. Unseen test classes must not
    select epochs or hyper-parameters: that would tune on the test classes (the "best H on test"
    leak of several ZSL repositories). ZSL/GZSL numbers come from
    ``evaluate_zsl(task.scores, data, module=task)`` once training is done.

    Args:
        semantics, seen_classes: (num_classes, A) semantics by global id; (S,) seen ids.
        n_way, n_support, n_query, n_pseudo_unseen: episode sizes; ``n_way`` shrinks to the number
            of batch classes with ``n_support + n_query`` samples, reported as ``episode_way``;
            a batch with too few such classes (< 2, or <= n_pseudo_unseen) gives GNet no update
            and ``episode_way = 0``: use batches of several samples per class (a class-balanced
            sampler) when that happens for more than the short last batch.
        inner_lr, inner_steps: GNet's inner loop.
        div_weight, div_margin, self_adjust: the diversity term (:func:`diversity_loss`).
        g_weight, s_weight, bal_weight: weights of L_G, L_S, L_bal.
        other arguments: as :class:`BGSNet`.

    Differences from the paper: everything below the abstract is reconstructed (see
    docs/methods/bgsnet.md); the paper's backbone is an ImageNet ResNet-101, here any zoo model.
    """

    monitor = ("seen_acc", "max")

    def __init__(
        self,
        *,
        semantics: Tensor,
        seen_classes: Tensor,
        feature_dim: int | None = None,
        backbone: nn.Module | None = None,
        branches: str = "both",
        attention: str = "spatial",
        diversity: bool = True,
        dataset_balance: bool = True,
        episodic: bool = True,
        num_extractors: int = 4,
        num_keep: int = 2,
        anneal_start: int = 1000,
        anneal_steps: int = 1000,
        embed_dim: int = 64,
        gate_hidden: int = 32,
        scale: float = _SCALE,
        n_way: int = 5,
        n_support: int = 2,
        n_query: int = 2,
        n_pseudo_unseen: int = 1,
        inner_lr: float = _INNER_LR,
        inner_steps: int = 1,
        div_weight: float = 0.1,
        div_margin: float = 0.0,
        self_adjust: bool = True,
        g_weight: float = 1.0,
        s_weight: float = 1.0,
        bal_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.model = BGSNet(
            semantics=semantics,
            feature_dim=feature_dim,
            backbone=backbone,
            branches=branches,
            attention=attention,
            num_extractors=num_extractors,
            num_keep=num_keep,
            dataset_balance=dataset_balance,
            anneal_start=anneal_start,
            anneal_steps=anneal_steps,
            embed_dim=embed_dim,
            gate_hidden=gate_hidden,
            scale=scale,
        )
        seen = torch.as_tensor(seen_classes).long()
        num_classes = len(self.model.semantics)
        if seen.ndim != 1 or len(seen) < 2 or int(seen.max()) >= num_classes or int(seen.min()) < 0:
            raise ValueError(
                f"seen_classes must be >= 2 ids in [0, {num_classes}); got {seen.tolist()[:10]}"
            )
        if episodic and self.model.gnet is not None:
            sample_episode(  # validates the sizes now rather than at the first step
                seen.repeat_interleave(n_support + n_query),
                seen_classes=seen,
                n_way=min(n_way, len(seen)),
                n_support=n_support,
                n_query=n_query,
                n_pseudo_unseen=n_pseudo_unseen,
                generator=torch.Generator().manual_seed(0),  # leave the global RNG untouched
            )
        if inner_lr < 0 or inner_steps < 0 or not 0.0 <= div_margin < 1.0:
            raise ValueError(
                "need inner_lr >= 0, inner_steps >= 0 and 0 <= div_margin < 1; got "
                f"{inner_lr}, {inner_steps}, {div_margin}"
            )
        if diversity and num_extractors < 2 and self.model.extractors is not None:
            raise ValueError("diversity needs num_extractors >= 2; pass diversity=False")
        self.register_buffer("seen_classes", seen)
        local = torch.full((num_classes,), -1, dtype=torch.long)
        local[seen] = torch.arange(len(seen))
        self.register_buffer("local_index", local)
        self.diversity = diversity and self.model.extractors is not None
        self.episodic = episodic and self.model.gnet is not None
        self.n_way, self.n_support, self.n_query = n_way, n_support, n_query
        self.n_pseudo_unseen = n_pseudo_unseen
        self.inner_lr, self.inner_steps = inner_lr, inner_steps
        self.div_weight, self.div_margin, self.self_adjust = div_weight, div_margin, self_adjust
        self.g_weight, self.s_weight, self.bal_weight = g_weight, s_weight, bal_weight

    @property
    def components(self) -> dict[str, bool]:
        """Which parts are active (for benchmark rows)."""
        m = self.model
        return {
            "gnet": m.gnet is not None,
            "episodic": self.episodic,
            "bsnet": m.extractors is not None,
            "diversity": self.diversity,
            "dataset_balance": m.balance is not None,
            "instance_balance": m.gate is not None,
        }

    def deployable(self) -> nn.Module:
        """The pruned BGSNet (every extractor while the annealing has not finished)."""
        return self.model.pruned()

    def scores(self, x: Tensor) -> Tensor:
        """(B, num_classes) scores for every class, seen and unseen (for ``evaluate_zsl``)."""
        return self.model(x)

    def _episode(self, g: Tensor, y: Tensor, s_g: Tensor) -> tuple[Tensor, int]:
        """GNet's episode loss on this batch and the episode's n_way (0: no episode fitted)."""
        gnet = self.model.gnet
        assert gnet is not None
        pool = eligible_classes(
            y, seen_classes=self.seen_classes, min_count=self.n_support + self.n_query
        )
        n_way = min(self.n_way, len(pool))
        if n_way < max(2, self.n_pseudo_unseen + 1):
            # e.g. the short last batch of an epoch: no GNet update from this batch. A zero
            # that depends on GNet keeps every parameter in the graph (DDP needs that).
            return 0.0 * s_g.sum(), 0
        ep = sample_episode(
            y,
            seen_classes=self.seen_classes,
            n_way=n_way,
            n_support=self.n_support,
            n_query=self.n_query,
            n_pseudo_unseen=self.n_pseudo_unseen,
        )
        loss = episode_loss(
            gnet,
            g,
            y,
            self.model.semantics,
            ep,
            inner_lr=self.inner_lr,
            inner_steps=self.inner_steps,
        )
        return loss, n_way

    def training_step(self, batch: Any) -> dict[str, Tensor]:
        x, y = batch
        target = self.local_index[y]
        if (target < 0).any():
            raise ValueError("a training batch holds unseen-class labels; train on seen classes")
        m = self.model
        sem_seen = m.semantics[self.seen_classes]
        parts = m.forward_parts(x, sem_seen)
        out: dict[str, Tensor] = {}
        loss = torch.zeros((), device=target.device)
        if m.gnet is not None:
            if self.episodic:
                out["gnet"], way = self._episode(parts["g"], y, parts["s_g"])
                out["episode_way"] = torch.tensor(float(way))
            else:
                out["gnet"] = F.cross_entropy(parts["s_g"], target)
            loss = loss + self.g_weight * out["gnet"]
        if m.extractors is not None:
            out["bsnet"] = F.cross_entropy(parts["s_s"], target)
            loss = loss + self.s_weight * out["bsnet"]
            if self.diversity:
                out["div"] = diversity_loss(
                    parts["attention"], margin=self.div_margin, self_adjust=self.self_adjust
                )
                loss = loss + self.div_weight * out["div"]
        if m.gate is not None:
            balanced, lam = m.gate(
                parts["g"].detach(), parts["s_g"].detach(), parts["s_s"].detach()
            )
            out["balance"] = F.cross_entropy(balanced, target)
            out["gate_mean"] = lam.mean().detach()
            loss = loss + self.bal_weight * out["balance"]
        if self.training and m.balance is not None:
            m.balance.advance()
        acc = (parts["scores"].argmax(1) == target).float().mean()
        return {"loss": loss, **out, "train_acc": acc.detach()}

    def validation_step(self, batch: Any) -> dict[str, Tensor]:
        """``seen_acc``: top-1 among the seen classes; ``acc_all``: among all classes."""
        x, y = batch
        scores = self.model(x)
        seen_pred = self.seen_classes[scores[:, self.seen_classes].argmax(1)]
        return {
            "seen_acc": (seen_pred == y).float().mean(),
            "acc_all": (scores.argmax(1) == y).float().mean(),
        }
