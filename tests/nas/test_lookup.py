"""NAS-Bench-201 lookup from a tiny CSV written here, errors, and the NATS-Bench glue."""

import sys
import types

import pytest

from frugalcv.nas import NB201Lookup, default_nb201_csv

pytestmark = pytest.mark.unit

ALL_SKIP = (
    "|skip_connect~0|+|skip_connect~0|skip_connect~1|+"
    "|skip_connect~0|skip_connect~1|skip_connect~2|"
)
GOOD = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
    "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
)


def _write(tmp_path, text):
    path = tmp_path / "nb201.csv"
    path.write_text(text)
    return path


def test_query_tiny_csv(tmp_path):
    path = _write(
        tmp_path,
        "ArchitectureString,UniqueString,cifar10,cifar100,ImageNet16-120\n"
        f"{ALL_SKIP},u1,54.30,15.61,16.32\n"
        f"{GOOD},u2,93.76,70.71,40.60\n",
    )
    lookup = NB201Lookup.from_csv(path)
    assert len(lookup) == 2
    assert lookup.query(ALL_SKIP) == {"cifar10": 54.30, "cifar100": 15.61, "ImageNet16-120": 16.32}
    # Inputs listed in another order name the same cell.
    shuffled = (
        "|nor_conv_3x3~0|+|avg_pool_3x3~1|nor_conv_3x3~0|+"
        "|skip_connect~2|skip_connect~0|nor_conv_3x3~1|"
    )
    assert lookup.query(shuffled)["cifar10"] == 93.76
    assert GOOD in lookup
    missing = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    assert missing not in lookup
    with pytest.raises(KeyError, match="not in the NAS-Bench-201 table"):
        lookup.query(missing)


def test_missing_file_and_bad_tables(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="FRUGALCV_DATA"):
        NB201Lookup.from_csv(tmp_path / "absent.csv")
    monkeypatch.delenv("FRUGALCV_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="FRUGALCV_DATA"):
        default_nb201_csv()
    monkeypatch.setenv("FRUGALCV_DATA", str(tmp_path))
    assert default_nb201_csv() == tmp_path / "NAS-Bench-201" / "nb201.csv"
    with pytest.raises(ValueError, match="no arch column"):
        NB201Lookup.from_csv(_write(tmp_path, "name,acc\nx,1.0\n"))
    with pytest.raises(ValueError, match="line 2"):
        NB201Lookup.from_csv(_write(tmp_path, "arch,acc\n|bad~0|,1.0\n"))


def test_nats_glue_with_a_stand_in_api(tmp_path, monkeypatch):
    calls = []

    class FakeAPI:
        def query_index_by_arch(self, arch):
            return 7 if arch == GOOD else -1

        def get_more_info(self, index, dataset, hp, is_random):
            calls.append((index, dataset, hp, is_random))
            return {"test-accuracy": 90.0 + len(calls), "train-loss": 0.1, "comment": "x"}

    fake = types.ModuleType("nats_bench")
    fake.create = lambda path, space, fast_mode, verbose: FakeAPI()
    monkeypatch.setitem(sys.modules, "nats_bench", fake)
    bench = tmp_path / "NATS-tss-v1_0-3ffb9-simple"
    bench.mkdir()
    lookup = NB201Lookup.from_nats(bench)
    out = lookup.query(GOOD)
    assert out["cifar10/test-accuracy"] == 92.0 and out["ImageNet16-120/test-accuracy"] == 94.0
    assert "cifar10/comment" not in out
    assert calls[0] == (7, "cifar10-valid", "200", False)
    with pytest.raises(KeyError):
        lookup.query(ALL_SKIP)
    with pytest.raises(FileNotFoundError):
        NB201Lookup.from_nats(tmp_path / "absent")
