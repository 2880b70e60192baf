"""The ickd recipes' options added for issue #8: the distilled stage, the student-alone switch of
ickd_seg and the per-row lines printed after a run."""

from __future__ import annotations

import pytest
import torch

from frugalcv.core.config import ConfigError, apply_overrides
from frugalcv.distill import recipes, seg_recipe
from frugalcv.zoo import create_model

pytestmark = pytest.mark.unit


def _pair():
    torch.manual_seed(0)
    student = create_model("resnet8", num_classes=10, in_chans=1)
    teacher = create_model("resnet8x2", num_classes=10, in_chans=1)
    return student, teacher


def test_stage_2_distils_the_second_stage_map():
    student, teacher = _pair()
    cfg = recipes.DistillConfig(teacher="resnet8x2", student="resnet8", stage=2)
    task = recipes.make_distill_task(cfg, "ickd", student=student, teacher=teacher)
    # embed: student stage-2 channels (32) -> teacher stage-2 channels (64)
    assert task.ickd.embed.conv.in_channels == 32 and task.ickd.embed.conv.out_channels == 64
    x, y = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
    f, logits = task.features_logits(student, x)
    assert f.shape == (8, 32, 14, 14) and logits.shape == (8, 10)
    assert torch.allclose(logits, student(x), atol=1e-6)  # logits still from the last stage
    out = task.training_step((x, y))
    assert out["ickd"] > 0 and torch.isfinite(out["loss"])
    # the last-stage task sees a different (7x7) map: the two losses differ
    last = recipes.make_distill_task(
        recipes.DistillConfig(teacher="resnet8x2", student="resnet8"),
        "ickd",
        student=student,
        teacher=teacher,
    )
    assert last.features_logits(student, x)[0].shape == (8, 64, 7, 7)


def test_stage_errors_name_the_fix():
    with pytest.raises(ConfigError, match="distill.stage must be 0"):
        apply_overrides(recipes.tiny(), {"distill.stage": -1})
    student, teacher = _pair()
    cfg = recipes.DistillConfig(stage=4)
    with pytest.raises(ValueError, match="has 3 stages; choose 0"):
        recipes.make_distill_task(cfg, "ickd", student=student, teacher=teacher)


def test_seg_rows_need_a_student_row():
    with pytest.raises(ConfigError, match="no student row to train"):
        apply_overrides(seg_recipe.tiny(), {"distill.grids": "", "distill.alone": False})
    cfg = apply_overrides(seg_recipe.tiny(), {"distill.grids": "", "distill.alone": True})
    assert cfg.distill.grids == () and cfg.distill.alone
    with pytest.raises(ConfigError, match="num_digit_classes"):
        apply_overrides(seg_recipe.tiny(), {"data.num_digit_classes": 11})


def test_notice_lines_state_the_change_against_the_student_alone():
    rows = [
        {"name": "teacher", "final": {"acc": 0.9}},
        {"name": "student", "final": {"acc": 0.7}},
        {"name": "kd", "final": {"acc": 0.75}},
        {"name": "ickd", "final": {"acc": 0.68}},
    ]
    lines = recipes.notice_lines(rows, metric="acc", models=("resnet8", "tiny_cnn"))
    assert len(lines) == 4
    assert lines[0].startswith("resnet8 teacher: acc 0.900") and "0.200 above" in lines[0]
    assert lines[1].startswith("tiny_cnn student: acc 0.700") and "above" not in lines[1]
    assert "0.050 above the student alone" in lines[2]
    assert "0.020 below the student alone" in lines[3]
    close = recipes.notice_lines(
        [{"name": "teacher", "final": {"acc": 0.71}}, {"name": "student", "final": {"acc": 0.7}}],
        metric="acc",
        models=("a", "b"),
    )
    assert "little to teach" in close[0]
    loaded = recipes.notice_lines(
        [{"name": "teacher", "loaded_from": "t.pt"}, {"name": "kd", "final": {"acc": 0.5}}],
        metric="acc",
        models=("a", "b"),
    )
    assert "loaded from a checkpoint" in loaded[0] and loaded[1].startswith("b kd: acc 0.500")
    grid = recipes.notice_lines(
        [{"name": "grid4x4", "final": {"miou": 0.5}}], metric="miou", models=("t", "s")
    )
    assert "4x4 grid" in grid[0]
