"""Procedural tracking sequences: moving sprites over panning scikit-image photographs."""

from __future__ import annotations

import functools
from typing import Literal

import numpy as np
import torch

from frugalcv.data.tracking.sequence import Sequence

__all__ = ["TARGET_KINDS", "TargetKind", "make_sequence", "make_sequences"]


TargetKind = Literal["shape", "digit", "patch"]
TARGET_KINDS: tuple[str, ...] = ("shape", "digit", "patch")


# Colour photographs bundled with scikit-image (no download); grey ones are replicated to RGB.
_BACKGROUNDS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "brick",
    "grass",
    "gravel",
    "camera",
    "coins",
    "moon",
    "clock",
)
_MAX_SIDE = 384  # longer side the backgrounds are downscaled to (our choice: 120x160 frames pan
# over about a third of an image, so a sequence sees one scene, not a texture at pixel scale).


@functools.lru_cache(maxsize=1)
def _background_images() -> tuple[np.ndarray, ...]:
    import skimage.data
    from PIL import Image

    images = []
    for name in _BACKGROUNDS:
        im = getattr(skimage.data, name)()
        if im.ndim == 2:
            im = np.repeat(im[..., None], 3, axis=2)
        im = np.ascontiguousarray(im[..., :3])
        scale = _MAX_SIDE / max(im.shape[:2])
        if scale < 1:
            size = (round(im.shape[1] * scale), round(im.shape[0] * scale))
            im = np.asarray(Image.fromarray(im).resize(size, Image.BILINEAR))
        images.append(im.astype(np.float32) / 255.0)
    return tuple(images)


def _half(image: np.ndarray, pool: str) -> np.ndarray:
    """Left half for the "train" pool, right half for "test", whole image for "all"."""
    mid = image.shape[1] // 2
    return {"train": image[:, :mid], "test": image[:, mid:], "all": image}[pool]


@functools.lru_cache(maxsize=2)
def _digit_bank(pool: str) -> np.ndarray:
    from frugalcv.data.digits import mnist5k_split

    x_tr, _, x_te, _ = mnist5k_split(0)
    x = {"train": x_tr, "test": x_te, "all": torch.cat([x_tr, x_te])}[pool]
    return x[:1000].numpy()


def _tight(alpha: np.ndarray) -> tuple[slice, slice]:
    rows = np.flatnonzero(alpha.max(1) > 0.1)
    cols = np.flatnonzero(alpha.max(0) > 0.1)
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _sprite(kind: str, rng: np.random.Generator, pool: str) -> tuple[np.ndarray, np.ndarray]:
    """A target appearance: (h, w, 3) colour in [0, 1] and (h, w) alpha in [0, 1], tight."""
    colour = rng.uniform(0.15, 1.0, size=3).astype(np.float32)
    if kind == "digit":
        digits = _digit_bank(pool)
        alpha = digits[rng.integers(len(digits))].astype(np.float32) / 255.0
        rows, cols = _tight(alpha)
        alpha = alpha[rows, cols]
        shade = np.linspace(0.7, 1.0, alpha.shape[0], dtype=np.float32)[:, None, None]
        rgb = np.broadcast_to(colour, (*alpha.shape, 3)) * shade
        return np.ascontiguousarray(rgb), alpha
    if kind == "shape":
        from skimage.draw import ellipse, polygon

        size = 32
        alpha = np.zeros((size, size), np.float32)
        which = rng.integers(4)
        if which == 0:  # ellipse
            rr, cc = ellipse(15.5, 15.5, rng.uniform(8, 15), rng.uniform(8, 15), shape=alpha.shape)
        elif which == 1:  # triangle
            rr, cc = polygon([2, 29, 29], [15.5, 2, 29], shape=alpha.shape)
        elif which == 2:  # diamond
            rr, cc = polygon([1, 15.5, 30, 15.5], [15.5, 30, 15.5, 1], shape=alpha.shape)
        else:  # rectangle with a random aspect
            h, w = rng.integers(12, 31, size=2)
            rr, cc = polygon([0, 0, h, h], [0, w, w, 0], shape=alpha.shape)
        alpha[rr, cc] = 1.0
        rows, cols = _tight(alpha)
        alpha = alpha[rows, cols]
        # Two-tone stripes give the sprite internal texture to lock on to.
        second = rng.uniform(0.0, 1.0, size=3).astype(np.float32)
        period = int(rng.integers(4, 9))
        stripes = (np.arange(alpha.shape[0]) // (period // 2)) % 2 == 0
        rgb = np.where(stripes[:, None, None], colour, second).astype(np.float32)
        rgb = np.broadcast_to(rgb, (*alpha.shape, 3))
        return np.ascontiguousarray(rgb), alpha
    if kind == "patch":
        images = _background_images()
        im = _half(images[rng.integers(len(images))], pool)
        h, w = rng.integers(16, 40, size=2)
        y, x = rng.integers(0, im.shape[0] - h), rng.integers(0, im.shape[1] - w)
        rgb = im[y : y + h, x : x + w].copy()
        # A coloured rim separates the patch from its source texture.
        rgb[:2], rgb[-2:], rgb[:, :2], rgb[:, -2:] = colour, colour, colour, colour
        return rgb, np.ones((h, w), np.float32)
    raise ValueError(f"unknown target kind {kind!r}; valid kinds are {', '.join(TARGET_KINDS)}")


def _resize(a: np.ndarray, h: int, w: int) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(a))
    t = t.permute(2, 0, 1)[None] if t.ndim == 3 else t[None, None]
    t = torch.nn.functional.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)
    t = t[0].permute(1, 2, 0) if a.ndim == 3 else t[0, 0]
    return t.numpy()


