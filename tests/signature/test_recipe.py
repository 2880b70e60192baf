"""The ``sgn`` recipe: a tiny run with a metric floor, live graph branches, parse-time errors,
the data dispatch to the torchvision loaders, and the benchmark's declaration."""

from __future__ import annotations

import dataclasses
import json
import math
import typing

import pytest
import torch

from frugalcv.core.checkpoint import load_checkpoint
from frugalcv.core.config import ConfigError, apply_overrides
from frugalcv.data.base import ImageData
from frugalcv.signature import recipe
from frugalcv.signature.graph import LAPLACIAN_OPTIONS, NODE_OPTIONS, PAIR_OPTIONS, WEIGHT_OPTIONS
from frugalcv.signature.sgn import AGGREGATE_OPTIONS, SGN_VARIANTS, create_sgn_model

pytestmark = pytest.mark.usefixtures("recipe_env")


def _tiny_cfg(out, **extra):
    # sklearn digits upsampled to 16 px: tiny_cnn gives 4x4 maps, 2x2 patches, a 2x2 grid
    return apply_overrides(
        recipe.tiny(),
        {
            "data.name": "digits",
            "data.image_size": 16,
            "data.num_train": 0,
            "data.num_test": 0,
            "model.ceil_mode": False,
            "optim.lr": 5e-3,
            "train.epochs": 4,
            "train.batch_size": 32,
            "train.progress": False,
            "train.out_dir": str(out),
            **extra,
        },
    )


@pytest.mark.recipe
def test_tiny_rows_learn_share_an_init_and_the_graph_branch_is_live(tmp_path, capsys):
    cfg = _tiny_cfg(tmp_path / "run")
    assert cfg.model.variants == ("cnn", "sgn") and cfg.model.backbone == "tiny_cnn"
    out = recipe.run(cfg, preset="tiny")
    rows = {r["name"]: r for r in out["rows"]}
    assert list(rows) == ["cnn", "sgn"]
    for row in rows.values():
        assert row["final"]["acc"] > 0.6, row["final"]  # 10 classes: chance 0.1
        assert row["dataset"] == "digits" and row["variant"] == row["name"]
    # the method's extra features are logged, finite and non-zero; the baseline has none
    g = rows["sgn"]["final"]["graph_norm"]
    assert math.isfinite(g) and g > 0.1, g
    assert "graph_norm" not in rows["cnn"]["final"]
    lines = (tmp_path / "run" / "sgn" / "metrics.jsonl").read_text().splitlines()
    logged = [json.loads(line)["graph_norm"] for line in lines if "graph_norm" in line]
    assert logged and all(math.isfinite(v) and v > 0 for v in logged)
    assert rows["sgn"]["params"] > rows["cnn"]["params"]
    # same initial backbone (same seed), different trained backbones (the graph's gradients)
    data = recipe.load_data(cfg.data, seed=0)
    torch.manual_seed(cfg.train.seed)
    b_cnn = recipe.make_model(cfg.model, "cnn", data).backbone.state_dict()
    torch.manual_seed(cfg.train.seed)
    b_sgn = recipe.make_model(cfg.model, "sgn", data).backbone.state_dict()
    assert all(torch.equal(b_cnn[k], b_sgn[k]) for k in b_cnn)
    trained = {
        v: load_checkpoint(tmp_path / "run" / v / "last.pt")["model"] for v in ("cnn", "sgn")
    }
    w = "backbone.stages.0.0.weight"
    assert not torch.allclose(trained["cnn"][w], trained["sgn"][w])
    assert not torch.equal(trained["sgn"][w], b_sgn["stages.0.0.weight"])
    png = tmp_path / "run" / "signature_graph.png"
    assert png.is_file() and png.stat().st_size > 2000
    printed = capsys.readouterr().out
    assert "sgn: test acc" in printed and "signature_graph.png" in printed


@pytest.mark.unit
@pytest.mark.parametrize("variant", list(SGN_VARIANTS))
def test_sgn_task_matches_cross_entropy_and_logs_only_its_branches(variant):
    torch.manual_seed(0)
    model = create_sgn_model(variant, num_classes=5, in_chans=1, image_size=16)
    task = recipe.SGNTask(model=model).eval()
    x, y = torch.rand(6, 1, 16, 16), torch.arange(6) % 5
    with torch.no_grad():
        out = task.validation_step((x, y))
        logits = model(x)
    torch.testing.assert_close(out["loss"], torch.nn.functional.cross_entropy(logits, y))
    assert out["acc"] == (logits.argmax(1) == y).float().mean()
    graph, attention = SGN_VARIANTS[variant]
    assert ("graph_norm" in out) == graph and ("attention_norm" in out) == attention
    for key in ("graph_norm", "attention_norm"):
        if key in out:
            assert out[key] > 0


