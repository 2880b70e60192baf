"""Searchers: bilevel steps change alpha, exact second-order check, toy search picks the best op,
plain-loop and shared-loop training, random search."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from frugalcv.nas import (
    BaLeNASTask,
    DartsSearchTask,
    DartsSupernet,
    NB201Supernet,
    Vadam,
    make_search_batches,
    parse_nb201_arch,
    random_search,
    sample_nb201_arch,
    unrolled_arch_grads,
)

pytestmark = pytest.mark.unit

TOY_OPS = ("none", "identity", "square")


class ToySupernet(nn.Module):
    """One mixed edge on 2-D inputs, ops {0, x, x^2}, then a linear head.

    On the 'inside / outside a circle' task only the square op makes the classes linearly
    separable, so a search should move weight towards it.
    """

    def __init__(self, *, smooth: bool = False) -> None:
        super().__init__()
        self.alpha = nn.Parameter(1e-3 * torch.randn(1, 3))
        self.hidden = nn.Linear(2, 2)
        self.head = nn.Linear(2, 2)
        self.smooth = smooth

    def arch_parameters(self):
        return [self.alpha]

    def weight_parameters(self):
        return [p for n, p in self.named_parameters() if n != "alpha"]

    def derive(self):
        return TOY_OPS[int(self.alpha.argmax())]

    def forward(self, x):
        w = F.softmax(self.alpha[0], dim=-1)
        if self.smooth:
            x = torch.tanh(self.hidden(x))
        f = w[0] * x.mul(0.0) + w[1] * x + w[2] * x * x
        return self.head(f)


def _circle(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    y = (x.pow(2).sum(1) > 1.4).long()  # ~ half the points inside (chi2 median 1.39)
    return x, y


def _toy_batches(n=256, batch_size=32, seed=0):
    x, y = _circle(2 * n, seed)
    return make_search_batches(
        x[:n],
        y[:n],
        x[n:],
        y[n:],
        batch_size=batch_size,
        generator=torch.Generator().manual_seed(seed),
    )


def _nb201_batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 1, 8, 8, generator=g)
    y = torch.randint(0, 3, (16,), generator=g)
    return (x[:8], y[:8], x[8:], y[8:])


@pytest.mark.parametrize(
    "cls,order",
    [
        (DartsSearchTask, "first"),
        (DartsSearchTask, "second"),
        (BaLeNASTask, "first"),
        (BaLeNASTask, "second"),
    ],
)
def test_one_step_on_nb201_supernet_changes_alpha_and_weights(cls, order):
    torch.manual_seed(0)
    net = NB201Supernet(channels=4, num_cells=1, num_classes=3, in_channels=1)
    task = cls(supernet=net, order=order)
    opts = task.make_optimizers()
    alpha0 = net.alpha.detach().clone()
    w0 = net.classifier.weight.detach().clone()
    out = task.step(_nb201_batch(), forward=task, optimizers=opts, fabric=None, grad_clip=5.0)
    assert torch.isfinite(out["loss"]) and torch.isfinite(out["arch_loss"])
    assert not torch.equal(net.alpha.detach(), alpha0)
    assert not torch.equal(net.classifier.weight.detach(), w0)
    assert net.alpha.grad is None  # the weight loss's alpha gradient is dropped
    parse_nb201_arch(task.derive())


def test_one_step_on_darts_supernet_changes_both_alphas():
    torch.manual_seed(0)
    net = DartsSupernet(channels=2, num_layers=3, num_classes=3, in_channels=1)
    task = BaLeNASTask(supernet=net)
    opts = task.make_optimizers()
    before = [a.detach().clone() for a in net.arch_parameters()]
    task.step(_nb201_batch(), forward=task, optimizers=opts, fabric=None)
    for a, b in zip(net.arch_parameters(), before, strict=True):
        assert not torch.equal(a.detach(), b)
    assert len(task.derive().normal) == 8


def test_balenas_trains_weights_at_the_mean():
    # Vadam restores mu before the weight step: alpha after the step equals mu exactly.
    torch.manual_seed(0)
    net = ToySupernet()
    task = BaLeNASTask(supernet=net)
    w_opt, a_opt = task.make_optimizers(arch_lr=0.01, train_set_size=256)
    seen = []
    net.register_forward_pre_hook(lambda m, inp: seen.append(m.alpha.detach().clone()))
    task.step(_toy_batches()[0], forward=task, optimizers=[w_opt, a_opt], fabric=None)
    mu, sigma = BaLeNASTask.arch_distribution(a_opt)
    assert len(seen) == 2  # one sampled forward for alpha, one for the weights
    assert not torch.allclose(seen[0], seen[1])  # the alpha step used a sample (sigma = 1)
    torch.testing.assert_close(seen[1], mu[0])  # the weight step ran at the mean
    assert float(sigma[0].max()) < 1.0


def test_second_order_gradient_matches_exact_hypergradient():
    torch.manual_seed(0)
    net = ToySupernet(smooth=True).double()
    x, y = _circle(64, 1)
    batch = (x[:32].double(), y[:32], x[32:].double(), y[32:])
    lr, mom, wd = 0.1, 0.9, 3e-4
    names = [n for n, _ in net.named_parameters() if n != "alpha"]
    bufs = {n: 0.1 * torch.randn_like(p) for n, p in net.named_parameters() if n != "alpha"}
    got, _ = unrolled_arch_grads(
        net, batch, lr=lr, momentum=mom, weight_decay=wd, momentum_buffers=bufs, eps=1e-4
    )
    # Exact: d/dalpha L_val(w - lr (mom buf + grad_w L_train(w, alpha) + wd w), alpha).
    params = dict(net.named_parameters())
    w = [params[n] for n in names]
    g_w = torch.autograd.grad(F.cross_entropy(net(batch[0]), batch[1]), w, create_graph=True)
    unrolled = {
        n: p - lr * (mom * bufs[n] + g + wd * p) for n, p, g in zip(names, w, g_w, strict=True)
    }
    loss = F.cross_entropy(
        torch.func.functional_call(net, {**unrolled, "alpha": net.alpha}, (batch[2],)), batch[3]
    )
    (exact,) = torch.autograd.grad(loss, net.alpha)
    torch.testing.assert_close(got[0], exact, rtol=1e-5, atol=1e-9)
    # With lr = 0 the second-order gradient is the first-order one.
    got0, _ = unrolled_arch_grads(net, batch, lr=0.0)
    (first,) = torch.autograd.grad(F.cross_entropy(net(batch[2]), batch[3]), net.alpha)
    torch.testing.assert_close(got0[0], first)


@pytest.mark.parametrize(
    "cls,order", [(DartsSearchTask, "first"), (BaLeNASTask, "first"), (DartsSearchTask, "second")]
)
def test_toy_search_moves_weight_to_the_best_op(cls, order):
    torch.manual_seed(0)
    net = ToySupernet()
    task = cls(supernet=net, order=order)
    kw = {"train_set_size": 256} if cls is BaLeNASTask else {"arch_weight_decay": 0.0}
    opts = task.make_optimizers(lr=0.1, arch_lr=0.03, **kw)
    for epoch in range(8):
        for batch in _toy_batches(seed=epoch):
            task.step(batch, forward=task, optimizers=opts, fabric=None)
    w = F.softmax(net.alpha.detach()[0], dim=-1)
    assert task.derive() == "square"
    assert float(w[2]) > 0.7, w  # measured 0.81-0.90 over 3 seeds and all four searchers


def test_plain_torch_loop_loss_falls():
    torch.manual_seed(0)
    net = ToySupernet()
    task = BaLeNASTask(supernet=net)
    optimizers = task.make_optimizers(lr=0.1, arch_lr=0.03, train_set_size=256)
    losses = []
    for epoch in range(8):
        for batch in _toy_batches(seed=epoch):
            out = task.step(batch, forward=task, optimizers=optimizers, fabric=None)
            losses.append(float(out["loss"].detach()))
    assert sum(losses[-8:]) / 8 < 0.6 * sum(losses[:8]) / 8
    x, y = _circle(512, 99)
    acc = task.validation_step((x, y))["acc"]
    assert float(acc) > 0.8


def test_runs_in_the_shared_loop(tmp_path):
    from frugalcv.core.config import OptimConfig, TrainConfig
    from frugalcv.core.loop import fit, make_fabric

    torch.manual_seed(0)
    task = BaLeNASTask(supernet=ToySupernet())
    train = TrainConfig(
        max_steps=40, eval_every=20, ckpt_every=20, progress=False, accelerator="cpu"
    )
    optim = OptimConfig(lr=0.1, schedule="constant")
    x, y = _circle(256, 5)
    res = fit(
        task,
        train_loader=_toy_batches(),
        val_loader=[(x, y)],
        train=train,
        optim=optim,
        out_dir=tmp_path,
        fabric=make_fabric(train),
        optimizers=task.make_optimizers(lr=0.1, arch_lr=0.03, train_set_size=256),
    )
    assert res.steps == 40 and res.final["acc"] > 0.7


def test_errors():
    net = ToySupernet()
    with pytest.raises(ValueError, match="order"):
        DartsSearchTask(supernet=net, order="third")
    with pytest.raises(ValueError, match="arch_parameters"):
        DartsSearchTask(supernet=nn.Linear(2, 2))
    task = BaLeNASTask(supernet=net)
    darts_opts = DartsSearchTask(supernet=net).make_optimizers()
    with pytest.raises(ValueError, match="Vadam"):
        task.step(_toy_batches()[0], forward=task, optimizers=darts_opts, fabric=None)
    with pytest.raises(ValueError, match="two optimizers"):
        task.step(_toy_batches()[0], forward=task, optimizers=darts_opts[:1], fabric=None)
    with pytest.raises(ValueError, match="4-tuple"):
        task.training_step((torch.zeros(2, 2), torch.zeros(2)))
    assert isinstance(task.make_optimizers()[1], Vadam)


def test_make_search_batches_pairs_halves():
    xt, yt = torch.arange(10.0)[:, None], torch.arange(10)
    xv, yv = 100 + torch.arange(7.0)[:, None], 100 + torch.arange(7)
    batches = make_search_batches(xt, yt, xv, yv, batch_size=3)
    assert len(batches) == 2
    for a, b, c, d in batches:
        assert torch.equal(a[:, 0].long(), b) and torch.equal(c[:, 0].long(), d)
        assert (d >= 100).all() and (b < 100).all()
    with pytest.raises(ValueError):
        make_search_batches(xt, yt, xv, yv, batch_size=8)


def test_random_search_finds_the_best_scored_sample():
    table = {}

    def score(arch):
        table[arch] = table.get(arch, 0) + 1
        return sum(op == "nor_conv_3x3" for op in parse_nb201_arch(arch))

    res = random_search(sample=sample_nb201_arch, score=score, num_samples=60, seed=3)
    assert len(res.history) == 60
    assert res.best_score == max(s for _, s in res.history)
    assert res.best == next(a for a, s in res.history if s == res.best_score)  # first of ties
    assert all(v == 1 for v in table.values())  # each distinct arch scored once
    again = random_search(sample=sample_nb201_arch, score=score, num_samples=60, seed=3)
    assert again.history == res.history
