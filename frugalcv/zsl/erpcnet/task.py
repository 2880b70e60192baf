"""ERPCNetTask: trains ERPCNet with compatibility, REINFORCE and entropy-guidance losses."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from frugalcv.core.task import Task
from frugalcv.zsl.erpcnet.components import (
    BASELINE_OPTIONS,
    RELEVANCE_OPTIONS,
    _check_option,
    discounted_returns,
    erpc_rewards,
    reinforce_loss,
)
from frugalcv.zsl.erpcnet.model import ERPCNet

__all__ = ["ERPCNetTask"]


class ERPCNetTask(Task):
    """Train :class:`ERPCNet` end to end on seen-class images: compatibility + policy losses.

    ``loss = mean_{t=0..T} CE(s_t, y) + policy_weight * L_PG - entropy_weight * mean H(pi_t)``
    over the seen classes, where ``L_PG`` is :func:`reinforce_loss` of the returns of
    :func:`erpc_rewards` minus a per-step baseline. Actions are sampled in training from the
    task's seeded ``generator`` (same seed, same draws) and greedy (argmax) in evaluation.

    Batches are ``(x, y)``: images (B, C, H, W) and global class ids (seen classes).

    Args:
        semantics: (num_classes, A) class semantics, global ids.
        seen_classes: (S,) the ids the loss ranks over.
        backbone: a frugalcv.zoo model.
        hidden_dim, num_steps, grid, use_localities, policy_dim: see :class:`ERPCNet`.
        entropy_weight: beta of the entropy bonus (entropy guidance); 0 removes the term.
        policy_weight: weight of the REINFORCE loss.
        correlation_weight: lambda_v of :func:`erpc_rewards`.
        relevance: "logprob", "margin" or "score" (:func:`semantic_relevance`).
        discount: gamma of the returns.
        baseline: "moving_average" (per step, momentum ``baseline_momentum``) or "none".
        seed: seeds the sampling generator.

    Logged: ``loss_cls``, ``loss_policy``, ``loss_entropy`` (the term added to the loss),
    ``policy_entropy`` and ``reward`` (means), ``entropy_step{t}`` / ``reward_step{t}`` (per step,
    t = 1..T), ``train_acc``. ``monitor`` is the seen-class accuracy of :meth:`validation_step`.

    Differences from the paper: the losses, reward, baseline and defaults are reconstructions
    (``docs/methods/erpcnet.md``); the paper's values are unknown.
    """

    monitor = ("seen_acc", "max")

    def __init__(
        self,
        *,
        semantics: Tensor,
        seen_classes: Tensor,
        backbone: nn.Module,
        hidden_dim: int = 128,
        num_steps: int = 3,
        grid: tuple[int, int] = (4, 4),
        use_localities: bool = True,
        policy_dim: int = 64,
        entropy_weight: float = 0.01,
        policy_weight: float = 1.0,
        correlation_weight: float = 0.1,
        relevance: str = "logprob",
        discount: float = 1.0,
        baseline: str = "moving_average",
        baseline_momentum: float = 0.9,
        seed: int = 0,
    ) -> None:
        super().__init__()
        _check_option("relevance", relevance, RELEVANCE_OPTIONS)
        _check_option("baseline", baseline, BASELINE_OPTIONS)
        if entropy_weight < 0:
            raise ValueError(f"entropy_weight must be >= 0 (0 turns it off); got {entropy_weight}")
        if not 0 <= baseline_momentum < 1:
            raise ValueError(f"baseline_momentum must be in [0, 1); got {baseline_momentum}")
        semantics = torch.as_tensor(semantics, dtype=torch.float32)
        seen = torch.as_tensor(seen_classes).long()
        if semantics.ndim != 2 or int(seen.max()) >= len(semantics):
            raise ValueError(
                f"semantics must be (num_classes, A) with a row for every seen class; got "
                f"{tuple(semantics.shape)} for seen ids up to {int(seen.max())}"
            )
        self.model = ERPCNet(
            backbone=backbone,
            semantic_dim=semantics.shape[1],
            hidden_dim=hidden_dim,
            num_steps=num_steps,
            grid=grid,
            use_localities=use_localities,
            policy_dim=policy_dim,
        )
        self.register_buffer("semantics", semantics)
        self.register_buffer("seen_classes", seen)
        local = torch.full((len(semantics),), -1, dtype=torch.long)
        local[seen] = torch.arange(len(seen))
        self.register_buffer("local_index", local)
        t = self.model.num_steps
        self.register_buffer("reward_baseline", torch.zeros(t))
        self.register_buffer("baseline_started", torch.zeros((), dtype=torch.bool))
        self.entropy_weight = entropy_weight
        self.policy_weight = policy_weight
        self.correlation_weight = correlation_weight
        self.relevance = relevance
        self.discount = discount
        self.baseline = baseline
        self.baseline_momentum = baseline_momentum
        self.generator = torch.Generator().manual_seed(seed)

    # the generator's state travels with checkpoints, so a resumed run samples the same actions
    def get_extra_state(self) -> dict[str, Tensor]:
        return {"generator": self.generator.get_state()}

    def set_extra_state(self, state: dict[str, Tensor]) -> None:
        self.generator.set_state(state["generator"])

    def scores(self, x: Tensor) -> Tensor:
        """(B, num_classes) greedy-episode scores against every class (seen and unseen)."""
        return self.model(x, self.semantics, greedy=True).scores

    def training_step(self, batch: Any) -> dict[str, Tensor]:
        x, y = batch
        target = self.local_index[y]
        if (target < 0).any():
            raise ValueError("a training batch holds unseen-class labels; train on seen classes")
        out = self.model(x, self.semantics[self.seen_classes], generator=self.generator)
        loss_cls = torch.stack([F.cross_entropy(s, target) for s in out.step_scores]).mean()
        logs = {"loss_cls": loss_cls.detach()}
        loss = loss_cls
        if self.model.num_steps > 0:
            reward, gain, corr = erpc_rewards(
                out.step_scores,
                target,
                out.localities,
                relevance=self.relevance,
                correlation_weight=self.correlation_weight,
            )
            returns = discounted_returns(reward, gamma=self.discount)  # (B, T)
            advantages = returns - self._baseline(returns)
            loss_policy = reinforce_loss(out.log_probs, advantages)
            loss = loss + self.policy_weight * loss_policy
            if self.entropy_weight > 0:
                loss_entropy = -self.entropy_weight * out.entropies.mean()
                loss = loss + loss_entropy
            else:  # the term is absent from the graph, only logged as 0
                loss_entropy = torch.zeros((), device=loss.device)
            ent_t, rew_t = out.entropies.detach().mean(0), reward.mean(0)
            logs |= {
                "loss_policy": loss_policy.detach(),
                "loss_entropy": loss_entropy.detach(),
                "policy_entropy": ent_t.mean(),
                "reward": reward.sum(1).mean(),
                "relevance_gain": gain.sum(1).mean(),
                "correlation": corr[:, 1:].mean() if corr.shape[1] > 1 else corr.sum() * 0,
            }
            for t in range(len(ent_t)):
                logs[f"entropy_step{t + 1}"] = ent_t[t]
                logs[f"reward_step{t + 1}"] = rew_t[t]
        acc = (out.scores.argmax(1) == target).float().mean()
        return {"loss": loss, **logs, "train_acc": acc.detach()}

    @torch.no_grad()
    def _baseline(self, returns: Tensor) -> Tensor:
        """Per-step baseline b_t (1, T), read before this batch updates it (no action leak)."""
        if self.baseline == "none":
            return torch.zeros_like(returns[:1])
        batch_mean = returns.mean(0)
        b = torch.where(self.baseline_started, self.reward_baseline, batch_mean)
        m = self.baseline_momentum
        prev = self.reward_baseline.clone() if bool(self.baseline_started) else batch_mean
        self.reward_baseline.copy_(m * prev + (1 - m) * batch_mean)
        self.baseline_started.fill_(True)
        # the first batch has no history: its own mean is the baseline (a slight bias, once)
        return b[None]

    def validation_step(self, batch: Any) -> dict[str, Tensor]:
        """Seen-class top-1 (prediction among the seen classes; greedy episode) and top-1 among
        all classes; per-class ZSL/GZSL metrics come from
        ``evaluate_zsl(task.scores, data, module=task)``."""
        x, y = batch
        scores = self.scores(x)
        seen_pred = self.seen_classes[scores[:, self.seen_classes].argmax(1)]
        return {
            "seen_acc": (seen_pred == y).float().mean(),
            "acc_all": (scores.argmax(1) == y).float().mean(),
        }
