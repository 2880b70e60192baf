"""The ``alt`` data: the training pool and test sequences, procedural or GOT-10k / LaSOT.

Real data are read with :mod:`frugalcv.data.tracking`'s readers and cut to the first
``data.num_train`` / ``data.num_test`` sequences and ``data.max_frames`` frames.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from frugalcv.core.config import ConfigError
from frugalcv.data.tracking import Sequence
from frugalcv.track.alt_recipe.config import DataConfig

__all__ = ["load_sequences"]


def _head(seq: Sequence, num: int) -> Sequence:
    """The first ``num`` frames of a sequence (all when ``num`` is 0 or longer)."""
    if num <= 0 or num >= len(seq):
        return seq
    return Sequence(
        name=seq.name,
        frames=seq.frames[:num],
        boxes=seq.boxes[:num],
        absent=None if seq.absent is None else seq.absent[:num],
        attributes=seq.attributes,
        source=seq.source,
    )


def load_sequences(cfg: DataConfig, *, seed: int) -> tuple[list[Sequence], list[Sequence], str]:
    """``(train pool, test sequences, data set name)``.

    Procedural sequences depend on ``seed`` (the run's seed): pool from the "train" halves of the
    images, test from the "test" halves. Real data: GOT-10k train -> val, LaSOT training videos
    -> the names in ``cfg.test_list``.
    """
    if cfg.source == "procedural":
        common = dict(
            num_frames=cfg.num_frames,
            height=cfg.height,
            width=cfg.width,
            target=cfg.target,
            num_distractors=cfg.num_distractors,
        )
        train = [
            _head(s, cfg.max_frames)
            for s in _procedural(cfg.num_train, seed=2 * seed, pool="train", **common)
        ]
        test = [
            _head(s, cfg.max_frames)
            for s in _procedural(cfg.num_test, seed=2 * seed + 1, pool="test", **common)
        ]
        return train, test, f"procedural-{cfg.target}"
    from frugalcv.data.tracking import read_got10k, read_lasot

    root = cfg.root or None
    if cfg.source == "got10k":
        train, test = read_got10k(root, split="train"), read_got10k(root, split="val")
        name = "GOT-10k"
    else:
        if not cfg.test_list:
            raise ConfigError(
                "data.source=lasot needs --data.test_list=<file of test names> (LaSOT's "
                "testing_set.txt, one name such as airplane-1 per line)."
            )
        path = Path(cfg.test_list)
        if not path.is_file():
            raise FileNotFoundError(f"data.test_list {path} does not exist; pass testing_set.txt")
        names = [n.strip() for n in path.read_text().splitlines() if n.strip()]
        test = read_lasot(root, names=names)
        held = set(names)
        train = [s for s in read_lasot(root) if s.name not in held]
        name = "LaSOT"
    train = train[: cfg.num_train] if cfg.num_train else train  # first N of the listing
    test = test[: cfg.num_test] if cfg.num_test else test
    train = [_head(s, cfg.max_frames) for s in train]
    test = [_head(s, cfg.max_frames) for s in test]
    return train, test, name


def _procedural(num: int, *, seed: int, pool: str, **kwargs: Any) -> list[Sequence]:
    from frugalcv.data.tracking import make_sequences

    return make_sequences(num, seed=seed, pool=pool, **kwargs)