@pytest.mark.unit
def test_model_defaults_and_choices_come_from_the_components():
    params = typing.get_type_hints(recipe.ModelConfig)
    defaults = recipe.ModelConfig()
    import inspect

    sig = inspect.signature(create_sgn_model).parameters
    for f in dataclasses.fields(recipe.ModelConfig):
        if f.name in sig and f.name not in ("backbone", "variant"):
            assert getattr(defaults, f.name) == sig[f.name].default, f.name
    assert typing.get_args(params["variant"]) == tuple(SGN_VARIANTS)
    assert typing.get_args(params["nodes"]) == NODE_OPTIONS
    assert typing.get_args(params["pairs"]) == PAIR_OPTIONS
    assert typing.get_args(params["weight"]) == WEIGHT_OPTIONS
    assert typing.get_args(params["laplacian"]) == LAPLACIAN_OPTIONS
    assert typing.get_args(params["aggregate"]) == AGGREGATE_OPTIONS


@pytest.mark.unit
@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"model.variant": "sgm"}, "Did you mean 'sgn'"),
        ({"model.weight": "gauss"}, "bilateral"),
        ({"model.sigma_value": "0"}, "model.sigma_value must be > 0"),
        ({"model.dropout": "1.5"}, "model.dropout"),
        ({"model.embed_dim": "30"}, "multiple of model.num_heads"),
        ({"model.patch_size": "0"}, "model.patch_size must be >= 1"),
        ({"model.variants": "cnn,cnn_mha"}, "model.variant 'sgn' is not in model.variants"),
        ({"model.variants": "sgn,sgn"}, "repeats"),
        ({"model.backbone": "tiny_cn"}, "Did you mean 'tiny_cnn'"),
        ({"data.name": "fashion_mnist"}, "Did you mean 'fashion-mnist'"),
        ({"data.image_size": "-1"}, "data.image_size"),
    ],
)
def test_bad_config_values_fail_at_parse_time(override, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(recipe.tiny(), override)


@pytest.mark.unit
def test_every_preset_validates_and_builds_its_model_at_its_image_size():
    sizes = {"mnist": 28, "fashion-mnist": 28, "stl10": 96, "asirra": 64}
    for name, preset in recipe.PRESETS.items():
        cfg = apply_overrides(preset(), {})
        if name == "tiny":
            continue
        s = sizes.get(cfg.data.name, 32)
        c = 1 if s == 28 else 3
        fake = ImageData(
            cfg.data.name, torch.zeros(2, c, s, s), torch.zeros(2).long(),
            torch.zeros(2, c, s, s), torch.zeros(2).long(), 10,
        )  # fmt: skip
        model = recipe.make_model(cfg.model, cfg.model.variant, fake)
        assert model.head.grid in ((4, 4), (8, 8)), (name, model.head.grid)
    bad = apply_overrides(recipe.paper_mnist(), {"model.ceil_mode": "false"})
    fake = ImageData("mnist", *(torch.zeros(2, 1, 28, 28), torch.zeros(2).long()) * 2, 10)
    with pytest.raises(ConfigError, match="ceil_mode"):
        recipe.make_model(bad.model, "sgn", fake)


@pytest.mark.unit
def test_load_data_reads_local_torchvision_copies_and_resizes(tmp_path):
    import struct

    import numpy as np

    raw = tmp_path / "FashionMNIST" / "raw"  # torchvision's layout, tiny uncompressed idx files
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 20), ("t10k", 10)):
        for kind, arr in (
            ("images-idx3", rng.integers(0, 256, (n, 28, 28))),
            ("labels-idx1", np.arange(n) % 10),
        ):
            head = struct.pack(">BBBB", 0, 0, 8, arr.ndim) + struct.pack(
                f">{arr.ndim}I", *arr.shape
            )
            (raw / f"{prefix}-{kind}-ubyte").write_bytes(head + arr.astype(np.uint8).tobytes())
    cfg = recipe.DataConfig(name="fashion-mnist", root=str(tmp_path), num_train=10)
    data = recipe.load_data(cfg, seed=0)
    assert data.name == "fashion-mnist" and data.x_train.shape == (10, 1, 28, 28)
    assert sorted(data.y_train.tolist()) == list(range(10))
    big = recipe.load_data(dataclasses.replace(cfg, image_size=32), seed=0)
    assert big.x_train.shape == (10, 1, 32, 32) and big.x_test.shape == (10, 1, 32, 32)
    assert 0.0 <= big.x_train.min() and big.x_train.max() <= 1.0
    torch.testing.assert_close(big.x_train.mean(), data.x_train.mean(), atol=0.02, rtol=0)
    with pytest.raises(FileNotFoundError, match="FashionMNIST"):
        recipe.load_data(dataclasses.replace(cfg, root=str(tmp_path / "none")), seed=0)


