"""Single-object tracking data: the `Sequence` container, procedural sequences, and readers/writers
for the folder layouts of OTB-2015, GOT-10k, LaSOT, UAV123 and TrackingNet.

Boxes are always float32 ``(T, 4)`` rows ``(x, y, w, h)`` in pixels, OTB convention: ``(x, y)`` is
the top-left corner in continuous pixel coordinates (the left edge of pixel column 0 is x = 0), so
a box covers ``[x, x + w) x [y, y + h)`` and its centre is ``(x + w / 2, y + h / 2)``. The files
of every benchmark use the same convention (OTB, GOT-10k, LaSOT, UAV123 and TrackingNet all store
``x, y, w, h`` per line); a row of NaN (UAV123 out-of-view) is kept as NaN and flagged absent.

Procedural sequences (`make_sequence`, `make_sequences`) paint targets (mnist5k digits, filled
shapes or image patches) that move, change scale and pass behind occluders over slowly panning
natural images from scikit-image, with distractors of the same kind and motion-blurred stretches;
`write_got10k` / `write_otb` store them in the real layouts so that the readers are exercised end to
end. Nothing is downloaded.

Layouts read here (root = the folder passed as ``root``, or ``$FRUGALCV_DATA/<name>``):

- OTB-2015: ``root/<seq>/img/0001.jpg ...`` and ``root/<seq>/groundtruth_rect.txt``.
- GOT-10k: ``root/<split>/list.txt``, ``root/<split>/<seq>/00000001.jpg ...``,
  ``groundtruth.txt`` (comma separated), optional ``absence.label`` and ``cover.label``.
- LaSOT: ``root/<category>/<category>-<k>/img/00000001.jpg ...``, ``groundtruth.txt``,
  ``full_occlusion.txt`` and ``out_of_view.txt`` (one comma-separated row of 0/1).
- UAV123: ``root/data_seq/UAV123/<seq>/000001.jpg ...`` and ``root/anno/UAV123/<seq>.txt``.
- TrackingNet: ``root/TRAIN_<k>/frames/<seq>/0.jpg ...`` and ``root/TRAIN_<k>/anno/<seq>.txt``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from frugalcv.data.base import data_root

__all__ = [
    "TARGET_KINDS",
    "Sequence",
    "load_frame",
    "make_sequence",
    "make_sequences",
    "read_boxes",
    "read_got10k",
    "read_lasot",
    "read_otb",
    "read_trackingnet",
    "read_uav123",
    "write_got10k",
    "write_otb",
]

TargetKind = Literal["shape", "digit", "patch"]
TARGET_KINDS: tuple[str, ...] = ("shape", "digit", "patch")


# ---------------------------------------------------------------------------------------------
# container


def load_frame(path: str | Path) -> Tensor:
    """Read one image file as a uint8 (H, W, 3) tensor (grey and RGBA images become RGB)."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"frame {path} does not exist")
    with Image.open(path) as image:
        return torch.from_numpy(np.asarray(image.convert("RGB")).copy())


