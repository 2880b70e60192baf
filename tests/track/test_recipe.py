"""The ``alt`` recipe: rounds with saved selections, the tracker clears the IdentityTracker floor,
the selectors and box losses are active, and bad configs fail at parse time."""

import json

import pytest
import torch

from frugalcv.core.config import ConfigError, apply_overrides
from frugalcv.track import TrackerTask, alt_recipe, scaled_l1_box_loss, xywh_to_xyxy
from frugalcv.track.alt_recipe import extend_selection, round_counts

pytestmark = [pytest.mark.recipe, pytest.mark.usefixtures("one_thread")]


def _small_cfg(out, **extra):
    """The tiny preset shrunk: 4 pool sequences of 40 frames, 4 test sequences."""
    return apply_overrides(
        alt_recipe.tiny(),
        {
            "data.num_train": 4,
            "data.num_test": 4,
            "data.num_frames": 40,
            "alt.num_pairs": 256,
            "alt.num_val_pairs": 32,
            "train.max_steps": 60,
            "train.batch_size": 16,
            "train.progress": False,
            "train.out_dir": str(out),
            **extra,
        },
    )


@pytest.fixture(scope="module")
def alt_run(tmp_path_factory):
    """One shrunken ALT run (2 rounds) shared by the tests below."""
    out = tmp_path_factory.mktemp("alt") / "run"
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = alt_recipe.run(_small_cfg(out, **{"alt.budget": 0.2}), preset="test")
    finally:
        torch.set_num_threads(n)
    return out, rows


def test_rounds_reveal_the_selected_frames_and_the_tracker_beats_the_floor(alt_run):
    out, rows = alt_run
    r0, r1 = rows["rows"]
    assert (r0["name"], r1["name"]) == ("round0", "round1")
    # Round 0: frame 0 of each of the 4 sequences; round 1: 20 % of 40 frames = 8 per sequence.
    assert r0["labelled_frames"] == 4 and r1["labelled_frames"] == 32
    saved = json.loads((out / "round0" / "selection.json").read_text())
    assert [len(s) for s in saved] == [8, 8, 8, 8] and all(s[0] == 0 for s in saved)
    assert all(s == sorted(set(s)) for s in saved)
    for r in (r0, r1):
        f = r["final"]
        assert 0 <= f["success_auc"] <= 1 and 0 <= f["precision"] <= 1 and f["fps"] > 0
        assert json.loads((out / r["name"] / "summary.json").read_text())["final"] == f
    # Each round's tracker clears the IdentityTracker floor (about 0.13 here; trained trackers
    # reach 0.2-0.4 after 60 steps: OPE on 4 short sequences is noisy, so the margin is 0.05)
    # and localises test pairs (pair IoU: untrained nets score 0.02-0.09).
    for r in (r0, r1):
        assert r["final"]["success_auc"] > r["identity_auc"] + 0.05
        assert r["final"]["iou"] > 0.3
    assert (out / "frames.png").is_file()


def test_resume_replays_the_saved_selection(alt_run):
    out, rows = alt_run
    """Rerunning the finished run resumes every round (no step taken) and reads the saved
    selection: same labelled frames, same scores (fps aside: it is a timing)."""
    again = alt_recipe.run(_small_cfg(out, **{"alt.budget": 0.2}), preset="test")
    for new, old in zip(again["rows"], rows["rows"], strict=True):
        assert new["labelled_frames"] == old["labelled_frames"]
        assert {k: v for k, v in new["final"].items() if k != "fps"} == {
            k: v for k, v in old["final"].items() if k != "fps"
        }


def test_a_scorer_checkpoint_scores_the_pool_instead_of_the_rounds_tracker(alt_run, tmp_path):
    """``alt.scorer_ckpt``: the selection is the one the given tracker's features make; a missing
    checkpoint fails before anything trains."""
    from frugalcv.core.checkpoint import load_model
    from frugalcv.data.base import stream_generator

    trained, _ = alt_run
    over = {"alt.budget": 0.2, "alt.scorer_ckpt": str(trained / "round1"), "train.max_steps": 3}
    cfg = _small_cfg(tmp_path / "scored", **over)
    alt_recipe.run(cfg, preset="test")
    chosen = json.loads((tmp_path / "scored" / "round0" / "selection.json").read_text())
    a, seed = cfg.alt, cfg.train.seed
    train_seqs, _, _ = alt_recipe.load_sequences(cfg.data, seed=seed)
    model = load_model(alt_recipe.make_task(a).model, trained / "round1").eval()
    features, _ = alt_recipe.score_pool(model, a, train_seqs)
    lengths = [len(q) for q in train_seqs]
    counts = round_counts(
        [alt_recipe.frame_budget(t, 0.2) for t in lengths], round_index=1, num_rounds=2
    )
    expected = [
        extend_selection(
            "alt",
            torch.tensor([0]),
            counts[i],
            num_frames=lengths[i],
            features=features[i],
            generator=stream_generator(seed + 1000, i),
            window=a.window,
            k=a.k,
            tau=a.tau,
        ).tolist()
        for i in range(len(train_seqs))
    ]
    assert chosen == expected
    missing = _small_cfg(tmp_path / "missing", **{**over, "alt.scorer_ckpt": str(tmp_path / "no")})
    with pytest.raises(FileNotFoundError, match="No checkpoint"):
        alt_recipe.run(missing, preset="test")
    assert not (tmp_path / "missing" / "round0").exists()


