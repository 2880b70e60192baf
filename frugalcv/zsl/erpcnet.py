"""ERPCNet: entropy-guided reinforced partial convolution for zero-shot learning (reconstruction).

Yun Li, Zhe Liu, Lina Yao, Xianzhi Wang, Julian McAuley, Xiaojun Chang, "An Entropy-guided
Reinforced Partial Convolutional Network for Zero-Shot Learning", IEEE TCSVT 32(8), 2022,
arXiv 2111.02139. No official code exists and only the abstract could be read, so every detail
below the abstract's level is a reconstruction (listed in ``docs/methods/erpcnet.md``).

What the abstract states: a global-local representation that adds "localities" (small regions)
to the global feature; localities are extracted and aggregated progressively, chosen by semantic
relevance and visual correlation, without annotated regions; a reinforced partial convolution
(policy gradient) discovers them; an entropy guidance makes the policy-gradient optimisation
converge faster.

Reconstruction (one episode of ``T`` steps per image, on the backbone feature map ``F``):

- global: ``h_0 = tanh(W_g GAP(F))``; compatibility ``s_t(c) = h_t^T W a_c`` (bilinear head of
  ALE, :class:`frugalcv.zsl.baselines.BilinearCompatibility`).
- policy: ``pi(a_t | F, h_{t-1})`` over the cells of a ``grid`` laid over ``F`` (cells already
  chosen get probability 0); inputs detached, so only the policy loss trains it.
- locality: ``l_t = masked_mean(relu(PConv(F, M_t)), M_t)`` with ``M_t`` the chosen cell's mask
  and PConv the partial convolution of Liu et al. (ECCV 2018): the feature outside the cell
  cannot reach ``l_t`` (:class:`PartialConv2d`).
- aggregation: ``h_t = GRU(l_t, h_{t-1})``.
- reward: ``r_t = [rel(s_t, y) - rel(s_{t-1}, y)] - lambda_v * mean_{j<t} cos(l_t, l_j)``
  (semantic relevance gain minus a visual-redundancy penalty; :func:`erpc_rewards`).
- loss: ``mean_t CE(s_t, y) + w_pg * sum_t -(G_t - b_t) log pi(a_t) - beta * mean_t H(pi_t)``
  with returns ``G_t``, a moving-average baseline ``b_t`` and the entropy bonus ``beta``.

Components (no config, no trainer): :class:`PartialConv2d`, :func:`cell_masks`,
:func:`masked_mean`, :func:`policy_entropy`, :func:`sample_categorical`,
:func:`semantic_relevance`, :func:`visual_correlation`, :func:`erpc_rewards`,
:func:`discounted_returns`, :func:`reinforce_loss`, :class:`ERPCNet`; the training wrapper is
:class:`ERPCNetTask`; :func:`draw_localities` draws the chosen cells (explainability).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from frugalcv.core.task import Task
from frugalcv.zsl.baselines import BilinearCompatibility

__all__ = [
    "BASELINE_OPTIONS",
    "RELEVANCE_OPTIONS",
    "ERPCNet",
    "ERPCNetOutput",
    "ERPCNetTask",
    "PartialConv2d",
    "cell_masks",
    "discounted_returns",
    "draw_localities",
    "erpc_rewards",
    "locality_boxes",
    "masked_mean",
    "policy_entropy",
    "reinforce_loss",
    "sample_categorical",
    "semantic_relevance",
    "visual_correlation",
]

RELEVANCE_OPTIONS = ("logprob", "margin", "score")
BASELINE_OPTIONS = ("moving_average", "none")


def _check_option(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {name}={value!r}; valid options are {', '.join(valid)}")


# ---------------------------------------------------------------------------------------------
# partial convolution and locality masks


class PartialConv2d(nn.Module):
    """Partial convolution (Liu et al., "Image Inpainting for Irregular Holes Using Partial
    Convolutions", ECCV 2018, Eq. 1-2).

    ``x' = W^T (X * M) * sum(1) / sum(M) + b`` where the window holds ``sum(M) > 0`` valid
    pixels, else 0; the updated mask is ``m' = 1[sum(M) > 0]``. ``sum(1)`` is the window size
    ``k_h * k_w`` and the mask is zero-padded (the convention of NVIDIA's released
    ``PartialConv2d``), so with ``M = 1`` the layer equals a plain convolution away from the
    border and rescales the border windows.

    Args:
        in_channels, out_channels, kernel_size, padding, bias: as ``nn.Conv2d`` (stride 1).

    Shapes: forward(x: (B, C, H, W), mask: (B, 1, H, W) in {0, 1}) ->
    (out: (B, out_channels, H', W'), new_mask: (B, 1, H', W')).
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        padding: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.register_buffer("ones", torch.ones(1, 1, kernel_size, kernel_size), persistent=False)
        self.padding = padding

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        if x.ndim != 4 or mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[0] != x.shape[0]:
            raise ValueError(
                f"x must be (B, C, H, W) and mask (B, 1, H, W); got {tuple(x.shape)} and "
                f"{tuple(mask.shape)}"
            )
        if mask.shape[2:] != x.shape[2:]:
            raise ValueError(f"mask size {tuple(mask.shape[2:])} != x size {tuple(x.shape[2:])}")
        mask = mask.to(x.dtype)
        with torch.no_grad():
            valid = F.conv2d(mask, self.ones, padding=self.padding)  # (B, 1, H', W') sum(M)
            new_mask = (valid > 0).to(x.dtype)
            ratio = self.ones.numel() / valid.clamp_min(1.0) * new_mask  # sum(1)/sum(M), 0 off
        out = self.conv(x * mask) * ratio
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1) * new_mask
        return out, new_mask


