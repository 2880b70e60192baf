"""Tests for frugalcv.zsl.erpcnet: partial conv, policy maths, rewards, the task, the drawing."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from frugalcv.data.zsl import make_attr_shapes
from frugalcv.zoo import create_model
from frugalcv.zsl import chance_accuracy, evaluate_zsl
from frugalcv.zsl.erpcnet import (
    ERPCNet,
    ERPCNetTask,
    PartialConv2d,
    cell_masks,
    discounted_returns,
    draw_localities,
    erpc_rewards,
    locality_boxes,
    masked_mean,
    policy_entropy,
    reinforce_loss,
    sample_categorical,
    semantic_relevance,
    visual_correlation,
)

pytestmark = pytest.mark.unit


# ---------------------------------------------------------------------------------------------
# partial convolution and masks


def test_partial_conv_hand_values_and_masked_inputs_are_invisible():
    torch.manual_seed(0)
    pconv = PartialConv2d(in_channels=2, out_channels=3)
    x = torch.randn(1, 2, 6, 6)
    ones = torch.ones(1, 1, 6, 6)
    out, new_mask = pconv(x, ones)
    plain = F.conv2d(x, pconv.conv.weight, pconv.bias, padding=1)
    # interior windows hold 9 valid pixels: ratio 9/9, the plain convolution
    assert torch.allclose(out[..., 1:-1, 1:-1], plain[..., 1:-1, 1:-1], atol=1e-6)
    # a corner window holds 4 valid pixels (zero-padded mask): ratio 9/4 on the weight term
    corner = (plain[0, :, 0, 0] - pconv.bias) * 9 / 4 + pconv.bias
    assert torch.allclose(out[0, :, 0, 0], corner, atol=1e-6)
    assert torch.equal(new_mask, ones)

    mask = torch.zeros(1, 1, 6, 6)
    mask[..., 1:3, 1:3] = 1  # a 2x2 region
    out, new_mask = pconv(x, mask)
    x2 = x.clone()
    x2[..., 4:, :] = 100.0  # change everything outside the region
    x2[..., :, 4:] = -100.0
    x2[..., 0, :] = 7.0
    x2[..., :, 0] = 7.0
    out2, _ = pconv(x2, mask)
    assert torch.equal(out, out2)
    expected_mask = torch.zeros(1, 1, 6, 6)
    expected_mask[..., 0:4, 0:4] = 1  # the region dilated by the 3x3 window
    assert torch.equal(new_mask, expected_mask)
    assert (out[..., 4:, :] == 0).all() and (out[..., :, 4:] == 0).all()  # no valid input: 0
    # the centre-of-region window (1, 1) sees 4 valid pixels: ratio 9/4
    w = pconv.conv.weight
    by_hand = (w[:, :, 1:3, 1:3] * x[0, :, 1:3, 1:3]).sum((1, 2, 3)) * 9 / 4 + pconv.bias
    assert torch.allclose(out[0, :, 1, 1], by_hand, atol=1e-5)
    with pytest.raises(ValueError, match=r"mask \(B, 1, H, W\)"):
        pconv(x, torch.ones(1, 2, 6, 6))


def test_cell_masks_and_masked_mean_hand_values():
    m = cell_masks(torch.tensor([0, 3, 2]), grid=(2, 2), size=(4, 4))
    assert m.shape == (3, 1, 4, 4)
    assert m[0, 0, :2, :2].all() and m[0].sum() == 4  # top-left
    assert m[1, 0, 2:, 2:].all() and m[1].sum() == 4  # bottom-right
    assert m[2, 0, 2:, :2].all() and m[2].sum() == 4  # bottom-left
    # 3 x 3 grid on a 4 x 4 map: rows 0,1,2,3 fall in cells 0,0,1,2 (floor(i * 3 / 4))
    m = cell_masks(torch.tensor([4]), grid=(3, 3), size=(4, 4))
    assert m[0, 0].nonzero().tolist() == [[2, 2]]
    x = torch.arange(16.0).view(1, 1, 4, 4)
    mask = cell_masks(torch.tensor([3]), grid=(2, 2), size=(4, 4))
    assert masked_mean(x, mask).item() == pytest.approx((10 + 11 + 14 + 15) / 4)


def test_locality_boxes_hand_values():
    boxes = locality_boxes(torch.tensor([0, 5]), grid=(2, 4), image_size=(32, 64))
    assert boxes.tolist() == [[0.0, 0.0, 16.0, 16.0], [16.0, 16.0, 32.0, 32.0]]


# ---------------------------------------------------------------------------------------------
# policy maths


def test_policy_entropy_uniform_one_hot_and_masked():
    k = 8
    assert policy_entropy(torch.zeros(2, k)).tolist() == pytest.approx([math.log(k)] * 2)
    one_hot = torch.full((1, k), -1e4)
    one_hot[0, 3] = 0.0
    assert policy_entropy(one_hot).item() == pytest.approx(0.0, abs=1e-6)
    available = torch.zeros(1, k, dtype=torch.bool)
    available[0, [1, 4, 6]] = True
    logits = torch.zeros(1, k, requires_grad=True)
    h = policy_entropy(logits, available=available)
    assert h.item() == pytest.approx(math.log(3))  # uniform over the 3 available actions
    h.sum().backward()
    assert torch.isfinite(logits.grad).all()  # no NaN from the masked (p = 0) actions
    # a single available action: one-hot, entropy 0, still finite gradients
    logits = torch.zeros(1, k, requires_grad=True)
    h = policy_entropy(logits, available=torch.eye(k, dtype=torch.bool)[2:3])
    h.sum().backward()
    assert h.item() == 0.0 and torch.isfinite(logits.grad).all()


def test_sampling_is_seeded_matches_probs_and_skips_zero_probability():
    probs = torch.tensor([[0.1, 0.0, 0.6, 0.3, 0.0]]).expand(20000, 5)

    def draw(seed):
        return sample_categorical(probs, generator=torch.Generator().manual_seed(seed))

    a, b, c = draw(1), draw(1), draw(2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    freq = torch.bincount(a, minlength=5).float() / len(a)
    assert freq[1] == 0 and freq[4] == 0
    se = (probs[0] * (1 - probs[0]) / len(a)).sqrt()
    assert ((freq - probs[0]).abs() <= 4 * se + 1e-9).all()
    assert sample_categorical(probs[:2], greedy=True).tolist() == [2, 2]


def test_reinforce_estimator_is_unbiased_and_the_baseline_cuts_variance():
    # K-armed bandit with fixed rewards: E[r] = sum_k pi_k r_k, whose exact gradient w.r.t. the
    # logits is pi * (r - E[r]). The estimator is -grad reinforce_loss for each sample.
    theta = torch.tensor([0.5, -0.3, 0.1, 0.0])
    # rewards share an offset of 10: it leaves the gradient unchanged and is what a baseline removes
    rewards = torch.tensor([11.0, 13.0, 8.0, 10.5])
    pi = theta.softmax(0)
    exact = pi * (rewards - (pi * rewards).sum())
    n = 40000
    actions = sample_categorical(
        pi.expand(n, 4), generator=torch.Generator().manual_seed(0)
    )  # (n,)
    r = rewards[actions]

    def per_sample_grads(baseline):
        th = theta.expand(n, 4).clone().requires_grad_(True)  # one copy per sample
        logp = torch.log_softmax(th, 1).gather(1, actions[:, None])  # (n, 1)
        loss = reinforce_loss(logp, (r - baseline)[:, None]) * n  # undo the batch mean
        (g,) = torch.autograd.grad(loss, th)
        return -g  # (n, 4) estimates of grad E[r]

    plain = per_sample_grads(0.0)
    based = per_sample_grads(float((pi * rewards).sum()))
    for est in (plain, based):
        se = est.std(0) / math.sqrt(n)
        assert ((est.mean(0) - exact).abs() <= 4 * se + 1e-6).all(), (est.mean(0), exact)
    assert based.var(0).sum() < 0.1 * plain.var(0).sum()


def test_reinforce_with_entropy_bonus_learns_a_bandit():
    rewards = torch.tensor([0.0, 1.0, 0.2, 0.5])

    def train(entropy_weight):
        logits = torch.zeros(1, 4, requires_grad=True)
        opt = torch.optim.SGD([logits], lr=0.5)
        gen = torch.Generator().manual_seed(0)
        for _ in range(200):
            lg = logits.expand(64, 4)
            a = sample_categorical(lg.softmax(1), generator=gen)
            logp = torch.log_softmax(lg, 1).gather(1, a[:, None])
            r = rewards[a][:, None]
            loss = reinforce_loss(logp, r - r.mean())
            loss = loss - entropy_weight * policy_entropy(logits).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return logits.detach().softmax(1)[0]

    greedy, smooth = train(0.0), train(1.0)
    assert greedy.argmax() == 1 and greedy[1] > 0.9
    # a large entropy bonus keeps the policy spread out (the entropy term really acts)
    assert policy_entropy(smooth.log()[None]) > policy_entropy(greedy.log()[None]) + 0.5


def test_discounted_returns_hand_values():
    r = torch.tensor([[1.0, 2.0, 4.0]])
    assert discounted_returns(r).tolist() == [[7.0, 6.0, 4.0]]
    assert discounted_returns(r, gamma=0.5).tolist() == [[1 + 0.5 * 2 + 0.25 * 4, 4.0, 4.0]]


# ---------------------------------------------------------------------------------------------
# rewards


def test_semantic_relevance_hand_values():
    s = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0]])
    y = torch.tensor([0, 2])
    assert semantic_relevance(s, y, kind="score").tolist() == [2.0, 1.0]
    assert semantic_relevance(s, y, kind="margin").tolist() == [1.0, -2.0]
    lp = torch.log_softmax(s, 1)
    assert torch.allclose(semantic_relevance(s, y), torch.stack([lp[0, 0], lp[1, 2]]))
    with pytest.raises(ValueError, match="valid options are logprob"):
        semantic_relevance(s, y, kind="entropy")


def test_rewards_on_hand_made_features():
    y = torch.tensor([0])
    # true-class score 0 -> 1 -> 1 -> 3 over steps 0..3, others fixed at 0: margin gains 1, 0, 2
    steps = torch.tensor([[[0.0, 0.0]], [[1.0, 0.0]], [[1.0, 0.0]], [[3.0, 0.0]]])  # (T+1, B, Z)
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    repeat = torch.stack([e1, e1, 2 * e1])[None]  # (1, 3, 2): the same direction three times
    distinct = torch.stack([e1, e2, -e1])[None]  # orthogonal, then opposite to l_1
    r, gain, corr = erpc_rewards(steps, y, repeat, relevance="margin", correlation_weight=0.5)
    assert gain.tolist() == [[1.0, 0.0, 2.0]]
    assert corr.tolist() == [[0.0, 1.0, 1.0]]  # no earlier locality at t = 1
    assert r.tolist() == [[1.0, -0.5, 1.5]]  # redundancy is penalised
    _, _, corr = erpc_rewards(steps, y, distinct, relevance="margin")
    assert corr.tolist() == [[0.0, 0.0, pytest.approx(-0.5)]]  # mean(cos(-e1, e1), cos(-e1, e2))
    # a negative weight rewards correlated localities instead; 0 removes the term
    r, _, _ = erpc_rewards(steps, y, repeat, relevance="margin", correlation_weight=-0.5)
    assert r.tolist() == [[1.0, 0.5, 2.5]]
    r, _, _ = erpc_rewards(steps, y, repeat, relevance="margin", correlation_weight=0.0)
    assert r.tolist() == [[1.0, 0.0, 2.0]]
    assert visual_correlation(repeat).shape == (1, 3)


# ---------------------------------------------------------------------------------------------
# the network and the task


@pytest.fixture(scope="module")
def shapes():
    return make_attr_shapes(num_train_per_class=16, num_test_per_class=8, image_size=32, seed=0)


def _task(d, *, seed=0, **kw):
    torch.manual_seed(0)  # identical weights for every task built here
    kw = {"hidden_dim": 64, "num_steps": 3, "grid": (4, 4), **kw}
    backbone = create_model("tiny_cnn", num_classes=1)
    return ERPCNetTask(
        semantics=d.semantics, seen_classes=d.seen_classes, backbone=backbone, seed=seed, **kw
    )


def test_network_episode_invariants(shapes):
    task = _task(shapes)
    x = shapes.x_train[:6]
    out = task.model(x, task.semantics, generator=torch.Generator().manual_seed(0))
    assert out.step_scores.shape == (4, 6, shapes.num_classes)
    assert out.actions.shape == out.log_probs.shape == out.entropies.shape == (6, 3)
    assert out.localities.shape == (6, 3, 64)
    # a cell is chosen at most once per episode
    assert all(len(set(row)) == 3 for row in out.actions.tolist())
    assert (out.entropies <= math.log(16) + 1e-5).all()
    assert torch.equal(out.scores, out.step_scores[-1])
    # step 0 is the global-only model with the same weights
    glob = ERPCNet(
        backbone=task.model.backbone, semantic_dim=13, hidden_dim=64, use_localities=False
    )
    glob.load_state_dict(task.model.state_dict(), strict=False)
    g = glob(x, task.semantics)
    assert g.step_scores.shape == (1, 6, shapes.num_classes) and g.actions.shape == (6, 0)
    assert torch.allclose(g.scores, out.step_scores[0], atol=1e-6)
    with pytest.raises(ValueError, match="num_steps must be in 1..4"):
        ERPCNet(backbone=task.model.backbone, semantic_dim=13, num_steps=5, grid=(2, 2))


def test_task_sampling_is_seeded_and_evaluation_is_greedy(shapes):
    batch = (shapes.x_train[:8], shapes.y_train[:8])

    def actions(task):
        # read the actions of the next training episode with the task's own generator
        state = task.generator.get_state()
        out = task.model(batch[0], task.semantics[task.seen_classes], generator=task.generator)
        task.generator.set_state(state)
        return out.actions

    a1, a2, b = _task(shapes, seed=3), _task(shapes, seed=3), _task(shapes, seed=4)
    first = actions(a1)
    assert torch.equal(first, actions(a2)) and not torch.equal(first, actions(b))
    a1.training_step(batch)
    a2.training_step(batch)
    assert torch.equal(actions(a1), actions(a2))  # the generators advanced in lock-step
    assert not torch.equal(actions(a1), first)
    # the generator state is saved with the task: a reloaded task continues the same draws
    c = _task(shapes, seed=99)
    c.load_state_dict(a1.state_dict())
    assert torch.equal(actions(c), actions(a1))
    # evaluation is greedy: no generator, the same scores every call
    assert torch.equal(a1.scores(batch[0]), a1.scores(batch[0]))
    with pytest.raises(ValueError, match="unseen-class labels"):
        a1.training_step((shapes.x_test_unseen[:2], shapes.y_test_unseen[:2]))


def test_loss_dict_exposes_per_step_entropy_and_reward(shapes):
    task = _task(shapes, entropy_weight=0.2)
    out = task.training_step((shapes.x_train[:8], shapes.y_train[:8]))
    ent = torch.stack([out[f"entropy_step{t}"] for t in (1, 2, 3)])
    rew = torch.stack([out[f"reward_step{t}"] for t in (1, 2, 3)])
    assert "entropy_step4" not in out
    assert out["policy_entropy"].item() == pytest.approx(ent.mean().item(), rel=1e-6)
    assert out["reward"].item() == pytest.approx(rew.sum().item(), rel=1e-5, abs=1e-6)
    # at initialisation the policy is close to uniform over 16, 15, 14 free cells
    assert ent.tolist() == pytest.approx([math.log(16), math.log(15), math.log(14)], abs=0.05)
    assert out["loss_entropy"].item() == pytest.approx(-0.2 * ent.mean().item(), rel=1e-5)
    total = out["loss_cls"] + out["loss_policy"] + out["loss_entropy"]
    assert out["loss"].item() == pytest.approx(total.item(), rel=1e-5)


def test_switching_off_entropy_guidance_removes_the_term(shapes):
    batch = (shapes.x_train[:8], shapes.y_train[:8])
    beta = 0.5
    off, on = _task(shapes, entropy_weight=0.0), _task(shapes, entropy_weight=beta)
    policy = ("policy_cell", "policy_state", "policy_out")

    def policy_grads(task):
        out = task.training_step(batch)
        task.zero_grad()
        out["loss"].backward()
        grads = [p.grad.clone() for n, p in task.model.named_parameters() if n.startswith(policy)]
        return out, grads

    # the entropy of the very same episode, from a copy of the generator state
    gen = torch.Generator().manual_seed(0)
    probe = _task(shapes)
    ep = probe.model(batch[0], probe.semantics[probe.seen_classes], generator=gen)
    ent_grads = torch.autograd.grad(
        ep.entropies.mean(),
        [p for n, p in probe.model.named_parameters() if n.startswith(policy)],
    )
    out_off, g_off = policy_grads(off)
    out_on, g_on = policy_grads(on)
    assert out_off["loss_entropy"].item() == 0.0
    total = out_off["loss_cls"] + out_off["loss_policy"]
    assert out_off["loss"].item() == pytest.approx(total.item(), rel=1e-6)
    # grad(on) - grad(off) is exactly -beta * grad(mean entropy): nothing else differs
    assert any(g.abs().max() > 1e-4 for g in ent_grads)
    for a, b, e in zip(g_off, g_on, ent_grads, strict=True):
        assert torch.allclose(b - a, -beta * e, atol=1e-6)


def _plain_loop(task, d, *, steps, lr, batch_size=48):
    opt = torch.optim.Adam(task.trainable_parameters(), lr=lr)
    losses, n = [], len(d.x_train)
    for step in range(steps):
        i = (step * batch_size) % n
        out = task.training_step((d.x_train[i : i + batch_size], d.y_train[i : i + batch_size]))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    return losses


@pytest.mark.parametrize("use_localities", [True, False])
def test_task_trains_on_attr_shapes(shapes, use_localities):
    # Measured after 40 steps (data seeds 0, 1, 2): seen accuracy ERPCNet 0.44 / 0.49 / 0.61,
    # global-only 0.38 / 0.46 / 0.35; last/first loss ratio 0.31-0.47 (chance 1/18 = 0.056).
    task = _task(shapes, use_localities=use_localities)
    losses = _plain_loop(task, shapes, steps=40, lr=3e-3)
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:3])
    task.eval()
    with torch.no_grad():
        val = task.validation_step((shapes.x_test_seen, shapes.y_test_seen))
        r = evaluate_zsl(task.scores, shapes)
    assert val["seen_acc"] > 0.25 > 4 * chance_accuracy(len(shapes.seen_classes))
    assert r["gzsl_seen"] > 0.2
    assert task.monitor == ("seen_acc", "max")


def test_draw_localities_writes_a_png(shapes, tmp_path):
    task = _task(shapes)
    out = task.model(shapes.x_train[:1], task.semantics, greedy=True)
    res = draw_localities(
        shapes.x_train[0], out.actions[0], tmp_path / "sub" / "loc.png", grid=(4, 4), title="t"
    )
    data = res["path"].read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert res["num_boxes_drawn"] == 3
    assert torch.equal(
        res["boxes"], locality_boxes(out.actions[0], grid=(4, 4), image_size=(32, 32))
    )
    with pytest.raises(ValueError, match="cells in 0..15"):
        draw_localities(shapes.x_train[0], torch.tensor([16]), tmp_path / "x.png", grid=(4, 4))


def test_fit_resume_continues_the_same_episodes(shapes, tmp_path):
    # The sampling generator travels in the checkpoint (Task extra state): a run killed after
    # step 7 and resumed from the step-6 checkpoint ends with the uninterrupted run's weights.
    from frugalcv.core.config import OptimConfig, TrainConfig
    from frugalcv.core.hooks import Hook
    from frugalcv.core.loader import TensorLoader
    from frugalcv.core.loop import fit, make_fabric

    train = TrainConfig(
        max_steps=10, batch_size=32, eval_every=5, ckpt_every=3, log_every=5, progress=False,
        accelerator="cpu", seed=0,
    )  # fmt: skip

    def run(out, hooks=()):
        task = _task(shapes, num_steps=2, hidden_dim=32)
        loader = TensorLoader((shapes.x_train, shapes.y_train), batch_size=32, shuffle=True)
        val = TensorLoader((shapes.x_test_seen, shapes.y_test_seen), batch_size=128)
        res = fit(
            task, train_loader=loader, val_loader=val, train=train, optim=OptimConfig(lr=3e-3,
            name="adam", schedule="constant"), out_dir=out, fabric=make_fabric(train),
            hooks=hooks,
        )  # fmt: skip
        return task, res

    class Kill(Hook):
        def after_step(self, state):
            if state.step == 7:
                raise KeyboardInterrupt

    task_a, res_a = run(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", hooks=[Kill()])
    torch.manual_seed(1234)
    task_c, res_c = run(tmp_path / "b")
    assert "seen_acc" in res_a.final and res_c.final == res_a.final
    for p_a, p_c in zip(task_a.parameters(), task_c.parameters(), strict=True):
        assert torch.equal(p_a, p_c)
