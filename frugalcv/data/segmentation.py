"""A procedural segmentation set: digits pasted on natural-image patches, labelled per pixel.

The `SegData` container lives in `frugalcv.data.base` and is re-exported here.

`make_digit_scenes` builds a small semantic-segmentation set for dense-prediction distillation
without any download: one to three hand-written digits are pasted at random positions and scales
on natural-image background patches (`frugalcv.data.background`), and each pixel is labelled with
the class of the digit stroke covering it (digit + 1) or 0 for background. It is our own
construction, not a published benchmark; the compositing rule is the one used for mnist-back
(`frugalcv.data.composites`): ``x = d + (1 - d) * x`` for each pasted digit d in turn.

Choices (ours):
    - one channel (grey), like the background patches;
    - digit content height uniform in [0.3, 0.55] * image_size, centre uniform such that the
      content stays inside the image; digits may overlap and a later one covers an earlier one
      in both image and labels;
    - a pixel is a stroke where the resampled digit intensity exceeds 0.5; labels cover the
      stroke dilated by about 1/8 of the digit box (a max filter), so the labelled region is
      the digit's thickened shape, learnable at an FCN's output stride of 4;
    - train scenes use training digits and the "train" background pool, test scenes the test
      digits and the "test" pool, so no digit instance or background pixel is shared.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from frugalcv.data.background import sample_patches
from frugalcv.data.base import SegData, stream_generator
from frugalcv.data.digits import load_digits, load_mnist5k

__all__ = ["SegData", "make_digit_scenes"]

# Share of a digit's own box that its strokes fill: sklearn digits are cropped to the stroke
# extent; MNIST centres a 20x20 digit in a 28x28 box (LeCun et al., 1998).
_CONTENT_FRACTION = {"digits": 1.0, "mnist5k": 20.0 / 28.0}
_DIGIT_LOADERS = {"digits": load_digits, "mnist5k": load_mnist5k}
# Range of the digit content height relative to the scene side (our choice).
_SCALE_RANGE = (0.3, 0.55)
# Resampled digit intensity above which a pixel is labelled as stroke (our choice).
_STROKE_THRESHOLD = 0.5


def _dilation(size: int) -> int:
    """Odd max-filter width for the label region: ~1/8 of the mean digit box (our choice)."""
    mean_box = size * sum(_SCALE_RANGE) / 2
    return 2 * max(1, int(round(mean_box / 8))) + 1


def _paste(
    canvas: Tensor,
    labels: Tensor,
    digits: Tensor,
    classes: Tensor,
    *,
    centre: Tensor,
    box: Tensor,
    active: Tensor,
    angle: Tensor | None = None,
) -> None:
    """Composite one digit per scene onto the canvas, in place.

    Args:
        canvas: (N, S, S) scenes in [0, 1].
        labels: (N, S, S) int64 labels.
        digits: (N, h, w) digit images in [0, 1].
        classes: (N,) digit classes.
        centre: (N, 2) digit centre (x, y) in pixels, the scene spanning [0, S].
        box: (N,) side of the digit's box in pixels.
        active: (N,) bool, scenes that receive a digit in this slot.
        angle: (N,) rotation of each digit about its centre, in radians (None: upright).
    """
    n, size = canvas.shape[0], canvas.shape[-1]
    inv = size / box  # scene-to-digit scale in normalised coordinates
    centre_n = centre * (2.0 / size) - 1.0  # (N, 2) in [-1, 1]
    theta = torch.zeros(n, 2, 3)  # maps scene coords to digit coords: inv * R (p - c)
    theta[:, 0, 0] = inv
    theta[:, 1, 1] = inv
    if angle is not None:
        cos, sin = torch.cos(angle) * inv, torch.sin(angle) * inv
        theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = cos, -sin, sin, cos
    theta[:, :, 2] = -(theta[:, :, :2] @ centre_n.unsqueeze(-1)).squeeze(-1)
    grid = F.affine_grid(theta, [n, 1, size, size], align_corners=False)  # (N, S, S, 2)
    d = F.grid_sample(digits.unsqueeze(1), grid, mode="bilinear", align_corners=False)
    d = d.squeeze(1).clamp_(0.0, 1.0) * active[:, None, None]  # (N, S, S)
    canvas.mul_(1.0 - d).add_(d)  # d + (1 - d) * canvas
    stroke = d > _STROKE_THRESHOLD
    # Label the stroke dilated by ~1/8 of the digit box: thin strokes alone fill too little of
    # a stride-4 feature cell for an FCN to learn anything but background (seen here: constant
    # all-background predictions); the dilated blob keeps the digit's shape.
    k = _dilation(size)
    region = F.max_pool2d(stroke[:, None].float(), k, stride=1, padding=k // 2)[:, 0] > 0
    labels[region] = (classes[:, None, None] + 1).expand_as(labels)[region]


def _scenes(
    digits: Tensor,
    digit_labels: Tensor,
    *,
    num: int,
    image_size: int,
    digits_per_image: tuple[int, int],
    content_fraction: float,
    pool: str,
    generator: torch.Generator,
    rotate: bool = False,
) -> tuple[Tensor, Tensor]:
    """(num, 1, S, S) scenes and (num, S, S) labels from a pool of (P, h, w) digits."""
    canvas = sample_patches(num, image_size, generator=generator, pool=pool)  # (num, S, S)
    labels = torch.zeros(num, image_size, image_size, dtype=torch.long)
    lo, hi = digits_per_image
    count = torch.randint(lo, hi + 1, (num,), generator=generator)
    for slot in range(hi):
        pick = torch.randint(len(digits), (num,), generator=generator)
        u = torch.rand(num, 3, generator=generator)
        content = image_size * (_SCALE_RANGE[0] + (_SCALE_RANGE[1] - _SCALE_RANGE[0]) * u[:, 0])
        half = content / 2.0
        centre = half[:, None] + u[:, 1:] * (image_size - content)[:, None]  # content inside
        # Drawn only when rotating, so upright scenes stay the same for a given seed.
        angle = 2 * torch.pi * torch.rand(num, generator=generator) if rotate else None
        _paste(
            canvas,
            labels,
            digits[pick],
            digit_labels[pick],
            centre=centre,
            box=content / content_fraction,
            active=count > slot,
            angle=angle,
        )
    return canvas.unsqueeze(1), labels


def make_digit_scenes(
    *,
    num_train: int,
    num_test: int,
    image_size: int = 48,
    digits_per_image: tuple[int, int] = (1, 3),
    num_digit_classes: int = 10,
    seed: int = 0,
    source: str = "digits",
    rotate: bool = False,
) -> SegData:
    """Digits pasted on natural-image patches, labelled per pixel (see the module docstring).

    Args:
        num_train: number of training scenes.
        num_test: number of test scenes.
        image_size: scene side in pixels.
        digits_per_image: inclusive range (lo, hi) of digits per scene, 1 <= lo <= hi.
        num_digit_classes: use digits 0 .. num_digit_classes - 1 only (1 to 10).
        seed: seeds the digit split, backgrounds, choices, scales and positions.
        source: "digits" (scikit-learn 8x8, upsampled) or "mnist5k" (28x28 real MNIST).
        rotate: rotate each digit about its centre by an angle uniform in [0, 360) degrees, as
            in mnist-rot-back (a harder, recognition-bound task).

    Returns:
        SegData with x (N, 1, S, S) in [0, 1], y (N, S, S) in {0 .. num_digit_classes}
        (0 = background, d + 1 = digit d) and num_classes = num_digit_classes + 1.
    """
    if source not in _CONTENT_FRACTION:
        raise ValueError(f"source must be one of {sorted(_CONTENT_FRACTION)}, got {source!r}")
    if not 1 <= num_digit_classes <= 10:
        raise ValueError(f"num_digit_classes must be in [1, 10], got {num_digit_classes}")
    lo, hi = digits_per_image
    if not 1 <= lo <= hi:
        raise ValueError(f"digits_per_image must be (lo, hi) with 1 <= lo <= hi, got {(lo, hi)}")
    if num_train < 1 or num_test < 1:
        raise ValueError(f"num_train and num_test must be >= 1, got {num_train}, {num_test}")
    if image_size < 8:
        raise ValueError(f"image_size must be at least 8, got {image_size}")

    pool = _DIGIT_LOADERS[source](seed=seed)
    splits = {}
    for split, x, y, stream, n in (
        ("train", pool.x_train, pool.y_train, 10, num_train),
        ("test", pool.x_test, pool.y_test, 11, num_test),
    ):
        keep = y < num_digit_classes
        splits[split] = _scenes(
            x[keep, 0],
            y[keep],
            num=n,
            image_size=image_size,
            digits_per_image=(lo, hi),
            content_fraction=_CONTENT_FRACTION[source],
            pool=split,
            generator=stream_generator(seed, stream),
            rotate=rotate,
        )
    (x_tr, y_tr), (x_te, y_te) = splits["train"], splits["test"]
    return SegData(
        f"digit-scenes-{source}" + ("-rot" if rotate else ""),
        x_tr,
        y_tr,
        x_te,
        y_te,
        num_classes=num_digit_classes + 1,
        source=f"make_digit_scenes: {pool.source} over skimage.data patches",
    )