def cell_masks(actions: Tensor, *, grid: tuple[int, int], size: tuple[int, int]) -> Tensor:
    """Binary masks of chosen grid cells on an (H, W) map.

    Cell ``a`` (row-major, ``a = i * g_w + j``) covers rows ``[floor(i H / g_h), floor((i+1) H /
    g_h))`` and the matching columns (the bins of ``adaptive_avg_pool2d`` when ``g`` divides H).

    Args:
        actions: (B,) cell indices in ``[0, g_h * g_w)``.

    Returns:
        (B, 1, H, W) float masks.
    """
    gh, gw = grid
    h, w = size
    rows = torch.arange(h, device=actions.device) * gh // h  # (H,) cell row of each pixel row
    cols = torch.arange(w, device=actions.device) * gw // w  # (W,)
    i, j = actions // gw, actions % gw  # (B,)
    m = (rows[None, :, None] == i[:, None, None]) & (cols[None, None, :] == j[:, None, None])
    return m[:, None].float()  # (B, 1, H, W)


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of x: (B, C, H, W) over the positions where mask: (B, 1, H, W) is 1 -> (B, C)."""
    return (x * mask).sum((2, 3)) / mask.sum((2, 3)).clamp_min(1.0)


# ---------------------------------------------------------------------------------------------
# policy: sampling, entropy, REINFORCE


def _masked_logits(logits: Tensor, available: Tensor | None) -> Tensor:
    if available is None:
        return logits
    if not available.any(-1).all():
        raise ValueError("every row needs at least one available action (num_steps <= cells)")
    return logits.masked_fill(~available, float("-inf"))


def policy_entropy(logits: Tensor, *, available: Tensor | None = None) -> Tensor:
    """Entropy ``H(pi) = -sum_a pi_a log pi_a`` of a categorical policy, in nats.

    Args:
        logits: (B, K) unnormalised log-probabilities.
        available: optional (B, K) bool; unavailable actions get probability 0 (and add 0).

    Returns:
        (B,) entropies: ``log K'`` for a uniform policy over K' actions, 0 for a one-hot one.
    """
    logp = torch.log_softmax(_masked_logits(logits, available), dim=-1)
    # masked actions have logp = -inf; zero them before the product so that the gradient of
    # p * logp stays finite (a where() after the product would give 0 * inf = NaN gradients)
    logp = logp.masked_fill(~torch.isfinite(logp), 0.0)
    return -(logp.exp() * logp).sum(-1)


def sample_categorical(
    probs: Tensor, *, generator: torch.Generator | None = None, greedy: bool = False
) -> Tensor:
    """Draw one action per row of probs: (B, K) by inverting the CDF; argmax when ``greedy``.

    The uniforms are drawn on the CPU from ``generator`` and then moved to ``probs``' device, so
    a CPU generator gives the same draws on any device. Actions of probability 0 are never drawn
    (the draw is clamped to the last action of positive probability).

    Returns:
        (B,) int64 actions.
    """
    if probs.ndim != 2:
        raise ValueError(f"probs must be (B, K); got shape {tuple(probs.shape)}")
    if greedy:
        return probs.argmax(-1)
    cdf = probs.detach().cumsum(-1)  # (B, K)
    u = torch.rand(probs.shape[0], 1, generator=generator).to(probs.device, probs.dtype)
    a = (cdf < u * cdf[:, -1:]).sum(-1)  # number of CDF values below u -> the action
    k = torch.arange(probs.shape[1], device=probs.device)
    last = torch.where(probs > 0, k, torch.zeros_like(k)).max(-1).values
    return torch.minimum(a, last)


def reinforce_loss(log_probs: Tensor, advantages: Tensor) -> Tensor:
    """REINFORCE surrogate (Williams, 1992): ``-mean_b sum_t (G_t - b_t) log pi(a_t)``.

    Its gradient is an unbiased estimate of ``-grad E[R]`` for any baseline that does not
    depend on the action; ``advantages`` are detached here.

    Args:
        log_probs: (B, T) log-probabilities of the taken actions.
        advantages: (B, T) returns minus baseline.
    """
    if log_probs.shape != advantages.shape:
        raise ValueError(
            f"log_probs and advantages must have the same (B, T) shape; got "
            f"{tuple(log_probs.shape)} and {tuple(advantages.shape)}"
        )
    return -(advantages.detach() * log_probs).sum(-1).mean()


def discounted_returns(rewards: Tensor, *, gamma: float = 1.0) -> Tensor:
    """``G_t = sum_{k >= t} gamma^{k - t} r_k`` for rewards: (B, T) -> (B, T)."""
    out = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in range(rewards.shape[1] - 1, -1, -1):
        running = rewards[:, t] + gamma * running
        out[:, t] = running
    return out


# ---------------------------------------------------------------------------------------------
# rewards


def semantic_relevance(scores: Tensor, target: Tensor, *, kind: str = "logprob") -> Tensor:
    """How well scores: (B, Z) agree with the true class's semantics, per sample -> (B,).

    - "logprob": ``log softmax(s)_y``;
    - "margin": ``s_y - max_{c != y} s_c``;
    - "score": ``s_y``.
    """
    _check_option("relevance", kind, RELEVANCE_OPTIONS)
    true = scores.gather(1, target[:, None])[:, 0]  # (B,)
    if kind == "logprob":
        return torch.log_softmax(scores, 1).gather(1, target[:, None])[:, 0]
    if kind == "margin":
        others = scores.scatter(1, target[:, None], float("-inf"))
        return true - others.max(1).values
    return true


def visual_correlation(localities: Tensor) -> Tensor:
    """Mean cosine of each locality with the ones chosen before it.

    Args:
        localities: (B, T, D).

    Returns:
        (B, T); entry t is ``mean_{j < t} cos(l_t, l_j)`` (0 at t = 0).
    """
    z = F.normalize(localities, dim=-1)
    cos = z @ z.transpose(1, 2)  # (B, T, T)
    t = localities.shape[1]
    before = torch.ones(t, t, device=z.device).tril(-1)  # j < t
    return (cos * before).sum(-1) / before.sum(-1).clamp_min(1.0)


def erpc_rewards(
    step_scores: Tensor,
    target: Tensor,
    localities: Tensor,
    *,
    relevance: str = "logprob",
    correlation_weight: float = 0.1,
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-step rewards ``r_t = rel_t - rel_{t-1} - lambda_v * corr_t`` (a reconstruction).

    Args:
        step_scores: (T + 1, B, Z) scores of ``h_0 .. h_T`` over the training classes.
        target: (B,) column of the true class.
        localities: (B, T, D) locality features ``l_1 .. l_T``.
        correlation_weight: ``lambda_v``; > 0 penalises a locality that repeats earlier ones
            (a redundancy penalty), < 0 turns it into a bonus, 0 removes it.

    Returns:
        ``(reward, relevance_gain, correlation)``, each (B, T), computed without gradient.
    """
    with torch.no_grad():
        rel = torch.stack([semantic_relevance(s, target, kind=relevance) for s in step_scores], 1)
        gain = rel[:, 1:] - rel[:, :-1]  # (B, T)
        corr = visual_correlation(localities)
        return gain - correlation_weight * corr, gain, corr


