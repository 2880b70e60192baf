"""One atomic, strict JSON writer (and its reader) for every file frugalcv writes as JSON.

Results files, run summaries, ``rows.json`` and ``config.json`` all go through :func:`write_json`:
the text is built fully in memory, written to a temporary file in the destination folder, flushed
to disk and moved over the destination with ``os.replace``. A crash or an error at any point
leaves an existing file untouched and no partial file behind. The JSON is strict: NaN and
infinity are refused (``allow_nan=False``), so every file is readable by any JSON parser.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["finite_or_none", "read_json", "write_json"]


def finite_or_none(value: Any) -> Any:
    """``value``, or None for a NaN/inf float: JSON files hold finite numbers only."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_json(path: str | os.PathLike, data: Any, *, indent: int | None = 2) -> Path:
    """Write ``data`` as strict JSON to ``path`` atomically; parent folders are created.

    Args:
        path: destination file.
        data: JSON-able value (dicts, lists, str, int, finite float, bool, None).
        indent: as ``json.dumps``; the file always ends with a newline.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        ValueError: ``data`` holds NaN or infinity (nothing is written).
        TypeError: ``data`` holds a value JSON cannot represent (nothing is written).
    """
    path = Path(path)
    try:
        text = json.dumps(data, indent=indent, allow_nan=False) + "\n"
    except ValueError as e:
        raise ValueError(
            f"{path}: {e}; JSON files hold finite numbers only. Replace NaN/inf by None or drop "
            "the value before writing."
        ) from e
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
    return path


def read_json(path: str | os.PathLike) -> Any:
    """Read a strict JSON file (NaN/Infinity tokens are refused).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: not UTF-8, not valid JSON, or a NaN/Infinity token; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found.")

    def reject_constant(token: str) -> float:
        raise ValueError(
            f"{path}: contains {token}, which is not valid JSON; store finite numbers."
        )

    try:
        return json.loads(path.read_text(encoding="utf-8"), parse_constant=reject_constant)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e}).") from e
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e}).") from e
