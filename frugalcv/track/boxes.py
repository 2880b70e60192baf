"""Box geometry and the Tversky loss used by ALT's bounding-box head.

Boxes are ``(x, y, w, h)`` (OTB convention, continuous pixel coordinates: a box covers
``[x, x + w) x [y, y + h)``, area ``w * h``, centre ``(x + w / 2, y + h / 2)``) or ``(x0, y0, x1,
y1)`` corners where a function says so.

Tversky index (Tversky 1977; as a segmentation loss: Salehi, Erdogmus, Gholipour, "Tversky loss
function for image segmentation using 3D fully convolutional deep networks", MLMI 2017, arXiv
1706.05721) of a prediction P and a ground truth G::

    S(P, G) = |P n G| / (|P n G| + alpha |P \\ G| + beta |G \\ P|),     L = 1 - S

``|P \\ G|`` counts false positives (predicted, not true) and ``|G \\ P|`` false negatives. With
``alpha = beta = 1`` S is the Jaccard index / IoU (Tanimoto on binary sets); with ``alpha = beta =
0.5`` it is the Dice coefficient ``2|P n G| / (|P| + |G|)``.

ALT (Yuan et al., arXiv 2110.13259) says only that a Tversky loss improves bounding-box
estimation. Two readings are provided: `box_tversky_loss` on the overlap of axis-aligned boxes
(areas stand in for set sizes; this is what `frugalcv.track.siamese` trains with) and
`mask_tversky_loss` on soft (B, H, W) masks.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "box_area",
    "box_centre",
    "box_intersection",
    "box_iou",
    "box_masks",
    "box_tversky_index",
    "box_tversky_loss",
    "mask_tversky_index",
    "mask_tversky_loss",
    "xywh_to_xyxy",
    "xyxy_to_xywh",
]

# Added to the Tversky denominator so two empty sets give S = 0 instead of 0/0 (our choice; 1e-7
# is far below one pixel of area or mask mass).
_EPS = 1e-7


def _check_boxes(name: str, boxes: Tensor) -> None:
    if boxes.shape[-1] != 4:
        raise ValueError(f"{name} must have 4 values in its last dim; got {tuple(boxes.shape)}")


def xywh_to_xyxy(boxes: Tensor) -> Tensor:
    """(..., 4) ``(x, y, w, h)`` -> ``(x0, y0, x1, y1)`` with ``x1 = x + w`` (no -1 pixel)."""
    _check_boxes("boxes", boxes)
    x, y, w, h = boxes.unbind(-1)
    return torch.stack([x, y, x + w, y + h], dim=-1)


def xyxy_to_xywh(boxes: Tensor) -> Tensor:
    """(..., 4) ``(x0, y0, x1, y1)`` -> ``(x, y, w, h)``."""
    _check_boxes("boxes", boxes)
    x0, y0, x1, y1 = boxes.unbind(-1)
    return torch.stack([x0, y0, x1 - x0, y1 - y0], dim=-1)


def box_area(boxes: Tensor) -> Tensor:
    """(..., 4) xyxy -> (...) area, 0 for inverted boxes."""
    w = (boxes[..., 2] - boxes[..., 0]).clamp_min(0)
    h = (boxes[..., 3] - boxes[..., 1]).clamp_min(0)
    return w * h


def box_centre(boxes: Tensor) -> Tensor:
    """(..., 4) ``(x, y, w, h)`` -> (..., 2) centre ``(x + w / 2, y + h / 2)``."""
    _check_boxes("boxes", boxes)
    return boxes[..., :2] + boxes[..., 2:] / 2


def box_intersection(a: Tensor, b: Tensor) -> Tensor:
    """Element-wise intersection area of xyxy boxes (broadcast (..., 4) with (..., 4))."""
    _check_boxes("a", a)
    _check_boxes("b", b)
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    wh = (rb - lt).clamp_min(0)
    return wh[..., 0] * wh[..., 1]


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """Element-wise IoU of ``(x, y, w, h)`` boxes (continuous areas ``w * h``, no +1 pixel).

    Worked example: (0, 0, 10, 10) and (5, 0, 10, 10) overlap in 5 x 10 = 50, union 150, so
    IoU = 1/3. Two boxes of zero area give 0.
    """
    a, b = xywh_to_xyxy(a), xywh_to_xyxy(b)
    inter = box_intersection(a, b)
    union = box_area(a) + box_area(b) - inter
    return torch.where(union > 0, inter / union.clamp_min(_EPS), torch.zeros_like(union))


def box_tversky_index(pred: Tensor, target: Tensor, *, alpha: float, beta: float) -> Tensor:
    """Tversky index of axis-aligned boxes, areas as set sizes (element-wise, broadcast).

    ``S = I / (I + alpha (|P| - I) + beta (|G| - I))`` with I the intersection area, |P| the area
    of ``pred`` and |G| the area of ``target``. alpha = beta = 1: IoU; alpha = beta = 0.5: Dice.

    Worked example: corners P = (0, 0, 10, 10) and G = (5, 0, 15, 10): I = 50 and
    |P \\ G| = |G \\ P| = 50, so IoU = 50/150 = 1/3 and Dice = 50/(50 + 25 + 25) = 1/2. With
    P = (0, 0, 10, 10) and a larger G = (0, 0, 20, 10): I = 100, |P \\ G| = 0, |G \\ P| = 100,
    and alpha = 0.3, beta = 0.7 give 100/170 ~ 0.588 (IoU 0.5, Dice 2/3): beta > alpha
    penalises the missed target area more.

    Args:
        pred: (..., 4) predicted boxes as xyxy corners.
        target: (..., 4) ground-truth boxes as xyxy corners.
        alpha: weight of the false-positive area ``|P \\ G|`` (>= 0).
        beta: weight of the false-negative area ``|G \\ P|`` (>= 0).

    Returns:
        (...) S in [0, 1].
    """
    _check_weights(alpha, beta)
    inter = box_intersection(pred, target)
    fp = (box_area(pred) - inter).clamp_min(0)
    fn = (box_area(target) - inter).clamp_min(0)
    return inter / (inter + alpha * fp + beta * fn + _EPS)


def box_tversky_loss(
    pred: Tensor, target: Tensor, *, alpha: float, beta: float, weight: Tensor | None = None
) -> Tensor:
    """Mean of ``1 - box_tversky_index(pred, target)`` over boxes, optionally weighted.

    Args:
        pred, target: (N, 4) xyxy corners.
        weight: (N,) non-negative weights (e.g. a positive-location mask); the loss is
            ``sum(w (1 - S)) / max(sum(w), eps)``. None: plain mean.

    Returns:
        scalar loss; 0 when every weighted box is predicted exactly.
    """
    loss = 1.0 - box_tversky_index(pred, target, alpha=alpha, beta=beta)
    if weight is None:
        return loss.mean()
    return (loss * weight).sum() / weight.sum().clamp_min(_EPS)


def _check_weights(alpha: float, beta: float) -> None:
    if alpha < 0 or beta < 0 or alpha + beta == 0:
        raise ValueError(
            f"alpha and beta must be >= 0 and not both 0 (alpha = beta = 1: IoU, 0.5: Dice); "
            f"got alpha={alpha}, beta={beta}"
        )


def mask_tversky_index(pred: Tensor, target: Tensor, *, alpha: float, beta: float) -> Tensor:
    """Tversky index of soft masks (Salehi et al. 2017, eq. 3, with soft set sizes).

    ``|P n G| = sum p g``, ``|P \\ G| = sum p (1 - g)``, ``|G \\ P| = sum (1 - p) g`` over the
    trailing two dimensions. On binary masks of two boxes it equals `box_tversky_index` of the
    boxes (to the pixel grid).

    Args:
        pred: (B, H, W) soft prediction in [0, 1].
        target: (B, H, W) soft or binary ground truth in [0, 1].

    Returns:
        (B,) S in [0, 1].
    """
    _check_weights(alpha, beta)
    if pred.shape != target.shape or pred.ndim < 2:
        raise ValueError(
            f"pred and target must be masks of equal shape (B, H, W); got {tuple(pred.shape)} "
            f"and {tuple(target.shape)}"
        )
    dims = (-2, -1)
    inter = (pred * target).sum(dims)
    fp = (pred * (1 - target)).sum(dims)
    fn = ((1 - pred) * target).sum(dims)
    return inter / (inter + alpha * fp + beta * fn + _EPS)


def mask_tversky_loss(pred: Tensor, target: Tensor, *, alpha: float, beta: float) -> Tensor:
    """Mean over the batch of ``1 - mask_tversky_index(pred, target)``."""
    return (1.0 - mask_tversky_index(pred, target, alpha=alpha, beta=beta)).mean()


def box_masks(boxes: Tensor, *, height: int, width: int, sharpness: float = 0.0) -> Tensor:
    """Render ``(x, y, w, h)`` boxes as (B, H, W) masks over a pixel grid.

    Pixel (r, c) covers ``[c, c + 1) x [r, r + 1)``. With ``sharpness = 0`` the mask holds each
    pixel's exact covered fraction (area coverage), so ``mask.sum() == w * h`` for a box inside
    the grid; with ``sharpness > 0`` it is the product of two sigmoids of the signed distance to
    the box edges (differentiable in the box), ``sigmoid(s (px - x0)) sigmoid(s (x1 - px))`` ...
    at pixel centres ``px = c + 0.5``.

    Args:
        boxes: (B, 4) ``(x, y, w, h)``.
    """
    _check_boxes("boxes", boxes)
    x0, y0, x1, y1 = xywh_to_xyxy(boxes).unbind(-1)  # (B,) each
    cols = torch.arange(width, dtype=boxes.dtype, device=boxes.device)
    rows = torch.arange(height, dtype=boxes.dtype, device=boxes.device)
    if sharpness > 0:
        cx, cy = cols + 0.5, rows + 0.5
        mx = torch.sigmoid(sharpness * (cx - x0[:, None])) * torch.sigmoid(
            sharpness * (x1[:, None] - cx)
        )
        my = torch.sigmoid(sharpness * (cy - y0[:, None])) * torch.sigmoid(
            sharpness * (y1[:, None] - cy)
        )
    else:
        mx = (torch.minimum(cols + 1, x1[:, None]) - torch.maximum(cols, x0[:, None])).clamp(0, 1)
        my = (torch.minimum(rows + 1, y1[:, None]) - torch.maximum(rows, y0[:, None])).clamp(0, 1)
    return my[:, :, None] * mx[:, None, :]  # (B, H, W)
