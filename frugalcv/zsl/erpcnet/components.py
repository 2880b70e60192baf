"""ERPCNet components: partial convolution, locality masks, policy maths and rewards."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "BASELINE_OPTIONS",
    "RELEVANCE_OPTIONS",
    "PartialConv2d",
    "cell_masks",
    "discounted_returns",
    "erpc_rewards",
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
