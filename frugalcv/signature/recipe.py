"""``sgn``: a CNN alone, CNN + MHA, SGN or SGN + MHA on one backbone (Hamdi et al., 2110.11551).

Ali Hamdi, Flora Salim, Du Yong Kim, Xiaojun Chang, "Signature-Graph Networks", arXiv 2110.11551.
One run trains ``model.variant`` (a :func:`frugalcv.signature.create_sgn_model` classifier trained
with cross-entropy), or every variant of ``model.variants`` from the same initialisation (one row
each, ``rows.json``). It also writes ``signature_graph.png``: the signature graph of the trained
``model.variant``'s feature map (channel group 0) drawn over the first test image.

Only the paper's abstract is public: backbone, schedule and every graph option are
reconstructions (``docs/methods/sgn.md``). The model options' defaults are read from
:func:`create_sgn_model`'s signature, so the recipe and the components cannot disagree.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from frugalcv.classify import ClassifyTask, make_loaders, model_extra
from frugalcv.core.config import ConfigError, OptimConfig, TrainConfig
from frugalcv.core.measure import to_module
from frugalcv.core.recipe import start_run, train_model, write_rows
from frugalcv.core.stages import train_rows
from frugalcv.signature.graph import group_channels
from frugalcv.signature.sgn import SGNModel, create_sgn_model

__all__ = [
    "PRESETS",
    "Config",
    "DataConfig",
    "ModelConfig",
    "SGNTask",
    "draw_model_graph",
    "load_data",
    "make_model",
    "run",
    "tiny",
]

Variant = Literal["cnn", "cnn_mha", "sgn", "sgn_mha"]  # = SGN_VARIANTS (tested)
Nodes = Literal["maxmin", "max"]  # = NODE_OPTIONS
Pairs = Literal["same", "all"]  # = PAIR_OPTIONS
Weight = Literal["bilateral", "value", "distance", "binary"]  # = WEIGHT_OPTIONS
Laplacian = Literal["normalized", "combinatorial"]  # = LAPLACIAN_OPTIONS
Aggregate = Literal["concat", "mean"]  # = AGGREGATE_OPTIONS

_MODEL_DEFAULTS = inspect.signature(create_sgn_model).parameters


def _default(name: str):
    """The default of ``create_sgn_model``'s argument ``name`` (the one source of defaults)."""
    return _MODEL_DEFAULTS[name].default


@dataclass
class DataConfig:
    name: str = "cifar10"  # IMAGE_DATASETS or TORCHVISION_DATASETS key (abstract: 96.18% SGN)
    root: str = ""  # "" = $FRUGALCV_DATA (embedded sets need neither)
    num_train: int = 0  # 0 = the data set's default size
    num_test: int = 0
    image_size: int = 0  # resize to this square side (px); 0 = native (STL-10 96, ASIRRA 64)
    augment: bool = True  # zero-pad (size/8 px) and random crop
    flip: bool = False  # horizontal flip (off for digits: mirroring changes their shape)
    verify_md5: bool = True  # SVHN / STL-10: check torchvision's md5 sums of the local files

    def validate(self) -> None:
        known = _dataset_names()
        if self.name not in known:
            import difflib

            close = difflib.get_close_matches(self.name, known, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"data.name '{self.name}' is not a known data set.{hint} Known: {', '.join(known)}."
            )
        if self.num_train < 0 or self.num_test < 0:
            raise ConfigError("data.num_train and data.num_test must be >= 0 (0 = default size).")
        if self.image_size < 0:
            raise ConfigError(f"data.image_size must be >= 0 (0 = native); got {self.image_size}.")


