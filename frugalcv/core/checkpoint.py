"""Checkpoints: written atomically, read with ``weights_only=True``, clear errors when unusable.

A checkpoint written by ``fit`` is a dict with these keys: ``format``, ``model`` (the state dict
of ``task.deployable()``: what a user loads, see :func:`load_model`), ``task`` (every parameter
and buffer of the Task, for resuming), ``optimizers``, ``hooks``, ``step``, ``best``, ``history``,
``rng`` and ``wall_s``; a checkpoint written under a recipe also holds its run identity:
``fingerprint`` (see :func:`frugalcv.core.config.identity_fingerprint`), ``identity`` (the keys it
hashes) and ``stage`` (its folder relative to the run folder, "." for a one-model run).
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

FORMAT = "frugalcv-checkpoint-v1"


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, foreign, or does not fit the model."""


class CheckpointWriteError(CheckpointError):
    """The run folder cannot take a checkpoint (read-only, not a folder, disk full)."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` via a temporary file and ``os.replace``.

    An interruption or an error mid-write leaves the previous checkpoint intact and no temporary
    file behind.

    Raises:
        CheckpointWriteError: the OS refused the write (one line naming the folder and the fix).
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"format": FORMAT, **state}, tmp)
        os.replace(tmp, path)
    except BaseException as e:
        try:
            tmp.unlink()
        except OSError:
            pass
        # torch.save reports a failed write (e.g. a full disk) as an OSError or as a RuntimeError
        # from its zip writer ("PytorchStreamWriter failed writing file ...").
        if isinstance(e, OSError) or (isinstance(e, RuntimeError) and "writ" in str(e).lower()):
            why = getattr(e, "strerror", None) or str(e).splitlines()[0][:120]
            raise CheckpointWriteError(
                f"Cannot write {path.name} in {path.parent} ({type(e).__name__}: {why}): free "
                f"disk space or make the folder writable, or choose another --train.out_dir; "
                f"rerun the same command to resume from the last checkpoint written."
            ) from None
        raise


def nonfinite_entries(state_dict: dict[str, Any]) -> list[str]:
    """Keys of a state dict whose floating-point tensors hold NaN or infinity (parameters and
    buffers alike, e.g. a BatchNorm ``running_var`` that overflowed)."""
    return [
        k
        for k, v in state_dict.items()
        if torch.is_tensor(v) and v.is_floating_point() and not bool(torch.isfinite(v).all())
    ]


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a frugalcv checkpoint on CPU with ``weights_only=True``.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is truncated/corrupt, holds objects that are not plain tensors and
            containers, or was not written by frugalcv.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}. Check the path or train first.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError) as e:
        raise CheckpointError(
            f"Checkpoint {path} is corrupt or holds non-tensor objects ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:200]}). Delete it to restart this run from scratch, or "
            f"point to another checkpoint; earlier files in the run folder are untouched."
        ) from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a frugalcv checkpoint (no '{FORMAT}' marker). To use foreign weights, "
            f"load the state dict yourself and call model.load_state_dict."
        )
    return state


def load_state_dict_checked(module: torch.nn.Module, state_dict: dict, *, source: str) -> None:
    """``module.load_state_dict`` with an error that lists missing/unexpected/mismatched keys."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = sorted(
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state_dict)
        if hasattr(state_dict[k], "shape") and state_dict[k].shape != own[k].shape
    )
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
        if shapes:
            parts.append(f"shape mismatch {shapes[:3]}")
        raise CheckpointError(
            f"Checkpoint {source} does not fit {type(module).__name__}: {'; '.join(parts)}. "
            f"It was probably written for another model or config."
        )
    module.load_state_dict(state_dict)


def load_model(model: torch.nn.Module, path: str | Path) -> torch.nn.Module:
    """Load the deployable weights of a frugalcv run into ``model`` and return it.

    Args:
        path: a checkpoint file, or a run folder holding ``last.pt`` (e.g. ``runs/ickd/tiny/kd``).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    state = load_checkpoint(path)
    if "model" not in state:
        raise CheckpointError(
            f"{path} has no 'model' entry (written by frugalcv before 0.2): retrain it, or load "
            f"state['task'] yourself and strip the Task's attribute prefix."
        )
    load_state_dict_checked(model, state["model"], source=str(path))
    return model
