"""Zero-shot metrics (Xian et al., TPAMI 2019) and calibrated stacking (Chao et al., ECCV 2016).

- ZSL top-1 (T1): per-class mean top-1 accuracy over the unseen test classes, the prediction
  restricted to the unseen classes: ``T1 = 1/|Y_u| sum_{c in Y_u} #correct_c / #samples_c``.
- GZSL: the prediction ranges over all classes; ``U`` is the per-class mean accuracy on the
  unseen test samples, ``S`` the same on the seen test samples, ``H = 2 U S / (U + S)``.
  (Same definitions as tfvaegan ``classifiers/classifier_images.py``.)
- Calibrated stacking: ``y_hat = argmax_c  f_c(x) - gamma * 1[c in Y_s]``; gamma > 0 trades seen
  accuracy for unseen accuracy. Choose gamma on validation classes (:func:`select_gamma`),
  never on the test H.
- Reference points: :func:`chance_accuracy` and :func:`oracle_accuracy` (a supervised classifier
  that sees unseen labels) bound the scale of every number.

All functions take tensors; scores are (B, num_classes) over *global* class ids.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "calibrated_stacking",
    "chance_accuracy",
    "gzsl_accuracy",
    "harmonic_mean",
    "oracle_accuracy",
    "oracle_gzsl",
    "per_class_accuracy",
    "predict_among",
    "select_gamma",
    "zsl_accuracy",
]


def _as_long(x, name: str) -> Tensor:
    t = torch.as_tensor(x)
    if t.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got shape {tuple(t.shape)}")
    return t.long()


def per_class_accuracy(pred: Tensor, target: Tensor, *, classes: Tensor | None = None) -> float:
    """Mean over classes of each class's top-1 accuracy.

    Args:
        pred: (N,) predicted class ids.
        target: (N,) true class ids.
        classes: classes to average over (default: those present in ``target``); a listed class
            without samples raises, since its accuracy is undefined.

    Returns:
        the per-class mean accuracy in [0, 1].
    """
    pred, target = _as_long(pred, "pred"), _as_long(target, "target")
    if pred.shape != target.shape or len(target) == 0:
        raise ValueError(
            f"pred and target must be non-empty and of equal length; got {tuple(pred.shape)} "
            f"and {tuple(target.shape)}"
        )
    classes = torch.unique(target) if classes is None else _as_long(classes, "classes")
    accs = []
    for c in classes.tolist():
        member = target == c
        if not member.any():
            raise ValueError(f"class {c} has no samples in target; drop it from classes")
        accs.append((pred[member] == c).double().mean())
    return float(torch.stack(accs).mean())


def predict_among(scores: Tensor, classes: Tensor) -> Tensor:
    """Class ids of the best-scoring candidate: (B, C) scores, (K,) candidates -> (B,) ids."""
    if scores.ndim != 2:
        raise ValueError(f"scores must be (B, num_classes); got shape {tuple(scores.shape)}")
    classes = _as_long(classes, "classes").to(scores.device)
    if len(classes) == 0 or int(classes.max()) >= scores.shape[1] or int(classes.min()) < 0:
        raise ValueError(
            f"candidate classes must be non-empty ids in [0, {scores.shape[1]}); got "
            f"{classes.tolist()[:10]}"
        )
    return classes[scores[:, classes].argmax(dim=1)]


def zsl_accuracy(scores: Tensor, target: Tensor, *, unseen_classes: Tensor) -> float:
    """ZSL T1: per-class mean top-1 on unseen samples, predicting among the unseen classes only.

    Args:
        scores: (N, num_classes) compatibility scores of unseen-class test samples.
        target: (N,) their true class ids (all in ``unseen_classes``).
        unseen_classes: (K,) the unseen class ids.
    """
    pred = predict_among(scores, unseen_classes)
    return per_class_accuracy(pred.cpu(), torch.as_tensor(target).cpu(), classes=None)


def calibrated_stacking(scores: Tensor, *, seen_classes: Tensor, gamma: float) -> Tensor:
    """Chao et al. (2016), Eq. 5: subtract ``gamma`` from the scores of the seen classes.

    Args:
        scores: (B, num_classes).
        seen_classes: (S,) seen class ids.
        gamma: the calibration constant (0 leaves the scores unchanged).

    Returns:
        (B, num_classes) calibrated scores (a new tensor).
    """
    out = scores.clone()
    out[:, _as_long(seen_classes, "seen_classes").to(scores.device)] -= gamma
    return out


def harmonic_mean(seen: float, unseen: float) -> float:
    """H = 2 S U / (S + U); 0 when both are 0."""
    return 0.0 if seen + unseen == 0 else 2.0 * seen * unseen / (seen + unseen)


def gzsl_accuracy(
    scores_seen: Tensor,
    target_seen: Tensor,
    scores_unseen: Tensor,
    target_unseen: Tensor,
    *,
    seen_classes: Tensor,
    gamma: float = 0.0,
) -> dict[str, float]:
    """Generalised ZSL: U, S (per-class means, predicting among all classes) and their H.

    Args:
        scores_seen: (N_s, num_classes) scores of the seen-class test samples.
        target_seen: (N_s,) their labels.
        scores_unseen: (N_u, num_classes) scores of the unseen-class test samples.
        target_unseen: (N_u,) their labels.
        seen_classes: (S,) seen class ids (for calibrated stacking).
        gamma: calibrated-stacking constant subtracted from seen-class scores.

    Returns:
        {"seen": S, "unseen": U, "h": H}.
    """
    if scores_seen.shape[1] != scores_unseen.shape[1]:
        raise ValueError("scores_seen and scores_unseen must score the same classes")
    accs = {}
    for key, scores, target in (
        ("seen", scores_seen, target_seen),
        ("unseen", scores_unseen, target_unseen),
    ):
        cal = calibrated_stacking(scores, seen_classes=seen_classes, gamma=gamma)
        accs[key] = per_class_accuracy(cal.argmax(1).cpu(), torch.as_tensor(target).cpu())
    accs["h"] = harmonic_mean(accs["seen"], accs["unseen"])
    return accs


def select_gamma(
    scores_seen: Tensor,
    target_seen: Tensor,
    scores_unseen: Tensor,
    target_unseen: Tensor,
    *,
    seen_classes: Tensor,
    gammas: Sequence[float] | Tensor | None = None,
) -> tuple[float, dict[str, float]]:
    """The calibrated-stacking gamma with the best H on *validation* scores.

    Pass validation classes here (e.g. xlsa17 ``val_loc`` classes held out as pseudo-unseen),
    then apply the chosen gamma to the test scores.

    Args:
        gammas: candidates; default 41 values spanning +-the largest score gap, so that both
            "always seen" and "always unseen" ends are reached.

    Returns:
        (gamma, its {"seen", "unseen", "h"}); ties go to the smallest |gamma|.
    """
    if gammas is None:
        both = torch.cat([scores_seen, scores_unseen])
        span = float((both.max(1).values - both.min(1).values).max())
        gammas = torch.linspace(-span, span, 41)
    best: tuple[float, dict[str, float]] | None = None
    for g in sorted((float(g) for g in gammas), key=abs):
        r = gzsl_accuracy(
            scores_seen,
            target_seen,
            scores_unseen,
            target_unseen,
            seen_classes=seen_classes,
            gamma=g,
        )
        if best is None or r["h"] > best[1]["h"]:
            best = (g, r)
    assert best is not None
    return best


def chance_accuracy(num_classes: int) -> float:
    """Per-class mean accuracy of uniform random guessing among ``num_classes`` classes.

    ZSL chance is ``chance_accuracy(num_unseen)``; in GZSL a uniform guess over all C classes has
    U = S = H = ``chance_accuracy(C)``.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1; got {num_classes}")
    return 1.0 / num_classes


