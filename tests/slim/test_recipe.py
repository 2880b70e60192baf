"""The ``dsnet`` recipe: both stages and every row on digits, parse-time errors, the rows' math."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from frugalcv.core.checkpoint import load_checkpoint
from frugalcv.core.config import ConfigError, apply_overrides
from frugalcv.slim import dsnet_recipe
from frugalcv.slim.dsnet_recipe import (
    LatencyConfig,
    ModelConfig,
    build_supernet,
    latency_rows,
)
from frugalcv.slim.dsnet_recipe.evaluate import interpolate_static
from frugalcv.slim.dsnet_recipe.latency import _masked_at
from frugalcv.testing import load_study

pytestmark = [pytest.mark.recipe, pytest.mark.usefixtures("recipe_env")]


def _small_cfg(out, **extra):
    """The tiny preset shrunk: sklearn digits (8x8), 3 supernet/static epochs, 2 gate epochs."""
    return apply_overrides(
        dsnet_recipe.tiny(),
        {
            "data.name": "digits",
            "data.resize": 0,
            "data.num_train": 0,
            "data.num_test": 0,
            "data.augment": False,
            "dsnet.gate_epochs": 2,
            "dsnet.ema_decay": 0.69,  # ema_decay_for(20 steps per epoch)
            "latency.repeats": 3,
            "latency.warmup": 1,
            "latency.batch_sizes": "1,16",
            "train.epochs": 3,
            "train.batch_size": 64,
            "train.progress": False,
            "train.log_every": 5,
            "train.out_dir": str(out),
            **extra,
        },
    )


def _train_lines(path):
    lines = [json.loads(s) for s in path.read_text().splitlines()]
    return [r for r in lines if r["split"] == "train"]


@pytest.fixture(scope="module")
def dsnet_run(tmp_path_factory):
    """One shrunken run shared by the tests below (about 10 s on one thread)."""
    out = tmp_path_factory.mktemp("dsnet") / "run"
    mp = pytest.MonkeyPatch()
    mp.delenv("FRUGALCV_DATA", raising=False)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        summary = dsnet_recipe.run(_small_cfg(out), preset="test")
    finally:
        torch.set_num_threads(n)
        mp.undo()
    return out, summary


def test_dsnet_recipe_trains_both_stages_and_writes_every_row(dsnet_run):
    out, s = dsnet_run
    rows = {r["name"]: r for r in s["rows"]}
    widths = ("0.25", "0.5", "0.75", "1")
    expected = (
        ["supernet", "gate"]
        + [f"static_w{w}" for w in widths]
        + [f"sub_w{w}" for w in widths]
        + ["dynamic", "random_gate", "static_interp", "static_full_minus_1pt"]
    )
    assert list(rows) == expected
    # Floors: digits (10 classes, chance 0.1) after 3 epochs of 20 steps.
    for w in widths:
        assert rows[f"sub_w{w}"]["final"]["acc"] > 0.8, rows[f"sub_w{w}"]
        assert rows[f"static_w{w}"]["final"]["acc"] > 0.8, rows[f"static_w{w}"]
    assert rows["dynamic"]["final"]["acc"] > 0.8
    # MACs grow with the width; the dynamic net's mean lies between slimmest and full.
    macs = [rows[f"sub_w{w}"]["macs"] for w in widths]
    assert macs == sorted(macs) and macs[0] < macs[-1]
    assert macs[0] <= rows["dynamic"]["macs"] <= macs[-1] + 1e4  # + the gate head
    # The random gate runs the same widths as often: the same MACs without the gate head.
    fracs = [rows["dynamic"][f"route_pct_w{p}"] for p in (25, 50, 75, 100)]
    assert math.isclose(sum(fracs), 1.0, abs_tol=1e-6)
    routed = sum(f * m for f, m in zip(fracs, macs, strict=True))
    assert math.isclose(rows["random_gate"]["macs"], routed, rel_tol=1e-6)
    for name in ("sub_w1", "dynamic", "static_w0.25"):
        assert rows[name]["latency_b1_ms"] > 0 and rows[name]["latency_b16_ms"] > 0
    assert rows["sub_w1"]["speedup_b1"] == 1.0
    # Static rows share the sub-networks' shapes: same MACs and latency columns.
    assert rows["static_w0.5"]["macs"] == rows["sub_w0.5"]["macs"]
    full = rows["static_w1"]["final"]["acc"]
    assert_close(rows["static_full_minus_1pt"]["final"]["acc"], full - 0.01)
    statics = [rows[f"static_w{w}"]["final"]["acc"] for w in widths]
    assert min(statics) <= rows["static_interp"]["final"]["acc"] <= max(statics)
    # Every file a run folder should hold.
    for sub in ("supernet", "gate", "static_w1"):
        assert (out / sub / "last.pt").is_file() and (out / sub / "summary.json").is_file()
    assert (out / "rows.json").is_file()


def test_method_terms_are_active_and_rows_differ(dsnet_run):
    """Stage I logs the slimmest width's bootstrapping loss, Stage II its SGS and complexity
    terms, all finite and non-zero; the supernet ends different from the static full-width
    network trained from the same init for the same steps, and Stage II moved only the gate."""
    out, _ = dsnet_run
    for stage, keys in (
        ("supernet", ["loss_smallest", "loss_largest"]),
        ("gate", ["sgs", "complexity", "ce"]),
    ):
        train = _train_lines(out / stage / "metrics.jsonl")
        assert train, stage
        for key in keys:
            values = [r[key] for r in train]
            assert all(math.isfinite(v) and v != 0.0 for v in values), (stage, key, values)
    sup = load_checkpoint(out / "supernet" / "last.pt")["model"]
    static = load_checkpoint(out / "static_w1" / "last.pt")["model"]
    static = {k.removeprefix("model."): v for k, v in static.items()}
    assert sup.keys() == static.keys()
    assert any(not torch.equal(sup[k], static[k]) for k in sup if not k.startswith("gate."))
    gate_task = load_checkpoint(out / "gate" / "last.pt")["model"]
    for k, v in gate_task.items():
        if "running_" in k or "num_batches" in k:
            continue  # BN statistics were recalibrated between the stages
        if k.startswith("gate.slim_head") or k.startswith("gate.reduce"):
            assert not torch.equal(v, sup[k]), k  # the gate trained
        else:
            assert torch.equal(v, sup[k]), k  # the rest stayed frozen


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("model.arch", "ds_mobilenetv3", "must be one of ds_mobilenet, ds_resnet, ds_vit"),
        ("dsnet.bootstrap", "teacher", "must be one of ema, live, none"),
        ("dsnet.gate_schedule", "step", "must be one of cosine, none"),
        ("dsnet.ema_decay", "1.5", "dsnet.ema_decay must be in"),
        ("dsnet.complexity_weight", "-1", "dsnet.complexity_weight must be"),
        ("model.widths", "0.5,0.25,1.0", "model.widths must be"),
        ("model.widths", "0.25,0.5", "ending in 1.0"),
        ("model.resnet_depth", "10", "6n\\+2"),
        ("latency.batch_sizes", "0,8", "latency.batch_sizes must be >= 1"),
    ],
)
def test_bad_config_is_refused_at_parse_time(key, value, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(dsnet_recipe.tiny(), {key: value})


def test_static_only_trains_just_the_chosen_static_rows(tmp_path, monkeypatch):
    """The schedule study's run: no supernet, gate or evaluation rows; one static row whose
    weights start from the supernet's init, as in the full run."""
    monkeypatch.delenv("FRUGALCV_DATA", raising=False)
    out = tmp_path / "run"
    cfg = _small_cfg(
        out, **{"dsnet.static_only": True, "dsnet.static_widths": "1.0", "train.epochs": 1}
    )
    summary = dsnet_recipe.run(cfg, preset="test")
    rows = {r["name"]: r for r in summary["rows"]}
    assert list(rows) == ["static_w1"]
    assert rows["static_w1"]["final"]["acc"] > 0.5  # digits, one epoch of 20 steps; chance 0.1
    assert rows["static_w1"]["width"] == 1.0 and rows["static_w1"]["macs"] > 0
    assert not (out / "supernet").exists() and not (out / "gate").exists()
    assert (out / "static_w1" / "last.pt").is_file()


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"dsnet.static_widths": "0.3"}, "not in model.widths"),
        ({"dsnet.static_only": "true", "dsnet.static_rows": "false"}, "static_rows=true"),
    ],
)
def test_static_row_options_are_checked_before_any_work(tmp_path, extra, match):
    with pytest.raises(ConfigError, match=match):
        _small_cfg(tmp_path / "run", **extra)
    assert not (tmp_path / "run").exists()


