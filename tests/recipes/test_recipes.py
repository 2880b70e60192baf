"""Tiny end-to-end recipe runs with metric floors (the `recipe` tier), on embedded data."""

import json
import math
from pathlib import Path

import pytest
import torch

from frugalcv import classify
from frugalcv.core.checkpoint import CheckpointError, load_checkpoint
from frugalcv.core.config import ConfigError, apply_overrides
from frugalcv.distill import recipes as ickd_recipe
from frugalcv.distill import seg_recipe

pytestmark = [pytest.mark.recipe, pytest.mark.usefixtures("recipe_env")]


def _classify_cfg(out, **extra):
    return apply_overrides(
        classify.tiny(),
        {
            "data.name": "digits",
            "model.name": "tiny_cnn",
            "train.epochs": 3,
            "train.batch_size": 32,
            "train.progress": False,
            "train.out_dir": str(out),
            **extra,
        },
    )


def test_classify_recipe_clears_floor_and_writes_run_folder(tmp_path):
    out = tmp_path / "run"
    s = classify.run(_classify_cfg(out), preset="test")
    # Floor: sklearn digits (8x8, 10 classes) with a 3-conv net after 3 epochs; chance is 0.1.
    assert s["final"]["acc"] > 0.80, s
    assert s["best"]["acc"] >= s["final"]["acc"] and isinstance(s["best"]["step"], int)
    for f in ("config.json", "metrics.jsonl", "last.pt", "summary.json"):
        assert (out / f).is_file(), f
    assert json.loads((out / "summary.json").read_text())["final"] == s["final"]
    # Rerunning the same command resumes the finished run: same numbers, no new training.
    again = classify.run(_classify_cfg(out), preset="test")
    assert again["final"] == s["final"] and again["steps"] == s["steps"]


def test_run_folder_with_other_config_is_never_overwritten(tmp_path):
    out = tmp_path / "run"
    classify.run(_classify_cfg(out, **{"train.max_steps": 5}), preset="test")
    before = (out / "last.pt").read_bytes()
    with pytest.raises(ConfigError, match=r"optim.lr.*--train.overwrite"):
        classify.run(_classify_cfg(out, **{"train.max_steps": 5, "optim.lr": 0.3}), preset="t")
    assert (out / "last.pt").read_bytes() == before
    classify.run(
        _classify_cfg(out, **{"train.max_steps": 5, "optim.lr": 0.3, "train.overwrite": True}),
        preset="test",
    )
    moved = [p for p in tmp_path.iterdir() if p.name.startswith("run.old-")]
    assert len(moved) == 1 and (moved[0] / "last.pt").read_bytes() == before


def _assert_terms_active(run: Path, terms: dict[str, list[str]]) -> None:
    """Each distillation row logged its extra loss terms, finite and non-zero at every logged
    step, and its student ended different from the student-alone row's (same init, same steps).

    A floor on accuracy alone passes when a term's weight is silently zero.
    """
    student = load_checkpoint(run / "student" / "last.pt")["model"]
    for row, keys in terms.items():
        lines = [json.loads(s) for s in (run / row / "metrics.jsonl").read_text().splitlines()]
        train = [r for r in lines if r["split"] == "train"]
        assert train, row
        for key in keys:
            values = [r[key] for r in train]
            assert all(math.isfinite(v) and v != 0.0 for v in values), (row, key, values)
        model = load_checkpoint(run / row / "last.pt")["model"]
        assert model.keys() == student.keys()
        assert any(not torch.equal(model[k], student[k]) for k in model), row


def test_row_with_a_zero_weight_is_refused_at_parse_time():
    with pytest.raises(ConfigError, match="'kd' but its term's weight"):
        apply_overrides(ickd_recipe.tiny(), {"distill.rows": "student,kd", "distill.kd": 0})
    with pytest.raises(ConfigError, match="must be one of student, kd, ickd, ickd_kd"):
        apply_overrides(ickd_recipe.tiny(), {"distill.rows": "student,kdd"})