def _paste(canvas: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, x: int, y: int) -> None:
    """Alpha-blend a (h, w) sprite with top-left (x, y) into canvas (H, W, 3), clipped."""
    H, W = canvas.shape[:2]
    h, w = alpha.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x1 <= x0 or y1 <= y0:
        return
    a = alpha[y0 - y : y1 - y, x0 - x : x1 - x, None]
    region = canvas[y0:y1, x0:x1]
    region *= 1.0 - a
    region += a * rgb[y0 - y : y1 - y, x0 - x : x1 - x]


def _trajectory(
    rng: np.random.Generator,
    *,
    num_frames: int,
    height: int,
    width: int,
    sizes: np.ndarray,
    speed: tuple[float, float],
) -> np.ndarray:
    """Centres (T, 2) as (x, y) of a constant-speed walk with small turns that bounces off the
    borders; ``sizes`` is (T, 2) as (h, w), so the whole box stays inside the frame."""
    centre = np.array([rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height])
    angle = rng.uniform(0, 2 * np.pi)
    v = rng.uniform(*speed) * np.array([np.cos(angle), np.sin(angle)])
    out = np.zeros((num_frames, 2))
    for t in range(num_frames):
        half = sizes[t, ::-1] / 2  # (w/2, h/2)
        lo, hi = half + 1, np.array([width, height]) - half - 1
        for d in range(2):
            if centre[d] < lo[d] or centre[d] > hi[d]:
                v[d] = -v[d]
            centre[d] = np.clip(centre[d], lo[d], max(lo[d], hi[d]))
        out[t] = centre
        turn = rng.normal(0, 0.15)  # radians per frame
        c, s = np.cos(turn), np.sin(turn)
        v = np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])
        centre = centre + v
    return out


def _motion_blur(frame: np.ndarray, direction: np.ndarray, length: int) -> np.ndarray:
    """Mean of `length` copies of the frame shifted along `direction` (a linear blur kernel)."""
    direction = direction / (np.linalg.norm(direction) + 1e-8)
    acc = np.zeros_like(frame)
    for i in range(length):
        dx, dy = np.round((i - (length - 1) / 2) * direction).astype(int)
        acc += np.roll(frame, (dy, dx), axis=(0, 1))
    return acc / length


