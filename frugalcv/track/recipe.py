"""``alt``: a tracker trained on a labelling budget: select frames, reveal their boxes, retrain.

Yuan et al., "Active Learning for Deep Visual Tracking" (IEEE TNNLS 2023, arXiv 2110.13259).
Only the abstract is public; every definition below the component names is a reconstruction
(docs/methods/alt.md).

The unlabelled pool is every frame of the training sequences. Each sequence comes with its first
box (a tracker is always initialised with one), so **round 0** trains the tracker
(:class:`frugalcv.track.TrackerTask` through the shared ``fit``; pairs from
:func:`frugalcv.track.make_pairs` over labelled frames only) on frame 0 of every sequence. The
round's tracker then runs over each training sequence from its first box (no other label used):
its peak scores are the confidences of uncertainty sampling, and crops around its boxes, embedded
by its backbone, are the features of ALT's selection. The selector adds frames up to the round's
share of the budget (``alt.budget`` of each sequence's frames at the last round, frame 0
included), their ground truth is revealed, and the next round retrains from the same
initialisation (:func:`frugalcv.core.stages.run_rounds`; each selection is saved and replayed on
resume).

Selectors that need no model (``random``, ``uniform``, and ``all``: every frame labelled, the
upper bound) draw their frames up front and train once: retraining from the same initialisation
makes their last round exactly this run. Every selector's set holds frame 0.

Evaluation (every round): one-pass evaluation (OPE) of :class:`frugalcv.track.SiamTracker` on the
held-out test sequences, got10k-toolkit OTB conventions (:func:`frugalcv.track.ope_scores`):
``final.success_auc`` (the metric), ``final.precision`` (centre error <= 20 px),
``final.success_rate`` and ``final.fps`` (frames per second of the whole tracking loop, this
process's threads), besides the loop's pair metrics (``iou``, ``centre_error`` on test-sequence
pairs: logged only, nothing is selected on them; ``final`` is the last step). The test frames
with predicted and true boxes are drawn to ``<run>/frames.png``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from frugalcv.core.checkpoint import load_model
from frugalcv.core.config import ConfigError, OptimConfig, TrainConfig
from frugalcv.core.jsonio import write_json
from frugalcv.core.loader import TensorLoader
from frugalcv.core.recipe import start_run, train_model, write_rows
from frugalcv.core.stages import run_rounds
from frugalcv.data.base import stream_generator
from frugalcv.data.tracking import Sequence
from frugalcv.track.crops import make_pairs
from frugalcv.track.metrics import ope_scores
from frugalcv.track.selection import (
    coverage_select,
    frame_budget,
    nn_screen,
    uniform_frames,
)
from frugalcv.track.siamese import SiamBoxNet, SiamTracker, TrackerTask, frame_features
from frugalcv.track.tracker import IdentityTracker, run_tracker

SelectorName = Literal["alt", "random", "uniform", "uncertainty", "all"]
SELECTOR_NAMES: tuple[str, ...] = ("alt", "random", "uniform", "uncertainty", "all")
MODEL_BASED = ("alt", "uncertainty")  # selectors that score the pool with the round's tracker

# What each selector's row shows (printed after the rows).
SELECTOR_NOTES = {
    "alt": "ALT: NN screening + multi-frame coverage on the round's tracker features",
    "random": "random frames (frame 0 kept): the baseline ALT must beat",
    "uniform": "every k-th frame from frame 0: temporal coverage without a model",
    "uncertainty": "least confident frames under the round's tracker",
    "all": "every frame labelled: the upper bound of any budget",
}


@dataclass
class DataConfig:
    """Training pool and test sequences."""

    source: Literal["procedural", "got10k", "lasot"] = "procedural"
    root: str = ""  # real data: the GOT-10k / LaSOT folder ("" = $FRUGALCV_DATA/GOT-10k, /LaSOT)
    test_list: str = ""  # LaSOT: file of test sequence names (the protocol's testing_set.txt)
    num_train: int = 8  # training sequences (the pool); real data: first N (0 = all)
    num_test: int = 8  # test sequences; real data: first N (0 = all)
    max_frames: int = 0  # keep the first N frames of each sequence (0 = all)
    # procedural sequences (frugalcv.data.tracking.make_sequences); ours, sized for CPUs
    target: Literal["shape", "digit", "patch"] = "shape"
    num_frames: int = 100  # frames per procedural sequence
    height: int = 96  # px
    width: int = 128  # px
    num_distractors: int = 1  # same-kind distractors per sequence ("BC")

    def validate(self) -> None:
        for key in ("num_train", "num_test", "max_frames"):
            if getattr(self, key) < 0:
                raise ConfigError(f"data.{key} must be >= 0 (0 = all); got {getattr(self, key)}.")
        if self.source == "procedural":
            if self.num_train < 1 or self.num_test < 1:
                raise ConfigError(
                    "data.num_train and data.num_test must be >= 1 for procedural sequences."
                )
            if self.num_frames < 10:
                raise ConfigError(f"data.num_frames must be >= 10; got {self.num_frames}.")
            if min(self.height, self.width) < 56:
                raise ConfigError(
                    f"data.height and data.width must be >= 56 px (twice the largest target); "
                    f"got {self.height} x {self.width}."
                )
        if self.num_distractors < 0:
            raise ConfigError(f"data.num_distractors must be >= 0; got {self.num_distractors}.")


@dataclass
class ALTConfig:
    """The labelling budget, the selector and the tracker's losses."""

    selector: SelectorName = "alt"
    budget: float = 0.10  # fraction of each training sequence's frames labelled at the end
    # (ALT's budgets are not public; 5/10/20 % are ours)
    num_rounds: int = 2  # alt/uncertainty: round 0 = frame 0 only, the last = the full budget
    # ALT selection (frugalcv.track.selection.alt_frames; ours, the paper's values are unknown)
    features: Literal["box", "frame"] = "box"  # crops around the round's tracker boxes, or frames
    window: int = 10  # frames a selected frame explains on each side
    k: int = 5  # neighbours in the average NN distance
    tau: float = 1.5  # isolated when the k-NN distance exceeds tau x the sequence's average
    # a trained tracker (checkpoint or run folder) that scores the pool instead of each round's
    # own tracker: a diagnostic (e.g. the all-frames tracker standing in for a pretrained one)
    scorer_ckpt: str = ""
    # tracker (frugalcv.track.TrackerTask / SiamTracker)
    box_loss: Literal["tversky", "l1", "iou"] = "tversky"
    alpha: float = 0.3  # Tversky false-positive weight (Salehi et al. 2017; ALT's is unknown)
    beta: float = 0.7  # Tversky false-negative weight (same source)
    box_weight: float = 1.0  # box loss weight against the classification loss (ours)
    pos_radius: float = 8.0  # px in the search crop: positives (SiamFC: 2 cells)
    num_pairs: int = 2000  # training pairs per round, drawn from the labelled frames
    num_val_pairs: int = 256  # test-sequence pairs for the loop's logged pair metrics
    max_gap: int = 20  # frames between template and search frame (ATOM: 50)
    window_influence: float = 0.25  # Hann window weight at inference (ours)
    size_lr: float = 0.5  # size update rate at inference (ours)

    def validate(self) -> None:
        if not 0 < self.budget <= 1:
            raise ConfigError(
                f"alt.budget is a fraction of each sequence's frames in (0, 1]; got "
                f"{self.budget}. Use alt.selector=all for every frame."
            )
        if self.num_rounds < 1:
            raise ConfigError(f"alt.num_rounds must be >= 1; got {self.num_rounds}.")
        if self.selector in MODEL_BASED and self.num_rounds < 2:
            raise ConfigError(
                f"alt.selector={self.selector} scores the pool with a trained tracker, so it "
                f"needs alt.num_rounds >= 2 (round 0 trains on frame 0 of every sequence)."
            )
        if self.scorer_ckpt and self.selector not in MODEL_BASED:
            raise ConfigError(
                f"alt.scorer_ckpt scores the pool for a model-based selector ({MODEL_BASED}); "
                f"alt.selector={self.selector} uses no model. Leave alt.scorer_ckpt empty."
            )
        if self.alpha < 0 or self.beta < 0 or self.alpha + self.beta == 0:
            raise ConfigError(
                f"alt.alpha and alt.beta must be >= 0 and not both 0; got {self.alpha}, "
                f"{self.beta}."
            )
        if self.window < 0 or self.k < 1 or not self.tau > 0:
            raise ConfigError("alt.window must be >= 0, alt.k >= 1 and alt.tau > 0.")
        if self.num_pairs < 1 or self.num_val_pairs < 1 or self.max_gap < 0:
            raise ConfigError("alt.num_pairs, alt.num_val_pairs must be >= 1, alt.max_gap >= 0.")
        if self.box_weight < 0 or self.pos_radius <= 0:
            raise ConfigError("alt.box_weight must be >= 0 and alt.pos_radius > 0.")
        if not 0 <= self.window_influence <= 1 or not 0 <= self.size_lr <= 1:
            raise ConfigError("alt.window_influence and alt.size_lr must be in [0, 1].")