def test_ensemble_without_ema_is_refused():
    with pytest.raises(ConfigError, match="needs dsnet.bootstrap=ema"):
        apply_overrides(dsnet_recipe.tiny(), {"dsnet.ensemble": "true", "dsnet.bootstrap": "live"})


def test_interpolate_static_hand_values():
    static = {0.5: (10.0, 0.80), 1.0: (30.0, 0.90), 0.25: (5.0, 0.70)}
    assert interpolate_static(static, 20.0) == (pytest.approx(0.85), "between w0.5 and w1")
    assert interpolate_static(static, 7.5)[0] == pytest.approx(0.75)
    assert interpolate_static(static, 2.0) == (0.70, "clamped to w0.25")
    assert interpolate_static(static, 40.0) == (0.90, "clamped to w1")


def test_masked_path_equals_the_sliced_sub_network():
    """The authors' masking computes the same function as the slice (at full-width cost)."""
    torch.manual_seed(0)
    for arch in ("ds_resnet", "ds_mobilenet"):
        net = build_supernet(ModelConfig(arch=arch), num_classes=10, in_chans=3, image_size=16)
        net.eval()
        x = torch.randn(3, 3, 16, 16)
        with torch.no_grad():
            for k, w in enumerate(net.widths):
                assert_close(_masked_at(net, x, k), net(x, width=w), atol=1e-5, rtol=1e-4)


