"""ALT's active frame selection and the baseline selectors, as functions of feature tensors.

Yuan et al., "Active Learning for Deep Visual Tracking" (arXiv 2110.13259), abstract: an
active-learning method based on **multi-frame collaboration** chooses the training samples that
need annotation (diversity), and a **nearest-neighbour discrimination** method based on the
**average nearest-neighbour distance** screens out isolated and low-quality samples
(representativeness), so that a subset within a given budget keeps the diversity and
representativeness of the whole set. The formulas are not public; what follows is a
reconstruction that keeps those named parts (docs/methods/alt.md).

Everything works on per-frame embeddings ``features`` (T, D) of one sequence (from any tracker's
backbone, e.g. `frugalcv.track.siamese.frame_features`) or, for uncertainty sampling, a (T,)
confidence. Selectors return sorted int64 frame indices.

1. **Representativeness** (`knn_distance`, `nn_screen`). For each frame the average distance to
   its k nearest other frames of the sequence, ``rho_t = (1/k) sum_{j in kNN(t)} d(phi_t,
   phi_j)`` with cosine distance ``d = 1 - cos``; the pool's average ``rho_bar = mean_t rho_t`` is
   the reference, and frames with ``rho_t > tau * rho_bar`` are isolated (blur, full occlusion,
   corrupt frames) and are neither selected nor need covering.
2. **Diversity by multi-frame collaboration** (`coverage_select`). A selected frame s "explains"
   a frame t of the same sequence within the temporal window ``|t - s| <= window`` by the
   similarity ``k(t, s) = max(0, cos(phi_t, phi_s))``. The selection maximises the coverage
   ``F(S) = sum_t max_{s in S, |t - s| <= window} k(t, s)`` (a facility-location objective,
   monotone submodular), greedily: each step adds the frame whose neighbouring frames gain the
   most explanation, ``argmax_c sum_t max(0, k(t, c) - max_{s in S} k(t, s))``, i.e. the frame
   that the several neighbouring frames it collaborates with are not yet explained by. Greedy
   reaches at least (1 - 1/e) of the optimum (Nemhauser, Wolsey, Fisher 1978).
3. **Budget**: a fraction of each sequence's frames, ``max(1, round(budget * T))``; frame 0 (the
   frame a tracker is initialised with) is always selected by ALT when ``keep_first``.

Baselines on the same interface: `random_frames`, `uniform_frames` (every k-th frame),
`uncertainty_frames` (least confident under a tracker). `ALTSelector`, `RandomSelector`,
`UniformSelector` and `UncertaintySelector` apply them to every sequence of a `FramePool`.
"""

from __future__ import annotations

from collections.abc import Sequence as SequenceT
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from frugalcv.data.base import stream_generator

__all__ = [
    "SELECTORS",
    "ALTSelector",
    "FramePool",
    "RandomSelector",
    "UncertaintySelector",
    "UniformSelector",
    "alt_frames",
    "coverage_score",
    "coverage_select",
    "frame_budget",
    "knn_distance",
    "nn_screen",
    "random_frames",
    "uncertainty_frames",
    "uniform_frames",
]


def frame_budget(num_frames: int, budget: float) -> int:
    """Frames to label in a sequence of ``num_frames``: ``max(1, round(budget * num_frames))``.

    Args:
        budget: fraction of frames in (0, 1].
    """
    if not 0 < budget <= 1:
        raise ValueError(f"budget is a fraction of frames in (0, 1]; got {budget}")
    if num_frames < 1:
        raise ValueError(f"a sequence needs at least one frame; got {num_frames}")
    return min(num_frames, max(1, round(budget * num_frames)))


def _check_features(features: Tensor) -> Tensor:
    if features.ndim != 2 or len(features) == 0:
        raise ValueError(f"features must be (T, D) with T >= 1; got {tuple(features.shape)}")
    return features.double()


def _cosine_similarity(features: Tensor) -> Tensor:
    f = F.normalize(_check_features(features), dim=1)
    return f @ f.T  # (T, T)


def knn_distance(features: Tensor, *, k: int = 5) -> Tensor:
    """(T,) average cosine distance ``1 - cos`` of each frame to its k nearest other frames.

    ``k`` is capped at T - 1; a single frame gets 0.
    """
    sim = _cosine_similarity(features)
    t = len(sim)
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}")
    k = min(k, t - 1)
    if k == 0:
        return torch.zeros(t, dtype=torch.float64)
    dist = (1 - sim).clamp_min(0)
    dist.fill_diagonal_(float("inf"))
    return dist.topk(k, dim=1, largest=False).values.mean(1)


