"""attr-shapes: rendered attribute compositions over natural-image backgrounds."""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

from frugalcv.data.background import sample_patches
from frugalcv.data.base import stream_generator as _generator
from frugalcv.data.semantics import normalize_semantics
from frugalcv.data.zsl.container import ZSLData, _check_semantics_option, text_semantics

__all__ = ["ATTR_SHAPES_GROUPS", "make_attr_shapes"]


ATTR_SHAPES_GROUPS: dict[str, tuple[str, ...]] = {
    "size": ("small", "large"),
    "colour": ("red", "green", "blue", "yellow"),
    "pattern": ("solid", "striped", "dotted"),
    "shape": ("circle", "square", "triangle", "cross"),
}

# RGB of each colour value (our choice: saturated primaries that stay apart under jitter).
_COLOURS = torch.tensor(
    [[0.95, 0.15, 0.15], [0.15, 0.85, 0.2], [0.2, 0.35, 1.0], [0.95, 0.9, 0.15]]
)


def _render_shapes(
    combos: Tensor, *, image_size: int, generator: torch.Generator, pool: str
) -> Tensor:
    """Render one image per row of combos (size, colour, pattern, shape value indices).

    Returns:
        (N, 3, S, S) float32 in [0, 1].
    """
    n, s = len(combos), image_size
    size, colour, pattern, shape = combos.unbind(1)
    u = torch.rand(n, 6, generator=generator)
    # radius: small 16-22 %, large 30-36 % of the side (our choice: the two never overlap)
    radius = s * torch.where(size == 0, 0.16 + 0.06 * u[:, 0], 0.30 + 0.06 * u[:, 0])
    margin = radius + 1.0
    cx = margin + u[:, 1] * (s - 2 * margin)
    cy = margin + u[:, 2] * (s - 2 * margin)
    coords = torch.arange(s, dtype=torch.float32) + 0.5
    dx = (coords[None, None, :] - cx[:, None, None]) / radius[:, None, None]  # (N, 1, S)
    dy = (coords[None, :, None] - cy[:, None, None]) / radius[:, None, None]  # (N, S, 1)
    dx, dy = torch.broadcast_tensors(dx, dy)  # (N, S, S), shape-normalised coordinates
    masks = torch.stack(
        [
            dx**2 + dy**2 <= 1.0,  # circle
            (dx.abs() <= 0.8) & (dy.abs() <= 0.8),  # square
            (dy <= 0.8) & (dy >= -0.9 + 1.7 * dx.abs() / 0.95),  # triangle, apex up
            ((dx.abs() <= 0.3) & (dy.abs() <= 1.0)) | ((dy.abs() <= 0.3) & (dx.abs() <= 1.0)),
        ],
        dim=1,
    )  # (N, 4, S, S)
    mask = masks[torch.arange(n), shape]  # (N, S, S)
    # pattern: solid; striped (diagonal bands, period ~ radius/2); dotted (a lattice of dots)
    phase = u[:, 3, None, None] * 6.283
    stripes = torch.sin(6.0 * (dx + dy) + phase) > 0
    dots = (torch.cos(7.0 * dx + phase) + torch.cos(7.0 * dy + phase)) > 1.0
    lit = torch.stack([torch.ones_like(stripes), stripes, dots], 1)[torch.arange(n), pattern]
    rgb = _COLOURS[colour] * (0.85 + 0.15 * u[:, 4:5])  # (N, 3) brightness jitter
    back = sample_patches(n, s, generator=generator, pool=pool)  # (N, S, S) grey texture
    back = (0.25 + 0.5 * back)[:, None].expand(n, 3, s, s)  # keep backgrounds mid-grey
    fg = torch.where(lit[:, None], rgb[:, :, None, None], 0.05 * torch.ones(1, 3, 1, 1))
    return torch.where(mask[:, None], fg, back).clamp_(0.0, 1.0).contiguous()


