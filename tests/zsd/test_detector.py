"""The semantic Faster R-CNN and the ContrastZSD Task."""

import pytest
import torch

from frugalcv.core.loader import DatasetLoader, list_collate
from frugalcv.zsd import ContrastZSDTask, SemanticBoxPredictor, SemanticFasterRCNN

pytestmark = pytest.mark.unit


def _predictor_with_identity_projection(seen):
    head = SemanticBoxPredictor(in_channels=seen.shape[1], class_semantics=seen, temperature=0.1)
    with torch.no_grad():
        head.visual_proj.weight.copy_(torch.eye(seen.shape[1]))
        head.visual_proj.bias.zero_()
        head.background.copy_(-torch.ones(seen.shape[1]))  # far from every class below
    return head


def test_swapping_semantics_scores_unseen_classes():
    eye = torch.eye(6)
    seen, unseen = eye[:4], eye[4:] + 0.1 * eye[:2]
    head = _predictor_with_identity_projection(seen)
    logits, deltas = head(seen)
    assert logits.shape == (4, 5) and torch.equal(logits.argmax(1), torch.arange(1, 5))
    head.set_class_semantics(unseen)
    logits, deltas = head(unseen)  # regions that look like the unseen classes
    assert logits.shape == (2, 3)
    assert torch.equal(logits.argmax(1), torch.tensor([1, 2]))
    # box regression is class-agnostic: the same 4 deltas for background and every class
    d = deltas.view(2, 3, 4)
    assert torch.equal(d[:, 0], d[:, 1]) and torch.equal(d[:, 0], d[:, 2])
    # a negative bias (calibration) can move the decision
    head.set_class_semantics(unseen, bias=torch.tensor([-100.0, 0.0]))
    assert int(head(unseen)[0][0].argmax()) != 1
    with pytest.raises(ValueError, match="dims"):
        head.set_class_semantics(torch.eye(3))


def test_detector_returns_labels_of_the_swapped_classes():
    torch.manual_seed(0)
    model = SemanticFasterRCNN(class_semantics=torch.randn(7, 9)).eval()
    model.set_class_semantics(torch.randn(3, 9))
    with torch.no_grad():
        dets = model([torch.rand(3, 128, 128), torch.rand(3, 96, 128)])
    assert len(dets) == 2
    for d in dets:
        assert d["labels"].numel() > 0 and d["labels"].min() >= 1 and d["labels"].max() <= 3
        assert len(d["boxes"]) <= 100


def _task(data, **weights):
    model = SemanticFasterRCNN(class_semantics=data.semantics[data.seen_classes])
    return ContrastZSDTask(
        model=model,
        semantics=data.semantics,
        seen_classes=data.seen_classes,
        unseen_classes=data.unseen_classes,
        **weights,
    )


def test_task_trains_with_a_plain_loop_and_loss_falls(zsd_digits):
    torch.manual_seed(0)
    task = _task(zsd_digits)
    loader = DatasetLoader(zsd_digits.train, batch_size=4, collate_fn=list_collate, shuffle=True)
    opt = torch.optim.Adam(task.parameters(), lr=2e-3)
    history = []
    for epoch in range(3):
        loader.set_epoch(epoch)
        for batch in loader:
            losses = task.training_step(batch)
            opt.zero_grad()
            losses["loss"].backward()
            opt.step()
            history.append({k: float(v.detach()) for k, v in losses.items()})
    assert len(history) >= 12
    first = sum(h["loss"] for h in history[:3]) / 3
    last = sum(h["loss"] for h in history[-3:]) / 3
    assert last < first
    # the RPN learns where the digits are: objectness loss at least halves
    assert history[-1]["loss_objectness"] < 0.5 * history[0]["loss_objectness"]
    assert {"loss_rc", "loss_rr"} <= set(history[-1])
    # ZSD prediction among unseen classes returns unseen global ids only
    images, targets = list_collate([zsd_digits.test_zsd[i] for i in range(4)])
    task.eval()
    preds = task.predict(images, classes=zsd_digits.unseen_classes)
    labels = torch.cat([p["labels"] for p in preds])
    assert labels.numel() > 0 and torch.isin(labels, zsd_digits.unseen_classes).all()
    # the model is back on the seen classes, and the seen-class val metric is a number in [0, 1]
    assert task.model.predictor.num_classes == len(zsd_digits.seen_classes)
    metrics = task.eval_metrics()
    task.update_eval_metrics(metrics, list_collate([zsd_digits.val[i] for i in range(4)]))
    assert 0.0 <= float(metrics["map_seen"].compute()) <= 1.0


def test_zero_weights_turn_subnets_off(zsd_digits):
    torch.manual_seed(0)
    batch = list_collate([zsd_digits.train[i] for i in range(2)])
    plain = _task(zsd_digits, rc_weight=0.0, rr_weight=0.0).training_step(batch)
    assert set(plain) == {
        "loss", "loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"
    }  # fmt: skip
    assert torch.allclose(plain["loss"], sum(v for k, v in plain.items() if k != "loss"))
    rc_only = _task(zsd_digits, rr_weight=0.0).training_step(batch)
    assert "loss_rc" in rc_only and "loss_rr" not in rc_only


def test_task_rejects_unseen_objects_in_training(zsd_digits):
    task = _task(zsd_digits)
    image, target = zsd_digits.test_zsd[0]
    with pytest.raises(ValueError, match="not seen classes"):
        task.training_step(([image], [target]))