def _adam(lr: float) -> OptimConfig:
    # Adam as ATOM trains its estimation head (pytracking ltr/train_settings/bbreg/atom.py).
    return OptimConfig(name="adam", lr=lr, weight_decay=0.0, schedule="cosine", warmup_steps=20)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    alt: ALTConfig = field(default_factory=ALTConfig)
    optim: OptimConfig = field(default_factory=lambda: _adam(3e-3))
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(epochs=10, batch_size=32, eval_batch_size=128)
    )


def tiny() -> Config:
    """About 45 s of CPU: 8 procedural sequences of 60 frames, 10 % labelled by ALT, 2 rounds of
    300 steps; the tracker lands far above the IdentityTracker floor (printed)."""
    return Config(
        data=DataConfig(num_train=8, num_test=6, num_frames=60),
        alt=ALTConfig(budget=0.10, num_pairs=1200, num_val_pairs=128),
        optim=_adam(3e-3),
        train=TrainConfig(max_steps=300, batch_size=32, eval_batch_size=128),
    )


def paper_got10k() -> Config:
    """GOT-10k: the pool is the train split, the test set the val split (its test split has no
    public boxes). Shrunk for a workstation: the first 200 training videos, 300 frames each."""
    return Config(
        data=DataConfig(source="got10k", num_train=200, num_test=0, max_frames=300),
        alt=ALTConfig(budget=0.10, num_pairs=20000, max_gap=50),
        optim=_adam(1e-3),  # ATOM's Adam lr
        train=TrainConfig(epochs=20, batch_size=64, eval_batch_size=128),
    )