def _attr_shape_classes(
    num_seen: int, num_unseen: int, *, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Seen and unseen class combos; every attribute value occurs in >= 2 seen classes."""
    combos = torch.tensor(
        list(itertools.product(*(range(len(v)) for v in ATTR_SHAPES_GROUPS.values())))
    )  # (96, 4)
    total = num_seen + num_unseen
    if total > len(combos) or num_unseen < 1 or num_seen < 1:
        raise ValueError(
            f"need 1 <= num_unseen and num_seen + num_unseen <= {len(combos)} (the number of "
            f"attribute combinations); got {num_seen} seen and {num_unseen} unseen"
        )
    for _ in range(1000):
        pick = combos[torch.randperm(len(combos), generator=generator)[:total]]
        seen = pick[:num_seen]
        ok = all(
            (seen[:, g] == v).sum() >= 2
            for g, values in enumerate(ATTR_SHAPES_GROUPS.values())
            for v in range(len(values))
        )
        if ok:
            return seen, pick[num_seen:]
    raise ValueError(
        f"could not draw {num_seen} seen classes covering every attribute value twice; "
        "use more seen classes"
    )


def _one_hot_attributes(combos: Tensor) -> Tensor:
    parts = [
        torch.nn.functional.one_hot(combos[:, g], len(values)).float()
        for g, values in enumerate(ATTR_SHAPES_GROUPS.values())
    ]
    return torch.cat(parts, dim=1)  # (C, 13)


def make_attr_shapes(
    *,
    num_seen: int = 18,
    num_unseen: int = 6,
    num_train_per_class: int = 40,
    num_test_per_class: int = 20,
    image_size: int = 32,
    seed: int = 0,
    semantics: str = "attributes",
    normalize: str = "none",
) -> ZSLData:
    """Rendered objects whose classes are combinations of attribute values ("attr-shapes").

    Attribute groups (:data:`ATTR_SHAPES_GROUPS`): size {small, large}, colour {red, green, blue,
    yellow}, pattern {solid, striped, dotted}, shape {circle, square, triangle, cross}: 96
    combinations, of which ``num_seen + num_unseen`` become classes, drawn with the rule that
    every attribute value appears in at least two seen classes, so every unseen class is a new
    combination of values seen in training (compositional zero-shot). Class names read like
    "small red striped circle". Each image draws a random position, brightness and pattern phase
    over a grey natural-image patch (`frugalcv.data.background`; train images use the "train"
    background pool, test images the disjoint "test" pool).

    Args:
        num_seen, num_unseen: class counts.
        num_train_per_class: trainval images per seen class.
        num_test_per_class: test images per seen class (test_seen) and per unseen class.
        image_size: side in pixels.
        seed: seeds the class draw and every image.
        semantics: "attributes" (13 one-hot group indicators), "names" (MiniLM embeddings of the
            class names) or "descriptions" ("a photo of a small red striped circle").
        normalize: "l2" or "none" for the attribute rows.

    Returns:
        ZSLData with images (N, 3, image_size, image_size); classes 0..num_seen-1 are seen.
    """
    _check_semantics_option(semantics)
    if image_size < 16:
        raise ValueError(f"image_size must be >= 16 pixels to draw patterns; got {image_size}")
    seen_combos, unseen_combos = _attr_shape_classes(
        num_seen, num_unseen, generator=_generator(seed, 10)
    )
    combos = torch.cat([seen_combos, unseen_combos])
    groups = list(ATTR_SHAPES_GROUPS.values())
    names = [" ".join(groups[g][int(v)] for g, v in enumerate(row)) for row in combos]
    seen = torch.arange(num_seen)
    unseen = torch.arange(num_seen, num_seen + num_unseen)

    def draw(classes: Tensor, per_class: int, stream: int, pool: str) -> tuple[Tensor, Tensor]:
        y = classes.repeat_interleave(per_class)
        gen = _generator(seed, stream)
        y = y[torch.randperm(len(y), generator=gen)]
        return _render_shapes(combos[y], image_size=image_size, generator=gen, pool=pool), y

    x_tr, y_tr = draw(seen, num_train_per_class, 11, "train")
    x_ts, y_ts = draw(seen, num_test_per_class, 12, "test")
    x_tu, y_tu = draw(unseen, num_test_per_class, 13, "test")
    attr_names = [f"{g}:{v}" for g, values in ATTR_SHAPES_GROUPS.items() for v in values]
    if semantics == "attributes":
        sem = normalize_semantics(_one_hot_attributes(combos), normalize=normalize)
    else:
        texts = names if semantics == "names" else [f"a photo of a {n}" for n in names]
        sem, attr_names = text_semantics(texts), []
    return ZSLData(
        name="attr-shapes",
        x_train=x_tr,
        y_train=y_tr,
        x_test_seen=x_ts,
        y_test_seen=y_ts,
        x_test_unseen=x_tu,
        y_test_unseen=y_tu,
        semantics=sem,
        seen_classes=seen,
        unseen_classes=unseen,
        class_names=names,
        attribute_names=attr_names,
        source=f"procedural attr-shapes (seed {seed}, {semantics})",
    )
