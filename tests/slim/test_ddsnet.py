"""DDS-Net: slimmable DnCNN parity and MACs, sandwich Stage 1 learns, tailoring ladder, gate,
dynamic inference, metrics and classical baselines."""

import math
import random

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from frugalcv.core.loader import TensorLoader
from frugalcv.data.denoise import add_gaussian_noise, load_denoise, noise_transform
from frugalcv.slim.ddsnet import (
    DenoiseGateTask,
    DenoiseSupernetTask,
    DynamicDenoiser,
    Rung,
    SlimDnCNN,
    config_macs,
    estimate_sigma,
    extract_subnet,
    gate_targets,
    haar_diagonal,
    nlm_denoise,
    oracle_routes,
    per_image_latency,
    pick_rungs,
    psnr_per_image,
    sandwich_configs,
    ssim_per_image,
    tailor,
    tv_denoise,
    wavelet_denoise,
)

pytestmark = pytest.mark.unit


def _tiny(seed=0, in_channels=1):
    torch.manual_seed(seed)
    return SlimDnCNN(in_channels=in_channels, channels=16, depth=5, min_channels=8, channel_step=4)


def _plain_dncnn(net: SlimDnCNN) -> nn.Module:
    """A DnCNN from torch layers with the supernet's full weights (full-width BN row)."""
    layers = [nn.Conv2d(net.in_channels, net.channels, 3, padding=1), nn.ReLU()]
    for _ in range(net.depth - 2):
        layers += [
            nn.Conv2d(net.channels, net.channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(net.channels),
            nn.ReLU(),
        ]
    layers.append(nn.Conv2d(net.channels, net.in_channels, 3, padding=1, bias=False))
    plain = nn.Sequential(*layers)
    with torch.no_grad():
        plain[0].weight.copy_(net.head.weight)
        plain[0].bias.copy_(net.head.bias)
        for i, block in enumerate(net.body):
            conv, bn = plain[2 + 3 * i], plain[3 + 3 * i]
            conv.weight.copy_(block[0].weight)
            row = block[1].width_index(net.channels)
            bn.weight.copy_(block[1].weight)
            bn.bias.copy_(block[1].bias)
            bn.running_mean.copy_(block[1].running_mean[row])
            bn.running_var.copy_(block[1].running_var[row])
        plain[-1].weight.copy_(net.tail.weight)
    return plain


@pytest.fixture(scope="module")
def data():
    d = load_denoise("skimage-grey", sigma=25)
    return d, d.train_crops(640, 24, seed=0), d.test_crops(48)


@pytest.fixture(scope="module")
def trained(data):
    """Stage 1 with the plain loop: 2 epochs of 40 sandwich steps (batch 16, Adam)."""
    _, crops, (vn, vc) = data
    net = _tiny()
    random.seed(0)  # the sandwich draws (Python's random): same supernet whatever ran before
    task = DenoiseSupernetTask(model=net, num_random=1)
    opt = torch.optim.Adam(task.trainable_parameters(), lr=3e-3)
    loader = TensorLoader((crops,), batch_size=16, shuffle=True, transform=noise_transform(25.0))
    task.train()
    history = []
    for epoch in range(2):
        loader.set_epoch(epoch)
        for batch in loader:
            history.append(task.step(batch, forward=task, optimizers=[opt], fabric=None))
    task.eval()
    return net, task, history


# ------------------------------------------------------------------ supernet


def test_largest_config_equals_plain_dncnn_in_train_and_eval():
    net = _tiny()
    x = torch.rand(3, 1, 12, 12)
    net.train()
    plain = _plain_dncnn(net).train()
    assert_close(net(x, config=net.largest_config), x - plain(x))  # batch statistics
    net.eval()
    with torch.no_grad():  # give the full-width BN rows non-trivial statistics
        for block in net.body:
            block[1].running_mean.normal_()
            block[1].running_var.uniform_(0.5, 2.0)
    plain = _plain_dncnn(net).eval()
    assert_close(net(x, config=net.largest_config), x - plain(x))


def test_extracted_subnet_equals_the_sliced_supernet():
    net = _tiny().eval()
    cfg = (12, 8, 16, 12)
    x = torch.rand(2, 1, 10, 10)
    sub = extract_subnet(net, cfg)
    assert [m.out_channels for m in sub.net if isinstance(m, nn.Conv2d)] == [12, 8, 16, 12, 1]
    assert_close(sub(x), net(x, config=cfg))
    assert net.config == cfg


def test_macs_hand_value_and_slicing_cuts_them():
    net = _tiny()
    cfg = (12, 8, 16, 12)
    # 3x3 convs, stride 1: per pixel 9 * (1*12 + 12*8 + 8*16 + 16*12 + 12*1)
    assert config_macs(net, cfg, image_size=(20, 30)) == 9 * (12 + 96 + 128 + 192 + 12) * 600
    full = config_macs(net, net.largest_config, image_size=(20, 30))
    assert full == 9 * (16 + 3 * 256 + 16) * 600
    assert config_macs(net, cfg, image_size=(20, 30)) < full
    assert net.config == net.largest_config  # counting left the configuration alone
    net.eval()
    config_macs(net, cfg, image_size=(8, 8))
    assert not net.training  # ... and the train flag


def test_config_errors_and_choices():
    net = _tiny()
    assert net.choices == (8, 12, 16) and net.num_layers == 4
    with pytest.raises(ValueError, match="4 channel counts"):
        net.set_config((16, 16, 16))
    with pytest.raises(ValueError, match="each one of"):
        net.set_config((16, 16, 10, 16))


def test_sandwich_configs_largest_smallest_then_random():
    import random

    net = _tiny()
    cfgs = sandwich_configs(net, 5, rng=random.Random(0))
    assert cfgs[0] == (16,) * 4 and cfgs[1] == (8,) * 4 and len(cfgs) == 7
    assert all(c in net.choices for cfg in cfgs[2:] for c in cfg)
    uni = sandwich_configs(net, 5, mode="uniform", rng=random.Random(0))
    assert all(len(set(cfg)) == 1 for cfg in uni)


# ------------------------------------------------------------------ stage 1


def test_stage_one_learns_with_a_plain_loop(data, trained):
    _, _, (vn, vc) = data
    net, task, history = trained
    first = sum(float(h["loss"]) for h in history[:10]) / 10
    last = sum(float(h["loss"]) for h in history[-10:]) / 10
    assert last < 0.7 * first
    with torch.no_grad():
        metrics = task.validation_step((vn, vc))
    noisy = float(metrics["psnr_noisy"])
    assert abs(noisy - 20.2) < 1.5  # sigma 25: 20 log10(255 / 25) = 20.17 dB before clipping
    assert float(metrics["psnr"]) > noisy + 2.0
    assert float(metrics["psnr@min"]) > noisy + 1.0


def test_stage_one_step_through_a_fabric_wrapped_task():
    from lightning.fabric import Fabric

    fabric = Fabric(accelerator="cpu", devices=1)
    task = DenoiseSupernetTask(model=_tiny(), num_random=1, distill_weight=0.5)
    opt = torch.optim.SGD(task.trainable_parameters(), lr=0.05)
    wrapped, opt = fabric.setup(task, opt)
    x = torch.rand(4, 1, 12, 12)
    before = task.model.head.weight.clone()
    out = task.step(
        (x + 0.1 * torch.randn_like(x), x), forward=wrapped, optimizers=[opt], fabric=fabric
    )
    assert set(out) == {"loss", "loss_largest", "loss_smallest"}
    assert not torch.equal(before, task.model.head.weight)


# ------------------------------------------------------------------ stage 2


@pytest.fixture(scope="module")
def ladder(data, trained):
    _, _, (vn, vc) = data
    net = trained[0]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rungs = tailor(net, vn, vc)
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # no side effects
    return rungs


def test_ladder_is_one_greedy_pass_down_to_the_smallest(trained, ladder):
    net = trained[0]
    assert len(ladder) == 1 + net.num_layers * 2  # two cuts of 4 channels per layer
    assert ladder[0].config == net.largest_config and ladder[-1].config == net.smallest_config
    macs = [r.macs for r in ladder]
    assert all(a > b for a, b in zip(macs, macs[1:], strict=False))
    for a, b in zip(ladder, ladder[1:], strict=False):
        diff = [x - y for x, y in zip(a.config, b.config, strict=False)]
        assert sorted(diff) == [0, 0, 0, 4]  # one layer cut by one step
    assert all(math.isfinite(r.psnr) and r.psnr > 20.0 for r in ladder)


def test_rung_psnr_is_the_psnr_of_the_deployed_rung(data, trained, ladder):
    _, _, (vn, vc) = data
    net = trained[0]
    for rung in (ladder[0], ladder[3], ladder[-1]):
        sub = extract_subnet(net, rung.config, rung=rung)
        with torch.no_grad():
            p = float(psnr_per_image(sub(vn), vc).mean())
        assert abs(p - rung.psnr) < 1e-4


def test_first_cut_is_the_brute_force_least_psnr_per_mac(data, trained, ladder):
    _, _, (vn, vc) = data
    net = trained[0]
    top = ladder[0]
    scores = {}
    for layer in range(net.num_layers):
        cand = tuple(c - 4 if i == layer else c for i, c in enumerate(top.config))
        rung = tailor(net, vn, vc, max_rungs=1, calib=vn)  # recalibrated largest only
        assert rung[0].config == top.config
        from frugalcv.layers.slimmable import recalibrate_bn

        saved = {k: v.clone() for k, v in net.state_dict().items()}
        recalibrate_bn(net, [vn], widths=[cand], forward=lambda x, c: net(x, config=c))
        net.eval()
        with torch.no_grad():
            p = float(psnr_per_image(net(vn, config=cand), vc).mean())
        net.load_state_dict(saved)
        saved_macs = top.macs - config_macs(net, cand, image_size=(48, 48))
        scores[cand] = (top.psnr - p) / saved_macs
    assert ladder[1].config == min(scores, key=scores.get)


def test_pick_rungs_spreads_in_macs():
    fake = [Rung((16,), 0.0, m, [], []) for m in (100, 90, 80, 55, 50, 20, 10)]
    picked = pick_rungs(fake, 3)
    assert [r.macs for r in picked] == [100, 55, 10]
    assert [r.macs for r in pick_rungs(fake, 7)] == [100, 90, 80, 55, 50, 20, 10]
    with pytest.raises(ValueError, match="ladder's length"):
        pick_rungs(fake, 8)


# ------------------------------------------------------------------ stage 3


def test_gate_targets_hand_values():
    psnr = torch.tensor([[30.0, 30.3, 30.35], [28.0, 29.0, 29.05], [25.0, 25.0, 24.9]])
    assert gate_targets(psnr, tolerance=0.1).tolist() == [1, 1, 0]
    assert gate_targets(psnr, tolerance=0.4).tolist() == [0, 1, 0]
    assert gate_targets(psnr, tolerance=0.1, rule="binary").tolist() == [2, 2, 0]
    with pytest.raises(ValueError, match="unknown gate rule"):
        gate_targets(psnr, rule="median")


def test_oracle_routes_is_best_at_its_cost_and_fits_the_budget():
    import itertools

    g = torch.Generator().manual_seed(0)
    quality = torch.rand(5, 3, generator=g) + torch.tensor([0.0, 0.3, 0.5])
    cost = torch.tensor([1.0, 2.0, 4.0])
    every = torch.tensor(list(itertools.product(range(3), repeat=5)))  # all 243 routings
    q_all = quality.gather(1, every.T).mean(0)
    c_all = cost[every].mean(1)
    for budget in (1.0, 1.5, 2.0, 2.6, 3.3, 4.0):
        r = oracle_routes(quality, cost, budget)
        q, c = float(quality.gather(1, r[:, None]).mean()), float(cost[r].mean())
        assert c <= budget + 1e-9
        # no routing of at most its cost is better (a point of the hull), and, on the hull's
        # corners, none within the budget either
        assert q >= float(q_all[c_all <= c + 1e-9].max()) - 1e-6
        assert q >= float(q_all[c_all <= budget + 1e-9].max()) - 0.15
    # an unbounded budget takes each sample's best; below the cheapest, the cheapest
    assert oracle_routes(quality, cost, 10.0).tolist() == quality.argmax(1).tolist()
    assert oracle_routes(quality, cost, 0.5).tolist() == [0] * 5
    # per-sample costs (images of several sizes)
    r = oracle_routes(quality, cost.expand(5, 3) * torch.arange(1.0, 6.0)[:, None], 6.0)
    assert r.shape == (5,)
    with pytest.raises(ValueError, match=r"cost must be \(K,\) or \(N, K\)"):
        oracle_routes(quality, cost[:2], 2.0)
    with pytest.raises(ValueError, match="finite"):
        oracle_routes(quality.clone().fill_(float("nan")), cost, 2.0)


@pytest.fixture(scope="module")
def dynamic(trained, ladder):
    torch.manual_seed(0)
    return DynamicDenoiser(supernet=trained[0], rungs=pick_rungs(ladder, 3)).eval()


def test_gate_costs_a_small_share_of_the_network(dynamic):
    size = (64, 64)
    gate = dynamic.gate_macs(size)
    rung_macs = dynamic.macs(size)
    # conv1 (2 -> 16, 16x16 out) + conv2 (16 -> 16, 8x8) + head (16 -> 16 -> 3)
    assert gate == 9 * 2 * 16 * 256 + 9 * 16 * 16 * 64 + 16 * 16 + 16 * 3
    assert gate / rung_macs[-1] < 0.015 and gate / rung_macs[0] < 0.05
    # the gate works on a fixed 32x32 summary: its MACs do not grow with the image
    assert dynamic.gate_macs((256, 256)) == gate


def test_grouped_dynamic_inference_equals_per_image_and_deployed_rungs(data, dynamic, ladder):
    _, _, (vn, _) = data
    x = vn[:4]
    route = torch.tensor([2, 0, 1, 0])
    with torch.no_grad():
        grouped = dynamic.run_routes(x, route)
        for i, k in enumerate(route.tolist()):
            assert_close(grouped[i : i + 1], dynamic.forward_rung(x[i : i + 1], k))
            rung = next(r for r in ladder if r.config == dynamic.config(k))
            assert_close(
                grouped[i : i + 1],
                extract_subnet(dynamic.supernet, rung.config, rung=rung)(x[i : i + 1]),
            )
        out, chosen = dynamic(x, return_route=True)
        each, routes = dynamic.denoise_each(list(x))
    assert routes == chosen.tolist()
    assert_close(out, torch.stack(each))
    assert dynamic.rung_macs[0] < dynamic.rung_macs[1] < dynamic.rung_macs[2]


def test_gate_task_trains_only_the_gate(data, trained, ladder):
    _, crops, (vn, vc) = data
    torch.manual_seed(1)
    model = DynamicDenoiser(supernet=trained[0], rungs=pick_rungs(ladder, 3))
    task = DenoiseGateTask(model=model, tolerance=0.3)
    names = [n for n, p in task.named_parameters() if p.requires_grad]
    assert names and all(n.startswith("model.gate.") for n in names)
    # parameters only: applying a rung loads its BN statistics into the supernet's buffers
    frozen = {k: v.clone() for k, v in model.supernet.named_parameters()}
    opt = torch.optim.Adam(task.trainable_parameters(), lr=1e-2)
    # mixed noise levels (sigma 5 and 50) make easy and hard crops
    g = torch.Generator().manual_seed(0)
    sigmas = torch.tensor([5.0, 50.0]).repeat(64)
    clean = crops[:128]
    noisy = add_gaussian_noise(clean, sigmas, generator=g)
    task.train()
    losses = []
    for s in range(30):
        i = torch.randint(0, 128, (32,), generator=torch.Generator().manual_seed(s))
        opt.zero_grad()
        out = task.training_step((noisy[i], clean[i]))
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5
    assert all(torch.equal(frozen[k], v) for k, v in model.supernet.named_parameters())
    assert not model.supernet.training
    task.eval()
    with torch.no_grad():
        m = task.validation_step((noisy[:64], clean[:64]))
        per_rung = task.rung_psnr(noisy[:64], clean[:64])  # (64, 3)
    # the routed PSNR is a per-image choice among the rungs
    lo, hi = per_rung.min(1).values.mean(), per_rung.max(1).values.mean()
    assert float(lo) - 1e-4 <= float(m["psnr"]) <= float(hi) + 1e-4
    assert 0.0 < float(m["macs_frac"]) <= 1.0
    targets = gate_targets(per_rung, tolerance=0.3)
    assert 0 < int((targets == 0).sum()) < 64  # easy and hard crops both present
    assert float(m["gate_acc"]) > 0.6, m


# ------------------------------------------------------------------ metrics and baselines


def test_psnr_ssim_hand_values():
    target = torch.full((2, 1, 16, 16), 0.5)
    pred = target + torch.tensor([0.1, 0.01]).view(2, 1, 1, 1)
    assert_close(psnr_per_image(pred, target), torch.tensor([20.0, 40.0]))
    assert_close(
        psnr_per_image(target + 0.7, target), psnr_per_image(torch.ones_like(target), target)
    )  # clipped
    img = torch.rand(1, 1, 16, 16)
    assert_close(ssim_per_image(img, img), torch.ones(1))


def test_haar_detail_and_sigma_estimate():
    x = torch.tensor([[1.0, 2.0], [3.0, 5.0]]).view(1, 1, 2, 2)
    assert_close(haar_diagonal(x), torch.tensor([[[[0.5]]]]))  # (1 - 2 - 3 + 5) / 2
    smooth = torch.linspace(0, 1, 128).view(1, 1, 1, 128).expand(2, 1, 128, 128)
    noisy = add_gaussian_noise(
        smooth, torch.tensor([10.0, 40.0]), generator=torch.Generator().manual_seed(0)
    )
    est = estimate_sigma(noisy)
    assert_close(est, torch.tensor([10.0, 40.0]), rtol=0.05, atol=0.0)


def test_classical_baselines_beat_the_noisy_input_at_sigma_25(data):
    d = data[0]
    clean = d.test_clean[0][None, :, 100:164, 100:164]  # camera
    noisy = add_gaussian_noise(clean, 25.0, generator=torch.Generator().manual_seed(0))
    base = float(psnr_per_image(noisy, clean))
    for fn, kw in (
        (nlm_denoise, {"sigma": 25.0}),
        (nlm_denoise, {}),
        (tv_denoise, {}),
        (wavelet_denoise, {}),
    ):
        out = fn(noisy, **kw)
        assert out.shape == noisy.shape
        assert float(psnr_per_image(out, clean)) > base + 2.0, fn.__name__
    colour = torch.rand(1, 3, 8, 8).repeat_interleave(4, 2).repeat_interleave(4, 3)
    noisy_c = add_gaussian_noise(colour, 25.0, generator=torch.Generator().manual_seed(1))
    assert float(psnr_per_image(tv_denoise(noisy_c), colour)) > float(
        psnr_per_image(noisy_c, colour)
    )


def test_per_image_latency_reports_each_image(trained):
    net = trained[0]
    images = [torch.rand(1, 16, 16), torch.rand(1, 24, 20)]
    out = per_image_latency(
        net, images, forward=lambda m, x: m(x, config=m.smallest_config), warmup=1, repeats=2
    )
    assert len(out["per_image_ms"]) == 2 and all(t > 0 for t in out["per_image_ms"])
    assert out["device"] == "cpu" and out["num_threads"] >= 1
