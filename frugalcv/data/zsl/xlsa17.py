"""Xian et al.'s xlsa17 proposed splits with pre-extracted features (`load_xlsa17`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from frugalcv.data.base import data_root
from frugalcv.data.semantics import normalize_semantics
from frugalcv.data.zsl.container import ZSLData

__all__ = ["XLSA17_NAMES", "XLSA17_SIZES", "load_xlsa17"]


XLSA17_NAMES = ("AWA1", "AWA2", "CUB", "SUN", "APY")

# (images, attribute dim, classes, trainval, test_seen, test_unseen) of the proposed splits, from
# Xian et al. (tabulated in the mvp18/Popular-ZSL-Algorithms README); used in error messages.
XLSA17_SIZES: dict[str, tuple[int, int, int, int, int, int]] = {
    "AWA1": (30475, 85, 50, 19832, 4958, 5685),
    "AWA2": (37322, 85, 50, 23527, 5882, 7913),
    "CUB": (11788, 312, 200, 7057, 1764, 2967),
    "SUN": (14340, 102, 717, 10320, 2580, 1440),
    "APY": (15339, 64, 32, 5932, 1483, 7924),
}

_XLSA17_LOCS = ("trainval_loc", "test_seen_loc", "test_unseen_loc")


def _loadmat(path: Path, *, what: str) -> dict:
    import scipy.io

    if not path.is_file():
        raise FileNotFoundError(
            f"{what} not found: {path} does not exist. Unzip xlsa17 so that the folder "
            f"{path.parent} holds res101.mat and att_splits.mat, and point --data.root or "
            "FRUGALCV_DATA at the folder that contains xlsa17/"
        )
    try:
        return scipy.io.loadmat(str(path))
    except Exception as e:  # scipy raises several types for corrupt files
        raise ValueError(f"could not read {path} as a MATLAB .mat file: {e}") from e


def _mat_key(mat: dict, key: str, path: Path) -> np.ndarray:
    if key not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise ValueError(f"{path} has no variable {key!r}; it holds {keys}")
    return np.asarray(mat[key])


def _one_based(values: np.ndarray, *, key: str, path: Path, upper: int, what: str) -> np.ndarray:
    """MATLAB 1-based integer indices -> 0-based int64, with a clear error for 0-based input."""
    v = np.asarray(values).reshape(-1)
    if v.size == 0:
        raise ValueError(f"{path}: {key} is empty")
    if not np.all(np.equal(np.mod(v, 1), 0)):
        raise ValueError(f"{path}: {key} must hold integer {what}; got non-integer values")
    v = v.astype(np.int64)
    if v.min() < 1:
        raise ValueError(
            f"{path}: {key} contains {int(v.min())}, but xlsa17 {what} are 1-based (MATLAB). "
            "If you wrote this file from Python, add 1 to the 0-based indices"
        )
    if v.max() > upper:
        raise ValueError(f"{path}: {key} contains {int(v.max())} > {upper}, the number of {what}")
    return v - 1


def load_xlsa17(
    name: str,
    *,
    root: str | Path | None = None,
    features: str = "res101.mat",
    semantics: str = "att",
    normalize: str = "l2",
) -> ZSLData:
    """One of Xian et al.'s proposed splits with pre-extracted features.

    Reads ``<root>/xlsa17/data/<NAME>/res101.mat`` (``features``: (D, N), ``labels``: (N, 1)
    1-based, ``image_files``) and ``att_splits.mat`` (``att``/``original_att``: (d, C); 1-based
    ``trainval_loc``, ``test_seen_loc``, ``test_unseen_loc``, optional ``train_loc``/``val_loc``;
    optional ``allclasses_names``).

    Args:
        name: AWA1, AWA2, CUB, SUN or APY (case-insensitive).
        root: folder that holds ``xlsa17/`` (else FRUGALCV_DATA).
        features: file name of the feature file in the data set folder (e.g. a fine-tuned copy).
        semantics: "att" (xlsa17's L2-normalised attributes) or "original_att" (raw values).
        normalize: "l2" to (re)normalise rows, "none" to keep the file's values.

    Raises:
        ValueError: unknown name, missing variables, wrong shapes, 0-based or out-of-range
            indices, or seen/unseen splits that overlap.
        FileNotFoundError: the files are missing (the message says where to put them).
    """
    key = name.upper()
    if key not in XLSA17_NAMES:
        raise ValueError(
            f"unknown xlsa17 data set {name!r}; valid names: {', '.join(XLSA17_NAMES)}"
        )
    if semantics not in ("att", "original_att"):
        raise ValueError(f"semantics must be 'att' or 'original_att'; got {semantics!r}")
    folder = data_root(root) / "xlsa17" / "data" / key
    res_path, att_path = folder / features, folder / "att_splits.mat"
    res = _loadmat(res_path, what=f"{key} features")
    att = _loadmat(att_path, what=f"{key} attributes and splits")

    labels_raw = _mat_key(res, "labels", res_path).reshape(-1)
    n = len(labels_raw)
    feats = _mat_key(res, "features", res_path)
    if feats.ndim != 2 or n not in feats.shape:
        raise ValueError(
            f"{res_path}: features must be (D, N) with N = {n} labels; got {feats.shape}"
        )
    if feats.shape[1] != n:  # some re-exports store (N, D)
        feats = feats.T
    x = torch.from_numpy(np.ascontiguousarray(feats.T, dtype=np.float32))  # (N, D)

    s = _mat_key(att, semantics, att_path)
    if s.ndim != 2:
        raise ValueError(f"{att_path}: {semantics} must be (d, num_classes); got {s.shape}")
    num_classes = s.shape[1]
    s = torch.from_numpy(np.ascontiguousarray(s.T, dtype=np.float32))  # (C, d)
    y = torch.from_numpy(
        _one_based(labels_raw, key="labels", path=res_path, upper=num_classes, what="class labels")
    )

    locs = {}
    for loc in _XLSA17_LOCS:
        locs[loc] = torch.from_numpy(
            _one_based(_mat_key(att, loc, att_path), key=loc, path=att_path, upper=n, what="images")
        )
    seen = torch.unique(y[locs["trainval_loc"]])
    unseen = torch.unique(y[locs["test_unseen_loc"]])
    if torch.isin(unseen, seen).any():
        raise ValueError(
            f"{att_path}: test_unseen_loc images have classes that also appear in trainval_loc; "
            "check that the *_loc indices are 1-based and belong to this res101.mat"
        )
    if not torch.isin(y[locs["test_seen_loc"]], seen).all():
        raise ValueError(f"{att_path}: test_seen_loc holds classes absent from trainval_loc")

    val_classes = None
    if "val_loc" in att:  # some copies of att_splits.mat lack it (hbdat/cvpr20_DAZLE issue 1)
        val_loc = _one_based(att["val_loc"], key="val_loc", path=att_path, upper=n, what="images")
        val_classes = torch.unique(y[torch.from_numpy(val_loc)])

    class_names = [f"class_{c + 1}" for c in range(num_classes)]
    if "allclasses_names" in att:
        raw = np.asarray(att["allclasses_names"]).reshape(-1)
        if len(raw) == num_classes:
            class_names = [str(np.asarray(v).reshape(-1)[0]) for v in raw]

    tv, ts, tu = (locs[k] for k in _XLSA17_LOCS)
    return ZSLData(
        name=key,
        x_train=x[tv],
        y_train=y[tv],
        x_test_seen=x[ts],
        y_test_seen=y[ts],
        x_test_unseen=x[tu],
        y_test_unseen=y[tu],
        semantics=normalize_semantics(s, normalize=normalize),
        seen_classes=seen,
        unseen_classes=unseen,
        class_names=class_names,
        attribute_names=[],
        val_classes=val_classes,
        source=f"xlsa17 {key} under {folder} ({features}, {semantics})",
    )
