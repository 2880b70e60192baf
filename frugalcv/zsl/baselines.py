"""Zero-shot baselines on features (B, D): ESZSL, attribute regression, ALE/DeViSE bilinear.

Every model scores a sample against class semantics ``S: (num_classes, d)`` indexed by global
class id; only the rows of the classes present in the training labels are used to fit, so the
unseen rows never influence training (tested). Predict among any candidate set afterwards (unseen
for ZSL, all for GZSL) with :func:`frugalcv.zsl.metrics.predict_among`.

- :class:`ESZSL` (Romera-Paredes & Torr, "An embarrassingly simple approach to zero-shot
  learning", ICML 2015): closed form, scikit-learn style.
- :class:`AttributeRegression`: ridge regression from features to the class semantics of each
  sample, then the nearest class by cosine (the linear "attribute predictor" baseline of the
  DAP/IAP family, Lampert et al., CVPR 2009 / TPAMI 2014, made continuous).
- :class:`BilinearCompatibility` + :func:`compatibility_loss`: ``F(x, c) = theta(x)^T W s_c``
  trained with ALE's rank-weighted hinge (Akata et al., "Label-Embedding for Image
  Classification", TPAMI 2016), DeViSE's unweighted hinge (Frome et al., NeurIPS 2013) or
  softmax cross-entropy over the seen classes; :class:`BilinearTask` wraps it for the training
  loop, optionally with an image backbone from :mod:`frugalcv.zoo` (end-to-end).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from frugalcv.core.measure import to_module
from frugalcv.core.task import Task
from frugalcv.zsl.metrics import gzsl_accuracy, predict_among, zsl_accuracy

__all__ = [
    "COMPATIBILITY_LOSSES",
    "ESZSL",
    "AttributeRegression",
    "BilinearCompatibility",
    "BilinearTask",
    "compatibility_loss",
    "evaluate_zsl",
    "eszsl_solve",
]

COMPATIBILITY_LOSSES = ("ale", "devise", "softmax")


def _check_xy(x, y, semantics) -> tuple[Tensor, Tensor, Tensor]:
    x = torch.as_tensor(x, dtype=torch.float64)
    y = torch.as_tensor(y).long()
    s = torch.as_tensor(semantics, dtype=torch.float64)
    if x.ndim != 2:
        raise ValueError(
            f"x must be features (N, D); got shape {tuple(x.shape)}. Extract features from "
            "images first (e.g. a frugalcv.zoo backbone's pooled features)"
        )
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"y must be (N,) with N = {len(x)}; got shape {tuple(y.shape)}")
    if s.ndim != 2 or int(y.max()) >= len(s) or int(y.min()) < 0:
        raise ValueError(
            f"semantics must be (num_classes, d) with a row for every label; got shape "
            f"{tuple(s.shape)} for labels in [{int(y.min())}, {int(y.max())}]"
        )
    return x, y, s


def eszsl_solve(x: Tensor, y_signed: Tensor, s: Tensor, *, gamma: float, lam: float) -> Tensor:
    """ESZSL's closed form (Romera-Paredes & Torr 2015, Sec. 3.2, with beta = gamma*lam).

    Minimises ``||X V S^T - Y||^2 + gamma ||V S^T||^2 + lam ||X V||^2 + gamma lam ||V||^2``
    (samples as rows, so the paper's ``X^T V S`` is ``X V S^T`` here), whose minimiser is
    ``V = (X^T X + gamma I)^-1 X^T Y S (S^T S + lam I)^-1``.

    Args:
        x: (N, D) features.
        y_signed: (N, Z) targets over the Z training classes ({-1, +1} in the paper).
        s: (Z, A) semantics of the training classes.

    Returns:
        (D, A) V.
    """
    d, a = x.shape[1], s.shape[1]
    left = x.T @ x + gamma * torch.eye(d, dtype=x.dtype)  # (D, D)
    right = s.T @ s + lam * torch.eye(a, dtype=x.dtype)  # (A, A)
    middle = x.T @ y_signed @ s  # (D, A)
    v = torch.linalg.solve(left, middle)
    return torch.linalg.solve(right, v.T).T  # right is symmetric: v @ right^-1


class _SemanticEstimator:
    """Shared predict / decision_function over stored semantics."""

    semantics_: Tensor

    def _scores(self, x: Tensor, s: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def decision_function(self, x, *, semantics=None) -> Tensor:
        """(B, num_classes) compatibility of each sample with every class's semantics."""
        if not hasattr(self, "semantics_"):
            raise ValueError(f"{type(self).__name__} is not fitted; call fit(x, y, semantics=...)")
        x = torch.as_tensor(x, dtype=torch.float64)
        if x.ndim != 2 or x.shape[1] != self.num_features_in_:
            raise ValueError(
                f"x must be (B, {self.num_features_in_}) features; got shape {tuple(x.shape)}"
            )
        s = self.semantics_ if semantics is None else torch.as_tensor(semantics, dtype=x.dtype)
        return self._scores(x, s).float()

    def predict(self, x, *, classes=None, semantics=None) -> Tensor:
        """(B,) predicted class ids among ``classes`` (default: all classes of the semantics)."""
        scores = self.decision_function(x, semantics=semantics)
        if classes is None:
            return scores.argmax(1)
        return predict_among(scores, torch.as_tensor(classes))


class ESZSL(_SemanticEstimator):
    """Embarrassingly simple zero-shot learning (Romera-Paredes & Torr, ICML 2015).

    Score ``f(x, c) = x^T V s_c`` with V from :func:`eszsl_solve`, fitted on the classes present
    in ``y`` only.

    Args:
        gamma: weight of ``||V S^T||^2`` (paper's gamma); the paper picks gamma and lam on
            validation from 10^-3..10^3. Default 1.0 is our choice for unit-scale features.
        lam: weight of ``||X V||^2`` (paper's lambda).
        targets: "signed" ({-1, +1}, the paper) or "onehot" ({0, 1}).

    Fitted attributes: ``V_`` (D, A), ``semantics_`` (num_classes, A), ``classes_`` (Z,),
    ``num_features_in_``.

    Differences from the paper: none in the solver; defaults are ours.
    """

    def __init__(self, *, gamma: float = 1.0, lam: float = 1.0, targets: str = "signed") -> None:
        self.gamma = gamma
        self.lam = lam
        self.targets = targets

    def fit(self, x, y, *, semantics) -> ESZSL:
        if self.targets not in ("signed", "onehot"):
            raise ValueError(f"targets must be 'signed' or 'onehot'; got {self.targets!r}")
        if self.gamma < 0 or self.lam < 0:
            raise ValueError(f"gamma and lam must be >= 0; got {self.gamma}, {self.lam}")
        x, y, s = _check_xy(x, y, semantics)
        classes = torch.unique(y)
        onehot = (y[:, None] == classes[None]).double()  # (N, Z)
        targets = 2 * onehot - 1 if self.targets == "signed" else onehot
        self.V_ = eszsl_solve(x, targets, s[classes], gamma=self.gamma, lam=self.lam)
        self.semantics_, self.classes_, self.num_features_in_ = s, classes, x.shape[1]
        return self

    def _scores(self, x: Tensor, s: Tensor) -> Tensor:
        return x @ self.V_ @ s.T  # (B, C)


class AttributeRegression(_SemanticEstimator):
    """Ridge regression from features to class semantics; nearest class by cosine.

    Fits ``W = argmin ||X W + b - S_y||^2 + lam ||W||^2`` where row i of ``S_y`` is the
    semantics of sample i's class; then ``f(x, c) = cos(x W + b, s_c)``.

    Args:
        lam: ridge penalty.
        fit_intercept: fit b (features and targets centred before the solve).

    Fitted attributes: ``W_`` (D, A), ``b_`` (A,), ``semantics_``, ``num_features_in_``.
    """

    def __init__(self, *, lam: float = 1.0, fit_intercept: bool = True) -> None:
        self.lam = lam
        self.fit_intercept = fit_intercept

    def fit(self, x, y, *, semantics) -> AttributeRegression:
        if self.lam < 0:
            raise ValueError(f"lam must be >= 0; got {self.lam}")
        x, y, s = _check_xy(x, y, semantics)
        t = s[y]  # (N, A)
        mx = x.mean(0) if self.fit_intercept else x.new_zeros(x.shape[1])
        mt = t.mean(0) if self.fit_intercept else t.new_zeros(t.shape[1])
        xc, tc = x - mx, t - mt
        a = xc.T @ xc + self.lam * torch.eye(x.shape[1], dtype=x.dtype)
        self.W_ = torch.linalg.solve(a, xc.T @ tc)  # (D, A)
        self.b_ = mt - mx @ self.W_
        self.semantics_, self.num_features_in_ = s, x.shape[1]
        return self

    def predict_semantics(self, x) -> Tensor:
        """(B, A) regressed semantics."""
        return (torch.as_tensor(x, dtype=torch.float64) @ self.W_ + self.b_).float()

    def _scores(self, x: Tensor, s: Tensor) -> Tensor:
        return F.normalize(x @ self.W_ + self.b_, dim=1) @ F.normalize(s, dim=1).T


# ---------------------------------------------------------------------------------------------
# bilinear compatibility (ALE / DeViSE / softmax)


class BilinearCompatibility(nn.Module):
    """``F(x, c) = theta(x)^T W s_c`` (ALE, Akata et al. TPAMI 2016, with phi(c) = s_c).

    Args:
        feature_dim: D of theta(x).
        semantic_dim: A of s_c.
        init_std: std of W's Gaussian init (our choice; ALE starts SGD from random W).

    Shapes: forward(f: (B, D), semantics: (C, A)) -> (B, C).
    """

    def __init__(self, *, feature_dim: int, semantic_dim: int, init_std: float = 0.01) -> None:
        super().__init__()
        self.W = nn.Parameter(torch.randn(feature_dim, semantic_dim) * init_std)

    def forward(self, f: Tensor, semantics: Tensor) -> Tensor:
        if f.ndim != 2 or f.shape[1] != self.W.shape[0]:
            raise ValueError(f"f must be (B, {self.W.shape[0]}); got shape {tuple(f.shape)}")
        if semantics.ndim != 2 or semantics.shape[1] != self.W.shape[1]:
            raise ValueError(
                f"semantics must be (C, {self.W.shape[1]}); got shape {tuple(semantics.shape)}"
            )
        return f @ self.W @ semantics.T  # (B, C)


def compatibility_loss(
    scores: Tensor, target: Tensor, *, loss: str = "ale", margin: float = 1.0
) -> Tensor:
    """Ranking or softmax loss of compatibility scores over the training classes.

    - "ale" (Akata et al. 2016, WSABIE rank weighting): per sample
      ``beta(r) / r * sum_{c != y} [margin + s_c - s_y]_+`` where r is the number of classes
      with a positive hinge and ``beta(r) = sum_{k=1..r} 1/k`` (0 when r = 0).
    - "devise" (Frome et al. 2013): ``sum_{c != y} [margin + s_c - s_y]_+``.
    - "softmax": cross-entropy of softmax(scores).

    Args:
        scores: (B, Z) scores over the training classes.
        target: (B,) column index of the true class in ``scores`` (not the global id).

    Returns:
        the mean over the batch.
    """
    if loss not in COMPATIBILITY_LOSSES:
        raise ValueError(
            f"unknown loss={loss!r}; valid options are {', '.join(COMPATIBILITY_LOSSES)}"
        )
    if scores.ndim != 2 or target.shape != scores.shape[:1]:
        raise ValueError(
            f"scores must be (B, Z) and target (B,); got {tuple(scores.shape)} and "
            f"{tuple(target.shape)}"
        )
    if loss == "softmax":
        return F.cross_entropy(scores, target)
    true = scores.gather(1, target[:, None])  # (B, 1)
    hinge = (margin + scores - true).clamp_min(0.0)  # (B, Z)
    hinge = hinge.scatter(1, target[:, None], 0.0)  # the true class adds nothing
    total = hinge.sum(1)  # (B,)
    if loss == "devise":
        return total.mean()
    r = (hinge > 0).sum(1)  # (B,) violating classes, a constant w.r.t. the gradient
    harmonic = torch.cumsum(1.0 / torch.arange(1, scores.shape[1] + 1, device=scores.device), 0)
    beta = torch.where(r > 0, harmonic[(r - 1).clamp_min(0)], torch.zeros_like(total))
    return (beta / r.clamp_min(1) * total).mean()


def _pooled_features(backbone: nn.Module, x: Tensor) -> Tensor:
    """(B, C, H, W) images -> (B, D) pooled features of a frugalcv.zoo model."""
    return backbone.forward_head(backbone.forward_features(x), pre_logits=True)


class BilinearTask(Task):
    """Train a :class:`BilinearCompatibility` on the seen classes (ALE / DeViSE / softmax).

    Batches are ``(x, y)`` with global class ids y (all seen). Without a backbone x is (B, D)
    features; with one x is (B, C, H, W) images and the backbone's pooled features (trained
    jointly, end-to-end) feed the bilinear map.

    Args:
        semantics: (num_classes, A) class semantics, global ids.
        seen_classes: (S,) ids the loss ranks over.
        feature_dim: D; default the backbone's pooled width (``head_hidden_size`` or
            ``num_features``), required without a backbone.
        backbone: optional frugalcv.zoo model (``forward_features`` / ``forward_head``).
        loss: "ale", "devise" or "softmax" (:func:`compatibility_loss`).
        margin: hinge margin for "ale"/"devise".

    ``monitor`` is ``seen_acc``: top-1 among the seen classes on held-out seen-class samples
    (never the unseen test classes).
    """

    monitor = ("seen_acc", "max")

    def __init__(
        self,
        *,
        semantics: Tensor,
        seen_classes: Tensor,
        feature_dim: int | None = None,
        backbone: nn.Module | None = None,
        loss: str = "softmax",
        margin: float = 1.0,
    ) -> None:
        super().__init__()
        if loss not in COMPATIBILITY_LOSSES:
            raise ValueError(
                f"unknown loss={loss!r}; valid options are {', '.join(COMPATIBILITY_LOSSES)}"
            )
        semantics = torch.as_tensor(semantics, dtype=torch.float32)
        seen = torch.as_tensor(seen_classes).long()
        if feature_dim is None:
            if backbone is None:
                raise ValueError("pass feature_dim (the D of (B, D) features) or a backbone")
            feature_dim = int(getattr(backbone, "head_hidden_size", 0) or backbone.num_features)
        self.backbone = backbone
        self.model = BilinearCompatibility(feature_dim=feature_dim, semantic_dim=semantics.shape[1])
        self.register_buffer("semantics", semantics)
        self.register_buffer("seen_classes", seen)
        # global id -> column among the seen classes (-1 for unseen)
        local = torch.full((len(semantics),), -1, dtype=torch.long)
        local[seen] = torch.arange(len(seen))
        self.register_buffer("local_index", local)
        self.loss_name = loss
        self.margin = margin

    def features(self, x: Tensor) -> Tensor:
        return x if self.backbone is None else _pooled_features(self.backbone, x)

    def scores(self, x: Tensor) -> Tensor:
        """(B, num_classes) compatibility with every class (seen and unseen)."""
        return self.model(self.features(x), self.semantics)

    def training_step(self, batch: Any) -> dict[str, Tensor]:
        x, y = batch
        target = self.local_index[y]
        if (target < 0).any():
            raise ValueError("a training batch holds unseen-class labels; train on seen classes")
        scores = self.model(self.features(x), self.semantics[self.seen_classes])  # (B, S)
        loss = compatibility_loss(scores, target, loss=self.loss_name, margin=self.margin)
        acc = (scores.argmax(1) == target).float().mean()
        return {"loss": loss, "train_acc": acc.detach()}

    def validation_step(self, batch: Any) -> dict[str, Tensor]:
        """``seen_acc``: top-1 among the seen classes (the monitor); ``acc``: among all classes.

        Per-class ZSL/GZSL metrics: `evaluate_zsl`.
        """
        x, y = batch
        scores = self.scores(x)
        seen_pred = self.seen_classes[scores[:, self.seen_classes].argmax(1)]
        return {
            "seen_acc": (seen_pred == y).float().mean(),
            "acc": (scores.argmax(1) == y).float().mean(),
        }


@torch.no_grad()
def evaluate_zsl(
    score_fn: Callable[[Tensor], Tensor],
    data: Any,
    *,
    gamma: float = 0.0,
    batch_size: int = 512,
    module: nn.Module | None = None,
) -> dict[str, float]:
    """ZSL T1 and GZSL U/S/H of a scoring function on a :class:`frugalcv.data.zsl.ZSLData`.

    Args:
        score_fn: (B, ...) inputs -> (B, num_classes) scores (e.g. ``task.scores`` or
            ``estimator.decision_function``).
        gamma: calibrated-stacking constant for GZSL.
        module: the model behind ``score_fn`` (e.g. ``task``); each batch of the (CPU) data is
            moved to its device and floating dtype first. None: batches are passed as they are.

    Returns:
        {"zsl_top1", "gzsl_seen", "gzsl_unseen", "gzsl_h"}.
    """

    def run(x: Tensor) -> Tensor:
        out = []
        for i in range(0, len(x), batch_size):
            chunk = x[i : i + batch_size]
            chunk = chunk if module is None else to_module(chunk, module)
            out.append(torch.as_tensor(score_fn(chunk)).float().cpu())
        return torch.cat(out)

    s_u, s_s = run(data.x_test_unseen), run(data.x_test_seen)
    g = gzsl_accuracy(
        s_s, data.y_test_seen, s_u, data.y_test_unseen, seen_classes=data.seen_classes, gamma=gamma
    )
    return {
        "zsl_top1": zsl_accuracy(s_u, data.y_test_unseen, unseen_classes=data.unseen_classes),
        "gzsl_seen": g["seen"],
        "gzsl_unseen": g["unseen"],
        "gzsl_h": g["h"],
    }
