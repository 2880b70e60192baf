"""Batch loaders: deterministic by (seed, epoch), shardable across DDP ranks, resumable mid-epoch.

Two paths, one contract (``__len__``, ``set_epoch``, ``shard``, ``iter_from``):

- :class:`TensorLoader`: data in tensors, batches are index slices. On 2-core machines DataLoader
  workers compete with compute (env_check.md section 5), so this is the default for images.
- :class:`DatasetLoader`: any map-style dataset (variable-size images, dict targets) through
  ``torch.utils.data.DataLoader`` with a ``collate_fn`` and a seeded ``DistributedSampler``.

The order of epoch ``e`` depends only on ``(seed, e)``, so a resumed run sees exactly the batches
an uninterrupted run would see. ``fingerprint()`` names the data a loader serves (part of a run's
identity, checked on resume).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

BatchTransform = Callable[[tuple[Tensor, ...], torch.Generator], tuple[Tensor, ...]]


class TensorLoader:
    """Batches of aligned tensors.

    Args:
        tensors: tensors with the same first dimension N, e.g. ``(x, y)``.
        batch_size: samples per batch on this process.
        shuffle: reshuffle every epoch (seeded by ``seed`` and the epoch).
        drop_last: drop the last incomplete batch.
        transform: optional ``f(batch, generator) -> batch`` (augmentation), seeded per batch.
        rank, world_size: shard of the permutation this process takes (DDP).
    """

    def __init__(
        self,
        tensors: tuple[Tensor, ...] | list[Tensor],
        *,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        transform: BatchTransform | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        tensors = tuple(tensors)
        n = {int(t.shape[0]) for t in tensors}
        if len(n) != 1:
            raise ValueError(f"All tensors need the same first dimension; got {sorted(n)}.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        self.tensors = tensors
        self.num_samples = n.pop()
        if self.num_samples == 0:
            raise ValueError("Cannot build a loader over an empty dataset.")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.transform = transform
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def shard(self, *, rank: int, world_size: int, batch_size: int = 0) -> TensorLoader:
        """The same loader restricted to one DDP rank's share (``batch_size``: 0 = the same)."""
        return TensorLoader(
            self.tensors,
            batch_size=batch_size or self.batch_size,
            shuffle=self.shuffle,
            seed=self.seed,
            drop_last=self.drop_last,
            transform=self.transform,
            rank=rank,
            world_size=world_size,
        )

    def fingerprint(self) -> str:
        """``tensor_fingerprint`` of the loader's tensors (dtype, shape and bytes of each)."""
        from frugalcv.data.base import tensor_fingerprint

        return tensor_fingerprint(*self.tensors)

    def _indices(self) -> Tensor:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            idx = torch.randperm(self.num_samples, generator=g)
        else:
            idx = torch.arange(self.num_samples)
        if self.world_size > 1:
            # Pad by wrapping so every rank gets the same number of batches (DDP needs that).
            per = -(-self.num_samples // self.world_size)
            idx = torch.cat([idx, idx[: per * self.world_size - self.num_samples]])
            idx = idx[self.rank :: self.world_size]
        return idx

    def __len__(self) -> int:
        n = len(self._indices()) if self.world_size > 1 else self.num_samples
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        return self.iter_from(0)

    def iter_from(self, start: int) -> Iterator[tuple[Tensor, ...]]:
        """Batches ``start, start + 1, ...`` of the current epoch (resuming mid-epoch)."""
        idx = self._indices()
        for b in range(start, len(self)):
            sel = idx[b * self.batch_size : (b + 1) * self.batch_size]
            batch = tuple(t[sel] for t in self.tensors)
            if self.transform is not None:
                g = torch.Generator().manual_seed(
                    (self.seed * 1_000_003 + self.epoch) * 100_003 + b * 7919 + self.rank
                )
                batch = self.transform(batch, g)
            yield batch


def random_crop_flip(*, pad: int = 4, flip: bool = True) -> BatchTransform:
    """Standard CIFAR augmentation on a batch ``(x, y, ...)``: pad-and-crop plus horizontal flip.

    Padding is by zeros (RepDistiller's ``RandomCrop(32, padding=4)``). Set ``flip=False`` for
    digits, where mirroring changes the class meaning.
    """

    def apply(batch: tuple[Tensor, ...], g: torch.Generator) -> tuple[Tensor, ...]:
        x = batch[0]
        b, _, h, w = x.shape
        if pad > 0:
            xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
            dy = torch.randint(0, 2 * pad + 1, (b,), generator=g)
            dx = torch.randint(0, 2 * pad + 1, (b,), generator=g)
            rows = (dy[:, None] + torch.arange(h)[None]).view(b, 1, h, 1)  # (B, 1, H, 1)
            cols = (dx[:, None] + torch.arange(w)[None]).view(b, 1, 1, w)  # (B, 1, 1, W)
            bi = torch.arange(b).view(b, 1, 1, 1)
            ci = torch.arange(x.shape[1]).view(1, -1, 1, 1)
            x = xp[bi, ci, rows, cols]  # (B, C, H, W)
        if flip:
            m = torch.rand(b, generator=g) < 0.5
            x = torch.where(m.view(b, 1, 1, 1), x.flip(-1), x)
        return (x, *batch[1:])

    return apply


def list_collate(samples: list[Any]) -> tuple[list, ...]:
    """Collate ``(image, target)`` samples into ``([images], [targets])`` without stacking.

    For detection and tracking: images of different sizes, targets as dicts of boxes/labels.
    """
    return tuple(list(field) for field in zip(*samples, strict=True))


class DatasetLoader:
    """Batches of a map-style dataset through ``torch.utils.data.DataLoader``.

    Args:
        dataset: anything with ``__len__`` and ``__getitem__``.
        batch_size: samples per batch on this process.
        collate_fn: how samples become a batch (default: torch's stacking ``default_collate``;
            :func:`list_collate` for variable-size inputs).
        shuffle, seed: the order of epoch ``e`` is a permutation seeded by ``seed + e``
            (``DistributedSampler``'s rule, also used with one process).
        drop_last: drop the last incomplete batch of each epoch.
        num_workers: DataLoader worker processes (0 = load in this process).
        rank, world_size: this process's share (set by :meth:`shard`; the sampler pads by
            wrapping so every rank gets the same number of batches).
    """

    def __init__(
        self,
        dataset: Any,
        *,
        batch_size: int,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        num_workers: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        from torch.utils.data import DistributedSampler

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        if len(dataset) == 0:
            raise ValueError("Cannot build a loader over an empty dataset.")
        self.dataset = dataset
        self.batch_size = batch_size
        self.collate_fn = collate_fn
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.num_workers = num_workers
        self.rank = rank
        self.world_size = world_size
        self.sampler = DistributedSampler(
            dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed
        )

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def shard(self, *, rank: int, world_size: int, batch_size: int = 0) -> DatasetLoader:
        """The same loader restricted to one DDP rank's share (``batch_size``: 0 = the same)."""
        return DatasetLoader(
            self.dataset,
            batch_size=batch_size or self.batch_size,
            collate_fn=self.collate_fn,
            shuffle=self.shuffle,
            seed=self.seed,
            drop_last=self.drop_last,
            num_workers=self.num_workers,
            rank=rank,
            world_size=world_size,
        )

    def fingerprint(self) -> str:
        """The dataset's own ``fingerprint`` (attribute or method) when it has one, the tensors'
        fingerprint for a ``TensorDataset``, else its class name and length."""
        own = getattr(self.dataset, "fingerprint", None)
        if own is not None:
            return str(own() if callable(own) else own)
        tensors = getattr(self.dataset, "tensors", None)
        if isinstance(tensors, tuple) and tensors and all(torch.is_tensor(t) for t in tensors):
            from frugalcv.data.base import tensor_fingerprint

            return tensor_fingerprint(*tensors)
        return f"{type(self.dataset).__qualname__} of {len(self.dataset)}"

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        return self.iter_from(0)

    def iter_from(self, start: int) -> Iterator[Any]:
        """Batches ``start, start + 1, ...`` of the current epoch; skipped ones are not loaded."""
        from torch.utils.data import DataLoader

        indices = list(self.sampler)[start * self.batch_size :]  # this rank's order, this epoch
        if self.drop_last:
            indices = indices[: (len(self) - start) * self.batch_size]
        # DataLoader draws its workers' base seed from `generator` (else from the global torch
        # RNG, which would shift the training stream whenever a resumed run opens an iterator).
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.sampler.epoch)
        loader = DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            sampler=indices,
            collate_fn=self.collate_fn,
            num_workers=self.num_workers,
            generator=g,
        )
        return iter(loader)
