"""Box geometry and the Tversky loss: hand-computed IoU / Dice values and reductions."""

import pytest
import torch

from frugalcv.track import (
    box_iou,
    box_masks,
    box_tversky_index,
    box_tversky_loss,
    mask_tversky_index,
    mask_tversky_loss,
    xywh_to_xyxy,
    xyxy_to_xywh,
)


def test_iou_hand_values():
    a = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 4, 4]])
    b = torch.tensor([[5.0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 5, 5], [1, 1, 2, 2]])
    # 50 / 150; identical; disjoint; nested 4 / 16
    assert torch.allclose(box_iou(a, b), torch.tensor([1 / 3, 1.0, 0.0, 0.25]))


def test_iou_zero_area_is_zero_and_symmetric():
    a = torch.tensor([[0.0, 0, 0, 0], [3, 4, 7, 2]])
    b = torch.tensor([[0.0, 0, 0, 0], [1, 1, 8, 8]])
    assert box_iou(a, b)[0] == 0
    assert torch.allclose(box_iou(a, b), box_iou(b, a))


def test_xywh_xyxy_roundtrip():
    b = torch.tensor([[1.5, 2.0, 3.0, 4.5]])
    assert torch.equal(xywh_to_xyxy(b), torch.tensor([[1.5, 2.0, 4.5, 6.5]]))
    assert torch.allclose(xyxy_to_xywh(xywh_to_xyxy(b)), b)


# Box pair of the research notes: P = (0, 0, 10, 10), G = (2, 3, 10, 10) as xywh.
# I = 8 * 7 = 56, |P| = |G| = 100: IoU = 56 / 144 = 0.3889, Dice = 112 / 200 = 0.56.
P = xywh_to_xyxy(torch.tensor([[0.0, 0, 10, 10]]))
G = xywh_to_xyxy(torch.tensor([[2.0, 3, 10, 10]]))


def test_tversky_alpha_beta_one_is_iou():
    s = box_tversky_index(P, G, alpha=1.0, beta=1.0)
    assert torch.allclose(s, torch.tensor([56 / 144]))
    assert torch.allclose(s, box_iou(xyxy_to_xywh(P), xyxy_to_xywh(G)))


def test_tversky_half_is_dice():
    s = box_tversky_index(P, G, alpha=0.5, beta=0.5)
    assert torch.allclose(s, torch.tensor([2 * 56 / 200]))


def test_tversky_research_note_pair():
    # The research notes checked IoU 0.5556 and Dice 0.7143 on a box pair; one such pair is
    # P = (0, 0, 10, 10) inside G = (0, 0, 10, 18) (xyxy): I = 100, |P| = 100, |G| = 180.
    p = torch.tensor([[0.0, 0, 10, 10]])
    g = torch.tensor([[0.0, 0, 10, 18]])
    assert torch.allclose(box_tversky_index(p, g, alpha=1, beta=1), torch.tensor([100 / 180]))
    assert torch.allclose(box_tversky_index(p, g, alpha=0.5, beta=0.5), torch.tensor([200 / 280]))
    assert abs(100 / 180 - 0.5556) < 1e-4 and abs(200 / 280 - 0.7143) < 1e-4


def test_tversky_asymmetry_hand_value():
    # P inside a larger G: no false positives, |G \ P| = 100 -> S = 100 / (100 + 0.7 * 100).
    p = torch.tensor([[0.0, 0, 10, 10]])
    g = torch.tensor([[0.0, 0, 20, 10]])
    assert torch.allclose(box_tversky_index(p, g, alpha=0.3, beta=0.7), torch.tensor([100 / 170]))
    # Swapping the roles swaps which weight applies.
    assert torch.allclose(box_tversky_index(g, p, alpha=0.7, beta=0.3), torch.tensor([100 / 170]))


def test_tversky_monotone_in_alpha_and_beta():
    a = torch.linspace(0.1, 2, 10)
    vals_a = torch.stack([box_tversky_index(P, G, alpha=float(x), beta=0.5) for x in a])
    vals_b = torch.stack([box_tversky_index(P, G, alpha=0.5, beta=float(x)) for x in a])
    assert (vals_a.diff(dim=0) < 0).all() and (vals_b.diff(dim=0) < 0).all()


def test_tversky_loss_zero_for_exact_and_weighted_mean():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 4, 4]])
    assert box_tversky_loss(boxes, boxes, alpha=0.3, beta=0.7) < 1e-6
    pred = torch.cat([P, P])
    target = torch.cat([G, P])
    w = torch.tensor([1.0, 0.0])
    loss = box_tversky_loss(pred, target, alpha=1, beta=1, weight=w)
    assert torch.allclose(loss, torch.tensor(1 - 56 / 144))


def test_tversky_loss_gradient_moves_box_towards_target():
    pred = P.clone().requires_grad_(True)
    box_tversky_loss(pred, G, alpha=0.3, beta=0.7).backward()
    # G lies right and below: moving x1, y1 outwards reduces the loss.
    assert pred.grad[0, 2] < 0 and pred.grad[0, 3] < 0


@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (0.5, 0.5), (0.3, 0.7)])
def test_mask_tversky_equals_box_tversky_on_pixel_boxes(alpha, beta):
    boxes_p = torch.tensor([[2.0, 3, 10, 6], [0, 0, 5, 5]])
    boxes_g = torch.tensor([[4.0, 1, 9, 9], [1, 1, 5, 5]])
    mp = box_masks(boxes_p, height=16, width=16)
    mg = box_masks(boxes_g, height=16, width=16)
    got = mask_tversky_index(mp, mg, alpha=alpha, beta=beta)
    ref = box_tversky_index(xywh_to_xyxy(boxes_p), xywh_to_xyxy(boxes_g), alpha=alpha, beta=beta)
    assert torch.allclose(got, ref, atol=1e-6)
    assert torch.allclose(mask_tversky_loss(mp, mg, alpha=alpha, beta=beta), (1 - ref).mean())


def test_box_masks_area_coverage_for_fractional_boxes():
    m = box_masks(torch.tensor([[1.5, 2.25, 3.0, 2.5]]), height=8, width=8)
    assert torch.allclose(m.sum(), torch.tensor(7.5))
    assert m[0, 2, 1] == pytest.approx(0.5 * 0.75)
    soft = box_masks(torch.tensor([[2.0, 2, 4, 4]]), height=8, width=8, sharpness=20.0)
    assert soft[0, 3, 3] > 0.99 and soft[0, 0, 0] < 0.01


def test_bad_weights_and_shapes_raise():
    with pytest.raises(ValueError, match="alpha and beta"):
        box_tversky_index(P, G, alpha=0.0, beta=0.0)
    with pytest.raises(ValueError, match="equal shape"):
        mask_tversky_index(torch.zeros(1, 4, 4), torch.zeros(1, 4, 5), alpha=1, beta=1)
    with pytest.raises(ValueError, match="4 values"):
        box_iou(torch.zeros(2, 3), torch.zeros(2, 3))
