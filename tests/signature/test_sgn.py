"""SGN heads and the four classifier variants: shapes, gradients, contract, "it learns"."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from frugalcv.classify import ClassifyTask
from frugalcv.signature import (
    SGN_VARIANTS,
    SGNHead,
    SignatureSpectrum,
    create_sgn_model,
    graph_speed_ratio,
    signature_spectrum,
)


@pytest.mark.unit
@pytest.mark.parametrize("variant", list(SGN_VARIANTS))
def test_variant_forward_backward_shapes(variant):
    torch.manual_seed(0)
    model = create_sgn_model(variant, num_classes=7, in_chans=1, image_size=16)
    x = torch.randn(5, 1, 16, 16)
    f = model.forward_features(x)
    assert f.shape == (5, model.num_features, 4, 4)  # tiny_cnn: stride 4
    logits = model(x)
    assert logits.shape == (5, 7)
    z = model.forward_head(f, pre_logits=True)
    graph, attention = SGN_VARIANTS[variant]
    expected = 64 + 64 * graph + 64 * attention  # GAP + spectral_dim + embed_dim
    assert z.shape == (5, expected) == (5, model.head_hidden_size)
    F.cross_entropy(logits, torch.arange(5) % 7).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert missing == []
    assert (model.head.spectrum is not None) == graph
    assert (model.head.block is not None) == attention


@pytest.mark.unit
def test_variants_share_the_backbone_and_differ_only_in_the_head():
    keys = {
        v: sorted(k for k in create_sgn_model(v, num_classes=3).state_dict() if "backbone" in k)
        for v in SGN_VARIANTS
    }
    assert len({tuple(k) for k in keys.values()}) == 1
    cnn = create_sgn_model("cnn", num_classes=3)
    assert sorted(n for n, _ in cnn.head.named_parameters()) == ["fc.bias", "fc.weight"]


@pytest.mark.unit
@pytest.mark.parametrize("detach_graph", [False, True])
def test_spectrum_path_alone_sends_gradient_to_the_feature_map_unless_detached(detach_graph):
    head = SGNHead(
        in_channels=8, num_classes=3, feature_size=(4, 4), groups=2, detach_graph=detach_graph
    )
    f = torch.rand(6, 8, 4, 4, requires_grad=True)
    head.train()
    spec_part = head(f, pre_logits=True)[:, 8:]  # E(λ) only, after the GAP block
    (spec_part * torch.randn_like(spec_part)).sum().backward()
    reached = f.grad is not None and f.grad.abs().sum() > 0  # the GAP part sends zeros
    assert reached == (not detach_graph)
    assert head.spectral[1].weight.grad.abs().sum() > 0  # the embedding learns either way


@pytest.mark.unit
def test_signature_spectrum_layer_groups_and_aggregation():
    f = torch.rand(3, 8, 4, 4, dtype=torch.float64)
    layer = SignatureSpectrum(in_channels=8, feature_size=(4, 4), groups=4)
    assert layer.num_nodes == 8 and layer.out_dim == 32
    # concat == the functional spectrum of the channel-group means, flattened
    groups = f.reshape(3, 4, 2, 4, 4).mean(2)
    torch.testing.assert_close(layer(f), signature_spectrum(groups).flatten(1))
    # permuting whole channel groups permutes the concatenated blocks and leaves "mean" unchanged
    perm = torch.tensor([2, 0, 3, 1])
    f_perm = f.reshape(3, 4, 2, 4, 4)[:, perm].reshape(3, 8, 4, 4)
    torch.testing.assert_close(layer(f_perm).reshape(3, 4, 8), layer(f).reshape(3, 4, 8)[:, perm])
    mean = SignatureSpectrum(in_channels=8, feature_size=(4, 4), groups=4, aggregate="mean")
    torch.testing.assert_close(mean(f_perm), mean(f))
    assert mean.out_dim == 8
    # one graph per channel
    per_channel = SignatureSpectrum(in_channels=8, feature_size=(4, 4), groups=8)
    assert per_channel(f).shape == (3, 64)


@pytest.mark.unit
def test_sgn_model_accepts_ceil_mode_for_28px_inputs():
    # tiny_cnn maps 28x28 to 7x7; 2x2 patches need ceil_mode (last row/column of patches 1 px)
    with pytest.raises(ValueError, match="ceil_mode=True"):
        create_sgn_model("sgn", num_classes=10, in_chans=1, image_size=28)
    model = create_sgn_model("sgn_mha", num_classes=10, in_chans=1, image_size=28, ceil_mode=True)
    assert model.head.grid == (4, 4)
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.unit
def test_errors_name_the_fix():
    with pytest.raises(ValueError, match="Did you mean 'sgn_mha'"):
        create_sgn_model("sgn-mha", num_classes=3)
    with pytest.raises(ValueError, match="divisor"):
        create_sgn_model("sgn", num_classes=3, groups=5)
    with pytest.raises(ValueError, match="multiple of num_heads"):
        create_sgn_model("cnn_mha", num_classes=3, embed_dim=30, num_heads=4)
    layer = SignatureSpectrum(in_channels=8, feature_size=(4, 4))
    with pytest.raises(ValueError, match="feature_size"):
        layer(torch.rand(1, 8, 8, 8))
    head = SGNHead(in_channels=8, num_classes=3, feature_size=(4, 4), graph=False, attention=True)
    with pytest.raises(ValueError, match="feature map of size"):
        head(torch.rand(1, 8, 8, 8))


@pytest.mark.unit
def test_other_zoo_backbones_and_module_backbones():
    model = create_sgn_model("sgn", num_classes=10, backbone="resnet8", image_size=32)
    assert model.head.spectrum.feature_size == (8, 8)
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    from frugalcv.zoo import create_model

    own = create_model("tiny_cnn", num_classes=0, in_chans=3)
    model = create_sgn_model("sgn_mha", num_classes=4, backbone=own, image_size=16)
    assert model.backbone is own


def _digits16():
    from frugalcv.data import load_images

    d = load_images("digits", seed=0)
    up = lambda x: F.interpolate(x, size=16, mode="bilinear")  # noqa: E731  8x8 -> 4x4 maps
    return up(d.x_train), d.y_train, up(d.x_test), d.y_test


@pytest.mark.recipe
@pytest.mark.parametrize("variant", ["sgn", "sgn_mha"])
def test_classify_task_with_sgn_learns_digits(variant):
    # frugalcv.classify.ClassifyTask takes any model: no SGN-specific Task is needed
    x_tr, y_tr, x_te, y_te = _digits16()
    torch.manual_seed(0)
    model = create_sgn_model(variant, num_classes=10, in_chans=1, image_size=16)
    task = ClassifyTask(model=model)
    opt = torch.optim.Adam(task.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(60):
        idx = torch.randint(len(y_tr), (64,), generator=gen)
        loss = task.training_step((x_tr[idx], y_tr[idx]))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    task.eval()
    with torch.no_grad():
        acc = task.validation_step((x_te, y_te))["acc"].item()
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.5 * first, (first, last)
    assert acc > 0.5, acc  # 10 classes: chance is 0.1


@pytest.mark.unit
def test_spectra_of_raw_digits_alone_separate_classes():
    # the graph representation carries class information by itself (no CNN, no training of it)
    from sklearn.linear_model import LogisticRegression

    from frugalcv.data import load_images

    d = load_images("digits", seed=0)
    s_tr = signature_spectrum(d.x_train, patch_size=2).flatten(1).numpy()  # (1297, 32)
    s_te = signature_spectrum(d.x_test, patch_size=2).flatten(1).numpy()
    clf = LogisticRegression(max_iter=2000).fit(s_tr, d.y_train.numpy())
    assert clf.score(s_te, d.y_test.numpy()) > 0.3  # chance 0.1; measured 0.43


@pytest.mark.unit
def test_graph_speed_ratio_reports_consistent_numbers_and_restores_the_model():
    model = create_sgn_model("sgn", num_classes=10, image_size=16)
    model.train()
    out = graph_speed_ratio(model, torch.rand(8, 3, 16, 16), warmup=1, repeats=2)
    assert out["graph_images_per_s"] > 0 and out["cnn_images_per_s"] > 0
    assert out["ratio"] == pytest.approx(out["graph_images_per_s"] / out["cnn_images_per_s"])
    assert out["graph_images_per_s"] == pytest.approx(8 / (out["graph_ms"] / 1e3))
    assert out["batch_size"] == 8 and model.training
    with pytest.raises(ValueError, match="spectrum"):
        graph_speed_ratio(create_sgn_model("cnn", num_classes=10), torch.rand(2, 3, 32, 32))
