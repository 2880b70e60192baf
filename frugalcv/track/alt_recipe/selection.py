"""The ``alt`` rounds' frame selection: per-round budgets, round 0's frames, and extending a
sequence's labelled set with a selector (ALT's screening and coverage, uncertainty, random,
uniform, all)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from frugalcv.data.base import stream_generator
from frugalcv.track.alt_recipe.config import MODEL_BASED, SELECTOR_NAMES, ALTConfig
from frugalcv.track.selection import coverage_select, nn_screen, uniform_frames

__all__ = ["extend_selection", "initial_selection", "round_counts"]


def round_counts(budgets: list[int], *, round_index: int, num_rounds: int) -> list[int]:
    """Labelled frames per sequence after round ``round_index`` of ``num_rounds``.

    Round 0 holds frame 0 only; the budget grows linearly to the full ``budgets`` (frames per
    sequence, :func:`frugalcv.track.frame_budget`) at the last round: ``max(1, round(n r /
    (R - 1)))``. E.g. 10 frames over 3 rounds: 1, 5, 10.
    """
    if num_rounds < 2:
        return list(budgets)
    return [max(1, round(n * round_index / (num_rounds - 1))) for n in budgets]


def extend_selection(
    selector: str,
    labelled: Tensor,
    count: int,
    *,
    num_frames: int,
    features: Tensor | None = None,
    confidence: Tensor | None = None,
    generator: torch.Generator | None = None,
    window: int | None = 10,
    k: int = 5,
    tau: float = 1.5,
) -> Tensor:
    """Add frames to one sequence's labelled set until it holds ``count`` frames.

    - ``alt``: NN screening (`nn_screen`) then greedy coverage (`coverage_select`) with the
      labelled frames as the initial set: new frames explain what the labelled ones do not.
    - ``uncertainty``: the least confident unlabelled frames (ties: earliest).
    - ``random``: unlabelled frames uniformly at random.
    - ``uniform``: ``uniform_frames(T, count)`` (labelled frames are kept; it ignores them).
    - ``all``: every frame.

    Args:
        labelled: (K,) frame indices already labelled (kept).
        features: (T, D) embeddings (``alt``); confidence: (T,) (``uncertainty``).

    Returns:
        sorted int64 indices, ``labelled`` among them; fewer than ``count`` only when ALT's
        screening leaves too few candidates.
    """
    labelled = torch.as_tensor(labelled, dtype=torch.long).unique()
    count = min(count, num_frames)
    is_labelled = torch.zeros(num_frames, dtype=torch.bool)
    is_labelled[labelled] = True
    need = count - int(is_labelled.sum())
    if selector == "all":
        return torch.arange(num_frames)
    if need <= 0:
        return labelled
    if selector == "alt":
        if features is None:
            raise ValueError("ALT selection needs features (T, D) of the sequence's frames")
        keep = nn_screen(features, k=k, tau=tau)
        return coverage_select(
            features,
            count,
            window=window,
            candidates=keep & ~is_labelled,
            covered=keep,
            initial=labelled,
        )
    if selector == "uncertainty":
        if confidence is None:
            raise ValueError("uncertainty sampling needs the tracker's confidence (T,)")
        score = torch.nan_to_num(torch.as_tensor(confidence, dtype=torch.float64), nan=math.inf)
        score[is_labelled] = math.inf
        new = torch.sort(score, stable=True).indices[:need]
    elif selector == "random":
        rest = torch.nonzero(~is_labelled).flatten()
        new = rest[torch.randperm(len(rest), generator=generator)[:need]]
    elif selector == "uniform":
        new = uniform_frames(num_frames, count)
    else:
        raise ValueError(f"unknown selector {selector!r}; valid: {', '.join(SELECTOR_NAMES)}")
    return torch.cat([labelled, new]).unique()  # sorted


def initial_selection(
    a: ALTConfig, budgets: list[int], *, lengths: list[int], seed: int
) -> list[list[int]]:
    """Round 0's labelled frames per sequence: frame 0 for the model-based selectors, else the
    whole draw of ``budgets[i]`` frames (frame 0 included)."""
    if a.selector in MODEL_BASED:
        return [[0] for _ in budgets]
    zero = torch.zeros(1, dtype=torch.long)
    return [
        extend_selection(
            a.selector, zero, n, num_frames=t, generator=stream_generator(seed, i)
        ).tolist()
        for i, (t, n) in enumerate(zip(lengths, budgets, strict=True))
    ]