def oracle_accuracy(
    x: Tensor,
    y: Tensor,
    *,
    classes: Tensor | None = None,
    fit_fraction: float = 0.5,
    lam: float = 1.0,
    seed: int = 0,
) -> float:
    """Upper reference: a supervised ridge classifier that is *given* labels of these classes.

    Splits ``(x, y)`` per class into a fitting part (``fit_fraction``) and an evaluation part,
    fits one-vs-rest ridge regression on one-hot targets (features standardised on the fitting
    part) and returns the per-class mean accuracy on the evaluation part, predicting among
    ``classes``. Applied to the unseen test features it says what the features allow when the
    unseen labels are known, the ceiling against which zero-shot T1 reads.

    Args:
        x: (N, D) features (extract features from images first).
        y: (N,) labels.
        classes: candidates (default: the classes in y).
        lam: ridge penalty.
    """
    x = torch.as_tensor(x, dtype=torch.float64)
    y = _as_long(y, "y")
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"x must be (N, D) features for y of length N; got {tuple(x.shape)}")
    classes = torch.unique(y) if classes is None else _as_long(classes, "classes")
    gen = torch.Generator().manual_seed(seed)
    fit = torch.zeros(len(y), dtype=torch.bool)
    for c in classes.tolist():
        idx = (y == c).nonzero().squeeze(1)
        if len(idx) < 2:
            raise ValueError(f"class {c} needs >= 2 samples to split for the oracle")
        k = min(len(idx) - 1, max(1, round(fit_fraction * len(idx))))
        fit[idx[torch.randperm(len(idx), generator=gen)[:k]]] = True
    mu, sd = x[fit].mean(0), x[fit].std(0).clamp_min(1e-8)
    z = (x - mu) / sd
    targets = (y[fit, None] == classes[None]).double()  # (N_fit, K)
    a = z[fit].T @ z[fit] + lam * torch.eye(z.shape[1], dtype=torch.float64)
    w = torch.linalg.solve(a, z[fit].T @ targets)  # (D, K)
    # z is centred on the fitting part, so the least-squares intercept is the target mean
    pred = classes[(z[~fit] @ w + targets.mean(0)).argmax(1)]
    return per_class_accuracy(pred, y[~fit], classes=classes)