@dataclass
class ModelConfig:
    """The classifier; graph options as in :func:`frugalcv.signature.create_sgn_model`."""

    variant: Variant = "sgn_mha"  # abstract: SGN + MHA, STL10 86.92 -> 94.36
    # Non-empty: train each of these from one initialisation, one row each (must hold variant,
    # the model drawn in signature_graph.png).
    variants: tuple[Variant, ...] = ()
    backbone: str = "resnet20"  # [R] a frugalcv.zoo name; the paper's backbone is unknown
    patch_size: int = _default("patch_size")  # feature-map px [R]
    groups: int = _default("groups")  # channel groups, one graph each [R]
    aggregate: Aggregate = _default("aggregate")  # [R]
    spectral_dim: int = _default("spectral_dim")  # [R]
    embed_dim: int = _default("embed_dim")  # attention token width [R]
    num_heads: int = _default("num_heads")  # [R]
    dropout: float = _default("dropout")  # before the classifier [R]
    detach_graph: bool = _default("detach_graph")  # no backbone gradient via the graph [R]
    nodes: Nodes = _default("nodes")  # abstract: local maxima or minima of each patch
    pairs: Pairs = _default("pairs")  # [R]
    weight: Weight = _default("weight")  # [R]
    sigma_value: float = _default("sigma_value")  # normalised-value units [R]
    sigma_position: float = _default("sigma_position")  # patch units [R]
    normalize_values: bool = _default("normalize_values")  # [R]
    ceil_mode: bool = _default("ceil_mode")  # abstract: "equal" patches; True for 7x7 maps
    laplacian: Laplacian = _default("laplacian")  # [R]

    def validate(self) -> None:
        from frugalcv.zoo import MODELS

        if not (self.backbone in MODELS or self.backbone.startswith("timm/")):
            import difflib

            close = difflib.get_close_matches(self.backbone, list(MODELS), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"model.backbone '{self.backbone}' is not in the zoo.{hint} Use a name from "
                "frugalcv.zoo.MODELS or 'timm/<name>'."
            )
        if self.variants and self.variant not in self.variants:
            raise ConfigError(
                f"model.variant '{self.variant}' is not in model.variants {list(self.variants)}: "
                "set --model.variant to one of them (it names the model drawn in the figure)."
            )
        if len(set(self.variants)) != len(self.variants):
            raise ConfigError(f"model.variants repeats a variant: {list(self.variants)}.")
        for key in ("patch_size", "groups", "spectral_dim", "embed_dim", "num_heads"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key} must be >= 1; got {getattr(self, key)}.")
        if self.embed_dim % self.num_heads:
            raise ConfigError(
                f"model.embed_dim={self.embed_dim} must be a multiple of model.num_heads="
                f"{self.num_heads}."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must lie in [0, 1); got {self.dropout}.")
        for key in ("sigma_value", "sigma_position"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"model.{key} must be > 0; got {getattr(self, key)}.")

    @property
    def rows(self) -> tuple[str, ...]:
        return self.variants or (self.variant,)


@dataclass
class Config:
    data: DataConfig = field(default_factory=lambda: DataConfig(name="cifar10", flip=True))
    model: ModelConfig = field(default_factory=ModelConfig)
    # [R] the paper's optimiser is unknown: AdamW with cosine decay suits the attention block
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(
            name="adamw", lr=2e-3, weight_decay=5e-2, schedule="cosine", warmup_steps=200
        )
    )
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=100, batch_size=128))


def tiny() -> Config:
    """About 30 s on 2 CPU cores: tiny_cnn alone vs + SGN on 1500 embedded mnist5k digits."""
    return Config(
        data=DataConfig(name="mnist5k", num_train=1500, num_test=500),
        model=ModelConfig(
            variant="sgn", variants=("cnn", "sgn"), backbone="tiny_cnn", ceil_mode=True
        ),
        optim=OptimConfig(name="adamw", lr=3e-3, weight_decay=1e-4, schedule="cosine"),
        train=TrainConfig(epochs=6, batch_size=64, eval_every=0),
    )


def _paper(name: str, *, flip: bool, backbone: str = "resnet20", **model) -> Config:
    """A paper data set with the recipe's reconstructed defaults (module docstring)."""
    return Config(
        data=DataConfig(name=name, flip=flip),
        model=ModelConfig(backbone=backbone, **model),
    )


def paper_mnist() -> Config:
    """Full MNIST (abstract: 99.91%); 28 px -> 7x7 maps, so the last patches are 1 px wide."""
    return _paper("mnist", flip=False, ceil_mode=True)


def paper_fashion_mnist() -> Config:
    """Fashion-MNIST (abstract: 98.55%); 28 px -> 7x7 maps, ceil_mode as for MNIST."""
    return _paper("fashion-mnist", flip=True, ceil_mode=True)


def paper_cifar10() -> Config:
    """CIFAR-10 (abstract: 96.18%); 32 px -> 8x8 maps, 2x2 patches, a 4x4 grid."""
    return _paper("cifar10", flip=True)


def paper_cifar100() -> Config:
    """CIFAR-100 (abstract: 84.71%)."""
    return _paper("cifar100", flip=True)


def paper_stl10() -> Config:
    """STL-10 at 96 px (abstract: SGN + MHA 94.36%, 86.92% without SGN); 24x24 maps, 3x3
    patches (an 8x8 grid)."""
    return _paper("stl10", flip=True, patch_size=3)


