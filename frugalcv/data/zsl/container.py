"""The `ZSLData` container, class semantics from text and the semantics options."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["SEMANTICS_OPTIONS", "ZSLData", "text_semantics"]


SEMANTICS_OPTIONS = ("attributes", "names", "descriptions")


@dataclass
class ZSLData:
    """A zero-shot set held in memory; features (N, D) or images (N, C, H, W).

    Attributes:
        name: e.g. "AWA2", "attr-shapes", "zsl-digits".
        x_train: trainval inputs, seen classes only.
        y_train: (N,) int64 global class ids.
        x_test_seen, y_test_seen: held-out inputs of the seen classes.
        x_test_unseen, y_test_unseen: inputs of the unseen classes.
        semantics: (num_classes, d) float32 class semantics; row c describes class c.
        seen_classes: (num_seen,) int64 sorted ids of the seen classes.
        unseen_classes: (num_unseen,) int64 sorted ids, disjoint from the seen ones.
        class_names: num_classes names.
        attribute_names: d names when ``semantics`` are attributes (else empty).
        val_classes: seen classes held out as pseudo-unseen for model selection (xlsa17
            ``val_loc``), or None.
        source: provenance.
    """

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test_seen: Tensor
    y_test_seen: Tensor
    x_test_unseen: Tensor
    y_test_unseen: Tensor
    semantics: Tensor
    seen_classes: Tensor
    unseen_classes: Tensor
    class_names: list[str]
    attribute_names: list[str]
    val_classes: Tensor | None = None
    source: str = ""

    def __post_init__(self) -> None:
        splits = (
            ("train", self.x_train, self.y_train, self.seen_classes),
            ("test_seen", self.x_test_seen, self.y_test_seen, self.seen_classes),
            ("test_unseen", self.x_test_unseen, self.y_test_unseen, self.unseen_classes),
        )
        for split, x, y, allowed in splits:
            if x.ndim not in (2, 4) or y.ndim != 1 or len(x) != len(y):
                raise ValueError(
                    f"{self.name}: x_{split} must be (N, D) features or (N, C, H, W) images and "
                    f"y_{split} (N,); got {tuple(x.shape)} and {tuple(y.shape)}"
                )
            if len(y) and not torch.isin(y, allowed).all():
                bad = sorted(set(y[~torch.isin(y, allowed)].tolist()))[:5]
                raise ValueError(
                    f"{self.name}: y_{split} holds classes {bad} that are not in its class set"
                )
        if self.semantics.ndim != 2 or len(self.semantics) != self.num_classes:
            raise ValueError(
                f"{self.name}: semantics must be (num_classes={self.num_classes}, d); got "
                f"{tuple(self.semantics.shape)}"
            )
        if torch.isin(self.seen_classes, self.unseen_classes).any():
            raise ValueError(f"{self.name}: seen and unseen classes overlap")
        if len(self.class_names) != self.num_classes:
            raise ValueError(
                f"{self.name}: {len(self.class_names)} class names for {self.num_classes} classes"
            )

    @property
    def num_classes(self) -> int:
        return len(self.semantics)

    @property
    def is_features(self) -> bool:
        """True for pre-extracted features (N, D), False for images (N, C, H, W)."""
        return self.x_train.ndim == 2

    def with_semantics(self, semantics: Tensor, *, attribute_names: Sequence[str] = ()) -> ZSLData:
        """A copy with other class semantics (e.g. :func:`text_semantics`), same samples."""
        return ZSLData(
            **{
                **self.__dict__,
                "semantics": torch.as_tensor(semantics, dtype=torch.float32),
                "attribute_names": list(attribute_names),
            }
        )


def text_semantics(texts: Sequence[str]) -> Tensor:
    """(num_classes, 384) MiniLM sentence embeddings of class names or descriptions."""
    from frugalcv.data.semantics import embed_texts

    return embed_texts(list(texts))


def _check_semantics_option(semantics: str) -> None:
    if semantics not in SEMANTICS_OPTIONS:
        raise ValueError(
            f"unknown semantics={semantics!r}; valid options are {', '.join(SEMANTICS_OPTIONS)}"
        )
