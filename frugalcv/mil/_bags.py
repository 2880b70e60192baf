"""Input checks and bag reductions shared by the MIL estimators (numpy)."""

from __future__ import annotations

import numpy as np

BAG_SCORES = ("max", "mean")


def check_bags(bags) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate bags into instances.

    Args:
        bags: a sequence of (n_i, D) arrays (n_i >= 1, one D for all), or an object with
            ``features`` (N, D) and ``offsets`` (B + 1,) such as ``frugalcv.data.mil.Bags``.

    Returns:
        X: (N, D) float64 instances, bag after bag; offsets: (B + 1,) int64, bag b is
        ``X[offsets[b]:offsets[b + 1]]``.
    """
    if hasattr(bags, "features") and hasattr(bags, "offsets"):
        x = np.asarray(bags.features, dtype=np.float64)
        offsets = np.asarray(bags.offsets, dtype=np.int64)
        if x.ndim != 2:
            raise ValueError(
                f"these estimators need vector instances (N, D); got features of shape {x.shape}"
                " (flatten images first, e.g. make_mnist_bags(features='pixels'))"
            )
        return x, offsets
    if isinstance(bags, np.ndarray) and bags.dtype != object:
        raise ValueError(
            "bags must be a list of (n_i, D) arrays, one per bag, not a single array; "
            "wrap a single bag as [bag]"
        )
    arrays = [np.asarray(b, dtype=np.float64) for b in bags]
    if not arrays:
        raise ValueError("bags is empty; pass at least one bag")
    for i, b in enumerate(arrays):
        if b.ndim != 2 or b.shape[0] == 0:
            raise ValueError(f"bag {i} must be a non-empty 2-D array (n_i, D), got shape {b.shape}")
    dims = {b.shape[1] for b in arrays}
    if len(dims) != 1:
        raise ValueError(f"all bags must have the same feature size D, got sizes {sorted(dims)}")
    sizes = np.array([len(b) for b in arrays], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    return np.concatenate(arrays), offsets


def check_labels(y, num_bags: int) -> tuple[np.ndarray, np.ndarray]:
    """Binary bag labels -> (y01 (B,) int64 in {0, 1}, classes (2,) as given, negative first).

    Accepts {0, 1}, {-1, 1} or booleans; both classes must be present.
    """
    y = np.asarray(y)
    if y.shape != (num_bags,):
        raise ValueError(f"y must have one label per bag, shape ({num_bags},), got {y.shape}")
    classes = np.unique(y)
    if len(classes) != 2:
        raise ValueError(
            f"y must hold two classes (negative and positive bags), got {classes.tolist()}"
        )
    if not (set(classes.tolist()) <= {0, 1} or set(classes.tolist()) <= {-1, 1}):
        raise ValueError(f"y must be 0/1, -1/+1 or bool, got classes {classes.tolist()}")
    return (y == classes[1]).astype(np.int64), classes


def check_instance_values(values, offsets: np.ndarray, name: str) -> np.ndarray:
    """A per-instance vector given flat (N,) or as a list of (n_i,) arrays -> (N,) float64."""
    n = int(offsets[-1])
    if isinstance(values, np.ndarray) and values.dtype != object and values.ndim == 1:
        flat = values.astype(np.float64)
    else:
        parts = [np.asarray(v, dtype=np.float64).reshape(-1) for v in values]
        if len(parts) != len(offsets) - 1:
            raise ValueError(f"{name} must have one array per bag ({len(offsets) - 1})")
        flat = np.concatenate(parts) if parts else np.zeros(0)
    if flat.shape != (n,):
        raise ValueError(f"{name} must have one value per instance ({n}), got {flat.shape}")
    return flat


def bag_index(offsets: np.ndarray) -> np.ndarray:
    """(N,) bag id of every instance."""
    return np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))


def reduce_bags(scores: np.ndarray, offsets: np.ndarray, how: str) -> np.ndarray:
    """Bag scores (B,) from instance scores (N,): ``max`` or ``mean`` over each bag."""
    starts = offsets[:-1]
    if how == "max":
        return np.maximum.reduceat(scores, starts)
    if how == "mean":
        return np.add.reduceat(scores, starts) / np.diff(offsets)
    raise ValueError(f"unknown bag_score={how!r}; valid options are {BAG_SCORES}")
