"""The BGSNet scorer (GNet + BSNet, balanced) and the cost of its pruned structure."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from frugalcv.zsl.bgsnet.components import (
    _SCALE,
    ATTENTION_OPTIONS,
    BRANCH_OPTIONS,
    AttentiveExtractors,
    DatasetBalance,
    GNet,
    InstanceBalance,
    _check_option,
)

__all__ = ["BGSNet", "pruning_report"]


def _backbone_width(backbone: nn.Module) -> int:
    return int(backbone.num_features)


class BGSNet(nn.Module):
    """The BGSNet scorer: GNet and BSNet over shared features, balanced per instance.

    ``s(x, c) = lambda(x) s_G(x, c) + (1 - lambda(x)) sum_k w_k s_k(x, c)`` with GNet's score
    s_G, the K extractors' scores s_k, the dataset-level weights w (:class:`DatasetBalance`;
    uniform ``1/K`` without it) and the instance gate lambda (:class:`InstanceBalance`). With one
    branch (``branches="gnet"`` or ``"bsnet"``) s is that branch's score.

    Inputs: images (B, 3, H, W) with a ``frugalcv.zoo`` backbone (its ``forward_features`` map),
    or precomputed feature maps (B, C, H, W) / vectors (B, D) without one. GNet and the gate
    read the global average of a map (or the vector itself).

    Args:
        semantics: (num_classes, A) class semantics by global id, kept as a buffer so the
            deployed model scores every class; ``forward`` also takes other semantics.
        feature_dim: C or D of the features; default the backbone's ``num_features``.
        backbone: optional frugalcv.zoo model, trained jointly (end-to-end).
        branches: "both", "gnet" or "bsnet".
        attention: "spatial" (needs maps) or "channel" (vectors, or pooled maps).
        num_extractors: K.
        num_keep: extractors left after annealing (ignored without dataset balance).
        dataset_balance: learn and anneal the dataset-level weights; False keeps ``w = 1/K``.
        anneal_start, anneal_steps: the pruning schedule in optimizer steps.
        embed_dim: E of every joint embedding.
        gate_hidden: hidden width of the instance gate.
        scale: cosine-score scale.

    Shapes: forward(x, semantics: (C, A) | None) -> (B, C) scores.
    """

    def __init__(
        self,
        *,
        semantics: Tensor,
        feature_dim: int | None = None,
        backbone: nn.Module | None = None,
        branches: str = "both",
        attention: str = "spatial",
        num_extractors: int = 4,
        num_keep: int = 2,
        dataset_balance: bool = True,
        anneal_start: int = 1000,
        anneal_steps: int = 1000,
        embed_dim: int = 64,
        gate_hidden: int = 32,
        scale: float = _SCALE,
    ) -> None:
        super().__init__()
        _check_option("branches", branches, BRANCH_OPTIONS)
        _check_option("attention", attention, ATTENTION_OPTIONS)
        semantics = torch.as_tensor(semantics, dtype=torch.float32)
        if semantics.ndim != 2:
            raise ValueError(f"semantics must be (num_classes, A); got {tuple(semantics.shape)}")
        if feature_dim is None:
            if backbone is None:
                raise ValueError(
                    "pass feature_dim (C of (B, C, H, W) or D of (B, D)) or a backbone"
                )
            feature_dim = _backbone_width(backbone)
        self.register_buffer("semantics", semantics)
        self.backbone, self.branches, self.attention = backbone, branches, attention
        a = semantics.shape[1]
        self.gnet = None
        if branches in ("both", "gnet"):
            self.gnet = GNet(
                feature_dim=feature_dim, semantic_dim=a, embed_dim=embed_dim, scale=scale
            )
        self.extractors, self.balance, self.gate = None, None, None
        if branches in ("both", "bsnet"):
            self.extractors = AttentiveExtractors(
                feature_dim=feature_dim,
                semantic_dim=a,
                embed_dim=embed_dim,
                num_extractors=num_extractors,
                attention=attention,
                scale=scale,
            )
            if dataset_balance:
                self.balance = DatasetBalance(
                    num_extractors=num_extractors,
                    num_keep=num_keep,
                    anneal_start=anneal_start,
                    anneal_steps=anneal_steps,
                )
        if branches == "both":
            self.gate = InstanceBalance(feature_dim=feature_dim, hidden_dim=gate_hidden)

    def features(self, x: Tensor) -> Tensor:
        """Backbone map (B, C, h, w), or x itself without a backbone."""
        if self.backbone is not None:
            if x.ndim != 4:
                raise ValueError(
                    f"with a backbone x must be images (B, C, H, W); got {tuple(x.shape)}"
                )
            return self.backbone.forward_features(x)
        if x.ndim not in (2, 4):
            raise ValueError(
                f"x must be feature maps (B, C, H, W) or vectors (B, D); got {tuple(x.shape)}"
            )
        return x

    def extractor_weights(self) -> tuple[Tensor | None, Tensor]:
        """(active extractor indices or None for all, their dataset-level weights (K',))."""
        assert self.extractors is not None
        k = self.extractors.num_extractors
        if self.balance is None:
            return None, torch.full((k,), 1.0 / k, device=self.semantics.device)
        w = self.balance()
        heads = self.balance.active()
        if len(heads) == k:
            return None, w
        return heads, w[heads]

    def forward_parts(self, x: Tensor, semantics: Tensor | None = None) -> dict[str, Tensor]:
        """Every intermediate score: keys ``g`` (B, D) pooled features; ``s_g`` (B, C) GNet;
        ``s_k`` (B, K', C) per extractor; ``w`` (K',) dataset-level weights; ``attention``
        (B, K', P); ``s_s`` (B, C) BSNet; ``lambda`` (B,) gate; ``scores`` (B, C) final."""
        sem = self.semantics if semantics is None else semantics
        f = self.features(x)
        g = f.mean(dim=(2, 3)) if f.ndim == 4 else f  # (B, D)
        out: dict[str, Tensor] = {"f": f, "g": g}
        if self.gnet is not None:
            out["s_g"] = self.gnet(g, sem)
        if self.extractors is not None:
            heads, w = self.extractor_weights()
            s_k, attn = self.extractors(f, sem, heads)
            out.update(s_k=s_k, w=w, attention=attn, s_s=torch.einsum("bkc,k->bc", s_k, w))
        if self.gate is not None:
            out["scores"], out["lambda"] = self.gate(g, out["s_g"], out["s_s"])
        else:
            out["scores"] = out["s_g"] if self.gnet is not None else out["s_s"]
        return out

    def forward(self, x: Tensor, semantics: Tensor | None = None) -> Tensor:
        return self.forward_parts(x, semantics)["scores"]

    def kept_extractors(self) -> list[int]:
        """Indices of the extractors with non-zero dataset-level weight (all without balance)."""
        if self.extractors is None:
            return []
        if self.balance is None:
            return list(range(self.extractors.num_extractors))
        return self.balance.active().tolist()

    def pruned(self) -> BGSNet:
        """A copy without the extractors whose weight the annealing has set to 0.

        Its scores equal this model's (the removed extractors had weight exactly 0); before the
        annealing ends every extractor is still active and the copy is complete.
        """
        out = copy.deepcopy(self)
        if self.extractors is None or self.balance is None:
            return out
        heads = self.balance.active()
        if len(heads) == self.extractors.num_extractors:  # still annealing: keep the schedule
            return out
        out.extractors = self.extractors.select(heads)
        balance = DatasetBalance(
            num_extractors=len(heads),
            num_keep=len(heads),
            anneal_start=self.balance.anneal_start,
            anneal_steps=self.balance.anneal_steps,
        ).to(self.balance.alpha.device)
        with torch.no_grad():
            balance.alpha.copy_(self.balance.alpha[heads])
            balance.step.copy_(self.balance.step)
        out.balance = balance
        return out


def pruning_report(model: BGSNet, x: Tensor) -> dict[str, Any]:
    """Kept extractors and the cost of the pruned structure against the full one.

    FLOPs and parameters follow :mod:`frugalcv.core.measure` (one forward on ``x``, scoring
    every class of the model's semantics). The ``head_*`` entries leave out the backbone (equal
    in both structures), so they show the saving inside the BGSNet heads themselves.

    Returns:
        {"num_extractors", "kept", "params_full", "params_pruned", "flops_full",
        "flops_pruned", "head_params_full", "head_params_pruned", "head_flops_full",
        "head_flops_pruned"} and a "<key>_saving" (fraction of the full cost) for "params",
        "flops", "head_params" and "head_flops".
    """
    from frugalcv.core.measure import count_flops, count_params

    small = model.pruned()
    full_model = copy.deepcopy(model)
    if full_model.balance is not None:  # cost of the unpruned structure: every extractor active
        full_model.balance.marked.zero_()
    bb_params, bb_flops = 0, 0
    if model.backbone is not None:
        bb_params, bb_flops = count_params(model.backbone), count_flops(model.backbone, x)
    report: dict[str, Any] = {
        "num_extractors": 0 if model.extractors is None else model.extractors.num_extractors,
        "kept": model.kept_extractors(),
        "params_full": count_params(full_model),
        "params_pruned": count_params(small),
        "flops_full": count_flops(full_model, x),
        "flops_pruned": count_flops(small, x),
    }
    for key, base in (("params", bb_params), ("flops", bb_flops)):
        for which in ("full", "pruned"):
            report[f"head_{key}_{which}"] = report[f"{key}_{which}"] - base
    for key in ("params", "flops", "head_params", "head_flops"):
        full = report[f"{key}_full"]
        report[f"{key}_saving"] = 0.0 if full == 0 else 1.0 - report[f"{key}_pruned"] / full
    return report
