"""Attention MIL (Ilse et al. 2018): attention invariants and a Task that learns MNIST-bags."""

import pytest
import torch

from frugalcv.data.mil import BagDataset, collate_bags, make_mnist_bags
from frugalcv.mil import AttentionMIL, AttentionMILTask, GatedAttentionPool, LeNetEncoder


@pytest.mark.unit
def test_attention_ignores_padding_and_sums_to_one():
    torch.manual_seed(0)
    pool = GatedAttentionPool(dim=8, hidden=4)
    h = torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    z, a = pool(h, mask)
    torch.testing.assert_close(a.sum(1), torch.ones(2))
    assert torch.all(a[0, 3:] == 0)
    h2 = h.clone()
    h2[0, 3:] = 100.0  # padded values must not matter
    z2, _ = pool(h2, mask)
    torch.testing.assert_close(z2[0], z[0])
    z_alone, _ = pool(h[:1, :3])  # the same bag unpadded
    torch.testing.assert_close(z_alone[0], z[0])
    # permutation invariance of the bag embedding
    perm = torch.tensor([2, 0, 1, 4, 3])
    z_perm, _ = pool(h[1:, perm])
    torch.testing.assert_close(z_perm[0], z[1])


@pytest.mark.unit
def test_lenet_encoder_shapes():
    model = AttentionMIL(encoder=LeNetEncoder(dim=32), hidden=8)
    logits, a = model(torch.rand(2, 3, 1, 28, 28), torch.ones(2, 3, dtype=torch.bool))
    assert logits.shape == (2,) and a.shape == (2, 3)


@pytest.mark.recipe
def test_task_learns_mnist_bags_with_a_plain_loop():
    train, test = make_mnist_bags(num_train=200, num_test=100, features="pixels", seed=0)
    torch.manual_seed(0)
    task = AttentionMILTask(model=AttentionMIL(in_features=784, dim=64, hidden=32))
    loader = torch.utils.data.DataLoader(
        BagDataset(train), batch_size=16, shuffle=True, collate_fn=collate_bags
    )
    opt = torch.optim.Adam(task.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):  # epochs
        for batch in loader:
            opt.zero_grad()
            out = task.training_step(batch)
            out["loss"].backward()
            opt.step()
            losses.append(float(out["loss"].detach()))
    assert sum(losses[-10:]) / 10 < 0.6 * sum(losses[:10]) / 10
    val = task.validation_step(collate_bags([BagDataset(test)[i] for i in range(len(test))]))
    positive_rate = float(test.targets(0).mean())
    assert float(val["acc"]) > max(positive_rate, 1 - positive_rate) + 0.1, float(val["acc"])


@pytest.mark.unit
def test_bad_batches():
    task = AttentionMILTask(model=AttentionMIL(in_features=4, dim=8, hidden=4))
    with pytest.raises(ValueError, match="dict"):
        task.training_step(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="at least one real instance"):
        task.training_step(
            {
                "x": torch.zeros(2, 3, 4),
                "mask": torch.zeros(2, 3, dtype=torch.bool),
                "y": torch.zeros(2),
            }
        )
    with pytest.raises(ValueError, match="exactly one"):
        AttentionMIL()
