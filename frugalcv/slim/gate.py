"""DS-Net's dynamic gate and the Stage-II targets and penalty.

C. Li et al., "Dynamic Slimmable Network", CVPR 2021 (Sec. 3.2 gate, Sec. 3.3 SGS) and
"DS-Net++", arXiv 2109.10060. Official code: changlin31/DS-Net commit 15cd303
(``dyn_slim/models/dyn_slim_blocks.py`` ``MultiHeadGate``, ``dyn_slim/apis/train_slim_gate.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "SGS_RULES",
    "DynamicGate",
    "GateOutput",
    "budget_curve",
    "complexity_loss",
    "gumbel_route",
    "sgs_targets",
    "threshold_for_share",
]

SGS_RULES = ("official", "paper")


@dataclass
class GateOutput:
    """What the gate returns for a batch of B samples and K widths.

    Attributes:
        logits: ``(B, K)`` slimming-head scores.
        soft: ``(B, K)`` probabilities (Gumbel-perturbed when sampling).
        weights: ``(B, K)`` one-hot of ``index``; when sampling it is straight-through
            (value one-hot, gradient of ``soft``).
        index: ``(B,)`` long, the chosen width per sample.
    """

    logits: Tensor
    soft: Tensor
    weights: Tensor
    index: Tensor


def gumbel_route(
    logits: Tensor,
    *,
    tau: float = 1.0,
    sample: bool = True,
    generator: torch.Generator | None = None,
) -> GateOutput:
    """Straight-through Gumbel-softmax choice (sampling) or plain argmax (no noise).

    Sampling (training): ``y_soft = softmax((logits + g) / tau)`` with ``g ~ Gumbel(0, 1)``,
    ``index = argmax y_soft``, ``weights = onehot(index) - sg(y_soft) + y_soft``
    (E. Jang et al., ICLR 2017; the DS-Net code uses tau = 1).
    Not sampling: ``index = argmax logits``, ``weights = onehot(index)``, ``soft = softmax``.

    Args:
        logits: ``(B, K)``.
    """
    if logits.dim() != 2:
        raise ValueError(f"gate logits must be (B, K); got shape {tuple(logits.shape)}")
    if sample:
        u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
        e = -torch.log(u.clamp_min(1e-20))  # Exp(1) sample, > 0
        g = -torch.log(e.clamp_min(1e-20))  # Gumbel(0, 1)
        soft = F.softmax((logits + g) / tau, dim=-1)
        index = soft.argmax(-1)
        hard = F.one_hot(index, logits.shape[-1]).to(soft.dtype)
        weights = hard - soft.detach() + soft
    else:
        soft = F.softmax(logits / tau, dim=-1)
        index = logits.argmax(-1)
        weights = F.one_hot(index, logits.shape[-1]).to(logits.dtype)
    return GateOutput(logits=logits, soft=soft, weights=weights, index=index)


class DynamicGate(nn.Module):
    """Pooled features -> small head -> one of K widths (DS-Net's "slimming head").

    ``z = mean over space (or tokens) of f``, ``hidden = ReLU(W_1 z)``,
    ``logits = W_2 hidden``; routing by :func:`gumbel_route` (sampled in training, argmax in
    eval). With ``attention=True`` it is DS-Net's double-headed gate: the same hidden vector also
    feeds an SE attention head ``a = sigmoid(W_a hidden)`` that rescales the features
    (:meth:`attend`). The attention head is then part of the supernet (trained in Stage I),
    while the slimming head ``W_2`` is what Stage II trains.

    Args:
        in_channels: channels C of the features at the gate.
        num_choices: K widths.
        hidden: hidden size (default ``max(8, C // 4)``; DS-Net uses ``0.25 C``).
        attention: add the SE attention head.
        tau: Gumbel-softmax temperature (1 in the authors' code).
        gumbel_at_eval: also sample in eval mode (the authors' code does, so its routing at
            inference is random; default off: same input, same route).

    Shapes: ``f: (B, C, H, W)``, ``(B, N, C)`` tokens or ``(B, C)`` -> :class:`GateOutput`.

    Differences from the paper: the gate input is the trunk output after the first stage(s)
    (DS-Net puts it inside the first block of the gated stage, after the depthwise conv).
    """

    def __init__(
        self,
        *,
        in_channels: int,
        num_choices: int,
        hidden: int | None = None,
        attention: bool = False,
        tau: float = 1.0,
        gumbel_at_eval: bool = False,
    ) -> None:
        super().__init__()
        if num_choices < 2:
            raise ValueError(f"a gate needs at least 2 choices; got {num_choices}")
        hidden = hidden or max(8, in_channels // 4)
        self.in_channels, self.num_choices = in_channels, num_choices
        self.tau, self.gumbel_at_eval = tau, gumbel_at_eval
        self.reduce = nn.Linear(in_channels, hidden)
        self.slim_head = nn.Linear(hidden, num_choices)
        self.attn_head = nn.Linear(hidden, in_channels) if attention else None

    @property
    def attention(self) -> bool:
        return self.attn_head is not None

    def _pool(self, f: Tensor) -> Tensor:
        if f.dim() == 4:
            z = f.mean(dim=(2, 3))  # (B, C)
        elif f.dim() == 3:
            z = f.mean(dim=1)  # tokens (B, N, C) -> (B, C)
        elif f.dim() == 2:
            z = f
        else:
            raise ValueError(
                f"gate input must be (B,C,H,W), (B,N,C) or (B,C); got {tuple(f.shape)}"
            )
        if z.shape[1] != self.in_channels:
            raise ValueError(
                f"gate built for {self.in_channels} channels got {z.shape[1]}; build it with "
                f"in_channels equal to the trunk's output width"
            )
        return z

    def attend(self, f: Tensor) -> Tensor:
        """SE attention head: ``f * sigmoid(W_a ReLU(W_1 pool(f)))`` (identity without it)."""
        if self.attn_head is None:
            return f
        a = torch.sigmoid(self.attn_head(F.relu(self.reduce(self._pool(f)))))  # (B, C)
        return f * (a[:, :, None, None] if f.dim() == 4 else a[:, None, :] if f.dim() == 3 else a)

    def slim_parameters(self) -> list[nn.Parameter]:
        """What Stage II trains: the slimming head (and the reduction when not shared with SE)."""
        params = list(self.slim_head.parameters())
        if self.attn_head is None:
            params += list(self.reduce.parameters())
        return params

    def forward(self, f: Tensor, *, generator: torch.Generator | None = None) -> GateOutput:
        logits = self.slim_head(F.relu(self.reduce(self._pool(f))))  # (B, K)
        sample = self.training or self.gumbel_at_eval
        return gumbel_route(logits, tau=self.tau, sample=sample, generator=generator)


def sgs_targets(
    logits_small: Tensor,
    logits_large: Tensor,
    y: Tensor,
    *,
    num_choices: int,
    rule: str = "official",
) -> Tensor:
    """Sandwich gate sparsification targets: which width each sample should be routed to.

    ``"official"`` (changlin31/DS-Net ``train_slim_gate.py``): the slimmest choice 0 when the
    slimmest sub-network's top-1 is right, else the largest choice K-1 (``logits_large`` unused).
    ``"paper"`` (DS-Net Sec. 3.3 as recalled, not verified against the PDF here): choice 0 when
    the slimmest is right; K-1 when only the largest is right; 0 when both are wrong (too hard
    for any width, so no computation is spent on it).

    Args:
        logits_small, logits_large: ``(B, num_classes)`` of the slimmest / largest sub-networks.
        y: ``(B,)`` labels.

    Returns:
        ``(B,)`` long in ``{0, K-1}``.
    """
    if rule not in SGS_RULES:
        raise ValueError(f"unknown SGS rule {rule!r}; use one of {SGS_RULES}")
    small_ok = logits_small.argmax(-1) == y
    hard = ~small_ok
    if rule == "paper":
        hard = hard & (logits_large.argmax(-1) == y)
    return hard.long() * (num_choices - 1)


def complexity_loss(weights: Tensor, choice_macs: Tensor, *, unit: float) -> Tensor:
    """DS-Net's complexity penalty ``(E[MACs] / unit)^2``.

    ``E[MACs] = mean_b sum_k weights[b, k] * choice_macs[k]``; with straight-through weights the
    value is the routed MACs and the gradient reaches the gate. The authors use ``unit = 1e9``
    (MAdds in G) and weight 0.5 (``train_slim_gate.py``).

    Args:
        weights: ``(B, K)`` gate weights; choice_macs: ``(K,)`` MACs per sample of each width.
    """
    if weights.shape[-1] != choice_macs.shape[0]:
        raise ValueError(
            f"weights have {weights.shape[-1]} choices but choice_macs has {choice_macs.shape[0]}"
        )
    expected = (weights * choice_macs.to(weights.dtype)).sum(-1).mean()
    return (expected / unit) ** 2


def threshold_for_share(scores: Tensor, share: float) -> float:
    """The score above which a ``share`` of ``scores`` lies: calibrates budget routing.

    Route an image to the large width when its score is ``> threshold``. Calibrate on images
    the evaluation does not use (e.g. the training set), then apply per image: the share met on
    new images is then an estimate, not exact. ``share`` 0 gives ``+inf`` (nothing routed),
    1 gives ``-inf`` (everything routed).

    Args:
        scores: ``(N,)`` a "hard" score per image, e.g. the gate's softmax on the largest width.
        share: target fraction of images in ``[0, 1]``.
    """
    if scores.dim() != 1 or scores.numel() == 0:
        raise ValueError(f"scores must be a non-empty (N,) tensor; got {tuple(scores.shape)}")
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be in [0, 1]; got {share}")
    if share == 0.0:
        return float("inf")
    if share == 1.0:
        return float("-inf")
    s = scores.detach().double().sort(descending=True).values
    k = round(share * s.numel())  # images routed: the k highest scores
    if k <= 0:
        return float(s[0])
    if k >= s.numel():
        return float("-inf")
    return float((s[k - 1] + s[k]) / 2) if s[k - 1] > s[k] else float(s[k])


def budget_curve(
    score_cal: Tensor,
    score: Tensor,
    small_ok: Tensor,
    large_ok: Tensor,
    *,
    macs_small: float,
    macs_large: float,
    shares: Sequence[float],
    gate_macs: float = 0.0,
) -> dict[str, Tensor]:
    """Accuracy against mean MACs when the images a gate scores highest run the large width.

    A two-way budget router on top of a trained gate: for each target share ``q`` a threshold
    is calibrated on ``score_cal`` (:func:`threshold_for_share`), every image with a higher
    ``score`` runs the large width, the rest the small one. Next to it, at the share each
    threshold really routed (``share``):

    - ``random_acc``: the expected accuracy of routing that share at random (no information):
      ``(1 - share) acc_small + share acc_large``;
    - ``oracle_acc``: the best any router can do with that share: images the small width gets
      wrong and the large one right go first.

    Args:
        score_cal: ``(M,)`` scores of the calibration images.
        score: ``(N,)`` scores of the evaluated images; small_ok / large_ok: ``(N,)`` bool,
            whether the small / large width classifies each image correctly.
        macs_small, macs_large: MACs per image of the two widths; gate_macs: the router's own.
        shares: target shares in ``[0, 1]``.

    Returns:
        ``(len(shares),)`` float64 tensors ``target``, ``share``, ``macs`` (mean per image,
        gate included), ``acc``, ``random_acc``, ``oracle_acc``.
    """
    n = score.numel()
    if score.dim() != 1 or small_ok.shape != (n,) or large_ok.shape != (n,):
        raise ValueError(
            f"score, small_ok and large_ok must all be (N,); got {tuple(score.shape)}, "
            f"{tuple(small_ok.shape)}, {tuple(large_ok.shape)}"
        )
    if n == 0:
        raise ValueError("budget_curve needs at least one evaluated image")
    small_ok, large_ok = small_ok.bool().cpu(), large_ok.bool().cpu()
    score = score.detach().double().cpu()
    acc_small, acc_large = small_ok.double().mean(), large_ok.double().mean()
    gain = (large_ok & ~small_ok).sum().double()  # images only the large width gets right
    out: dict[str, list[float]] = {
        k: [] for k in ("target", "share", "macs", "acc", "random_acc", "oracle_acc")
    }
    for q in shares:
        t = threshold_for_share(score_cal, float(q))
        routed = score > t
        k = routed.sum().double()
        share = k / n
        out["target"].append(float(q))
        out["share"].append(float(share))
        out["macs"].append(float(macs_small + share * (macs_large - macs_small) + gate_macs))
        out["acc"].append(float(torch.where(routed, large_ok, small_ok).double().mean()))
        out["random_acc"].append(float((1 - share) * acc_small + share * acc_large))
        out["oracle_acc"].append(float(acc_small + torch.minimum(k, gain) / n))
    return {k: torch.tensor(v, dtype=torch.float64) for k, v in out.items()}
