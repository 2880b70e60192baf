"""ContrastZSD losses on hand-made embeddings whose answers are known."""

import math

import pytest
import torch
import torch.nn.functional as F

from frugalcv.zsd import (
    class_similarity_targets,
    region_category_loss,
    region_region_loss,
    semantic_negative_weights,
)

pytestmark = pytest.mark.unit


def test_similarity_targets_hand_value_and_invariants():
    q = class_similarity_targets(torch.eye(2), temperature=1.0)
    e = math.e
    assert torch.allclose(q, torch.tensor([[e / (e + 1), 1 / (e + 1)], [1 / (e + 1), e / (e + 1)]]))
    w = torch.randn(6, 9, generator=torch.Generator().manual_seed(0))
    q = class_similarity_targets(w, temperature=0.1)
    assert torch.allclose(q.sum(1), torch.ones(6))
    assert torch.equal(q.argmax(1), torch.arange(6))  # most mass on the class itself
    assert (q.diagonal() > 0.5).all()


def test_region_category_one_hot_hand_value():
    # orthonormal classes, region = its class: logits 1/tau on the GT class, 0 elsewhere
    tau, c = 0.5, 4
    e = torch.eye(c)
    y = torch.tensor([0, 2, 3])
    loss = region_category_loss(e[y], e, y, temperature=tau)
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + c - 1))
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_region_category_minimal_when_region_equals_its_class_vector():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(5, 8, generator=g)
    tau = 0.2
    q = class_similarity_targets(w, temperature=tau)
    y = torch.tensor([0, 1, 2, 3, 4, 1, 3])
    at_class = region_category_loss(w[y], w, y, soft_targets=q, temperature=tau)
    entropy = -(q[y] * q[y].log()).sum(1).mean()
    assert float(at_class) == pytest.approx(float(entropy), rel=1e-5)  # the lower bound H(q)
    for _ in range(20):
        v = w[y] + 0.3 * torch.randn(len(y), 8, generator=g)
        assert region_category_loss(v, w, y, soft_targets=q, temperature=tau) > at_class
    # and the gradient vanishes there
    v = w[y].clone().requires_grad_(True)
    region_category_loss(v, w, y, soft_targets=q, temperature=tau).backward()
    assert v.grad.abs().max() < 1e-5


def test_region_category_soft_targets_give_unseen_classes_gradient():
    # seen class 0 resembles unseen class 2: the soft target pulls toward class 2 too
    w = torch.tensor([[1.0, 0.2, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.3]])
    q = class_similarity_targets(w, temperature=0.1)
    assert q[0, 2] > q[0, 1]
    c = w.clone().requires_grad_(True)
    region_category_loss(
        torch.tensor([[0.0, 0.0, 1.0]]), c, torch.tensor([0]), soft_targets=q
    ).backward()
    assert c.grad[2].abs().sum() > 0


def test_region_region_hand_values():
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 0, 1])
    # anchors 0 and 1: positive cos 1, one negative cos 0; anchor 2 has no positive
    loss = region_region_loss(z, y, temperature=1.0)
    assert float(loss) == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-6)
    m = torch.tensor([[1.0, 0.5], [0.5, 1.0]])
    loss = region_region_loss(z, y, negative_weights=m, temperature=1.0)
    assert float(loss) == pytest.approx(math.log(1 + 0.5 * math.exp(-1)), rel=1e-6)


def test_region_region_lower_for_clustered_than_shuffled():
    g = torch.Generator().manual_seed(2)
    centres = F.normalize(torch.randn(4, 16, generator=g), dim=1)
    y = torch.arange(4).repeat_interleave(6)
    z = centres[y] + 0.1 * torch.randn(24, 16, generator=g)
    m = semantic_negative_weights(torch.randn(4, 5, generator=g))
    clustered = region_region_loss(z, y, negative_weights=m)
    shuffled = region_region_loss(z, y[torch.randperm(24, generator=g)], negative_weights=m)
    assert clustered < shuffled - 1.0


def test_negative_weights_and_no_positive_case():
    w = torch.tensor([[1.0, 0.0], [1.0, 1.0], [-1.0, 0.0]])
    m = semantic_negative_weights(w, strength=1.0)
    assert torch.allclose(m, torch.tensor([[1, 1 - 0.5**0.5, 1], [1 - 0.5**0.5, 1, 1], [1, 1, 1]]))
    z = torch.randn(3, 4, requires_grad=True)
    y = torch.tensor([0, 1, 2])
    assert (
        region_region_loss(z, y, negative_weights=semantic_negative_weights(w, strength=0.0)) == 0
    )
    # strength 0 is plain SupCon
    y = torch.tensor([0, 0, 1])
    plain = region_region_loss(z, y)
    zero = region_region_loss(z, y, negative_weights=semantic_negative_weights(w, strength=0.0))
    assert torch.allclose(plain, zero)


def test_loss_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match="same d"):
        region_category_loss(torch.randn(2, 3), torch.randn(4, 5), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="labels must index"):
        region_category_loss(torch.randn(2, 3), torch.randn(4, 3), torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="strength"):
        semantic_negative_weights(torch.eye(2), strength=2.0)
