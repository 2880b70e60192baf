"""Benchmark results: one JSON file per benchmark, written atomically and validated on read.

Every benchmark writes ``benchmarks/results/<name>.json``::

    {"benchmark": str, "command": str, "dataset": str, "metric": str, "higher_is_better": bool,
     "seeds": [int],
     "rows": [{"name": str, "mean": float, "std": float, "values": [float], "extra": {...}}],
     "env": {...}, "date": "YYYY-MM-DD", "notes": str}

``values`` holds one number per seed (or per repeat); ``mean`` and ``std`` are derived from them
(see :class:`Row`). ``extra`` holds per-row measurements that are not the metric: MACs, latency,
parameter counts, train-step cost ratios, short labels. Its values are numbers, short strings,
booleans or ``None`` (not measured). The file is strict JSON: NaN and infinity are refused.
"""

from __future__ import annotations

import datetime
import json
import math
import numbers
import os
import platform
import subprocess
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.table import Table

__all__ = [
    "Row",
    "env_info",
    "extra_keys",
    "format_mean_std",
    "format_table",
    "format_value",
    "read_results",
    "write_results",
]

# Keys every results file must hold, with the JSON types they must have.
_REQUIRED: dict[str, tuple[type, ...]] = {
    "benchmark": (str,),
    "command": (str,),
    "dataset": (str,),
    "metric": (str,),
    "higher_is_better": (bool,),
    "seeds": (list,),
    "rows": (list,),
    "env": (dict,),
    "date": (str,),
}
_ROW_REQUIRED: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "mean": (int, float),
    "std": (int, float),
    "values": (list,),
    "extra": (dict,),
}


