"""ContrastZSD: semantics-guided contrastive learning for zero-shot object detection.

Caixia Yan, Xiaojun Chang, Minnan Luo, Huan Liu, Xiaoqin Zhang, Qinghua Zheng, "Semantics-Guided
Contrastive Network for Zero-Shot Object Detection", IEEE TPAMI 2024 (online 2022),
arXiv 2109.06062. No official code exists; the paper's method sections could not be read here, so
the equations below are a reconstruction from the abstract and an unofficial partial
re-implementation (DINHQuangDung1999/FasterRCNN-PyTorch, ``model/faster_rcnn_zsd_contrastZSD.py``),
written down in docs/methods/contrastzsd.md. Equation numbers of the paper are not cited for
that reason.

A Faster R-CNN whose classifier scores regions against class semantic vectors
(:class:`frugalcv.zsd.SemanticFasterRCNN`) is trained with its detection losses plus two
contrastive subnets driven by the ground-truth labels and a pre-defined class similarity
distribution computed from the semantic vectors of *all* classes, seen and unseen:

- region-category (:func:`region_category_loss`): each foreground region embedding is contrasted
  against every class embedding; the target is the soft distribution
  ``q(c | y) = softmax_c(cos(w_y, w_c) / tau_sim)`` (:func:`class_similarity_targets`), so regions
  of seen class y also pull toward the unseen classes whose semantics resemble y;
- region-region (:func:`region_region_loss`): supervised contrastive loss over the foreground
  regions of a batch, negatives weighted by ``1 - max(cos(w_a, w_b), 0)``
  (:func:`semantic_negative_weights`) so semantically close classes are pushed apart less.

``L = L_rpn + L_cls + L_box + rc_weight * L_rc + rr_weight * L_rr`` (:class:`ContrastZSDTask`);
a weight of 0 turns its subnet off, so the plain semantic detector, +RC, +RR and the full model
come from one class.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from frugalcv.core.task import Task
from frugalcv.zsd.detector import SemanticFasterRCNN
from frugalcv.zsd.metrics import MeanAP50

__all__ = [
    "ContrastZSDTask",
    "class_similarity_targets",
    "region_category_loss",
    "region_region_loss",
    "semantic_negative_weights",
]

# Temperature of the unofficial re-implementation's contrastive loss (config
# dior_zsd_resnet_contrastzsd.yaml, tau: 0.1); used for every temperature here.
_TAU = 0.1
# Loss weights of the same config: lambda (soft unseen-class term) 0.2, beta (region-region) 0.4.
_RC_WEIGHT = 0.2
_RR_WEIGHT = 0.4


def _check_labels(labels: Tensor, n: int, num_classes: int | None) -> None:
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},); got {tuple(labels.shape)}")
    if num_classes is not None and n and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must index the {num_classes} classes (0..{num_classes - 1}); got values in "
            f"[{int(labels.min())}, {int(labels.max())}]"
        )


def class_similarity_targets(semantics: Tensor, *, temperature: float = _TAU) -> Tensor:
    """The pre-defined class similarity distribution: ``Q[y, c] = softmax_c(cos(w_y, w_c) / tau)``.

    Worked example: two orthogonal classes and tau = 1 give rows
    ``(e / (e + 1), 1 / (e + 1)) ~ (0.731, 0.269)``.

    Args:
        semantics: (C, d) class semantic vectors (all classes, seen and unseen).
        temperature: tau; smaller puts more mass on the class itself (its cosine is 1, the
            largest). 0.1 (our default, the unofficial code's contrastive temperature).

    Returns:
        (C, C), rows sum to 1, the diagonal is each row's maximum.
    """
    if semantics.ndim != 2:
        raise ValueError(f"semantics must be (num_classes, d); got shape {tuple(semantics.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    w = F.normalize(semantics.float(), dim=1)
    return torch.softmax(w @ w.T / temperature, dim=1)  # (C, C)


def region_category_loss(
    region_emb: Tensor,
    class_emb: Tensor,
    labels: Tensor,
    *,
    soft_targets: Tensor | None = None,
    temperature: float = _TAU,
) -> Tensor:
    """Region-category contrast: each region against every class embedding, soft targets.

    ``p_i = softmax_c(cos(v_i, e_c) / tau)``; ``L = -mean_i sum_c t_i(c) log p_i(c)`` with
    ``t_i = soft_targets[y_i]`` (one-hot without soft targets: the GT class is the only positive).
    Since ``L_i = H(t_i) + KL(t_i || p_i)``, the minimum ``mean_i H(t_i)`` is reached exactly when
    ``p_i = t_i``. With ``soft_targets = class_similarity_targets(W, temperature=tau)`` and the
    class embeddings equal to W, that happens when every region embedding equals its class's
    semantic vector.

    Args:
        region_emb: (N, d) foreground region embeddings (normalised here).
        class_emb: (C, d) class embeddings, all classes (normalised here).
        labels: (N,) class index of each region in 0..C-1.
        soft_targets: (C, C) rows summing to 1 (:func:`class_similarity_targets`), or None.
        temperature: tau of the cosine logits.

    Returns:
        Scalar mean over regions; 0 (with a graph) when N = 0.

    Differences from the paper: a reconstruction (see the module docstring). The unofficial code
    splits the term into a seen-class CE and a BCE over unseen classes with similarity targets;
    here one soft cross-entropy covers all classes, and the seen-vs-background CE is the
    detector's own classification loss.
    """
    if region_emb.ndim != 2 or class_emb.ndim != 2 or region_emb.shape[1] != class_emb.shape[1]:
        raise ValueError(
            f"region_emb (N, d) and class_emb (C, d) need the same d; got {tuple(region_emb.shape)}"
            f" and {tuple(class_emb.shape)}"
        )
    num_classes = class_emb.shape[0]
    _check_labels(labels, region_emb.shape[0], num_classes)
    if soft_targets is not None and soft_targets.shape != (num_classes, num_classes):
        raise ValueError(
            f"soft_targets must be ({num_classes}, {num_classes}); got {tuple(soft_targets.shape)}"
        )
    if region_emb.shape[0] == 0:
        return region_emb.sum() * 0.0
    logits = F.normalize(region_emb, dim=1) @ F.normalize(class_emb, dim=1).T / temperature
    if soft_targets is None:
        return F.cross_entropy(logits, labels)
    target = soft_targets.to(logits)[labels]  # (N, C)
    return -(target * F.log_softmax(logits, dim=1)).sum(1).mean()


def semantic_negative_weights(semantics: Tensor, *, strength: float = 1.0) -> Tensor:
    """Weights of negatives in :func:`region_region_loss` from class semantics.

    ``M[a, b] = 1 - strength * max(cos(w_a, w_b), 0)`` for a != b and 1 on the diagonal: a
    negative of a semantically close class is pushed away less (strength 0: plain SupCon).

    Args:
        semantics: (C, d) class semantic vectors.
        strength: in [0, 1].

    Returns:
        (C, C) in [1 - strength, 1].
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    w = F.normalize(semantics.float(), dim=1)
    m = 1.0 - strength * (w @ w.T).clamp(min=0.0)
    return m.fill_diagonal_(1.0)  # (C, C)


def region_region_loss(
    z: Tensor,
    labels: Tensor,
    *,
    negative_weights: Tensor | None = None,
    temperature: float = _TAU,
) -> Tensor:
    """Region-region contrast: supervised contrastive loss with similarity-weighted negatives.

    With unit ``z`` and ``s_ij = z_i . z_j / tau``, for every anchor i that has a positive
    (another region of its class):

        L_i = -1/|P(i)| sum_{p in P(i)} log( exp(s_ip) / sum_{a != i} m(y_i, y_a) exp(s_ia) ),

    ``P(i) = {p != i : y_p = y_i}``, ``m = negative_weights`` (1 for same-class pairs; all ones
    without weights, which is SupCon, Khosla et al. 2020, "L_out"). L is the mean over anchors.

    Args:
        z: (N, d) region projections (normalised here).
        labels: (N,) class ids; regions that share an id are positives.
        negative_weights: (C, C) with C > max label (:func:`semantic_negative_weights`) or None.
        temperature: tau.

    Returns:
        Scalar; 0 (with a graph) when no anchor has a positive.

    Differences from the paper: a reconstruction. The unofficial code has no weights, does not
    L2-normalise z and keeps the anchor in its own denominator; here z is normalised, the anchor
    excluded (SupCon) and negatives weighted by class similarity.
    """
    if z.ndim != 2:
        raise ValueError(f"z must be (N, d); got shape {tuple(z.shape)}")
    n = z.shape[0]
    _check_labels(labels, n, None if negative_weights is None else negative_weights.shape[0])
    same = labels[:, None] == labels[None, :]  # (N, N)
    not_self = ~torch.eye(n, dtype=torch.bool, device=z.device)
    pos = same & not_self
    anchors = pos.any(1)
    if not anchors.any():
        return z.sum() * 0.0
    z = F.normalize(z, dim=1)
    s = z @ z.T / temperature  # (N, N)
    if negative_weights is None:
        w = torch.ones_like(s)
    else:
        w = negative_weights.to(s)[labels[:, None], labels[None, :]]  # (N, N)
        w = torch.where(same, torch.ones_like(w), w)
    # log sum_{a != i} w_ia exp(s_ia), stable: log w + s, masked to -inf on the diagonal
    log_den = torch.logsumexp(
        torch.where(not_self, s + w.clamp_min(1e-12).log(), torch.full_like(s, -torch.inf)), dim=1
    )  # (N,)
    log_prob = s - log_den[:, None]  # (N, N)
    per_anchor = -(log_prob * pos).sum(1) / pos.sum(1).clamp_min(1)
    return per_anchor[anchors].mean()


class ContrastZSDTask(Task):
    """Trains a :class:`SemanticFasterRCNN` with the two semantics-guided contrastive subnets.

    Batch: ``(images, targets)`` from ``DatasetLoader(..., collate_fn=list_collate)``: B image
    tensors (3, H, W) in [0, 1] and B dicts with ``boxes`` (n, 4) xyxy pixels and ``labels``
    (n,) *global* class ids (rows of ``semantics``). Training targets must hold seen classes only
    (the ZSD rule removes training images with unseen objects); an unseen label is an error.

    Args:
        model: the detector; its classifier is set to score the seen classes while training.
        semantics: (C, d) semantic vectors of all classes, seen and unseen.
        seen_classes, unseen_classes: disjoint global class ids.
        rc_weight: weight of :func:`region_category_loss` (0 turns the subnet off; 0.2, the
            unofficial code's lambda).
        rr_weight: weight of :func:`region_region_loss` (0 turns it off; 0.4, its beta).
        rc_temperature: tau of the region-category logits (0.1).
        similarity_temperature: tau of :func:`class_similarity_targets` (0.1; equal to
            rc_temperature so a region embedding equal to its class vector is optimal).
        rr_temperature: tau of the region-region loss (0.1).
        rr_dim: output size of the region-region projection head (MLP on the box features;
            128 in SupCon, 512 in the unofficial code; 64 here for cost).
        negative_strength: :func:`semantic_negative_weights` strength (1.0; 0 = plain SupCon).

    ``monitor = ("map_seen", "max")``: mAP@0.5 on a validation set of seen classes, predicting
    among the seen classes (never unseen-class test data).
    """

    monitor = ("map_seen", "max")

    def __init__(
        self,
        *,
        model: SemanticFasterRCNN,
        semantics: Tensor,
        seen_classes: Tensor,
        unseen_classes: Tensor,
        rc_weight: float = _RC_WEIGHT,
        rr_weight: float = _RR_WEIGHT,
        rc_temperature: float = _TAU,
        similarity_temperature: float = _TAU,
        rr_temperature: float = _TAU,
        rr_dim: int = 64,
        negative_strength: float = 1.0,
    ) -> None:
        super().__init__()
        semantics = torch.as_tensor(semantics, dtype=torch.float32)
        seen = torch.as_tensor(seen_classes, dtype=torch.long)
        unseen = torch.as_tensor(unseen_classes, dtype=torch.long)
        num_classes = semantics.shape[0]
        if semantics.ndim != 2:
            raise ValueError(f"semantics must be (num_classes, d); got {tuple(semantics.shape)}")
        ids = torch.cat([seen, unseen])
        if len(set(ids.tolist())) != len(ids) or ids.min() < 0 or ids.max() >= num_classes:
            raise ValueError(
                f"seen_classes and unseen_classes must be disjoint ids in 0..{num_classes - 1}"
            )
        if rc_weight < 0 or rr_weight < 0:
            raise ValueError(f"loss weights must be >= 0; got rc={rc_weight}, rr={rr_weight}")
        self.model = model
        self.rc_weight = rc_weight
        self.rr_weight = rr_weight
        self.rc_temperature = rc_temperature
        self.rr_temperature = rr_temperature
        self.register_buffer("semantics", semantics)
        self.register_buffer("seen_classes", seen)
        self.register_buffer("unseen_classes", unseen)
        self.register_buffer(
            "soft_targets", class_similarity_targets(semantics, temperature=similarity_temperature)
        )
        self.register_buffer(
            "negative_weights", semantic_negative_weights(semantics, strength=negative_strength)
        )
        # global id -> detector label 1..K_seen (0: not a seen class)
        to_local = torch.zeros(num_classes, dtype=torch.long)
        to_local[seen] = torch.arange(1, len(seen) + 1)
        self.register_buffer("to_local", to_local)
        rep = model.detector.roi_heads.box_head.fc7.out_features
        # Training-only subnet (not part of the deployed detector).
        self.rr_head = nn.Sequential(
            nn.Linear(rep, rep), nn.ReLU(inplace=True), nn.Linear(rep, rr_dim)
        )
        model.set_class_semantics(semantics[seen])

    def _local_targets(self, targets: list[dict]) -> list[dict]:
        out = []
        for t in targets:
            local = self.to_local[t["labels"]]
            if (local == 0).any():
                bad = sorted(set(t["labels"][local == 0].tolist()))
                raise ValueError(
                    f"training target holds classes {bad} that are not seen classes; ZSD training "
                    f"data must not contain unseen objects (use the data set's train split)"
                )
            out.append({"boxes": t["boxes"].float(), "labels": local})
        return out

    def training_step(self, batch: Any) -> dict[str, Tensor]:
        images, targets = batch
        self.model.set_class_semantics(self.semantics[self.seen_classes])
        out = self.model.forward_train(list(images), self._local_targets(targets))
        losses = {k: v for k, v in out.items() if k.startswith("loss_")}
        loss = sum(losses.values())
        fg = out["labels"] > 0
        y = self.seen_classes[out["labels"][fg] - 1]  # global ids of foreground RoIs
        if self.rc_weight > 0:
            class_emb = self.model.predictor.embed_classes(self.semantics)  # all classes
            losses["loss_rc"] = region_category_loss(
                out["region_embeddings"][fg],
                class_emb,
                y,
                soft_targets=self.soft_targets,
                temperature=self.rc_temperature,
            )
            loss = loss + self.rc_weight * losses["loss_rc"]
        if self.rr_weight > 0:
            losses["loss_rr"] = region_region_loss(
                self.rr_head(out["box_features"][fg]),
                y,
                negative_weights=self.negative_weights,
                temperature=self.rr_temperature,
            )
            loss = loss + self.rr_weight * losses["loss_rr"]
        return {"loss": loss, **losses}

    @torch.no_grad()
    def predict(
        self, images: list[Tensor], *, classes: Tensor, bias: Tensor | None = None
    ) -> list[dict[str, Tensor]]:
        """Detections among ``classes`` (global ids), with global labels.

        ZSD: ``classes=unseen_classes``; GZSD: all classes, optionally with ``bias`` (len(classes),)
        added to their logits (a negative bias on seen classes calibrates GZSD). The model's
        training mode and classes are restored afterwards.
        """
        classes = torch.as_tensor(classes, dtype=torch.long, device=self.semantics.device)
        was_training = self.model.training
        self.model.eval()
        self.model.set_class_semantics(self.semantics[classes], bias=bias)
        try:
            dets = self.model(list(images))
        finally:
            self.model.set_class_semantics(self.semantics[self.seen_classes])
            self.model.train(was_training)
        return [{**d, "labels": classes[d["labels"] - 1]} for d in dets]

    def eval_metrics(self) -> dict[str, Any]:
        return {"map_seen": MeanAP50()}

    def update_eval_metrics(self, metrics: dict[str, Any], batch: Any) -> None:
        images, targets = batch
        preds = self.predict(images, classes=self.seen_classes)
        seen = torch.zeros(len(self.semantics), dtype=torch.bool, device=self.semantics.device)
        seen[self.seen_classes] = True
        kept = [
            {"boxes": t["boxes"][seen[t["labels"]]], "labels": t["labels"][seen[t["labels"]]]}
            for t in targets
        ]
        metrics["map_seen"].update(preds, kept)
