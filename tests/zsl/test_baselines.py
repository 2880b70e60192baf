"""Tests for frugalcv.zsl.baselines: ESZSL closed form, ranking losses, zero-shot transfer."""

import numpy as np
import pytest
import torch

from frugalcv.data.zsl import make_attr_shapes, make_zsl_digits
from frugalcv.zoo import create_model
from frugalcv.zsl import (
    ESZSL,
    AttributeRegression,
    BilinearTask,
    chance_accuracy,
    compatibility_loss,
    eszsl_solve,
    evaluate_zsl,
)

pytestmark = pytest.mark.unit


def _rand(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


def test_eszsl_closed_form_matches_a_direct_solve():
    x, y, s = _rand(20, 6, seed=0), _rand(20, 4, seed=1), _rand(4, 3, seed=2)
    gamma, lam = 0.7, 1.3
    v = eszsl_solve(x, y, s, gamma=gamma, lam=lam)
    # Stationarity: (X^T X + gamma I) V (S^T S + lam I) = X^T Y S, solved as one linear system
    # in vec(V) with a Kronecker product (row-major vec: vec(A V B) = (A kron B^T) vec(V)).
    a = x.T @ x + gamma * torch.eye(6, dtype=x.dtype)
    b = s.T @ s + lam * torch.eye(3, dtype=x.dtype)
    kron = torch.kron(a, b.T.contiguous())  # (18, 18)
    direct = torch.linalg.solve(kron, (x.T @ y @ s).reshape(-1)).reshape(6, 3)
    assert torch.allclose(v, direct, atol=1e-10)
    # and it is the minimiser of the paper's objective: the gradient vanishes there
    v_var = v.clone().requires_grad_(True)
    loss = (
        (x @ v_var @ s.T - y).pow(2).sum()
        + gamma * (v_var @ s.T).pow(2).sum()
        + lam * (x @ v_var).pow(2).sum()
        + gamma * lam * v_var.pow(2).sum()
    )
    (grad,) = torch.autograd.grad(loss, v_var)
    assert grad.abs().max() < 1e-9


def test_fit_ignores_unseen_semantics():
    x, y = _rand(30, 5), torch.arange(3).repeat(10)
    s1 = _rand(5, 4, seed=3)
    s2 = s1.clone()
    s2[3:] = _rand(2, 4, seed=4)  # classes 3, 4 never appear in y
    for est in (ESZSL(), AttributeRegression()):
        a = type(est)(**vars(est)).fit(x, y, semantics=s1)
        b = type(est)(**vars(est)).fit(x, y, semantics=s2)
        assert torch.allclose(a.decision_function(x)[:, :3], b.decision_function(x)[:, :3])


def test_estimators_reject_bad_input():
    with pytest.raises(ValueError, match=r"features \(N, D\)"):
        ESZSL().fit(torch.zeros(4, 1, 2, 2), torch.zeros(4), semantics=torch.ones(1, 2))
    with pytest.raises(ValueError, match="row for every label"):
        AttributeRegression().fit(
            torch.zeros(4, 3), torch.tensor([0, 1, 2, 5]), semantics=torch.ones(3, 2)
        )
    with pytest.raises(ValueError, match="not fitted"):
        ESZSL().decision_function(torch.zeros(2, 3))
    fitted = ESZSL().fit(_rand(6, 3), torch.tensor([0, 1] * 3), semantics=_rand(2, 2))
    with pytest.raises(ValueError, match=r"x must be \(B, 3\)"):
        fitted.predict(torch.zeros(2, 4))


def test_ranking_losses_hand_values():
    scores = torch.tensor([[2.0, 1.5, 0.0], [0.0, 0.5, 0.2]])
    target = torch.tensor([0, 0])
    # hinges (margin 1): sample 1 -> (0.5, 0), r=1, beta=1; sample 2 -> (1.5, 1.2), r=2, beta=1.5
    assert compatibility_loss(scores, target, loss="devise").item() == pytest.approx(
        (0.5 + 2.7) / 2
    )
    ale = (1.0 / 1 * 0.5 + 1.5 / 2 * 2.7) / 2
    assert compatibility_loss(scores, target, loss="ale").item() == pytest.approx(ale)
    sm = torch.nn.functional.cross_entropy(scores, target)
    assert compatibility_loss(scores, target, loss="softmax").item() == pytest.approx(sm.item())
    with pytest.raises(ValueError, match="valid options are ale"):
        compatibility_loss(scores, target, loss="hinge")


def _hog(x):
    from skimage.feature import hog

    cells = [
        hog(im[0].numpy(), orientations=8, pixels_per_cell=(7, 7), cells_per_block=(1, 1))
        for im in x
    ]
    return torch.from_numpy(np.stack(cells)).float()


@pytest.fixture(scope="module")
def digits():
    return make_zsl_digits(seed=0, num_train=2000, num_test=600, embedded=True)


def test_zero_shot_transfer_beats_chance_on_digits(digits):
    # HOG features (8 orientations on a 4x4 grid of 7x7 cells); chance among 7, 8, 9 is 1/3.
    # Measured at seed 0: ESZSL 0.52, attribute regression 0.53.
    x_train = _hog(digits.x_train)
    chance = chance_accuracy(len(digits.unseen_classes))
    eszsl = ESZSL(gamma=100.0, lam=100.0, targets="onehot").fit(
        x_train, digits.y_train, semantics=digits.semantics
    )
    ridge = AttributeRegression(lam=100.0).fit(x_train, digits.y_train, semantics=digits.semantics)
    for est in (eszsl, ridge):
        r = evaluate_zsl(lambda x, e=est: e.decision_function(_hog(x)), digits)
        assert r["zsl_top1"] > chance + 0.12, type(est).__name__
        assert r["gzsl_seen"] > 0.3  # seen digits among all ten (chance 0.1)


def _plain_loop(task, batches, *, steps, lr):
    opt = torch.optim.Adam(task.trainable_parameters(), lr=lr)
    losses = []
    for step in range(steps):
        out = task.training_step(batches[step % len(batches)])
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    return losses


@pytest.mark.parametrize("loss", ["ale", "softmax"])
def test_bilinear_task_learns_on_features(digits, loss):
    torch.manual_seed(0)
    x = _hog(digits.x_train)
    task = BilinearTask(
        semantics=digits.semantics,
        seen_classes=digits.seen_classes,
        feature_dim=x.shape[1],
        loss=loss,
    )
    batches = [(x[i : i + 128], digits.y_train[i : i + 128]) for i in range(0, len(x), 128)]
    losses = _plain_loop(task, batches, steps=60, lr=0.05)
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:5])
    r = evaluate_zsl(lambda xb: task.scores(_hog(xb)).detach(), digits)
    assert r["gzsl_seen"] > 0.6  # chance 0.1; zero-shot transfer of this unregularised
    # bilinear model is not asserted: at 60 steps it measured 0.26 (ale) on 7, 8, 9


def test_bilinear_task_end_to_end_with_backbone():
    torch.manual_seed(0)
    d = make_attr_shapes(num_train_per_class=8, num_test_per_class=4, image_size=16, seed=0)
    backbone = create_model("tiny_cnn", num_classes=1)
    task = BilinearTask(semantics=d.semantics, seen_classes=d.seen_classes, backbone=backbone)
    assert task.model.W.shape == (backbone.num_features, 13)
    batches = [(d.x_train[i : i + 48], d.y_train[i : i + 48]) for i in range(0, 144, 48)]
    losses = _plain_loop(task, batches, steps=30, lr=0.01)
    assert np.mean(losses[-5:]) < 0.85 * np.mean(losses[:3])
    assert task.scores(d.x_test_unseen[:4]).shape == (4, d.num_classes)
    with pytest.raises(ValueError, match="unseen-class labels"):
        task.training_step((d.x_test_unseen[:2], d.y_test_unseen[:2]))
