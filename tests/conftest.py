"""Fixtures shared by every test folder."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """One intra-op thread: on a shared 2-core machine two spinning OpenMP threads per process
    slow small convolutions down several-fold when other processes compete for the cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def recipe_env(one_thread, monkeypatch, tmp_path):
    """A recipe run on embedded data only: one thread, a private data cache, FRUGALCV_DATA unset."""
    monkeypatch.setenv("FRUGALCV_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FRUGALCV_DATA", raising=False)
