"""The `Bags` container (instances of all bags stored flat), its split and torch batches."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["BagDataset", "Bags", "collate_bags", "split_bags"]


@dataclass
class Bags:
    """Bags of instances stored flat.

    Attributes:
        features: (N, *F) instances of every bag, bag after bag (vectors (N, D) or images).
        offsets: (B + 1,) int64; bag b is ``features[offsets[b]:offsets[b + 1]]``, never empty.
        labels: (B,) int64 event index per bag, -1 for background / negative bags.
        event_names: (E,) names of the events.
        instance_labels: (N,) int64 1 for a key (witness) instance, 0 otherwise; None if unknown.
        bag_ids: (B,) str ids of the bags (video ids); None gives "0", "1", ...
        concept_scores: (N, C) per-instance concept detector scores (or (N, S) embeddings).
        concept_vectors: (C, S) semantic (word) vectors of the concepts, to embed concept_scores.
        event_vectors: (E, S) semantic vectors of the events (e.g. event-name text embeddings).
        name: data set name; source: provenance.
    """

    features: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    event_names: tuple[str, ...]
    instance_labels: np.ndarray | None = None
    bag_ids: np.ndarray | None = None
    concept_scores: np.ndarray | None = None
    concept_vectors: np.ndarray | None = None
    event_vectors: np.ndarray | None = None
    name: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        self.features = np.asarray(self.features)
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.event_names = tuple(str(e) for e in self.event_names)
        n, b, e = len(self.features), len(self.labels), len(self.event_names)
        where = f"Bags {self.name!r}" if self.name else "Bags"
        if self.features.ndim < 2:
            raise ValueError(
                f"{where}: features must be (N, D) or (N, *F), got {self.features.shape}"
            )
        if self.offsets.shape != (b + 1,):
            raise ValueError(
                f"{where}: offsets must be (B + 1,) = ({b + 1},), got {self.offsets.shape}"
            )
        if self.offsets[0] != 0 or self.offsets[-1] != n or np.any(np.diff(self.offsets) < 1):
            raise ValueError(
                f"{where}: offsets must start at 0, end at N = {n} and increase strictly "
                "(every bag needs at least one instance)"
            )
        if e == 0:
            raise ValueError(f"{where}: event_names is empty; name at least one event")
        if b and (self.labels.min() < -1 or self.labels.max() >= e):
            raise ValueError(f"{where}: labels must be -1 (background) or in [0, {e})")
        if self.instance_labels is not None:
            self.instance_labels = np.asarray(self.instance_labels, dtype=np.int64)
            if self.instance_labels.shape != (n,):
                raise ValueError(f"{where}: instance_labels must be ({n},)")
        if self.bag_ids is None:
            self.bag_ids = np.array([str(i) for i in range(b)])
        self.bag_ids = np.asarray(self.bag_ids).astype(str)
        if self.bag_ids.shape != (b,):
            raise ValueError(f"{where}: bag_ids must be ({b},), got {self.bag_ids.shape}")
        if self.concept_scores is not None:
            self.concept_scores = np.asarray(self.concept_scores, dtype=np.float32)
            if self.concept_scores.ndim != 2 or len(self.concept_scores) != n:
                raise ValueError(f"{where}: concept_scores must be ({n}, C)")
        if self.concept_vectors is not None:
            self.concept_vectors = np.asarray(self.concept_vectors, dtype=np.float32)
            c = None if self.concept_scores is None else self.concept_scores.shape[1]
            if self.concept_vectors.ndim != 2 or (c is not None and len(self.concept_vectors) != c):
                raise ValueError(f"{where}: concept_vectors must be (C, S) with C = {c}")
        if self.event_vectors is not None:
            self.event_vectors = np.asarray(self.event_vectors, dtype=np.float32)
            if self.event_vectors.ndim != 2 or len(self.event_vectors) != e:
                raise ValueError(f"{where}: event_vectors must be ({e}, S)")

    # ------------------------------------------------------------------ views
    @property
    def num_bags(self) -> int:
        return len(self.labels)

    @property
    def num_instances(self) -> int:
        return len(self.features)

    @property
    def num_events(self) -> int:
        return len(self.event_names)

    def __len__(self) -> int:
        return self.num_bags

    @property
    def bag_sizes(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def bag_index(self) -> np.ndarray:
        """(N,) bag of every instance."""
        return np.repeat(np.arange(self.num_bags), self.bag_sizes)

    def bag(self, i: int) -> np.ndarray:
        """Instances of bag i, (n_i, *F)."""
        return self.features[self.offsets[i] : self.offsets[i + 1]]

    def instances(self) -> list[np.ndarray]:
        """Every bag's instances: a list of (n_i, *F) arrays (the estimators' ``bags``)."""
        return [self.bag(i) for i in range(self.num_bags)]

    def _event_index(self, event: int | str) -> int:
        if isinstance(event, str):
            if event not in self.event_names:
                raise ValueError(f"unknown event {event!r}; events are {list(self.event_names)}")
            return self.event_names.index(event)
        if not 0 <= event < self.num_events:
            raise ValueError(f"event index {event} out of range [0, {self.num_events})")
        return int(event)

    def targets(self, event: int | str = 0) -> np.ndarray:
        """(B,) int64 1 for bags of ``event``, 0 for all others (one-vs-rest)."""
        return (self.labels == self._event_index(event)).astype(np.int64)

    def similarity(self, event: int | str = 0) -> np.ndarray:
        """(N,) cosine similarity of every instance's semantic vector with the event's vector.

        The instance vector is ``concept_scores @ concept_vectors`` (or concept_scores itself when
        concept_vectors is None); see ``frugalcv.mil.loss.instance_event_similarity``.
        """
        from frugalcv.mil.loss import instance_event_similarity

        if self.concept_scores is None or self.event_vectors is None:
            raise ValueError(
                "this Bags has no concept_scores or event_vectors, so there is no instance-event "
                "similarity; fit without the semantic term (similarity=None)"
            )
        return instance_event_similarity(
            self.concept_scores,
            self.event_vectors[self._event_index(event)],
            embedding=self.concept_vectors,
        )

    def subset(self, indices) -> Bags:
        """The bags at ``indices`` (in that order) as a new Bags."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_bags):
            raise ValueError(f"bag indices must lie in [0, {self.num_bags})")
        sizes = self.bag_sizes[idx]
        inst = (
            np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in idx])
            if idx.size
            else np.zeros(0, dtype=np.int64)
        )

        def pick(a):
            return None if a is None else a[inst]

        return replace(
            self,
            features=self.features[inst],
            offsets=np.concatenate([[0], np.cumsum(sizes)]),
            labels=self.labels[idx],
            instance_labels=pick(self.instance_labels),
            bag_ids=self.bag_ids[idx],
            concept_scores=pick(self.concept_scores),
        )


