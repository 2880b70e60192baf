"""Cost measurement: hand-counted parameters and FLOPs, latency and peak-memory invariants."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from frugalcv.core.measure import (
    count_flops,
    count_macs,
    count_params,
    interleaved_latency,
    measure_latency,
    model_cost,
    peak_memory,
)
from frugalcv.zoo import create_model

pytestmark = pytest.mark.unit

F32 = 4  # bytes per float32 element


def test_count_params_by_hand() -> None:
    assert count_params(nn.Linear(10, 5)) == 10 * 5 + 5
    assert count_params(nn.Conv2d(3, 8, 3, bias=False)) == 8 * 3 * 3 * 3
    assert count_params(nn.BatchNorm2d(6)) == 2 * 6  # running stats are buffers
    shared = nn.Linear(4, 4)
    assert count_params(nn.Sequential(shared, nn.ReLU(), shared)) == 4 * 4 + 4  # counted once
    model = nn.Sequential(nn.Linear(10, 5), nn.Linear(5, 2))
    model[0].requires_grad_(False)
    assert count_params(model) == 55 + 12
    assert count_params(model, trainable_only=True) == 12


def test_count_flops_linear_by_hand() -> None:
    # addmm of (3, 10) x (10, 5): 3 * 10 * 5 MACs; the bias add is not counted.
    x = torch.randn(3, 10)
    assert count_flops(nn.Linear(10, 5), x) == 2 * 3 * 10 * 5
    assert count_macs(nn.Linear(10, 5), x) == 3 * 10 * 5


@pytest.mark.parametrize(
    "conv,shape,out_hw",
    [
        (nn.Conv2d(3, 8, 3, stride=2, padding=1), (2, 3, 9, 9), (5, 5)),
        (nn.Conv2d(4, 8, 3, groups=2, bias=False), (1, 4, 6, 6), (4, 4)),
        (nn.Conv2d(5, 7, (1, 3), padding=(0, 1)), (3, 5, 4, 4), (4, 4)),
    ],
)
def test_count_flops_conv_by_hand(conv: nn.Conv2d, shape: tuple, out_hw: tuple) -> None:
    b = shape[0]
    kh, kw = conv.kernel_size
    macs = (
        b * conv.out_channels * out_hw[0] * out_hw[1] * (conv.in_channels // conv.groups) * kh * kw
    )
    assert count_flops(conv, torch.randn(shape)) == 2 * macs


def test_count_macs_resnet8_by_hand() -> None:
    # conv MACs = Cin * Cout * k*k * H_out * W_out, at 32x32 input, 10 classes
    stem = 3 * 16 * 9 * 32 * 32
    layer1 = 2 * (16 * 16 * 9 * 32 * 32)
    layer2 = 16 * 32 * 9 * 16 * 16 + 32 * 32 * 9 * 16 * 16 + 16 * 32 * 16 * 16  # + 1x1 shortcut
    layer3 = 32 * 64 * 9 * 8 * 8 + 64 * 64 * 9 * 8 * 8 + 32 * 64 * 8 * 8
    fc = 64 * 10
    model = create_model("resnet8", num_classes=10)
    assert count_macs(model, torch.randn(1, 3, 32, 32)) == stem + layer1 + layer2 + layer3 + fc
    assert stem + layer1 + layer2 + layer3 + fc == 12_501_632


def test_count_flops_restores_mode_and_adds_no_grad() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    model.train()
    before = model[1].running_mean.clone()
    count_flops(model, torch.randn(8, 4))
    assert model.training
    torch.testing.assert_close(model[1].running_mean, before)  # ran in eval mode
    assert all(p.grad is None for p in model.parameters())


def test_measure_latency_keys_and_order() -> None:
    model = nn.Sequential(nn.Linear(16, 16), nn.ReLU())
    model.train()
    lat = measure_latency(model, torch.randn(4, 16), warmup=1, repeats=5)
    assert set(lat) == {"median_ms", "p90_ms", "mean_ms", "batch_size", "device", "num_threads"}
    assert 0 < lat["median_ms"] <= lat["p90_ms"]
    assert lat["mean_ms"] > 0
    assert lat["batch_size"] == 4 and lat["device"] == "cpu"
    assert model.training  # mode restored
    with pytest.raises(ValueError, match="repeats"):
        measure_latency(model, torch.randn(4, 16), repeats=0)


def test_peak_memory_inference_by_hand() -> None:
    model = nn.Sequential(nn.Linear(100, 200), nn.ReLU(), nn.Linear(200, 10))
    x = torch.randn(8, 100)
    resident = F32 * (100 * 200 + 200 + 200 * 10 + 10) + F32 * 8 * 100
    # Peak inside the pass: the hidden (8, 200) output and the ReLU's (8, 200) output coexist.
    assert peak_memory(model, x) == resident + 2 * F32 * 8 * 200


def test_peak_memory_train_counts_grads_and_restores_state() -> None:
    model = nn.Sequential(nn.Linear(1000, 1000), nn.BatchNorm1d(1000))
    model.eval()
    x = torch.randn(64, 1000)
    model[0].bias.grad = torch.ones(1000)
    running_mean = model[1].running_mean.clone()
    n_params = count_params(model)
    # + BN running stats (float32) and num_batches_tracked (int64)
    resident = F32 * (n_params + 2 * 1000) + 8 + F32 * 64 * 1000
    infer = peak_memory(model, x)
    train = peak_memory(model, x, train=True)
    assert infer >= resident + F32 * 64 * 1000  # at least one (64, 1000) activation
    # training: gradients of every parameter plus the two saved (64, 1000) activations
    assert train >= resident + F32 * n_params + 2 * F32 * 64 * 1000
    assert train > infer
    assert not model.training
    torch.testing.assert_close(model[1].running_mean, running_mean)
    torch.testing.assert_close(model[0].bias.grad, torch.ones(1000))
    assert model[0].weight.grad is None


def test_model_cost_keys_and_values() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 4))
    cost = model_cost(model, input_shape=(3, 2, 2), batch_sizes=(1, 5), warmup=0, repeats=3)
    assert cost["params"] == 12 * 4 + 4
    assert cost["macs"] == 12 * 4 and cost["flops"] == 2 * 12 * 4
    assert cost["input_shape"] == "3x2x2" and cost["device"] == "cpu"
    for b in (1, 5):
        assert 0 < cost[f"latency_ms_b{b}"] <= cost[f"latency_p90_ms_b{b}"]
        resident = F32 * (52 + b * 12)
        assert cost[f"peak_memory_bytes_b{b}"] == resident + F32 * b * 4  # the (b, 4) output
    assert all(isinstance(v, (int, float, str)) for v in cost.values())  # JSON-ready, flat
    with pytest.raises(ValueError, match="input_shape"):
        model_cost(model, input_shape=(3, 0, 2))


def test_interleaved_latency_times_every_variant_in_rounds():
    order = []
    ms = interleaved_latency(
        {"a": lambda: order.append("a"), "b": lambda: order.append("b")}, warmup=1, repeats=3
    )
    assert order == ["a", "b"] * 4 and set(ms) == {"a", "b"} and all(v >= 0 for v in ms.values())


def test_interleaved_latency_rejects_bad_arguments_before_timing():
    calls = []
    with pytest.raises(ValueError, match="repeats >= 1"):
        interleaved_latency({"a": lambda: calls.append(1)}, warmup=1, repeats=0)
    with pytest.raises(ValueError, match="at least one variant"):
        interleaved_latency({}, warmup=1, repeats=1)
    assert calls == []
