"""Supernets: shapes per width, MACs per width, dynamic grouped forward == per-sample forward,
masking == slicing, and the 224 px latency-study nets' MAC ratios."""

import pytest
import torch
from torch.testing import assert_close

from frugalcv.layers import recalibrate_bn
from frugalcv.slim import (
    DSResNet,
    ds_mobilenet_v2_cifar,
    ds_mobilenet_v2_imagenet,
    ds_resnet50,
    ds_resnet_cifar,
    ds_vit_cifar,
    dynamic_macs,
    forward_masked,
    grouped_forward,
    latency_table,
    macs_per_width,
)

pytestmark = pytest.mark.unit

SMALL = {
    "mobilenet_v2": ds_mobilenet_v2_cifar,
    "resnet20": ds_resnet_cifar,
    "vit": ds_vit_cifar,
}


def _ready(name, **kw):
    """A small supernet with calibrated BN statistics and a gate that spreads routes."""
    torch.manual_seed(0)
    model = SMALL[name](**kw)
    x = torch.randn(8, model_in(kw), *([kw.get("image_size", 32)] * 2))
    recalibrate_bn(model, [x], widths=model.widths, forward=lambda x, w: model(x, width=w))
    model.eval()
    with torch.no_grad():
        for p in model.gate.parameters():
            p.normal_(0, 1.0)
        # standardise each choice's logit over a probe batch, so argmax routes spread out
        probe = torch.randn(12, 3, 32, 32, generator=torch.Generator().manual_seed(1))
        logits = model.gate(model.forward_trunk(probe)).logits
        mean, std = logits.mean(0), logits.std(0) + 1e-6
        head = model.gate.slim_head
        head.weight.div_(std[:, None])
        head.bias.copy_((head.bias - mean) / std)
    return model


def model_in(kw):
    return kw.get("in_channels", 3)


@pytest.mark.parametrize("name", SMALL)
def test_forward_shapes_and_macs_grow_with_width(name):
    model = _ready(name)
    x = torch.randn(2, 3, 32, 32)
    for w in model.widths:
        assert model(x, width=w).shape == (2, 10)
    macs = macs_per_width(model, input_shape=(3, 32, 32))
    values = [macs[w] for w in model.widths]
    assert values == sorted(values) and len(set(values)) == len(values)
    assert not model.training  # macs_per_width leaves the mode as it was


def test_mnist_sized_inputs():
    res = ds_resnet_cifar(in_channels=1)
    assert res(torch.randn(2, 1, 28, 28), width=0.25).shape == (2, 10)
    vit = ds_vit_cifar(in_channels=1, image_size=28)
    assert vit(torch.randn(2, 1, 28, 28), width=0.5).shape == (2, 10)


def test_vit_slices_each_dimension_separately():
    vit = ds_vit_cifar()
    x = torch.randn(1, 3, 32, 32)
    w = {"embed": 1.0, "heads": 0.25, "mlp": 0.5}
    vit(x, width=w)
    blk = vit.body[1]
    assert (blk.attn.active_heads, blk.fc1.active_out, blk.fc2.active_out) == (1, 128, 64)
    base = macs_per_width(vit, input_shape=(3, 32, 32), widths=[1.0])[1.0]
    assert vit(x, width=w).shape == (1, 10)
    from frugalcv.core.measure import count_macs

    class _W(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = vit

        def forward(self, x):
            return self.m(x, width=w)

    assert count_macs(_W(), x) < base


@pytest.mark.parametrize("name", SMALL)
def test_dynamic_grouped_forward_equals_per_sample_forward(name):
    model = _ready(name)
    x = torch.randn(12, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out, route = model.forward_dynamic(x, return_route=True)
        assert len(torch.unique(route)) >= 2, "test input should exercise several widths"
        for b in range(12):
            ref = model(x[b : b + 1], width=model.widths[int(route[b])])
            assert_close(out[b : b + 1], ref, rtol=1e-4, atol=1e-5)
        # every width in one batch, in a scrambled order
        forced = torch.tensor([3, 0, 1, 2, 0, 3, 2, 1, 1, 0, 3, 2])
        out = grouped_forward(model, model.forward_trunk(x), forced)
        for b in range(12):
            ref = model(x[b : b + 1], width=model.widths[int(forced[b])])
            assert_close(out[b : b + 1], ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", SMALL)
def test_masked_path_gives_the_same_outputs_at_full_width_cost(name):
    model = _ready(name)
    x = torch.randn(12, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    sliced, route = model.forward_dynamic(x, return_route=True)
    masked, route_m = forward_masked(model, x, return_route=True)
    assert torch.equal(route, route_m)
    assert_close(masked, sliced.detach(), rtol=1e-4, atol=1e-5)
    macs = macs_per_width(model, input_shape=(3, 32, 32))
    one = x[:1]
    w = model.widths[int(route[0])]
    dyn = dynamic_macs(model, one)
    assert macs[w] <= dyn <= macs[w] + 2_000  # the chosen slice + the gate's few MACs
    assert dynamic_macs(model, one, mode="masked") >= macs[1.0]
    with pytest.raises(ValueError, match="eval-only"):
        forward_masked(model.train(), x)


def test_forward_dynamic_needs_a_fixed_trunk():
    model = DSResNet(layers=(1, 1), planes=(4, 8), trunk_width=None)
    assert model(torch.randn(1, 3, 8, 8), width=0.5).shape == (1, 10)
    with pytest.raises(ValueError, match="trunk_width set"):
        model.forward_dynamic(torch.randn(1, 3, 8, 8))


def test_latency_table_rows():
    model = DSResNet(layers=(1, 1), planes=(4, 8))
    rows = latency_table(model, input_shape=(3, 8, 8), batch_sizes=(1, 4), warmup=1, repeats=2)
    assert len(rows) == 2 * (4 + 2)
    dyn = [r for r in rows if r["mode"] == "sliced"]
    assert [sum(r["route_counts"]) for r in dyn] == [1, 4]
    assert all(r["median_ms"] > 0 for r in rows)


@pytest.mark.parametrize(
    "build,full_macs", [(ds_mobilenet_v2_imagenet, 300e6), (ds_resnet50, 4.09e9)]
)
def test_imagenet_sized_supernets_halve_to_a_quarter_or_half_of_the_macs(build, full_macs):
    with torch.device("meta"):  # shapes only: FlopCounterMode counts without computing
        model = build()
    macs = macs_per_width(model, input_shape=(3, 224, 224), widths=[0.5, 1.0])
    assert macs[1.0] == pytest.approx(full_macs, rel=0.02)  # torchvision's published sizes
    assert 0.25 <= macs[0.5] / macs[1.0] <= 0.5