def _is_number(x: object) -> bool:
    """True for int/float (and numpy scalars), False for bool, which JSON keeps apart."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


@dataclass
class Row:
    """One compared entry of a benchmark (a method, a model, a setting).

    Args:
        name: label shown in tables and plots.
        values: the metric, one value per seed or repeat; at least one, all finite. Anything that
            ``float()`` accepts (numpy scalars, 0-d tensors) is converted to ``float``.
        extra: per-row measurements besides the metric (``macs``, ``latency_ms``, ``params``, ...):
            numbers, short strings, booleans or ``None``.

    ``mean`` is the arithmetic mean of ``values``. ``std`` is the *sample* standard deviation
    (Bessel-corrected, ``ddof=1``: ``sqrt(sum((v - mean)**2) / (n - 1))``) when there are two or
    more values, and ``0.0`` for a single value (no spread can be estimated from one run).
    """

    name: str
    values: list[float]
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Row name must be a non-empty string, got {self.name!r}.")
        self.values = _check_values(self.values, where=f"row {self.name!r}")

    @property
    def n(self) -> int:
        """Number of values (seeds or repeats)."""
        return len(self.values)

    @property
    def mean(self) -> float:
        """Arithmetic mean of ``values``."""
        return math.fsum(self.values) / len(self.values)

    @property
    def std(self) -> float:
        """Sample standard deviation (ddof=1) of ``values``; 0.0 for a single value."""
        if len(self.values) < 2:
            return 0.0
        mean = self.mean
        return math.sqrt(math.fsum((v - mean) ** 2 for v in self.values) / (len(self.values) - 1))

    def to_dict(self) -> dict:
        """The row as stored in a results file; validates ``values`` and ``extra`` again."""
        values = _check_values(self.values, where=f"row {self.name!r}")
        row = Row(name=self.name, values=values)
        return {
            "name": self.name,
            "mean": row.mean,
            "std": row.std,
            "values": values,
            "extra": _check_extra(self.extra, where=f"row {self.name!r}"),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Row:
        """Rebuild a row from its stored form (``mean``/``std`` are recomputed from ``values``)."""
        return cls(name=d["name"], values=list(d["values"]), extra=dict(d.get("extra", {})))


def _check_values(values: object, *, where: str) -> list[float]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValueError(f"{where}: values must be a list of numbers, got {type(values).__name__}.")
    out = []
    for i, v in enumerate(values):  # type: ignore[arg-type]
        if isinstance(v, (bool, str, bytes)):
            raise ValueError(f"{where}: values[{i}]={v!r} is not a number.")
        try:
            f = float(v)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: values[{i}]={v!r} is not a number.") from e
        if not math.isfinite(f):
            raise ValueError(
                f"{where}: values[{i}] is {f}; results files are strict JSON and hold finite "
                "numbers only. Drop or rerun the diverged seed and say so in `notes`."
            )
        out.append(f)
    if not out:
        raise ValueError(f"{where}: values is empty; a row needs at least one measured value.")
    return out


def _check_extra(extra: object, *, where: str) -> dict:
    if not isinstance(extra, dict):
        raise ValueError(f"{where}: extra must be a dict, got {type(extra).__name__}.")
    out: dict[str, Any] = {}
    for k, v in extra.items():
        if not isinstance(k, str):
            raise ValueError(f"{where}: extra key {k!r} must be a string.")
        if v is None or isinstance(v, (bool, str)):
            out[k] = v
        elif isinstance(v, numbers.Integral):
            out[k] = int(v)
        elif isinstance(v, numbers.Real):
            f = float(v)
            if not math.isfinite(f):
                raise ValueError(f"{where}: extra[{k!r}] is {f}; store finite numbers or None.")
            out[k] = f
        else:
            raise ValueError(
                f"{where}: extra[{k!r}] has type {type(v).__name__}; extra holds numbers, short "
                "strings, booleans or None. Convert it first (float(x), int(x) or str(x))."
            )
    return out


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    """Run git in the frugalcv source folder; None when git or the repository is unavailable."""
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.strip()


def env_info() -> dict:
    """Describe the software and hardware a benchmark ran on.

    Returns:
        ``python``, ``torch``, ``torchvision``, ``timm``, ``lightning``, ``numpy`` versions (None
        when not installed), ``platform``, ``cpu_count``, ``torch_threads``, ``cuda_device`` (name
        of device 0, or None without CUDA), ``git_commit`` (HEAD of the frugalcv checkout, or None
        when unavailable) and ``git_dirty`` (uncommitted changes to tracked files, or None).
    """
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": _version("torch"),
        "torchvision": _version("torchvision"),
        "timm": _version("timm"),
        "lightning": _version("lightning"),
        "numpy": _version("numpy"),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": None,
        "cuda_device": None,
    }
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["cuda_device"] = torch.cuda.get_device_name(0)
    except Exception:  # a broken torch install must not stop results from being written
        pass
    commit = _git("rev-parse", "HEAD")
    info["git_commit"] = commit
    if commit is None:
        info["git_dirty"] = None
    else:
        status = _git("status", "--porcelain", "--untracked-files=no")
        info["git_dirty"] = None if status is None else bool(status)
    return info


def write_results(
    path: str | os.PathLike,
    *,
    benchmark: str,
    command: str,
    dataset: str,
    metric: str,
    higher_is_better: bool,
    seeds: list[int],
    rows: list[Row],
    notes: str = "",
) -> dict:
    """Write a benchmark results file atomically and return the dict written.

    The JSON is built fully in memory first, then written to a temporary file in the same folder
    and moved over ``path`` with ``os.replace``; an error at any point leaves an existing file
    untouched and no partial file behind. Parent folders are created. ``env`` (:func:`env_info`)
    and ``date`` (today, ISO format) are added.

    Args:
        path: destination, by convention ``benchmarks/results/<benchmark>.json``.
        benchmark: short name of the benchmark.
        command: the exact command line that produced the numbers, so they can be replayed.
        dataset: data set (and split) the metric was measured on.
        metric: name of the metric in ``Row.values`` (e.g. ``top1_acc``).
        higher_is_better: direction of the metric.
        seeds: seeds used (may be empty for deterministic measurements such as MACs).
        rows: compared entries, kept in the given order.
        notes: free text (deviations, diverged seeds, hardware caveats).

    Raises:
        ValueError: a non-finite value, an empty row, an extra that is not a number, string, bool
            or None, or a wrongly typed argument.
    """
    for key, val in {"benchmark": benchmark, "command": command, "dataset": dataset}.items():
        if not isinstance(val, str) or not val:
            raise ValueError(f"write_results: {key} must be a non-empty string, got {val!r}.")
    if not isinstance(metric, str) or not metric:
        raise ValueError(f"write_results: metric must be a non-empty string, got {metric!r}.")
    if not isinstance(higher_is_better, bool):
        raise ValueError("write_results: higher_is_better must be True or False.")
    if not isinstance(notes, str):
        raise ValueError("write_results: notes must be a string.")
    seeds = list(seeds)
    for s in seeds:
        if not isinstance(s, numbers.Integral) or isinstance(s, bool):
            raise ValueError(f"write_results: seeds must be integers, got {s!r}.")
    if not rows:
        raise ValueError("write_results: rows is empty; a results file needs at least one row.")
    names = [r.name for r in rows]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"write_results: duplicate row names {dup}; give each row its own name.")
    results = {
        "benchmark": benchmark,
        "command": command,
        "dataset": dataset,
        "metric": metric,
        "higher_is_better": higher_is_better,
        "seeds": [int(s) for s in seeds],
        "rows": [r.to_dict() for r in rows],
        "env": env_info(),
        "date": datetime.date.today().isoformat(),
        "notes": notes,
    }
    # allow_nan=False is a last guard: nothing non-finite may reach the file.
    text = json.dumps(results, indent=2, allow_nan=False) + "\n"
    _atomic_write_text(Path(path), text)
    return results


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_results(path: str | os.PathLike) -> dict:
    """Read and validate a results file written by :func:`write_results`.

    Checks that every required key is present with the right JSON type, that each row holds a
    name, finite values and ``mean``/``std`` consistent with them, and that ``extra`` holds only
    numbers, strings, booleans or None. Unknown top-level keys are kept.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: invalid JSON, or a missing or badly typed key; the message names the file and
            the key (e.g. ``rows[1].mean``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: results file not found; run the benchmark to create it.")

    def bad(msg: str) -> ValueError:
        return ValueError(f"{path}: {msg}")

    def reject_constant(token: str) -> float:
        raise bad(f"contains {token}, which is not valid JSON; results must be finite numbers.")

    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=reject_constant)
    except json.JSONDecodeError as e:
        raise bad(f"not valid JSON ({e}).") from e
    except UnicodeDecodeError as e:
        raise bad(f"not UTF-8 text ({e}).") from e
    if not isinstance(data, dict):
        raise bad(f"top level must be a JSON object, got {type(data).__name__}.")

    def check_type(obj: dict, key: str, types: tuple[type, ...], label: str) -> None:
        if key not in obj:
            raise bad(f"missing key '{label}'.")
        val = obj[key]
        ok = isinstance(val, types) and not (isinstance(val, bool) and bool not in types)
        if not ok:
            want = " or ".join(t.__name__ for t in types)
            raise bad(f"key '{label}' must be {want}, got {type(val).__name__} ({val!r:.60}).")

    for key, types in _REQUIRED.items():
        check_type(data, key, types, key)
    if "notes" in data and not isinstance(data["notes"], str):
        raise bad(f"key 'notes' must be str, got {type(data['notes']).__name__}.")
    for i, s in enumerate(data["seeds"]):
        if not isinstance(s, int) or isinstance(s, bool):
            raise bad(f"key 'seeds[{i}]' must be int, got {s!r}.")
    if not data["rows"]:
        raise bad("key 'rows' is empty; a results file needs at least one row.")
    for i, row in enumerate(data["rows"]):
        if not isinstance(row, dict):
            raise bad(f"key 'rows[{i}]' must be an object, got {type(row).__name__}.")
        for key, types in _ROW_REQUIRED.items():
            check_type(row, key, types, f"rows[{i}].{key}")
        try:
            rebuilt = Row(name=row["name"], values=row["values"])
            _check_extra(row["extra"], where=f"rows[{i}]")
        except ValueError as e:
            raise bad(f"key 'rows[{i}]': {e}") from e
        for key, expected in (("mean", rebuilt.mean), ("std", rebuilt.std)):
            if not math.isclose(row[key], expected, rel_tol=1e-9, abs_tol=1e-12):
                raise bad(
                    f"key 'rows[{i}].{key}'={row[key]!r} does not match its values "
                    f"({expected!r}); rewrite the file with write_results."
                )
    return data


