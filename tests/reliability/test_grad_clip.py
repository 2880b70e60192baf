"""A non-finite gradient norm under gradient clipping stops the run like a NaN loss does."""

import pytest
import torch
from lightning.fabric import Fabric
from torch import nn

from frugalcv.core.task import NonFiniteLossError, clip_and_step

pytestmark = pytest.mark.unit


def _inf_grad_model() -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.tensor([[float("inf"), 1.0]])).sum().backward()  # finite loss is not needed here
    return model, opt


def test_plain_torch_clip_raises_before_the_step():
    model, opt = _inf_grad_model()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(NonFiniteLossError, match="gradient norm .*non-finite.*--optim.lr"):
        clip_and_step(opt, forward=None, fabric=None, grad_clip=1.0, parameters=model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_fabric_clip_error_becomes_the_nan_stop():
    fabric = Fabric(accelerator="cpu", devices=1)
    model, opt = _inf_grad_model()
    forward, opt = fabric.setup(model, opt)
    with pytest.raises(NonFiniteLossError, match="non-finite"):
        clip_and_step(opt, forward=forward, fabric=fabric, grad_clip=1.0, parameters=())