def paper_svhn() -> Config:
    """SVHN cropped digits (abstract: 95.86%); no flip (digits)."""
    return _paper("svhn", flip=False)


def paper_asirra() -> Config:
    """ASIRRA cats vs dogs at 64 px (abstract: 99.65%); 16x16 maps, 2x2 patches (8x8 grid)."""
    return _paper("asirra", flip=True)


PRESETS = {
    "tiny": tiny,
    "paper_mnist": paper_mnist,
    "paper_fashion_mnist": paper_fashion_mnist,
    "paper_cifar10": paper_cifar10,
    "paper_cifar100": paper_cifar100,
    "paper_stl10": paper_stl10,
    "paper_svhn": paper_svhn,
    "paper_asirra": paper_asirra,
}


class SGNTask(ClassifyTask):
    """Cross-entropy, as :class:`frugalcv.classify.ClassifyTask`, plus the size of each branch.

    Logs ``graph_norm`` / ``attention_norm``: the mean L2 norm per image of the embedded
    spectrum ``E(λ)`` / of the pooled attention tokens (present only in variants that have the
    branch), so a run shows that its extra features are alive. ``x: (B, C, H, W)``, ``y: (B,)``.
    """

    def __init__(self, *, model: SGNModel, label_smoothing: float = 0.0) -> None:
        super().__init__(model=model, label_smoothing=label_smoothing)

    def _logits(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        head = self.model.head
        parts = head.forward_parts(self.model.forward_features(x))
        logits = head.fc(head.drop(torch.cat(list(parts.values()), 1)))
        norms = {f"{k}_norm": v.detach().norm(dim=1).mean() for k, v in parts.items() if k != "cnn"}
        return logits, norms

    def training_step(self, batch: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
        x, y = batch
        logits, norms = self._logits(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        return {"loss": loss, "acc": (logits.argmax(1) == y).float().mean().detach(), **norms}

    def validation_step(self, batch: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
        x, y = batch
        logits, norms = self._logits(x)
        acc = (logits.argmax(1) == y).float().mean()
        return {"loss": F.cross_entropy(logits, y), "acc": acc, **norms}


def _dataset_names() -> list[str]:
    from frugalcv.data import IMAGE_DATASETS
    from frugalcv.data.torchvision_sets import TORCHVISION_DATASETS

    return [*IMAGE_DATASETS, *(k for k in TORCHVISION_DATASETS if k not in IMAGE_DATASETS)]


def load_data(cfg: DataConfig, *, seed: int):
    """``frugalcv.data.load_images``, or the local torchvision copies (Fashion-MNIST, SVHN,
    STL-10, ASIRRA) of :mod:`frugalcv.data.torchvision_sets`; resized to ``cfg.image_size``."""
    from frugalcv.data import IMAGE_DATASETS, load_images
    from frugalcv.data.base import ImageData
    from frugalcv.data.torchvision_sets import TORCHVISION_DATASETS

    common = dict(
        root=cfg.root or None,
        seed=seed,
        num_train=cfg.num_train or None,
        num_test=cfg.num_test or None,
    )
    if cfg.name in IMAGE_DATASETS:
        data = load_images(cfg.name, **common)
    elif cfg.name in TORCHVISION_DATASETS:
        kwargs = dict(common)
        if cfg.name in ("svhn", "stl10"):
            kwargs["verify_md5"] = cfg.verify_md5
        if cfg.name in ("stl10", "asirra") and cfg.image_size:
            kwargs["image_size"] = cfg.image_size  # resized (and cropped) by the loader
        data = TORCHVISION_DATASETS[cfg.name](**kwargs)
    else:
        raise ValueError(f"unknown data set {cfg.name!r}; known: {', '.join(_dataset_names())}")
    if cfg.image_size and data.x_train.shape[-2:] != (cfg.image_size, cfg.image_size):
        size = (cfg.image_size, cfg.image_size)

        def resize(x: Tensor) -> Tensor:
            return F.interpolate(x, size=size, mode="bilinear", antialias=True).clamp_(0, 1)

        data = ImageData(
            data.name,
            resize(data.x_train),
            data.y_train,
            resize(data.x_test),
            data.y_test,
            data.num_classes,
            source=data.source,
        )
    return data


def make_model(cfg: ModelConfig, variant: str, data) -> SGNModel:
    """The ``variant`` classifier for ``data`` with the graph options of ``cfg``."""
    h, w = data.x_train.shape[-2:]
    try:
        return create_sgn_model(
            variant,
            num_classes=data.num_classes,
            in_chans=data.in_chans,
            image_size=(int(h), int(w)),
            backbone=cfg.backbone,
            patch_size=cfg.patch_size,
            groups=cfg.groups,
            aggregate=cfg.aggregate,
            spectral_dim=cfg.spectral_dim,
            embed_dim=cfg.embed_dim,
            num_heads=cfg.num_heads,
            dropout=cfg.dropout,
            detach_graph=cfg.detach_graph,
            nodes=cfg.nodes,
            pairs=cfg.pairs,
            weight=cfg.weight,
            sigma_value=cfg.sigma_value,
            sigma_position=cfg.sigma_position,
            normalize_values=cfg.normalize_values,
            ceil_mode=cfg.ceil_mode,
            laplacian=cfg.laplacian,
        )
    except ValueError as e:
        raise ConfigError(
            f"model: {e} (set --model.patch_size, --model.groups, --model.ceil_mode=true or "
            "--data.image_size to fit the feature map)"
        ) from None


@torch.no_grad()
def draw_model_graph(model: SGNModel, cfg: ModelConfig, image: Tensor, path: Path) -> dict:
    """Draw the signature graph of ``model``'s feature map (channel group 0) over ``image``.

    Args:
        image: ``(C, H, W)`` in [0, 1].
    """
    from frugalcv.signature.draw import draw_signature_graph

    was_training = model.training
    model.eval()
    f = model.forward_features(to_module(image[None], model))  # (1, C', h, w), model's device
    model.train(was_training)
    response = group_channels(f, cfg.groups)[0, 0].float().cpu()  # (h, w), for matplotlib
    return draw_signature_graph(
        image,
        path,
        response=response,
        patch_size=cfg.patch_size,
        nodes=cfg.nodes,
        pairs=cfg.pairs,
        weight=cfg.weight,
        sigma_value=cfg.sigma_value,
        sigma_position=cfg.sigma_position,
        normalize_values=cfg.normalize_values,
        ceil_mode=cfg.ceil_mode,
        title=f"{model.head.grid[0]}x{model.head.grid[1]} patches, group 0 of {cfg.groups}",
    )


_NOTICE = {
    "cnn": "the backbone alone: the baseline",
    "cnn_mha": "+ attention over patch tokens, no graph",
    "sgn": "+ signature-graph spectrum: compare with cnn",
    "sgn_mha": "+ spectrum and attention: compare with cnn_mha",
}


def run(cfg: Config, *, preset: str = "custom") -> dict:
    """Train ``cfg.model.variant`` (or each of ``cfg.model.variants``) on ``cfg.data``.

    Every variant starts from the same backbone initialisation (the torch seed is reset to
    ``train.seed`` before each model is built) and sees the same data and schedule.
    """
    ctx = start_run(cfg, recipe="sgn", preset=preset)
    data = load_data(cfg.data, seed=cfg.train.seed)
    loaders = make_loaders(data, cfg)
    mcfg = cfg.model

    def extra(variant: str, task: SGNTask) -> dict:
        return {
            "dataset": data.name,
            "data_source": data.source,
            "data_fingerprint": data.fingerprint,
            "backbone": mcfg.backbone,
            "variant": variant,
            **model_extra(task.deployable(), data),
        }

    models: dict[str, nn.Module] = {}  # variant -> trained model (for the figure)

    def make_task(variant: str) -> SGNTask:
        task = SGNTask(model=make_model(mcfg, variant, data))
        models[variant] = task.deployable()
        return task

    if mcfg.variants:
        rows = train_rows(
            ctx, cfg, rows=mcfg.variants, make_task=make_task, loaders=loaders, extra=extra
        )
        result = write_rows(ctx, dataset=data.name, rows=rows)
    else:
        torch.manual_seed(cfg.train.seed)  # the same init as a train_rows row of this seed
        task = make_task(mcfg.variant)
        rows = [
            train_model(
                ctx,
                cfg,
                task=task,
                loaders=loaders,
                name=mcfg.variant,
                extra=extra(mcfg.variant, task),
            )
        ]
        result = rows[0]
    if ctx.is_main:
        figure = ctx.out_dir / "signature_graph.png"
        draw_model_graph(models[mcfg.variant], mcfg, data.x_test[0], figure)
        for row in rows:
            acc = row["final"].get("acc")
            print(f"{row['name']:>8}: test acc {acc:.4f}  ({_NOTICE[row['name']]})")
        print(f"figure: {figure}")
    return result
