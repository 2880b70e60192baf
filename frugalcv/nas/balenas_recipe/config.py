"""The ``balenas`` config: the search section, the recipe's Config and its presets."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from frugalcv.classify import DataConfig
from frugalcv.core.config import ConfigError, OptimConfig, TrainConfig

__all__ = ["PRESETS", "Config", "SearchConfig", "paper_cifar10", "paper_imagenet16", "tiny"]


Searcher = Literal["random", "darts1", "darts2", "balenas", "balenas_tf"]
Proxy = Literal["naswot", "jacob_cov", "synflow", "snip", "grad_norm"]  # = nas.PROXIES (tested)
GRADIENT_SEARCHERS = ("darts1", "darts2", "balenas", "balenas_tf")
BAYESIAN_SEARCHERS = ("balenas", "balenas_tf")


@dataclass
class SearchConfig:
    """Stage 1: the searcher, the supernet and the search's own schedule.

    Defaults: NAS-Bench-201's DARTS search (AutoDL-Projects ``configs/nas-benchmark/algos/
    DARTS.config`` and ``scripts-search/NAS-Bench-201-algos/DARTS-V1.sh``) and the BaLeNAS
    authors' Vadam settings (``miaozhang0525/iDARTS`` ``idarts_v2/architect.py``); research notes
    shared/research/nas_sgn.md sections 1.2, 1.4 and 3.4.
    """

    searcher: Searcher = "balenas"
    channels: int = 16  # C of the first stage (NB201 benchmark: 16)
    num_cells: int = 5  # N cells per stage (NB201 benchmark: 5)
    track_running_stats: bool = True  # BN flag of the search cells (AutoDL --track_running_stats)
    epochs: float = 50  # search epochs (AutoDL DARTS.config; iDARTS' notebook uses 30)
    batch_size: int = 64  # per half (AutoDL DARTS.config)
    train_portion: float = 0.5  # share of the training split that trains w; the rest fits alpha
    lr: float = 0.025  # supernet SGD lr, cosine down to lr_min (AutoDL DARTS.config)
    lr_min: float = 0.001  # cosine floor (AutoDL DARTS.config eta_min)
    momentum: float = 0.9  # (AutoDL DARTS.config)
    weight_decay: float = 5e-4  # (AutoDL DARTS.config; quark0/darts CIFAR: 3e-4)
    nesterov: bool = True  # (AutoDL DARTS.config)
    grad_clip: float = 5.0  # max norm of the weight gradients (AutoDL DARTS-V1.py, DARTS)
    arch_lr: float = 3e-4  # Adam / Vadam lr on alpha, fixed (DARTS; BaLeNAS architect.py)
    arch_betas: tuple[float, float] = (0.5, 0.999)  # (DARTS; BaLeNAS architect.py)
    arch_weight_decay: float = 1e-3  # DARTS' Adam only; Vadam's prior acts instead (DARTS)
    balenas_order: Literal["first", "second"] = "first"  # alpha gradient of BaLeNAS (reconstr.)
    prior_prec: float = 1.0  # Vadam prior precision lambda (Vadam default; BaLeNAS keeps it)
    prec_init: float = 1.0  # initial posterior precision, sigma_0 = 1 (BaLeNAS architect.py)
    train_set_size: int = 0  # Vadam N; 0 = images in the alpha half (BaLeNAS: 25000 on CIFAR-10)
    num_mc: int = 1  # Monte Carlo samples per alpha step (iDARTS NB201 notebook: 1)
    tf_samples: int = 100  # K cells drawn from q(alpha) for BaLeNAS-TF (reconstruction)
    tf_proxy: Proxy = "naswot"  # training-free proxy of BaLeNAS-TF (reconstruction)
    tf_batch: int = 64  # images of the training half the proxy sees (zero-cost-nas: one batch)
    random_samples: int = 10  # cells the random searcher trains (reconstruction; same steps)
    hessian_every: float = 1  # epochs between Hessian records (0 = off); also at epoch 0
    hessian_batch: int = 64  # images of the alpha half, fixed (Zela et al.: a validation batch)
    hessian_iters: int = 20  # power-iteration steps (Hessian-vector products), at most
    hessian_tol: float = 1e-3  # relative change that stops the power iteration
    eval_size: int = 512  # images of the alpha half the supernet is scored on each epoch
    ckpt: str = ""  # search folder (or its last.pt) of an earlier balenas(_tf) run; "" = search
    nb201_csv: str = ""  # NAS-Bench-201 table (CSV) to look the found cell up in; "" = none

    def validate(self) -> None:
        for key in ("channels", "num_cells", "batch_size", "num_mc", "tf_samples", "tf_batch"):
            if getattr(self, key) < 1:
                raise ConfigError(f"search.{key} must be >= 1; got {getattr(self, key)}.")
        for key in ("random_samples", "hessian_batch", "hessian_iters", "eval_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"search.{key} must be >= 1; got {getattr(self, key)}.")
        for key in ("epochs", "lr", "arch_lr", "prior_prec", "hessian_tol"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"search.{key} must be a finite number > 0; got {value}.")
        if not 0.0 < self.train_portion < 1.0:
            raise ConfigError(
                f"search.train_portion must be in (0, 1) (DARTS: 0.5); got {self.train_portion}."
            )
        if not 0.0 <= self.lr_min <= self.lr:
            raise ConfigError(
                f"search.lr_min must be in [0, search.lr={self.lr}]; got {self.lr_min}."
            )
        for key in ("momentum", "weight_decay", "grad_clip", "arch_weight_decay", "hessian_every"):
            if getattr(self, key) < 0:
                raise ConfigError(f"search.{key} must be >= 0; got {getattr(self, key)}.")
        if not all(0.0 <= b < 1.0 for b in self.arch_betas):
            raise ConfigError(f"search.arch_betas must be in [0, 1); got {self.arch_betas}.")
        if self.prec_init < self.prior_prec:
            raise ConfigError(
                f"search.prec_init ({self.prec_init}) must be >= search.prior_prec "
                f"({self.prior_prec}): Vadam's initial squared-gradient state would be negative."
            )
        if self.train_set_size < 0:
            raise ConfigError(
                f"search.train_set_size must be >= 0 (0 = the alpha half); got "
                f"{self.train_set_size}."
            )
        if self.nb201_csv and not Path(self.nb201_csv).expanduser().is_file():
            raise ConfigError(
                f"search.nb201_csv: no NAS-Bench-201 table at {self.nb201_csv}. Pass a CSV with "
                f"an arch column and accuracy columns (docs/methods/balenas.md), or leave it ''."
            )
        if self.ckpt and self.searcher not in BAYESIAN_SEARCHERS:
            raise ConfigError(
                f"search.ckpt reuses a BaLeNAS search (it needs the Vadam state); it does not "
                f"apply to search.searcher={self.searcher}: set search.ckpt='' or searcher "
                f"balenas / balenas_tf."
            )


@dataclass
class Config:
    data: DataConfig = field(
        default_factory=lambda: DataConfig(name="cifar10", augment=True, flip=True)
    )
    search: SearchConfig = field(default_factory=SearchConfig)
    # Stage 2, training the found cell from scratch: NAS-Bench-201's protocol (AutoDL
    # configs/nas-benchmark/hyper-opts/200E.config): SGD Nesterov 0.1, cosine to 0, wd 5e-4,
    # batch 256, 200 epochs.
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(
            name="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True, schedule="cosine"
        )
    )
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=200, batch_size=256))


def tiny() -> Config:
    """About a minute on 2 cores: sklearn digits (8x8), C = 8, N = 1, BaLeNAS search 15 epochs,
    the found cell trained 30 epochs. Compare ``--search.searcher=darts1``."""
    return Config(
        data=DataConfig(name="digits", augment=False, flip=False),
        search=SearchConfig(
            channels=8,
            num_cells=1,
            epochs=15,
            batch_size=32,
            tf_samples=20,
            tf_batch=32,
            random_samples=5,
            hessian_batch=64,
            eval_size=256,
        ),
        optim=OptimConfig(name="sgd", lr=0.05, weight_decay=5e-4, nesterov=True, schedule="cosine"),
        train=TrainConfig(epochs=30, batch_size=64),
    )


def paper_cifar10() -> Config:
    """NAS-Bench-201 on CIFAR-10: C = 16, N = 5, 50 search epochs on 25k/25k halves (Vadam
    N = 25000, the authors' value), then 200 epochs from scratch. Needs the data and a GPU."""
    return Config()


def paper_imagenet16() -> Config:
    """NAS-Bench-201 on ImageNet16-120 (120 classes), as paper_cifar10.

    Expects the set exported to an ImageNet-layout folder (``--data.root``); the ``imagefolder``
    loader reads images at 64 x 64 (the benchmark's are 16 x 16): frugalcv has no reader of the
    ImageNet16 pickles yet. Needs the data and a GPU.
    """
    return Config(data=DataConfig(name="imagefolder", augment=True, flip=True))


PRESETS = {"tiny": tiny, "paper_cifar10": paper_cifar10, "paper_imagenet16": paper_imagenet16}