def make_sequence(
    *,
    seed: int,
    num_frames: int = 48,
    height: int = 96,
    width: int = 128,
    target: str = "shape",
    target_size: tuple[int, int] = (16, 28),
    scale_change: float = 0.3,
    speed: tuple[float, float] = (1.0, 3.5),
    num_distractors: int = 1,
    occlusion: bool = True,
    blur: bool = True,
    pool: str = "train",
    name: str | None = None,
) -> Sequence:
    """One procedural tracking sequence with exact ground truth.

    A target sprite (``target``: "shape" = filled ellipse/triangle/diamond/rectangle with stripes,
    "digit" = an mnist5k digit, "patch" = a crop of a scikit-image photo with a coloured rim)
    moves at constant speed with small random turns, bouncing off the frame borders, over a
    background crop that pans linearly across a scikit-image photograph (camera motion). Its
    size follows a smoothed log-normal walk within ``exp(+-scale_change)`` of the start size.

    Challenges (recorded in ``attributes`` with OTB tags):
        - "BC" (background clutter): ``num_distractors`` sprites of the same kind move
          independently and are drawn beneath the target.
        - "OCC": for a stretch of T/8 frames an opaque textured bar covers 40-100 % of the target;
          frames where more than 90 % is covered are flagged ``absent``.
        - "MB": a stretch of T/8 frames is motion-blurred along the target's velocity.
        - "SV": scale variation (when ``scale_change > 0``).

    Args:
        seed: every random choice; the same seed gives the same sequence bit for bit.
        num_frames, height, width: T, H, W.
        target_size: (min, max) of the target's longer side in pixels at frame 0.
        speed: (min, max) target speed in pixels per frame.
        pool: "train" draws backgrounds, patches and digits from the left halves of the images
            and the mnist5k train split, "test" from the right halves and the test split; "all"
            from both.
        name: sequence name; default ``"{target}-{seed:05d}"``.

    Returns:
        A `Sequence` with uint8 frames (T, H, W, 3) and boxes (T, 4): the tight box of the
        pasted target sprite (integer pixels).
    """
    if target not in TARGET_KINDS:
        raise ValueError(f"unknown target {target!r}; valid kinds are {', '.join(TARGET_KINDS)}")
    if pool not in ("train", "test", "all"):
        raise ValueError(f"pool must be 'train', 'test' or 'all'; got {pool!r}")
    if num_frames < 2 or min(height, width) < 2 * target_size[1]:
        raise ValueError(
            f"need num_frames >= 2 and frames at least twice the largest target size "
            f"({2 * target_size[1]} px); got T={num_frames}, H={height}, W={width}"
        )
    rng = np.random.default_rng([seed, 0x7A1])
    T, H, W = num_frames, height, width

    images = _background_images()
    bg = _half(images[rng.integers(len(images))], pool)
    if bg.shape[0] < H + 8 or bg.shape[1] < W + 8:
        bg = _resize(bg, max(bg.shape[0], H + 40), max(bg.shape[1], W + 40))
    pan_start = np.array([rng.integers(0, bg.shape[1] - W), rng.integers(0, bg.shape[0] - H)])
    pan_end = np.array([rng.integers(0, bg.shape[1] - W), rng.integers(0, bg.shape[0] - H)])
    pan_end = pan_start + np.clip(pan_end - pan_start, -T // 2, T // 2)  # at most 0.5 px/frame

    def sizes_walk(base: float) -> np.ndarray:
        steps = rng.normal(0, scale_change / np.sqrt(T) * 2, size=T)
        log_s = np.clip(
            np.convolve(np.cumsum(steps), np.ones(5) / 5, mode="same"), -scale_change, scale_change
        )
        return base * np.exp(log_s)

    def object_track(kind_rng_sprite):
        rgb, alpha = kind_rng_sprite
        base = rng.uniform(*target_size)
        scales = sizes_walk(base) / max(alpha.shape)
        hw = np.maximum(np.round(np.array(alpha.shape)[None] * scales[:, None]), 4).astype(int)
        centres = _trajectory(rng, num_frames=T, height=H, width=W, sizes=hw, speed=speed)
        return rgb, alpha, hw, centres

    objects = [object_track(_sprite(target, rng, pool)) for _ in range(num_distractors + 1)]
    tgt_rgb, tgt_alpha, tgt_hw, tgt_centres = objects[0]

    occ_range = blur_range = (0, 0)
    span = max(2, T // 8)
    if occlusion:
        t0 = int(rng.integers(T // 4, T - span))  # never in the first frame
        occ_range = (t0, t0 + span)
        occ_cover = rng.uniform(0.4, 1.0)
        occ_side = int(rng.integers(4))  # bar enters from left, right, top or bottom
        occ_tex = _half(images[rng.integers(len(images))], pool)
    if blur:
        t0 = int(rng.integers(1, T - span))
        blur_range = (t0, t0 + span)

    frames = np.zeros((T, H, W, 3), np.float32)
    boxes = np.zeros((T, 4), np.float32)
    absent = np.zeros(T, bool)
    for t in range(T):
        f = t / max(T - 1, 1)
        ox, oy = np.round(pan_start + f * (pan_end - pan_start)).astype(int)
        canvas = bg[oy : oy + H, ox : ox + W].copy()
        for rgb, alpha, hw, centres in objects[::-1]:  # target drawn last
            h, w = hw[t]
            x, y = np.round(centres[t] - np.array([w, h]) / 2).astype(int)
            _paste(canvas, _resize(rgb, h, w), _resize(alpha, h, w), x, y)
        h, w = tgt_hw[t]
        x, y = np.round(tgt_centres[t] - np.array([w, h]) / 2).astype(int)
        boxes[t] = (x, y, w, h)
        if occ_range[0] <= t < occ_range[1]:
            bx0, by0, bx1, by1 = x, y, x + w, y + h
            if occ_side == 0:
                bx1 = x + int(np.ceil(occ_cover * w))
            elif occ_side == 1:
                bx0 = x + w - int(np.ceil(occ_cover * w))
            elif occ_side == 2:
                by1 = y + int(np.ceil(occ_cover * h))
            else:
                by0 = y + h - int(np.ceil(occ_cover * h))
            bx0, by0, bx1, by1 = bx0 - 3, by0 - 3, bx1 + 3, by1 + 3  # the bar overhangs
            bh, bw = by1 - by0, bx1 - bx0
            tex = _resize(occ_tex[:64, :64], bh, bw) * 0.6
            _paste(canvas, tex, np.ones((bh, bw), np.float32), bx0, by0)
            absent[t] = occ_cover > 0.9
        if blur_range[0] <= t < blur_range[1]:
            v = tgt_centres[min(t + 1, T - 1)] - tgt_centres[max(t - 1, 0)]
            canvas = _motion_blur(canvas, v if np.any(v) else np.array([1.0, 0.0]), 7)
        frames[t] = canvas
    attributes = tuple(
        tag
        for tag, on in (
            ("BC", num_distractors > 0),
            ("OCC", occlusion),
            ("MB", blur),
            ("SV", scale_change > 0),
        )
        if on
    )
    return Sequence(
        name=name or f"{target}-{seed:05d}",
        frames=torch.from_numpy(np.round(np.clip(frames, 0, 1) * 255).astype(np.uint8)),
        boxes=torch.from_numpy(boxes),
        absent=torch.from_numpy(absent),
        attributes=attributes,
        source=f"frugalcv procedural ({target}, seed {seed}, pool {pool})",
    )


def make_sequences(
    num_sequences: int,
    *,
    seed: int = 0,
    num_frames: int = 48,
    height: int = 96,
    width: int = 128,
    target: str = "shape",
    num_distractors: int = 1,
    occlusion: bool = True,
    blur: bool = True,
    pool: str = "train",
) -> list[Sequence]:
    """``num_sequences`` procedural sequences with seeds ``seed * 100_000 + i`` (see
    `make_sequence` for the arguments); names are ``"{target}-{i:05d}"`` so they are unique."""
    return [
        make_sequence(
            seed=seed * 100_000 + i,
            num_frames=num_frames,
            height=height,
            width=width,
            target=target,
            num_distractors=num_distractors,
            occlusion=occlusion,
            blur=blur,
            pool=pool,
            name=f"{target}-{i:05d}",
        )
        for i in range(num_sequences)
    ]
