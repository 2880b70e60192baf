"""``balenas``: search a NAS-Bench-201 cell, then train the found cell from scratch.

Miao Zhang et al., "BaLeNAS: Differentiable Architecture Search via the Bayesian Learning Rule",
CVPR 2022 (arXiv 2111.13204), against DARTS (Liu et al., ICLR 2019) first and second order and
random search, in the NAS-Bench-201 space (Dong & Yang, ICLR 2020).

Stage 1, ``<run>/search``: ``search.searcher`` picks the cell.

- ``darts1`` / ``darts2``: :class:`~frugalcv.nas.DartsSearchTask` (SGD on the supernet weights,
  Adam on alpha), argmax of alpha per edge.
- ``balenas``: :class:`~frugalcv.nas.BaLeNASTask` (Vadam on alpha: q(alpha) = N(mu, sigma^2)),
  argmax of mu per edge.
- ``balenas_tf``: the same search, then K cells drawn from q(alpha) and the best by a
  training-free proxy at initialisation (:func:`~frugalcv.nas.balenas_tf_select`).
  ``search.ckpt`` reuses an earlier ``balenas``/``balenas_tf`` search folder instead of searching
  again (the benchmark shares one search between the BaLeNAS and BaLeNAS-TF rows).
- ``random``: ``search.random_samples`` cells drawn uniformly; each trains stand-alone on the
  search's training half for ``search.epochs / search.random_samples`` epochs (so all candidates
  together take as many weight steps as a supernet search) and the best accuracy on the other
  half wins (a reconstruction: the NB201 paper's random search reads the benchmark's table).

The gradient searchers run through the shared ``fit`` with :class:`SearchDiagnostics`, a hook that
records per epoch the dominant eigenvalue of the validation-loss Hessian w.r.t. alpha (Zela et al.
2020) and the skip-connection share of the derived cell, written to ``search/diagnostics.json``
and plotted to ``search/diagnostics.png``.

Stage 2, ``<run>/retrain``: the found cell as an :class:`~frugalcv.nas.NB201Network`, trained
from scratch on the whole training split with ``optim``/``train`` (NB201's 200-epoch protocol in
the paper presets); its summary carries the search's cost and diagnostics.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import torch
from torch import Tensor, nn

from frugalcv.classify import ClassifyTask, DataConfig, load_data, make_loaders, model_extra
from frugalcv.core.checkpoint import load_checkpoint, load_model
from frugalcv.core.config import ConfigError, OptimConfig, TrainConfig
from frugalcv.core.hooks import Hook
from frugalcv.core.jsonio import read_json, write_json
from frugalcv.core.loader import TensorLoader, random_crop_flip
from frugalcv.core.measure import module_device, to_module
from frugalcv.core.recipe import start_run, write_rows
from frugalcv.core.stages import train_stage
from frugalcv.data.base import stratified_split, stream_generator
from frugalcv.nas.diagnostics import arch_hessian_max_eigenvalue, skip_share
from frugalcv.nas.lookup import NB201Lookup
from frugalcv.nas.nb201 import NB201Network, NB201Supernet, nb201_derive, sample_nb201_arch
from frugalcv.nas.proxies import balenas_tf_select
from frugalcv.nas.search import BaLeNASTask, DartsSearchTask, random_search

__all__ = [
    "PRESETS",
    "Config",
    "SearchConfig",
    "SearchDiagnostics",
    "SearchLoader",
    "cosine_floor",
    "make_search_task",
    "paper_cifar10",
    "paper_imagenet16",
    "run",
    "search_step_cost",
    "tiny",
]

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


# ----------------------------------------------------------------------------- search data
class SearchLoader:
    """Search batches ``(x_train, y_train, x_val, y_val)`` from two independently shuffled halves.

    One minibatch of the half that trains the weights and one of the half that fits alpha per
    step (DARTS draws the two from two loaders). Same contract as :class:`TensorLoader`
    (``__len__`` = the shorter half's batches, ``set_epoch``, ``shard``, ``iter_from``), so the
    shared loop resumes mid-epoch and shards it under DDP.
    """

    def __init__(self, train: TensorLoader, val: TensorLoader) -> None:
        self.train, self.val = train, val

    def __len__(self) -> int:
        return min(len(self.train), len(self.val))

    def set_epoch(self, epoch: int) -> None:
        self.train.set_epoch(epoch)
        self.val.set_epoch(epoch)

    def shard(self, *, rank: int, world_size: int) -> SearchLoader:
        return SearchLoader(
            self.train.shard(rank=rank, world_size=world_size),
            self.val.shard(rank=rank, world_size=world_size),
        )

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        return self.iter_from(0)

    def iter_from(self, start: int) -> Iterator[tuple[Tensor, ...]]:
        pairs = zip(self.train.iter_from(start), self.val.iter_from(start), strict=False)
        for _, (a, b) in zip(range(start, len(self)), pairs, strict=False):
            yield (*a, *b)


def split_halves(data, s: SearchConfig, *, seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Stratified split of the training split: (x_w, y_w) trains the weights, (x_a, y_a) alpha."""
    n_alpha = round(len(data.y_train) * (1.0 - s.train_portion))
    if not 0 < n_alpha < len(data.y_train):
        raise ValueError(
            f"search.train_portion={s.train_portion} leaves an empty half of the "
            f"{len(data.y_train)} training images: use a value nearer 0.5 or more data."
        )
    gen = stream_generator(seed, 7)  # stream 7: the search split (other streams build the data)
    x_w, y_w, x_a, y_a = stratified_split(data.x_train, data.y_train, n_alpha, generator=gen)
    return x_w, y_w, x_a, y_a


def _augment(cfg: Config, image_size: int):
    if not (cfg.data.augment or cfg.data.flip):
        return None
    pad = max(1, image_size // 8) if cfg.data.augment else 0  # as classify.make_loaders
    return random_crop_flip(pad=pad, flip=cfg.data.flip)


def cosine_floor(step: int, total: int, per_epoch: int, *, floor: float) -> float:
    """Cosine from 1 to ``floor`` over ``total`` steps (DARTS' CosineAnnealingLR to lr_min)."""
    t = min(1.0, step / max(1, total))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))


