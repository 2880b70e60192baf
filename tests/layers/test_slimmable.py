"""Slimmable layers: parity with torch at full width, sliced == torch layer on sliced weights,
per-width BN statistics, recalibration, masking == slicing."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from frugalcv.layers import (
    SlimBatchNorm2d,
    SlimConv2d,
    SlimLayerNorm,
    SlimLinear,
    SlimMultiheadAttention,
    per_sample_widths,
    recalibrate_bn,
    scaled_channels,
    set_width,
    using_width,
)

pytestmark = pytest.mark.unit


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


def test_scaled_channels_hand_values():
    assert scaled_channels(64, 0.35, divisor=8) == 24  # 22.4 -> 2.8 multiples -> 3 * 8
    assert scaled_channels(64, 0.5) == 32
    assert scaled_channels(16, 0.25) == 4
    assert scaled_channels(10, 0.25) == 3  # 2.5 rounds half up
    assert scaled_channels(16, 0.01, divisor=8) == 8  # at least one divisor
    with pytest.raises(ValueError, match="in \\(0, 1\\]"):
        scaled_channels(16, 1.5)


@pytest.mark.parametrize(
    "cin,cout,groups", [(6, 10, 1), (8, 8, 8), (8, 16, 4)], ids=["dense", "depthwise", "grouped"]
)
def test_conv_full_width_equals_torch(cin, cout, groups):
    slim = SlimConv2d(
        in_channels=cin, out_channels=cout, kernel_size=3, padding=1, stride=2, groups=groups
    )
    ref = nn.Conv2d(cin, cout, 3, padding=1, stride=2, groups=groups)
    ref.load_state_dict(slim.state_dict())
    x = torch.randn(2, cin, 9, 9, generator=_g())
    assert_close(slim(x), ref(x))


def test_conv_sliced_equals_torch_conv_on_sliced_weights():
    slim = SlimConv2d(in_channels=6, out_channels=10, kernel_size=3, padding=1)
    set_width(slim, 0.5)
    assert slim.active_out == 5
    x = torch.randn(2, 4, 7, 7, generator=_g())  # input already sliced to 4 channels
    ref = nn.Conv2d(4, 5, 3, padding=1)
    ref.weight.data.copy_(slim.weight[:5, :4])
    ref.bias.data.copy_(slim.bias[:5])
    assert_close(slim(x), ref(x))


def test_depthwise_and_grouped_slices_follow_the_input():
    dw = SlimConv2d(in_channels=8, out_channels=8, kernel_size=3, padding=1, groups=8)
    x = torch.randn(2, 3, 5, 5, generator=_g())
    ref = nn.Conv2d(3, 3, 3, padding=1, groups=3)
    ref.weight.data.copy_(dw.weight[:3])
    ref.bias.data.copy_(dw.bias[:3])
    assert_close(dw(x), ref(x))
    # grouped: 2 in / 4 out channels per group; 4 input channels -> the first 2 groups
    gc = SlimConv2d(in_channels=8, out_channels=16, kernel_size=1, groups=4)
    x = torch.randn(2, 4, 5, 5, generator=_g(1))
    ref = nn.Conv2d(4, 8, 1, groups=2)
    ref.weight.data.copy_(gc.weight[:8])
    ref.bias.data.copy_(gc.bias[:8])
    assert_close(gc(x), ref(x))
    with pytest.raises(ValueError, match="multiple of 2"):
        gc(torch.randn(1, 3, 5, 5))


def test_conv_rejects_too_many_input_channels():
    slim = SlimConv2d(in_channels=4, out_channels=4, kernel_size=1)
    with pytest.raises(ValueError, match="stores only 4"):
        slim(torch.randn(1, 5, 2, 2))


def test_linear_parity_and_slice():
    slim = SlimLinear(in_features=12, out_features=6)
    ref = nn.Linear(12, 6)
    ref.load_state_dict(slim.state_dict())
    x = torch.randn(3, 5, 12, generator=_g())
    assert_close(slim(x), ref(x))
    set_width(slim, 0.5)
    x = torch.randn(3, 7, generator=_g(1))
    assert_close(slim(x), F.linear(x, slim.weight[:3, :7], slim.bias[:3]))
    head = SlimLinear(in_features=12, out_features=6, role=None)  # classifiers never shrink
    set_width(head, 0.25)
    assert head(x).shape == (3, 6)


def test_bn_full_width_equals_torch_train_and_eval():
    slim = SlimBatchNorm2d(num_features=6, widths=[3, 6])
    ref = nn.BatchNorm2d(6)
    with torch.no_grad():
        slim.weight.uniform_(0.5, 1.5, generator=_g(2))
        slim.bias.uniform_(-1, 1, generator=_g(3))
        ref.weight.copy_(slim.weight)
        ref.bias.copy_(slim.bias)
    for i in range(3):
        x = 2 + 3 * torch.randn(4, 6, 5, 5, generator=_g(i))
        assert_close(slim(x), ref(x))
    assert_close(slim.running_mean[1], ref.running_mean)
    assert_close(slim.running_var[1], ref.running_var)
    slim.eval(), ref.eval()
    x = torch.randn(4, 6, 5, 5, generator=_g(9))
    assert_close(slim(x), ref(x))


def test_bn_keeps_separate_statistics_per_width():
    slim = SlimBatchNorm2d(num_features=6, widths=[3, 6])
    ref3 = nn.BatchNorm2d(3)
    x = 5 + torch.randn(8, 3, 4, 4, generator=_g())
    slim(x), ref3(x)
    assert_close(slim.running_mean[0, :3], ref3.running_mean)
    assert_close(slim.running_var[0, :3], ref3.running_var)
    # the full-width row has not moved
    assert torch.equal(slim.running_mean[1], torch.zeros(6))
    assert torch.equal(slim.running_var[1], torch.ones(6))
    assert slim.num_batches_tracked.tolist() == [1, 0]
    slim.eval()
    ref3.eval()
    with torch.no_grad():
        ref3.weight.copy_(slim.weight[:3])
    assert_close(slim(x), ref3(x))
    with pytest.raises(ValueError, match="widths= that include 4"):
        slim(torch.randn(2, 4, 3, 3))


def test_recalibrate_bn_gives_cumulative_averages_per_width():
    net = nn.Sequential(
        SlimConv2d(in_channels=2, out_channels=4, kernel_size=1, bias=False),
        SlimBatchNorm2d(num_features=4, widths=[2, 4]),
    )
    batches = [torch.randn(5, 2, 3, 3, generator=_g(i)) for i in range(3)]
    net[1].running_mean.fill_(7.0)  # stale statistics must be discarded
    net.eval()
    recalibrate_bn(net, batches, widths=[0.5, 1.0])
    assert not net.training
    assert net[1].momentum == 0.1
    for k, c in enumerate([2, 4]):
        feats = [F.conv2d(x, net[0].weight[:c]) for x in batches]
        means = torch.stack([f.mean(dim=(0, 2, 3)) for f in feats]).mean(0)
        vars_ = torch.stack([f.var(dim=(0, 2, 3), unbiased=True) for f in feats]).mean(0)
        assert_close(net[1].running_mean[k, :c], means)
        assert_close(net[1].running_var[k, :c], vars_)
    assert net[1].num_batches_tracked.tolist() == [3, 3]


def test_layernorm_parity_and_slice():
    slim = SlimLayerNorm(normalized_dim=8)
    with torch.no_grad():
        slim.weight.uniform_(0.5, 1.5, generator=_g())
        slim.bias.uniform_(-1, 1, generator=_g(1))
    ref = nn.LayerNorm(8)
    ref.load_state_dict(slim.state_dict())
    x = torch.randn(2, 3, 8, generator=_g(2))
    assert_close(slim(x), ref(x))
    ref5 = nn.LayerNorm(5)
    with torch.no_grad():
        ref5.weight.copy_(slim.weight[:5])
        ref5.bias.copy_(slim.bias[:5])
    assert_close(slim(x[..., :5]), ref5(x[..., :5]))


def test_attention_full_width_equals_torch_mha():
    torch.manual_seed(0)
    slim = SlimMultiheadAttention(embed_dim=32, num_heads=4)
    with torch.no_grad():
        slim.in_proj_bias.normal_()
    ref = nn.MultiheadAttention(32, 4, batch_first=True)
    ref.load_state_dict(slim.state_dict())
    x = torch.randn(2, 5, 32, generator=_g())
    assert_close(slim(x), ref(x, x, x, need_weights=False)[0], rtol=1e-5, atol=1e-5)


def test_attention_sliced_equals_torch_mha_on_sliced_weights():
    torch.manual_seed(0)
    slim = SlimMultiheadAttention(embed_dim=32, num_heads=4)  # head dim 8
    with torch.no_grad():
        slim.in_proj_bias.normal_()
        slim.out_proj.bias.normal_()
    set_width(slim, 0.5)
    assert slim.active_heads == 2
    ref = nn.MultiheadAttention(16, 2, batch_first=True)  # 2 heads of 8 on a 16-dim input
    w, b = slim.in_proj_weight, slim.in_proj_bias
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([w[i * 32 : i * 32 + 16, :16] for i in range(3)]))
        ref.in_proj_bias.copy_(torch.cat([b[i * 32 : i * 32 + 16] for i in range(3)]))
        ref.out_proj.weight.copy_(slim.out_proj.weight[:16, :16])
        ref.out_proj.bias.copy_(slim.out_proj.bias[:16])
    x = torch.randn(2, 5, 16, generator=_g())
    assert_close(slim(x), ref(x, x, x, need_weights=False)[0], rtol=1e-5, atol=1e-5)


def test_set_width_mapping_and_using_width_restores():
    net = nn.Sequential(
        SlimLinear(in_features=8, out_features=8, role="embed"),
        SlimLinear(in_features=8, out_features=16, role="mlp"),
    )
    with using_width(net, {"embed": 0.5, "mlp": 0.25}):
        assert [net[0].active_out, net[1].active_out] == [4, 4]
    assert [net[0].active_out, net[1].active_out] == [8, 16]
    with pytest.raises(ValueError, match="no ratio for role 'mlp'"):
        set_width(net, {"embed": 0.5})
    with pytest.raises(ValueError, match="unknown role"):
        SlimLinear(in_features=2, out_features=2, role="width")


def test_masking_matches_slicing_per_sample():
    torch.manual_seed(0)
    net = nn.Sequential(
        SlimConv2d(in_channels=3, out_channels=8, kernel_size=3, padding=1),
        SlimBatchNorm2d(num_features=8, widths=[4, 8]),
        nn.ReLU(),
        SlimConv2d(in_channels=8, out_channels=8, kernel_size=3, padding=1, groups=8),
        SlimBatchNorm2d(num_features=8, widths=[4, 8]),
    )
    recalibrate_bn(net, [torch.randn(6, 3, 5, 5)], widths=[0.5, 1.0])
    net.eval()
    x = torch.randn(4, 3, 5, 5, generator=_g())
    route = torch.tensor([0, 1, 1, 0])
    choices = [0.5, 1.0]
    with torch.no_grad(), per_sample_widths(net, choices, route):
        masked = net(x)
    assert masked.shape == (4, 8, 5, 5)
    assert torch.all(masked[route == 0, 4:] == 0)
    for b in range(4):
        with torch.no_grad(), using_width(net, choices[int(route[b])]):
            sliced = net(x[b : b + 1])
        assert_close(masked[b : b + 1, : sliced.shape[1]], sliced)
