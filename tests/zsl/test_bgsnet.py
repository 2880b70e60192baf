"""Tests for frugalcv.zsl.bgsnet: diversity loss, episodes, balance/annealing, BGSNetTask."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from frugalcv.data.zsl import make_attr_shapes
from frugalcv.zoo import create_model
from frugalcv.zsl import chance_accuracy, evaluate_zsl
from frugalcv.zsl.bgsnet import (
    AttentiveExtractors,
    BGSNet,
    BGSNetTask,
    DatasetBalance,
    GNet,
    InstanceBalance,
    attention_similarity,
    diversity_loss,
    episode_loss,
    linear_anneal,
    pruning_report,
    sample_episode,
)

pytestmark = pytest.mark.unit


# ---------------------------------------------------------------------------------------------
# diversity loss


def test_diversity_loss_hand_values():
    disjoint = torch.tensor([[[1.0, 0, 0, 0], [0, 1.0, 0, 0]]])  # (B=1, K=2, P=4)
    same = torch.tensor([[[0.2, 0.3, 0.5, 0.0], [0.2, 0.3, 0.5, 0.0]]])
    half = torch.tensor([[[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]]])  # cosine 1/2
    assert diversity_loss(disjoint).item() == 0.0
    assert diversity_loss(disjoint, self_adjust=False).item() == 0.0
    assert diversity_loss(same).item() == pytest.approx(1.0)  # the maximum
    assert diversity_loss(same, self_adjust=False).item() == pytest.approx(1.0)
    assert diversity_loss(half).item() == pytest.approx(0.25)  # w = c = 1/2, times c
    assert diversity_loss(half, self_adjust=False).item() == pytest.approx(0.5)
    assert diversity_loss(half, margin=0.2).item() == pytest.approx(0.5 * 0.3)
    # K = 3: pairs (1,2) identical, (1,3) and (2,3) disjoint -> mean of (1, 0, 0)
    three = torch.tensor([[[1.0, 0, 0], [1.0, 0, 0], [0, 0, 1.0]]])
    assert diversity_loss(three).item() == pytest.approx(1 / 3)
    # scale invariance and batch mean: a map times 3 is as redundant as the map
    batch = torch.cat([disjoint, 3 * same])
    assert diversity_loss(batch).item() == pytest.approx(0.5)
    # signed inputs (embeddings): orthogonal or opposite counts as 0
    assert diversity_loss(torch.tensor([[[1.0, 0], [-1.0, 0]]])).item() == 0.0


def test_diversity_loss_is_maximal_for_identical_maps():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        a = torch.rand(3, 4, 9, generator=g)
        assert 0.0 <= diversity_loss(a).item() < 1.0
        assert 0.0 <= diversity_loss(a, self_adjust=False).item() < 1.0
    a = torch.rand(3, 1, 9, generator=g).expand(3, 4, 9)
    assert diversity_loss(a).item() == pytest.approx(1.0)


def test_self_adjusted_gradient_is_the_plain_one_scaled_by_the_similarity():
    a = torch.tensor([[[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]]], requires_grad=True)
    (g_adj,) = torch.autograd.grad(diversity_loss(a), a)
    (g_plain,) = torch.autograd.grad(diversity_loss(a, self_adjust=False), a)
    assert torch.allclose(g_adj, 0.5 * g_plain)  # w_ij = sg(c_ij) = 1/2
    assert g_plain.abs().sum() > 0
    d = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0]]], requires_grad=True)
    (g_d,) = torch.autograd.grad(diversity_loss(d), d)
    assert g_d.abs().sum() == 0  # disjoint pairs are left alone


def test_attention_similarity_and_errors():
    a = torch.tensor([[[1.0, 0], [1.0, 1.0]]])
    assert torch.allclose(
        attention_similarity(a), torch.tensor([[[1.0, 1 / math.sqrt(2)], [1 / math.sqrt(2), 1.0]]])
    )
    with pytest.raises(ValueError, match=r"\(B, K, P\)"):
        diversity_loss(torch.ones(2, 3))
    with pytest.raises(ValueError, match="K >= 2"):
        diversity_loss(torch.ones(2, 1, 3))
    with pytest.raises(ValueError, match="margin"):
        diversity_loss(torch.ones(2, 2, 3), margin=1.0)


# ---------------------------------------------------------------------------------------------
# episodes


def test_sample_episode_uses_only_seen_classes_and_respects_sizes():
    # classes 0..5 seen, 6..7 unseen (present in the pool but never drawn); class 5 too small
    y = torch.cat([torch.arange(5).repeat_interleave(6), torch.tensor([5, 5]), torch.full((9,), 6)])
    y = torch.cat([y, torch.full((9,), 7)])
    seen = torch.arange(6)
    gen = torch.Generator().manual_seed(0)
    for _ in range(30):
        ep = sample_episode(
            y, seen_classes=seen, n_way=4, n_support=2, n_query=3, n_pseudo_unseen=1, generator=gen
        )
        assert len(ep.classes) == 4 and len(set(ep.classes.tolist())) == 4
        assert set(ep.classes.tolist()) <= {0, 1, 2, 3, 4}  # class 5 has 2 < 5 samples
        assert len(ep.support) == 3 * 2 and len(ep.query) == 4 * 3
        assert not set(ep.support.tolist()) & set(ep.query.tolist())
        assert set(y[ep.support].tolist()) == set(ep.pseudo_seen.tolist())  # 3 pseudo-seen
        assert int(ep.classes[-1]) not in y[ep.support].tolist()  # pseudo-unseen: query only
        for c in ep.classes.tolist():
            assert (y[ep.query] == c).sum() == 3
        assert torch.isin(y[torch.cat([ep.support, ep.query])], seen).all()
    with pytest.raises(ValueError, match="only 5 seen classes"):
        sample_episode(y, seen_classes=seen, n_way=6, n_support=2, n_query=3)
    with pytest.raises(ValueError, match="n_pseudo_unseen"):
        sample_episode(y, seen_classes=seen, n_way=3, n_support=1, n_query=1, n_pseudo_unseen=3)


def test_episode_loss_is_first_order_maml():
    torch.manual_seed(0)
    gnet = GNet(feature_dim=6, semantic_dim=4, embed_dim=5)
    sem = torch.randn(5, 4)
    y = torch.arange(5).repeat_interleave(4)
    g = torch.randn(20, 6, requires_grad=True)
    ep = sample_episode(
        y, seen_classes=torch.arange(5), n_way=4, n_support=2, n_query=2, n_pseudo_unseen=1
    )
    lr = 0.5
    loss = episode_loss(gnet, g, y, sem, ep, inner_lr=lr)
    grads = torch.autograd.grad(loss, [*gnet.parameters(), g])
    # brute force: adapt a copy by hand with one SGD step on the support, then differentiate the
    # query loss at the adapted weights (first-order MAML's meta-gradient)
    ref = GNet(feature_dim=6, semantic_dim=4, embed_dim=5)
    ref.load_state_dict(gnet.state_dict())
    sup_cls = ep.pseudo_seen
    tgt = torch.tensor([sup_cls.tolist().index(c) for c in y[ep.support].tolist()])
    sup = F.cross_entropy(ref(g[ep.support].detach(), sem[sup_cls]), tgt)
    inner = torch.autograd.grad(sup, list(ref.parameters()))
    with torch.no_grad():
        for p, gr in zip(ref.parameters(), inner, strict=True):
            p -= lr * gr
    q_tgt = torch.tensor([ep.classes.tolist().index(c) for c in y[ep.query].tolist()])
    q = F.cross_entropy(ref(g[ep.query], sem[ep.classes]), q_tgt)
    ref_grads = torch.autograd.grad(q, [*ref.parameters(), g])
    assert loss.item() == pytest.approx(q.item(), rel=1e-6)
    for a, b in zip(grads, ref_grads, strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    assert grads[-1][ep.support].abs().sum() == 0  # support features only steer the adaptation


# ---------------------------------------------------------------------------------------------
# balance and annealing


def test_linear_anneal_values():
    vals = [linear_anneal(t, start=2, length=4) for t in range(8)]
    assert vals == [1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    with pytest.raises(ValueError, match="length >= 1"):
        linear_anneal(0, start=0, length=0)


def test_dataset_balance_reaches_the_pruned_structure():
    bal = DatasetBalance(num_extractors=4, num_keep=2, anneal_start=3, anneal_steps=4)
    with torch.no_grad():
        bal.alpha.copy_(torch.tensor([0.3, -1.0, 0.5, -0.2]))  # weakest: 1 then 3
    pi = bal.alpha.detach().softmax(0)
    history = []
    for _ in range(9):
        w = bal()
        assert w.sum().item() == pytest.approx(1.0)
        history.append(w.detach())
        bal.advance()
    assert torch.allclose(history[0], pi)  # before annealing: plain softmax
    assert bal.marked.tolist() == [False, True, False, True]
    # step 5 (two steps into annealing): marked weights halved, then renormalised
    m = torch.tensor([1.0, 0.5, 1.0, 0.5])
    assert torch.allclose(history[5], pi * m / (pi * m).sum())
    final = history[7]  # step 7 = start + length: exactly zero
    assert final[1].item() == 0.0 and final[3].item() == 0.0
    assert torch.allclose(final[[0, 2]], pi[[0, 2]] / pi[[0, 2]].sum())
    assert bal.active().tolist() == [0, 2] and bal.finished
    with pytest.raises(ValueError, match="num_keep"):
        DatasetBalance(num_extractors=2, num_keep=3, anneal_start=0, anneal_steps=1)


def test_instance_balance_starts_halfway_and_mixes_convexly():
    gate = InstanceBalance(feature_dim=3)
    s, lam = gate(torch.randn(4, 3), torch.ones(4, 2), torch.zeros(4, 2))
    assert torch.allclose(lam, torch.full((4,), 0.5)) and torch.allclose(s, torch.full((4, 2), 0.5))


def test_extractors_attention_and_selection():
    torch.manual_seed(0)
    ext = AttentiveExtractors(feature_dim=8, semantic_dim=5, embed_dim=6, num_extractors=3)
    f, sem = torch.randn(2, 8, 4, 4), torch.randn(7, 5)
    scores, attn = ext(f, sem)
    assert scores.shape == (2, 3, 7) and attn.shape == (2, 3, 16)
    assert torch.allclose(attn.sum(2), torch.ones(2, 3))  # softmax over positions
    assert scores.abs().max() <= ext.scale + 1e-5  # scale * cosine
    sub = ext.select(torch.tensor([0, 2]))
    s_sub, _ = sub(f, sem)
    assert torch.allclose(s_sub, scores[:, [0, 2]], atol=1e-6)
    with pytest.raises(ValueError, match="attention='channel'"):
        ext(torch.randn(2, 8), sem)
    chan = AttentiveExtractors(
        feature_dim=8, semantic_dim=5, embed_dim=6, num_extractors=2, attention="channel"
    )
    s_c, a_c = chan(torch.randn(2, 8), sem)
    assert s_c.shape == (2, 2, 7) and a_c.shape == (2, 2, 8) and ((a_c > 0) & (a_c < 1)).all()


def test_pruned_model_scores_equal_and_cost_less():
    torch.manual_seed(0)
    model = BGSNet(
        semantics=torch.randn(6, 5),
        feature_dim=8,
        num_extractors=4,
        num_keep=1,
        anneal_start=0,
        anneal_steps=2,
    )
    with torch.no_grad():
        model.balance.alpha.copy_(torch.tensor([0.0, 1.0, -1.0, 0.5]))
    x = torch.randn(3, 8, 4, 4)
    full_before = model(x)
    assert model.pruned().extractors.num_extractors == 4  # nothing pruned before annealing
    model.balance.advance()  # mid-annealing: the copy keeps every extractor and the schedule
    assert torch.allclose(model.pruned()(x), model(x), atol=1e-6)
    model.balance.advance()
    assert model.kept_extractors() == [1]
    small = model.pruned()
    assert small.extractors.num_extractors == 1
    assert torch.allclose(small(x), model(x), atol=1e-6)
    assert not torch.allclose(full_before, model(x))
    report = pruning_report(model, x)
    assert report["kept"] == [1] and report["num_extractors"] == 4
    # three of four extractors removed (no backbone here): parameters and FLOPs both drop
    # per spatial extractor (C=8, A=5, E=64): attention 8+1, projection 8*64+64, semantic
    # projection 5*64+64 = 969; three extractors and their three alpha entries go
    assert report["params_full"] - report["params_pruned"] == 3 * 969 + 3
    assert 0 < report["flops_saving"] < 1 and report["flops_pruned"] < report["flops_full"]


# ---------------------------------------------------------------------------------------------
# BGSNetTask


@pytest.fixture(scope="module")
def shapes():
    return make_attr_shapes(num_train_per_class=16, num_test_per_class=8, image_size=32, seed=0)


def _plain_loop(task, x, y, *, steps, lr=3e-3, bs=72):
    opt = torch.optim.Adam(task.trainable_parameters(), lr=lr)
    losses = []
    for step in range(steps):
        i = (step * bs) % len(x)
        out = task.training_step((x[i : i + bs], y[i : i + bs]))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    return losses


def test_task_trains_end_to_end_and_prunes(shapes):
    # measured at seed 0 (60 steps): seen_acc 0.88, ZSL T1 0.77 (chance 1/6), kept [0, 2]
    torch.manual_seed(0)
    task = BGSNetTask(
        semantics=shapes.semantics,
        seen_classes=shapes.seen_classes,
        backbone=create_model("tiny_cnn", num_classes=1),
        anneal_start=20,
        anneal_steps=20,
    )
    losses = _plain_loop(task, shapes.x_train, shapes.y_train, steps=60)
    assert np.mean(losses[-5:]) < 0.3 * np.mean(losses[:5])
    task.eval()
    with torch.no_grad():
        val = task.validation_step((shapes.x_test_seen, shapes.y_test_seen))
        r = evaluate_zsl(task.scores, shapes)
        assert val["seen_acc"] > 0.6  # chance 1/18
        assert val["seen_acc"] >= val["acc_all"]
        assert r["zsl_top1"] > chance_accuracy(len(shapes.unseen_classes)) + 0.2
        deployed = task.deployable()
        assert deployed.extractors.num_extractors == 2
        assert torch.allclose(
            deployed(shapes.x_test_unseen[:8]), task.scores(shapes.x_test_unseen[:8]), atol=1e-5
        )
        report = pruning_report(task.model, shapes.x_test_seen[:1])
    assert len(report["kept"]) == 2 and report["kept"] == task.model.kept_extractors()
    # the backbone is shared by both structures, so the heads save a larger fraction
    assert report["head_flops_saving"] > report["flops_saving"] > 0
    assert report["head_params_saving"] > report["params_saving"] > 0
    assert task.monitor == ("seen_acc", "max")


@pytest.mark.parametrize("attention", ["spatial", "channel"])
def test_task_trains_on_precomputed_features(shapes, attention):
    torch.manual_seed(0)
    frozen = create_model("tiny_cnn", num_classes=1).eval()
    with torch.no_grad():
        maps = frozen.forward_features(shapes.x_train)  # (N, 64, 8, 8)
    x = maps if attention == "spatial" else maps.mean(dim=(2, 3))  # (N, 64)
    task = BGSNetTask(
        semantics=shapes.semantics,
        seen_classes=shapes.seen_classes,
        feature_dim=64,
        attention=attention,
        anneal_start=10,
        anneal_steps=10,
    )
    losses = _plain_loop(task, x, shapes.y_train, steps=100, lr=1e-2)
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    with torch.no_grad():
        acc = task.validation_step((x, shapes.y_train))["seen_acc"]
    # training-set fit on a frozen random CNN's features (chance 1/18); measured 0.75 / 0.76
    assert acc > 0.5


def _task(shapes, **kw):
    torch.manual_seed(0)
    kw = {"anneal_start": 100, "anneal_steps": 1, **kw}
    return BGSNetTask(
        semantics=shapes.semantics, seen_classes=shapes.seen_classes, feature_dim=64, **kw
    )


def _maps(shapes, n=72):
    torch.manual_seed(1)
    return torch.randn(n, 64, 4, 4), shapes.y_train[:n]


def test_diversity_switch_removes_the_term_exactly(shapes):
    x, y = _maps(shapes)
    on, off = _task(shapes), _task(shapes, diversity=False)
    torch.manual_seed(5)
    out_on = on.training_step((x, y))
    torch.manual_seed(5)  # the same episode
    out_off = off.training_step((x, y))
    assert "div" in out_on and "div" not in out_off
    assert not off.components["diversity"]
    assert out_on["loss"].item() == pytest.approx(
        out_off["loss"].item() + on.div_weight * out_on["div"].item(), rel=1e-6
    )
    terms = out_off["gnet"] + out_off["bsnet"] + out_off["balance"]
    assert out_off["loss"].item() == pytest.approx(terms.item(), rel=1e-6)
    # the attention parameters' gradient differs by exactly the diversity gradient
    a_on = torch.autograd.grad(out_on["loss"], on.model.extractors.attn_w)[0]
    a_off = torch.autograd.grad(out_off["loss"], off.model.extractors.attn_w)[0]
    parts = on.model.forward_parts(x, on.model.semantics[on.seen_classes])
    div = diversity_loss(parts["attention"])
    a_div = torch.autograd.grad(on.div_weight * div, on.model.extractors.attn_w)[0]
    assert torch.allclose(a_on - a_off, a_div, atol=1e-6)


def test_dataset_balance_switch(shapes):
    task = _task(shapes, dataset_balance=False, anneal_start=0)
    assert task.model.balance is None and not task.components["dataset_balance"]
    assert not any("alpha" in n for n, _ in task.named_parameters())
    x, y = _maps(shapes)
    for _ in range(3):
        task.training_step((x, y))
    _, w = task.model.extractor_weights()
    assert torch.allclose(w, torch.full((4,), 0.25))
    assert task.model.kept_extractors() == [0, 1, 2, 3]  # nothing annealed away
    with_balance = _task(shapes, anneal_start=0)
    for _ in range(2):
        with_balance.training_step((x, y))
    assert len(with_balance.model.kept_extractors()) == 2  # num_keep after 1 annealing step


@pytest.mark.parametrize("branches", ["gnet", "bsnet"])
def test_branch_switches_remove_the_other_branch(shapes, branches):
    task = _task(shapes, branches=branches)
    x, y = _maps(shapes)
    out = task.training_step((x, y))
    comp = task.components
    assert not comp["instance_balance"] and "balance" not in out
    if branches == "gnet":
        assert task.model.extractors is None and task.model.balance is None
        assert set(out) == {"loss", "gnet", "episode_way", "train_acc"}
        assert out["loss"].item() == pytest.approx(out["gnet"].item())
        assert not comp["bsnet"] and not comp["diversity"] and not comp["dataset_balance"]
    else:
        assert task.model.gnet is None
        assert set(out) == {"loss", "bsnet", "div", "train_acc"}
        assert not comp["gnet"] and not comp["episodic"]
    out["loss"].backward()
    assert all(p.grad is not None for p in task.parameters())


def test_branch_objectives_are_separate_in_the_full_model(shapes):
    task = _task(shapes)
    x, y = _maps(shapes)
    out = task.training_step((x, y))
    m = task.model
    gnet, bsnet, gate = (
        list(m.gnet.parameters()),
        list(m.extractors.parameters()),
        list(m.gate.parameters()),
    )
    # the balance loss trains the gate only; BSNet's loss never reaches GNet and vice versa
    for p in torch.autograd.grad(
        out["balance"], gnet + bsnet, allow_unused=True, retain_graph=True
    ):
        assert p is None or p.abs().sum() == 0
    assert all(
        p is None
        for p in torch.autograd.grad(out["bsnet"], gnet, allow_unused=True, retain_graph=True)
    )
    assert all(
        p is None
        for p in torch.autograd.grad(
            out["gnet"], bsnet + gate, allow_unused=True, retain_graph=True
        )
    )
    # the gate's output layer starts at zero, so at step 0 only it receives a gradient
    last = list(m.gate.mlp[2].parameters())
    assert all(g.abs().sum() > 0 for g in torch.autograd.grad(out["balance"], last))


def test_batch_too_small_for_an_episode_gives_gnet_no_update(shapes):
    task = _task(shapes)
    x = torch.randn(5, 64, 4, 4)
    out = task.training_step((x, torch.tensor([0, 0, 0, 0, 1])))  # one class with 4 samples
    assert out["episode_way"].item() == 0 and out["gnet"].item() == 0.0
    grads = torch.autograd.grad(out["loss"], list(task.model.gnet.parameters()))
    assert all(g.abs().sum() == 0 for g in grads)
    assert out["loss"].item() == pytest.approx(
        (out["bsnet"] + out["div"] * task.div_weight + out["balance"]).item(), rel=1e-6
    )


def test_non_episodic_switch_uses_plain_cross_entropy(shapes):
    task = _task(shapes, branches="gnet", episodic=False)
    x, y = _maps(shapes)
    out = task.training_step((x, y))
    assert "episode_way" not in out and not task.components["episodic"]
    s_g = task.model.gnet(x.mean(dim=(2, 3)), task.model.semantics[task.seen_classes])
    assert out["gnet"].item() == pytest.approx(F.cross_entropy(s_g, y).item(), rel=1e-6)


def test_schedule_state_is_in_the_state_dict(shapes):
    a = _task(shapes, anneal_start=2, anneal_steps=3)
    x, y = _maps(shapes)
    for _ in range(4):
        a.training_step((x, y))
    b = _task(shapes, anneal_start=2, anneal_steps=3)
    b.load_state_dict(a.state_dict())
    assert int(b.model.balance.step) == 4 and b.model.balance.marked.sum() == 2
    assert torch.equal(b.model.extractor_weights()[1], a.model.extractor_weights()[1])


def test_task_errors(shapes):
    x, y = _maps(shapes)
    task = _task(shapes)
    with pytest.raises(ValueError, match="unseen-class labels"):
        task.training_step((x[:2], shapes.y_test_unseen[:2]))
    with pytest.raises(ValueError, match="attention='channel'"):
        task.training_step((x.mean(dim=(2, 3)), y))
    with pytest.raises(ValueError, match="valid options are both, gnet, bsnet"):
        _task(shapes, branches="gsnet")
    with pytest.raises(ValueError, match="feature_dim"):
        BGSNetTask(semantics=shapes.semantics, seen_classes=shapes.seen_classes)
    with pytest.raises(ValueError, match="diversity needs"):
        _task(shapes, num_extractors=1, num_keep=1)