def _stage_cfg(cfg: Config, *, epochs: float, eval_every: int = 0) -> SimpleNamespace:
    """``train``/``optim`` for a search-side fit (the supernet or a random candidate)."""
    s = cfg.search
    train = dataclasses.replace(
        cfg.train,
        epochs=epochs,
        max_steps=0,
        batch_size=s.batch_size,
        grad_clip=s.grad_clip,
        eval_every=eval_every,
        ckpt_every=0,
        monitor="",
        monitor_mode="",
    )
    optim = OptimConfig(
        name="sgd",
        lr=s.lr,
        momentum=s.momentum,
        weight_decay=s.weight_decay,
        nesterov=s.nesterov,
        schedule="cosine",
        warmup_steps=0,
    )
    return SimpleNamespace(train=train, optim=optim)


# ----------------------------------------------------------------------------- search tasks
def make_search_task(
    s: SearchConfig, *, num_classes: int, in_channels: int, alpha_set_size: int
) -> tuple[DartsSearchTask, list[torch.optim.Optimizer]]:
    """The search Task of ``s.searcher`` on a fresh NB201 supernet, with its two optimizers.

    Args:
        alpha_set_size: images in the half that fits alpha (Vadam's N when
            ``s.train_set_size`` is 0).

    Returns:
        ``(task, [SGD on the weights, Adam or Vadam on alpha])``.
    """
    if s.searcher not in GRADIENT_SEARCHERS:
        raise ValueError(
            f"make_search_task builds the gradient searchers {GRADIENT_SEARCHERS}; "
            f"got {s.searcher!r} (random search trains stand-alone cells)."
        )
    supernet = NB201Supernet(
        channels=s.channels,
        num_cells=s.num_cells,
        num_classes=num_classes,
        in_channels=in_channels,
        track_running_stats=s.track_running_stats,
    )
    weights = dict(lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay, nesterov=s.nesterov)
    if s.searcher in BAYESIAN_SEARCHERS:
        task: DartsSearchTask = BaLeNASTask(supernet=supernet, order=s.balenas_order)
        optimizers = task.make_optimizers(
            **weights,
            arch_lr=s.arch_lr,
            arch_betas=tuple(s.arch_betas),
            prior_prec=s.prior_prec,
            prec_init=s.prec_init,
            train_set_size=s.train_set_size or alpha_set_size,
            num_samples=s.num_mc,
        )
    else:
        task = DartsSearchTask(
            supernet=supernet, order="first" if s.searcher == "darts1" else "second"
        )
        optimizers = task.make_optimizers(
            **weights,
            arch_lr=s.arch_lr,
            arch_betas=tuple(s.arch_betas),
            arch_weight_decay=s.arch_weight_decay,
        )
    return task, optimizers


