"""The ``zsl`` recipe's configuration: method and data names, typed config sections, presets."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from frugalcv.core.config import ConfigError, OptimConfig, TrainConfig

__all__ = [
    "CLOSED_FORM",
    "METRICS",
    "PRESETS",
    "BGSNetConfig",
    "BaselineConfig",
    "Config",
    "DataConfig",
    "DataName",
    "ERPCNetConfig",
    "Method",
    "ZSLConfig",
    "paper_apy",
    "paper_awa2",
    "paper_images",
    "tiny",
]

Method = Literal["eszsl", "attr_regression", "bilinear", "bgsnet", "erpcnet"]
DataName = Literal["attr-shapes", "zsl-digits", "zsl-digits5k", "xlsa17", "zsl-images"]
CLOSED_FORM = ("eszsl", "attr_regression")
METRICS = ("zsl_top1", "gzsl_unseen", "gzsl_seen", "gzsl_h")


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
