"""Results schema, claims, report and plots: everything about measured numbers, none of training.

- :mod:`~frugalcv.core.jsonio`: the one atomic, strict JSON writer.
- :mod:`~frugalcv.reporting.results`: :class:`Row`, :class:`Claim`, :class:`Results`, read/write.
- :mod:`~frugalcv.reporting.format`: ``mean ± std`` and extra-value formatting, terminal table.
- :mod:`~frugalcv.reporting.plots`, :mod:`~frugalcv.reporting.report`: ``report.md``,
  ``index.html`` and PNG plots (imported on use; they pull in matplotlib).
"""

from frugalcv.core.jsonio import read_json, write_json
from frugalcv.reporting.format import format_mean_std, format_table, format_value
from frugalcv.reporting.results import (
    Claim,
    ClaimResult,
    Results,
    Row,
    env_info,
    find_absolute_paths,
    portable,
    read_results,
    write_results,
)

__all__ = [
    "Claim",
    "ClaimResult",
    "Results",
    "Row",
    "env_info",
    "find_absolute_paths",
    "format_mean_std",
    "format_table",
    "format_value",
    "portable",
    "read_json",
    "read_results",
    "write_json",
    "write_results",
]