class SearchDiagnostics(Hook):
    """Per-epoch stability record of a differentiable search, saved in checkpoints.

    At step 0 and every ``every`` epochs (and at the end) it records, for the supernet of
    ``state.task``: ``hessian`` = the dominant eigenvalue of d^2 L_val / d alpha^2 on a fixed
    validation batch (power iteration, :func:`arch_hessian_max_eigenvalue`, supernet in train
    mode as during search, BN statistics restored afterwards), ``arch`` = the derived cell,
    ``skip_share`` and, for a Vadam optimizer, ``sigma_mean`` / ``sigma_min`` of q(alpha). It
    also times the steps: ``step_s`` is the median wall time between consecutive steps, leaving
    out the step after each record or evaluation. Writes ``diagnostics.json`` (atomic) after each
    record and ``diagnostics.png`` at the end (files from rank 0 only).

    Args:
        x, y: the validation batch, ``(B, C, H, W)`` and ``(B,)``.
        every: epochs between records (0: only at steps 0 and the last).
        num_iters, tol: power-iteration limits.
    """

    def __init__(
        self, *, x: Tensor, y: Tensor, every: float = 1.0, num_iters: int = 20, tol: float = 1e-3
    ) -> None:
        self.x, self.y = x, y
        self.every = every
        self.num_iters, self.tol = num_iters, tol
        self.records: list[dict[str, Any]] = []
        self.step_times: list[float] = []
        self._last: float | None = None
        self._out: Path | None = None

    # --- state (checkpointed by the loop) ---
    def state_dict(self) -> dict[str, Any]:
        return {"records": self.records, "step_times": self.step_times}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.records = [dict(r) for r in d["records"]]
        self.step_times = [float(t) for t in d["step_times"]]

    # --- events ---
    def before_train(self, state: Any) -> None:
        self._out = Path(state.out_dir)
        self._last = None
        if state.step == 0 and not self.records:
            self._record(state)

    def after_step(self, state: Any) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.step_times.append(now - self._last)
        per = state.steps_per_epoch
        every_steps = max(1, round(self.every * per)) if self.every > 0 else 0
        due = state.step == state.total_steps or (every_steps and state.step % every_steps == 0)
        if due:
            self._record(state)
        # the next interval holds this record and possibly an evaluation: do not time it
        evaluated = state.step % per == 0
        self._last = None if (due or evaluated) else time.perf_counter()

    def after_train(self, state: Any) -> None:
        if state.fabric.is_global_zero and self.records:
            plot_diagnostics(self.records, Path(state.out_dir) / "diagnostics.png")

    # --- helpers ---
    def step_seconds(self) -> float | None:
        """Median seconds per search step (None before two steps were timed)."""
        return statistics.median(self.step_times) if self.step_times else None

    def _record(self, state: Any) -> None:
        # Every rank computes the record (no collectives; DDP replicas are identical), so every
        # rank's recipe sees the same diagnostics; rank 0 writes the file.
        supernet = state.task.supernet
        rec: dict[str, Any] = {
            "step": int(state.step),
            "epoch": round(state.step / state.steps_per_epoch, 4),
        }
        saved = {k: b.detach().clone() for k, b in supernet.named_buffers()}
        x, y = to_module(self.x, supernet), self.y.to(module_device(supernet))
        with torch.random.fork_rng(devices=[]):
            gen = torch.Generator().manual_seed(int(state.step))
            rec["hessian"] = arch_hessian_max_eigenvalue(
                supernet, x, y, num_iters=self.num_iters, tol=self.tol, generator=gen
            )
        with torch.no_grad():  # the extra forward passes must not move the BN statistics
            for k, b in supernet.named_buffers():
                b.copy_(saved[k])
        arch = supernet.derive()
        rec["arch"] = str(arch)
        rec["skip_share"] = skip_share(arch)
        for opt in state.optimizers:
            if callable(getattr(opt, "sigma", None)):
                sigma = torch.cat([s.flatten() for s in opt.sigma()])
                rec["sigma_mean"] = float(sigma.mean())
                rec["sigma_min"] = float(sigma.min())
        self.records.append(rec)
        if state.fabric.is_global_zero:
            write_json(self._out / "diagnostics.json", {"records": self.records})