def oracle_gzsl(
    x_seen: Tensor,
    y_seen: Tensor,
    x_unseen: Tensor,
    y_unseen: Tensor,
    *,
    fit_fraction: float = 0.5,
    lam: float = 1.0,
    seed: int = 0,
) -> dict[str, float]:
    """The oracle of every zero-shot number: ridge classifiers *given* the test labels.

    ZSL top-1: :func:`oracle_accuracy` on the unseen test features among the unseen classes.
    GZSL: one ridge classifier over all classes fitted on ``fit_fraction`` of each class's test
    samples (seen and unseen), scored on the rest; U and S are its per-class means on the
    unseen and seen parts, H their harmonic mean.

    Args:
        x_seen, y_seen: (N_s, D) seen-class test features and labels.
        x_unseen, y_unseen: (N_u, D) unseen-class test features and labels.

    Returns:
        {"zsl_top1", "gzsl_unseen", "gzsl_seen", "gzsl_h"}.
    """
    x_seen, x_unseen = torch.as_tensor(x_seen), torch.as_tensor(x_unseen)
    y_seen, y_unseen = _as_long(y_seen, "y_seen"), _as_long(y_unseen, "y_unseen")
    x = torch.cat([x_seen, x_unseen]).double()
    y = torch.cat([y_seen, y_unseen])
    classes = torch.unique(y)
    gen = torch.Generator().manual_seed(seed)
    fit = torch.zeros(len(y), dtype=torch.bool)
    for c in classes.tolist():
        idx = (y == c).nonzero().squeeze(1)
        if len(idx) < 2:
            raise ValueError(f"class {c} needs >= 2 test samples to split for the oracle")
        k = min(len(idx) - 1, max(1, round(fit_fraction * len(idx))))
        fit[idx[torch.randperm(len(idx), generator=gen)[:k]]] = True
    mu, sd = x[fit].mean(0), x[fit].std(0).clamp_min(1e-8)
    z = (x - mu) / sd
    targets = (y[fit, None] == classes[None]).double()  # (N_fit, K)
    a = z[fit].T @ z[fit] + lam * torch.eye(z.shape[1], dtype=torch.float64)
    w = torch.linalg.solve(a, z[fit].T @ targets)  # (D, K)
    pred = classes[(z @ w + targets.mean(0)).argmax(1)]
    is_seen = torch.arange(len(y)) < len(y_seen)
    seen = per_class_accuracy(pred[~fit & is_seen], y[~fit & is_seen])
    unseen = per_class_accuracy(pred[~fit & ~is_seen], y[~fit & ~is_seen])
    top1 = oracle_accuracy(x_unseen, y_unseen, fit_fraction=fit_fraction, lam=lam, seed=seed)
    return {
        "zsl_top1": top1,
        "gzsl_unseen": unseen,
        "gzsl_seen": seen,
        "gzsl_h": harmonic_mean(seen, unseen),
    }
