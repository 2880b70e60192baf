"""Search data: the two-halves loader, the split, augmentation and the search-side schedule."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from types import SimpleNamespace

from torch import Tensor

from frugalcv.core.config import OptimConfig
from frugalcv.core.loader import TensorLoader, random_crop_flip
from frugalcv.data.base import stratified_split, stream_generator
from frugalcv.nas.balenas_recipe.config import Config, SearchConfig

__all__ = ["SearchLoader", "cosine_floor", "split_halves"]


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
