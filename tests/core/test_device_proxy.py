"""Post-fit code must feed the model on the model's device: a CPU proxy for a CUDA run.

On a GPU, Fabric moves the model to ``cuda`` and the loop moves each batch there; code that runs
after (or beside) ``fit`` (evaluation rows, feature extraction, MACs, latency, tracking, active-
learning rounds, denoising the test images, ...) must move its own inputs with
``frugalcv.core.measure.to_module`` / ``module_device``. Without a GPU the same bug class shows
under ``--train.precision=64-true``: Fabric converts the module to float64, and the loop and
``Task.evaluate`` convert each batch with it (``frugalcv.core.task.fabric_batch``: the "device" of
this proxy), so a float32 input that reaches the model any other way fails with a dtype error,
as a CPU tensor fed to a CUDA model fails with a device error.

Each case runs a recipe's tiny preset, shrunk to a few steps, end to end in this process.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from frugalcv.core.config import apply_overrides
from frugalcv.core.measure import count_macs, module_device, to_module


@pytest.fixture
def float64_device(recipe_env):
    """The loop's own batches follow the run's precision (no patching needed)."""


# recipe module, overrides: each family's tiny preset shrunk to about one short epoch, with the
# post-fit paths of its --quick benchmark switched on.
_ZSL = [
    "--data.name=attr-shapes",
    "--data.train_per_class=8",
    "--data.test_per_class=4",
    "--data.val_fraction=0.2",
    "--zsl.backbone=tiny_cnn",
    "--zsl.gamma=val_classes",
    "--train.batch_size=32",
    "--train.epochs=1",
    "--train.eval_every=0",
]
_MNIST_ROT = ["--data.name=mnist5k-rot-back", "--data.num_train=128", "--data.num_test=64"]
CASES = {
    "sgn": (
        "frugalcv.signature.recipe",
        ["--data.name=mnist5k", "--data.num_train=64", "--data.num_test=64", "--train.epochs=1"],
    ),
    "alt": (
        "frugalcv.track.alt_recipe",
        [
            "--data.num_train=2",
            "--data.num_test=1",
            "--data.num_frames=12",
            "--alt.num_pairs=16",
            "--alt.num_val_pairs=8",
            "--optim.warmup_steps=0",
            "--train.batch_size=8",
            "--train.max_steps=2",
        ],
    ),
    "zsl_eszsl": ("frugalcv.zsl.zsl_recipe", [*_ZSL, "--zsl.method=eszsl"]),
    "zsl_erpcnet": ("frugalcv.zsl.zsl_recipe", [*_ZSL, "--zsl.method=erpcnet"]),
    "medmil": (
        "frugalcv.mil.medmil_recipe",
        [
            "--data.name=events",
            "--data.num_train=24",
            "--data.num_test=24",
            "--medmil.rows=full,attention_mil",
            "--medmil.semantics=none",
            "--medmil.max_rounds=2",
            "--train.batch_size=8",
            "--train.epochs=1",
        ],
    ),
    "ddsnet": (
        "frugalcv.slim.ddsnet.recipe",
        [
            "--data.name=skimage-grey",
            "--data.crop=40",
            "--data.num_crops=32",
            "--data.heldout_images=2",
            "--data.heldout_crops=4",
            "--data.heldout_crop=32",
            "--data.calib_crops=16",
            "--data.test_tile=48",
            "--data.max_test=4",
            "--model.depth=4",
            "--model.min_channels=8",
            "--model.channel_step=8",
            "--ddsnet.gate_crop=48",
            "--ddsnet.gate_crops=16",
            "--ddsnet.gate_epochs=1.0",
            "--ddsnet.latency_images=1",
            "--ddsnet.latency_repeats=1",
            "--ddsnet.figure=true",
            "--train.epochs=1",
            "--train.eval_every=0",
        ],
    ),
    "dsnet": (
        "frugalcv.slim.dsnet_recipe",
        [
            *_MNIST_ROT,
            "--data.resize=0",
            "--model.scale=small",
            "--dsnet.gate_epochs=1",
            "--dsnet.static_rows=true",
            "--latency.batch_sizes=1,8",
            "--latency.repeats=1",
            "--latency.warmup=0",
            "--train.batch_size=64",
            "--train.epochs=1",
        ],
    ),
    "balenas": (
        "frugalcv.nas.balenas_recipe",
        [
            *_MNIST_ROT,
            "--search.searcher=balenas",
            "--search.channels=4",
            "--search.num_cells=1",
            "--search.epochs=1",
            "--search.batch_size=32",
            "--search.hessian_iters=2",
            "--search.eval_size=32",
            "--train.batch_size=64",
            "--train.epochs=1",
            "--train.eval_every=0",
        ],
    ),
    "contrastzsd": (
        "frugalcv.zsd.recipe",
        [
            "--data.name=zsd-digits",
            "--data.num_train=24",
            "--data.num_val=4",
            "--data.num_test=8",
            "--detector.backbone=tiny",
            "--contrast.rows=full",
            "--eval.draw_images=1",
            "--train.batch_size=8",
            "--train.max_steps=2",
            "--train.eval_every=0",
        ],
    ),
}
SLOW = {"dsnet"}  # about 18 s on one thread


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, marks=pytest.mark.slow) if c in SLOW else c for c in CASES],
)
def test_recipe_post_fit_paths_feed_the_model_on_its_device(case, float64_device, tmp_path):
    import importlib

    module, overrides = CASES[case]
    recipe = importlib.import_module(module)
    cfg = recipe.PRESETS["tiny"]()
    cfg = apply_overrides(
        cfg, [*overrides, "--train.precision=64-true", f"--train.out_dir={tmp_path / case}"]
    )
    summary = recipe.run(cfg, preset="tiny")
    assert summary  # it ran to the end: every post-fit path took the model's device and dtype


def test_module_device_and_to_module_follow_the_model():
    model = nn.Sequential(nn.Linear(3, 2)).double()
    assert module_device(model) == torch.device("cpu")
    assert module_device(nn.ReLU()) == torch.device("cpu")  # no parameters: cpu
    x = {"x": torch.ones(4, 3), "mask": torch.ones(4, dtype=torch.bool), "n": 3}
    moved = to_module(x, model)
    assert moved["x"].dtype == torch.float64  # floating tensors take the model's dtype
    assert moved["mask"].dtype == torch.bool  # integer/bool tensors keep theirs
    assert moved["n"] == 3
    # count_macs moves a float32 example input itself: 3 * 2 MACs per sample, batch 1
    assert count_macs(model, torch.ones(1, 3)) == 6
