"""The ``balenas`` recipe: tiny runs of each searcher with floors, the BaLeNAS term active, the
diagnostics hook, the search loader and schedule, parse-time errors, the benchmark's plan."""

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from frugalcv.core.checkpoint import load_checkpoint
from frugalcv.core.config import ConfigError, apply_overrides
from frugalcv.core.loader import TensorLoader
from frugalcv.nas import (
    NB201_OPS,
    PROXIES,
    arch_hessian_max_eigenvalue,
    balenas_recipe,
    nb201_arch_from_indices,
    nb201_arch_to_indices,
    skip_share,
)
from frugalcv.nas.balenas_recipe import (
    SearchDiagnostics,
    SearchLoader,
    cosine_floor,
    make_search_task,
    search_step_cost,
)

pytestmark = [pytest.mark.recipe, pytest.mark.usefixtures("recipe_env")]

SEARCH_EPOCHS = 3


def _cfg(out: Path, **extra):
    """The tiny preset (digits, C=8, N=1), shrunk: 3 search epochs, 5 retraining epochs."""
    return apply_overrides(
        balenas_recipe.tiny(),
        {
            "search.epochs": SEARCH_EPOCHS,
            "search.hessian_iters": 10,
            "search.tf_samples": 10,
            "train.epochs": 5,
            "train.progress": False,
            "train.out_dir": str(out),
            **extra,
        },
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """DARTS-1st and BaLeNAS on the same seed and data, run once for the module's tests."""
    root = tmp_path_factory.mktemp("balenas")
    torch.set_num_threads(1)
    out = {}
    for searcher in ("darts1", "balenas"):
        out[searcher] = root / searcher
        balenas_recipe.run(_cfg(out[searcher], **{"search.searcher": searcher}), preset="test")
    return out


def _rows(run: Path) -> dict:
    return {r["name"]: r for r in json.loads((run / "rows.json").read_text())["rows"]}


def test_balenas_recipe_clears_floor_and_writes_diagnostics(runs):
    run = runs["balenas"]
    rows = _rows(run)
    retrain = rows["retrain"]
    # Floor: sklearn digits (8x8, 10 classes), a C=8 N=1 NB201 cell trained 5 epochs; chance 0.1.
    assert retrain["final"]["acc"] > 0.85, retrain
    assert retrain["arch"] == retrain["argmax_arch"]  # plain BaLeNAS: argmax of the mean
    assert retrain["skip_share"] == skip_share(retrain["arch"])
    model = load_checkpoint(run / "retrain" / "last.pt")["model"]
    assert (
        sum(v.numel() for k, v in model.items() if "running" not in k and "num_b" not in k)
        == (retrain["params"])
    )
    records = json.loads((run / "search" / "diagnostics.json").read_text())["records"]
    assert [r["epoch"] for r in records] == [float(e) for e in range(SEARCH_EPOCHS + 1)]
    assert all(math.isfinite(r["hessian"]) and r["hessian"] != 0 for r in records)
    assert records[-1]["hessian"] == retrain["hessian_final"]
    assert records[-1]["arch"] == retrain["arch"]
    assert (run / "search" / "diagnostics.png").stat().st_size > 10_000
    assert retrain["search_s_per_epoch"] > 0 and retrain["search_peak_memory_bytes"] > 1e5
    assert retrain["search_steps"] == SEARCH_EPOCHS * (648 // 32)  # halves of 649 / 648 digits


def test_balenas_term_is_active_and_differs_from_darts(runs):
    """Vadam's q(alpha) is logged (sigma starts at 1 and shrinks), and from the same supernet
    initialisation and the same batches the BaLeNAS search ends with other alpha and weights
    than DARTS-1st."""
    recs = {
        s: json.loads((runs[s] / "search" / "diagnostics.json").read_text())["records"]
        for s in runs
    }
    sigma = [r["sigma_mean"] for r in recs["balenas"]]
    assert sigma[0] == pytest.approx(1.0)  # prec_init = prior_prec = 1 (authors' setting)
    assert all(math.isfinite(v) and 0 < v for v in sigma)
    assert all(b < a for a, b in zip(sigma, sigma[1:], strict=False))  # N*s grows every epoch
    assert "sigma_mean" not in recs["darts1"][0]
    assert recs["balenas"][0]["hessian"] == recs["darts1"][0]["hessian"]  # the same start
    tasks = {s: load_checkpoint(runs[s] / "search" / "last.pt")["task"] for s in runs}
    alpha = {s: t["supernet.alpha"] for s, t in tasks.items()}
    assert not torch.allclose(alpha["balenas"], alpha["darts1"])
    conv = "supernet.stem.0.weight"
    assert not torch.equal(tasks["balenas"][conv], tasks["darts1"][conv])
    vadam = load_checkpoint(runs["balenas"] / "search" / "last.pt")["optimizers"][1]
    assert vadam["param_groups"][0]["train_set_size"] == 648  # the alpha half of 1297 digits


def test_balenas_tf_reuses_the_search_and_selects_by_proxy(runs, tmp_path):
    # A stand-in NB201 table: every cell's "accuracy" is a function of its op indices.
    csv = tmp_path / "nb201.csv"
    lines = ["arch,cifar10_test"]
    for i in range(len(NB201_OPS) ** 6):
        idx = [(i // 5**k) % 5 for k in range(6)]
        lines.append(f"{nb201_arch_from_indices(idx)},{sum(idx)}")
    csv.write_text("\n".join(lines) + "\n")
    out = tmp_path / "tf"
    cfg = _cfg(
        out,
        **{
            "search.searcher": "balenas_tf",
            "search.ckpt": str(runs["balenas"] / "search"),
            "search.nb201_csv": str(csv),
            "train.epochs": 1,
        },
    )
    r = balenas_recipe.run(cfg, preset="test")["rows"][1]
    sel = json.loads((out / "tf_selection.json").read_text())
    scores = {c["arch"]: c["score"] for c in sel["candidates"]}
    assert sum(c["count"] for c in sel["candidates"]) == 10 and len(scores) == r["tf_distinct"]
    assert r["arch"] == sel["arch"] == max(scores, key=scores.get)
    assert r["tf_score"] == max(scores.values())
    assert r["argmax_arch"] == _rows(runs["balenas"])["retrain"]["arch"]  # the same search
    assert r["hessian_final"] == _rows(runs["balenas"])["retrain"]["hessian_final"]
    assert r["nb201_cifar10_test"] == sum(nb201_arch_to_indices(r["arch"]))
    assert not (out / "search").exists()  # nothing was searched again


def test_random_search_spends_the_supernet_budget(tmp_path):
    out = tmp_path / "random"
    cfg = _cfg(out, **{"search.searcher": "random", "search.random_samples": 3, "train.epochs": 2})
    r = balenas_recipe.run(cfg, preset="test")["rows"]
    search, retrain = r[0], r[1]
    assert len(search["candidates"]) == 3
    best = max(search["candidates"], key=lambda c: c["val_acc"])
    assert retrain["arch"] == search["chosen"] == best["arch"]
    # 3 cells x 1 epoch = the 3 epochs of weight steps a supernet search takes (20 per epoch)
    assert retrain["search_steps"] == SEARCH_EPOCHS * (648 // 32)
    assert retrain["hessian_final"] is None and retrain["final"]["acc"] > 0.5


def test_diagnostics_hook_leaves_the_search_untouched(tmp_path):
    torch.manual_seed(0)
    s = balenas_recipe.tiny().search
    task, opts = make_search_task(s, num_classes=10, in_channels=1, alpha_set_size=100)
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    task.supernet(x)  # move the BN statistics away from their init
    buffers = {k: b.clone() for k, b in task.supernet.named_buffers()}
    rng = torch.get_rng_state()
    hook = SearchDiagnostics(x=x, y=y, num_iters=10)
    fabric = SimpleNamespace(is_global_zero=True, device=torch.device("cpu"))
    state = SimpleNamespace(
        step=0,
        steps_per_epoch=5,
        total_steps=10,
        fabric=fabric,
        task=task,
        optimizers=opts,
        out_dir=tmp_path,
    )
    hook.before_train(state)
    assert torch.equal(torch.get_rng_state(), rng)
    for k, b in task.supernet.named_buffers():
        assert torch.equal(b, buffers[k]), k
    expected = arch_hessian_max_eigenvalue(
        task.supernet,
        x,
        y,
        num_iters=10,
        tol=s.hessian_tol,
        generator=torch.Generator().manual_seed(0),
    )
    rec = hook.records[0]
    assert rec["hessian"] == pytest.approx(expected, rel=1e-6)
    assert rec["arch"] == task.derive() and rec["sigma_mean"] == pytest.approx(1.0)
    state.step = 3
    hook.after_step(state)  # not an epoch boundary: no record
    state.step = 5
    hook.after_step(state)
    assert [r["step"] for r in hook.records] == [0, 5] and len(hook.step_times) == 1
    again = SearchDiagnostics(x=x, y=y)
    again.load_state_dict(json.loads(json.dumps(hook.state_dict())))
    assert again.records == hook.records


def test_balenas_costs_no_more_memory_than_darts():
    """The paper's cost claim at the smallest scale: one Vadam search step holds as many bytes
    at its peak as a DARTS-1st step (both keep two moments per alpha entry)."""
    batch = (torch.rand(32, 1, 8, 8), torch.randint(0, 10, (32,))) * 2
    mem = {}
    for searcher in ("darts1", "balenas"):
        s = apply_overrides(balenas_recipe.tiny(), {"search.searcher": searcher}).search
        mem[searcher] = search_step_cost(s, batch, num_classes=10, alpha_set_size=100, steps=0)[
            "peak_memory_bytes"
        ]
    assert 0.95 <= mem["balenas"] / mem["darts1"] <= 1.1, mem


def test_search_loader_pairs_independent_halves_and_resumes():
    a = TensorLoader(
        (torch.arange(10.0), torch.arange(10)), batch_size=3, shuffle=True, seed=0, drop_last=True
    )
    b = TensorLoader(
        (torch.arange(100.0, 108.0), torch.arange(8)),
        batch_size=3,
        shuffle=True,
        seed=1,
        drop_last=True,
    )
    loader = SearchLoader(a, b)
    assert len(loader) == 2  # the shorter half: 8 // 3
    loader.set_epoch(4)
    full = list(loader)
    assert all(len(batch) == 4 for batch in full)
    assert torch.equal(full[1][0], list(a)[1][0]) and torch.equal(full[1][2], list(b)[1][0])
    resumed = list(loader.iter_from(1))
    assert len(resumed) == 1 and all(
        torch.equal(u, v) for u, v in zip(resumed[0], full[1], strict=True)
    )
    assert not torch.equal(full[0][0] - 0, full[0][2] - 100)  # two different permutations


def test_cosine_floor_hand_values():
    assert cosine_floor(0, 100, 10, floor=0.04) == pytest.approx(1.0)
    assert cosine_floor(50, 100, 10, floor=0.04) == pytest.approx(0.52)
    assert cosine_floor(100, 100, 10, floor=0.04) == pytest.approx(0.04)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"search.searcher": "dartz"}, "must be one of random, darts1, darts2, balenas"),
        ({"search.tf_proxy": "synflw"}, "Did you mean 'synflow'"),
        ({"search.channels": 0}, "search.channels must be >= 1"),
        ({"search.train_portion": 1.0}, r"search.train_portion must be in \(0, 1\)"),
        ({"search.prec_init": 0.5}, "prec_init .* must be >= search.prior_prec"),
        ({"search.lr_min": 0.5}, "search.lr_min must be in"),
        ({"search.ckpt": "runs/x/search"}, "does not apply to search.searcher=darts1"),
        ({"search.nb201_csv": "/nonexistent/nb201.csv"}, "NAS-Bench-201 table"),
    ],
)
def test_bad_config_is_refused_at_parse_time(overrides, match):
    base = {"search.searcher": "darts1"} if "search.searcher" not in overrides else {}
    with pytest.raises(ConfigError, match=match):
        apply_overrides(balenas_recipe.tiny(), {**base, **overrides})


def test_proxy_options_match_the_components():
    import typing

    assert set(typing.get_args(balenas_recipe.Proxy)) == set(PROXIES)


def test_benchmark_plan_shares_the_balenas_search():
    from frugalcv.benchmarks import get_benchmark
    from frugalcv.benchmarks.runner import make_plan

    plan = make_plan(get_benchmark("balenas"), seeds=[0, 1], runs_dir="unused", check_data=False)
    # 5 rows x 2 seeds + the schedule study (BaLeNAS, seed 0) + the explanation tests: DARTS-1st
    # and BaLeNAS searching twice as long (seed 0), BaLeNAS-TF with synflow (every seed)
    assert len(plan.jobs) == 11 + 2 + 2
    study = plan.jobs["study/balenas/seed0"]
    assert study.job.dependencies() == ("balenas/seed0",)
    assert study.cfg.train.epochs == 2 * plan.config("balenas/seed0").train.epochs
    tf = plan.jobs["balenas_tf/seed1"]
    assert tf.job.dependencies() == ("balenas/seed1",)
    assert tf.cfg.search.ckpt.endswith("balenas/seed1/search")
    ref = plan.config("balenas/seed1")
    for key in ("data", "optim"):
        assert getattr(tf.cfg, key) == getattr(ref, key)
    same = {f: getattr(tf.cfg.search, f) == getattr(ref.search, f) for f in vars(ref.search)}
    assert {f for f, eq in same.items() if not eq} == {"searcher", "ckpt"}
    d1 = plan.config("darts1/seed0")
    assert d1.train.epochs == ref.train.epochs and d1.search.epochs == ref.search.epochs
    for searcher in ("darts1", "balenas"):  # only the search length differs
        x2 = plan.config(f"explain/search_x2/{searcher}/seed0")
        base = plan.config(f"{searcher}/seed0")
        assert x2.search.epochs == 2 * base.search.epochs
        assert x2.search == type(base.search)(**{**vars(base.search), "epochs": x2.search.epochs})
        assert (x2.data, x2.optim, x2.train.epochs) == (base.data, base.optim, base.train.epochs)
    from frugalcv.testing import check_explanation_tests

    assert len(check_explanation_tests(get_benchmark("balenas"), plan)) == 3
    syn = plan.jobs["explain/tf_synflow/seed1"]
    assert syn.job.dependencies() == ("balenas/seed1",)  # selects again from the same search
    assert syn.cfg.search == type(tf.cfg.search)(**{**vars(tf.cfg.search), "tf_proxy": "synflow"})


def test_a_cell_the_proxy_cannot_score_is_written_as_none(runs, tmp_path, monkeypatch):
    """NASWOT gives -inf to a cell with a singular kernel; tf_selection.json (finite numbers only)
    holds None for it, and the run finishes (the full benchmark once failed here)."""
    import dataclasses

    from frugalcv.nas.balenas_recipe import stages

    real = stages.balenas_tf_select

    def with_unscorable(*args, **kwargs):
        sel = real(*args, **kwargs)
        worst = min(sel.scores, key=sel.scores.get)
        return dataclasses.replace(sel, scores={**sel.scores, worst: float("-inf")})

    monkeypatch.setattr(stages, "balenas_tf_select", with_unscorable)
    out = tmp_path / "tf"
    cfg = _cfg(
        out,
        **{
            "search.searcher": "balenas_tf",
            "search.ckpt": str(runs["balenas"] / "search"),
            "train.epochs": 1,
        },
    )
    balenas_recipe.run(cfg, preset="test")
    sel = json.loads((out / "tf_selection.json").read_text())
    assert None in [c["score"] for c in sel["candidates"]]
    assert all(c["score"] is None or math.isfinite(c["score"]) for c in sel["candidates"])
