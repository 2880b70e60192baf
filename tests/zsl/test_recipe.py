"""The ``zsl`` recipe: a shrunken tiny run with a metric floor, active ablation terms, config
errors at parse time, the validation-class protocol, and the ERPCNet convergence helper."""

import json
import math
from dataclasses import replace

import pytest
import torch

from frugalcv.benchmarks.erpcnet import epochs_to_level, smoothed
from frugalcv.core.config import ConfigError, apply_overrides
from frugalcv.zsl import zsl_recipe

pytestmark = pytest.mark.recipe


def _small(**overrides) -> zsl_recipe.Config:
    cfg = zsl_recipe.tiny()
    return apply_overrides(
        cfg,
        {
            "data.train_per_class": 16,
            "data.test_per_class": 6,
            "train.progress": False,
            **overrides,
        },
    )


def test_tiny_bgsnet_transfers_to_unseen_classes(tmp_path):
    cfg = _small(**{"train.epochs": 6, "train.out_dir": str(tmp_path / "run")})
    out = zsl_recipe.run(cfg, preset="tiny")
    rows = {r["name"]: r for r in out["rows"]}
    assert set(rows) == {"val/bgsnet", "bgsnet"}
    final = rows["bgsnet"]["final"]
    for key in ("zsl_top1", "gzsl_unseen", "gzsl_seen", "gzsl_h", "gamma", "seen_acc"):
        assert math.isfinite(final[key])
    # 6 unseen classes: chance 1/6; the floor is far above it (0.5+ in a 6-epoch run)
    assert final["zsl_top1"] > 0.35
    assert final["gzsl_h"] == pytest.approx(
        2 * final["gzsl_unseen"] * final["gzsl_seen"] / (final["gzsl_unseen"] + final["gzsl_seen"])
    )
    saved = json.loads((tmp_path / "run" / "bgsnet" / "summary.json").read_text())
    assert saved["final"]["gzsl_h"] == final["gzsl_h"]


def _steps(task, x, y, n=4):
    torch.manual_seed(0)
    opt = torch.optim.Adam([p for p in task.parameters() if p.requires_grad], lr=1e-2)
    logs = []
    for _ in range(n):
        opt.zero_grad()
        out = task.training_step((x, y))
        out["loss"].backward()
        opt.step()
        logs.append(
            {k: float(v.detach()) for k, v in out.items() if torch.is_tensor(v) and v.numel() == 1}
        )
    return logs


@pytest.fixture(scope="module")
def small_view():
    cfg = _small(**{"zsl.gamma": "none", "data.train_per_class": 8, "data.test_per_class": 2})
    data = zsl_recipe.load_data(cfg.data, seed=0)
    _, view = zsl_recipe.split_views(data, cfg)
    return cfg, data, view


def _task(cfg, data, view, overrides):
    torch.manual_seed(0)
    return zsl_recipe.make_task(apply_overrides(cfg, overrides), data, view)


@pytest.mark.parametrize(
    ("switch", "term"),
    [
        ({"bgsnet.diversity": False}, "div"),
        ({"bgsnet.branches": "gnet"}, "bsnet"),
        ({"bgsnet.branches": "bsnet"}, "gnet"),
    ],
)
def test_bgsnet_rows_terms_are_active(small_view, switch, term):
    cfg, data, view = small_view
    x, y = view.x_fit[:64], view.y_fit[:64]
    full = _task(cfg, data, view, {"zsl.method": "bgsnet"})
    ablated = _task(cfg, data, view, {"zsl.method": "bgsnet", **switch})
    logs_full, logs_abl = _steps(full, x, y), _steps(ablated, x, y)
    values = [log[term] for log in logs_full]
    assert all(math.isfinite(v) for v in values) and max(abs(v) for v in values) > 1e-4
    assert term not in logs_abl[-1]
    p_full = dict(full.named_parameters())
    shared = [k for k, p in ablated.named_parameters() if k in p_full]
    assert shared and any(
        not torch.equal(p_full[k], dict(ablated.named_parameters())[k]) for k in shared
    )


def test_bgsnet_dataset_balance_row_and_annealing_from_run_length(small_view):
    cfg, data, view = small_view
    task = _task(cfg, data, view, {"zsl.method": "bgsnet", "train.epochs": 4})
    total = zsl_recipe.total_steps(cfg, len(view.y_fit)) * 4 / cfg.train.epochs
    bal = task.model.balance
    assert bal.anneal_start == round(0.5 * total) and bal.anneal_steps == round(0.25 * total)
    _steps(task, view.x_fit[:64], view.y_fit[:64])
    assert not torch.equal(bal.alpha.detach(), torch.zeros_like(bal.alpha))  # learned
    off = _task(cfg, data, view, {"zsl.method": "bgsnet", "bgsnet.dataset_balance": False})
    assert off.model.balance is None


