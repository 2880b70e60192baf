"""Crop geometry for Siamese trackers and the (template, search, box) training pairs.

SiamFC (Bertinetto et al., ECCV-W 2016) crops a square around the target whose side covers the
box plus a context margin, ``s_z = sqrt((w + c (w + h)) (h + c (w + h)))`` with context amount
``c = 0.5``, resized to the template size; the search crop has the same centre and a side
``s_x = s_z * x_size / z_size``, so template and search share one pixel scale. Areas outside the
frame are filled with the frame's mean colour (SiamFC's padding).

Training pairs (ATOM / SiamFC style): a template frame and a search frame of the same sequence at
most ``max_gap`` frames apart, both drawn from the *labelled* frames only (this is where an
active-learning budget enters); the search crop is shifted and rescaled at random so the target is
not always centred.
"""

from __future__ import annotations

import math
from collections.abc import Sequence as SequenceT

import torch
import torch.nn.functional as F
from torch import Tensor

from frugalcv.data.base import stream_generator
from frugalcv.data.tracking import Sequence

__all__ = ["crop_resize", "frame_to_float", "make_pairs", "template_side"]

# SiamFC's context amount (Bertinetto et al. 2016, section 2.4: p = (w + h) / 4 on each side).
CONTEXT = 0.5


def template_side(wh: Tensor, *, context: float = CONTEXT) -> Tensor:
    """(..., 2) target (w, h) -> (...) side of the square template crop in frame pixels.

    ``s_z = sqrt((w + c (w + h)) (h + c (w + h)))``; e.g. a 20 x 20 box with c = 0.5 gives 40.
    """
    pad = context * wh.sum(-1)
    return ((wh[..., 0] + pad) * (wh[..., 1] + pad)).clamp_min(1.0).sqrt()


def frame_to_float(frame: Tensor) -> Tensor:
    """uint8 (H, W, 3) (tensor or numpy) -> float32 (3, H, W) in [0, 1]."""
    frame = torch.as_tensor(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"a frame must be (H, W, 3); got {tuple(frame.shape)}")
    out = frame.permute(2, 0, 1).float()
    return out / 255.0 if frame.dtype == torch.uint8 else out


def crop_resize(images: Tensor, centres: Tensor, sides: Tensor, *, size: int) -> Tensor:
    """Square crops resampled bilinearly to ``size x size``, padded with the mean colour.

    Output pixel ``u`` samples the frame at ``x = cx - s / 2 + (u + 0.5) s / size`` (continuous
    coordinates, pixel i spans [i, i + 1)), so a box ``(x, y, w, h)`` maps into the crop as
    ``((x - cx + s / 2) * size / s, ..., w * size / s, h * size / s)``.

    Args:
        images: (B, 3, H, W) float frames (one per crop).
        centres: (B, 2) crop centres (cx, cy) in frame pixels.
        sides: (B,) crop sides in frame pixels.

    Returns:
        (B, 3, size, size).
    """
    if (
        images.ndim != 4
        or centres.shape != (images.shape[0], 2)
        or sides.shape != (images.shape[0],)
    ):
        raise ValueError(
            f"need images (B, 3, H, W), centres (B, 2), sides (B,); got {tuple(images.shape)}, "
            f"{tuple(centres.shape)}, {tuple(sides.shape)}"
        )
    b, _, h, w = images.shape
    theta = torch.zeros(b, 2, 3, dtype=images.dtype, device=images.device)
    theta[:, 0, 0] = sides / w
    theta[:, 0, 2] = 2 * centres[:, 0] / w - 1
    theta[:, 1, 1] = sides / h
    theta[:, 1, 2] = 2 * centres[:, 1] / h - 1
    grid = F.affine_grid(theta, [b, 1, size, size], align_corners=False)
    ones = torch.ones_like(images[:, :1])
    sampled = F.grid_sample(
        torch.cat([images, ones], 1),
        grid,
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )
    crop, inside = sampled[:, :3], sampled[:, 3:]
    mean = images.mean(dim=(2, 3), keepdim=True)
    return crop + (1 - inside) * mean


