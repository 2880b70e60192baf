"""``ickd_seg``: grid-level ICKD for dense prediction (student alone, + grid ICKD at 1x1 and finer).

Liu et al., ICCV 2021, grid-level inter-channel correlation: the feature maps are split into an
n x m grid and the ICKD loss is averaged over cells (:func:`frugalcv.distill.grid_ickd_loss`).
The authors released no training code for it (a reconstruction; see docs/methods/ickd.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch.nn.functional as F
from torch import Tensor, nn

from frugalcv.core.config import ConfigError, OptimConfig, TrainConfig
from frugalcv.core.loader import TensorLoader
from frugalcv.core.recipe import start_run, write_rows
from frugalcv.core.stages import train_rows, train_stage
from frugalcv.core.task import Task
from frugalcv.distill.ickd import DistillWeights, Normalize, Reduction
from frugalcv.distill.recipes import DistillTask, make_ickd_loss, notice_lines


@dataclass
class SegDataConfig:
    name: Literal["digit-scenes", "voc"] = "digit-scenes"  # embedded procedural | VOC 2012
    root: str = ""  # for voc: folder holding VOCdevkit/ ("" = $FRUGALCV_DATA)
    num_train: int = 2000  # 0 = all (voc)
    num_test: int = 500
    image_size: int = 48  # square side in pixels
    # digit-scenes only (frugalcv.data.make_digit_scenes): digit classes 0..n-1 and digits per
    # scene (inclusive range)
    num_digit_classes: int = 10
    digits_per_image: tuple[int, int] = (1, 3)
    source: Literal["digits", "mnist5k"] = "digits"  # sklearn 8x8 upsampled | real MNIST 28x28
    rotate: bool = False  # each digit rotated by an angle uniform in [0, 360) (harder)
    # Seeds the data (digit split, scenes; VOC subsets), apart from train.seed (initialisation,
    # order): a teacher trained once distils to students of every train.seed on the same split,
    # so no student's test digits are among its teacher's training digits.
    seed: int = 0

    def validate(self) -> None:
        if not 1 <= self.num_digit_classes <= 10:
            raise ConfigError(
                f"data.num_digit_classes must be in 1..10; got {self.num_digit_classes}."
            )
        lo, hi = self.digits_per_image
        if not 1 <= lo <= hi:
            raise ConfigError(
                f"data.digits_per_image must be (lo, hi) with 1 <= lo <= hi; got "
                f"{self.digits_per_image}."
            )


@dataclass
class SegDistillConfig:
    teacher: str = "fcn_resnet20x4"  # frugalcv.zoo.SEG_MODELS name
    student: str = "fcn_resnet8"
    teacher_ckpt: str = ""  # checkpoint or run folder of a trained teacher; "" = train one first
    teacher_only: bool = False  # stop after training the teacher (to distil from it later)
    grids: tuple[int, ...] = (1, 4)  # one student row per n x n grid (README rows: 1, 4, 16, 32)
    alone: bool = True  # also train the student-alone row (off: only the grid rows)
    ce: float = 1.0  # pixel CE weight
    ickd: float = 2.5  # beta, as the CIFAR code (the VOC value was not published)
    normalize: Normalize = "row_l2"
    reduction: Reduction = "official_cifar"
    embed_kernel: int = 1

    def validate(self) -> None:
        if self.grids and min(self.grids) < 1:
            raise ConfigError(f"distill.grids must be positive grid sizes; got {self.grids}.")
        if not self.grids and not self.alone and not self.teacher_only:
            raise ConfigError(
                "distill.grids is empty and distill.alone is false: no student row to train; "
                "give a grid (distill.grids=(1,)) or set distill.alone=true."
            )
        if self.ce < 0 or self.ickd < 0:
            raise ConfigError("distill.ce and distill.ickd must be >= 0.")


@dataclass
class Config:
    data: SegDataConfig = field(default_factory=SegDataConfig)
    distill: SegDistillConfig = field(default_factory=SegDistillConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def tiny() -> Config:
    """About 30 s on 2 CPU cores: one digit (0, 1 or 2) per 24 px scene on a natural patch,
    fcn_resnet20 teacher -> fcn_resnet8 student, grids 1x1 and 3x3 (the 6x6 map)."""
    return Config(
        data=SegDataConfig(
            num_train=600,
            num_test=200,
            image_size=24,
            num_digit_classes=3,
            digits_per_image=(1, 1),
        ),
        distill=SegDistillConfig(teacher="fcn_resnet20", student="fcn_resnet8", grids=(1, 3)),
        optim=OptimConfig(lr=0.1, schedule="cosine", warmup_steps=10),
        train=TrainConfig(epochs=6, batch_size=32, monitor="miou"),
    )


def paper_voc() -> Config:
    """Pascal VOC 2012 at the grids of the authors' table (1, 4, 16, 32).

    Differences from the paper: FCN-ResNet models from frugalcv's zoo instead of DeepLab v3+ with
    ResNet-101 -> ResNet-18 (not available without pretrained weights); 128 px instead of 513.
    """
    return Config(
        data=SegDataConfig(name="voc", num_train=0, num_test=0, image_size=128),
        distill=SegDistillConfig(grids=(1, 4, 16, 32)),
        optim=OptimConfig(lr=0.01, schedule="cosine", weight_decay=5e-4),
        train=TrainConfig(epochs=50, batch_size=16, monitor="miou"),
    )


PRESETS = {"tiny": tiny, "paper_voc": paper_voc}


def seg_metrics(*, num_classes: int, ignore_index: int) -> dict[str, Any]:
    """Mean IoU over classes (background included, from the confusion matrix) and pixel accuracy."""
    from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

    return {
        "miou": MulticlassJaccardIndex(
            num_classes=num_classes, average="macro", ignore_index=ignore_index
        ),
        "pixel_acc": MulticlassAccuracy(
            num_classes=num_classes, average="micro", ignore_index=ignore_index
        ),
    }


class SegTask(Task):
    """Pixel cross-entropy for a segmentation model. ``x: (B, C, H, W)``, ``y: (B, H, W)``."""

    monitor = ("miou", "max")

    def __init__(self, *, model: nn.Module, num_classes: int, ignore_index: int = 255) -> None:
        super().__init__()
        self.model = model
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def training_step(self, batch: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
        x, y = batch
        return {"loss": F.cross_entropy(self.model(x), y, ignore_index=self.ignore_index)}

    def eval_metrics(self) -> dict[str, Any]:
        return seg_metrics(num_classes=self.num_classes, ignore_index=self.ignore_index)

    def update_eval_metrics(self, metrics: dict[str, Any], batch: tuple[Tensor, Tensor]) -> None:
        x, y = batch
        pred = self.deployable()(x).argmax(1)  # (B, H, W)
        for m in metrics.values():
            m.update(pred, y)


class SegDistillTask(DistillTask):
    """Pixel CE + beta * grid-level ICKD. ``x: (B, C, H, W)``, ``y: (B, H, W)`` (255 = ignore)."""

    monitor = ("miou", "max")

    def __init__(
        self,
        *,
        student: nn.Module,
        teacher: nn.Module,
        ickd: nn.Module,
        weights: DistillWeights,
        num_classes: int,
        ignore_index: int = 255,
    ) -> None:
        super().__init__(student=student, teacher=teacher, ickd=ickd, weights=weights)
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def features_logits(self, model: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
        f = model.forward_features(x)
        return f, model.forward_head(f, size=(x.shape[-2], x.shape[-1]))

    def supervised_loss(self, logits: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(logits, y, ignore_index=self.ignore_index)

    eval_metrics = SegTask.eval_metrics
    update_eval_metrics = SegTask.update_eval_metrics


def load_seg_data(cfg: SegDataConfig):
    """The scenes (or VOC images) of ``cfg``, built with ``cfg.seed``."""
    if cfg.name == "digit-scenes":
        from frugalcv.data import make_digit_scenes

        return make_digit_scenes(
            num_train=cfg.num_train,
            num_test=cfg.num_test,
            image_size=cfg.image_size,
            num_digit_classes=cfg.num_digit_classes,
            digits_per_image=cfg.digits_per_image,
            seed=cfg.seed,
            source=cfg.source,
            rotate=cfg.rotate,
        )
    if cfg.name == "voc":
        from frugalcv.data import load_voc_segmentation

        return load_voc_segmentation(
            cfg.root or None,
            image_size=cfg.image_size,
            seed=cfg.seed,
            num_train=cfg.num_train or None,
            num_test=cfg.num_test or None,
        )
    raise ValueError(f"Unknown segmentation data '{cfg.name}'; use 'digit-scenes' or 'voc'.")


def _create(name: str, data) -> nn.Module:
    from frugalcv.zoo import create_seg_model

    return create_seg_model(name, num_classes=data.num_classes, in_chans=data.in_chans)


def run(cfg: Config, *, preset: str = "custom") -> dict:
    """Teacher (trained or loaded), then the student alone and with grid ICKD at each grid."""
    ctx = start_run(cfg, recipe="ickd_seg", preset=preset)
    data = load_seg_data(cfg.data)
    loaders = (
        TensorLoader(
            (data.x_train, data.y_train),
            batch_size=cfg.train.batch_size,
            shuffle=True,
            seed=cfg.train.seed,
            drop_last=True,
        ),
        TensorLoader((data.x_test, data.y_test), batch_size=cfg.train.eval_batch_size),
    )
    d = cfg.distill
    labels = {"num_classes": data.num_classes, "ignore_index": data.ignore_index}
    x1 = data.x_test[:1]

    def extra(model: nn.Module, name: str) -> dict:
        from frugalcv.core.measure import count_macs, count_params

        return {"model": name, "params": count_params(model), "macs": count_macs(model, x1)}

    teacher = _create(d.teacher, data)
    teacher, t_summary = train_stage(
        ctx,
        cfg,
        name="teacher",
        task=SegTask(model=teacher, **labels),
        loaders=loaders,
        ckpt=d.teacher_ckpt,
        extra=extra(teacher, d.teacher),
    )
    rows = [t_summary]
    if d.teacher_only:
        return write_rows(ctx, dataset=data.name, rows=rows)
    grids = {f"grid{g}x{g}": g for g in d.grids}

    def make_task(row: str) -> Task:
        student = _create(d.student, data)
        if row == "student":
            return SegTask(model=student, **labels)
        g = grids[row]
        return SegDistillTask(
            student=student,
            teacher=teacher,
            ickd=make_ickd_loss(d, student=student, teacher=teacher, grid=(g, g)),
            weights=DistillWeights(ce=d.ce, kd=0.0, ickd=d.ickd),
            **labels,
        )

    rows += train_rows(
        ctx,
        cfg,
        rows=[*(["student"] if d.alone else []), *grids],
        make_task=make_task,
        loaders=loaders,
        extra=lambda row, task: extra(task.deployable(), d.student),
    )
    summary = write_rows(ctx, dataset=data.name, rows=rows)
    if ctx.is_main:
        for line in notice_lines(rows, metric="miou", models=(d.teacher, d.student)):
            print(line)
    return summary