def test_latency_rows_report_efficiency_against_exact_mac_reductions():
    cfg = LatencyConfig(
        only=True, nets=("ds_resnet",), image_size=32, batch_sizes=(1,), repeats=1, warmup=0
    )
    rows = {r["name"]: r for r in latency_rows(cfg, seed=0)}
    assert set(rows) == {
        f"resnet50 b1 w{w} {m}" for w in ("0.25", "0.5", "0.75") for m in ("sliced", "masked")
    }
    for name, r in rows.items():
        assert r["macs_full"] > r["macs"] if "sliced" in name else r["macs"] == r["macs_full"]
        assert_close(
            r["final"]["efficiency"],
            r["full_ms"] / r["median_ms"] / r["mac_reduction"],
            rtol=1e-3,
            atol=1e-3,
        )
    red = [rows[f"resnet50 b1 w{w} sliced"]["mac_reduction"] for w in ("0.25", "0.5", "0.75")]
    assert red[0] > red[1] > red[2] > 1.0


def test_dsnet_plan_explanation_tests_change_one_condition_each():
    from frugalcv.benchmarks import get_benchmark
    from frugalcv.benchmarks.runner import make_plan
    from frugalcv.testing import check_explanation_tests

    bench = get_benchmark("dsnet")
    plan = make_plan(bench, seeds=[0, 1], runs_dir="unused", check_data=False)
    assert len(check_explanation_tests(bench, plan)) == 4  # two gate claims x two nets
    # the longest first: the ViT's (480 epochs; its study 960) ahead of the CNN's (120)
    assert list(plan.jobs)[:4] == [
        "study/ds_vit/seed0",
        "ds_vit/seed0",
        "ds_vit/seed1",
        "ds_vit/static_w1/seed0",
    ]
    for arch in ("ds_resnet", "ds_vit"):  # each static row is a job of its own, joined
        base = plan.config(f"{arch}/seed1")
        assert not base.dsnet.static_rows
        for w in (0.25, 0.5, 0.75, 1.0):
            part = plan.jobs[f"{arch}/static_w{w:g}/seed1"]
            assert part.job.part_of == f"{arch}/seed1"
            cfg = part.cfg
            assert cfg.dsnet.static_only and cfg.dsnet.static_widths == (w,)
            assert (cfg.data, cfg.model, cfg.optim) == (base.data, base.model, base.optim)
            assert dataclasses.replace(cfg.train, out_dir=base.train.out_dir) == base.train
    assert (
        plan.config("ds_vit/seed0").train.epochs == 4 * plan.config("ds_resnet/seed0").train.epochs
    )
    for arch in ("ds_resnet", "ds_vit"):  # Stage II is a fifth of Stage I, as DS-Net's 30/150
        cfg = plan.config(f"{arch}/seed0")
        assert cfg.dsnet.gate_epochs * 5 == cfg.train.epochs
    for arch in ("ds_resnet", "ds_vit"):
        base = plan.config(f"{arch}/seed1")
        unit = plan.jobs[f"explain/unit1e9/{arch}/seed1"]
        assert unit.job.dependencies() == (f"{arch}/seed1",)  # the same Stage I
        cfg = unit.cfg
        assert cfg.dsnet.macs_unit == 1e9 and not cfg.dsnet.static_rows
        assert cfg.dsnet.supernet_ckpt.endswith(f"{arch}/seed1/supernet/last.pt")
        same = {f for f in vars(base.dsnet) if getattr(base.dsnet, f) == getattr(cfg.dsnet, f)}
        assert set(vars(base.dsnet)) - same == {"macs_unit", "supernet_ckpt"}
        assert (cfg.data, cfg.model, cfg.optim) == (base.data, base.model, base.optim)
        # the teacher's horizon in epochs is DS-Net's
        assert base.dsnet.ema_decay == pytest.approx(0.9223, abs=1e-4)
    for arch in ("ds_resnet", "ds_vit"):  # schedule studies: the full-width static row at 2x
        study, base = plan.config(f"study/{arch}/seed0"), plan.config(f"{arch}/seed0")
        assert study.train.epochs == 2 * base.train.epochs
        assert study.dsnet.static_only and study.dsnet.static_widths == (1.0,)
        assert (study.data, study.model, study.optim) == (base.data, base.model, base.optim)
        same = dataclasses.replace(
            study.train, epochs=base.train.epochs, out_dir=base.train.out_dir
        )
        assert same == base.train
    check = {c.row: c for c in bench.schedule_checks}
    assert set(check) == {"ds_resnet: static w1", "ds_vit: static w1"}
    assert check["ds_vit: static w1"].doubled.job == "study/ds_vit/seed0"