def _box_in_crop(box: Tensor, centre: Tensor, side: Tensor, size: int) -> Tensor:
    """(4,) frame box (x, y, w, h) -> the same box in crop pixels."""
    scale = size / side
    origin = centre - side / 2
    return torch.cat([(box[:2] - origin) * scale, box[2:] * scale])


def make_pairs(
    sequences: SequenceT[Sequence],
    *,
    num_pairs: int,
    seed: int = 0,
    labelled: SequenceT[Tensor] | None = None,
    max_gap: int = 20,
    z_size: int = 32,
    x_size: int = 64,
    context: float = CONTEXT,
    centre_jitter: float = 0.2,
    scale_jitter: float = 0.2,
) -> dict[str, Tensor]:
    """Sample (template crop, search crop, target box) pairs from labelled frames.

    The template frame is drawn uniformly from all labelled visible frames of all sequences (each
    label weighs the same); the search frame uniformly from the labelled visible frames of the same
    sequence within ``max_gap`` frames (itself only when it has no labelled neighbour). The search
    crop's centre is the target centre shifted by ``U(-centre_jitter, centre_jitter) * s_x`` per
    axis and its side is scaled by ``exp(U(-scale_jitter, scale_jitter))``.

    Defaults are ours, scaled down from ATOM's (``max_gap = 50``, search-area factor 5, output 288
    px; pytracking ``ltr/train_settings/bbreg/atom.py``) to 32/64 px crops for 2 CPU cores.

    Args:
        sequences: annotated sequences (in memory or lazily read).
        num_pairs: N.
        seed: the same seed gives the same pairs.
        labelled: per sequence, the frame indices whose box may be used (an active-learning
            selection); None uses every visible frame.

    Returns:
        ``template`` (N, 3, z_size, z_size) and ``search`` (N, 3, x_size, x_size) float32 in
        [0, 1], ``box`` (N, 4) target (x, y, w, h) in search-crop pixels.
    """
    if labelled is not None and len(labelled) != len(sequences):
        raise ValueError(
            f"labelled must hold one index tensor per sequence; got {len(labelled)} for "
            f"{len(sequences)} sequences"
        )
    pools = []
    for i, seq in enumerate(sequences):
        visible = seq.visible()
        idx = torch.arange(len(seq)) if labelled is None else torch.as_tensor(labelled[i]).long()
        if len(idx) and (idx.min() < 0 or idx.max() >= len(seq)):
            raise ValueError(f"labelled[{i}] holds indices outside 0..{len(seq) - 1} ({seq.name})")
        pools.append(idx[visible[idx]].sort().values)
    flat = [(i, int(t)) for i, pool in enumerate(pools) for t in pool]
    if not flat:
        raise ValueError("no labelled frame with a visible target: label at least one frame")
    gen = stream_generator(seed, 1)
    templates, searches, boxes = [], [], []
    for _ in range(num_pairs):
        s, t_z = flat[int(torch.randint(len(flat), (1,), generator=gen))]
        pool = pools[s]
        near = pool[(pool - t_z).abs() <= max_gap]
        near = near[near != t_z] if len(near) > 1 else near
        t_x = int(near[int(torch.randint(len(near), (1,), generator=gen))])
        seq = sequences[s]
        box_z, box_x = seq.boxes[t_z], seq.boxes[t_x]
        side_z = template_side(box_z[2:], context=context)
        centre_z = box_z[:2] + box_z[2:] / 2
        jitter = torch.rand(3, generator=gen) * 2 - 1
        side_x = template_side(box_x[2:], context=context) * x_size / z_size
        side_x = side_x * math.exp(scale_jitter * float(jitter[2]))
        centre_x = box_x[:2] + box_x[2:] / 2 + centre_jitter * side_x * jitter[:2]
        frame_z = frame_to_float(seq.frame(t_z))[None]
        frame_x = frame_z if t_x == t_z else frame_to_float(seq.frame(t_x))[None]
        templates.append(crop_resize(frame_z, centre_z[None], side_z[None], size=z_size)[0])
        searches.append(crop_resize(frame_x, centre_x[None], side_x[None], size=x_size)[0])
        boxes.append(_box_in_crop(box_x, centre_x, side_x, x_size))
    return {
        "template": torch.stack(templates),
        "search": torch.stack(searches),
        "box": torch.stack(boxes),
    }
