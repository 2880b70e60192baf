"""A two-stage detector whose box classifier scores regions against class semantic vectors.

torchvision's Faster R-CNN (region proposal network, RoIAlign, two-layer box head) with the
softmax classifier replaced by :class:`SemanticBoxPredictor`: a region's box feature ``r`` is
projected into the class-semantic space and scored by cosine similarity against every class's
semantic vector (attributes or name embeddings) plus one learned background embedding. Because
the classes enter only through their semantic vectors, unseen classes are scored at test time
by swapping the semantics matrix (:meth:`SemanticFasterRCNN.set_class_semantics`).

Box regression is class-agnostic (one set of 4 deltas per region): class-specific regressors
would have no trained weights for unseen classes (the unofficial ContrastZSD re-implementation
reuses seen-class deltas for unseen classes, which the research notes list as a weakness).

Label convention (torchvision's): detector labels are ``1..K`` indexing the rows of the current
semantics matrix, ``0`` is background. :class:`frugalcv.zsd.ContrastZSDTask` maps the global
class ids of a data set to and from this convention.

Cost (measured here, 2-thread CPU, 128 px, batch 8, see docs/methods/contrastzsd.md):
torchvision's ``fasterrcnn_mobilenet_v3_large_320_fpn`` with its default box head (1024-d,
512 sampled RoIs, 2000 train proposals) takes 2.2 s per training step; the defaults below
shrink the box head to 128-d, sample 64 RoIs and keep 100 proposals per image, and the
``"tiny"`` backbone (4 conv layers, one stride-8 map, no FPN) is the cheapest.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection import FasterRCNN, fasterrcnn_mobilenet_v3_large_320_fpn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import TwoMLPHead
from torchvision.ops import MultiScaleRoIAlign

__all__ = [
    "BACKBONES",
    "DetectorOutput",
    "SemanticBoxPredictor",
    "SemanticFasterRCNN",
    "TinyBackbone",
]

BACKBONES = ("tiny", "mobilenet_v3_fpn")

# torchvision's Faster R-CNN box-regression smooth-L1 beta (roi_heads.fastrcnn_loss).
_BOX_SMOOTH_L1_BETA = 1.0 / 9.0


class TinyBackbone(nn.Module):
    """Four 3x3 conv-BN-ReLU layers, one stride-8 feature map (no FPN).

    Args:
        out_channels: channels of the output map (torchvision reads ``self.out_channels``).
        width: channels of the first layer; later layers use 2x width.

    Shapes: ``x: (B, 3, H, W) -> (B, out_channels, H/8, W/8)``.
    """

    def __init__(self, *, out_channels: int = 64, width: int = 32) -> None:
        super().__init__()

        def block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            )

        self.body = nn.Sequential(
            block(3, width, 2),
            block(width, 2 * width, 2),
            block(2 * width, 2 * width, 2),
            block(2 * width, out_channels, 1),
        )
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class SemanticBoxPredictor(nn.Module):
    """Visual-to-semantic box classifier with a learned background embedding.

    ``v = normalize(P_v r)``; for class c with semantic vector ``w_c``, ``e_c = normalize(P_s w_c)``
    (``P_s`` is the identity when ``embed_dim`` is None, i.e. regions are projected straight into
    the semantic space); the background embedding ``e_0`` is a free parameter. Logits are
    ``s_c = <v, e_c> / temperature + bias_c`` over ``[background] + K classes``.

    Args:
        in_channels: box-feature size (the box head's representation size).
        class_semantics: (K, d) semantic vectors of the classes scored now.
        embed_dim: common-space size; None projects regions into the d-dim semantic space.
        temperature: divides the cosine scores (0.1, the temperature of the unofficial
            re-implementation's contrastive loss; our choice for the classifier too).

    Forward: ``r: (N, in_channels) -> (logits (N, 1 + K), box_deltas (N, 4 * (1 + K)))``; the
    deltas are one class-agnostic set repeated per class so torchvision's post-processing
    (which decodes one box per class) works unchanged.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        class_semantics: Tensor,
        embed_dim: int | None = None,
        temperature: float = 0.1,
    ) -> None:
        super().__init__()
        semantics = _check_semantics(class_semantics)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        semantic_dim = semantics.shape[1]
        dim = semantic_dim if embed_dim is None else embed_dim
        self.semantic_dim = semantic_dim
        self.embed_dim = dim
        self.temperature = temperature
        self.visual_proj = nn.Linear(in_channels, dim)
        self.semantic_proj = nn.Identity() if embed_dim is None else nn.Linear(semantic_dim, dim)
        self.background = nn.Parameter(torch.randn(dim) / dim**0.5)
        self.bbox_pred = nn.Linear(in_channels, 4)
        # Not persistent: the scored classes change between training and ZSD / GZSD evaluation.
        self.register_buffer("class_semantics", semantics, persistent=False)
        self.register_buffer("class_bias", torch.zeros(len(semantics)), persistent=False)

    @property
    def num_classes(self) -> int:
        return int(self.class_semantics.shape[0])

    def set_class_semantics(self, class_semantics: Tensor, *, bias: Tensor | None = None) -> None:
        """Score these K classes from now on; ``bias`` (K,) is added to their logits.

        A negative bias on seen classes is calibrated stacking for GZSD.
        """
        semantics = _check_semantics(class_semantics, dim=self.semantic_dim)
        semantics = semantics.to(self.background.device)
        if bias is None:
            bias = torch.zeros(len(semantics), device=semantics.device)
        if bias.shape != (len(semantics),):
            raise ValueError(f"bias must have shape ({len(semantics)},); got {tuple(bias.shape)}")
        self.class_semantics = semantics
        self.class_bias = bias.to(semantics)

    def embed_regions(self, r: Tensor) -> Tensor:
        """(N, in_channels) box features -> (N, embed_dim) unit region embeddings."""
        return F.normalize(self.visual_proj(r), dim=1)

    def embed_classes(self, semantics: Tensor | None = None) -> Tensor:
        """(K, d) semantic vectors (default: the current ones) -> (K, embed_dim) unit vectors."""
        s = self.class_semantics if semantics is None else semantics
        return F.normalize(self.semantic_proj(s), dim=1)

    def class_logits(self, v: Tensor) -> Tensor:
        """(N, embed_dim) unit region embeddings -> (N, 1 + K) logits (column 0: background)."""
        e = torch.cat([F.normalize(self.background, dim=0)[None], self.embed_classes()])
        bias = F.pad(self.class_bias, (1, 0))  # background gets no bias
        return v @ e.T / self.temperature + bias  # (N, 1 + K)

    def forward(self, r: Tensor) -> tuple[Tensor, Tensor]:
        r = r.flatten(1)
        logits = self.class_logits(self.embed_regions(r))
        deltas = self.bbox_pred(r)  # (N, 4) class-agnostic
        return logits, deltas.repeat(1, logits.shape[1])  # (N, 4 * (1 + K))


def _check_semantics(semantics: Tensor, *, dim: int | None = None) -> Tensor:
    s = torch.as_tensor(semantics, dtype=torch.float32)
    if s.ndim != 2 or s.shape[0] < 1:
        raise ValueError(
            f"class semantics must be a (num_classes, d) matrix with num_classes >= 1; "
            f"got shape {tuple(s.shape)}"
        )
    if dim is not None and s.shape[1] != dim:
        raise ValueError(
            f"class semantics have {s.shape[1]} dims but the head was built for {dim}; "
            f"use semantic vectors of the same kind as in training"
        )
    return s


class DetectorOutput(OrderedDict):
    """What :meth:`SemanticFasterRCNN.forward_train` returns (a dict, so it stays DDP-friendly).

    Keys: ``loss_objectness``, ``loss_rpn_box_reg``, ``loss_classifier``, ``loss_box_reg``
    (scalars); ``box_features`` (N, rep) of the sampled RoIs; ``region_embeddings`` (N, embed_dim)
    unit vectors; ``labels`` (N,) their matched labels (0 background, 1..K the current classes).
    """


class SemanticFasterRCNN(nn.Module):
    """Faster R-CNN (torchvision) with a :class:`SemanticBoxPredictor` and shrunk sizes.

    Args:
        class_semantics: (K, d) semantic vectors of the training classes.
        backbone: "tiny" (:class:`TinyBackbone`, one stride-8 map with 3 anchor sizes x 3
            aspect ratios) or "mobilenet_v3_fpn" (torchvision's
            ``fasterrcnn_mobilenet_v3_large_320_fpn`` built with ``weights=None,
            weights_backbone=None``, its box head and classifier replaced).
        image_size: images are resized so the shorter side is this (``min_size``), longer side
            at most 2x.
        representation_size: box-head width (torchvision default 1024).
        box_batch_size_per_image: RoIs sampled per image for the box losses (default 512).
        rpn_batch_size_per_image: anchors sampled per image for the RPN losses (default 256).
        num_proposals: proposals kept per image after NMS, train and test (default 2000/1000).
        embed_dim, temperature: see :class:`SemanticBoxPredictor`.
        backbone_channels: output channels of the tiny backbone.
        anchor_sizes: anchor sides in pixels for the tiny backbone.
        score_thresh: test-time minimum class score (torchvision default 0.05; lower keeps
            more detections for mAP and Recall@100).
        detections_per_img: kept detections per image (100 for Recall@100).
    """

    def __init__(
        self,
        *,
        class_semantics: Tensor,
        backbone: str = "tiny",
        image_size: int = 128,
        representation_size: int = 128,
        box_batch_size_per_image: int = 64,
        rpn_batch_size_per_image: int = 64,
        num_proposals: int = 100,
        embed_dim: int | None = None,
        temperature: float = 0.1,
        backbone_channels: int = 64,
        anchor_sizes: tuple[int, ...] = (16, 32, 64),
        score_thresh: float = 0.001,
        detections_per_img: int = 100,
    ) -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone={backbone!r}; valid options are {BACKBONES}")
        sizes = dict(
            min_size=image_size,
            max_size=2 * image_size,
            rpn_pre_nms_top_n_train=2 * num_proposals,
            rpn_pre_nms_top_n_test=2 * num_proposals,
            rpn_post_nms_top_n_train=num_proposals,
            rpn_post_nms_top_n_test=num_proposals,
            rpn_batch_size_per_image=rpn_batch_size_per_image,
            box_batch_size_per_image=box_batch_size_per_image,
            box_score_thresh=score_thresh,
            box_detections_per_img=detections_per_img,
        )
        if backbone == "tiny":
            body = TinyBackbone(out_channels=backbone_channels)
            anchors = AnchorGenerator(
                sizes=(tuple(anchor_sizes),), aspect_ratios=((0.5, 1.0, 2.0),)
            )
            roi_pool = MultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=2)
            head = TwoMLPHead(body.out_channels * 7 * 7, representation_size)
            predictor = SemanticBoxPredictor(
                in_channels=representation_size,
                class_semantics=class_semantics,
                embed_dim=embed_dim,
                temperature=temperature,
            )
            self.detector = FasterRCNN(
                body,
                rpn_anchor_generator=anchors,
                box_roi_pool=roi_pool,
                box_head=head,
                box_predictor=predictor,
                **sizes,
            )
        else:
            self.detector = fasterrcnn_mobilenet_v3_large_320_fpn(
                weights=None, weights_backbone=None, num_classes=2, **sizes
            )
            out = self.detector.backbone.out_channels
            self.detector.roi_heads.box_head = TwoMLPHead(out * 7 * 7, representation_size)
            self.detector.roi_heads.box_predictor = SemanticBoxPredictor(
                in_channels=representation_size,
                class_semantics=class_semantics,
                embed_dim=embed_dim,
                temperature=temperature,
            )

    @property
    def predictor(self) -> SemanticBoxPredictor:
        return self.detector.roi_heads.box_predictor

    def set_class_semantics(self, class_semantics: Tensor, *, bias: Tensor | None = None) -> None:
        """Score these classes from now on (detector labels 1..K follow its rows)."""
        self.predictor.set_class_semantics(class_semantics, bias=bias)

    def forward(self, images: list[Tensor], targets: list[dict] | None = None):
        """torchvision's interface: losses in train mode, detections in eval mode.

        Args:
            images: B tensors (3, H, W) in [0, 1].
            targets: B dicts with ``boxes`` (n, 4) xyxy pixels and ``labels`` (n,) in 1..K.

        Returns:
            train: dict of the four detection losses; eval: B dicts with ``boxes``, ``scores``,
            ``labels`` (1..K, rows of the current semantics).
        """
        return self.detector(images, targets)

    def forward_train(self, images: list[Tensor], targets: list[dict]) -> DetectorOutput:
        """Detection losses plus the sampled RoIs' features, embeddings and labels.

        The same computation as torchvision's training forward, unrolled so the contrastive
        subnets can use the region features. The box loss is class-agnostic smooth-L1
        (beta 1/9, summed over foreground RoIs, divided by the number of sampled RoIs, as
        torchvision's ``fastrcnn_loss``).
        """
        det = self.detector
        image_list, targets = det.transform(images, targets)
        features = det.backbone(image_list.tensors)
        if isinstance(features, Tensor):
            features = OrderedDict([("0", features)])
        proposals, rpn_losses = det.rpn(image_list, features, targets)
        heads = det.roi_heads
        proposals, _, labels, regression_targets = heads.select_training_samples(proposals, targets)
        r = heads.box_roi_pool(features, proposals, image_list.image_sizes)
        r = heads.box_head(r)  # (N, rep)
        predictor = heads.box_predictor
        v = predictor.embed_regions(r)  # (N, embed_dim)
        logits = predictor.class_logits(v)  # (N, 1 + K)
        deltas = predictor.bbox_pred(r)  # (N, 4)
        labels_t = torch.cat(labels)
        reg_t = torch.cat(regression_targets)
        fg = labels_t > 0
        loss_box = F.smooth_l1_loss(
            deltas[fg], reg_t[fg], beta=_BOX_SMOOTH_L1_BETA, reduction="sum"
        ) / max(labels_t.numel(), 1)
        return DetectorOutput(
            loss_objectness=rpn_losses["loss_objectness"],
            loss_rpn_box_reg=rpn_losses["loss_rpn_box_reg"],
            loss_classifier=F.cross_entropy(logits, labels_t),
            loss_box_reg=loss_box,
            box_features=r,
            region_embeddings=v,
            labels=labels_t,
        )
