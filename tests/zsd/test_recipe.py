"""The ``contrastzsd`` recipe: a shrunken tiny run with a metric floor, each row's subnet active,
config errors at parse time."""

import json
import math

import pytest
import torch

from frugalcv.core.config import ConfigError, apply_overrides
from frugalcv.core.loader import list_collate
from frugalcv.zsd import recipe

pytestmark = pytest.mark.recipe


def _small(tmp_path, **overrides) -> recipe.Config:
    return apply_overrides(
        recipe.tiny(),
        {
            "data.num_train": 160,
            "data.num_val": 16,
            "data.num_test": 24,
            "train.max_steps": 100,
            "train.eval_every": 100,
            "train.progress": False,
            "train.out_dir": str(tmp_path / "run"),
            "eval.draw_images": 2,
            **overrides,
        },
    )


def test_tiny_plain_row_detects_seen_digits_and_scores_unseen(tmp_path, monkeypatch):
    monkeypatch.setenv("FRUGALCV_CACHE", str(tmp_path / "cache"))
    out = recipe.run(_small(tmp_path, **{"contrast.rows": "plain"}), preset="tiny")
    (row,) = out["rows"]
    final = row["final"]
    assert row["name"] == "plain" and row["steps"] == 100
    # a random detector scores about 0 mAP; 100 steps from scratch find and name seen digits
    assert final["map_seen"] > 0.03
    for key in (*recipe.ZSD_KEYS, *recipe.GZSD_KEYS):
        assert 0.0 <= final[key] <= 1.0 and math.isfinite(final[key])
    # Recall@100 cannot grow with a stricter IoU; H is the harmonic mean of S and U
    assert final["zsd_recall100_iou40"] >= final["zsd_recall100_iou50"]
    assert final["zsd_recall100_iou50"] >= final["zsd_recall100_iou60"]
    s, u = final["gzsd_map_seen"], final["gzsd_map_unseen"]
    assert final["gzsd_map_hm"] == pytest.approx(2 * s * u / (s + u) if s + u else 0.0)
    saved = json.loads((tmp_path / "run" / "plain" / "summary.json").read_text())
    assert saved["final"]["zsd_map"] == final["zsd_map"] and saved["gzsd_seen_bias"] == 0.0
    png = tmp_path / "run" / "detections.png"
    assert png.is_file() and png.stat().st_size > 10_000


def _steps(task, batch, n=3):
    opt = torch.optim.Adam([p for p in task.parameters() if p.requires_grad], lr=1e-3)
    logs = []
    for _ in range(n):
        torch.manual_seed(1)  # the same RoI sampling in every row
        opt.zero_grad()
        out = task.training_step(batch)
        out["loss"].backward()
        opt.step()
        logs.append({k: float(v.detach()) for k, v in out.items()})
    return logs


def test_each_row_adds_its_active_term(zsd_digits):
    cfg = recipe.tiny()
    batch = list_collate([zsd_digits.train[i] for i in range(4)])
    tasks, logs = {}, {}
    for row in recipe.ROWS:
        torch.manual_seed(0)  # the same init for every row (train_rows does this)
        tasks[row] = recipe.make_task(cfg, zsd_digits, row)
        logs[row] = _steps(tasks[row], batch)
    both = {"loss_rc", "loss_rr"}
    expected = {"plain": set(), "rc": {"loss_rc"}, "rr": {"loss_rr"}, "full": both}
    for row, terms in expected.items():
        assert both & set(logs[row][-1]) == terms
        for term in terms:
            values = [log[term] for log in logs[row]]
            assert all(math.isfinite(v) and v > 1e-3 for v in values)
    # the same init: identical first detection losses; the extra terms then change the model
    first = {row: logs[row][0]["loss_classifier"] for row in recipe.ROWS}
    assert len(set(first.values())) == 1
    plain = dict(tasks["plain"].model.named_parameters())
    for row in ("rc", "rr", "full"):
        params = dict(tasks[row].model.named_parameters())
        assert any(not torch.equal(plain[k], p) for k, p in params.items())
    # region-category never touches the region-region head; plain's weights are 0 for both
    assert tasks["plain"].rc_weight == 0 and tasks["plain"].rr_weight == 0
    assert tasks["full"].rc_weight == cfg.contrast.rc and tasks["full"].rr_weight == cfg.contrast.rr


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"contrast.rows": "plain,rcc"}, "rcc"),
        ({"data.name": "pascal"}, "data.name"),
        ({"contrast.negative_strength": 1.5}, "negative_strength"),
        ({"contrast.tau_rr": 0}, "tau_rr"),
        ({"contrast.rc": 0}, "weight"),  # the 'rc' row would equal 'plain'
        ({"contrast.rows": "plain,plain"}, "repeated"),
        ({"data.image_size": 32}, "image_size"),
        ({"eval.draw_top": 0}, "draw_top"),
        ({"detector.backbone": "resnet"}, "detector.backbone"),
    ],
)
def test_bad_config_fails_at_parse_time(override, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(recipe.tiny(), override)


def test_presets_parse_and_name_the_papers_splits():
    assert set(recipe.PRESETS) == {"tiny", "paper_voc", "paper_coco"}
    voc, coco = recipe.paper_voc(), recipe.paper_coco()
    assert voc.data.name == "voc" and coco.data.name == "coco"
    assert coco.data.coco_split == "65_15"
    assert apply_overrides(coco, {"data.coco_split": "48_17"}).data.coco_split == "48_17"
    assert voc.contrast.rows == ("plain", "rc", "rr", "full")
    assert (voc.contrast.rc, voc.contrast.rr, voc.contrast.tau_rc) == (0.2, 0.4, 0.1)