def _decimals_for(mean: float, std: float) -> int:
    """Decimals so that ``std`` shows two significant digits (or ``mean`` four when std is 0)."""
    ref, sig = (std, 2) if std > 0 else (abs(mean), 4)
    if ref == 0 or not math.isfinite(ref):
        return 0
    return min(8, max(0, sig - 1 - math.floor(math.log10(ref))))


def format_mean_std(mean: float, std: float, *, n: int | None = None) -> str:
    """Format ``mean ± std`` with the precision the spread supports.

    The std is shown with two significant digits and the mean with the same number of decimals
    (``0.91, 0.01414 -> "0.910 ± 0.014"``, ``93.1234, 0.4123 -> "93.12 ± 0.41"``). With a std of
    zero the mean gets four significant digits; with ``n=1`` (one value, no spread measured) only
    the mean is shown.
    """
    d = _decimals_for(mean, std)
    if n == 1:
        return f"{mean:.{d}f}"
    return f"{mean:.{d}f} ± {std:.{d}f}"


def format_value(v: object) -> str:
    """Format an ``extra`` value for a table: SI suffixes from 10 000 up (``4.06e7 -> "40.6M"``),
    four significant digits for other floats, ``—`` for None."""
    if v is None:
        return "—"
    if isinstance(v, (bool, str)):
        return str(v)
    if _is_number(v):
        f = float(v)  # type: ignore[arg-type]
        if abs(f) >= 1e4:
            for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
                if abs(f) >= div:
                    return f"{f / div:.3g}{suffix}"
        if isinstance(v, numbers.Integral):
            return str(int(v))  # type: ignore[call-overload]
        return f"{f:.4g}"
    return str(v)


def extra_keys(results: dict) -> list[str]:
    """Union of the rows' ``extra`` keys, in order of first appearance."""
    keys: list[str] = []
    for row in results["rows"]:
        for k in row.get("extra", {}):
            if k not in keys:
                keys.append(k)
    return keys


def format_table(results: dict) -> Table:
    """A rich table of a results dict: name, mean ± std, n, then one column per ``extra`` key.

    Rows keep the order of the file. A row without a given extra shows ``—``.
    """
    direction = "↑" if results["higher_is_better"] else "↓"
    table = Table(
        title=f"{results['benchmark']} — {results['dataset']}",
        caption=f"$ {results['command']}",
    )
    table.add_column("name")
    table.add_column(f"{results['metric']} {direction} (mean ± std)", justify="right")
    table.add_column("n", justify="right")
    keys = extra_keys(results)
    for k in keys:
        table.add_column(k, justify="right")
    for row in results["rows"]:
        extra = row.get("extra", {})
        table.add_row(
            row["name"],
            format_mean_std(row["mean"], row["std"], n=len(row["values"])),
            str(len(row["values"])),
            *(format_value(extra.get(k)) for k in keys),
        )
    return table
