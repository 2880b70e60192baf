"""Typed configs: overrides, coercion, unknown keys, JSON replay."""

from dataclasses import dataclass, field

import pytest

from frugalcv.core.config import (
    ConfigError,
    OptimConfig,
    TrainConfig,
    apply_overrides,
    config_diff,
    load_config,
    parse_overrides,
    save_config,
    to_dict,
)

pytestmark = pytest.mark.unit


@dataclass
class Inner:
    size: tuple[int, int] = (4, 4)
    name: str | None = None


@dataclass
class Cfg:
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    inner: Inner = field(default_factory=Inner)


def test_dotted_overrides_are_coerced_by_annotation():
    cfg = apply_overrides(
        Cfg(),
        [
            "--optim.lr=0.01",
            "--train.epochs",
            "3",
            "--train.progress=false",
            "--optim.milestones=1,2",
            "--inner.size=2,8",
            "--inner.name=x",
        ],
    )
    assert cfg.optim.lr == 0.01 and isinstance(cfg.optim.lr, float)
    assert cfg.train.epochs == 3.0
    assert cfg.train.progress is False
    assert cfg.optim.milestones == (1.0, 2.0)
    assert cfg.inner.size == (2, 8)
    assert cfg.inner.name == "x"
    assert Cfg().optim.lr == 0.05  # the preset object is not mutated


def test_unknown_key_names_the_closest_valid_key():
    with pytest.raises(ConfigError, match="Did you mean 'optim.lr'"):
        apply_overrides(Cfg(), {"optim.lrr": "0.1"})


def test_bad_values_say_what_is_expected():
    with pytest.raises(ConfigError, match="integer"):
        apply_overrides(Cfg(), {"train.batch_size": "1.5"})
    with pytest.raises(ConfigError, match="true or false"):
        apply_overrides(Cfg(), {"train.resume": "maybe"})
    with pytest.raises(ConfigError, match="2 values"):
        apply_overrides(Cfg(), {"inner.size": "1,2,3"})


def test_parse_overrides_forms():
    assert parse_overrides(["--a.b=1", "--c", "2", "--flag"]) == {
        "a.b": "1",
        "c": "2",
        "flag": "true",
    }
    with pytest.raises(ConfigError):
        parse_overrides(["positional"])


def test_json_round_trip_and_replay(tmp_path):
    cfg = apply_overrides(Cfg(), {"optim.lr": "0.2", "inner.size": "3,5"})
    save_config(cfg, tmp_path / "config.json")
    again = load_config(Cfg, tmp_path / "config.json")
    assert again == cfg


def test_replay_rejects_unknown_keys(tmp_path):
    d = to_dict(Cfg())
    d["optim"]["momentun"] = 0.5
    (tmp_path / "c.json").write_text(__import__("json").dumps(d))
    with pytest.raises(ConfigError, match="optim.momentum"):
        load_config(Cfg, tmp_path / "c.json")
    with pytest.raises(FileNotFoundError):
        load_config(Cfg, tmp_path / "missing.json")


def test_config_diff_ignores_runtime_keys():
    a = to_dict(Cfg())
    b = to_dict(apply_overrides(Cfg(), {"train.progress": "false", "optim.lr": "0.3"}))
    assert config_diff(a, b) == ["optim.lr"]


def test_config_diff_treats_fields_added_later_as_defaults():
    old = to_dict(Cfg())
    del old["inner"]["name"]  # a run written before the field existed
    assert config_diff(old, to_dict(Cfg()), defaults=to_dict(Cfg())) == []
    changed = to_dict(apply_overrides(Cfg(), {"inner.name": "x"}))
    assert config_diff(old, changed, defaults=to_dict(Cfg())) == ["inner.name"]