def nn_screen(features: Tensor, *, k: int = 5, tau: float = 1.5) -> Tensor:
    """(T,) bool: True for frames kept, False for isolated frames.

    A frame is isolated when its average k-NN distance exceeds ``tau`` times the average over all
    frames of the sequence (the "average nearest-neighbour distance" of the abstract). With
    ``tau = inf`` nothing is screened out.
    """
    if tau <= 0:
        raise ValueError(f"tau must be > 0; got {tau}")
    rho = knn_distance(features, k=k)
    return rho <= tau * rho.mean()


def _window_kernel(features: Tensor, window: int | None) -> Tensor:
    sim = _cosine_similarity(features).clamp_min(0)  # (T, T)
    if window is not None:
        if window < 0:
            raise ValueError(f"window must be >= 0 frames or None; got {window}")
        idx = torch.arange(len(sim))
        sim = sim * ((idx[:, None] - idx[None, :]).abs() <= window)
    return sim


def coverage_score(
    features: Tensor, selected: Tensor, *, window: int | None = None, covered: Tensor | None = None
) -> float:
    """Mean over frames of ``max_{s in selected, |t - s| <= window} max(0, cos(phi_t, phi_s))``.

    1 means every frame has an identical selected frame within the window; a frame with no
    selected frame in its window counts 0.

    Args:
        selected: (K,) frame indices.
        covered: optional (T,) bool; only these frames are averaged (e.g. `nn_screen`'s keep).
    """
    kernel = _window_kernel(features, window)
    selected = torch.as_tensor(selected, dtype=torch.long)
    best = kernel[:, selected].amax(1) if len(selected) else torch.zeros(len(kernel))
    if covered is not None:
        best = best[covered]
    return float(best.mean())


def coverage_select(
    features: Tensor,
    count: int,
    *,
    window: int | None = None,
    candidates: Tensor | None = None,
    covered: Tensor | None = None,
    initial: Tensor | None = None,
) -> Tensor:
    """Greedy maximisation of the temporal-window coverage F(S) (module docstring, item 2).

    Ties go to the earliest frame, so the result is deterministic.

    Args:
        features: (T, D) per-frame embeddings.
        count: |S| including ``initial`` (capped at the number of candidates).
        window: temporal window in frames (None: the whole sequence).
        candidates: (T,) bool, frames that may be selected (default all).
        covered: (T,) bool, frames whose coverage counts (default all).
        initial: frame indices selected before the greedy steps (e.g. frame 0).

    Returns:
        (count,) sorted int64 indices.
    """
    kernel = _window_kernel(features, window)  # (T, T): rows covered frames, cols candidates
    t = len(kernel)
    cand = torch.ones(t, dtype=torch.bool) if candidates is None else candidates.clone().bool()
    if covered is not None:
        kernel = kernel * covered.double()[:, None]
    chosen = [] if initial is None else [int(i) for i in torch.as_tensor(initial).reshape(-1)]
    best = torch.zeros(t, dtype=torch.float64)
    for i in chosen:
        best = torch.maximum(best, kernel[:, i])
    cand[chosen] = False
    count = min(count, len(chosen) + int(cand.sum()))
    while len(chosen) < count:
        gain = (kernel - best[:, None]).clamp_min(0).sum(0)  # (T,) gain of each column
        gain[~cand] = -1.0
        j = int(gain.argmax())  # first maximum: earliest frame on ties
        chosen.append(j)
        cand[j] = False
        best = torch.maximum(best, kernel[:, j])
    return torch.tensor(sorted(chosen), dtype=torch.long)


def alt_frames(
    features: Tensor,
    count: int,
    *,
    window: int | None = 10,
    k: int = 5,
    tau: float = 1.5,
    keep_first: bool = True,
) -> Tensor:
    """ALT selection for one sequence: NN screening, then greedy multi-frame coverage.

    Frames flagged isolated by `nn_screen` are neither candidates nor counted in the coverage.
    Frame 0 is always kept when ``keep_first`` (even if isolated: it holds the initial box).
    If fewer frames survive than ``count``, every survivor is returned (the budget is a ceiling).

    Returns:
        sorted int64 indices, at most ``count``.
    """
    keep = nn_screen(features, k=k, tau=tau)
    initial = torch.tensor([0]) if keep_first and count >= 1 else None
    return coverage_select(
        features, count, window=window, candidates=keep, covered=keep, initial=initial
    )


def random_frames(num_frames: int, count: int, *, generator: torch.Generator) -> Tensor:
    """``count`` frames drawn uniformly without replacement, sorted."""
    return torch.randperm(num_frames, generator=generator)[:count].sort().values


def uniform_frames(num_frames: int, count: int) -> Tensor:
    """``count`` evenly spaced frames starting at frame 0 (every ``num_frames / count``-th)."""
    if count < 1:
        raise ValueError(f"count must be >= 1; got {count}")
    return torch.floor(torch.arange(count, dtype=torch.float64) * num_frames / count).long()


