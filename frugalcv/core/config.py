"""Typed dataclass configs: dotted CLI overrides, strict JSON round-trip, shared train/optim parts.

A recipe's ``Config`` is a nested dataclass whose defaults are the paper's values. Presets are plain
functions returning a ``Config``. ``apply_overrides(cfg, ["optim.lr=0.05"])`` coerces each value by
the field's annotation; an unknown key raises :class:`ConfigError` naming the closest valid key.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

C = TypeVar("C")


class ConfigError(ValueError):
    """A config key or value is not valid; the message says which and what to do."""


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule (step-based; epochs are converted by the loop)."""

    name: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = 0.05  # base learning rate (RepDistiller / ICKD CIFAR default)
    momentum: float = 0.9  # SGD momentum (RepDistiller default)
    weight_decay: float = 5e-4  # L2 (RepDistiller default)
    nesterov: bool = False
    schedule: Literal["multistep", "cosine", "constant"] = "multistep"
    milestones: tuple[float, ...] = (150, 180, 210)  # epochs at which lr *= gamma (RepDistiller)
    gamma: float = 0.1  # multistep decay factor
    warmup_steps: int = 0  # linear warm-up from 0 (optimizer steps)

    def validate(self) -> None:
        _positive_finite("optim.lr", self.lr)
        if self.weight_decay < 0 or self.momentum < 0 or self.warmup_steps < 0:
            raise ConfigError(
                "optim.weight_decay, optim.momentum and optim.warmup_steps must be >= 0."
            )


@dataclass
class TrainConfig:
    """What the shared loop needs: length, batching, evaluation, checkpoints, devices."""

    epochs: float = 240  # training length in epochs (RepDistiller); ignored if max_steps > 0
    max_steps: int = 0  # if > 0, train exactly this many optimizer steps
    batch_size: int = 64  # samples per optimizer step; see batch_scope (RepDistiller CIFAR default)
    # What batch_size counts under DDP. "process": each of the world_size processes takes
    # batch_size samples per step, so an epoch has 1/world_size the steps of one process and the
    # global batch is world_size * batch_size. "global": each process takes
    # batch_size // world_size (must divide), so the steps and the global batch are one process's.
    batch_scope: Literal["process", "global"] = "process"
    eval_batch_size: int = 256
    eval_every: int = 0  # steps between evaluations; 0 = once per epoch
    ckpt_every: int = 0  # steps between checkpoints; 0 = once per epoch
    log_every: int = 20  # steps between train-metric lines in metrics.jsonl
    grad_clip: float = 0.0  # max grad norm; 0 = off
    seed: int = 0
    out_dir: str = ""  # "" = runs/<recipe>/<preset>
    resume: bool = True  # continue from out_dir/last.pt when it exists and the config matches
    overwrite: bool = False  # move an existing run with another config aside instead of failing
    # A checkpoint file (last.pt) or run folder of an earlier run: a new run (in a new out_dir)
    # starts from its model, optimizer, step and RNG state, with this config's other values (e.g.
    # a lower optim.lr after a NaN stop). Stage folders map by name (<run>/<stage>/last.pt). The
    # keys that differ are recorded in config.json under "_run.resumed_from". Ignored once the new
    # folder holds its own last.pt (rerunning the command then resumes that).
    resume_from: str = ""
    accelerator: Literal["auto", "cpu", "cuda", "gpu", "mps"] = "auto"  # Lightning Fabric
    devices: int = 1  # processes on this machine (launched by Fabric, or by torchrun)
    num_nodes: int = 1
    precision: Literal["32-true", "bf16-mixed", "16-mixed", "bf16-true", "64-true"] = "32-true"
    channels_last: bool = False  # NHWC memory layout for the task and 4-D inputs (faster CPU convs)
    compile: bool = False  # torch.compile the training forward (first steps pay the compile)
    progress: bool = True  # rich progress bar with ETA
    monitor: str = ""  # validation metric that defines "best"; "" = the task's own (Task.monitor)
    monitor_mode: Literal["", "max", "min"] = ""  # "" = the task's own

    def validate(self) -> None:
        if self.max_steps < 0:
            raise ConfigError(
                f"train.max_steps must be >= 0 (0 = use epochs); got {self.max_steps}."
            )
        if self.max_steps == 0:
            _positive_finite("train.epochs", self.epochs)
        for key in ("batch_size", "eval_batch_size", "devices", "num_nodes", "log_every"):
            if getattr(self, key) < 1:
                raise ConfigError(f"train.{key} must be >= 1; got {getattr(self, key)}.")
        for key in ("eval_every", "ckpt_every"):
            if getattr(self, key) < 0:
                raise ConfigError(f"train.{key} must be >= 0 (0 = once per epoch).")
        if self.grad_clip < 0 or not math.isfinite(self.grad_clip):
            raise ConfigError(
                f"train.grad_clip must be a finite number >= 0; got {self.grad_clip}."
            )