# ---------------------------------------------------------------------------------------------
# the network


@dataclass
class ERPCNetOutput:
    """One episode. ``T`` = num_steps (0 for the global-only model).

    Attributes:
        scores: (B, C) final compatibility scores (of ``h_T``).
        step_scores: (T + 1, B, C) scores of ``h_0 .. h_T``.
        actions: (B, T) chosen cells (row-major).
        log_probs: (B, T) ``log pi(a_t)``.
        entropies: (B, T) policy entropies in nats.
        localities: (B, T, D) locality features.
    """

    scores: Tensor
    step_scores: Tensor
    actions: Tensor
    log_probs: Tensor
    entropies: Tensor
    localities: Tensor


class ERPCNet(nn.Module):
    """Global feature + T policy-chosen localities, scored against class semantics.

    Args:
        backbone: a frugalcv.zoo model (``forward_features`` -> (B, C, H, W), ``num_features``).
        semantic_dim: A, the width of the class semantics.
        hidden_dim: D, the width of ``h_t`` and of the locality features.
        num_steps: T localities per image (each cell at most once; T <= g_h * g_w).
        grid: (g_h, g_w) cells over the feature map (the policy's action space).
        use_localities: False gives the global-only baseline (same backbone, ``W_g``, head).
        policy_dim: hidden width of the policy network.

    Shapes: forward(x: (B, in_chans, H_img, W_img), semantics: (C, A)) -> :class:`ERPCNetOutput`.

    Differences from the paper: everything below the abstract is reconstructed (module
    docstring); no ResNet-101 / ImageNet weights here (any zoo backbone, trained from scratch).
    """

    def __init__(
        self,
        *,
        backbone: nn.Module,
        semantic_dim: int,
        hidden_dim: int = 128,
        num_steps: int = 3,
        grid: tuple[int, int] = (4, 4),
        use_localities: bool = True,
        policy_dim: int = 64,
    ) -> None:
        super().__init__()
        gh, gw = grid
        if gh < 1 or gw < 1:
            raise ValueError(f"grid must be two positive ints; got {grid}")
        if use_localities and not 1 <= num_steps <= gh * gw:
            raise ValueError(
                f"num_steps must be in 1..{gh * gw} (the cells of grid {grid}, each chosen at "
                f"most once); got {num_steps}. Use use_localities=False for the global-only model"
            )
        channels = int(backbone.num_features)
        self.backbone = backbone
        self.grid = (gh, gw)
        self.num_steps = num_steps if use_localities else 0
        self.use_localities = use_localities
        self.global_proj = nn.Linear(channels, hidden_dim)
        self.head = BilinearCompatibility(feature_dim=hidden_dim, semantic_dim=semantic_dim)
        if use_localities:
            self.pconv = PartialConv2d(in_channels=channels, out_channels=hidden_dim)
            self.gru = nn.GRUCell(hidden_dim, hidden_dim)
            self.policy_cell = nn.Conv2d(channels, policy_dim, 1)
            self.policy_state = nn.Linear(hidden_dim, policy_dim)
            self.policy_out = nn.Conv2d(policy_dim, 1, 1)

    def policy_logits(self, cells: Tensor, h: Tensor) -> Tensor:
        """Logits over cells from cells: (B, C, g_h, g_w) and the state h: (B, D) -> (B, K).

        ``pi(a | F, h) = softmax_a(w^T relu(U f_a + V h))`` (a reconstruction): each cell's
        pooled feature ``f_a`` is judged against what has been aggregated so far.
        """
        cells = F.normalize(cells, dim=1)  # unit-norm cells: logits do not grow with the map
        z = self.policy_cell(cells) + self.policy_state(h)[:, :, None, None]  # (B, P, g_h, g_w)
        return self.policy_out(torch.relu(z)).flatten(1)  # (B, g_h * g_w)

    def forward(
        self,
        x: Tensor,
        semantics: Tensor,
        *,
        generator: torch.Generator | None = None,
        greedy: bool = False,
    ) -> ERPCNetOutput:
        f = self.backbone.forward_features(x)  # (B, C, H, W)
        if f.ndim != 4:
            raise ValueError(f"backbone.forward_features must give (B, C, H, W); got {f.shape}")
        b, _, h_f, w_f = f.shape
        gh, gw = self.grid
        if gh > h_f or gw > w_f:
            raise ValueError(f"grid {self.grid} is finer than the {h_f}x{w_f} feature map")
        h = torch.tanh(self.global_proj(f.mean((2, 3))))  # (B, D) h_0
        step_scores = [self.head(h, semantics)]
        actions, log_probs, entropies, locs = [], [], [], []
        if self.use_localities:
            cells = F.adaptive_avg_pool2d(f, self.grid).detach()  # (B, C, g_h, g_w)
            visited = torch.zeros(b, gh * gw, dtype=torch.bool, device=f.device)
            for _ in range(self.num_steps):
                logits = _masked_logits(self.policy_logits(cells, h.detach()), ~visited)
                logp = torch.log_softmax(logits, -1)  # (B, K)
                a = sample_categorical(logp.exp(), generator=generator, greedy=greedy)
                mask = cell_masks(a, grid=self.grid, size=(h_f, w_f))  # (B, 1, H, W)
                out, _ = self.pconv(f, mask)
                loc = masked_mean(torch.relu(out), mask)  # (B, D) l_t
                h = self.gru(loc, h)
                visited = visited | F.one_hot(a, gh * gw).bool()
                step_scores.append(self.head(h, semantics))
                actions.append(a)
                log_probs.append(logp.gather(1, a[:, None])[:, 0])
                entropies.append(policy_entropy(logits))
                locs.append(loc)

        def stack(items: list[Tensor], shape: tuple[int, ...], dtype=None) -> Tensor:
            if items:
                return torch.stack(items, 1)
            return torch.zeros(shape, device=f.device, dtype=dtype or f.dtype)

        return ERPCNetOutput(
            scores=step_scores[-1],
            step_scores=torch.stack(step_scores),
            actions=stack(actions, (b, 0), torch.long),
            log_probs=stack(log_probs, (b, 0)),
            entropies=stack(entropies, (b, 0)),
            localities=stack(locs, (b, 0, h.shape[1])),
        )


