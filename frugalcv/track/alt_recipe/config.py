"""The ``alt`` config: data and ALT sections, the recipe's Config and its presets.

Selector names (``alt.selector``), which of them score the pool with the round's tracker
(``MODEL_BASED``) and the note printed under each selector's rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from frugalcv.core.config import ConfigError, OptimConfig, TrainConfig

__all__ = [
    "ALTConfig",
    "Config",
    "DataConfig",
    "PRESETS",
    "SELECTOR_NAMES",
    "paper_got10k",
    "paper_lasot",
    "tiny",
]


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
