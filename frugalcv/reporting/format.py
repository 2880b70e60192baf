"""Number formatting shared by the terminal table, ``report.md`` and the plots."""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.table import Table

    from frugalcv.reporting.results import Results

__all__ = ["format_mean_std", "format_table", "format_value"]


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
    """Format an ``extra`` value: SI suffixes from 10 000 up (``4.06e7 -> "40.6M"``), four
    significant digits for other floats, ``—`` for None."""
    if v is None:
        return "—"
    if isinstance(v, (bool, str)):
        return str(v)
    if isinstance(v, numbers.Real):
        f = float(v)
        if abs(f) >= 1e4:
            for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
                if abs(f) >= div:
                    return f"{f / div:.3g}{suffix}"
        if isinstance(v, numbers.Integral):
            return str(int(v))
        return f"{f:.4g}"
    return str(v)


def format_table(results: Results) -> Table:
    """A rich table: name, mean ± std, n, then one column per ``extra`` key; claims as caption.

    Rows keep the order of the file. A row without a given extra shows ``—``.
    """
    from rich.markup import escape
    from rich.table import Table

    # Every text is escaped: row names such as "BaLeNAS [search 40 epochs]" are not rich markup.
    direction = "↑" if results.higher_is_better else "↓"
    caption = [f"$ {results.command}"]
    caption += [c.describe() for c in results.evaluate_claims()]
    caption += [p.describe() for p in results.plateau]
    table = Table(
        title=escape(f"{results.benchmark} — {results.dataset}"),
        caption=escape("\n".join(caption)),
    )
    table.add_column("name")
    table.add_column(escape(f"{results.metric} {direction} (mean ± std)"), justify="right")
    table.add_column("n", justify="right")
    keys = results.extra_keys()
    for k in keys:
        table.add_column(escape(k), justify="right")
    for row in results.rows:
        table.add_row(
            escape(row.name),
            format_mean_std(row.mean, row.std, n=row.n),
            str(row.n),
            *(escape(format_value(row.extra.get(k))) for k in keys),
        )
    return table
