"""``ickd``: train (or load) a teacher, then distil students: alone, +KD, +ICKD, +ICKD+KD.

Liu et al., "Exploring Inter-Channel Correlation for Diversity-preserved Knowledge Distillation",
ICCV 2021. Total loss ``gamma * CE + alpha * KD + beta * L_ICKD`` as in the authors' CIFAR code
(``-r gamma -a alpha -b beta``), with the student's last-stage feature (before pooling) embedded
by a 1x1 conv + BN and the teacher's raw, detached last-stage feature.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from frugalcv.classify import (
    ClassifyTask,
    DataConfig,
    load_data,
    make_loaders,
    model_extra,
)
from frugalcv.core.checkpoint import load_checkpoint, load_state_dict_checked
from frugalcv.core.config import OptimConfig, TrainConfig
from frugalcv.core.recipe import RunContext, start_run, train_model, write_rows
from frugalcv.core.task import Task
from frugalcv.distill.ickd import ICKDLoss
from frugalcv.distill.kd import kd_loss

# Row name -> (alpha: KD weight multiplier, beta: ICKD weight multiplier) switches.
ROWS: dict[str, tuple[bool, bool]] = {
    "student": (False, False),
    "kd": (True, False),
    "ickd": (False, True),
    "ickd_kd": (True, True),
}


@dataclass
class DistillConfig:
    teacher: str = "resnet32x4"  # zoo name (ICKD CIFAR-100 pair R32x4 -> R8x4)
    student: str = "resnet8x4"
    teacher_ckpt: str = ""  # a frugalcv checkpoint of a trained teacher; "" = train one first
    rows: tuple[str, ...] = ("student", "kd", "ickd", "ickd_kd")  # subset of ROWS
    ce: float = 1.0  # gamma, CE weight (authors' -r 1)
    kd: float = 1.0  # alpha for the +KD rows (README: ICKD+KL uses -a 1)
    ickd: float = 2.5  # beta (README -b 2.5; train_student.sh uses 4: unsettled)
    temperature: float = 4.0  # KD temperature (RepDistiller DistillKL T=4)
    normalize: str = "row_l2"  # authors' code: row-wise L2 of the Gram
    reduction: str = "official_cifar"  # divide by C*B (authors' CIFAR code)
    embed_kernel: int = 1  # 1x1 conv + BN on CIFAR nets, 3x3 on ImageNet nets
    grid: tuple[int, int] = (1, 1)  # image-level ICKD


@dataclass
class Config:
    data: DataConfig = field(default_factory=lambda: DataConfig(name="cifar100", flip=True))
    distill: DistillConfig = field(default_factory=DistillConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def tiny() -> Config:
    """About 1-2 minutes on 2 CPU cores: resnet8x2 teacher, resnet8 student, embedded data."""
    return Config(
        data=DataConfig(name="mnist-back", num_train=1500, num_test=1000),
        distill=DistillConfig(teacher="resnet8x2", student="resnet8"),
        optim=OptimConfig(lr=0.1, schedule="cosine", warmup_steps=10),
        train=TrainConfig(epochs=4, batch_size=64),
    )


def paper_cifar100() -> Config:
    """resnet32x4 -> resnet8x4, 240 epochs, SGD 0.05, x0.1 at 150/180/210 (RepDistiller/ICKD)."""
    return Config()


def paper_imagenet() -> Config:
    """ResNet34 -> ResNet18 on an ImageFolder (authors' pluskd config: AdamW 2e-4, 100 epochs,
    decays at 30/60/90, 0.5 CE + 0.5 KL at T=1, 500 x ChSimLoss with the C*B*B divisor, 3x3 embed).

    The authors' config starts the student from ImageNet-pretrained weights; frugalcv cannot
    download weights, so this trains from scratch (torchdistill's rerun of that: 68.34%).
    """
    return Config(
        data=DataConfig(name="imagefolder", flip=True),
        distill=DistillConfig(
            teacher="timm/resnet34",
            student="timm/resnet18",
            ce=0.5,
            kd=0.5,
            ickd=500.0,
            temperature=1.0,
            reduction="official_imagenet",
            embed_kernel=3,
            rows=("student", "ickd_kd"),
        ),
        optim=OptimConfig(name="adamw", lr=2e-4, weight_decay=5e-4, milestones=(30, 60, 90)),
        train=TrainConfig(epochs=100, batch_size=256),
    )


PRESETS = {"tiny": tiny, "paper_cifar100": paper_cifar100, "paper_imagenet": paper_imagenet}


class DistillTask(Task):
    """``ce * CE + kd * KD + ickd * L_ICKD`` for a student under a frozen teacher.

    Args:
        student: zoo-contract model (``forward_features``, ``forward_head``).
        teacher: zoo-contract model, frozen and kept in eval mode; None for the student-alone row.
        ickd: the ICKD loss module (owns the student embed), or None.
        ce, kd, ickd_weight: loss weights (gamma, alpha, beta).
        temperature: KD temperature.
    """

    def __init__(
        self,
        *,
        student: nn.Module,
        teacher: nn.Module | None,
        ickd: ICKDLoss | None,
        ce: float = 1.0,
        kd: float = 0.0,
        ickd_weight: float = 0.0,
        temperature: float = 4.0,
    ) -> None:
        super().__init__()
        if (kd > 0 or ickd_weight > 0) and teacher is None:
            raise ValueError("KD and ICKD terms need a teacher; pass teacher= or zero weights.")
        if ickd_weight > 0 and ickd is None:
            raise ValueError("ickd_weight > 0 needs an ICKDLoss module (ickd=).")
        self.student = student
        self.teacher = teacher
        if teacher is not None:
            teacher.requires_grad_(False)
            teacher.eval()
        self.ickd = ickd
        self.w_ce, self.w_kd, self.w_ickd, self.temperature = ce, kd, ickd_weight, temperature

    def train(self, mode: bool = True) -> DistillTask:
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()  # the teacher's BN statistics stay frozen
        return self

    def features_logits(self, model: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
        f = model.forward_features(x)
        return f, model.forward_head(f)

    def supervised_loss(self, logits: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(logits, y)

    def training_step(self, batch: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
        x, y = batch
        f_s, logits_s = self.features_logits(self.student, x)
        losses = {"ce": self.supervised_loss(logits_s, y)}
        total = self.w_ce * losses["ce"]
        if self.teacher is not None and (self.w_kd > 0 or self.w_ickd > 0):
            with torch.no_grad():
                f_t, logits_t = self.features_logits(self.teacher, x)
            if self.w_kd > 0:
                losses["kd"] = kd_loss(logits_s, logits_t, temperature=self.temperature)
                total = total + self.w_kd * losses["kd"]
            if self.w_ickd > 0:
                losses["ickd"] = self.ickd(f_s, f_t)
                total = total + self.w_ickd * losses["ickd"]
        return {"loss": total, **{k: v.detach() for k, v in losses.items()}}

    def validation_step(self, batch: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
        x, y = batch
        logits = self.student(x)
        return {"loss": F.cross_entropy(logits, y), "acc": (logits.argmax(1) == y).float().mean()}


def load_teacher(model: nn.Module, path: str | Path, *, prefix: str = "model.") -> nn.Module:
    """Load the ``prefix*`` weights of a frugalcv checkpoint into ``model``.

    ``"model."`` reads a ``ClassifyTask`` checkpoint, ``"student."`` a ``DistillTask`` one.
    """
    state = load_checkpoint(path)["task"]
    weights = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    load_state_dict_checked(model, weights, source=str(path))
    return model


def make_ickd_loss(
    cfg, *, student: nn.Module, teacher: nn.Module, grid: tuple[int, int]
) -> ICKDLoss:
    """``ICKDLoss`` embedding the student's last stage to the teacher's channels.

    ``cfg`` is a ``DistillConfig`` or ``SegDistillConfig`` (``embed_kernel``, ``normalize``,
    ``reduction``); the recipes' only place that turns config into the loss module.
    """
    return ICKDLoss(
        student_channels=student.num_features,
        teacher_channels=teacher.num_features,
        kernel_size=cfg.embed_kernel,
        normalize=cfg.normalize,
        reduction=cfg.reduction,
        grid=grid,
    )


def make_distill_task(
    cfg: DistillConfig, row: str, *, student: nn.Module, teacher: nn.Module
) -> DistillTask:
    """The task of one benchmark row (a key of ``ROWS``)."""
    if row not in ROWS:
        raise ValueError(f"Unknown row '{row}'; choose from {list(ROWS)}.")
    use_kd, use_ickd = ROWS[row]
    ickd = (
        make_ickd_loss(cfg, student=student, teacher=teacher, grid=cfg.grid) if use_ickd else None
    )
    return DistillTask(
        student=student,
        teacher=teacher if (use_kd or use_ickd) else None,
        ickd=ickd,
        ce=cfg.ce,
        kd=cfg.kd if use_kd else 0.0,
        ickd_weight=cfg.ickd if use_ickd else 0.0,
        temperature=cfg.temperature,
    )


def prepare_teacher(ctx: RunContext, cfg: Config, data, *, create) -> tuple[nn.Module, dict]:
    """Train the teacher under ``<out>/teacher`` (or load ``distill.teacher_ckpt``)."""
    teacher = create(cfg.distill.teacher, data)
    if cfg.distill.teacher_ckpt:
        load_teacher(teacher, cfg.distill.teacher_ckpt)
        return teacher, {"name": "teacher", "loaded_from": cfg.distill.teacher_ckpt}
    out = ctx.out_dir / "teacher"
    summary = train_model(
        ctx,
        cfg,
        task=ClassifyTask(model=teacher),
        loaders=make_loaders(data, cfg),
        name="teacher",
        out_dir=out,
        extra={"model": cfg.distill.teacher, **model_extra(teacher, data)},
    )
    return load_teacher(teacher, out / "last.pt"), summary


def _create(name: str, data) -> nn.Module:
    from frugalcv.zoo import create_model

    return create_model(name, num_classes=data.num_classes, in_chans=data.in_chans)


def run(cfg: Config, *, preset: str = "custom") -> dict:
    """Teacher first, then one student per row of ``cfg.distill.rows``; same schedule for all."""
    ctx = start_run(cfg, recipe="ickd", preset=preset)
    data = load_data(cfg.data, seed=cfg.train.seed)
    teacher, t_summary = prepare_teacher(ctx, cfg, data, create=_create)
    rows = [t_summary]
    for row in cfg.distill.rows:
        torch.manual_seed(cfg.train.seed)  # every row's student starts from the same init
        student = _create(cfg.distill.student, data)
        task = make_distill_task(cfg.distill, row, student=student, teacher=teacher)
        rows.append(
            train_model(
                ctx,
                cfg,
                task=task,
                loaders=make_loaders(data, cfg),
                name=row,
                out_dir=ctx.out_dir / row,
                extra={"model": cfg.distill.student, **model_extra(student, data)},
            )
        )
    return write_rows(ctx, dataset=data.name, rows=rows)
