"""Optional NAS-Bench-201 lookup: accuracies of a found cell, from a CSV or the benchmark API.

Nothing is downloaded. Two sources:

- a CSV with one row per architecture: an arch-string column (``arch``, ``arch_str``,
  ``ArchitectureString`` or ``architecture``) and numeric columns (e.g. ``cifar10_test``); e.g. the
  3 MB table of 200-epoch test accuracies of all 15,625 cells described in the research notes
  (section 3.6). Default place: ``$FRUGALCV_DATA/NAS-Bench-201/nb201.csv``.
- the benchmark's own file through the ``nats_bench`` package (``pip install nats_bench``), if the
  user has ``NATS-tss-v1_0-3ffb9-simple`` (the NAS-Bench-201 topology space in NATS-Bench).
  Loading the NAS-Bench-201 ``.pth`` needs ~28 GB RAM (AutoDL-Projects issue 78).

Arch strings are normalised with :func:`~frugalcv.nas.nb201.parse_nb201_arch` (input order
within a node does not matter).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from frugalcv.nas.nb201 import format_nb201_arch, parse_nb201_arch

__all__ = ["ARCH_COLUMNS", "NB201Lookup", "default_nb201_csv"]

ARCH_COLUMNS = ("arch", "arch_str", "ArchitectureString", "architecture")
_CSV_PLACE = ("NAS-Bench-201", "nb201.csv")


def default_nb201_csv(root: str | Path | None = None) -> Path:
    """``<root or $FRUGALCV_DATA>/NAS-Bench-201/nb201.csv``."""
    root = root or os.environ.get("FRUGALCV_DATA")
    if not root:
        raise FileNotFoundError(
            "no data folder given for the NAS-Bench-201 table: pass a path, or set FRUGALCV_DATA "
            f"and put the CSV at $FRUGALCV_DATA/{'/'.join(_CSV_PLACE)}"
        )
    return Path(root).expanduser().joinpath(*_CSV_PLACE)


def _canonical(arch: str) -> str:
    return format_nb201_arch(parse_nb201_arch(arch))


class NB201Lookup:
    """Map arch strings to benchmark numbers. Build with :meth:`from_csv` or :meth:`from_nats`.

    ``lookup.query(arch)`` returns a dict of metric -> float; ``arch in lookup`` tests presence.
    """

    def __init__(self, *, table: dict[str, dict[str, float]] | None = None, api: Any = None):
        if (table is None) == (api is None):
            raise ValueError("give exactly one of table= or api=")
        self._table = table
        self._api = api

    @classmethod
    def from_csv(cls, path: str | Path | None = None) -> NB201Lookup:
        """Read a CSV (see the module docstring); numeric columns become metrics, others are
        ignored (e.g. ``UniqueString``).

        Args:
            path: CSV file; None: :func:`default_nb201_csv`.
        """
        path = Path(path) if path is not None else default_nb201_csv()
        if not path.is_file():
            raise FileNotFoundError(
                f"NAS-Bench-201 table {path} not found. Put a CSV with an arch column "
                f"({', '.join(ARCH_COLUMNS)}) and accuracy columns there, e.g. at "
                f"$FRUGALCV_DATA/{'/'.join(_CSV_PLACE)}; nothing is downloaded."
            )
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            fields = reader.fieldnames or []
            arch_col = next((c for c in ARCH_COLUMNS if c in fields), None)
            if arch_col is None:
                raise ValueError(
                    f"{path} has no arch column; expected one of {ARCH_COLUMNS}, got {fields}"
                )
            table: dict[str, dict[str, float]] = {}
            for line, row in enumerate(reader, start=2):
                try:
                    arch = _canonical(row[arch_col])
                except ValueError as e:
                    raise ValueError(f"{path} line {line}: {e}") from None
                metrics = {}
                for k, v in row.items():
                    if k == arch_col or v is None:
                        continue
                    try:
                        metrics[k] = float(v)
                    except ValueError:
                        continue  # a non-numeric column (e.g. UniqueString)
                table[arch] = metrics
        if not table:
            raise ValueError(f"{path} holds no rows")
        return cls(table=table)

    @classmethod
    def from_nats(cls, path: str | Path) -> NB201Lookup:
        """Use the benchmark file through ``nats_bench`` (topology space = NAS-Bench-201 cells).

        ``query`` then returns ``<dataset>/<key>`` for datasets ``cifar10-valid``, ``cifar10``,
        ``cifar100``, ``ImageNet16-120`` and the float entries of ``get_more_info(index,
        dataset, hp="200", is_random=False)`` (the mean over seeds of the 200-epoch runs).
        Not exercised here without the file; the glue is tested against a stand-in API.
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(
                f"NATS-Bench topology file {path} not found; download NATS-tss-v1_0-3ffb9-simple "
                f"yourself (see github.com/D-X-Y/NATS-Bench) and pass its path"
            )
        try:
            from nats_bench import create
        except ImportError:
            raise ImportError(
                "NB201Lookup.from_nats needs the nats_bench package: pip install nats_bench "
                "(or export the numbers to a CSV and use NB201Lookup.from_csv)"
            ) from None
        return cls(api=create(str(path), "tss", fast_mode=True, verbose=False))

    def __contains__(self, arch: str) -> bool:
        try:
            self.query(arch)
        except KeyError:
            return False
        return True

    def __len__(self) -> int:
        return len(self._table) if self._table is not None else len(self._api)

    def query(self, arch: str) -> dict[str, float]:
        """Numbers of one cell; KeyError naming the arch when it is not in the table."""
        key = _canonical(arch)
        if self._table is not None:
            if key not in self._table:
                raise KeyError(f"{key} is not in the NAS-Bench-201 table ({len(self)} rows)")
            return dict(self._table[key])
        index = self._api.query_index_by_arch(key)
        if index is None or int(index) < 0:
            raise KeyError(f"{key} is not in the NATS-Bench topology space")
        out = {}
        for ds in ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120"):
            info = self._api.get_more_info(int(index), ds, hp="200", is_random=False)
            out.update({f"{ds}/{k}": float(v) for k, v in info.items() if isinstance(v, float)})
        return out
