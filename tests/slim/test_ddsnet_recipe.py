"""The ``ddsnet`` recipe: a shrunken tiny run (three stages, every row, figures), parse-time
config errors, and the helpers' hand values."""

import json
import math

import pytest
import torch

from frugalcv.core.checkpoint import load_checkpoint
from frugalcv.core.config import ConfigError, apply_overrides
from frugalcv.data.denoise import load_denoise
from frugalcv.slim.ddsnet import DenoiseGate
from frugalcv.slim.ddsnet.recipe import (
    interpolate_curve,
    parse_sigma,
    run,
    tile_test_images,
    tiny,
)

pytestmark = pytest.mark.recipe


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddsnet") / "run"
    cfg = apply_overrides(
        tiny(),
        {
            "data.num_crops": 480,
            "data.max_test": 12,
            "ddsnet.classical": False,
            "ddsnet.latency_repeats": 1,
            "ddsnet.latency_images": 2,
            "train.out_dir": str(out),
            "train.progress": False,
        },
    )
    summary = run(cfg, preset="tiny")
    return cfg, out, {r["name"]: r for r in summary["rows"]}


def test_tiny_denoises_well_above_the_noisy_input(tiny_run):
    _, _, rows = tiny_run
    noisy = rows["noisy"]["final"]["psnr"]
    for name in ("static_c16", "supernet_c16", "dynamic", "rung2"):
        assert rows[name]["final"]["psnr"] > noisy + 2.0, name  # ~ +3.5 dB after 90 steps
        assert rows[name]["final"]["ssim"] > rows["noisy"]["final"]["ssim"]
    # the widest rung is the largest configuration: the uniform full-width row (BN statistics
    # from the same patches, averaged over other batch splits: equal up to ~0.01 dB)
    assert rows["rung2"]["config"] == ",".join(["16"] * 5)
    assert math.isclose(
        rows["rung2"]["final"]["psnr"], rows["supernet_c16"]["final"]["psnr"], abs_tol=0.02
    )


def test_ladder_is_monotone_in_macs_and_saved(tiny_run):
    _, out, rows = tiny_run
    ladder = json.loads((out / "ladder.json").read_text())
    macs = [r["macs"] for r in ladder["rungs"]]
    assert all(a > b for a, b in zip(macs, macs[1:], strict=False))
    assert len(macs) == 1 + 5 * (16 - 8) // 4  # one greedy pass down to the smallest
    assert ladder["rungs"] == rows["tailoring"]["ladder"]
    assert ladder["picked"][0] == 0 and ladder["picked"][-1] == len(macs) - 1
    # the picked rungs, MACs ascending, are the evaluated rungs
    assert rows["rung0"]["macs"] < rows["rung1"]["macs"] < rows["rung2"]["macs"]


def test_dynamic_costs_are_measured_and_the_gate_is_cheap(tiny_run):
    _, _, rows = tiny_run
    dyn, full = rows["dynamic"], rows["supernet_c16"]
    assert 0 < dyn["gate_macs"] < 0.01 * full["macs"]  # 64 px tiles: gate is < 1% of the net
    routes = [dyn[f"route_pct_rung{k}"] for k in range(3)]
    assert math.isclose(sum(routes), 1.0, abs_tol=1e-6)
    # mean MACs = route-weighted rung MACs + the gate
    expected = sum(r * rows[f"rung{k}"]["macs"] for k, r in enumerate(routes)) + dyn["gate_macs"]
    assert math.isclose(dyn["macs"], expected, rel_tol=1e-6)
    for name in ("static_c8", "supernet_c8", "rung0", "dynamic"):
        assert rows[name]["latency_ms"] > 0 and rows[name]["speedup"] > 0
    # derived rows for the claims
    assert math.isclose(
        rows["supernet_full_minus_tol"]["final"]["psnr"], full["final"]["psnr"] - 0.1
    )


