"""BGSNet components as functions and modules of tensors: diversity loss, episodes, GNet,
attentive extractors, dataset-level and instance-level balance. See :mod:`frugalcv.zsl.bgsnet`."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

__all__ = [
    "ATTENTION_OPTIONS",
    "BRANCH_OPTIONS",
    "AttentiveExtractors",
    "DatasetBalance",
    "Episode",
    "GNet",
    "InstanceBalance",
    "attention_similarity",
    "diversity_loss",
    "eligible_classes",
    "episode_loss",
    "linear_anneal",
    "sample_episode",
]

ATTENTION_OPTIONS = ("spatial", "channel")
BRANCH_OPTIONS = ("both", "gnet", "bsnet")

# Fixed scale of cosine scores (ours): cosine classifiers use ~10 (Gidaris & Komodakis, CVPR 2018
# learn it; Chen et al., ICLR 2019 "A Closer Look at Few-shot Classification" fix it at 10 for
# few classes). One scale for both branches keeps their scores comparable for the gate.
_SCALE = 10.0
# Inner-loop learning rate of the first-order episodic update: MAML's miniImageNet alpha
# (Finn et al., ICML 2017, Sec. 5.2); ours for BGSNet.
_INNER_LR = 0.01
# Bottleneck ratio of channel attention, SE-Net's r = 16 (Hu et al., CVPR 2018).
_SE_REDUCTION = 16


def _check_option(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {name}={value!r}; valid options are {', '.join(valid)}")


def _cosine_scores(v: Tensor, s: Tensor, scale: float) -> Tensor:
    """scale * cos between rows: v (..., B, E), s (..., C, E) -> (..., B, C)."""
    return scale * F.normalize(v, dim=-1) @ F.normalize(s, dim=-1).transpose(-1, -2)


# ---------------------------------------------------------------------------------------------
# diversity loss


def attention_similarity(attention: Tensor) -> Tensor:
    """Pairwise cosine similarity of K attention maps: (B, K, P) -> (B, K, K).

    Non-negative maps (softmax or sigmoid attention) give values in [0, 1]: 0 for maps with
    disjoint support, 1 for maps equal up to scale.
    """
    if attention.ndim != 3:
        raise ValueError(
            f"attention must be (B, K, P) (flatten spatial maps to P = H*W); got shape "
            f"{tuple(attention.shape)}"
        )
    a = F.normalize(attention, dim=2)
    return a @ a.transpose(1, 2)  # (B, K, K)


def diversity_loss(attention: Tensor, *, margin: float = 0.0, self_adjust: bool = True) -> Tensor:
    """Self-adjusted diversity loss over K attention maps (reconstruction of BGSNet's L_div).

    With ``c_ij`` the cosine similarity of maps i and j (:func:`attention_similarity`)::

        L_div = mean_b  2 / (K (K - 1))  sum_{i<j}  w_ij [c_ij - m]_+,   w_ij = sg(c_ij)

    ``sg`` stops the gradient: each pair is weighted by its own current redundancy, so pairs that
    attend to the same place are pushed apart hard while already-diverse pairs fade out of the
    loss (the "self-adjusted" part; the paper's exact rule is not public). ``self_adjust=False``
    uses ``w_ij = 1``. Negative similarities (possible for signed inputs such as embeddings)
    count as 0: orthogonal is diverse enough.

    Hand values: disjoint maps give 0; identical maps give 1, the maximum (``c, w <= 1``); maps
    (1, 1, 0)/2 and (0, 1, 1)/2 have c = 1/2, so 1/4 (self-adjusted) or 1/2 (plain).

    Args:
        attention: (B, K, P) attention maps (or embeddings) of K extractors, K >= 2.
        margin: similarity m in [0, 1) tolerated without penalty.
        self_adjust: weight each pair by its detached similarity.

    Returns:
        scalar loss in [0, 1].
    """
    if not 0.0 <= margin < 1.0:
        raise ValueError(f"margin must be in [0, 1); got {margin}")
    c = attention_similarity(attention).clamp_min(0.0)  # (B, K, K)
    k = c.shape[1]
    if k < 2:
        raise ValueError(f"diversity needs K >= 2 attention maps; got K = {k}")
    i, j = torch.triu_indices(k, k, offset=1, device=c.device)
    pairs = c[:, i, j]  # (B, K(K-1)/2)
    hinge = (pairs - margin).clamp_min(0.0)
    if self_adjust:
        hinge = pairs.detach() * hinge
    return hinge.mean()


# ---------------------------------------------------------------------------------------------
# episodes (GNet)


@dataclass(frozen=True)
class Episode:
    """One episode over a pool of labelled samples.

    Attributes:
        classes: (n_way,) global ids; the first ``n_way - num_pseudo_unseen`` are pseudo-seen.
        support: indices into the pool of the support samples (pseudo-seen classes only).
        query: indices into the pool of the query samples (every episode class), disjoint from
            the support.
        num_pseudo_unseen: trailing entries of ``classes`` without support samples.
    """

    classes: Tensor
    support: Tensor
    query: Tensor
    num_pseudo_unseen: int

    @property
    def pseudo_seen(self) -> Tensor:
        return self.classes[: len(self.classes) - self.num_pseudo_unseen]


def eligible_classes(y: Tensor, *, seen_classes: Tensor, min_count: int) -> Tensor:
    """Seen classes with at least ``min_count`` samples in ``y`` (sorted ids)."""
    ids, counts = torch.unique(torch.as_tensor(y).cpu(), return_counts=True)
    keep = (counts >= min_count) & torch.isin(ids, torch.as_tensor(seen_classes).cpu())
    return ids[keep]


def sample_episode(
    y: Tensor,
    *,
    seen_classes: Tensor,
    n_way: int,
    n_support: int,
    n_query: int,
    n_pseudo_unseen: int = 0,
    generator: torch.Generator | None = None,
) -> Episode:
    """Sample an episode from the seen classes of a labelled pool (a batch or a data set).

    Draws ``n_way`` classes among the seen classes that have ``n_support + n_query`` samples in
    ``y``, then per class ``n_query`` query samples and, for the pseudo-seen classes (all but the
    last ``n_pseudo_unseen``), ``n_support`` support samples. Samples of other classes (e.g.
    unseen ones) are never drawn.

    Args:
        y: (N,) global labels of the pool.
        seen_classes: ids allowed in episodes.
        generator: torch generator (default: the global one, which checkpoints save).

    Returns:
        an :class:`Episode` with indices into ``y``.
    """
    y = torch.as_tensor(y).cpu().long()
    if y.ndim != 1:
        raise ValueError(f"y must be (N,) labels; got shape {tuple(y.shape)}")
    if n_way < 2 or n_query < 1 or n_support < 1 or not 0 <= n_pseudo_unseen < n_way:
        raise ValueError(
            "need n_way >= 2, n_support >= 1, n_query >= 1 and 0 <= n_pseudo_unseen < n_way; "
            f"got n_way={n_way}, n_support={n_support}, n_query={n_query}, "
            f"n_pseudo_unseen={n_pseudo_unseen}"
        )
    pool = eligible_classes(y, seen_classes=seen_classes, min_count=n_support + n_query)
    if len(pool) < n_way:
        raise ValueError(
            f"only {len(pool)} seen classes have >= {n_support + n_query} samples in the pool; "
            f"n_way={n_way} needs more: use larger (or class-balanced) batches or a smaller n_way"
        )
    classes = pool[torch.randperm(len(pool), generator=generator)[:n_way]]
    num_seen_way = n_way - n_pseudo_unseen
    support, query = [], []
    for rank, c in enumerate(classes.tolist()):
        idx = (y == c).nonzero().squeeze(1)
        idx = idx[torch.randperm(len(idx), generator=generator)]
        query.append(idx[:n_query])
        if rank < num_seen_way:
            support.append(idx[n_query : n_query + n_support])
    return Episode(classes, torch.cat(support), torch.cat(query), n_pseudo_unseen)


class GNet(nn.Module):
    """Generalization network: cosine compatibility of projected features and semantics.

    ``s_G(x, c) = scale * cos(V g(x) + b_V, U a_c + b_U)`` with g the pooled feature.

    Shapes: forward(g: (B, D), semantics: (C, A)) -> (B, C).
    """

    def __init__(
        self, *, feature_dim: int, semantic_dim: int, embed_dim: int, scale: float = _SCALE
    ) -> None:
        super().__init__()
        self.visual = nn.Linear(feature_dim, embed_dim)
        self.semantic = nn.Linear(semantic_dim, embed_dim)
        self.scale = scale

    def forward(self, g: Tensor, semantics: Tensor) -> Tensor:
        return _cosine_scores(self.visual(g), self.semantic(semantics), self.scale)


def episode_loss(
    gnet: GNet,
    g: Tensor,
    y: Tensor,
    semantics: Tensor,
    episode: Episode,
    *,
    inner_lr: float = _INNER_LR,
    inner_steps: int = 1,
) -> Tensor:
    """First-order MAML episode loss of GNet (reconstruction of BGSNet's episodic training).

    Inner loop: ``theta' = theta - alpha * sg(grad L_sup(theta))``, repeated ``inner_steps``
    times, where ``L_sup`` is the cross-entropy of the support samples among the pseudo-seen
    classes (computed on detached features). Outer loss: the cross-entropy of the query samples
    among all episode classes under ``theta'``. Because the inner gradient is a constant,
    backpropagating the outer loss gives the first-order MAML gradient (Finn et al. 2017, Sec. 5.2)
    for ``theta`` and the ordinary gradient for the features ``g`` (the backbone).

    Args:
        gnet: the GNet whose parameters are adapted.
        g: (N, D) pooled features of the pool the episode indexes.
        y: (N,) their global labels.
        semantics: (num_classes, A) semantics indexed by global id.
        episode: from :func:`sample_episode`.

    Returns:
        the query loss (scalar).
    """
    if inner_lr < 0 or inner_steps < 0:
        raise ValueError(f"inner_lr and inner_steps must be >= 0; got {inner_lr} and {inner_steps}")
    params = dict(gnet.named_parameters())
    y = y.to(g.device)
    sup_classes = episode.pseudo_seen.to(g.device)
    g_sup, y_sup = g[episode.support].detach(), y[episode.support]
    sup_target = (y_sup[:, None] == sup_classes[None]).float().argmax(1)  # column in episode
    for _ in range(inner_steps):
        with torch.enable_grad():
            sup_scores = functional_call(gnet, params, (g_sup, semantics[sup_classes]))
            grads = torch.autograd.grad(
                F.cross_entropy(sup_scores, sup_target), list(params.values())
            )
        params = {
            k: p - inner_lr * gr.detach() for (k, p), gr in zip(params.items(), grads, strict=True)
        }
    classes = episode.classes.to(g.device)
    y_q = y[episode.query]
    q_target = (y_q[:, None] == classes[None]).float().argmax(1)
    q_scores = functional_call(gnet, params, (g[episode.query], semantics[classes]))
    return F.cross_entropy(q_scores, q_target)


# ---------------------------------------------------------------------------------------------
# BSNet: attentive extractors, dataset-level balance, instance-level balance


def _uniform_(t: Tensor, fan_in: int) -> Tensor:
    bound = fan_in**-0.5  # nn.Linear's default range
    return nn.init.uniform_(t, -bound, bound)


class AttentiveExtractors(nn.Module):
    """K attentive extractors, each producing an embedding scored against the class semantics.

    - ``attention="spatial"`` on feature maps F (B, C, H, W): head k computes
      ``A_k = softmax_{hw}(w_k^T F + b_k)`` and the attended feature ``p_k = sum_hw A_k F``.
    - ``attention="channel"`` on feature vectors g (B, D) (a map is average-pooled first): head k
      is an SE block (Hu et al. 2018, reduction 16), ``A_k = sigmoid(W2_k relu(W1_k g))`` and
      ``p_k = A_k * g``.

    Each head then embeds ``e_k = P_k p_k`` and the semantics ``u_{k,c} = U_k a_c`` and scores
    ``s_k(x, c) = scale * cos(e_k, u_{k,c})``.

    Shapes: forward(f, semantics: (C, A), heads: (K',) indices or None) ->
    (scores (B, K', C), attention (B, K', P)); P = H*W (spatial) or D (channel).
    """

    def __init__(
        self,
        *,
        feature_dim: int,
        semantic_dim: int,
        embed_dim: int,
        num_extractors: int,
        attention: str = "spatial",
        scale: float = _SCALE,
    ) -> None:
        super().__init__()
        _check_option("attention", attention, ATTENTION_OPTIONS)
        if num_extractors < 1:
            raise ValueError(f"num_extractors must be >= 1; got {num_extractors}")
        k, c, a, e = num_extractors, feature_dim, semantic_dim, embed_dim
        self.attention, self.scale = attention, scale
        if attention == "spatial":
            self.attn_w = nn.Parameter(_uniform_(torch.empty(k, c), c))
            self.attn_b = nn.Parameter(torch.zeros(k))
        else:
            h = max(8, c // _SE_REDUCTION)
            self.se_w1 = nn.Parameter(_uniform_(torch.empty(k, c, h), c))
            self.se_w2 = nn.Parameter(_uniform_(torch.empty(k, h, c), h))
            self.se_b2 = nn.Parameter(torch.zeros(k, c))
        self.proj_w = nn.Parameter(_uniform_(torch.empty(k, c, e), c))
        self.proj_b = nn.Parameter(torch.zeros(k, e))
        self.sem_w = nn.Parameter(_uniform_(torch.empty(k, a, e), a))
        self.sem_b = nn.Parameter(torch.zeros(k, e))

    @property
    def num_extractors(self) -> int:
        return self.proj_w.shape[0]

    def select(self, heads: Tensor) -> AttentiveExtractors:
        """A copy holding only the extractors ``heads`` (the pruned structure)."""
        out = copy.deepcopy(self)
        for name, p in self.named_parameters():
            setattr(out, name, nn.Parameter(p.detach()[heads].clone()))
        return out

    def forward(
        self, f: Tensor, semantics: Tensor, heads: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        def take(p: Tensor) -> Tensor:
            return p if heads is None else p[heads]

        if self.attention == "spatial":
            if f.ndim != 4:
                raise ValueError(
                    f"spatial attention needs feature maps (B, C, H, W); got shape "
                    f"{tuple(f.shape)}. Use attention='channel' for (B, D) features"
                )
            flat = f.flatten(2)  # (B, C, P)
            logits = torch.einsum("bcp,kc->bkp", flat, take(self.attn_w))
            attn = (logits + take(self.attn_b)[None, :, None]).softmax(dim=2)  # (B, K, P)
            parts = torch.einsum("bkp,bcp->bkc", attn, flat)  # (B, K, C)
        else:
            g = f.mean(dim=(2, 3)) if f.ndim == 4 else f  # (B, D)
            if g.ndim != 2:
                raise ValueError(f"features must be (B, D) or (B, C, H, W); got {tuple(f.shape)}")
            hidden = torch.einsum("bc,kch->bkh", g, take(self.se_w1)).relu()
            attn = torch.sigmoid(
                torch.einsum("bkh,khc->bkc", hidden, take(self.se_w2)) + take(self.se_b2)
            )  # (B, K, D)
            parts = attn * g[:, None]  # (B, K, D)
        emb = torch.einsum("bkc,kce->bke", parts, take(self.proj_w)) + take(self.proj_b)
        sem = torch.einsum("ma,kae->kme", semantics, take(self.sem_w)) + take(self.sem_b)[:, None]
        scores = _cosine_scores(emb.transpose(0, 1), sem, self.scale).transpose(0, 1)
        return scores, attn  # (B, K, C), (B, K, P)


def linear_anneal(step: int | Tensor, *, start: int, length: int) -> float:
    """Linear annealing factor: 1 before ``start``, ``1 - (step - start) / length`` while
    annealing, exactly 0 from ``start + length`` on."""
    if start < 0 or length < 1:
        raise ValueError(f"need start >= 0 and length >= 1; got start={start}, length={length}")
    t = (int(step) - start) / length
    return float(min(1.0, max(0.0, 1.0 - t)))


class DatasetBalance(nn.Module):
    """Differentiable dataset-level weights over K extractors, annealed to simulate pruning.

    ``pi = softmax(alpha)`` (alpha learned with the network, shared by every sample). At step
    ``anneal_start`` the ``K - num_keep`` extractors with the lowest alpha are marked for
    pruning; their multiplier falls linearly (:func:`linear_anneal`) to exactly 0 at
    ``anneal_start + anneal_steps``. The weights are ``w_k = pi_k m_k / sum_j pi_j m_j``, so
    after annealing the marked extractors contribute nothing and can be removed
    (:meth:`BGSNet.pruned`) without changing any score.

    The schedule position is the buffer ``step`` (optimizer steps taken; :meth:`advance`), saved
    with the model so resumed runs anneal identically.

    Shapes: forward() -> (K,) weights summing to 1.
    """

    def __init__(
        self, *, num_extractors: int, num_keep: int, anneal_start: int, anneal_steps: int
    ) -> None:
        super().__init__()
        if not 1 <= num_keep <= num_extractors:
            raise ValueError(
                f"num_keep must be in [1, num_extractors={num_extractors}]; got {num_keep}"
            )
        linear_anneal(0, start=anneal_start, length=anneal_steps)  # validates the schedule
        self.alpha = nn.Parameter(torch.zeros(num_extractors))
        self.num_keep, self.anneal_start, self.anneal_steps = num_keep, anneal_start, anneal_steps
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.register_buffer("marked", torch.zeros(num_extractors, dtype=torch.bool))

    def advance(self) -> None:
        """Count one optimizer step; mark the weakest extractors when annealing begins."""
        if int(self.step) == self.anneal_start and not self.marked.any():
            order = torch.argsort(self.alpha.detach(), stable=True)
            self.marked[order[: len(order) - self.num_keep]] = True
        self.step += 1

    def multipliers(self) -> Tensor:
        """(K,) annealing multipliers m_k (1 for kept extractors)."""
        r = linear_anneal(self.step, start=self.anneal_start, length=self.anneal_steps)
        return torch.where(self.marked, r, 1.0).to(self.alpha.dtype)

    def active(self) -> Tensor:
        """Indices of extractors with a non-zero multiplier (all before annealing ends)."""
        return (self.multipliers() > 0).nonzero().squeeze(1)

    @property
    def finished(self) -> bool:
        return int(self.step) >= self.anneal_start + self.anneal_steps and bool(self.marked.any())

    def forward(self) -> Tensor:
        w = self.alpha.softmax(0) * self.multipliers()
        return w / w.sum()


class InstanceBalance(nn.Module):
    """Per-sample gate between the generalization and specialization scores.

    ``lambda(x) = sigmoid(MLP(g(x)))``, ``s = lambda s_G + (1 - lambda) s_S``.

    Shapes: forward(g: (B, D), s_g: (B, C), s_s: (B, C)) -> (scores (B, C), lambda (B,)).
    """

    def __init__(self, *, feature_dim: int, hidden_dim: int = 32) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(feature_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, 1)
        )
        nn.init.zeros_(self.mlp[2].weight)  # start at lambda = 1/2: no branch preferred
        nn.init.zeros_(self.mlp[2].bias)

    def forward(self, g: Tensor, s_g: Tensor, s_s: Tensor) -> tuple[Tensor, Tensor]:
        lam = torch.sigmoid(self.mlp(g)).squeeze(1)  # (B,)
        return lam[:, None] * s_g + (1 - lam[:, None]) * s_s, lam
