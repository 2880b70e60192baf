"""Small helpers for tests of frugalcv and of code built on it (shipped, as in detectron2)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from frugalcv.core.task import Task


def toy_data(num: int = 256, *, seed: int = 0, num_classes: int = 4) -> tuple[Tensor, Tensor]:
    """Linearly separable-ish 1x8x8 images: class k lights up row band k. ``x: (N, 1, 8, 8)``."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, num_classes, (num,), generator=g)
    x = 0.3 * torch.randn(num, 1, 8, 8, generator=g)
    for k in range(num_classes):
        x[y == k, :, 2 * k : 2 * k + 2, :] += 1.0
    return x, y


class ToyTask(Task):
    """A conv + dropout classifier; dropout makes the training RNG stream matter for resume."""

    def __init__(self, *, num_classes: int = 4, nan_at_step: int = -1) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Dropout(0.2),
            nn.AdaptiveAvgPool2d((4, 1)),
            nn.Flatten(),
            nn.Linear(32, num_classes),
        )
        self.nan_at_step = nan_at_step
        self.calls = 0

    def training_step(self, batch):
        x, y = batch
        logits = self.net(x)
        loss = F.cross_entropy(logits, y)
        self.calls += 1
        if self.calls == self.nan_at_step:
            loss = loss * float("nan")
        return {"loss": loss}

    def validation_step(self, batch):
        x, y = batch
        logits = self.net(x)
        return {"loss": F.cross_entropy(logits, y), "acc": (logits.argmax(1) == y).float().mean()}


def params_equal(a: nn.Module, b: nn.Module) -> bool:
    """True when every parameter and buffer of two modules is bitwise equal."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def classify_cli(*, max_steps: int, extra: tuple[str, ...] = ()) -> list[str]:
    """``frugalcv run classify`` on sklearn's 8x8 digits with a tiny CNN: a CLI run of a few
    steps for tests that drive the command line (faults, resume, run identity)."""
    return [
        "run",
        "classify",
        "--data.name=digits",
        "--model.name=tiny_cnn",
        "--train.batch_size=32",
        f"--train.max_steps={max_steps}",
        *extra,
        "--train.progress=false",
        "--train.accelerator=cpu",
    ]


def check_explanation_tests(bench, plan) -> list:
    """Assert a benchmark's explanation tests are wired to its plan: every explanation row is fed
    by jobs of the full ``plan``, every claim names existing rows, each explanation claim
    re-states a claim of the benchmark, and ``--quick`` plans no ``explain/`` job.

    Returns:
        The explanation claims (those with ``explains``), for checks of their own.
    """
    from frugalcv.benchmarks.runner import make_plan

    names = {r.name for r in bench.rows(plan.seeds) + bench.explain_rows(plan.seeds)}
    for spec in bench.explain_rows(plan.seeds):
        assert all(src.job in plan.jobs for src in spec.sources), spec.name
    assert all({c.left, c.right} <= names for c in bench.claims)
    tests = [c for c in bench.claims if c.explains]
    assert tests and all(c.explains in {p.text for p in bench.claims} for c in tests)
    quick = make_plan(bench, quick=True, check_data=False, runs_dir="/nonexistent-runs")
    assert not any(j.startswith("explain/") for j in quick.jobs)
    return tests


def load_study(name: str) -> ModuleType:
    """A script of the checkout's ``benchmarks/studies/`` (not a package), imported from its
    file, for the tests of the studies."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "studies" / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"No study script {path}; studies live in a source checkout.")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