def test_each_stage_is_active(tiny_run):
    cfg, out, rows = tiny_run
    # Stage 1 trains the smallest configuration too (sandwich rule): logged, finite, falling
    logs = [
        json.loads(line) for line in (out / "supernet" / "metrics.jsonl").read_text().splitlines()
    ]
    small = [r["loss_smallest"] for r in logs if "loss_smallest" in r]
    assert small and all(math.isfinite(v) and v > 0 for v in small)
    assert small[-1] < small[0]
    # shared weights differ from the static network trained alone from the same seed
    assert rows["supernet_c16"]["final"]["psnr"] != rows["static_c16"]["final"]["psnr"]
    # Stage 3 moved the gate away from its initialisation; the supernet stayed frozen
    state = load_checkpoint(out / "gate" / "last.pt")["model"]
    torch.manual_seed(cfg.train.seed)
    fresh = DenoiseGate(in_channels=1, num_choices=3).state_dict()
    assert any(not torch.equal(state[f"gate.{k}"], v) for k, v in fresh.items())
    sup = load_checkpoint(out / "supernet" / "last.pt")["model"]
    assert torch.equal(sup["head.weight"], state["supernet.head.weight"])
    assert (out / "ddsnet_psnr_vs_macs.png").stat().st_size > 1000
    assert (out / "ddsnet_denoised.png").stat().st_size > 1000


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("data.sigma", "25x", "data.sigma"),
        ("data.sigma", "-5", "data.sigma"),
        ("ddsnet.gate_rule", "cheap", "ddsnet.gate_rule"),
        ("ddsnet.widths", "8,12", "ddsnet.widths"),
        ("ddsnet.num_rungs", "99", "ddsnet.num_rungs"),
        ("ddsnet.tolerance", "-1", "ddsnet.tolerance"),
        ("model.channel_step", "3", "model.channel_step"),
        ("data.name", "bsd500", "data.name"),
    ],
)
def test_bad_config_is_refused_at_parse_time(key, value, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(tiny(), [f"--{key}={value}"])


def test_static_only_trains_and_scores_just_the_chosen_static_rows(tiny_run, tmp_path):
    """The schedule study's run: no supernet, ladder or gate; the static row scored on the same
    test tiles as in the full run, and equal to it (same init, data and schedule)."""
    cfg, _, full_rows = tiny_run
    out = tmp_path / "run"
    study = apply_overrides(
        cfg,
        {"ddsnet.static_only": True, "ddsnet.static_widths": "16", "train.out_dir": str(out)},
    )
    rows = {r["name"]: r for r in run(study, preset="tiny")["rows"]}
    assert list(rows) == ["noisy", "static_c16"]
    assert not (out / "supernet").exists() and not (out / "ladder.json").exists()
    for key in ("psnr", "ssim"):
        assert math.isclose(
            rows["static_c16"]["final"][key], full_rows["static_c16"]["final"][key], abs_tol=1e-4
        )
    assert rows["static_c16"]["macs_frac"] == full_rows["static_c16"]["macs_frac"] == 1.0


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"ddsnet.static_widths": "12"}, "not in ddsnet.widths"),
        ({"ddsnet.static_only": "true", "ddsnet.static_rows": "false"}, "static_rows=true"),
    ],
)
def test_static_row_options_are_checked_at_parse_time(extra, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(tiny(), extra)


def test_sigma_parsing():
    assert parse_sigma("25") == 25.0
    assert parse_sigma("blind") == (0.0, 55.0)


def test_interpolate_curve_hand_values():
    assert interpolate_curve([(10, 30.0), (30, 31.0)], 20) == (30.5, "interpolated")
    assert interpolate_curve([(30, 31.0), (10, 30.0)], 5)[0] == 30.0
    assert interpolate_curve([(10, 30.0), (30, 31.0)], 99)[0] == 31.0


def test_test_tiles_cover_the_images_with_their_own_noise():
    data = load_denoise("skimage-grey", sigma=25)
    noisy, clean, sigmas = tile_test_images(data, size=64, seed=0)
    expected = sum((im.shape[-2] // 64) * (im.shape[-1] // 64) for im in data.test_clean)
    assert len(noisy) == len(clean) == len(sigmas) == expected
    assert torch.equal(clean[0], data.test_clean[0][:, :64, :64])
    resid = torch.stack([n - c for n, c in zip(noisy, clean, strict=True)])
    assert abs(float(resid.std()) * 255 - 25) < 0.5
    blind = load_denoise("skimage-grey", sigma="blind")
    _, _, s = tile_test_images(blind, size=64, seed=0, max_images=10)
    assert len(s) == 10 and len(set(s.tolist())) == 10 and 0 <= s.min() and s.max() <= 55