def test_gate_signal_study_features_match_the_sliced_forward():
    from frugalcv.slim import DSResNet

    study = load_study("dsnet_gate_signal")
    torch.manual_seed(0)
    model = DSResNet(layers=(1, 1), planes=(8, 16), in_channels=1, num_classes=3).eval()
    x, y = torch.randn(10, 1, 12, 12), torch.randint(0, 3, (10,))
    f = study.features(model, [(x[:6], y[:6]), (x[6:], y[6:])])
    assert f["trunk"].shape == (10, 8) and f["stage2"].shape[0] == 10
    with torch.no_grad():
        z = model(x, width=model.widths[0])
    assert (f["hard"] == (z.argmax(-1) != y).numpy()).all()
    assert np.allclose(f["conf"], torch.softmax(z, -1).max(-1).values.numpy(), atol=1e-6)
    # the results file: one row per quantity, claims on the two conditions the gate needs
    m = {k: 0.0 for k in study.LABELS} | {"auc_trunk": 0.7}
    res = study.results([m, m], [0, 1])
    verdicts = [cr.holds for cr in res.evaluate_claims()]
    assert verdicts == [True, False] and all(c.explains == study.CLAIM for c in res.claims)


def test_gate_budget_study_scores_and_claims_explain_the_benchmarks():
    from frugalcv.benchmarks.dsnet import BENCHMARK
    from frugalcv.slim import DSResNet

    study = load_study("dsnet_gate_budget")
    torch.manual_seed(0)
    model = DSResNet(layers=(1, 1), planes=(8, 16), in_channels=1, num_classes=3).eval()
    x, y = torch.randn(10, 1, 12, 12), torch.randint(0, 3, (10,))
    study.BATCH = 4  # several batches, the last one short
    s = study.scores(model, x, y)
    with torch.no_grad():
        f = model.forward_trunk(x)
        small, large = model(x, width=model.widths[0]), model(x, width=model.widths[-1])
        p = torch.softmax(model.gate(f).logits, -1)[:, -1]
    assert torch.equal(s["small_ok"], small.argmax(-1) == y)
    assert torch.equal(s["large_ok"], large.argmax(-1) == y)
    torch.testing.assert_close(s["score"], p)
    assert set(study.scores(model, x, None)) == {"score"}
    # results: every claim explains one of the dsnet benchmark's own claims, by its text
    m = {
        "auc": 0.6,
        "budget": dict(acc=0.8, random_acc=0.7, oracle_acc=0.95, share=0.4, target=0.4, macs=2.0),
        "train_calibrated_share": 0.5,
        "static_at_budget": 0.9,
        "static_full": 0.805,
        "full_macs": 3.0,
    }
    res = study.results({a: [m, m] for a in study.ARCHS}, [0, 1])
    texts = {c.text for c in BENCHMARK.claims}
    assert all(c.explains in texts for c in res.claims)
    assert [cr.holds for cr in res.evaluate_claims()] == [True, True, True, False] * 2