def paper_lasot() -> Config:
    """LaSOT protocol II: train on the training videos, test on the 280 of ``testing_set.txt``
    (pass ``--data.test_list``); frames capped at 1000 per video for the pool."""
    return Config(
        data=DataConfig(source="lasot", num_train=0, num_test=0, max_frames=1000),
        alt=ALTConfig(budget=0.05, num_pairs=40000, max_gap=50),
        optim=_adam(1e-3),
        train=TrainConfig(epochs=20, batch_size=64, eval_batch_size=128),
    )


PRESETS = {"tiny": tiny, "paper_got10k": paper_got10k, "paper_lasot": paper_lasot}


# ----------------------------------------------------------------------------------- data


def _head(seq: Sequence, num: int) -> Sequence:
    """The first ``num`` frames of a sequence (all when ``num`` is 0 or longer)."""
    if num <= 0 or num >= len(seq):
        return seq
    return Sequence(
        name=seq.name,
        frames=seq.frames[:num],
        boxes=seq.boxes[:num],
        absent=None if seq.absent is None else seq.absent[:num],
        attributes=seq.attributes,
        source=seq.source,
    )


def load_sequences(cfg: DataConfig, *, seed: int) -> tuple[list[Sequence], list[Sequence], str]:
    """``(train pool, test sequences, data set name)``.

    Procedural sequences depend on ``seed`` (the run's seed): pool from the "train" halves of the
    images, test from the "test" halves. Real data: GOT-10k train -> val, LaSOT training videos
    -> the names in ``cfg.test_list``.
    """
    if cfg.source == "procedural":
        common = dict(
            num_frames=cfg.num_frames,
            height=cfg.height,
            width=cfg.width,
            target=cfg.target,
            num_distractors=cfg.num_distractors,
        )
        train = [
            _head(s, cfg.max_frames)
            for s in _procedural(cfg.num_train, seed=2 * seed, pool="train", **common)
        ]
        test = [
            _head(s, cfg.max_frames)
            for s in _procedural(cfg.num_test, seed=2 * seed + 1, pool="test", **common)
        ]
        return train, test, f"procedural-{cfg.target}"
    from frugalcv.data.tracking import read_got10k, read_lasot

    root = cfg.root or None
    if cfg.source == "got10k":
        train, test = read_got10k(root, split="train"), read_got10k(root, split="val")
        name = "GOT-10k"
    else:
        if not cfg.test_list:
            raise ConfigError(
                "data.source=lasot needs --data.test_list=<file of test names> (LaSOT's "
                "testing_set.txt, one name such as airplane-1 per line)."
            )
        path = Path(cfg.test_list)
        if not path.is_file():
            raise FileNotFoundError(f"data.test_list {path} does not exist; pass testing_set.txt")
        names = [n.strip() for n in path.read_text().splitlines() if n.strip()]
        test = read_lasot(root, names=names)
        held = set(names)
        train = [s for s in read_lasot(root) if s.name not in held]
        name = "LaSOT"
    train = train[: cfg.num_train] if cfg.num_train else train  # first N of the listing
    test = test[: cfg.num_test] if cfg.num_test else test
    train = [_head(s, cfg.max_frames) for s in train]
    test = [_head(s, cfg.max_frames) for s in test]
    return train, test, name


