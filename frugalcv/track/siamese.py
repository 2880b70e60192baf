"""ALT's tracker, scaled for CPUs: a tiny CNN, a Siamese correlation classifier and a box head
trained with the Tversky loss.

Di Yuan, Xiaojun Chang, Qiao Liu, Yi Yang, Dehua Wang, Minglei Shu, Zhenyu He, Guangming Shi,
"Active Learning for Deep Visual Tracking", IEEE TNNLS 2023, arXiv 2110.13259. No code is
published and only the abstract is public: it names a deep tracker whose CNN is trained on
actively selected frames and "a Tversky loss to improve the bounding box estimation".

Architecture (a reconstruction; see docs/methods/alt.md):

- `TinyBackbone`: three 3x3 conv-BN-ReLU blocks with two 2x2 max-pools (total stride 4),
  shared by template (32 px) and search (64 px) crops: features (B, C, 8, 8) and (B, C, 16, 16).
- Target localisation: depth-wise cross-correlation of the template feature with the search
  feature (SiamRPN++'s ``xcorr_depthwise``), giving (B, C, R, R) with R = 9; a classification
  branch maps it to a (B, R, R) score map trained with SiamFC's balanced logistic loss (positives
  within ``pos_radius`` px of the target centre).
- Box estimation: a regression branch predicts, at every response location (px, py), the
  distances (l, t, r, b) to the box sides (FCOS / SiamCAR style), so the box is
  ``(px - l, py - t, px + r, py + b)``; it is trained at the positive locations with the Tversky
  loss on **box overlap** (`frugalcv.track.boxes.box_tversky_loss`, areas as set sizes).

Equation (Tversky, per positive location)::

    S = |P n G| / (|P n G| + alpha |P \\ G| + beta |G \\ P|),   L_box = mean(1 - S)
    L = L_cls + box_weight * L_box

Differences from the paper:
    - The base tracker is not named in the abstract. The authors' previous tracker (DIoUTrack,
      JVCIR 2021) is ATOM-style, with an IoU-Net estimation head and an online classifier
      optimised by conjugate gradient. Here the classifier is an offline-trained Siamese
      correlation (SiamFC-like) and boxes are regressed directly; both fit 2 CPU cores.
    - The Tversky loss is applied to predicted boxes (1 - S); an IoU-Net head that regresses the
      Tversky score of jittered proposals is the other reading and is not implemented.
    - alpha = 0.3, beta = 0.7 (the trade-off Salehi et al. 2017 report for lesion segmentation,
      noted from memory in the research notes) are our defaults; ALT's values are unknown.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from frugalcv.core.measure import to_module
from frugalcv.core.task import Task
from frugalcv.data.tracking import Sequence
from frugalcv.track.boxes import box_iou, box_tversky_loss, xywh_to_xyxy, xyxy_to_xywh
from frugalcv.track.crops import CONTEXT, crop_resize, frame_to_float, template_side

__all__ = [
    "SiamBoxNet",
    "SiamTracker",
    "TinyBackbone",
    "TrackerTask",
    "balanced_logistic_loss",
    "frame_features",
    "response_locations",
    "scaled_l1_box_loss",
    "xcorr_depthwise",
]

BoxLoss = Literal["tversky", "l1", "iou"]
BOX_LOSSES: tuple[str, ...] = ("tversky", "l1", "iou")


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)
    )


class TinyBackbone(nn.Module):
    """conv-BN-ReLU x3 with 2x2 max-pools after the first two: stride 4, padding keeps sizes.

    A (B, 3, H, W) input in [0, 1] gives (B, channels[-1], H / 4, W / 4); the receptive field of
    feature cell k is centred at pixel ``4 k + 2``.
    """

    stride = 4

    def __init__(self, *, channels: tuple[int, int, int] = (16, 32, 32)) -> None:
        super().__init__()
        c0, c1, c2 = channels
        self.features = nn.Sequential(
            _block(3, c0), nn.MaxPool2d(2), _block(c0, c1), nn.MaxPool2d(2), _block(c1, c2)
        )
        self.out_channels = c2

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x - 0.5)


def xcorr_depthwise(x: Tensor, z: Tensor) -> Tensor:
    """Depth-wise cross-correlation: each channel of ``z`` slides over the same channel of ``x``.

    Args:
        x: (B, C, Hx, Wx) search feature.
        z: (B, C, Hz, Wz) template feature (the kernel).

    Returns:
        (B, C, Hx - Hz + 1, Wx - Wz + 1).
    """
    b, c = z.shape[:2]
    if x.shape[:2] != (b, c):
        raise ValueError(f"x and z need equal (B, C); got {tuple(x.shape)} and {tuple(z.shape)}")
    out = F.conv2d(
        x.reshape(1, b * c, *x.shape[2:]), z.reshape(b * c, 1, *z.shape[2:]), groups=b * c
    )
    return out.reshape(b, c, *out.shape[2:])  # (B, C, R, R)


def response_locations(num: int, *, stride: int, x_size: int) -> Tensor:
    """(num,) pixel coordinates in the search crop of the response cells along one axis.

    Cell r sits at ``x_size / 2 + stride * (r - (num - 1) / 2)``: the middle cell is the crop
    centre (template and search centres aligned). For R = 9, stride 4, x_size 64: 16, 20, ..., 48.
    """
    return x_size / 2 + stride * (torch.arange(num, dtype=torch.float32) - (num - 1) / 2)


class SiamBoxNet(nn.Module):
    """Template/search Siamese network with a score map and per-location boxes.

    Args:
        channels: backbone widths.
        z_size: template crop side (px); x_size: search crop side (px). x_size - z_size must be
            a multiple of the stride.
        box_scale: distances are ``box_scale * exp(raw)`` px, so an untrained head predicts a
            2 * box_scale square (our choice: 8 px ~ a target's half size at z_size 32).
    """

    def __init__(
        self,
        *,
        channels: tuple[int, int, int] = (16, 32, 32),
        z_size: int = 32,
        x_size: int = 64,
        box_scale: float = 8.0,
    ) -> None:
        super().__init__()
        self.backbone = TinyBackbone(channels=channels)
        s = self.backbone.stride
        if z_size % s or x_size % s or x_size <= z_size:
            raise ValueError(
                f"z_size and x_size must be multiples of the stride {s} with x_size > z_size; "
                f"got {z_size}, {x_size}"
            )
        self.z_size, self.x_size, self.box_scale = z_size, x_size, box_scale
        self.num_cells = (x_size - z_size) // s + 1
        c = self.backbone.out_channels
        self.adjust_z = nn.Conv2d(c, c, 1)
        self.adjust_x = nn.Conv2d(c, c, 1)
        self.corr_norm = nn.BatchNorm2d(c)
        self.cls_head = nn.Sequential(_block(c, c), nn.Conv2d(c, 1, 1))
        self.box_head = nn.Sequential(_block(c, c), nn.Conv2d(c, 4, 1))
        nn.init.zeros_(self.box_head[-1].weight)
        nn.init.zeros_(self.box_head[-1].bias)
        loc = response_locations(self.num_cells, stride=s, x_size=x_size)
        self.register_buffer("locations", loc, persistent=False)

    def embed_template(self, template: Tensor) -> Tensor:
        """(B, 3, z, z) -> (B, C, z/4, z/4) correlation kernel."""
        return self.adjust_z(self.backbone(template))

    def head(self, kernel: Tensor, search: Tensor) -> dict[str, Tensor]:
        """Score map and boxes for search crops given template kernels.

        Returns:
            ``score`` (B, R, R) logits; ``boxes`` (B, R, R, 4) xyxy in search-crop pixels.
        """
        corr = self.corr_norm(xcorr_depthwise(self.adjust_x(self.backbone(search)), kernel))
        score = self.cls_head(corr)[:, 0]  # (B, R, R)
        dist = self.box_scale * self.box_head(corr).clamp(max=6.0).exp()  # (B, 4, R, R)
        py, px = self.locations[:, None], self.locations[None, :]  # (R, 1), (1, R)
        l, t, r, b = dist.unbind(1)
        boxes = torch.stack([px - l, py - t, px + r, py + b], dim=-1)  # (B, R, R, 4)
        return {"score": score, "boxes": boxes}

    def forward(self, template: Tensor, search: Tensor) -> dict[str, Tensor]:
        return self.head(self.embed_template(template), search)


def balanced_logistic_loss(score: Tensor, positive: Tensor) -> Tensor:
    """SiamFC's logistic loss with positives and negatives weighted 1/2 each per sample.

    Args:
        score: (B, R, R) logits.
        positive: (B, R, R) bool labels.
    """
    pos = positive.float()
    n_pos = pos.sum((1, 2), keepdim=True).clamp_min(1)
    n_neg = (1 - pos).sum((1, 2), keepdim=True).clamp_min(1)
    weight = 0.5 * pos / n_pos + 0.5 * (1 - pos) / n_neg
    bce = F.binary_cross_entropy_with_logits(score, pos, reduction="none")
    return (weight * bce).sum((1, 2)).mean()


class TrackerTask(Task):
    """Trains `SiamBoxNet` on (template, search, box) pairs (`frugalcv.track.crops.make_pairs`).

    A batch is ``(template (B, 3, z, z), search (B, 3, x, x), box (B, 4))`` with the target box
    (x, y, w, h) in search-crop pixels, or a dict with those keys.

    Args:
        model: the network (default: a fresh `SiamBoxNet`).
        box_loss: "tversky" (ALT: ``1 - S`` with ``alpha``, ``beta``), "iou" (``1 - IoU``, the
            Tversky loss at alpha = beta = 1, as UnitBox / SiamCAR / FCOS train their boxes) or
            "l1" (`scaled_l1_box_loss`: corner L1 divided by the target's side, as SiamRPN-style
            coordinate regression; the baselines of the loss comparison).
        alpha, beta: Tversky weights of false-positive and false-negative area ("tversky" only).
        box_weight: weight of the box loss against the classification loss (ours: 1).
        pos_radius: response cells within this many search-crop pixels of the target centre are
            positives (SiamFC: 16 px at stride 8 = 2 cells; here 8 px at stride 4 = 2 cells).
    """

    monitor = ("iou", "max")

    def __init__(
        self,
        *,
        model: SiamBoxNet | None = None,
        box_loss: BoxLoss = "tversky",
        alpha: float = 0.3,
        beta: float = 0.7,
        box_weight: float = 1.0,
        pos_radius: float = 8.0,
    ) -> None:
        super().__init__()
        if box_loss not in BOX_LOSSES:
            raise ValueError(f"box_loss must be one of {', '.join(BOX_LOSSES)}; got {box_loss!r}")
        self.model = model if model is not None else SiamBoxNet()
        self.box_loss = box_loss
        self.alpha, self.beta = alpha, beta
        self.box_weight, self.pos_radius = box_weight, pos_radius

    @staticmethod
    def _unpack(batch) -> tuple[Tensor, Tensor, Tensor]:
        if isinstance(batch, dict):
            return batch["template"], batch["search"], batch["box"]
        template, search, box = batch
        return template, search, box

    def _losses(self, batch) -> tuple[dict[str, Tensor], dict[str, Tensor], Tensor]:
        template, search, box = self._unpack(batch)
        out = self.model(template, search)
        loc = self.model.locations
        centre = box[:, :2] + box[:, 2:] / 2  # (B, 2)
        dx = loc[None, None, :] - centre[:, 0, None, None]  # (B, 1, R)
        dy = loc[None, :, None] - centre[:, 1, None, None]  # (B, R, 1)
        positive = dx.pow(2) + dy.pow(2) <= self.pos_radius**2  # (B, R, R)
        cls_loss = balanced_logistic_loss(out["score"], positive)
        target = xywh_to_xyxy(box)[:, None, None, :].expand_as(out["boxes"])  # (B, R, R, 4)
        pred, target = out["boxes"].reshape(-1, 4), target.reshape(-1, 4)  # (B*R*R, 4)
        weight = positive.reshape(-1).float()
        if self.box_loss == "l1":
            box_loss = scaled_l1_box_loss(pred, target, weight=weight)
        else:
            a, b = (self.alpha, self.beta) if self.box_loss == "tversky" else (1.0, 1.0)
            box_loss = box_tversky_loss(pred, target, alpha=a, beta=b, weight=weight)
        loss = cls_loss + self.box_weight * box_loss
        return {"loss": loss, "cls_loss": cls_loss, "box_loss": box_loss}, out, box

    def training_step(self, batch) -> dict[str, Tensor]:
        return self._losses(batch)[0]

    def validation_step(self, batch) -> dict[str, Tensor]:
        """Loss terms plus ``iou`` and ``centre_error`` (px) of the box at the score peak."""
        losses, out, box = self._losses(batch)
        b, r = out["score"].shape[0], out["score"].shape[1]
        peak = out["score"].reshape(b, -1).argmax(1)  # (B,)
        rows = torch.arange(b, device=peak.device)
        pred = out["boxes"].reshape(b, r * r, 4)[rows, peak]  # (B, 4) xyxy
        pred = xyxy_to_xywh(pred)
        err = (pred[:, :2] + pred[:, 2:] / 2 - box[:, :2] - box[:, 2:] / 2).norm(dim=1)
        return {
            **{k: v.detach() for k, v in losses.items()},
            "iou": box_iou(pred, box).mean(),
            "centre_error": err.mean(),
        }


def scaled_l1_box_loss(pred: Tensor, target: Tensor, *, weight: Tensor | None = None) -> Tensor:
    """Corner L1 divided by the target's side: ``sum_i |p_i - g_i| / (4 sqrt(w_g h_g))``.

    Dividing by ``sqrt(w h)`` makes the loss scale-free, so a 2 px error on a 16 px target costs
    what a 4 px error on a 32 px one does, and it stays on the scale of ``1 - IoU`` (a shift of 1/8
    of the side along one axis: L1 0.0625, 1 - IoU 0.22).
    Worked example: P = (0, 0, 10, 10), G = (2, 0, 12, 10) corners: (2 + 0 + 2 + 0) / (4 * 10)
    = 0.1.

    Args:
        pred, target: (N, 4) xyxy corners.
        weight: (N,) non-negative weights; the loss is the weighted mean (plain mean if None).

    Differences: ALT does not compare against L1; this is the box-coordinate regression loss
    of the loss comparison (reconstruction, docs/methods/alt.md).
    """
    side = ((target[:, 2] - target[:, 0]) * (target[:, 3] - target[:, 1])).clamp_min(1e-6).sqrt()
    loss = (pred - target).abs().sum(-1) / (4 * side)  # (N,)
    if weight is None:
        return loss.mean()
    return (loss * weight).sum() / weight.sum().clamp_min(1e-7)


def _hann(n: int) -> Tensor:
    w = torch.hann_window(n + 2, periodic=False)[1:-1]  # strictly positive inside
    return w[:, None] * w[None, :]


class SiamTracker:
    """`Tracker` protocol around a trained `SiamBoxNet` (SiamFC/SiamRPN-style inference).

    Each frame: a search crop centred on the last centre with side ``s_x`` (from the last size);
    the score map (sigmoid) is blended with a Hann window, ``(1 - w) p + w hann``; the box at the
    peak gives the new centre; the size moves towards the predicted size by ``size_lr * p_peak``
    (SiamRPN's damped size update). ``confidence`` is the sigmoid score at the peak.

    Args:
        model: a trained `SiamBoxNet` (switched to eval mode).
        window_influence: w above (ours: 0.25; SiamFC uses 0.176 on its upsampled map).
        size_lr: size learning rate (ours: 0.5; SiamRPN uses 0.295-0.4).
        context: SiamFC context amount for the crop sides.
        min_size: smallest box side in pixels.
    """

    def __init__(
        self,
        model: SiamBoxNet,
        *,
        window_influence: float = 0.25,
        size_lr: float = 0.5,
        context: float = CONTEXT,
        min_size: float = 4.0,
    ) -> None:
        if not 0 <= window_influence <= 1:
            raise ValueError(f"window_influence must be in [0, 1]; got {window_influence}")
        self.model = model.eval()
        self.window_influence, self.size_lr = window_influence, size_lr
        self.context, self.min_size = context, min_size
        self.window = _hann(model.num_cells)
        self.confidence = 1.0

    @torch.no_grad()
    def initialize(self, frame: Tensor, box: Tensor) -> None:
        box = torch.as_tensor(box, dtype=torch.float32)
        image = frame_to_float(frame)[None]
        self.image_size = torch.tensor([image.shape[3], image.shape[2]], dtype=torch.float32)
        self.centre = box[:2] + box[2:] / 2
        self.size = box[2:].clone()
        side = template_side(self.size, context=self.context)
        crop = crop_resize(image, self.centre[None], side[None], size=self.model.z_size)
        self.kernel = self.model.embed_template(to_module(crop, self.model))  # model's device
        self.confidence = 1.0

    @torch.no_grad()
    def track(self, frame: Tensor) -> Tensor:
        m = self.model
        image = frame_to_float(frame)[None]
        side = template_side(self.size, context=self.context) * m.x_size / m.z_size
        crop = crop_resize(image, self.centre[None], side[None], size=m.x_size)
        out = m.head(self.kernel, to_module(crop, m))
        # the tracker's state (centre, size, window) stays float32 on the CPU
        prob = torch.sigmoid(out["score"][0]).float().cpu()  # (R, R)
        blended = (1 - self.window_influence) * prob + self.window_influence * self.window
        peak = int(blended.argmax())
        r = m.num_cells
        pred = xyxy_to_xywh(out["boxes"][0].float().cpu().reshape(r * r, 4)[peak])  # crop pixels
        scale = side / m.x_size
        origin = self.centre - side / 2
        centre = origin + (pred[:2] + pred[2:] / 2) * scale
        self.confidence = float(prob.reshape(-1)[peak])
        lr = self.size_lr * self.confidence
        size = (1 - lr) * self.size + lr * pred[2:] * scale
        self.size = torch.maximum(torch.minimum(size, self.image_size), torch.tensor(self.min_size))
        self.centre = torch.minimum(centre.clamp_min(0), self.image_size)
        return torch.cat([self.centre - self.size / 2, self.size])


@torch.no_grad()
def frame_features(
    backbone: nn.Module,
    sequence: Sequence,
    *,
    boxes: Tensor | None = None,
    size: int = 64,
    context: float = CONTEXT,
    batch_size: int = 64,
) -> Tensor:
    """Per-frame embeddings for active-learning selection: global-average-pooled features.

    Without ``boxes`` the whole frame is resized to ``size x size`` (no label needed); with
    ``boxes`` (T, 4), e.g. a tracker's predictions on unlabelled frames, a search-style crop
    (side ``2 s_z``) around each box is embedded instead.

    Returns:
        (T, C) float32.
    """
    was_training = backbone.training
    backbone.eval()
    feats = []
    for start in range(0, len(sequence), batch_size):
        idx = range(start, min(start + batch_size, len(sequence)))
        images = torch.stack([frame_to_float(sequence.frame(t)) for t in idx])
        if boxes is None:
            crops = F.interpolate(images, size=(size, size), mode="area")
        else:
            b = torch.as_tensor(boxes, dtype=torch.float32)[list(idx)]
            sides = 2 * template_side(b[:, 2:], context=context)
            crops = crop_resize(images, b[:, :2] + b[:, 2:] / 2, sides, size=size)
        feats.append(backbone(to_module(crops, backbone)).mean(dim=(2, 3)).float().cpu())
    backbone.train(was_training)
    return torch.cat(feats)
