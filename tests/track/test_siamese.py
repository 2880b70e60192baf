"""Crops, the Siamese network, its Task (it learns) and the Tracker protocol."""

import pytest
import torch
import torch.nn.functional as F

from frugalcv.data.tracking import make_sequences
from frugalcv.track import (
    ALTSelector,
    FramePool,
    IdentityTracker,
    SiamBoxNet,
    SiamTracker,
    Tracker,
    TrackerTask,
    crop_resize,
    frame_features,
    make_pairs,
    ope_scores,
    run_tracker,
    template_side,
    xcorr_depthwise,
)
from frugalcv.track.siamese import response_locations


@pytest.fixture(scope="module")
def train_seqs():
    return make_sequences(4, seed=0, num_frames=24, height=80, width=96)


def test_template_side_hand_value():
    assert template_side(torch.tensor([20.0, 20.0])) == pytest.approx(40.0)
    assert template_side(torch.tensor([10.0, 30.0])) == pytest.approx((30 * 50) ** 0.5)


def test_crop_resize_maps_a_box_where_the_formula_says():
    image = torch.zeros(1, 3, 40, 60)
    image[:, :, 10:20, 30:40] = 1.0  # box (x=30, y=10, w=10, h=10)
    crop = crop_resize(image, torch.tensor([[35.0, 15.0]]), torch.tensor([20.0]), size=20)
    # Side 20 at size 20: scale 1, origin (25, 5): the box lands on [5, 15) x [5, 15).
    assert torch.allclose(crop[0, 0, 5:15, 5:15], torch.ones(10, 10))
    assert crop[0, 0, :5].abs().max() < 1e-6
    # Outside the frame the crop holds the mean colour.
    far = crop_resize(image, torch.tensor([[-100.0, -100.0]]), torch.tensor([10.0]), size=4)
    assert torch.allclose(far, image.mean().expand_as(far))


def test_xcorr_depthwise_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    x, z = torch.randn(2, 3, 6, 6, generator=g), torch.randn(2, 3, 3, 3, generator=g)
    out = xcorr_depthwise(x, z)
    ref = torch.stack(
        [
            torch.stack(
                [F.conv2d(x[b, c][None, None], z[b, c][None, None])[0, 0] for c in range(3)]
            )
            for b in range(2)
        ]
    )
    assert out.shape == (2, 3, 4, 4) and torch.allclose(out, ref, atol=1e-5)


def test_response_locations_centre_on_the_crop():
    loc = response_locations(9, stride=4, x_size=64)
    assert loc.tolist() == [16.0 + 4 * i for i in range(9)]
    net = SiamBoxNet()
    out = net(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 64, 64))
    assert out["score"].shape == (2, 9, 9) and out["boxes"].shape == (2, 9, 9, 4)
    # Untrained box head: a 16 x 16 box centred on each location.
    assert torch.allclose(out["boxes"][0, 4, 4], torch.tensor([24.0, 24, 40, 40]))


def test_pairs_are_deterministic_and_boxes_fit(train_seqs):
    a = make_pairs(train_seqs, num_pairs=8, seed=1)
    b = make_pairs(train_seqs, num_pairs=8, seed=1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert a["template"].shape == (8, 3, 32, 32) and a["search"].shape == (8, 3, 64, 64)
    centre = a["box"][:, :2] + a["box"][:, 2:] / 2
    # Centre jitter 0.2 of the search side: the centre stays within 32 +- 12.8 px.
    assert ((centre - 32).abs() <= 12.8 + 1e-4).all()


def test_pairs_only_use_labelled_frames(train_seqs):
    seqs = train_seqs[:1]
    seq = seqs[0]
    # Label frame 5 only: every template and search crop is cut from frame 5.
    pairs = make_pairs(seqs, num_pairs=3, seed=0, labelled=[torch.tensor([5])])
    side = template_side(seq.boxes[5, 2:])
    ref = crop_resize(
        seq.frames[5].permute(2, 0, 1).float()[None] / 255,
        (seq.boxes[5, :2] + seq.boxes[5, 2:] / 2)[None],
        side[None],
        size=32,
    )
    assert torch.allclose(pairs["template"], ref.expand(3, -1, -1, -1))
    with pytest.raises(ValueError, match="label at least one"):
        make_pairs(seqs, num_pairs=1, labelled=[torch.tensor([], dtype=torch.long)])


def test_task_learns_with_a_plain_loop(train_seqs):
    torch.manual_seed(0)
    train = make_pairs(train_seqs, num_pairs=256, seed=0)
    task = TrackerTask()
    opt = torch.optim.Adam(task.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    history = []
    for _ in range(40):
        idx = torch.randint(256, (16,), generator=g)
        losses = task.training_step(tuple(train[k][idx] for k in ("template", "search", "box")))
        opt.zero_grad()
        losses["loss"].backward()
        opt.step()
        history.append(float(losses["loss"].detach()))
    assert sum(history[-5:]) / 5 < 0.6 * sum(history[:5]) / 5
    task.train(False)
    with torch.no_grad():
        val = task.validation_step(train)
    assert set(val) >= {"loss", "cls_loss", "box_loss", "iou", "centre_error"}
    assert val["iou"] > 0.5  # untrained nets score 0.02-0.09 here; 40 steps reach ~0.75
    assert TrackerTask.monitor == ("iou", "max") and task.deployable() is task.model


def test_tversky_weights_reach_the_loss(train_seqs):
    batch = make_pairs(train_seqs, num_pairs=4, seed=0)
    torch.manual_seed(0)
    net = SiamBoxNet()
    iou = TrackerTask(model=net, alpha=1.0, beta=1.0).training_step(batch)["box_loss"]
    dice = TrackerTask(model=net, alpha=0.5, beta=0.5).training_step(batch)["box_loss"]
    assert dice < iou  # 1 - Dice <= 1 - IoU, equal only for perfect boxes


def test_tracker_protocol_runs_on_a_sequence(train_seqs):
    seq = train_seqs[0]
    tracker = SiamTracker(SiamBoxNet())
    assert isinstance(tracker, Tracker) and isinstance(IdentityTracker(), Tracker)
    out = run_tracker(tracker, seq)
    assert out["boxes"].shape == (len(seq), 4) and torch.isfinite(out["boxes"]).all()
    assert torch.equal(out["boxes"][0], seq.boxes[0])
    assert ((out["confidence"] >= 0) & (out["confidence"] <= 1)).all()
    assert (out["boxes"][:, 2:] >= 4).all()
    ident = run_tracker(IdentityTracker(), seq)
    assert (ident["boxes"] == seq.boxes[0]).all()
    scores = ope_scores([(ident["boxes"], seq.boxes)])
    assert 0 < scores["success_auc"] < 1


def test_frame_features_feed_the_alt_selector(train_seqs):
    net = SiamBoxNet()
    feats = [frame_features(net.backbone, s) for s in train_seqs[:2]]
    assert feats[0].shape == (24, 32)
    crops = frame_features(net.backbone, train_seqs[0], boxes=train_seqs[0].boxes)
    assert crops.shape == (24, 32) and not torch.allclose(crops, feats[0])
    chosen = ALTSelector().select(FramePool(features=feats), budget=0.25)
    assert [len(c) for c in chosen] == [6, 6] and all(c[0] == 0 for c in chosen)
