"""Where a result came from: paths made portable, and the software and hardware it ran on.

``portable`` rewrites this machine's absolute paths to the variables that name them (results files
never hold ``/home/...``); ``env_info`` describes the environment a benchmark ran on. Both are
re-exported by :mod:`frugalcv.reporting.results`.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["env_info", "find_absolute_paths", "portable"]


# ---------------------------------------------------------------------------------------------
# Portable paths


def _roots() -> list[tuple[str, str]]:
    """(absolute folder, how to write it) pairs, longest first."""
    out: list[tuple[str, str]] = []
    for var in ("FRUGALCV_DATA", "FRUGALCV_RUNS", "FRUGALCV_RESULTS"):
        value = os.environ.get(var)
        if value:
            for p in {str(Path(value).expanduser().resolve()), value.rstrip("/")}:
                if p.startswith("/") and p != "/":
                    out.append((p, f"${var}"))
    cwd = os.getcwd()
    if cwd != "/":
        out.append((cwd, "."))
    home = str(Path.home())
    if home not in ("/", ""):
        out.append((home, "~"))
    return sorted(set(out), key=lambda t: -len(t[0]))


def portable(text: str) -> str:
    """Rewrite absolute paths of this machine in ``text`` to the variable that names them.

    ``"MNIST under /data/x"`` with ``FRUGALCV_DATA=/data/x`` becomes ``"$FRUGALCV_DATA/MNIST"``;
    any other occurrence of the ``FRUGALCV_DATA``, ``FRUGALCV_RUNS`` or ``FRUGALCV_RESULTS``
    folder becomes ``$FRUGALCV_DATA`` etc., the current folder ``.`` and the home folder ``~``.
    Text without such a path is returned unchanged.
    """
    roots = _roots()
    for path, name in roots:
        # "<thing> under <root>[/sub]" (the data loaders' provenance) -> "<name>[/sub]/<thing>"
        pattern = re.compile(rf"(\S+) under {re.escape(path)}((?:/[^\s,;]*)?)(?=$|[\s,;.)])")
        text = pattern.sub(lambda m, n=name: f"{n}{m.group(2).rstrip('/')}/{m.group(1)}", text)
    for path, name in roots:
        text = re.sub(rf"{re.escape(path)}(?=$|[/\s,;.)'\"`])", lambda _m, n=name: n, text)
    return text


_ABSOLUTE = re.compile(r"(?<![\w.$~])/(?:work|tmp|home|root|mnt|Users|var|data)/[^\s\"',;)]*")


def find_absolute_paths(obj: Any) -> list[str]:
    """Absolute paths of a machine (``/home/...``, ``/tmp/...``) found in the strings of ``obj``."""
    found: list[str] = []
    if isinstance(obj, str):
        found += _ABSOLUTE.findall(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            found += find_absolute_paths(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            found += find_absolute_paths(v)
    return found


# ---------------------------------------------------------------------------------------------
# Environment


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
    return proc.stdout.strip() if proc.returncode == 0 else None


def env_info() -> dict[str, Any]:
    """Describe the software and hardware a benchmark ran on.

    Returns:
        ``python``, ``torch``, ``torchvision``, ``timm``, ``lightning``, ``numpy`` versions (None
        when not installed), ``platform``, ``cpu_count``, ``torch_threads``, ``cuda_device`` (name
        of device 0, or None without CUDA), ``git_commit`` (HEAD of the frugalcv checkout, or None
        when unavailable, e.g. an installed wheel) and ``git_dirty`` (uncommitted changes, or None).
    """
    info: dict[str, Any] = {
        "python": platform.python_version(),
        **{k: _version(k) for k in ("torch", "torchvision", "timm", "lightning", "numpy")},
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
    status = None if commit is None else _git("status", "--porcelain", "--untracked-files=no")
    info["git_dirty"] = None if status is None else bool(status)
    return info
