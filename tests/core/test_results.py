"""Results schema: Row statistics, atomic write, strict validation on read, formatting."""

import json
import math
import os

import pytest
from rich.console import Console

from frugalcv.core import results as results_mod
from frugalcv.core.results import (
    Row,
    env_info,
    format_mean_std,
    format_table,
    format_value,
    read_results,
    write_results,
)

pytestmark = pytest.mark.unit

_ARGS = dict(
    benchmark="toy",
    command="frugalcv bench toy --seeds 0 1 2",
    dataset="toy-test",
    metric="acc",
    higher_is_better=True,
    seeds=[0, 1, 2],
)


@pytest.fixture(autouse=True)
def _fast_env(monkeypatch):
    """env_info imports torch and calls git; one real call is tested below, the rest are stubbed."""
    monkeypatch.setattr(results_mod, "env_info", lambda: {"python": "3.x", "cuda_device": None})


def test_row_mean_std_hand_values():
    row = Row(name="a", values=[1.0, 2.0, 4.0])
    assert row.mean == pytest.approx(7 / 3)
    # sample variance: ((1-7/3)^2 + (2-7/3)^2 + (4-7/3)^2) / 2 = (16/9 + 1/9 + 25/9) / 2 = 7/3
    assert row.std == pytest.approx(math.sqrt(7 / 3))
    assert row.n == 3


def test_row_single_value_std_is_zero_and_two_values():
    assert Row(name="a", values=[0.7]).std == 0.0
    assert Row(name="a", values=[0.7]).mean == 0.7
    # two values 0.9, 0.92: mean 0.91, sample std = |a - b| / sqrt(2)
    row = Row(name="b", values=[0.9, 0.92])
    assert row.mean == pytest.approx(0.91)
    assert row.std == pytest.approx(0.02 / math.sqrt(2))


def test_row_rejects_empty_nan_and_non_numbers():
    with pytest.raises(ValueError, match="empty"):
        Row(name="a", values=[])
    with pytest.raises(ValueError, match="nan"):
        Row(name="a", values=[0.5, float("nan")])
    with pytest.raises(ValueError, match="not a number"):
        Row(name="a", values=["0.5"])
    with pytest.raises(ValueError, match="non-empty"):
        Row(name="", values=[1.0])


def test_write_read_round_trip(tmp_path):
    path = tmp_path / "nested" / "dir" / "toy.json"  # parent folders are created
    rows = [
        Row(name="base", values=[0.5, 0.7], extra={"macs": 1_000_000, "latency_ms": 1.5}),
        Row(name="ours", values=[0.9], extra={"params": 1234, "note": "frozen", "gpu": None}),
    ]
    written = write_results(path, rows=rows, notes="toy run", **_ARGS)
    back = read_results(path)
    assert back == written
    assert back["rows"][0]["mean"] == pytest.approx(0.6)
    assert back["rows"][0]["std"] == pytest.approx(0.2 / math.sqrt(2))
    assert back["rows"][1]["std"] == 0.0
    assert back["rows"][1]["extra"] == {"params": 1234, "note": "frozen", "gpu": None}
    assert [r["name"] for r in back["rows"]] == ["base", "ours"]
    assert back["notes"] == "toy run"
    assert back["seeds"] == [0, 1, 2]
    assert len(back["date"]) == 10 and back["date"][4] == "-"
    assert Row.from_dict(back["rows"][0]).mean == pytest.approx(0.6)
    assert list(tmp_path.joinpath("nested", "dir").iterdir()) == [path]  # no temp file left


def test_numpy_scalars_are_converted(tmp_path):
    np = pytest.importorskip("numpy")
    row = Row(name="a", values=[np.float32(0.5), np.float64(0.75)], extra={"macs": np.int64(7)})
    written = write_results(tmp_path / "r.json", rows=[row], **_ARGS)
    assert written["rows"][0]["values"] == [0.5, 0.75]
    assert type(written["rows"][0]["extra"]["macs"]) is int


def test_nan_is_refused_and_nothing_written(tmp_path):
    path = tmp_path / "r.json"
    row = Row(name="a", values=[0.5])
    row.values.append(float("nan"))  # slipped in after construction
    with pytest.raises(ValueError, match="nan"):
        write_results(path, rows=[row], **_ARGS)
    with pytest.raises(ValueError, match="inf"):
        write_results(path, rows=[Row(name="a", values=[1.0], extra={"x": math.inf})], **_ARGS)
    assert not path.exists()


