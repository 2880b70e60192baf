"""Zoo contract over every model, parameter counts against RepDistiller, timm wrapper, FCNs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from frugalcv.zoo import MODELS, SEG_MODELS, create_model, create_seg_model
from frugalcv.zoo.cifar_resnet import CifarResNet
from frugalcv.zoo.wrn import WideResNet

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: on a shared 2-core machine, two spinning OpenMP threads per process
    slow these small convolutions down several-fold when other processes compete for the cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


INPUTS = {"rgb32": (3, 32, 32), "gray28": (1, 28, 28)}


def _check_contract(model, x: torch.Tensor, *, num_classes: int, reduction: int = 4) -> None:
    b, _, h, w = x.shape
    model.eval()
    with torch.no_grad():
        logits = model(x)
        f = model.forward_features(x)
        inters = model.forward_intermediates(x)
        pooled = model.forward_head(f, pre_logits=True)
        assert logits.shape == (b, num_classes)
        size = (math.ceil(h / reduction), math.ceil(w / reduction))
        assert f.shape == (b, model.num_features, *size)
        torch.testing.assert_close(model.forward_head(f), logits)
        assert pooled.shape == (b, model.head_hidden_size)
        assert [t.shape[1] for t in inters] == model.stage_channels
        torch.testing.assert_close(inters[-1], f, rtol=0, atol=0)
    assert model.num_classes == num_classes


@pytest.mark.parametrize("input_name", list(INPUTS))
@pytest.mark.parametrize("name", list(MODELS))
def test_contract(name: str, input_name: str) -> None:
    torch.manual_seed(0)
    c, h, w = INPUTS[input_name]
    model = create_model(name, num_classes=7, in_chans=c)
    x = torch.randn(2, c, h, w)
    _check_contract(model, x, num_classes=7)
    # Own models: three stages at strides 1, 2, 4 (stem excluded); pooled = spatial mean.
    with torch.no_grad():
        inters = model.forward_intermediates(x)
        f = inters[-1]
        torch.testing.assert_close(model.forward_head(f, pre_logits=True), f.mean(dim=(2, 3)))
    assert [t.shape[-1] for t in inters] == [w, math.ceil(w / 2), math.ceil(w / 4)]
    assert model.num_features == model.stage_channels[-1]
    # Every parameter receives a gradient through the logits (train mode, BN batch statistics).
    model.train()
    logits = model(x)
    F.cross_entropy(logits, torch.tensor([1, 5])).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, pname


# Parameter counts of RepDistiller's models/resnet.py and models/wrn.py at 100 classes, 3 input
# channels (the CIFAR-100 setting of the CRD benchmark; e.g. 0.28M resnet20, 7.43M resnet32x4).
REFERENCE_PARAMS = {
    "resnet8": 83_892,
    "resnet14": 181_108,
    "resnet20": 278_324,
    "resnet32": 472_756,
    "resnet44": 667_188,
    "resnet56": 861_620,
    "resnet110": 1_736_564,
    "resnet8x4": 1_233_540,
    "resnet32x4": 7_433_860,
    "wrn_16_1": 180_916,
    "wrn_16_2": 703_284,
    "wrn_40_1": 569_780,
    "wrn_40_2": 2_255_156,
}


def _resnet_params(depth: int, widths: tuple[int, ...], num_classes: int, in_chans: int) -> int:
    """Hand count: 3x3 convs, BN (2 per channel), 1x1+BN shortcuts where the shape changes, fc."""
    n = (depth - 2) // 6
    total = 9 * in_chans * widths[0] + 2 * widths[0]
    c_in = widths[0]
    for stage, c in enumerate(widths[1:]):
        for i in range(n):
            a = c_in if i == 0 else c
            total += 9 * a * c + 2 * c + 9 * c * c + 2 * c
            if i == 0 and (stage > 0 or a != c):
                total += a * c + 2 * c
        c_in = c
    return total + widths[3] * num_classes + num_classes


def _wrn_params(depth: int, k: int, num_classes: int, in_chans: int) -> int:
    """Hand count: stem conv, pre-act blocks (2 BN, 2 convs, 1x1 shortcut), final BN, fc."""
    n = (depth - 4) // 6
    total = 9 * in_chans * 16
    c_in = 16
    for c in (16 * k, 32 * k, 64 * k):
        for i in range(n):
            a = c_in if i == 0 else c
            total += 2 * a + 9 * a * c + 2 * c + 9 * c * c
            if i == 0 and (a != c or c != 16 * k):
                total += a * c
        c_in = c
    return total + 2 * 64 * k + 64 * k * num_classes + num_classes


@pytest.mark.parametrize("name", list(REFERENCE_PARAMS))
def test_param_count_matches_repdistiller(name: str) -> None:
    model = create_model(name, num_classes=100)
    n = sum(p.numel() for p in model.parameters())
    assert abs(n - REFERENCE_PARAMS[name]) <= 0.01 * REFERENCE_PARAMS[name]
    assert n == REFERENCE_PARAMS[name]


@pytest.mark.parametrize("num_classes,in_chans", [(100, 3), (10, 1)])
def test_param_count_hand_formula(num_classes: int, in_chans: int) -> None:
    for name in MODELS:
        model = create_model(name, num_classes=num_classes, in_chans=in_chans)
        n = sum(p.numel() for p in model.parameters())
        if isinstance(model, CifarResNet):
            widths = (model.conv1.out_channels, *model.stage_channels)
            assert n == _resnet_params(model.depth, widths, num_classes, in_chans), name
        elif isinstance(model, WideResNet):
            assert n == _wrn_params(model.depth, model.widen_factor, num_classes, in_chans), name


def test_widths_follow_repdistiller() -> None:
    assert create_model("resnet8x4", num_classes=10).conv1.out_channels == 32
    assert create_model("resnet8x4", num_classes=10).stage_channels == [64, 128, 256]
    assert create_model("resnet32x4", num_classes=10).stage_channels == [64, 128, 256]
    assert create_model("resnet56", num_classes=10).stage_channels == [16, 32, 64]
    assert create_model("wrn_40_2", num_classes=10).stage_channels == [32, 64, 128]
    # depth 6n+2: two 3x3 convs per block, n blocks per stage
    assert len(create_model("resnet110", num_classes=10).layer2) == 18


def test_wrn_features_are_post_bn_relu_of_raw_features() -> None:
    torch.manual_seed(0)
    model = create_model("wrn_16_2", num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        raw = model.forward_raw_features(x)
        torch.testing.assert_close(model.forward_features(x), F.relu(model.bn1(raw)))
    assert (model.forward_features(x) >= 0).all()


def test_num_classes_zero_returns_pooled_features() -> None:
    model = create_model("resnet8", num_classes=0).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.forward_features(x).mean(dim=(2, 3)))


def test_unknown_names_raise_with_suggestion() -> None:
    with pytest.raises(ValueError, match=r"Did you mean 'resnet20'\?.*tiny_cnn"):
        create_model("resnt20", num_classes=10)
    with pytest.raises(ValueError, match="fcn_resnet8"):
        create_seg_model("fcn_resnet9", num_classes=3)
    with pytest.raises(ValueError, match="resnet18"):
        create_model("timm/resnet181", num_classes=10)


@pytest.mark.parametrize(
    "kwargs",
    [dict(depth=9, widths=(16, 16, 32, 64)), dict(depth=8, widths=(16, 16, 32))],
)
def test_bad_resnet_arguments_raise(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="depth|widths"):
        CifarResNet(num_classes=10, **kwargs)


def test_bad_sizes_raise() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        create_model("resnet8", num_classes=-1)
    with pytest.raises(ValueError, match="in_chans"):
        create_model("wrn_16_1", num_classes=10, in_chans=0)
    with pytest.raises(ValueError, match="depth"):
        WideResNet(depth=18, widen_factor=1, num_classes=10)


def test_timm_resnet18_contract_and_hook_fallback() -> None:
    torch.manual_seed(0)
    model = create_model("timm/resnet18", num_classes=5)
    x = torch.randn(2, 3, 32, 32)
    _check_contract(model, x, num_classes=5, reduction=32)
    # timm's feature_info includes the stem: act1 (64), layer1..layer4
    assert model.stage_channels == [64, 64, 128, 256, 512]
    with torch.no_grad():
        native = model.forward_intermediates(x)
        model._use_timm_intermediates = False
        hooked = model.forward_intermediates(x)
    assert len(native) == len(hooked) == 5
    for a, b in zip(native, hooked, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_timm_mobilenet_gray28_and_head_conv_models() -> None:
    torch.manual_seed(0)
    mnv3 = create_model("timm/mobilenetv3_small_050", num_classes=3, in_chans=1)
    _check_contract(mnv3, torch.randn(2, 1, 28, 28), num_classes=3, reduction=32)
    assert mnv3.head_hidden_size == 1024  # MobileNetV3's conv head after pooling
    # MobileNetV2 ends forward_features with a 1x1 head conv after the last feature_info entry:
    # the wrapper appends it so the last intermediate is still forward_features.
    mnv2 = create_model("timm/mobilenetv2_050", num_classes=3)
    _check_contract(mnv2, torch.randn(2, 3, 32, 32), num_classes=3, reduction=32)
    assert mnv2.stage_channels[-2:] == [160, 1280]


@pytest.mark.parametrize("name", list(SEG_MODELS))
def test_seg_model_shapes_and_grads(name: str) -> None:
    torch.manual_seed(0)
    model = create_seg_model(name, num_classes=5)
    x = torch.randn(2, 3, 48, 48)
    model.eval()
    with torch.no_grad():
        f = model.forward_features(x)
        out = model(x)
        assert f.shape == (2, model.num_features, 12, 12)  # output stride 4
        assert out.shape == (2, 5, 48, 48)
        torch.testing.assert_close(model.forward_head(f, size=(48, 48)), out)
        torch.testing.assert_close(model.forward_intermediates(x)[-1], f, rtol=0, atol=0)
    model.train()
    model(x).mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


def test_seg_model_odd_size_and_gray_input() -> None:
    model = create_seg_model("fcn_resnet8", num_classes=4, in_chans=1).eval()
    x = torch.randn(1, 1, 50, 34)
    with torch.no_grad():
        assert model.forward_features(x).shape == (1, 64, 13, 9)
        assert model(x).shape == (1, 4, 50, 34)
    with pytest.raises(ValueError, match="num_classes"):
        create_seg_model("fcn_resnet8", num_classes=0)