def plot_diagnostics(records: Sequence[dict], path: Path) -> None:
    """PNG of the Hessian eigenvalue and the skip share per epoch (matplotlib Agg, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 3.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    with_h = [r for r in records if "hessian" in r]
    ax1.plot([r["epoch"] for r in with_h], [r["hessian"] for r in with_h], marker="o")
    ax1.set(xlabel="epoch", ylabel="dominant eigenvalue", title="Hessian of L_val w.r.t. alpha")
    ax2.plot([r["epoch"] for r in records], [r["skip_share"] for r in records], marker="o")
    ax2.set(xlabel="epoch", ylabel="share of edges", title="skip_connect in the derived cell")
    ax2.set_ylim(-0.05, 1.05)
    fig.savefig(path, dpi=110)


# ----------------------------------------------------------------------------- cost
class _StepProbe(nn.Module):
    """``forward(x)`` runs one full search step (alpha step + weight step) on a fixed batch."""

    def __init__(self, task: DartsSearchTask, optimizers, batch) -> None:
        super().__init__()
        self.task = task
        self.optimizers = optimizers
        self.batch = batch

    def forward(self, x: Tensor) -> Tensor:
        with torch.enable_grad():
            losses = self.task.step(
                self.batch, forward=self.task, optimizers=self.optimizers, fabric=None
            )
        return losses["loss"].detach()


def search_step_cost(
    s: SearchConfig,
    batch: tuple[Tensor, Tensor, Tensor, Tensor],
    *,
    num_classes: int,
    alpha_set_size: int,
    steps: int = 10,
    device: str | torch.device = "cpu",
    memory: bool = True,
) -> dict[str, float]:
    """Median seconds of one search step and its peak memory, on a fresh supernet.

    After 2 warm-up steps (optimizer state allocated), ``steps`` steps are timed; the peak memory
    is :func:`frugalcv.core.measure.peak_memory` of one more step (its conventions: parameters,
    buffers and ``x_train`` resident, plus the peak of allocations during the step; optimizer
    state allocated before). The global RNG is left untouched.

    Returns:
        ``{"step_s": float, "peak_memory_bytes": int}`` (the latter only with ``memory``).
    """
    from frugalcv.core.measure import peak_memory

    device = torch.device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        task, optimizers = make_search_task(
            s,
            num_classes=num_classes,
            in_channels=batch[0].shape[1],
            alpha_set_size=alpha_set_size,
        )
        task.to(device).train()
        batch = tuple(t.to(device) for t in batch)
        probe = _StepProbe(task, optimizers, batch)
        times = []
        for i in range(steps + 2 if steps > 0 else 1):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            probe(batch[0])
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i >= 2:
                times.append(time.perf_counter() - t0)
        out: dict[str, float] = {"step_s": statistics.median(times)} if times else {}
        if memory:
            out["peak_memory_bytes"] = peak_memory(probe, batch[0], device=device, train=False)
    return out


# ----------------------------------------------------------------------------- stages
def _net(cfg: Config, arch: str, data) -> NB201Network:
    s = cfg.search
    return NB201Network(
        arch=arch,
        channels=s.channels,
        num_cells=s.num_cells,
        num_classes=data.num_classes,
        in_channels=data.in_chans,
    )


def _search_dir(path: str) -> Path:
    p = Path(path)
    folder = p.parent if p.is_file() else p
    if not (folder / "last.pt").is_file():
        raise FileNotFoundError(
            f"search.ckpt={path}: no last.pt there. Pass the search folder of an earlier balenas "
            f"or balenas_tf run (runs/balenas/<preset>/search) or its last.pt."
        )
    return folder


def _gradient_search(ctx, cfg: Config, data, halves) -> tuple[str, dict, dict]:
    """Stage 1 of the gradient searchers; returns (arch, search summary, retrain extras)."""
    s = cfg.search
    x_w, y_w, x_a, y_a = halves
    torch.manual_seed(cfg.train.seed)  # every searcher starts from the same supernet
    task, optimizers = make_search_task(
        s, num_classes=data.num_classes, in_channels=data.in_chans, alpha_set_size=len(y_a)
    )
    hook = SearchDiagnostics(
        x=x_a[: s.hessian_batch],
        y=y_a[: s.hessian_batch],
        every=s.hessian_every,
        num_iters=s.hessian_iters,
        tol=s.hessian_tol,
    )
    transform = _augment(cfg, data.image_size)
    loader = SearchLoader(
        TensorLoader(
            (x_w, y_w),
            batch_size=s.batch_size,
            shuffle=True,
            seed=cfg.train.seed,
            drop_last=True,
            transform=transform,
        ),
        TensorLoader(
            (x_a, y_a),
            batch_size=s.batch_size,
            shuffle=True,
            seed=cfg.train.seed + 1,
            drop_last=True,
            transform=transform,
        ),
    )
    val = TensorLoader((x_a[: s.eval_size], y_a[: s.eval_size]), batch_size=256)
    if s.ckpt:
        folder = _search_dir(s.ckpt)
        load_model(task, folder)
        state = load_checkpoint(folder / "last.pt")
        vadam_state = state["optimizers"][1]
        if "prior_prec" not in vadam_state["param_groups"][0]:
            raise ValueError(
                f"search.ckpt={s.ckpt} was not written by a balenas search (its alpha optimizer "
                f"is not Vadam): pass the search folder of a balenas or balenas_tf run."
            )
        optimizers[1].load_state_dict(vadam_state)
        search_summary = {**read_json(folder / "summary.json"), "loaded_from": str(folder)}
        records = read_json(folder / "diagnostics.json")["records"]
        step_s = search_summary.get("step_s")
    else:
        stage = _stage_cfg(cfg, epochs=s.epochs)
        sched = functools.partial(cosine_floor, floor=s.lr_min / s.lr)
        _, search_summary = train_stage(
            ctx,
            stage,
            name="search",
            task=task,
            loaders=(loader, val),
            optimizers=optimizers,
            schedules=[sched, None],  # the alpha lr stays fixed (DARTS, BaLeNAS)
            hooks=[hook],
        )
        records, step_s = hook.records, hook.step_seconds()
        if step_s is not None and ctx.is_main:  # the timing, for runs that reuse this search
            search_summary = {**search_summary, "step_s": step_s}
            write_json(ctx.out_dir / "search" / "summary.json", search_summary)
    last = records[-1]
    extra: dict[str, Any] = {
        "argmax_arch": task.derive(),
        "skip_share_argmax": last["skip_share"],
        "hessian_first": next((r["hessian"] for r in records if "hessian" in r), None),
        "hessian_final": next((r["hessian"] for r in reversed(records) if "hessian" in r), None),
        "search_s": search_summary.get("wall_s"),
        "search_s_per_epoch": None if step_s is None else step_s * len(loader),
        "search_steps": search_summary.get("steps"),
        "supernet_val_acc": search_summary.get("final", {}).get("acc"),
    }
    if "sigma_mean" in last:
        extra.update(sigma_mean=last["sigma_mean"], sigma_min=last["sigma_min"])
    arch = extra["argmax_arch"]
    if s.searcher == "balenas_tf":
        t0 = time.perf_counter()
        sel_path = ctx.out_dir / "tf_selection.json"
        if sel_path.is_file():  # a resumed run: the saved selection, not a recomputed one
            sel = read_json(sel_path)
        else:
            mu, sigma = BaLeNASTask.arch_distribution(optimizers[1])
            with torch.random.fork_rng(devices=[]):
                chosen = balenas_tf_select(
                    mu,
                    sigma,
                    decode=lambda a: nb201_derive(a[0]),
                    build_network=lambda a: _net(cfg, a, data),
                    x=x_w[: s.tf_batch].to(ctx.fabric.device),
                    y=y_w[: s.tf_batch].to(ctx.fabric.device),
                    proxy=s.tf_proxy,
                    num_samples=s.tf_samples,
                    generator=torch.Generator().manual_seed(cfg.train.seed),
                    init_seed=cfg.train.seed,
                )
            sel = {
                "arch": chosen.arch,
                "score": chosen.score,
                "proxy": s.tf_proxy,
                "num_samples": s.tf_samples,
                "seconds": round(time.perf_counter() - t0, 2),
                "candidates": [
                    {"arch": a, "score": sc, "count": chosen.counts[a]}
                    for a, sc in chosen.scores.items()
                ],
            }
            if ctx.is_main:
                write_json(sel_path, sel)
        arch = sel["arch"]
        extra.update(
            tf_score=sel["score"],
            tf_distinct=len(sel["candidates"]),
            tf_select_s=sel["seconds"],
        )
    return arch, search_summary, extra


def _random_search(ctx, cfg: Config, data, halves) -> tuple[str, dict, dict]:
    """Stage 1 of random search: train each drawn cell briefly, keep the best on the alpha half."""
    s = cfg.search
    x_w, y_w, x_a, y_a = halves
    epochs = s.epochs / s.random_samples  # all candidates together: the supernet's weight steps
    stage = _stage_cfg(cfg, epochs=epochs)
    train = TensorLoader(
        (x_w, y_w),
        batch_size=s.batch_size,
        shuffle=True,
        seed=cfg.train.seed,
        drop_last=True,
        transform=_augment(cfg, data.image_size),
    )
    val = TensorLoader((x_a, y_a), batch_size=256)
    sched = functools.partial(cosine_floor, floor=s.lr_min / s.lr)
    t0 = time.perf_counter()
    summaries: list[dict] = []

    def score(arch: str) -> float:
        torch.manual_seed(cfg.train.seed)
        task = ClassifyTask(model=_net(cfg, arch, data))
        opt = torch.optim.SGD(
            task.model.parameters(),
            lr=s.lr,
            momentum=s.momentum,
            weight_decay=s.weight_decay,
            nesterov=s.nesterov,
        )
        _, summary = train_stage(
            ctx,
            stage,
            name=f"search/cand{len(summaries)}",
            task=task,
            loaders=(train, val),
            optimizers=[opt],
            schedules=[sched],
        )
        summaries.append({**summary, "arch": arch})
        return summary["final"]["acc"]

    result = random_search(
        sample=sample_nb201_arch, score=score, num_samples=s.random_samples, seed=cfg.train.seed
    )
    seconds = time.perf_counter() - t0
    search_summary = {
        "name": "search",
        "searcher": "random",
        "chosen": result.best,
        "chosen_val_acc": result.best_score,
        "candidates": [{"arch": a, "val_acc": v} for a, v in result.history],
        "wall_s": round(seconds, 2),
    }
    if ctx.is_main:
        write_json(ctx.out_dir / "search" / "summary.json", search_summary)
    steps = sum(int(x["steps"]) for x in summaries)
    extra = {
        "skip_share_argmax": None,
        "hessian_first": None,
        "hessian_final": None,
        "search_s": round(seconds, 2),
        "search_s_per_epoch": seconds / s.epochs,
        "search_steps": steps,
        "random_val_acc": result.best_score,
    }
    return result.best, search_summary, extra


def run(cfg: Config, *, preset: str = "custom") -> dict:
    """Search a cell (stage 1), train it from scratch (stage 2); writes ``rows.json``.

    Returns:
        ``{"rows": [search summary, retrain summary], ...}`` as :func:`write_rows`; the retrain
        summary's ``final.acc`` is the test accuracy of the found cell.
    """
    ctx = start_run(cfg, recipe="balenas", preset=preset)
    s = cfg.search
    data = load_data(cfg.data, seed=cfg.train.seed)
    if data.image_size % 4:
        raise ValueError(
            f"The NAS-Bench-201 skeleton halves the resolution twice: image size "
            f"{data.image_size} must be divisible by 4 (pick another data.name)."
        )
    halves = split_halves(data, s, seed=cfg.train.seed)
    if s.searcher == "random":
        arch, search_summary, extra = _random_search(ctx, cfg, data, halves)
    else:
        arch, search_summary, extra = _gradient_search(ctx, cfg, data, halves)
    extra = {
        "searcher": s.searcher,
        "arch": arch,
        "skip_share": skip_share(arch),
        **extra,
        "dataset": data.name,
        "data_source": data.source,
        "data_fingerprint": data.fingerprint,
    }
    if s.nb201_csv:
        numbers = NB201Lookup.from_csv(s.nb201_csv).query(arch)
        extra.update({f"nb201_{k}": v for k, v in numbers.items()})
    torch.manual_seed(cfg.train.seed)  # the found cell's init depends on the seed only
    model = _net(cfg, arch, data)
    if s.searcher in GRADIENT_SEARCHERS:
        with torch.random.fork_rng(devices=[]):
            cost = search_step_cost(
                s,
                (halves[0][: s.batch_size], halves[1][: s.batch_size])
                + (halves[2][: s.batch_size], halves[3][: s.batch_size]),
                num_classes=data.num_classes,
                alpha_set_size=len(halves[3]),
                steps=0 if ctx.fabric.device.type == "cpu" else 3,
                device=ctx.fabric.device,
            )
        extra["search_peak_memory_bytes"] = cost["peak_memory_bytes"]
    _, retrain = train_stage(
        ctx,
        cfg,
        name="retrain",
        task=ClassifyTask(model=model),
        loaders=make_loaders(data, cfg),
        extra={**extra, **model_extra(model, data)},
    )
    rows = [search_summary, retrain]
    _print_notice(retrain, data.num_classes)
    return write_rows(ctx, dataset=data.name, rows=rows)


def _print_notice(r: dict, num_classes: int) -> None:
    h0, h1 = r.get("hessian_first"), r.get("hessian_final")
    hess = "" if h1 is None else f"; Hessian eigenvalue {h0:.3g} -> {h1:.3g} over the search"
    print(
        f"  search ({r['searcher']}): {r['arch']}  skip share {r['skip_share']:.2f}{hess} "
        f"(the paper: DARTS-1st's eigenvalue grows and its cell collapses to skip_connect, "
        f"BaLeNAS's does not; compare --search.searcher=darts1 on the same seed)"
    )
    print(
        f"  retrain: test acc {r['final']['acc']:.4f} (chance {1 / num_classes:.2f}) for the "
        f"found cell trained from scratch, {r['params']} parameters"
    )