def _procedural(num: int, *, seed: int, pool: str, **kwargs: Any) -> list[Sequence]:
    from frugalcv.data.tracking import make_sequences

    return make_sequences(num, seed=seed, pool=pool, **kwargs)


# ----------------------------------------------------------------------------------- selection


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


# ----------------------------------------------------------------------------------- model


def make_task(a: ALTConfig) -> TrackerTask:
    """A fresh `TrackerTask` (the caller seeds torch first, so every round starts alike)."""
    return TrackerTask(
        model=SiamBoxNet(),
        box_loss=a.box_loss,
        alpha=a.alpha,
        beta=a.beta,
        box_weight=a.box_weight,
        pos_radius=a.pos_radius,
    )


def make_tracker(model: SiamBoxNet, a: ALTConfig) -> SiamTracker:
    return SiamTracker(model, window_influence=a.window_influence, size_lr=a.size_lr)


def evaluate_ope(tracker: Any, sequences: list[Sequence]) -> tuple[dict, list[Tensor]]:
    """OPE scores of ``tracker`` over ``sequences`` plus ``fps`` (all frames over all time).

    Returns:
        ``(scores, boxes)``: `ope_scores` keys without the curves, and ``fps``; the (T, 4)
        predictions per sequence.
    """
    results, boxes, frames, seconds = [], [], 0, 0.0
    for seq in sequences:
        out = run_tracker(tracker, seq)
        results.append((out["boxes"], seq.boxes))
        boxes.append(out["boxes"])
        if math.isfinite(out["fps"]):
            frames += len(seq) - 1
            seconds += (len(seq) - 1) / out["fps"]
    scores = ope_scores(results)
    keep = ("success_auc", "success_rate", "precision", "mean_iou")
    out = {k: scores[k] for k in keep}
    out["fps"] = frames / seconds if seconds > 0 else None
    return out, boxes


