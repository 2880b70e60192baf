"""Event-detection metric: mean average precision over events (the TRECVID MED metric)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score

__all__ = ["average_precision_per_event", "mean_average_precision"]


def _targets(labels, num_bags: int, num_events: int) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.ndim == 1:
        if lab.shape != (num_bags,):
            raise ValueError(f"labels must have shape ({num_bags},), got {lab.shape}")
        if np.any(lab < -1) or np.any(lab >= num_events):
            raise ValueError(
                f"event labels must be -1 (background) or in [0, {num_events}), "
                f"got values in [{lab.min()}, {lab.max()}]"
            )
        return (lab[:, None] == np.arange(num_events)[None, :]).astype(np.int64)  # (B, E)
    if lab.shape != (num_bags, num_events):
        raise ValueError(
            f"multi-hot labels must be (B, E) = {(num_bags, num_events)}, got {lab.shape}"
        )
    if not np.all(np.isin(lab, (0, 1))):
        raise ValueError("multi-hot labels must be 0 or 1")
    return lab.astype(np.int64)


def average_precision_per_event(scores, labels) -> np.ndarray:
    """AP of every event (column), ranking all bags by that event's score.

    Args:
        scores: (B, E) detection scores (higher = more likely the event), or (B,) for one event.
        labels: (B,) event index per bag with -1 for background videos, or (B, E) multi-hot.

    Returns:
        (E,) average precision (sklearn ``average_precision_score``, the step-wise sum
        ``sum_n (R_n - R_{n-1}) P_n``) per event.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1:
        s = s[:, None]
        lab = np.asarray(labels)
        if lab.ndim == 1 and set(np.unique(lab).tolist()) <= {0, 1}:
            labels = np.where(lab == 1, 0, -1)  # a 0/1 vector for one event
    if s.ndim != 2:
        raise ValueError(f"scores must be (B, E) or (B,), got shape {s.shape}")
    y = _targets(labels, *s.shape)
    missing = np.flatnonzero(y.sum(0) == 0)
    if len(missing):
        raise ValueError(
            f"events {missing.tolist()} have no positive bag, so their AP is undefined; "
            "evaluate on a split that holds every event"
        )
    return np.array([average_precision_score(y[:, e], s[:, e]) for e in range(s.shape[1])])


def mean_average_precision(scores, labels) -> float:
    """Mean over events of :func:`average_precision_per_event`.

    Worked example (one event): scores (0.9, 0.8, 0.3, 0.1) with labels (1, 0, 1, 0) rank the
    positives at 1 and 3, so AP = (1/1 + 2/3) / 2 = 5/6.
    """
    return float(np.mean(average_precision_per_event(scores, labels)))