def test_ickd_recipe_trains_teacher_then_each_student_row(tmp_path):
    cfg = apply_overrides(
        ickd_recipe.tiny(),
        {
            "data.name": "digits",
            "data.num_train": 0,  # all (the tiny preset takes 1500 of mnist-back)
            "data.num_test": 0,
            "distill.teacher": "resnet8",
            "distill.student": "tiny_cnn",
            "distill.rows": "student,kd,ickd_kd",
            "train.epochs": 3,
            "train.batch_size": 32,
            "train.progress": False,
            "train.log_every": 5,
            "train.out_dir": str(tmp_path / "ickd"),
        },
    )
    s = ickd_recipe.run(cfg, preset="test")
    names = [r["name"] for r in s["rows"]]
    assert names == ["teacher", "student", "kd", "ickd_kd"]
    accs = {r["name"]: r["final"]["acc"] for r in s["rows"]}
    # Floors on sklearn digits after 3 epochs (chance 0.1).
    assert accs["teacher"] > 0.8, accs
    assert min(accs.values()) > 0.6, accs
    _assert_terms_active(tmp_path / "ickd", {"kd": ["kd"], "ickd_kd": ["kd", "ickd"]})
    # The teacher checkpoint loads into a fresh model (how benchmarks share one teacher).
    cfg2 = apply_overrides(
        cfg,
        {
            "distill.teacher_ckpt": str(tmp_path / "ickd/teacher/last.pt"),
            "distill.rows": "ickd",
            "train.out_dir": str(tmp_path / "b"),
        },
    )
    s2 = ickd_recipe.run(cfg2, preset="test")
    assert [r["name"] for r in s2["rows"]] == ["teacher", "ickd"]
    assert s2["rows"][1]["final"]["acc"] > 0.6
    # A student's checkpoint leaves the (external) teacher out and keeps its checksum instead.
    row_ckpt = next((tmp_path / "b").rglob("ickd/last.pt"))
    state = torch.load(row_ckpt, weights_only=True)
    assert not any(k.startswith("teacher.") for k in state["task"])
    assert state["external"]["modules"] == ["teacher"] and len(state["external"]["sha256"]) == 64
    # Resuming refills the teacher from distill.teacher_ckpt and checks it is the same one.
    (row_ckpt.parent / "summary.json").unlink()
    again = ickd_recipe.run(cfg2, preset="test")
    assert again["rows"][1]["final"]["acc"] == s2["rows"][1]["final"]["acc"]
    teacher_file = tmp_path / "ickd/teacher/last.pt"
    t = torch.load(teacher_file, weights_only=True)
    key = next(k for k, v in t["model"].items() if v.is_floating_point())
    t["model"][key] = t["model"][key] + 0.01  # another teacher behind the same path
    torch.save(t, teacher_file)
    (row_ckpt.parent / "summary.json").unlink()
    with pytest.raises(CheckpointError, match="other weights of its teacher"):
        ickd_recipe.run(cfg2, preset="test")


def test_ickd_seg_recipe_reports_miou_for_each_grid(tmp_path):
    cfg = apply_overrides(
        seg_recipe.tiny(),
        {
            "data.num_train": 500,
            "data.num_test": 100,
            "data.image_size": 32,
            "distill.teacher": "fcn_resnet8",  # fast: this test checks the wiring and a floor
            "train.epochs": 6,
            "train.progress": False,
            "distill.grids": "2",
            "train.log_every": 5,
            "train.out_dir": str(tmp_path / "seg"),
        },
    )
    s = seg_recipe.run(cfg, preset="test")
    rows = {r["name"]: r for r in s["rows"]}
    assert list(rows) == ["teacher", "student", "grid2x2"]
    background_only = (s_data := seg_recipe.load_seg_data(cfg.data)).y_test.eq(0)
    # Predicting background everywhere scores IoU = background share on class 0 and 0 elsewhere.
    floor = float(background_only.float().mean()) / s_data.num_classes
    for r in rows.values():
        assert 0.0 <= r["final"]["miou"] <= 1.0 and 0.0 <= r["final"]["pixel_acc"] <= 1.0
    assert rows["teacher"]["final"]["miou"] > floor + 0.02, (floor, rows["teacher"]["final"])
    _assert_terms_active(tmp_path / "seg", {"grid2x2": ["ickd"]})


def test_presets_build_and_have_documented_defaults():
    assert ickd_recipe.paper_cifar100().distill.ickd == 2.5
    assert ickd_recipe.paper_cifar100().optim.milestones == (150, 180, 210)
    assert ickd_recipe.paper_imagenet().distill.reduction == "official_imagenet"
    assert seg_recipe.paper_voc().distill.grids == (1, 4, 16, 32)
    with pytest.raises(ValueError, match="Unknown row"):
        ickd_recipe.make_distill_task(
            ickd_recipe.DistillConfig(), "fitnet", student=None, teacher=None
        )