def split_bags(bags: Bags, *, test_fraction: float, seed: int = 0) -> tuple[Bags, Bags]:
    """Split bags into (train, test), stratified by bag label, seeded."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    test = []
    for lab in np.unique(bags.labels):
        members = rng.permutation(np.flatnonzero(bags.labels == lab))
        test.extend(members[: int(round(test_fraction * len(members)))].tolist())
    is_test = np.zeros(bags.num_bags, dtype=bool)
    is_test[test] = True
    return bags.subset(np.flatnonzero(~is_test)), bags.subset(np.flatnonzero(is_test))


# ---------------------------------------------------------------------------------------------
# torch batches


class BagDataset(torch.utils.data.Dataset):
    """Bags as a torch Dataset: item i is ``(x_i (n_i, *F) float32, y_i)`` with y_i in {0, 1}
    for ``event`` (one-vs-rest)."""

    def __init__(self, bags: Bags, *, event: int | str = 0) -> None:
        self.bags = bags
        self.y = torch.from_numpy(bags.targets(event)).float()

    def __len__(self) -> int:
        return self.bags.num_bags

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return torch.as_tensor(self.bags.bag(i), dtype=torch.float32), self.y[i]


def collate_bags(items: list[tuple[Tensor, Any]]) -> dict[str, Tensor]:
    """Pad bags of different sizes into one batch.

    Returns:
        ``{"x": (B, N_max, *F) zeros on padding, "mask": (B, N_max) bool True on real instances,
        "y": (B,) float}``.
    """
    if not items:
        raise ValueError("collate_bags got an empty batch")
    xs = [torch.as_tensor(x) for x, _ in items]
    n_max = max(len(x) for x in xs)
    x = xs[0].new_zeros((len(xs), n_max, *xs[0].shape[1:]))
    mask = torch.zeros(len(xs), n_max, dtype=torch.bool)
    for i, xi in enumerate(xs):
        if xi.shape[1:] != xs[0].shape[1:]:
            raise ValueError(
                f"bag {i} has instance shape {tuple(xi.shape[1:])}, not {tuple(xs[0].shape[1:])}"
            )
        x[i, : len(xi)] = xi
        mask[i, : len(xi)] = True
    y = torch.stack([torch.as_tensor(y, dtype=torch.float32) for _, y in items])
    return {"x": x, "mask": mask, "y": y}