def _positive_finite(key: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{key} must be a finite number > 0; got {value}.")


# Keys that do not change what a run computes; they may differ on resume. train.devices and
# train.num_nodes are NOT among them: the world size changes the steps per epoch (see batch_scope).
RUNTIME_KEYS = frozenset(
    {
        "train.resume",
        "train.overwrite",
        "train.resume_from",
        "train.progress",
        "train.log_every",
        "train.accelerator",
        "train.out_dir",
        "train.eval_batch_size",
        "preset",
    }
)

# The top-level key of config.json that holds the run's identity (fingerprint, world size,
# resumed_from); it is not a config key, so replay and comparisons skip it.
RUN_KEY = "_run"


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one dict of dotted keys (``{"optim": {"lr": 1}}`` -> ``{"optim.lr": 1}``)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def run_identity(cfg_dict: dict, *, world_size: int) -> dict[str, Any]:
    """The keys that define what a run computes: every config key but :data:`RUNTIME_KEYS`, as
    dotted keys, plus ``world_size`` (devices x nodes, or torchrun's). ``fit`` adds the data
    (``data.train``, ``data.val``: fingerprints of the loaders' tensors; ``data.source``)."""
    cfg_dict = {k: v for k, v in cfg_dict.items() if k != RUN_KEY}
    flat = {k: v for k, v in flatten(cfg_dict).items() if k not in RUNTIME_KEYS}
    return {**flat, "world_size": int(world_size)}


def _canonical(value: Any) -> Any:
    """Integral floats as ints (a preset's ``epochs=4`` and a replayed ``4.0`` are one value)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    return value


def identity_fingerprint(identity: dict[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON (sorted keys, no spaces, integral floats as ints) of a
    run identity."""
    text = json.dumps(_canonical(identity), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def identity_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Keys whose values differ between two run identities (a key on one side only counts)."""
    absent = object()
    return sorted(k for k in set(old) | set(new) if old.get(k, absent) != new.get(k, absent))


def to_dict(cfg: Any) -> dict:
    """A config dataclass as plain JSON-able nested dicts (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def flat_keys(cfg_or_cls: Any, prefix: str = "") -> dict[str, Any]:
    """Map of every dotted key to its type annotation (leaves only)."""
    cls = cfg_or_cls if isinstance(cfg_or_cls, type) else type(cfg_or_cls)
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.update(flat_keys(tp, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = tp
    return out


def _closest(value: Any, choices: Any) -> str:
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.5)
    return f" Did you mean '{close[0]}'?" if close else ""


def choices(tp: Any) -> tuple | None:
    """The fixed set of values an annotation allows (``Literal``, or a tuple of ``Literal``)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return args
    if origin in (tuple, list) and args and typing.get_origin(args[0]) is typing.Literal:
        return typing.get_args(args[0])
    return None


def describe(cfg: Any) -> str:
    """``--show-config`` text: the allowed values of fixed-choice keys, then the config as JSON.

    The JSON comes last, so ``text[text.index("{"):]`` parses (and replays with ``--config``).
    """
    lines = ["# keys with a fixed set of values:"]
    for key, tp in flat_keys(cfg).items():
        allowed = choices(tp)
        if allowed is not None:
            lines.append(f"#   {key}: {' | '.join(map(str, allowed))}")
    lines.append(json.dumps(to_dict(cfg), indent=2))
    return "\n".join(lines)


def _unknown_key(key: str, valid: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return ConfigError(
        f"Unknown config key '{key}'.{hint} Run `frugalcv run <recipe> --show-config` to list keys."
    )


def coerce(value: Any, tp: Any, *, key: str = "") -> Any:
    """Convert ``value`` (often a CLI string) to annotation ``tp``, or raise ConfigError."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        for a in args:
            # CLI strings are compared as text; JSON replay gives the value itself.
            if value == a or (
                isinstance(value, str) and not isinstance(a, str) and value == str(a)
            ):
                return a
        raise ConfigError(
            f"'{key}' must be one of {', '.join(map(str, args))}; got {value!r}."
            + _closest(value, args)
        )
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce(value, a, key=key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"Cannot read {value!r} for '{key}' as {tp}: {'; '.join(errors)}")
    if origin in (tuple, list):
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("[") or text.startswith("("):
                text = text[1:-1]
            items: list[Any] = [s.strip() for s in text.split(",") if s.strip()]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            raise ConfigError(f"'{key}' needs a list like 1,2,3; got {value!r}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(v, args[0], key=key) for v in items)
        if origin is tuple and args:
            if len(items) != len(args):
                raise ConfigError(f"'{key}' needs {len(args)} values; got {value!r}")
            return tuple(coerce(v, a, key=key) for v, a in zip(items, args, strict=True))
        inner = args[0] if args else str
        out = [coerce(v, inner, key=key) for v in items]
        return tuple(out) if origin is tuple else out
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"'{key}' needs true or false; got {value!r}")
    if tp in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"'{key}' needs a number; got {value!r}")
        try:
            if tp is int:
                as_float = float(value)
                if as_float != int(as_float):
                    raise ValueError
                return int(as_float)
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"'{key}' needs a{'n integer' if tp is int else ' number'}; got {value!r}"
            ) from None
    if tp is str:
        return str(value)
    if tp is Any:
        return value
    raise ConfigError(f"'{key}' has an unsupported annotation {tp}")


def _set(cfg: Any, dotted: str, value: Any) -> Any:
    head, _, rest = dotted.partition(".")
    if rest:
        return dataclasses.replace(cfg, **{head: _set(getattr(cfg, head), rest, value)})
    return dataclasses.replace(cfg, **{head: value})


def parse_overrides(args: list[str]) -> dict[str, str]:
    """``["--optim.lr=0.05", "--train.epochs", "3"]`` -> ``{"optim.lr": "0.05", ...}``."""
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        a = args[i]
        if not a.startswith("--"):
            raise ConfigError(f"Expected an override like --optim.lr=0.05, got {a!r}")
        a = a[2:]
        if "=" in a:
            k, v = a.split("=", 1)
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            k, v = a, args[i + 1]
            i += 1
        else:
            k, v = a, "true"  # a bare flag sets a boolean
        out[k.replace("-", "_")] = v
        i += 1
    return out


def apply_overrides(cfg: C, overrides: dict[str, Any] | list[str]) -> C:
    """Return a copy of ``cfg`` with dotted-key overrides applied and coerced by annotation.

    Every value is checked here, at parse time: ``Literal`` options against their set, and each
    section's ``validate()`` (when it defines one) once all overrides are applied.
    """
    if isinstance(overrides, list):
        overrides = parse_overrides(overrides)
    keys = flat_keys(cfg)
    for k, v in overrides.items():
        if k not in keys:
            raise _unknown_key(k, list(keys))
        cfg = _set(cfg, k, coerce(v, keys[k], key=k))
    validate(cfg)
    return cfg


def validate(cfg: Any, prefix: str = "") -> None:
    """Call ``validate()`` on every section of a config that defines it (depth first).

    A section's ``validate`` raises :class:`ConfigError` naming the key and the fix.
    """
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            validate(value, f"{prefix}{f.name}.")
    check = getattr(cfg, "validate", None)
    if callable(check):
        check()


def from_dict(cls: type[C], data: dict, *, prefix: str = "") -> C:
    """Build ``cls`` from nested dicts (as :func:`save_config` writes); unknown keys are errors."""
    if not isinstance(data, dict):
        raise ConfigError(f"Config section '{prefix or '<root>'}' must be a mapping, got {data!r}")
    if not prefix:  # a written config.json's run identity is not a config key
        data = {k: v for k, v in data.items() if k != RUN_KEY}
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for k in data:
        if k not in names:
            raise _unknown_key(prefix + k, [prefix + n for n in names])
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            kwargs[f.name] = from_dict(tp, data[f.name], prefix=f"{prefix}{f.name}.")
        else:
            kwargs[f.name] = coerce(data[f.name], tp, key=prefix + f.name)
    cfg = cls(**kwargs)
    if not prefix:
        validate(cfg)
    return cfg


def save_config(cfg: Any, path: str | Path) -> None:
    from frugalcv.core.jsonio import write_json

    write_json(path, to_dict(cfg))


def load_config(cls: type[C], path: str | Path) -> C:
    """Replay a written ``config.json``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"No config file at {path}; pass the config.json of an earlier run."
        )
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path} is not valid JSON ({e}); pass the config.json of a run.") from e
    return from_dict(cls, data)


def config_diff(
    a: dict, b: dict, *, ignore: frozenset[str] = RUNTIME_KEYS, defaults: dict | None = None
) -> list[str]:
    """Dotted keys whose values differ between two ``to_dict`` configs (runtime keys ignored).

    With ``defaults`` (``to_dict`` of the default config), a key missing on one side (a field
    added after that run was written) counts as holding its default value.
    """

    def flat(d: dict) -> dict[str, Any]:
        return flatten({k: v for k, v in d.items() if k != RUN_KEY})

    fa, fb = flat(a), flat(b)
    if defaults is not None:
        fd = flat(defaults)
        fa, fb = {**fd, **fa}, {**fd, **fb}
    keys = (set(fa) | set(fb)) - set(ignore)
    return sorted(k for k in keys if fa.get(k) != fb.get(k))


__all__ = [
    "ConfigError",
    "choices",
    "describe",
    "validate",
    "OptimConfig",
    "TrainConfig",
    "apply_overrides",
    "coerce",
    "config_diff",
    "field",
    "flat_keys",
    "flatten",
    "from_dict",
    "identity_diff",
    "identity_fingerprint",
    "run_identity",
    "RUN_KEY",
    "RUNTIME_KEYS",
    "load_config",
    "parse_overrides",
    "save_config",
    "to_dict",
]