def test_erpcnet_entropy_term_is_active_and_changes_the_model(small_view):
    cfg, data, view = small_view
    x, y = view.x_fit[:32], view.y_fit[:32]
    on = _task(cfg, data, view, {"zsl.method": "erpcnet"})
    off = _task(cfg, data, view, {"zsl.method": "erpcnet", "erpcnet.entropy_weight": 0.0})
    logs_on, logs_off = _steps(on, x, y, n=3), _steps(off, x, y, n=3)
    assert all(log["loss_entropy"] < -1e-3 for log in logs_on)  # -beta * H, H ~ log 16
    assert all(log["loss_entropy"] == 0.0 for log in logs_off)
    assert all(math.isfinite(log["reward"]) for log in logs_on)
    pol_on = on.model.policy_out.weight.detach()
    assert not torch.equal(pol_on, off.model.policy_out.weight.detach())
    glob = _task(cfg, data, view, {"zsl.method": "erpcnet", "erpcnet.use_localities": False})
    assert glob.model.num_steps == 0 and "loss_policy" not in _steps(glob, x, y, n=1)[0]


def test_validation_view_never_touches_test_classes():
    cfg = _small()
    data = zsl_recipe.load_data(cfg.data, seed=0)
    val, final = zsl_recipe.split_views(data, cfg)
    assert torch.isin(val.unseen, data.seen_classes).all()  # pseudo-unseen = seen classes
    assert not torch.isin(val.seen, val.unseen).any()
    for y in (val.y_fit, val.y_val, val.y_seen, val.y_unseen):
        assert not torch.isin(y, data.unseen_classes).any()
    assert len(val.unseen) == round(len(data.seen_classes) / 4)
    assert len(final.y_fit) + len(final.y_val) == len(data.y_train)
    # gamma picked on the validation view: H there is the best over the candidates
    s_s = torch.randn(len(val.y_seen), data.num_classes)
    s_u = torch.randn(len(val.y_unseen), data.num_classes)
    gamma, g = zsl_recipe.choose_gamma(s_s, val, s_u)
    assert g["h"] >= zsl_recipe.zsl_metrics(s_s, val, s_u, gamma=0.0)["gzsl_h"] - 1e-12


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"zsl.method": "sje"}, "zsl.method"),
        ({"data.name": "awa2"}, "data.name"),
        ({"bgsnet.num_keep": 9}, "bgsnet.num_keep"),
        ({"bgsnet.anneal_start": 0.9}, "bgsnet.anneal_start"),
        ({"erpcnet.entropy_weight": -0.1}, "erpcnet.entropy_weight"),
        ({"erpcnet.num_steps": 17}, "erpcnet.num_steps"),
        ({"data.val_fraction": 0.0}, "data.val_fraction"),
        ({"zsl.method": "erpcnet", "data.name": "xlsa17"}, "erpcnet needs images"),
        ({"zsl.method": "bgsnet", "data.name": "xlsa17"}, "attention=channel"),
        ({"zsl.backbone_from": "runs/x"}, "closed-form"),
        ({"zsl.backbone": "resnet9000"}, "zoo"),
    ],
)
def test_bad_config_is_refused_at_parse_time(overrides, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(zsl_recipe.tiny(), overrides)


def test_epochs_to_level_hand_values():
    assert smoothed([0.0, 3.0, 6.0], k=2) == [0.0, 1.5, 4.5]
    fast = [0.0, 1.0, 1.0, 1.0, 1.0]
    slow = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    out = epochs_to_level({"a": fast, "b": slow}, level=0.5)
    # smoothed over 3: fast 0, .5, .67, 1, 1 -> level 0.5 reached at epoch 2; slow at epoch 5
    assert out["level"] == 0.5 and out["a"] == 2 and out["b"] == 5
    flat = epochs_to_level({"a": [1.0, 0.5], "b": [1.0, 0.9]})
    assert flat == {"level": None, "a": None, "b": None}


def test_presets_parse():
    for name, make in zsl_recipe.PRESETS.items():
        cfg = make()
        extra = {"data.root": "/data/awa2-images"} if cfg.data.name == "zsl-images" else {}
        assert apply_overrides(cfg, extra) == replace(
            cfg, data=replace(cfg.data, **{k.split(".")[1]: v for k, v in extra.items()})
        ), name
    with pytest.raises(ConfigError, match="data.root"):
        apply_overrides(zsl_recipe.paper_images(), {})


def test_oracle_gzsl_separable_and_random_features():
    from frugalcv.zsl.metrics import oracle_gzsl

    g = torch.Generator().manual_seed(0)
    y_s, y_u = torch.arange(4).repeat(10), torch.arange(4, 6).repeat(10)
    onehot = torch.eye(6)
    x_s = 5 * onehot[y_s] + 0.01 * torch.randn(40, 6, generator=g)
    x_u = 5 * onehot[y_u] + 0.01 * torch.randn(20, 6, generator=g)
    perfect = oracle_gzsl(x_s, y_s, x_u, y_u)
    assert perfect == {"zsl_top1": 1.0, "gzsl_unseen": 1.0, "gzsl_seen": 1.0, "gzsl_h": 1.0}
    noise = oracle_gzsl(torch.randn(40, 6, generator=g), y_s, torch.randn(20, 6, generator=g), y_u)
    assert noise["gzsl_h"] < 0.6  # no signal: near chance (1/6 over all classes)