def uncertainty_frames(confidence: Tensor, count: int, *, keep_first: bool = True) -> Tensor:
    """The ``count`` least confident frames (lowest tracker confidence; ties: earliest).

    Args:
        confidence: (T,) e.g. the peak score of `SiamTracker` on each frame (`run_tracker`).
    """
    confidence = torch.as_tensor(confidence, dtype=torch.float64)
    if confidence.ndim != 1:
        raise ValueError(f"confidence must be (T,); got {tuple(confidence.shape)}")
    score = torch.nan_to_num(confidence, nan=float("inf")).clone()
    chosen = []
    if keep_first and count >= 1:
        chosen.append(0)
        score[0] = float("inf")
    order = torch.sort(score, stable=True).indices  # ascending: least confident first
    chosen += [int(i) for i in order[: count - len(chosen)]]
    return torch.tensor(sorted(chosen), dtype=torch.long)


# ---------------------------------------------------------------------------------------------
# pool-level selectors


@dataclass
class FramePool:
    """The unlabelled pool: per-sequence embeddings and/or confidences.

    Attributes:
        features: one (T_i, D) tensor per sequence, or None (random/uniform need none).
        confidence: one (T_i,) tensor per sequence, or None.
        num_frames: T_i per sequence; inferred from ``features`` or ``confidence`` if omitted.
    """

    features: SequenceT[Tensor] | None = None
    confidence: SequenceT[Tensor] | None = None
    num_frames: SequenceT[int] | None = None

    def __post_init__(self) -> None:
        lengths = None
        for name, values in (("features", self.features), ("confidence", self.confidence)):
            if values is not None:
                lens = [len(v) for v in values]
                if lengths is not None and lens != lengths:
                    raise ValueError(f"{name} lengths {lens} differ from the others {lengths}")
                lengths = lens
        if self.num_frames is None:
            if lengths is None:
                raise ValueError("give features, confidence or num_frames")
            self.num_frames = lengths
        elif lengths is not None and list(self.num_frames) != lengths:
            raise ValueError(f"num_frames {list(self.num_frames)} differ from the data {lengths}")

    def __len__(self) -> int:
        return len(self.num_frames)


class RandomSelector:
    """Uniformly random frames per sequence (sequence i uses ``stream_generator(seed, i)``)."""

    def select(self, pool: FramePool, *, budget: float, seed: int = 0) -> list[Tensor]:
        return [
            random_frames(n, frame_budget(n, budget), generator=stream_generator(seed, i))
            for i, n in enumerate(pool.num_frames)
        ]


class UniformSelector:
    """Every k-th frame from frame 0 (deterministic; ``seed`` is ignored)."""

    def select(self, pool: FramePool, *, budget: float, seed: int = 0) -> list[Tensor]:
        return [uniform_frames(n, frame_budget(n, budget)) for n in pool.num_frames]


class UncertaintySelector:
    """Least-confident frames under a tracker (``pool.confidence``); deterministic."""

    def __init__(self, *, keep_first: bool = True) -> None:
        self.keep_first = keep_first

    def select(self, pool: FramePool, *, budget: float, seed: int = 0) -> list[Tensor]:
        if pool.confidence is None:
            raise ValueError(
                "uncertainty sampling needs pool.confidence: run the tracker on the unlabelled "
                "frames first (frugalcv.track.run_tracker returns 'confidence')"
            )
        return [
            uncertainty_frames(c, frame_budget(len(c), budget), keep_first=self.keep_first)
            for c in pool.confidence
        ]


class ALTSelector:
    """ALT: nearest-neighbour screening, then multi-frame coverage within the budget.

    Args:
        window: temporal window (frames) in which a selected frame explains others (ours: 10).
        k: neighbours in the average NN distance (ours: 5).
        tau: isolation threshold as a multiple of the pool's average NN distance (ours: 1.5).
        keep_first: always label frame 0.
    """

    def __init__(
        self, *, window: int | None = 10, k: int = 5, tau: float = 1.5, keep_first: bool = True
    ) -> None:
        self.window, self.k, self.tau, self.keep_first = window, k, tau, keep_first

    def select(self, pool: FramePool, *, budget: float, seed: int = 0) -> list[Tensor]:
        if pool.features is None:
            raise ValueError(
                "ALT needs pool.features: embed each frame first "
                "(frugalcv.track.frame_features(model.backbone, sequence))"
            )
        return [
            alt_frames(
                f,
                frame_budget(len(f), budget),
                window=self.window,
                k=self.k,
                tau=self.tau,
                keep_first=self.keep_first,
            )
            for f in pool.features
        ]


SELECTORS: dict[str, type] = {
    "alt": ALTSelector,
    "random": RandomSelector,
    "uniform": UniformSelector,
    "uncertainty": UncertaintySelector,
}
