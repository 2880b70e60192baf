"""MED-MIL's visual-semantic guided instance loss and the instance-event similarity (numpy).

Luo et al., "Reliable Shot Identification for Complex Event Detection via Visual-Semantic
Embedding", CVIU 2021 (arXiv 2110.08063). The abstract names a loss that combines a low-level
visual term with a high-level semantic term built from instance-event similarity; its exact form
is not public. The reconstruction here (research notes, shared/research/tracking_mil.md 2.4):

    l_ij = l_vis(Y_i * f_w(x_ij)) + mu * l_sem(sigma_ij, Y_i)
    sigma_ij = cos(E^T s_ij, e)

- ``l_vis``: logistic ``log(1 + exp(-y f))`` or hinge ``max(0, 1 - y f)`` on the instance's
  classifier score, the instance inheriting its bag (video) label y in {-1, +1};
- ``s_ij``: the segment's concept scores (C,) or an embedding; ``E`` (C, S) embeds concept scores
  into the space of the event's semantic vector ``e`` (S,), e.g. the concepts' word vectors;
- ``l_sem``: ``(1 - sigma)/2`` for y = +1 (in [0, 1]; 0 when the segment points exactly at the
  event) and ``max(0, sigma - margin)`` for y = -1.

A segment of a positive video that is semantically far from the event gets a large loss even
when the visual classifier likes it, so the self-paced step trusts it later (or never).

Differences from the paper: the form of both terms, the cosine similarity and the (1 - sigma)/2
scaling are our choices; the paper's definitions could not be read.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "VISUAL_LOSSES",
    "instance_event_similarity",
    "semantic_loss",
    "visual_loss",
    "visual_semantic_loss",
]

VISUAL_LOSSES = ("logistic", "hinge")


def _labels_pm1(labels, n: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.shape != (n,):
        raise ValueError(f"labels must have shape ({n},) to match the scores, got {y.shape}")
    if not np.all(np.isin(y, (-1, 1))):
        raise ValueError("labels must be -1 or +1 (convert 0/1 labels with 2*y - 1)")
    return y.astype(np.float64)


def instance_event_similarity(semantic, event_vector, *, embedding=None) -> np.ndarray:
    """Cosine similarity between each instance's semantic vector and the event's vector.

    Args:
        semantic: (N, C) concept scores (with ``embedding``) or (N, S) embeddings.
        event_vector: (S,) the event's semantic vector, e.g. the event-name text embedding.
        embedding: optional (C, S) matrix E; the instance vector is ``semantic @ E``.

    Returns:
        (N,) similarities in [-1, 1]; an all-zero vector has similarity 0.
    """
    s = np.asarray(semantic, dtype=np.float64)
    e = np.asarray(event_vector, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"semantic must be 2-D (N, C) or (N, S), got shape {s.shape}")
    if embedding is not None:
        emb = np.asarray(embedding, dtype=np.float64)
        if emb.ndim != 2 or emb.shape[0] != s.shape[1]:
            raise ValueError(
                f"embedding must be (C, S) with C = {s.shape[1]} concepts, got {emb.shape}"
            )
        s = s @ emb  # (N, S)
    if e.shape != (s.shape[1],):
        raise ValueError(
            f"event_vector must have shape ({s.shape[1]},) to match the instance vectors, "
            f"got {e.shape}"
        )
    norms = np.linalg.norm(s, axis=1) * np.linalg.norm(e)
    dots = s @ e
    return np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)


def visual_loss(scores, labels, *, kind: str = "logistic") -> np.ndarray:
    """Per-instance loss of classifier scores ``f`` (N,) against labels y (N,) in {-1, +1}."""
    f = np.asarray(scores, dtype=np.float64)
    if f.ndim != 1:
        raise ValueError(f"scores must be 1-D (N,), got shape {f.shape}")
    margin = _labels_pm1(labels, len(f)) * f
    if kind == "logistic":
        return np.logaddexp(0.0, -margin)
    if kind == "hinge":
        return np.maximum(0.0, 1.0 - margin)
    raise ValueError(f"unknown visual loss kind={kind!r}; valid options are {VISUAL_LOSSES}")


def semantic_loss(similarity, labels, *, margin: float = 0.0) -> np.ndarray:
    """``(1 - sigma)/2`` for y = +1, ``max(0, sigma - margin)`` for y = -1; shapes (N,)."""
    sim = np.asarray(similarity, dtype=np.float64)
    if sim.ndim != 1:
        raise ValueError(f"similarity must be 1-D (N,), got shape {sim.shape}")
    y = _labels_pm1(labels, len(sim))
    return np.where(y > 0, 0.5 * (1.0 - sim), np.maximum(0.0, sim - margin))


def visual_semantic_loss(
    scores,
    labels,
    similarity=None,
    *,
    semantic_weight: float = 1.0,
    kind: str = "logistic",
    margin: float = 0.0,
) -> np.ndarray:
    """``l = l_vis(y f) + mu * l_sem(sigma, y)`` per instance (N,); no similarity: visual only.

    Worked example: f = 0, y = +1, sigma = 0.5, mu = 1 gives log 2 + 0.25 ~ 0.9431.
    """
    loss = visual_loss(scores, labels, kind=kind)
    if similarity is None or semantic_weight == 0:
        return loss
    if semantic_weight < 0:
        raise ValueError(f"semantic_weight must be >= 0, got {semantic_weight}")
    sim = np.asarray(similarity, dtype=np.float64)
    if sim.shape != loss.shape:
        raise ValueError(f"similarity must have shape {loss.shape}, got {sim.shape}")
    return loss + semantic_weight * semantic_loss(sim, labels, margin=margin)