# ---------------------------------------------------------------------------------------------
# the task


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


# ---------------------------------------------------------------------------------------------
# explainability


def locality_boxes(
    actions: Tensor, *, grid: tuple[int, int], image_size: tuple[int, int]
) -> Tensor:
    """Pixel boxes (x0, y0, x1, y1) of chosen cells, taking the feature map to span the image.

    Args:
        actions: (T,) cell indices.
        image_size: (H, W) of the image.

    Returns:
        (T, 4) float boxes.
    """
    gh, gw = grid
    h, w = image_size
    i, j = (actions // gw).float(), (actions % gw).float()
    return torch.stack([j * w / gw, i * h / gh, (j + 1) * w / gw, (i + 1) * h / gh], 1)


def draw_localities(
    image: Tensor,
    actions: Tensor,
    path: str | Path,
    *,
    grid: tuple[int, int],
    title: str | None = None,
    dpi: int = 100,
) -> dict:
    """Draw the cells an episode chose, step by step, over the input image into a PNG.

    Each chosen cell is outlined and numbered by its step (1..T); colours follow the step.

    Args:
        image: (1, H, W) or (3, H, W) in [0, 1].
        actions: (T,) cells in the order the policy chose them (``ERPCNetOutput.actions[i]``).
        path: PNG file to write (parent folders are created).

    Returns:
        ``{"path": Path, "boxes": (T, 4) pixel boxes, "num_boxes_drawn": int}``.
    """
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    img = torch.as_tensor(image).detach().float().cpu()
    if img.ndim != 3 or img.shape[0] not in (1, 3):
        raise ValueError(f"image must be (1, H, W) or (3, H, W); got {tuple(img.shape)}")
    actions = torch.as_tensor(actions).detach().cpu().long().reshape(-1)
    if len(actions) and (actions.min() < 0 or actions.max() >= grid[0] * grid[1]):
        raise ValueError(f"actions must be cells in 0..{grid[0] * grid[1] - 1} of grid {grid}")
    h, w = img.shape[1:]
    boxes = locality_boxes(actions, grid=grid, image_size=(h, w))
    arr = img[0].numpy() if img.shape[0] == 1 else img.permute(1, 2, 0).numpy()
    fig = Figure(figsize=(4, 4 * h / w), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(np.clip(arr, 0, 1), cmap="gray" if arr.ndim == 2 else None, vmin=0, vmax=1)
    cmap = colormaps["autumn"]
    drawn = 0
    for t, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
        colour = cmap(t / max(1, len(boxes) - 1))
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec=colour, lw=2))
        ax.text(x0, y0, str(t + 1), color=colour, fontsize=10, va="top", weight="bold")
        drawn += 1
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return {"path": path, "boxes": boxes, "num_boxes_drawn": drawn}