@pytest.mark.unit
def test_benchmark_rows_differ_only_in_variant_and_seed():
    from frugalcv.benchmarks.runner import make_plan
    from frugalcv.benchmarks.sgn import BENCHMARK, DATASETS, EXPLAIN, VARIANTS

    plan = make_plan(BENCHMARK, seeds=[0, 1, 2], runs_dir="unused", check_data=False)
    # + one schedule study per data set (its baseline, seed 0, at twice its epochs) and the
    # explanation tests (sgn_mha of two seeds under one changed setting each)
    explain = [n for n in plan.jobs if n.startswith("explain/")]
    assert len(plan.jobs) == len(DATASETS) * len(VARIANTS) * 3 + len(DATASETS) + len(explain)
    assert sorted(explain) == [
        f"explain/{key}/mnist-rot-back/sgn_mha/seed{s}" for key in EXPLAIN for s in (0, 1)
    ]
    for name in explain:
        changed = {k.split(".")[1]: v for k, v in EXPLAIN[name.split("/")[1]][1].items()}
        cfg, base = plan.config(name), plan.config(name.split("/", 2)[2])
        # the changed model settings, and nothing else
        assert cfg.model == dataclasses.replace(base.model, **changed)
        assert (cfg.data, cfg.optim) == (base.data, base.optim)
    rows = {r.name for r in BENCHMARK.explain_rows([0, 1, 2])}
    for claim in BENCHMARK.claims:
        if claim.explains:
            assert {claim.left, claim.right} <= rows
            assert claim.explains in {c.text for c in BENCHMARK.claims}
    assert BENCHMARK.explain_rows([2]) == [] and not make_plan(
        BENCHMARK, seeds=[2], runs_dir="unused", check_data=False
    ).jobs.keys() & set(explain)
    assert [c.row for c in BENCHMARK.schedule_checks] == [f"{d}/cnn" for d in DATASETS]
    for dataset in DATASETS:
        study = plan.config(f"study/{dataset}/cnn/seed0")
        base = plan.config(f"{dataset}/cnn/seed0")
        assert study.train.epochs == 2 * base.train.epochs
        same = {"epochs": 0, "eval_every": 0, "out_dir": ""}  # all else equal
        assert dataclasses.replace(study.train, **same) == dataclasses.replace(base.train, **same)
    # the longest job (the doubled baseline on the longest schedule) is scheduled first
    first = plan.config(next(iter(plan.jobs)))
    assert first.train.epochs == max(c.train.epochs for c in map(plan.config, plan.jobs))
    names = {r.name for r in BENCHMARK.rows([0, 1, 2])} | rows
    for claim in BENCHMARK.claims:
        assert {claim.left, claim.right} <= names and claim.op == ">" and claim.margin == 0
    for dataset in DATASETS:
        cfgs = [(v, s, plan.config(f"{dataset}/{v}/seed{s}")) for v in VARIANTS for s in (0, 1, 2)]
        base = dataclasses.asdict(cfgs[0][2])
        for v, s, cfg in cfgs:
            d = dataclasses.asdict(cfg)
            assert d["model"]["variant"] == v and d["train"]["seed"] == s
            assert d["data"] == base["data"] and d["optim"] == base["optim"]
            same = {k: x for k, x in d["model"].items() if k != "variant"}
            assert same == {k: x for k, x in base["model"].items() if k != "variant"}
            keep = ("seed", "out_dir")
            assert {k: x for k, x in d["train"].items() if k not in keep} == {
                k: x for k, x in base["train"].items() if k not in keep
            }
