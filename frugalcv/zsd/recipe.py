"""``contrastzsd``: the semantic Faster R-CNN alone, + region-category, + region-region, full.

Yan et al., "Semantics-Guided Contrastive Network for Zero-Shot Object Detection", TPAMI
(arXiv 2109.06062). Every row trains :class:`frugalcv.zsd.ContrastZSDTask` through the shared
``fit`` (:func:`frugalcv.core.stages.train_rows`: same initialisation, data, schedule), with its
contrastive subnets switched by the loss weights:

========  =================  =================
row       region-category    region-region
========  =================  =================
plain     off                off
rc        ``contrast.rc``    off
rr        off                ``contrast.rr``
full      ``contrast.rc``    ``contrast.rr``
========  =================  =================

Training images hold seen objects only (the ZSD rule); the monitor (``map_seen``) is mAP@0.5 on
seen-class validation images, predicting among the seen classes. After training, each row's final
model is scored on the test sets and the numbers join its ``final``:

- ZSD (images with unseen objects, unseen boxes only, predictions among the unseen classes):
  ``zsd_map`` (mAP@0.5) and ``zsd_recall100_iou{40,50,60}`` (Recall@100 at IoU 0.4/0.5/0.6);
- GZSD (images with any object, predictions among all classes): ``gzsd_map_seen``,
  ``gzsd_map_unseen``, ``gzsd_map_hm`` and the same for recall (``gzsd_recall_*``).

GZSD calibration: a constant ``eval.gzsd_seen_bias`` is added to the seen-class logits (calibrated
stacking); the default 0 is *not tuned*. Choosing it needs unseen-like validation data (held-out
seen classes and a retrained detector); it is never chosen on the unseen test classes here.

``<run>/detections.png`` draws each row's unseen-class detections on a few ZSD test images.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from frugalcv.core.config import ConfigError, OptimConfig, TrainConfig
from frugalcv.core.jsonio import write_json
from frugalcv.core.loader import DatasetLoader, list_collate
from frugalcv.core.measure import to_module
from frugalcv.core.recipe import start_run, write_rows
from frugalcv.core.stages import train_rows
from frugalcv.zsd.contrastzsd import ContrastZSDTask
from frugalcv.zsd.detector import SemanticFasterRCNN
from frugalcv.zsd.metrics import gzsd_metrics, zsd_metrics

Row = Literal["plain", "rc", "rr", "full"]

# Row name -> (region-category on, region-region on).
ROWS: dict[str, tuple[bool, bool]] = {
    "plain": (False, False),
    "rc": (True, False),
    "rr": (False, True),
    "full": (True, True),
}
ROW_LABELS = {
    "plain": "plain semantic detector",
    "rc": "+region-category",
    "rr": "+region-region",
    "full": "full ContrastZSD",
}
# The test metrics each row's ``final`` gains (keys without dots: benchmark rows read
# ``final.<key>`` as a dotted path).
ZSD_KEYS = ("zsd_map", "zsd_recall100_iou40", "zsd_recall100_iou50", "zsd_recall100_iou60")
GZSD_KEYS = (
    "gzsd_map_seen",
    "gzsd_map_unseen",
    "gzsd_map_hm",
    "gzsd_recall_seen",
    "gzsd_recall_unseen",
    "gzsd_recall_hm",
)


@dataclass
class DataConfig:
    name: Literal["zsd-digits", "voc", "coco"] = "zsd-digits"
    root: str = ""  # voc / coco: folder holding VOCdevkit/ or coco/ ("" = $FRUGALCV_DATA)
    coco_split: Literal["65_15", "48_17"] = "65_15"  # Rahman et al. / Bansal et al.
    semantics: Literal["attributes", "names"] = "attributes"  # zsd-digits only; voc/coco: names
    # zsd-digits: scenes drawn per split (about half of the training scenes hold an unseen digit
    # and are removed). voc/coco: 0 = every image, else a seeded subset of that many; num_val
    # seen-only images are held out of the training images for the monitor (no val split).
    num_train: int = 256
    num_val: int = 64
    num_test: int = 128
    image_size: int = 128  # digit scene side; also the detector's shorter side (pixels)

    def validate(self) -> None:
        for key in ("num_train", "num_val", "num_test"):
            if getattr(self, key) < 0:
                raise ConfigError(f"data.{key} must be >= 0; got {getattr(self, key)}.")
        if self.name == "zsd-digits" and min(self.num_train, self.num_val, self.num_test) < 1:
            raise ConfigError(
                "data.num_train, data.num_val and data.num_test count digit scenes: use >= 1."
            )
        if self.name != "zsd-digits" and self.num_val < 1:
            raise ConfigError(
                f"data.num_val must be >= 1 for {self.name}: seen-only training images are held "
                "out as the validation set (the monitor)."
            )
        if self.image_size < 64:
            raise ConfigError(f"data.image_size must be >= 64 pixels; got {self.image_size}.")


@dataclass
class DetectorConfig:
    backbone: Literal["tiny", "mobilenet_v3_fpn"] = "tiny"  # paper: ResNet-101 Faster R-CNN
    representation_size: int = 128  # box-head width (torchvision 1024; shrunk for CPU)
    box_batch_size_per_image: int = 64  # sampled RoIs (torchvision 512; unofficial code 128)
    rpn_batch_size_per_image: int = 64  # sampled anchors (torchvision and unofficial code 256)
    num_proposals: int = 100  # after NMS, train and test (torchvision 2000 / 1000)
    embed_dim: int = 0  # 0 = regions projected into the semantic space; else a learned space
    temperature: float = 0.1  # classifier tau (unofficial config tau 0.1, reused)
    backbone_channels: int = 64  # tiny backbone output channels (ours)
    anchor_sizes: tuple[int, ...] = (16, 32, 64)  # tiny backbone anchors, pixels at 128 px

    def validate(self) -> None:
        for key in ("representation_size", "box_batch_size_per_image",
                    "rpn_batch_size_per_image", "num_proposals", "backbone_channels"):  # fmt: skip
            if getattr(self, key) < 1:
                raise ConfigError(f"detector.{key} must be >= 1; got {getattr(self, key)}.")
        if self.embed_dim < 0:
            raise ConfigError("detector.embed_dim must be >= 0 (0 = semantic space).")
        if not self.temperature > 0:
            raise ConfigError(f"detector.temperature must be > 0; got {self.temperature}.")
        if not self.anchor_sizes or min(self.anchor_sizes) < 1:
            raise ConfigError("detector.anchor_sizes must be pixel sizes >= 1.")


@dataclass
class ContrastConfig:
    rows: tuple[Row, ...] = ("plain", "rc", "rr", "full")
    rc: float = 0.2  # region-category weight (unofficial config lambda 0.2)
    rr: float = 0.4  # region-region weight (unofficial config beta 0.4)
    tau_rc: float = 0.1  # region-category temperature (unofficial config tau 0.1)
    tau_sim: float = 0.1  # class-similarity softmax temperature (= tau_rc, ours)
    tau_rr: float = 0.1  # region-region temperature (unofficial config tau 0.1)
    rr_dim: int = 64  # region-region projection size (SupCon 128, unofficial 512; ours)
    negative_strength: float = 1.0  # similarity-weighted negatives; 0 = plain SupCon (ours)

    def validate(self) -> None:
        if not self.rows:
            raise ConfigError("contrast.rows needs at least one of plain, rc, rr, full.")
        if len(set(self.rows)) != len(self.rows):
            raise ConfigError(f"contrast.rows has a repeated row: {self.rows}.")
        for key in ("tau_rc", "tau_sim", "tau_rr"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"contrast.{key} must be > 0; got {getattr(self, key)}.")
        if not 0.0 <= self.negative_strength <= 1.0:
            raise ConfigError(
                f"contrast.negative_strength must be in [0, 1]; got {self.negative_strength}."
            )
        if self.rr_dim < 1:
            raise ConfigError(f"contrast.rr_dim must be >= 1; got {self.rr_dim}.")
        if self.rc < 0 or self.rr < 0:
            raise ConfigError("contrast.rc and contrast.rr must be >= 0.")
        for row in self.rows:  # a row whose term has weight 0 would silently equal "plain"
            use_rc, use_rr = ROWS[row]
            if (use_rc and self.rc == 0) or (use_rr and self.rr == 0):
                raise ConfigError(
                    f"contrast.rows has '{row}' but its weight (contrast.rc / contrast.rr) is 0, "
                    "so that row would train the plain detector: drop the row or set it > 0."
                )


@dataclass
class EvalConfig:
    gzsd_seen_bias: float = 0.0  # added to seen-class logits in GZSD; 0 = uncalibrated
    draw_images: int = 4  # ZSD test images in detections.png (0 = no figure)
    draw_top: int = 3  # highest-scoring unseen-class detections drawn per image

    def validate(self) -> None:
        if self.draw_images < 0:
            raise ConfigError(f"eval.draw_images must be >= 0; got {self.draw_images}.")
        if self.draw_top < 1:
            raise ConfigError(f"eval.draw_top must be >= 1; got {self.draw_top}.")


def _optim() -> OptimConfig:
    # Unofficial re-implementation (train_contrastzsd.py): Adam 1e-4, lr x0.1 at epochs
    # 4/8/12/16 of 20; weight decay is not set there (0).
    return OptimConfig(
        name="adam", lr=1e-4, weight_decay=0.0, schedule="multistep", milestones=(4, 8, 12, 16)
    )


def _train() -> TrainConfig:
    # 20 epochs (unofficial code); batch 8 is ours (it uses 1 image per step at 800 px).
    return TrainConfig(epochs=20, batch_size=8, eval_batch_size=16)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    contrast: ContrastConfig = field(default_factory=ContrastConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    optim: OptimConfig = field(default_factory=_optim)
    train: TrainConfig = field(default_factory=_train)


def tiny() -> Config:
    """About a minute on 2 cores: digit scenes, the tiny detector from scratch, plain vs full.

    Look at ``map_seen`` (well above 0: the detector finds and names seen digits) and at
    ``zsd_map`` of the two rows (unseen digits 7-9, named through their stroke attributes).
    """
    return Config(
        data=DataConfig(num_train=256, num_val=32, num_test=64),
        contrast=ContrastConfig(rows=("plain", "full")),
        eval=EvalConfig(draw_images=3),
        optim=OptimConfig(name="adam", lr=2e-3, weight_decay=0.0, schedule="cosine"),
        train=TrainConfig(max_steps=150, batch_size=8, eval_every=75, eval_batch_size=16),
    )


def _paper(data: DataConfig) -> Config:
    return Config(
        data=data,
        detector=DetectorConfig(
            backbone="mobilenet_v3_fpn",
            representation_size=1024,
            box_batch_size_per_image=128,  # unofficial config: 128 RoIs, 25 % positive
            rpn_batch_size_per_image=256,
            num_proposals=1000,
            embed_dim=0,
        ),
    )


def paper_voc() -> Config:
    """PASCAL VOC 16/4 (unseen car, dog, sofa, train), 07+12 trainval -> 07 test, 20 epochs.

    Differences from the paper: MobileNetV3-FPN from scratch (no pretrained weights offline)
    instead of an ImageNet ResNet-101; 320 px instead of 600-800; MiniLM name vectors.
    """
    return _paper(DataConfig(name="voc", num_train=0, num_val=500, num_test=0, image_size=320))


def paper_coco() -> Config:
    """MS COCO 2014 65/15 (``--data.coco_split=48_17`` for Bansal et al.'s split), 20 epochs.

    Differences from the paper: as :func:`paper_voc`; train2014 filtered by the ZSD rule and
    val2014 as test (the released image lists are not available offline).
    """
    return _paper(DataConfig(name="coco", num_train=0, num_val=1000, num_test=0, image_size=320))


PRESETS = {"tiny": tiny, "paper_voc": paper_voc, "paper_coco": paper_coco}


# ---------------------------------------------------------------------------------------------
# data and tasks


def _take(dataset, n: int, generator: torch.Generator):
    """A seeded subset of ``n`` images (all when n is 0 or too large) and the rest."""
    perm = torch.randperm(len(dataset), generator=generator).tolist()
    n = len(perm) if n == 0 else min(n, len(perm))
    every = lambda idx: [(i, torch.ones(len(dataset.labels[i]), dtype=torch.bool)) for i in idx]  # noqa: E731
    return dataset.subset(every(sorted(perm[:n]))), dataset.subset(every(sorted(perm[n:])))


def load_data(cfg: DataConfig, *, seed: int):
    """The :class:`frugalcv.data.detection.ZSDData` ``cfg`` names, with a seen validation set."""
    from frugalcv.data import detection as dd

    if cfg.name == "zsd-digits":
        return dd.make_zsd_digits(
            num_train=cfg.num_train,
            num_val=cfg.num_val,
            num_test=cfg.num_test,
            image_size=cfg.image_size,
            semantics=cfg.semantics,
            seed=seed,
        )
    root = cfg.root or None
    if cfg.name == "voc":
        data = dd.load_voc_zsd(root=root)
    else:
        data = dd.load_coco_zsd(root=root, split=cfg.coco_split)
    g = torch.Generator().manual_seed(seed)
    val, train = _take(data.train, cfg.num_val, g)
    train, _ = _take(train, cfg.num_train, g)
    test_zsd, _ = _take(data.test_zsd, cfg.num_test, g)
    test_gzsd, _ = _take(data.test_gzsd, cfg.num_test, g)
    return replace(data, train=train, val=val, test_zsd=test_zsd, test_gzsd=test_gzsd)


def make_task(cfg: Config, data, row: str) -> ContrastZSDTask:
    """The task of one row: the same detector, the row's subnets switched on by their weights."""
    if row not in ROWS:
        raise ValueError(f"unknown row {row!r}; use one of {', '.join(ROWS)}")
    d, c = cfg.detector, cfg.contrast
    use_rc, use_rr = ROWS[row]
    model = SemanticFasterRCNN(
        class_semantics=data.semantics[data.seen_classes],
        backbone=d.backbone,
        image_size=cfg.data.image_size,
        representation_size=d.representation_size,
        box_batch_size_per_image=d.box_batch_size_per_image,
        rpn_batch_size_per_image=d.rpn_batch_size_per_image,
        num_proposals=d.num_proposals,
        embed_dim=d.embed_dim or None,
        temperature=d.temperature,
        backbone_channels=d.backbone_channels,
        anchor_sizes=d.anchor_sizes,
    )
    return ContrastZSDTask(
        model=model,
        semantics=data.semantics,
        seen_classes=data.seen_classes,
        unseen_classes=data.unseen_classes,
        rc_weight=c.rc if use_rc else 0.0,
        rr_weight=c.rr if use_rr else 0.0,
        rc_temperature=c.tau_rc,
        similarity_temperature=c.tau_sim,
        rr_temperature=c.tau_rr,
        rr_dim=c.rr_dim,
        negative_strength=c.negative_strength,
    )


def make_loaders(cfg: Config, data) -> tuple[DatasetLoader, DatasetLoader]:
    """(shuffled training loader, seen validation loader), batches of ``([images], [targets])``."""
    train = DatasetLoader(
        data.train,
        batch_size=cfg.train.batch_size,
        collate_fn=list_collate,
        shuffle=True,
        seed=cfg.train.seed,
        drop_last=True,
    )
    val = DatasetLoader(data.val, batch_size=cfg.train.eval_batch_size, collate_fn=list_collate)
    return train, val


# ---------------------------------------------------------------------------------------------
# evaluation


@torch.no_grad()
def predict_set(
    task: ContrastZSDTask, dataset, *, classes: Tensor, bias: Tensor | None = None, batch_size=16
) -> tuple[list[dict], list[dict]]:
    """Detections among ``classes`` (global ids) on every image of ``dataset``, and its targets."""
    preds, targets = [], []
    for start in range(0, len(dataset), batch_size):
        images, tgts = list_collate(
            [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        )
        out = task.predict(to_module(list(images), task), classes=classes, bias=bias)
        preds += [{k: v.cpu() for k, v in p.items()} for p in out]
        targets += [{"boxes": t["boxes"], "labels": t["labels"]} for t in tgts]
    return preds, targets


def score_test_sets(task: ContrastZSDTask, data, *, seen_bias: float = 0.0, batch_size: int = 16):
    """ZSD and GZSD numbers of a trained task (the keys of :data:`ZSD_KEYS`, :data:`GZSD_KEYS`).

    ``seen_bias`` is added to the seen-class logits in GZSD (calibrated stacking; 0 = none).
    """
    preds, targets = predict_set(
        task, data.test_zsd, classes=data.unseen_classes, batch_size=batch_size
    )
    z = zsd_metrics(preds, targets, unseen_classes=data.unseen_classes)
    out = {"zsd_map": z["map"]}
    for iou in (0.4, 0.5, 0.6):
        out[f"zsd_recall100_iou{round(iou * 100)}"] = z[f"recall@100_iou{iou:g}"]
    classes = torch.cat([data.seen_classes, data.unseen_classes])
    bias = torch.cat(
        [torch.full((len(data.seen_classes),), seen_bias), torch.zeros(len(data.unseen_classes))]
    ).to(task.semantics.device)
    preds, targets = predict_set(
        task, data.test_gzsd, classes=classes, bias=bias, batch_size=batch_size
    )
    g = gzsd_metrics(
        preds, targets, seen_classes=data.seen_classes, unseen_classes=data.unseen_classes
    )
    out.update({f"gzsd_{k}": v for k, v in g.items()})
    return out


def draw_detections(
    tasks: dict[str, ContrastZSDTask],
    data,
    path: str | Path,
    *,
    num_images: int = 4,
    top: int = 3,
) -> Path:
    """PNG grid: one row per model, its unseen-class detections on the first ZSD test images.

    Ground-truth boxes are dashed white; the ``top`` highest-scoring detections of each image
    (predicting among the unseen classes) are solid, labelled with class name and score.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = min(num_images, len(data.test_zsd))
    if n < 1 or not tasks:
        raise ValueError("draw_detections needs at least one model and one ZSD test image")
    samples = [data.test_zsd[i] for i in range(n)]
    fig = Figure(figsize=(2.4 * n, 2.5 * len(tasks)), dpi=100)
    FigureCanvasAgg(fig)
    colours = ("tab:red", "tab:orange", "tab:cyan", "tab:green", "tab:purple", "tab:pink")
    unseen = data.unseen_classes.tolist()
    for r, (row, task) in enumerate(tasks.items()):
        images = [s[0] for s in samples]
        dets = task.predict(to_module(images, task), classes=data.unseen_classes)
        for j, ((image, target), det) in enumerate(zip(samples, dets, strict=True)):
            ax = fig.add_subplot(len(tasks), n, r * n + j + 1)
            ax.imshow(image.permute(1, 2, 0).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(ROW_LABELS.get(row, row), fontsize=8)
            for box in target["boxes"].tolist():
                ax.add_patch(_rect(box, colour="white", dashed=True))
            keep = det["scores"].cpu().argsort(descending=True)[:top]
            for box, label, score in zip(
                det["boxes"].cpu()[keep].tolist(),
                det["labels"].cpu()[keep].tolist(),
                det["scores"].cpu()[keep].tolist(),
                strict=True,
            ):
                colour = colours[unseen.index(label) % len(colours)]
                ax.add_patch(_rect(box, colour=colour, dashed=False))
                name = data.class_names[label]
                ax.text(box[0], box[1], f"{name} {score:.2f}", color=colour, fontsize=6,
                        va="bottom")  # fmt: skip
    fig.suptitle("unseen-class detections (ZSD); dashed: ground truth", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def _rect(box: list[float], *, colour: str, dashed: bool):
    from matplotlib.patches import Rectangle

    x0, y0, x1, y1 = box
    return Rectangle(
        (x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=colour, linewidth=1.2,
        linestyle="--" if dashed else "-",
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# the run


def run(cfg: Config, *, preset: str = "custom") -> dict:
    """Train every row of ``contrast.rows`` from one initialisation, score ZSD and GZSD.

    Returns rows.json's dict; each row's ``final`` holds ``map_seen`` (validation, the monitor),
    the ZSD keys and the GZSD keys; ``step_s`` is its wall seconds per optimizer step
    (evaluations included).
    """
    t0 = time.time()
    ctx = start_run(cfg, recipe="contrastzsd", preset=preset)
    data = load_data(cfg.data, seed=cfg.train.seed)
    loaders = make_loaders(cfg, data)
    tasks: dict[str, ContrastZSDTask] = {}

    def build(row: str) -> ContrastZSDTask:
        tasks[row] = make_task(cfg, data, row)
        return tasks[row]

    def extra(row: str, task: ContrastZSDTask) -> dict:
        from frugalcv.core.measure import count_params

        return {
            "label": ROW_LABELS[row],
            "rc_weight": task.rc_weight,
            "rr_weight": task.rr_weight,
            "params": count_params(task.deployable()),
            "num_train_images": len(data.train),
        }

    rows = train_rows(
        ctx, cfg, rows=list(cfg.contrast.rows), make_task=build, loaders=loaders, extra=extra
    )
    for summary in rows:
        task = tasks[summary["name"]]
        task.eval()
        metrics = score_test_sets(
            task,
            data,
            seen_bias=cfg.eval.gzsd_seen_bias,
            batch_size=cfg.train.eval_batch_size,
        )
        summary["final"] = {**summary["final"], **metrics}
        summary["gzsd_seen_bias"] = cfg.eval.gzsd_seen_bias
        summary["step_s"] = round(summary["wall_s"] / max(1, summary["steps"]), 4)
        if ctx.is_main:
            write_json(ctx.out_dir / summary["name"] / "summary.json", summary)
    if cfg.eval.draw_images > 0 and ctx.is_main:
        png = draw_detections(
            tasks,
            data,
            ctx.out_dir / "detections.png",
            num_images=cfg.eval.draw_images,
            top=cfg.eval.draw_top,
        )
        for summary in rows:
            summary["detections_png"] = png.name
    out = write_rows(ctx, dataset=data.name, rows=rows)
    if ctx.is_main:
        _say(rows, data, time.time() - t0)
    return out


def _say(rows: list[dict], data, wall_s: float) -> None:
    for r in rows:
        f = r["final"]
        print(
            f"{ROW_LABELS.get(r['name'], r['name']):>24}: seen val mAP {f['map_seen']:.3f}  "
            f"ZSD mAP {f['zsd_map']:.3f}  R@100(0.5) {f['zsd_recall100_iou50']:.3f}  "
            f"GZSD S {f['gzsd_map_seen']:.3f} U {f['gzsd_map_unseen']:.3f} "
            f"H {f['gzsd_map_hm']:.3f}"
        )
    names = ", ".join(data.class_names[c] for c in data.unseen_classes.tolist())
    print(
        f"notice: ZSD mAP is on the unseen classes ({names}) the detector never saw boxes of; "
        f"compare each row with the plain one (same init, data, schedule). GZSD is uncalibrated "
        f"unless eval.gzsd_seen_bias is set. Detections: detections.png ({wall_s:.0f} s)."
    )


__all__ = [
    "ROWS",
    "ROW_LABELS",
    "Config",
    "ContrastConfig",
    "DataConfig",
    "DetectorConfig",
    "EvalConfig",
    "PRESETS",
    "draw_detections",
    "load_data",
    "make_loaders",
    "make_task",
    "paper_coco",
    "paper_voc",
    "predict_set",
    "run",
    "score_test_sets",
    "tiny",
]