def test_bad_extra_leaves_old_file_intact(tmp_path):
    path = tmp_path / "r.json"
    write_results(path, rows=[Row(name="old", values=[1.0])], **_ARGS)
    before = path.read_bytes()
    bad = Row(name="new", values=[2.0], extra={"model": object()})
    with pytest.raises((TypeError, ValueError), match="extra"):
        write_results(path, rows=[bad], **_ARGS)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_interrupted_write_leaves_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    write_results(path, rows=[Row(name="old", values=[1.0])], **_ARGS)
    before = path.read_bytes()

    def crash(fd):
        raise OSError("disk full")

    monkeypatch.setattr(results_mod.os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        write_results(path, rows=[Row(name="new", values=[2.0])], **_ARGS)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_write_rejects_duplicate_names_and_empty_rows(tmp_path):
    with pytest.raises(ValueError, match="duplicate"):
        write_results(tmp_path / "r.json", rows=[Row("a", [1.0]), Row("a", [2.0])], **_ARGS)
    with pytest.raises(ValueError, match="rows is empty"):
        write_results(tmp_path / "r.json", rows=[], **_ARGS)


def _good(tmp_path):
    path = tmp_path / "r.json"
    write_results(path, rows=[Row("a", [1.0, 3.0]), Row("b", [2.0])], **_ARGS)
    return path, json.loads(path.read_text())


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d.pop("metric"), "missing key 'metric'"),
        (lambda d: d.update(higher_is_better="yes"), "'higher_is_better' must be bool"),
        (lambda d: d.update(seeds=[0, "1"]), "'seeds[1]'"),
        (lambda d: d["rows"][1].pop("values"), "missing key 'rows[1].values'"),
        (lambda d: d["rows"][0].update(mean="2.0"), "'rows[0].mean' must be"),
        (lambda d: d["rows"][0].update(mean=2.5), "'rows[0].mean'=2.5 does not match"),
        (lambda d: d["rows"][1].update(extra={"m": [1, 2]}), "'rows[1]'"),
        (lambda d: d.update(rows=[]), "'rows' is empty"),
    ],
)
def test_read_results_errors_name_file_and_key(tmp_path, mutate, needle):
    path, data = _good(tmp_path)
    mutate(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError) as info:
        read_results(path)
    assert str(path) in str(info.value)
    assert needle in str(info.value)


def test_read_results_rejects_nan_token_and_bad_json(tmp_path):
    path, data = _good(tmp_path)
    path.write_text(path.read_text().replace('"values": [\n        2.0', '"values": [NaN'))
    with pytest.raises(ValueError, match="NaN"):
        read_results(path)
    path.write_text("{truncated")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_results(path)
    with pytest.raises(FileNotFoundError):
        read_results(tmp_path / "missing.json")


def test_format_helpers():
    assert format_mean_std(0.91, 0.02 / math.sqrt(2)) == "0.910 ± 0.014"
    assert format_mean_std(93.1234, 0.4123) == "93.12 ± 0.41"
    assert format_mean_std(0.93123, 0.0) == "0.9312 ± 0.0000"
    assert format_mean_std(0.93123, 0.0, n=1) == "0.9312"
    assert format_value(40_560_000) == "40.6M"
    assert format_value(1_080_000_000) == "1.08G"
    assert format_value(1234) == "1234"
    assert format_value(1.23456) == "1.235"
    assert format_value(None) == "—"
    assert format_value("frozen") == "frozen"


def test_format_table_columns_and_order(tmp_path):
    path = tmp_path / "r.json"
    rows = [
        Row("zeta", [0.5, 0.7], extra={"macs": 2_000_000}),
        Row("alpha", [0.9], extra={"latency_ms": 1.5}),
    ]
    table = format_table(write_results(path, rows=rows, **_ARGS))
    headers = [c.header for c in table.columns]
    assert headers[0] == "name" and headers[2] == "n"
    assert headers[3:] == ["macs", "latency_ms"]
    assert list(table.columns[0].cells) == ["zeta", "alpha"]  # order as given, not sorted
    assert list(table.columns[1].cells) == ["0.60 ± 0.14", "0.9000"]
    assert list(table.columns[3].cells) == ["2M", "—"]
    console = Console(width=120, record=True)
    console.print(table)
    assert "zeta" in console.export_text()


def test_env_info_real_call():
    # The autouse stub replaced the module attribute only; `env_info` here is the real function.
    info = env_info()
    for key in ("python", "torch", "numpy", "platform", "cpu_count", "torch_threads"):
        assert info[key] is not None, key
    assert info["cpu_count"] == os.cpu_count()
    assert "cuda_device" in info and "git_commit" in info
    json.dumps(info, allow_nan=False)  # must be serialisable into a results file
