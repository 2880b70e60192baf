"""The ``medmil`` config: row names, data, method and attention-MIL sections, presets."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from frugalcv.core.config import ConfigError, OptimConfig, TrainConfig

__all__ = [
    "PRESETS",
    "ROWS",
    "AttentionConfig",
    "Config",
    "DataConfig",
    "MedMilConfig",
    "paper_medtest",
    "paper_mnist_bags",
    "paper_musk1",
    "tiny",
]


DataName = Literal["events", "mnist-bags", "file", "musk1", "musk2", "elephant", "fox", "tiger"]
RowName = Literal[
    "mean_pooling",
    "mi_svm",
    "MI_SVM",
    "attention_mil",
    "no_semantic",
    "no_self_pacing",
    "spl_hard",
    "spl_linear",
    "spl_mixture",
    "spl_negative_elastic_net",
    "spl_concave_elastic_net",
    "spl_group",
    "full",
]
Regularizer = Literal[
    "hard", "linear", "mixture", "negative_elastic_net", "concave_elastic_net", "group"
]
Semantics = Literal["auto", "text", "data", "none"]

# The rows, in table order: baselines, ablations, other regularisers, the method.
ROWS: tuple[str, ...] = (
    "mean_pooling",
    "mi_svm",
    "MI_SVM",
    "attention_mil",
    "no_semantic",
    "no_self_pacing",
    "spl_hard",
    "spl_linear",
    "spl_mixture",
    "spl_concave_elastic_net",
    "spl_group",
    "full",
)
MEDMIL_ROWS = ("full", "no_semantic", "no_self_pacing") + tuple(
    r for r in RowName.__args__ if r.startswith("spl_")
)
TEXT_DIM = 384  # all-MiniLM-L6-v2 sentence embeddings (frugalcv.data.semantics.EMBEDDING_DIM)

# What to look at in each row, printed after the table.
ROW_NOTES = {
    "mean_pooling": "video-level baseline: a few key segments drown in the mean",
    "mi_svm": "instance labels of positive videos as latent variables (Andrews et al.)",
    "MI_SVM": "one witness segment per positive video (Andrews et al.)",
    "attention_mil": "learned attention pooling (Ilse et al.), trained by the shared loop",
    "no_semantic": "full method with mu = 0: the semantic term's share is full minus this",
    "no_self_pacing": "every segment of a positive video trusted: the curriculum's share is "
    "full minus this",
    "full": "self-paced MIL with the visual-semantic loss (curriculum in admitted.png)",
}


@dataclass
class DataConfig:
    name: DataName = "events"  # synthetic MED-like videos (embedded; frugalcv.data.mil)
    root: str = ""  # "" = $FRUGALCV_DATA (classic MIL sets live in <root>/mil/)
    path: str = ""  # name=file: a bag file (.npz/.h5) written by frugalcv.data.mil.save_bags
    test_path: str = ""  # name=file: a separate test bag file; "" = split path by test_fraction
    test_fraction: float = 0.5  # file / classic sets: stratified held-out fraction of the bags
    num_train: int = 300  # events / mnist-bags: training bags (make_event_bags default)
    num_test: int = 300  # events / mnist-bags: test bags
    num_events: int = 3  # events: number of event classes (make_event_bags default)
    mnist_target: int = 9  # mnist-bags: the digit that makes a bag positive (Ilse et al.)
    mnist_features: Literal["pixels", "projection"] = "pixels"  # raw 784-d, or a fixed projection
    mnist_source: Literal["auto", "mnist", "mnist5k"] = "auto"  # auto: full MNIST if under root
    seed: int = -1  # data seed; -1 = train.seed (each benchmark seed draws its own videos)

    def validate(self) -> None:
        if self.name == "file" and not self.path:
            raise ConfigError(
                "data.name=file needs data.path: a bag file (.npz/.h5) written with "
                "frugalcv.data.mil.save_bags."
            )
        if self.name != "file" and (self.path or self.test_path):
            raise ConfigError(
                f"data.path / data.test_path are read only with data.name=file (got "
                f"data.name={self.name}); drop them or set data.name=file."
            )
        if not 0 < self.test_fraction < 1:
            raise ConfigError(f"data.test_fraction must be in (0, 1); got {self.test_fraction}.")
        if self.num_train < 4 or self.num_test < 4:
            raise ConfigError("data.num_train and data.num_test must be >= 4 bags.")
        if self.num_events < 1:
            raise ConfigError(f"data.num_events must be >= 1; got {self.num_events}.")
        if not 0 <= self.mnist_target <= 9:
            raise ConfigError(f"data.mnist_target must be a digit 0..9; got {self.mnist_target}.")
        if self.seed < -1:
            raise ConfigError(f"data.seed must be >= 0 (or -1 = train.seed); got {self.seed}.")


@dataclass
class MedMilConfig:
    rows: tuple[RowName, ...] = ROWS
    regularizer: Regularizer = "negative_elastic_net"  # the abstract's "negative elastic-net"
    gamma_ratio: float = 0.5  # gamma / lam of the regulariser (ours; only the ratio matters)
    semantic_weight: float = 1.0  # mu, weight of the semantic term (ours)
    # auto: text embeddings of the event names when the instances' semantic vectors live in the
    # text encoder's space, else the data's own event vectors, else no semantic term.
    semantics: Semantics = "auto"
    classifier: Literal["logistic", "svm"] = "logistic"  # instance classifier (ours)
    C: float = 1.0  # its inverse L2 strength, R(w) (scikit-learn default)
    age_schedule: Literal["quantile", "geometric"] = "quantile"  # (ours; see MEDMIL)
    start_fraction: float = 0.05  # uncertain segments admitted in round 1 (ours)
    growth: float = 1.3  # age growth per round (ours)
    max_fraction: float = 0.3  # cap of the admitted fraction (ours; docs/methods/medmil.md)
    max_rounds: int = 10  # alternating rounds (ours)
    tol: float = 1e-3  # stop when max |v_t - v_t-1| <= tol after the cap is reached (ours)
    keep_one_per_bag: bool = True  # MIL constraint: a positive video keeps its best segment
    bag_score: Literal["max", "mean"] = "max"  # video score from segment scores
    pooling: Literal["mean", "max"] = "mean"  # the mean_pooling row's pooling
    svm_C: float = 1.0  # mi-SVM / MI-SVM C (scikit-learn default)
    svm_max_iter: int = 50  # mi-SVM / MI-SVM relabelling rounds (they stop when stable)

    def validate(self) -> None:
        if not self.rows:
            raise ConfigError("medmil.rows is empty; name at least one row (e.g. full).")
        if len(set(self.rows)) != len(self.rows):
            raise ConfigError(f"medmil.rows names a row twice: {list(self.rows)}.")
        if f"spl_{self.regularizer}" in self.rows and "full" in self.rows:
            raise ConfigError(
                f"medmil.rows has spl_{self.regularizer}, which equals the full row (medmil."
                f"regularizer={self.regularizer}); drop it or change medmil.regularizer."
            )
        if not 0 < self.gamma_ratio < 1:
            raise ConfigError(
                f"medmil.gamma_ratio must be in (0, 1) (the mixture regulariser needs "
                f"gamma < lam); got {self.gamma_ratio}."
            )
        if not (math.isfinite(self.semantic_weight) and self.semantic_weight >= 0):
            raise ConfigError(f"medmil.semantic_weight must be >= 0; got {self.semantic_weight}.")
        if self.semantic_weight == 0 and "no_semantic" in self.rows and "full" in self.rows:
            raise ConfigError(
                "medmil.semantic_weight=0 makes the full row equal no_semantic; set a weight > 0 "
                "or drop the no_semantic row."
            )
        if not 0 < self.start_fraction <= self.max_fraction <= 1:
            raise ConfigError(
                "need 0 < medmil.start_fraction <= medmil.max_fraction <= 1; got "
                f"{self.start_fraction} and {self.max_fraction}."
            )
        if not self.growth > 1:
            raise ConfigError(f"medmil.growth must be > 1 so the age grows; got {self.growth}.")
        if self.max_rounds < 1 or self.svm_max_iter < 1:
            raise ConfigError("medmil.max_rounds and medmil.svm_max_iter must be >= 1.")
        if self.tol < 0:
            raise ConfigError(f"medmil.tol must be >= 0; got {self.tol}.")
        for key in ("C", "svm_C"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"medmil.{key} must be a finite number > 0; got {value}.")


@dataclass
class AttentionConfig:
    dim: int = 500  # L, instance embedding size (Ilse et al. MNIST-bags, [mem])
    hidden: int = 128  # D, attention hidden size (Ilse et al., [mem])
    gated: bool = True  # gated attention, their Eq. 9
    dropout: float = 0.0  # on the bag embedding (0 in the paper)

    def validate(self) -> None:
        if self.dim < 1 or self.hidden < 1:
            raise ConfigError("attention.dim and attention.hidden must be >= 1.")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"attention.dropout must be in [0, 1); got {self.dropout}.")


def _attention_optim() -> OptimConfig:
    # Ilse et al. (MNIST-bags, [mem]): Adam, lr 5e-4, betas (0.9, 0.999), weight decay 1e-4.
    return OptimConfig(name="adam", lr=5e-4, weight_decay=1e-4, schedule="constant", milestones=())


def _attention_train() -> TrainConfig:
    # Ilse et al. trained one bag per step ([mem]); 8-bag batches are ours. 80 epochs: doubling
    # to 160 moved the row by < 1 point on the synthetic events (docs/methods/medmil.md).
    return TrainConfig(epochs=80, batch_size=8, eval_batch_size=64, log_every=50)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    medmil: MedMilConfig = field(default_factory=MedMilConfig)
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    optim: OptimConfig = field(default_factory=_attention_optim)  # attention_mil only
    train: TrainConfig = field(default_factory=_attention_train)  # epochs: attention_mil only


def tiny() -> Config:
    """About 30 s on 2 CPU cores: 200/200 synthetic videos, 3 events, every row."""
    return Config(
        data=DataConfig(name="events", num_train=200, num_test=200),
        train=TrainConfig(epochs=30, batch_size=8, eval_batch_size=64, log_every=50),
    )


def paper_medtest() -> Config:
    """A TRECVID MEDTest-style bag file (per-segment features with video ids and event labels,
    concept scores and vectors; see frugalcv.data.mil.BAG_FILE_KEYS): ``--data.path=train.npz
    --data.test_path=test.npz``. The paper's features and splits are LDC-licensed: bring your own.
    """
    return Config(data=DataConfig(name="file", path="medtest_train.npz", test_path="medtest.npz"))


def paper_mnist_bags() -> Config:
    """MNIST-bags as in Ilse et al. (target 9, bag size N(10, 2), 200 training bags), full MNIST
    from ``$FRUGALCV_DATA/MNIST/raw`` when present; no semantic vectors, so the semantic term is
    off. Instances are a fixed 64-d random projection of the pixels (on raw 784-d pixels mi-SVM's
    LinearSVC takes about 10 minutes; Ilse et al. used a LeNet on the images)."""
    return Config(
        data=DataConfig(
            name="mnist-bags", num_train=200, num_test=1000, mnist_features="projection"
        ),
        medmil=MedMilConfig(rows=tuple(r for r in ROWS if r != "no_semantic"), semantics="none"),
    )


def paper_musk1() -> Config:
    """Musk1 (UCI ``clean1.data`` in ``$FRUGALCV_DATA/mil/``), one held-out half; no semantics."""
    return Config(
        data=DataConfig(name="musk1"),
        medmil=MedMilConfig(rows=tuple(r for r in ROWS if r != "no_semantic"), semantics="none"),
    )


PRESETS = {
    "tiny": tiny,
    "paper_medtest": paper_medtest,
    "paper_mnist_bags": paper_mnist_bags,
    "paper_musk1": paper_musk1,
}
