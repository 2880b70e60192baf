"""Classic MIL sets (Musk1/2, Elephant, Fox, Tiger) in their common distribution formats."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from frugalcv.data.base import data_root
from frugalcv.data.mil.bags import Bags
from frugalcv.data.mil.files import _bags_from_segments

__all__ = [
    "CLASSIC_MIL_FILES",
    "load_classic_mil",
    "read_mil_csv",
    "read_mil_mat",
    "read_musk_data",
]

# File names looked for under <root>/mil/, in order.
CLASSIC_MIL_FILES: dict[str, tuple[str, ...]] = {
    "musk1": ("clean1.data", "musk1.csv"),  # UCI "Musk (Version 1)"; rosasalberto/mil CSV
    "musk2": ("clean2.data", "musk2.csv"),  # UCI "Musk (Version 2)"
    "elephant": ("elephant_100x100_matlab.mat", "elephant.csv"),  # Andrews et al. 2002 set
    "fox": ("fox_100x100_matlab.mat", "fox.csv"),
    "tiger": ("tiger_100x100_matlab.mat", "tiger.csv"),
}


def _binary_bags(x, bag_ids, inst_labels, *, event: str, where: str) -> Bags:
    """Binary MIL set from flat instances; a bag is positive iff one of its labels is."""
    inst = np.asarray(inst_labels, dtype=np.float64).reshape(-1)
    ids = np.asarray(bag_ids).reshape(-1).astype(str)
    _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))[inverse]
    pos_bag = np.zeros(rank.max() + 1, dtype=bool)
    np.logical_or.at(pos_bag, rank, inst > 0)
    seg_labels = np.where(pos_bag[rank], 0, -1)
    return _bags_from_segments(
        np.asarray(x, dtype=np.float32), ids, seg_labels, (event,), where=where
    )


def read_musk_data(path: str | Path, *, event: str = "musk") -> Bags:
    """UCI Musk ``clean1.data`` / ``clean2.data``: one conformation per line,
    ``molecule,conformation,f1,...,f166,class`` with class 1 (musk) or 0; a bag is a molecule."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Musk file {path} not found (UCI clean1.data / clean2.data)")
    with open(path, newline="") as fh:
        rows = [r for r in csv.reader(fh) if r and "".join(r).strip()]
    widths = {len(r) for r in rows}
    if len(widths) != 1 or min(widths) < 4:
        raise ValueError(
            f"{path}: expected lines 'molecule,conformation,features...,class' of one width, got "
            f"widths {sorted(widths)}"
        )
    try:
        x = np.array([[float(v) for v in r[2:-1]] for r in rows])
        cls = np.array([float(r[-1].strip().rstrip(".") or 0) for r in rows])
    except ValueError as e:
        raise ValueError(f"{path}: non-numeric feature or class value ({e})") from e
    bags = _binary_bags(x, [r[0].strip() for r in rows], cls, event=event, where=str(path))
    bags.name, bags.source = path.stem, str(path)
    return bags


def read_mil_mat(path: str | Path, *, event: str = "positive") -> Bags:
    """MATLAB MIL file as distributed with Andrews et al.'s Elephant/Fox/Tiger sets
    (``*_100x100_matlab.mat``): ``features`` (N, D) (dense or sparse), ``labels`` (N instance
    labels, +1/-1 or 1/0: the bag label copied to its instances) and ``bag_ids`` (N)."""
    from scipy import io as sio
    from scipy import sparse

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MIL .mat file {path} not found")
    mat = sio.loadmat(path)
    missing = [k for k in ("features", "labels", "bag_ids") if k not in mat]
    if missing:
        raise ValueError(f"{path}: missing variables {missing}; expected features, labels, bag_ids")

    def dense(a):
        return a.toarray() if sparse.issparse(a) else np.asarray(a)

    x = dense(mat["features"]).astype(np.float32)
    labels = dense(mat["labels"]).reshape(-1)
    ids = dense(mat["bag_ids"]).reshape(-1)
    if len(labels) != len(x) or len(ids) != len(x):
        raise ValueError(
            f"{path}: features has {len(x)} rows but labels {len(labels)} and bag_ids {len(ids)}"
        )
    bags = _binary_bags(x, ids.astype(np.int64), labels, event=event, where=str(path))
    bags.name, bags.source = path.stem, str(path)
    return bags


def read_mil_csv(path: str | Path, *, event: str = "positive") -> Bags:
    """CSV with one instance per row, ``label,bag_id,f1,...`` (the layout of the rosasalberto/mil
    package's and the Kucukasci-Baydogan benchmark CSVs); a first row that is not numeric is
    taken as a header."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MIL CSV file {path} not found")
    with open(path, newline="") as fh:
        rows = [r for r in csv.reader(fh) if r and "".join(r).strip()]
    if rows:
        try:
            float(rows[0][0])
        except ValueError:
            rows = rows[1:]
    if not rows or len({len(r) for r in rows}) != 1 or len(rows[0]) < 3:
        raise ValueError(f"{path}: expected rows 'label,bag_id,features...' of one width (>= 3)")
    try:
        table = np.array([[float(v) for v in r] for r in rows])
    except ValueError as e:
        raise ValueError(f"{path}: non-numeric value ({e})") from e
    bags = _binary_bags(
        table[:, 2:], table[:, 1].astype(np.int64), table[:, 0], event=event, where=str(path)
    )
    bags.name, bags.source = path.stem, str(path)
    return bags


def load_classic_mil(name: str, *, root: str | Path | None = None) -> Bags:
    """Musk1, Musk2, Elephant, Fox or Tiger from ``<root>/mil/`` (root: else FRUGALCV_DATA).

    Looks for the file names in :data:`CLASSIC_MIL_FILES` (UCI ``.data``, the Andrews et al.
    ``.mat`` files, or ``label,bag_id,features`` CSVs). The result has one event named ``name``.
    """
    if name not in CLASSIC_MIL_FILES:
        raise ValueError(f"unknown MIL set {name!r}; valid names: {', '.join(CLASSIC_MIL_FILES)}")
    folder = data_root(root) / "mil"
    for fname in CLASSIC_MIL_FILES[name]:
        path = folder / fname
        if path.is_file():
            if path.suffix == ".data":
                bags = read_musk_data(path, event=name)
            elif path.suffix == ".mat":
                bags = read_mil_mat(path, event=name)
            else:
                bags = read_mil_csv(path, event=name)
            bags.name = name
            return bags
    raise FileNotFoundError(
        f"{name} not found: put one of {', '.join(CLASSIC_MIL_FILES[name])} in {folder}/ "
        "(or point --data.root / FRUGALCV_DATA at the folder that contains mil/)"
    )