def score_pool(
    model: SiamBoxNet, a: ALTConfig, sequences: list[Sequence]
) -> tuple[list[Tensor] | None, list[Tensor] | None]:
    """The round's tracker over each pool sequence from its first box: ``(features, confidence)``.

    Features (ALT): backbone embeddings of crops around the tracked boxes (``alt.features=box``)
    or of whole frames (``frame``); confidence (uncertainty): the peak score per frame.
    """
    if a.selector not in MODEL_BASED:
        return None, None
    features, confidence = [], []
    for seq in sequences:
        needs_run = a.selector == "uncertainty" or a.features == "box"
        out = run_tracker(make_tracker(model, a), seq) if needs_run else None
        if a.selector == "uncertainty":
            confidence.append(out["confidence"])
        else:
            boxes = out["boxes"] if a.features == "box" else None
            features.append(frame_features(model.backbone, seq, boxes=boxes))
    return (features or None), (confidence or None)


# ----------------------------------------------------------------------------------- figure


def plot_frames(
    sequences: list[Sequence], boxes: list[Tensor], path: Path, *, title: str, num: int = 4
) -> Path:
    """PNG of ``num`` test frames (spread over the first sequences) with the true box (green)
    and the tracker's box (red, dashed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    picks = []
    for i, seq in enumerate(sequences[: max(1, num // 2)]):
        for f in (0.45, 0.9):
            picks.append((i, min(len(seq) - 1, int(f * len(seq)))))
    picks = picks[:num]
    fig = Figure(figsize=(3.0 * len(picks), 2.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(picks), squeeze=False)[0]
    for ax, (i, t) in zip(axes, picks, strict=True):
        seq = sequences[i]
        ax.imshow(seq.frame(t).numpy())
        for box, colour, style in ((seq.boxes[t], "lime", "-"), (boxes[i][t], "red", "--")):
            if torch.isfinite(box).all():
                x, y, w, h = box.tolist()
                ax.add_patch(Rectangle((x, y), w, h, fill=False, ec=colour, ls=style, lw=1.5))
        ax.set_title(f"{seq.name} frame {t}", fontsize=8)
        ax.axis("off")
    fig.suptitle(f"{title} (green: ground truth, red dashed: tracker)", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


# ----------------------------------------------------------------------------------- run


def _pairs_loader(pairs: dict[str, Tensor], *, batch_size: int, seed: int, train: bool):
    tensors = (pairs["template"], pairs["search"], pairs["box"])
    return TensorLoader(tensors, batch_size=batch_size, shuffle=train, seed=seed, drop_last=train)


def run(cfg: Config, *, preset: str = "custom") -> dict:
    """Train the tracker round by round on the frames ``cfg.alt.selector`` labels.

    Returns the ``rows.json`` dict: one row per round (``round0``, ...), the last one trained on
    the full budget.
    """
    ctx = start_run(cfg, recipe="alt", preset=preset)
    a, seed = cfg.alt, cfg.train.seed
    train_seqs, test_seqs, dataset = load_sequences(cfg.data, seed=seed)
    lengths = [len(s) for s in train_seqs]
    budgets = lengths if a.selector == "all" else [frame_budget(t, a.budget) for t in lengths]
    num_rounds = a.num_rounds if a.selector in MODEL_BASED else 1
    val_pairs = make_pairs(test_seqs, num_pairs=a.num_val_pairs, seed=10_000 + seed)
    val_loader = _pairs_loader(val_pairs, batch_size=cfg.train.eval_batch_size, seed=0, train=False)
    identity, _ = evaluate_ope(IdentityTracker(), test_seqs)
    state: dict[str, Any] = {}
    # loaded before any training, so a missing or foreign checkpoint fails first
    scorer = load_model(make_task(a).model, a.scorer_ckpt).eval() if a.scorer_ckpt else None

    def train_round(r: int, out_dir: Path, selection: list[list[int]]) -> dict:
        labelled = [torch.tensor(s, dtype=torch.long) for s in selection]
        pairs = make_pairs(
            train_seqs, num_pairs=a.num_pairs, seed=seed, labelled=labelled, max_gap=a.max_gap
        )
        torch.manual_seed(seed)  # every round and every selector start from the same init
        task = make_task(a)
        num_labelled = sum(len(s) for s in selection)
        summary = train_model(
            ctx,
            cfg,
            task=task,
            loaders=(
                _pairs_loader(pairs, batch_size=cfg.train.batch_size, seed=seed, train=True),
                val_loader,
            ),
            name=f"round{r}",
            out_dir=out_dir,
        )
        t0 = time.perf_counter()
        scores, boxes = evaluate_ope(make_tracker(task.model, a), test_seqs)
        summary["final"].update(scores)
        summary.update(
            selector=a.selector,
            budget=1.0 if a.selector == "all" else a.budget,
            box_loss=a.box_loss,
            round=r,
            num_rounds=num_rounds,
            labelled_frames=num_labelled,
            labelled_fraction=num_labelled / sum(lengths),
            pool_frames=sum(lengths),
            identity_auc=identity["success_auc"],
            identity_precision=identity["precision"],
            params=sum(p.numel() for p in task.model.parameters()),
            dataset=dataset,
            eval_s=round(time.perf_counter() - t0, 2),
        )
        if ctx.is_main:
            write_json(out_dir / "summary.json", summary)
        state.update(model=task.model, boxes=boxes)
        return summary

    def select(r: int, summary: dict, selection: list[list[int]]) -> list[list[int]]:
        features, confidence = score_pool(scorer or state["model"], a, train_seqs)
        counts = round_counts(budgets, round_index=r + 1, num_rounds=num_rounds)
        return [
            extend_selection(
                a.selector,
                torch.tensor(selection[i], dtype=torch.long),
                counts[i],
                num_frames=lengths[i],
                features=None if features is None else features[i],
                confidence=None if confidence is None else confidence[i],
                generator=stream_generator(seed + 1000 * (r + 1), i),
                window=a.window,
                k=a.k,
                tau=a.tau,
            ).tolist()
            for i in range(len(train_seqs))
        ]

    history = run_rounds(
        ctx,
        num_rounds=num_rounds,
        train_round=train_round,
        select=select,
        initial=initial_selection(a, budgets, lengths=lengths, seed=seed),
    )
    rows = [{k: v for k, v in h.items() if k != "selection"} for h in history]
    out = write_rows(ctx, dataset=dataset, rows=rows)
    if ctx.is_main:
        last = rows[-1]
        path = plot_frames(
            test_seqs,
            state["boxes"],
            ctx.out_dir / "frames.png",
            title=f"selector {a.selector}, {last['labelled_frames']} labelled frames",
        )
        print(
            f"[alt] {dataset}: pool {sum(lengths)} frames in {len(train_seqs)} sequences, "
            f"{len(test_seqs)} test sequences; selector {a.selector}, box loss {a.box_loss}; "
            f"IdentityTracker floor: success AUC {identity['success_auc']:.3f}, precision "
            f"{identity['precision']:.3f}"
        )
        for row in rows:
            f = row["final"]
            print(
                f"  round{row['round']}: {row['labelled_frames']:5d} labelled frames "
                f"({100 * row['labelled_fraction']:.1f} %)  success AUC {f['success_auc']:.3f}  "
                f"precision@20 {f['precision']:.3f}  {f['fps'] or float('nan'):.0f} fps"
            )
        print(f"  notice: {SELECTOR_NOTES[a.selector]}; AUC vs the floor above. Frames: {path}")
    return out


__all__ = [
    "ALTConfig",
    "Config",
    "DataConfig",
    "PRESETS",
    "SELECTOR_NAMES",
    "evaluate_ope",
    "extend_selection",
    "initial_selection",
    "load_sequences",
    "make_task",
    "paper_got10k",
    "paper_lasot",
    "plot_frames",
    "round_counts",
    "run",
    "score_pool",
    "tiny",
]
