"""The bag file format: `save_bags` / `load_bags` (.npz always; .h5/.hdf5 with h5py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from frugalcv.data.mil.bags import Bags

__all__ = ["BAG_FILE_KEYS", "BAG_FILE_VERSION", "load_bags", "save_bags"]

BAG_FILE_VERSION = 1

BAG_FILE_KEYS = {
    "features": "(N, *F) per-segment features",
    "video_ids": "(N,) str id of each segment's video (segments of a video may be anywhere)",
    "event_labels": "(N,) int event index of each segment's video, -1 = background",
    "event_names": "(E,) str",
    "instance_labels": "(N,) int, optional",
    "concept_scores": "(N, C) float, optional",
    "concept_vectors": "(C, S) float, optional",
    "event_vectors": "(E, S) float, optional",
}
_OPTIONAL = ("instance_labels", "concept_scores", "concept_vectors", "event_vectors")
_H5_SUFFIXES = (".h5", ".hdf5")


def _need_h5py():
    try:
        import h5py
    except ImportError as e:
        raise ImportError(
            "HDF5 bag files need the h5py package: `pip install h5py`, or save/load .npz instead"
        ) from e
    return h5py


def save_bags(bags: Bags, path: str | Path) -> Path:
    """Write bags to ``.npz`` (or ``.h5``/``.hdf5`` with h5py) in the flat per-segment format.

    Keys: see :data:`BAG_FILE_KEYS`. Returns the path written.
    """
    path = Path(path)
    arrays: dict[str, np.ndarray] = {
        "format_version": np.array(BAG_FILE_VERSION),
        "features": bags.features,
        "video_ids": np.repeat(bags.bag_ids, bags.bag_sizes).astype(str),
        "event_labels": np.repeat(bags.labels, bags.bag_sizes),
        "event_names": np.array(bags.event_names, dtype=str),
    }
    for key in _OPTIONAL:
        value = getattr(bags, key)
        if value is not None:
            arrays[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in _H5_SUFFIXES:
        h5py = _need_h5py()
        with h5py.File(path, "w") as f:
            for k, v in arrays.items():
                f.create_dataset(k, data=v.astype("S") if v.dtype.kind == "U" else v)
    elif path.suffix.lower() == ".npz":
        np.savez_compressed(path, **arrays)
    else:
        raise ValueError(f"bag files end in .npz, .h5 or .hdf5; got {path.name!r}")
    return path


def _bags_from_segments(
    features: np.ndarray,
    video_ids: np.ndarray,
    event_labels: np.ndarray,
    event_names: tuple[str, ...],
    *,
    where: str,
    **optional: Any,
) -> Bags:
    """Group flat segments into bags by video id, videos in order of first appearance."""
    n = len(features)
    video_ids = np.asarray(video_ids).astype(str)
    event_labels = np.asarray(event_labels).astype(np.int64)
    if video_ids.shape != (n,) or event_labels.shape != (n,):
        raise ValueError(
            f"{where}: video_ids and event_labels need one entry per segment ({n}), got "
            f"{video_ids.shape} and {event_labels.shape}"
        )
    if n == 0:
        raise ValueError(f"{where}: holds no segments")
    _, first, inverse = np.unique(video_ids, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))  # video order = first appearance
    bag = rank[inverse]  # (N,) bag of each segment
    order = np.argsort(bag, kind="stable")
    bag_sorted = bag[order]
    offsets = np.concatenate([[0], np.cumsum(np.bincount(bag_sorted))])
    labels = event_labels[order][offsets[:-1]]
    if np.any(event_labels[order] != np.repeat(labels, np.diff(offsets))):
        raise ValueError(f"{where}: event_labels differ between segments of the same video")
    inst = {
        k: (None if v is None else np.asarray(v)[order])
        for k, v in optional.items()
        if k in ("instance_labels", "concept_scores")
    }
    return Bags(
        np.asarray(features)[order],
        offsets,
        labels,
        event_names,
        bag_ids=video_ids[order][offsets[:-1]],
        concept_vectors=optional.get("concept_vectors"),
        event_vectors=optional.get("event_vectors"),
        **inst,
    )


def load_bags(path: str | Path, *, name: str = "") -> Bags:
    """Read a bag file written by :func:`save_bags` (or by any tool that writes its keys)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"bag file {path} not found; write one with save_bags(bags, path)")
    if path.suffix.lower() in _H5_SUFFIXES:
        h5py = _need_h5py()
        with h5py.File(path, "r") as f:
            raw = {k: f[k][()] for k in f}
        raw = {
            k: (
                v.astype(str)
                if getattr(v, "dtype", None) is not None and v.dtype.kind == "S"
                else v
            )
            for k, v in raw.items()
        }
    elif path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as f:
            raw = {k: f[k] for k in f.files}
    else:
        raise ValueError(f"bag files end in .npz, .h5 or .hdf5; got {path.name!r}")
    missing = [k for k in ("features", "video_ids", "event_labels", "event_names") if k not in raw]
    if missing:
        raise ValueError(
            f"{path}: missing keys {missing}; a bag file holds {', '.join(BAG_FILE_KEYS)}"
        )
    bags = _bags_from_segments(
        raw["features"],
        raw["video_ids"],
        raw["event_labels"],
        tuple(np.asarray(raw["event_names"]).astype(str).reshape(-1)),
        where=str(path),
        **{k: raw.get(k) for k in _OPTIONAL},
    )
    bags.name, bags.source = name or path.stem, str(path)
    return bags