@dataclass
class Sequence:
    """One annotated video.

    Attributes:
        name: sequence name, unique within a data set.
        frames: uint8 tensor (T, H, W, 3), or a list of T image paths read lazily by `frame`.
        boxes: (T, 4) float32 ground truth (x, y, w, h) in pixels; NaN rows where none is given.
        absent: (T,) bool, True where the target is not visible (full occlusion, out of view,
            or no ground truth), or None when the data set gives no such labels.
        attributes: challenge tags, e.g. ("OCC", "MB", "BC", "SV") for the procedural sequences.
        source: where the data came from, never a machine path.
    """

    name: str
    frames: Tensor | list[Path]
    boxes: Tensor
    absent: Tensor | None = None
    attributes: tuple[str, ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        self.boxes = torch.as_tensor(self.boxes, dtype=torch.float32)
        if self.boxes.ndim != 2 or self.boxes.shape[1] != 4:
            raise ValueError(
                f"{self.name}: boxes must be (T, 4) rows (x, y, w, h); "
                f"got {tuple(self.boxes.shape)}"
            )
        if torch.is_tensor(self.frames):
            if (
                self.frames.ndim != 4
                or self.frames.shape[-1] != 3
                or self.frames.dtype != torch.uint8
            ):
                raise ValueError(
                    f"{self.name}: frames must be a uint8 (T, H, W, 3) tensor or a list of paths; "
                    f"got {self.frames.dtype} {tuple(self.frames.shape)}"
                )
        else:
            self.frames = [Path(p) for p in self.frames]
        if len(self.frames) != len(self.boxes):
            raise ValueError(
                f"{self.name}: {len(self.frames)} frames but {len(self.boxes)} boxes; every frame "
                f"needs one ground-truth row"
            )
        if self.absent is not None:
            self.absent = torch.as_tensor(self.absent, dtype=torch.bool)
            if self.absent.shape != (len(self.boxes),):
                raise ValueError(
                    f"{self.name}: absent must be ({len(self.boxes)},); "
                    f"got {tuple(self.absent.shape)}"
                )

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def in_memory(self) -> bool:
        return torch.is_tensor(self.frames)

    def frame(self, index: int) -> Tensor:
        """Frame ``index`` as uint8 (H, W, 3); files are read on demand (not cached)."""
        if self.in_memory:
            return self.frames[index]
        return load_frame(self.frames[index])

    def load(self) -> Sequence:
        """This sequence with every frame read into one uint8 (T, H, W, 3) tensor."""
        if self.in_memory:
            return self
        frames = torch.stack([load_frame(p) for p in self.frames])
        return Sequence(
            name=self.name,
            frames=frames,
            boxes=self.boxes,
            absent=self.absent,
            attributes=self.attributes,
            source=self.source,
        )

    def visible(self) -> Tensor:
        """(T,) bool: target visible and ground truth valid (finite, positive w and h)."""
        valid = torch.isfinite(self.boxes).all(1) & (self.boxes[:, 2] > 0) & (self.boxes[:, 3] > 0)
        if self.absent is not None:
            valid &= ~self.absent
        return valid


# ---------------------------------------------------------------------------------------------
# procedural sequences

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


# ---------------------------------------------------------------------------------------------
# writers


def _save_jpg(frame: Tensor, path: Path) -> None:
    from PIL import Image

    Image.fromarray(frame.numpy()).save(path, quality=95)


def _box_lines(boxes: Tensor, sep: str) -> str:
    return "".join(sep.join(f"{v:.4f}" for v in row.tolist()) + "\n" for row in boxes)


def write_got10k(sequences: Iterable[Sequence], root: str | Path, *, split: str = "train") -> Path:
    """Store sequences in the GOT-10k layout under ``root/split``.

    Writes ``list.txt``, and per sequence ``00000001.jpg ...``, ``groundtruth.txt`` (x,y,w,h,
    comma separated), ``absence.label`` (0/1 per frame), ``cover.label`` (0 where absent, else 8:
    GOT-10k's cover scale is 0..8) and ``meta_info.ini`` (a header line, then ``key: value`` lines,
    with ``resolution: (W, H)`` as the toolkit reads it).

    Returns:
        The split folder.
    """
    out = Path(root) / split
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for seq in sequences:
        folder = out / seq.name
        folder.mkdir(exist_ok=True)
        for t in range(len(seq)):
            _save_jpg(seq.frame(t), folder / f"{t + 1:08d}.jpg")
        (folder / "groundtruth.txt").write_text(_box_lines(seq.boxes, ","))
        absent = seq.absent if seq.absent is not None else torch.zeros(len(seq), dtype=torch.bool)
        (folder / "absence.label").write_text("".join(f"{int(a)}\n" for a in absent))
        (folder / "cover.label").write_text("".join(f"{0 if a else 8}\n" for a in absent))
        h, w = seq.frame(0).shape[:2]
        tags = ", ".join(seq.attributes)
        (folder / "meta_info.ini").write_text(
            f"[METAINFO]\nresolution: ({w}, {h})\nattributes: {tags}\nsource: {seq.source}\n"
        )
        names.append(seq.name)
    (out / "list.txt").write_text("".join(n + "\n" for n in names))
    return out


def write_otb(sequences: Iterable[Sequence], root: str | Path) -> Path:
    """Store sequences in the OTB-2015 layout: ``root/<seq>/img/0001.jpg ...`` and
    ``root/<seq>/groundtruth_rect.txt`` (x,y,w,h, comma separated). Returns ``root``."""
    root = Path(root)
    for seq in sequences:
        img = root / seq.name / "img"
        img.mkdir(parents=True, exist_ok=True)
        for t in range(len(seq)):
            _save_jpg(seq.frame(t), img / f"{t + 1:04d}.jpg")
        (root / seq.name / "groundtruth_rect.txt").write_text(_box_lines(seq.boxes, ","))
    return root


# ---------------------------------------------------------------------------------------------
# readers


def read_boxes(path: str | Path) -> Tensor:
    """Read an annotation file of ``x, y, w, h`` rows as float32 (T, 4).

    Accepts commas, tabs or spaces as separators (OTB mixes them) and ``NaN`` entries (UAV123
    marks out-of-view frames that way); blank lines are skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {path} does not exist")
    rows = []
    for i, line in enumerate(path.read_text().splitlines()):
        parts = [p for p in re.split(r"[,\s]+", line.strip()) if p]
        if not parts:
            continue
        if len(parts) != 4:
            raise ValueError(f"{path}, line {i + 1}: expected 4 values x,y,w,h; got {line!r}")
        try:
            rows.append([float(p) for p in parts])
        except ValueError:
            raise ValueError(f"{path}, line {i + 1}: not numbers: {line!r}") from None
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)


def _read_flags(path: Path, *, num: int) -> Tensor:
    """0/1 flags, one per frame: one per line (GOT-10k) or one comma-separated row (LaSOT)."""
    values = [int(float(v)) for v in re.split(r"[,\s]+", path.read_text().strip()) if v]
    if len(values) != num:
        raise ValueError(f"{path}: {len(values)} flags for {num} frames; expected one per frame")
    return torch.tensor(values, dtype=torch.bool)


def _dataset_root(root: str | Path | None, name: str, layout: str) -> Path:
    base = data_root(root) if root is not None else data_root(None) / name
    if not base.is_dir():
        raise FileNotFoundError(f"{name} folder {base} does not exist; expected layout: {layout}")
    return base


def _frames(folder: Path, pattern: str, *, num: int, layout: str, start: int = 1) -> list[Path]:
    frames = [folder / pattern.format(start + i) for i in range(num)]
    missing = [p for p in (frames[0], frames[-1]) if not p.is_file()] if frames else [folder]
    if missing:
        raise FileNotFoundError(f"frame {missing[0]} does not exist; expected layout: {layout}")
    return frames


def _names_from(names: Iterable[str] | None, available: list[str], where: Path) -> list[str]:
    if names is None:
        return available
    names = list(names)
    unknown = sorted(set(names) - set(available))
    if unknown:
        raise ValueError(f"sequences {unknown} are not in {where}; available: {available[:10]}...")
    return names


_OTB_LAYOUT = "root/<seq>/img/0001.jpg ... and root/<seq>/groundtruth_rect.txt"


def read_otb(
    root: str | Path | None = None, *, names: Iterable[str] | None = None
) -> list[Sequence]:
    """Read OTB-2015 sequences (frames read lazily).

    Args:
        root: the OTB folder; default ``$FRUGALCV_DATA/OTB2015``.
        names: sequences to read; default every folder that holds ``groundtruth_rect.txt``.

    Multi-target folders (Jogging, Skating2) hold ``groundtruth_rect.1.txt`` and ``.2.txt``; each
    becomes a sequence ``<seq>.1`` / ``<seq>.2``. The OTB toolkit's per-sequence frame trims
    (David starts at frame 300, ...) are not applied: pass trimmed copies if you need them.
    """
    base = _dataset_root(root, "OTB2015", _OTB_LAYOUT)
    entries: dict[str, tuple[Path, Path]] = {}
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        for gt in sorted(folder.glob("groundtruth_rect*.txt")):
            suffix = gt.name[len("groundtruth_rect") : -len(".txt")]
            entries[folder.name + suffix] = (folder, gt)
    if not entries:
        raise FileNotFoundError(f"no OTB sequences in {base}; expected layout: {_OTB_LAYOUT}")
    out = []
    for name in _names_from(names, sorted(entries), base):
        folder, gt = entries[name]
        boxes = read_boxes(gt)
        frames = _frames(folder / "img", "{:04d}.jpg", num=len(boxes), layout=_OTB_LAYOUT)
        out.append(Sequence(name=name, frames=frames, boxes=boxes, source=f"OTB2015/{name}"))
    return out


_GOT_LAYOUT = (
    "root/<split>/list.txt, root/<split>/<seq>/00000001.jpg ..., root/<split>/<seq>/groundtruth.txt"
)


def read_got10k(
    root: str | Path | None = None, *, split: str = "train", names: Iterable[str] | None = None
) -> list[Sequence]:
    """Read a GOT-10k split (frames read lazily).

    ``absent`` comes from ``absence.label`` when present. The test split's ``groundtruth.txt``
    holds only the first frame's box; its remaining rows are NaN here.

    Args:
        root: the GOT-10k folder (holding ``train/``, ``val/``, ``test/``); default
            ``$FRUGALCV_DATA/GOT-10k``.
        split: "train", "val" or "test".
        names: sequences to read; default every name in ``list.txt``.
    """
    base = _dataset_root(root, "GOT-10k", _GOT_LAYOUT)
    listing = base / split / "list.txt"
    if not listing.is_file():
        raise FileNotFoundError(f"{listing} does not exist; expected layout: {_GOT_LAYOUT}")
    available = [n.strip() for n in listing.read_text().splitlines() if n.strip()]
    out = []
    for name in _names_from(names, available, listing):
        folder = base / split / name
        boxes = read_boxes(folder / "groundtruth.txt")
        num = len(sorted(folder.glob("*.jpg")))
        if num == 0:
            raise FileNotFoundError(f"no frames in {folder}; expected layout: {_GOT_LAYOUT}")
        if len(boxes) < num:  # test split: first frame only
            boxes = torch.cat([boxes, torch.full((num - len(boxes), 4), float("nan"))])
        absent = None
        if (folder / "absence.label").is_file():
            absent = _read_flags(folder / "absence.label", num=num)
        frames = _frames(folder, "{:08d}.jpg", num=num, layout=_GOT_LAYOUT)
        out.append(
            Sequence(
                name=name,
                frames=frames,
                boxes=boxes,
                absent=absent,
                source=f"GOT-10k/{split}/{name}",
            )
        )
    return out


_LASOT_LAYOUT = (
    "root/<category>/<category>-<k>/img/00000001.jpg ..., groundtruth.txt, full_occlusion.txt, "
    "out_of_view.txt"
)


def read_lasot(
    root: str | Path | None = None, *, names: Iterable[str] | None = None
) -> list[Sequence]:
    """Read LaSOT sequences (frames read lazily); ``absent = full_occlusion | out_of_view``.

    Args:
        root: the LaSOT folder holding one folder per category; default ``$FRUGALCV_DATA/LaSOT``.
        names: sequence names such as "airplane-1" (e.g. the lines of the protocol's
            ``testing_set.txt``); default every sequence found.
    """
    base = _dataset_root(root, "LaSOT", _LASOT_LAYOUT)
    available = sorted(
        p.name
        for cat in base.iterdir()
        if cat.is_dir()
        for p in cat.iterdir()
        if (p / "groundtruth.txt").is_file()
    )
    if not available:
        raise FileNotFoundError(f"no LaSOT sequences in {base}; expected layout: {_LASOT_LAYOUT}")
    out = []
    for name in _names_from(names, available, base):
        folder = base / name.rsplit("-", 1)[0] / name
        boxes = read_boxes(folder / "groundtruth.txt")
        absent = torch.zeros(len(boxes), dtype=torch.bool)
        for flag in ("full_occlusion.txt", "out_of_view.txt"):
            if not (folder / flag).is_file():
                raise FileNotFoundError(
                    f"{folder / flag} does not exist; expected: {_LASOT_LAYOUT}"
                )
            absent |= _read_flags(folder / flag, num=len(boxes))
        frames = _frames(folder / "img", "{:08d}.jpg", num=len(boxes), layout=_LASOT_LAYOUT)
        out.append(
            Sequence(name=name, frames=frames, boxes=boxes, absent=absent, source=f"LaSOT/{name}")
        )
    return out


_UAV_LAYOUT = "root/data_seq/UAV123/<seq>/000001.jpg ... and root/anno/UAV123/<seq>.txt"


def read_uav123(
    root: str | Path | None = None,
    *,
    names: Iterable[str] | None = None,
    start_frames: dict[str, tuple[str, int]] | None = None,
) -> list[Sequence]:
    """Read UAV123 sequences (frames read lazily); NaN rows (target out of view) are ``absent``.

    In the release, a few annotation files are parts of one longer video:
    ``anno/UAV123/bird1_2.txt`` annotates ``data_seq/UAV123/bird1/`` from some frame on. The
    start frames live in the benchmark's ``configSeqs.m``; pass them as
    ``start_frames={"bird1_2": ("bird1", first_frame), ...}`` (1-based).
    A part without an entry and without its own frame folder is an error that says so.

    Args:
        root: the UAV123 folder; default ``$FRUGALCV_DATA/UAV123``.
        names: sequences to read; default every ``anno/UAV123/*.txt``.
    """
    base = _dataset_root(root, "UAV123", _UAV_LAYOUT)
    anno = base / "anno" / "UAV123"
    if not anno.is_dir():
        raise FileNotFoundError(f"{anno} does not exist; expected layout: {_UAV_LAYOUT}")
    available = sorted(p.stem for p in anno.glob("*.txt"))
    start_frames = dict(start_frames or {})
    out = []
    for name in _names_from(names, available, anno):
        boxes = read_boxes(anno / f"{name}.txt")
        folder, start = base / "data_seq" / "UAV123" / name, 1
        if name in start_frames:
            video, start = start_frames[name]
            folder = base / "data_seq" / "UAV123" / video
        elif not folder.is_dir():
            raise FileNotFoundError(
                f"{folder} does not exist; expected layout: {_UAV_LAYOUT}. If {name} is a part of "
                f"a longer video, pass start_frames={{'{name}': (video, first_frame)}} from the "
                f"benchmark's configSeqs.m"
            )
        frames = _frames(folder, "{:06d}.jpg", num=len(boxes), layout=_UAV_LAYOUT, start=start)
        absent = ~torch.isfinite(boxes).all(1)
        out.append(
            Sequence(name=name, frames=frames, boxes=boxes, absent=absent, source=f"UAV123/{name}")
        )
    return out


_TNET_LAYOUT = "root/TRAIN_<k>/frames/<seq>/0.jpg ... and root/TRAIN_<k>/anno/<seq>.txt"


def read_trackingnet(
    root: str | Path | None = None,
    *,
    chunks: Iterable[str] = ("TRAIN_0",),
    names: Iterable[str] | None = None,
) -> list[Sequence]:
    """Read TrackingNet chunks (frames read lazily; frame files are numbered from 0, unpadded).

    The TEST chunk's annotation files hold only the first frame's box; the remaining rows are NaN.

    Args:
        root: the TrackingNet folder; default ``$FRUGALCV_DATA/TrackingNet``.
        chunks: chunk folders, e.g. ("TRAIN_0", "TRAIN_1") or ("TEST",).
        names: sequences to read (within the chunks); default all.
    """
    base = _dataset_root(root, "TrackingNet", _TNET_LAYOUT)
    entries: dict[str, Path] = {}
    for chunk in chunks:
        anno = base / chunk / "anno"
        if not anno.is_dir():
            raise FileNotFoundError(f"{anno} does not exist; expected layout: {_TNET_LAYOUT}")
        entries.update({p.stem: base / chunk for p in sorted(anno.glob("*.txt"))})
    out = []
    for name in _names_from(names, sorted(entries), base):
        chunk = entries[name]
        boxes = read_boxes(chunk / "anno" / f"{name}.txt")
        folder = chunk / "frames" / name
        num = len(list(folder.glob("*.jpg"))) if folder.is_dir() else 0
        if num == 0:
            raise FileNotFoundError(f"no frames in {folder}; expected layout: {_TNET_LAYOUT}")
        if len(boxes) < num:
            boxes = torch.cat([boxes, torch.full((num - len(boxes), 4), float("nan"))])
        frames = _frames(folder, "{}.jpg", num=num, layout=_TNET_LAYOUT, start=0)
        out.append(
            Sequence(
                name=name, frames=frames, boxes=boxes, source=f"TrackingNet/{chunk.name}/{name}"
            )
        )
    return out