def test_selectors_pick_different_frames_on_the_same_budget():
    g = torch.Generator().manual_seed(0)
    t = 40
    feats = torch.randn(t, 8, generator=g)
    conf = torch.rand(t, generator=g)
    labelled = torch.tensor([0])
    picks = {
        name: extend_selection(
            name,
            labelled,
            6,
            num_frames=t,
            features=feats,
            confidence=conf,
            generator=torch.Generator().manual_seed(1),
            window=None,
            tau=10.0,
        )
        for name in ("alt", "random", "uniform", "uncertainty")
    }
    for name, idx in picks.items():
        assert len(idx) == 6 and idx[0] == 0, name
    assert picks["uniform"].tolist() == [0, 6, 13, 20, 26, 33]  # floor(i * 40 / 6)
    least = torch.argsort(conf[1:])[:5] + 1  # the 5 least confident besides frame 0
    assert picks["uncertainty"].tolist() == sorted([0, *least.tolist()])
    assert len({tuple(v.tolist()) for v in picks.values()}) == 4
    assert extend_selection("all", labelled, 1, num_frames=5).tolist() == [0, 1, 2, 3, 4]


def test_alt_extension_keeps_labelled_frames_and_adds_what_they_do_not_explain():
    # Two clusters: frames 0-4 look alike, frames 5-9 look alike. With frame 0 labelled, the
    # greedy coverage step must add a frame of the second cluster (the first is explained).
    feats = torch.zeros(10, 2)
    feats[:5, 0] = 1.0
    feats[5:, 1] = 1.0
    out = extend_selection("alt", torch.tensor([0]), 2, num_frames=10, features=feats, window=None)
    assert out.tolist() == [0, 5]  # ties: the earliest frame of the unexplained cluster
    # Growing an existing selection never drops a labelled frame.
    grown = extend_selection("alt", out, 4, num_frames=10, features=feats, window=None)
    assert set(out.tolist()) <= set(grown.tolist()) and len(grown) == 4


def test_round_counts_grow_linearly_to_the_budget():
    assert round_counts([10, 4], round_index=0, num_rounds=3) == [1, 1]
    assert round_counts([10, 4], round_index=1, num_rounds=3) == [5, 2]
    assert round_counts([10, 4], round_index=2, num_rounds=3) == [10, 4]


def test_scaled_l1_hand_value_and_iou_option_equals_tversky_at_one():
    p = torch.tensor([[0.0, 0, 10, 10]])
    g = torch.tensor([[2.0, 0, 12, 10]])
    assert scaled_l1_box_loss(p, g).item() == pytest.approx(0.1)  # (2 + 2) / (4 * 10)
    torch.manual_seed(0)
    batch = (
        torch.rand(4, 3, 32, 32),
        torch.rand(4, 3, 64, 64),
        torch.tensor([[24.0, 24, 16, 16]]).repeat(4, 1),
    )
    net = TrackerTask().model
    iou = TrackerTask(model=net, box_loss="iou").training_step(batch)["box_loss"]
    one = TrackerTask(model=net, box_loss="tversky", alpha=1.0, beta=1.0)
    assert iou.item() == pytest.approx(one.training_step(batch)["box_loss"].item())
    assert xywh_to_xyxy(batch[2])[0].tolist() == [24.0, 24, 40, 40]
    with pytest.raises(ValueError, match="box_loss must be one of"):
        TrackerTask(box_loss="giou")


@pytest.mark.parametrize("box_loss", ["l1", "iou"])
def test_box_loss_rows_are_active_and_train_another_model(box_loss, tmp_path):
    """Each loss row's box term is logged, finite and non-zero, and the row's model differs from
    the Tversky row's after the same steps from the same init."""
    models = {}
    for loss in ("tversky", box_loss):
        cfg = _small_cfg(
            tmp_path / loss,
            **{
                "alt.selector": "all",
                "alt.box_loss": loss,
                "train.max_steps": 3,
                "train.log_every": 1,
                "data.num_frames": 20,
            },
        )
        out = alt_recipe.run(cfg, preset="test")
        assert out["rows"][0]["box_loss"] == loss
        lines = [json.loads(s) for s in (tmp_path / loss / "round0" / "metrics.jsonl").open()]
        logged = [r["box_loss"] for r in lines if r.get("split") == "train"]
        assert logged and all(0 < v < 10 for v in logged)
        models[loss] = torch.load(tmp_path / loss / "round0" / "last.pt", weights_only=True)
    a, b = models["tversky"]["model"], models[box_loss]["model"]
    assert any(not torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"alt.selector": "coreset"}, "alt.selector"),
        ({"alt.box_loss": "giou"}, "alt.box_loss"),
        ({"alt.budget": 1.5}, "alt.budget"),
        ({"alt.budget": 0}, "alt.budget"),
        ({"alt.selector": "alt", "alt.num_rounds": 1}, "num_rounds >= 2"),
        ({"data.num_frames": 4}, "data.num_frames"),
        ({"alt.selector": "random", "alt.scorer_ckpt": "x.pt"}, "uses no model"),
        ({"alt.alpha": -1}, "alt.alpha"),
    ],
)
def test_bad_configs_fail_at_parse_time(override, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(alt_recipe.tiny(), override)
