"""DS-Net / DS-Net++ training: Stage I (supernet) and Stage II (gate) as frugalcv Tasks.

C. Li et al., "Dynamic Slimmable Network", CVPR 2021 (arXiv 2103.13258) and "DS-Net++: Dynamic
Weight Slicing for Efficient Inference in CNNs and Vision Transformers", TPAMI 2022 (arXiv
2109.10060). Official code (MobileNetV1 supernet only): changlin31/DS-Net commit 15cd303,
``dyn_slim/apis/train_slim.py`` (Stage I) and ``train_slim_gate.py`` (Stage II).

Stage I (:class:`SupernetTask`), per batch: the sandwich rule (largest, slimmest and
``num_random`` random widths), gradients accumulated over the widths, one optimizer step;
in-place bootstrapping: the largest learns from the labels, every other width from the
softmax of an EMA copy's largest output (``L = -sum_c p^EMA_c log softmax(z_w)_c``); optional
multi-view consistency on two augmented views. :func:`recalibrate_supernet` recomputes the
per-width BN statistics at the end.

Stage II (:class:`GateTask`): the supernet is frozen (BN in eval mode); the gate learns from
sandwich gate sparsification targets (:func:`~frugalcv.slim.gate.sgs_targets`), the task loss
through the straight-through route, and a complexity penalty.

DDP: every forward goes through the Fabric-wrapped task (``forward(batch, width=..,
target=..)``, which calls :meth:`SupernetTask.training_step` with those arguments), each forward
is followed by its backward, and gradient all-reduce is skipped (``fabric.no_backward_sync``)
for all but the last width of a batch. Sliced weights receive full-shape (partly zero)
gradients, so no parameter is unused; the gate's parameters are frozen in Stage I so DDP does
not wait for them. Every rank draws the same random widths when seeded alike.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from frugalcv.core.task import Task, accumulate_pass, clip_and_step
from frugalcv.layers.slimmable import recalibrate_bn
from frugalcv.slim.cost import macs_per_width
from frugalcv.slim.gate import SGS_RULES, complexity_loss, sgs_targets
from frugalcv.slim.supernet import SlimSupernet, grouped_forward

__all__ = [
    "BOOTSTRAP_OPTIONS",
    "BufferEMA",
    "DSNET_STEPS_PER_EPOCH",
    "GateTask",
    "SupernetTask",
    "ema_decay_for",
    "ema_horizon_note",
    "recalibrate_supernet",
    "sandwich_widths",
    "soft_cross_entropy",
]

BOOTSTRAP_OPTIONS = ("ema", "live", "none")


DSNET_STEPS_PER_EPOCH = 2502  # ImageNet-1k train images / the DS-Net code's batch of 512


def ema_decay_for(
    steps_per_epoch: int, *, decay: float = 0.997, reference_steps: int = DSNET_STEPS_PER_EPOCH
) -> float:
    """The EMA decay with the same horizon in epochs as ``decay`` at ``reference_steps`` steps
    per epoch: ``decay ** (reference_steps / steps_per_epoch)``.

    DS-Net's 0.997 averages over about 333 steps, 0.13 of an ImageNet epoch at batch 512; on a
    6000-image set at batch 64 (93 steps per epoch) the same 0.997 would average over 3.6
    epochs, a teacher that lags a 15-epoch run by a quarter of it. Example:
    ``ema_decay_for(93) ~= 0.9223``.
    """
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1; got {steps_per_epoch}")
    return float(decay ** (reference_steps / steps_per_epoch))


def ema_horizon_note(decay: float, steps_per_epoch: int) -> str | None:
    """A warning when an EMA teacher averages over more than one epoch (None otherwise).

    The bootstrapped sub-networks learn from the EMA's largest output; a teacher that lags
    the model by epochs is near-uniform early on and pulls the shared weights to a constant
    prediction (measured on mnist-rot-back: 0.997 at 93 steps per epoch kept every width at
    11% for 8 epochs).
    """
    if decay <= 0 or steps_per_epoch < 1:
        return None
    horizon = 1.0 / (1.0 - decay)
    if horizon <= steps_per_epoch:
        return None
    return (
        f"dsnet.ema_decay={decay:g} averages over {horizon:.0f} steps, "
        f"{horizon / steps_per_epoch:.1f} epochs of {steps_per_epoch} steps: the bootstrapping "
        f"teacher will lag far behind the model. DS-Net's 0.997 at this many steps per epoch "
        f"is dsnet.ema_decay={ema_decay_for(steps_per_epoch):.4f} "
        f"(frugalcv.slim.ema_decay_for)."
    )


def soft_cross_entropy(logits: Tensor, target_probs: Tensor) -> Tensor:
    """``mean_b sum_c -p_bc log softmax(z_b)_c`` (timm ``SoftTargetCrossEntropy``, no temperature,
    as the DS-Net code uses for in-place bootstrapping).

    Args:
        logits: ``(B, C)``; target_probs: ``(B, C)`` rows summing to 1 (no gradient needed).
    """
    if logits.shape != target_probs.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} and targets "
            f"{tuple(target_probs.shape)} must have the same shape"
        )
    return -(target_probs * F.log_softmax(logits, dim=-1)).sum(-1).mean()


def sandwich_widths(
    widths: Sequence[float], num_random: int, *, rng: random.Random | None = None
) -> list[float]:
    """Sandwich rule: ``[largest, slimmest] + num_random`` widths drawn uniformly (with
    replacement) from the widths strictly between them (from all widths when there are none).

    The DS-Net code draws ``random.randint(1, 13)`` over its 14 widths and runs the order
    largest, uniform, uniform, smallest; the order does not matter for accumulated gradients.
    """
    ws = sorted(widths)
    middle = ws[1:-1] or ws
    draw = rng.choice if rng is not None else random.choice
    return [ws[-1], ws[0]] + [draw(middle) for _ in range(num_random)]


class BufferEMA(nn.Module):
    """An exponential moving average copy of a model, holding only buffers.

    ``theta_ema <- decay * theta_ema + (1 - decay) * theta`` after each optimizer step. The
    model's floating-point buffers (BN running statistics) are averaged the same way with
    ``buffers="ema"`` (timm ``ModelEma``, which the DS-Net code uses: the statistics then lag
    like the weights they normalise) or copied with ``buffers="copy"``; integer buffers
    (``num_batches_tracked``) are always copied. The copy's parameters are turned into
    buffers, so no optimizer, ``requires_grad`` or DDP gradient hook ever touches it, and it is
    saved with the task's ``state_dict``. It always runs in eval mode.

    Copying the live statistics onto lagging weights mismatches them: with a short schedule
    and a fast-moving model the copy then predicts at chance for epochs, and so does every
    sub-network bootstrapped from it.
    """

    def __init__(self, model: nn.Module, *, decay: float, buffers: str = "ema") -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1); got {decay}")
        if buffers not in ("ema", "copy"):
            raise ValueError(f"buffers must be 'ema' or 'copy'; got {buffers!r}")
        self.decay, self.buffers = decay, buffers
        module = copy.deepcopy(model)
        for m in module.modules():
            for name, p in list(m._parameters.items()):
                if p is None:
                    continue
                del m._parameters[name]
                m.register_buffer(name, p.detach().clone())
        self.module = module.eval()
        self._param_names = [n for n, _ in model.named_parameters()]

    def train(self, mode: bool = True) -> BufferEMA:
        super().train(mode)
        self.module.eval()
        return self

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema = dict(self.module.named_buffers())
        params = dict(model.named_parameters())
        for name in self._param_names:
            ema[name].lerp_(params[name].detach(), 1.0 - self.decay)
        for name, b in model.named_buffers():
            if self.buffers == "ema" and b.is_floating_point():
                ema[name].lerp_(b.detach(), 1.0 - self.decay)
            else:
                ema[name].copy_(b)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)


def _unpack(batch: Any) -> tuple[list[Tensor], Tensor]:
    """``(x, y)`` -> ([x], y); ``(x1, x2, y)`` (two augmented views) -> ([x1, x2], y)."""
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise ValueError("a DS-Net batch is (x, y) or, for multi-view consistency, (x1, x2, y)")
    return list(batch[:-1]), batch[-1]


class SupernetTask(Task):
    """Stage I: sandwich-rule supernet training with in-place bootstrapping (IB).

    Loss per width ``w`` (views ``v``; one view unless the batch is ``(x1, x2, y)``):

    - largest: ``mean_v LS-CE(f_max(x_v), y)`` (label smoothing 0.1, DS-Net code);
    - others, with bootstrapping: ``mean_v H(p_T(x_v), f_w(x_v))`` plus, with two views and
      ``mvco_weight > 0``, ``mvco_weight * mean_v H(p_T(x_v'), f_w(x_v))`` (the other view's
      teacher); without bootstrapping: LS-CE to the labels.

    ``p_T`` is the softmax of the EMA copy at the largest width (``bootstrap="ema"``, DS-Net)
    or of the live largest output, detached (``"live"``, Slimmable Networks' in-place
    distillation). ``ensemble=True`` is DS-Net's IEB: the slimmest width learns from the mean
    of the EMA's largest and random-width softmaxes.

    Args:
        model: the supernet; its gate is frozen here (the gate's SE attention head, if any,
            trains with the supernet).
        num_random: random widths per batch (2 in the DS-Net code: 4 passes in all).
        bootstrap: ``"ema"``, ``"live"`` or ``"none"``.
        ema_decay: 0.997 (DS-Net ``mobilenetv1_bn_uniform.yml``); for another number of steps
            per epoch, :func:`ema_decay_for` keeps its horizon in epochs.
        ema_buffers: ``"ema"`` (timm ``ModelEma``, the DS-Net code) or ``"copy"``; see
            :class:`BufferEMA`.
        label_smoothing: 0.1 (DS-Net code).
        mvco_weight: weight of the cross-view term (0: off).

    Differences from the paper: the MvCo form (cross-view bootstrapping) is a reconstruction;
    the authors' code also sets all-zero gradients to None before the step (weight decay then
    skips never-used slices; here weight decay applies to every parameter).

    :meth:`deployable` is the EMA copy when there is one: the weights that validation measures
    and that the DS-Net code carries into BN recalibration and Stage II.
    """

    monitor = ("acc", "max")

    def __init__(
        self,
        *,
        model: SlimSupernet,
        num_random: int = 2,
        bootstrap: str = "ema",
        ema_decay: float = 0.997,
        ema_buffers: str = "ema",
        label_smoothing: float = 0.1,
        ensemble: bool = False,
        mvco_weight: float = 0.0,
    ) -> None:
        super().__init__()
        if bootstrap not in BOOTSTRAP_OPTIONS:
            raise ValueError(f"unknown bootstrap {bootstrap!r}; use one of {BOOTSTRAP_OPTIONS}")
        if ensemble and bootstrap != "ema":
            raise ValueError("ensemble=True (IEB) needs bootstrap='ema'")
        if num_random < 0:
            raise ValueError(f"num_random must be >= 0; got {num_random}")
        self.model = model
        for p in model.gate.slim_parameters():
            p.requires_grad_(False)
        self.num_random, self.bootstrap = num_random, bootstrap
        self.label_smoothing, self.ensemble, self.mvco_weight = (
            label_smoothing,
            ensemble,
            mvco_weight,
        )
        self.ema = (
            BufferEMA(model, decay=ema_decay, buffers=ema_buffers) if bootstrap == "ema" else None
        )

    def deployable(self) -> nn.Module:
        """The EMA copy (its parameters are buffers; load its ``state_dict`` into a fresh
        supernet to train further), or the live model without bootstrapping from an EMA."""
        return self.ema.module if self.ema is not None else self.model

    def forward(
        self, batch: Any, width: float | None = None, target: Sequence[Tensor] | None = None
    ) -> dict[str, Tensor]:
        return self.training_step(batch, width=width, target=target)

    def training_step(
        self, batch: Any, *, width: float | None = None, target: Sequence[Tensor] | None = None
    ) -> dict[str, Tensor]:
        """Loss of one width (default the largest) on a batch.

        Args:
            target: per-view teacher probabilities ``(B, C)``; None: labels (LS-CE).

        Returns:
            ``{"loss", "logits"}`` (logits of the first view, detached).
        """
        xs, y = _unpack(batch)
        w = self.model.widths[-1] if width is None else width
        logits = [self.model(x, width=w) for x in xs]
        if target is None:
            losses = [F.cross_entropy(z, y, label_smoothing=self.label_smoothing) for z in logits]
            loss = torch.stack(losses).mean()
        else:
            loss = torch.stack(
                [soft_cross_entropy(z, t) for z, t in zip(logits, target, strict=True)]
            ).mean()
            if len(xs) == 2 and self.mvco_weight > 0:
                cross = soft_cross_entropy(logits[0], target[1]) + soft_cross_entropy(
                    logits[1], target[0]
                )
                loss = loss + self.mvco_weight * cross / 2
        return {"loss": loss, "logits": logits[0].detach()}

    @torch.no_grad()
    def _ema_probs(self, xs: list[Tensor], width: float) -> list[Tensor]:
        return [F.softmax(self.ema(x, width=width), dim=-1) for x in xs]

    def step(
        self,
        batch: Any,
        *,
        forward: Any,
        optimizers: Sequence[torch.optim.Optimizer],
        fabric: Any,
        grad_clip: float = 0.0,
    ) -> dict[str, Tensor]:
        """One sandwich step. ``fabric=None`` runs plain torch (``loss.backward()``)."""
        opt = optimizers[0]
        opt.zero_grad(set_to_none=True)
        xs, _ = _unpack(batch)
        widths = sandwich_widths(self.model.widths, self.num_random)
        teacher = None
        if self.bootstrap == "ema":
            teacher = self._ema_probs(xs, widths[0])
        smallest_teacher = teacher
        if self.ensemble and teacher is not None:
            extra = [self._ema_probs(xs, w) for w in widths[2:]]
            smallest_teacher = [
                torch.stack([t] + [e[v] for e in extra]).mean(0) for v, t in enumerate(teacher)
            ]
        logs: dict[str, Tensor] = {}
        total = 0.0
        for i, w in enumerate(widths):
            if i == 0 or self.bootstrap == "none":
                tgt = None
            elif i == 1:
                tgt = smallest_teacher
            else:
                tgt = teacher
            out = accumulate_pass(
                forward, batch, fabric=fabric, last=i == len(widths) - 1, width=w, target=tgt
            )
            if i == 0 and self.bootstrap == "live":
                # live largest of view 0 for every view (views are usually of the same image)
                teacher = [F.softmax(out["logits"], dim=-1)] * len(xs)
                smallest_teacher = teacher
            total = total + out["loss"].detach()
            if i == 0:
                logs["loss_largest"] = out["loss"].detach()
            elif i == 1:
                logs["loss_smallest"] = out["loss"].detach()
        clip_and_step(
            opt,
            forward=forward,
            fabric=fabric,
            grad_clip=grad_clip,
            parameters=self.model.parameters(),
        )
        if self.ema is not None:
            self.ema.update(self.model)
        return {"loss": total / len(widths), **logs}

    def validation_step(self, batch: Any) -> dict[str, Tensor]:
        """Accuracy and CE of every routing width (keys ``acc@w``, ``ce@w``); ``acc`` is the
        largest's. Evaluates the EMA copy when there is one (as the DS-Net code does)."""
        xs, y = _unpack(batch)
        net = self.ema if self.ema is not None else self.model
        out: dict[str, Tensor] = {}
        for w in self.model.widths:
            z = net(xs[0], width=w)
            out[f"acc@{w:g}"] = (z.argmax(-1) == y).float().mean()
            out[f"ce@{w:g}"] = F.cross_entropy(z, y)
        out["acc"] = out[f"acc@{self.model.widths[-1]:g}"]
        return out


@torch.no_grad()
def recalibrate_supernet(
    model: SlimSupernet, batches: Iterable, *, max_batches: int | None = None
) -> None:
    """Recompute the per-width BN statistics of every routing width from ``batches``
    (DS-Net ``reset_bn``: after Stage I, before Stage II and evaluation)."""
    recalibrate_bn(
        model,
        batches,
        widths=model.widths,
        forward=lambda x, w: model(x, width=w),
        max_batches=max_batches,
    )


class GateTask(Task):
    """Stage II: train the gate of a frozen supernet.

    ``loss = sgs_weight * CE(gate_logits, t) + ce_weight * CE(f_route(x), y)
    + complexity_weight * (E[MACs] / unit)^2``, with ``t`` from :func:`sgs_targets` (slimmest /
    largest sub-network right or wrong on this input), ``f_route`` the grouped sliced forward at
    the sampled route, multiplied by the straight-through gate weight so that the task loss
    reaches the gate (DS-Net keeps this term "to choose intermediate" widths, issue #10).

    Args:
        model: a supernet after Stage I (and BN recalibration); everything but the gate's
            slimming head is frozen and held in eval mode.
        input_shape: one sample's shape, e.g. ``(3, 32, 32)``, for the MACs per width.
        sgs_rule: ``"official"`` or ``"paper"`` (see :func:`sgs_targets`).
        complexity_weight: 0.5 (DS-Net ``train_slim_gate.py``).
        macs_unit: divisor of MACs in the penalty; None (default) uses the largest width's
            MACs, so the penalty is ``(routed fraction of full MACs)^2``; 1e9 is the authors'.
        double_softmax: feed the Gumbel softmax probabilities to the SGS cross-entropy as
            logits (the authors' code does; off by default).
        label_smoothing: 0.1 on both cross-entropies (DS-Net code).

    Differences from the paper: penalty normalised to the largest width by default (with
    the authors' 1e9 it is negligible for CIFAR-sized nets).
    """

    monitor = ("acc", "max")

    def __init__(
        self,
        *,
        model: SlimSupernet,
        input_shape: Sequence[int],
        sgs_weight: float = 1.0,
        ce_weight: float = 1.0,
        complexity_weight: float = 0.5,
        sgs_rule: str = "official",
        macs_unit: float | None = None,
        double_softmax: bool = False,
        label_smoothing: float = 0.1,
    ) -> None:
        super().__init__()
        if sgs_rule not in SGS_RULES:
            raise ValueError(f"unknown sgs_rule {sgs_rule!r}; use one of {SGS_RULES}")
        if model.trunk_width is None:
            raise ValueError(
                "gate training needs a fixed trunk: build the supernet with trunk_width set"
            )
        self.model = model
        model.requires_grad_(False)
        for p in model.gate.slim_parameters():
            p.requires_grad_(True)
        macs = macs_per_width(model, input_shape=input_shape)
        self.register_buffer("choice_macs", torch.tensor([float(macs[w]) for w in model.widths]))
        self.macs_unit = float(macs_unit) if macs_unit else float(self.choice_macs[-1])
        self.sgs_weight, self.ce_weight = sgs_weight, ce_weight
        self.complexity_weight, self.sgs_rule = complexity_weight, sgs_rule
        self.double_softmax, self.label_smoothing = double_softmax, label_smoothing

    def train(self, mode: bool = True) -> GateTask:
        super().train(mode)
        self.model.eval()  # frozen supernet: BN statistics stay as recalibrated
        self.model.gate.train(mode)  # Gumbel sampling while training
        return self

    def training_step(self, batch: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
        x, y = batch
        m = self.model
        with torch.no_grad():
            f = m.forward_trunk(x)
            target = sgs_targets(
                m.forward_body(f, m.widths[0]),
                m.forward_body(f, m.widths[-1]),
                y,
                num_choices=m.num_choices,
                rule=self.sgs_rule,
            )
        g = m.route(f)
        sgs_in = g.soft if self.double_softmax else g.logits
        sgs = F.cross_entropy(sgs_in, target, label_smoothing=self.label_smoothing)
        logits = grouped_forward(m, f, g.index, weights=g.weights)
        ce = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        cplx = complexity_loss(g.weights, self.choice_macs, unit=self.macs_unit)
        loss = self.sgs_weight * sgs + self.ce_weight * ce + self.complexity_weight * cplx
        macs = (g.weights.detach() * self.choice_macs).sum(-1).mean()
        return {
            "loss": loss,
            "sgs": sgs.detach(),
            "ce": ce.detach(),
            "complexity": cplx.detach(),
            "macs": macs,
        }

    def validation_step(self, batch: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
        """Deterministic routing: accuracy, mean routed MACs, fraction routed to each width."""
        x, y = batch
        logits, route = self.model.forward_dynamic(x, return_route=True)
        out = {
            "acc": (logits.argmax(-1) == y).float().mean(),
            "macs": self.choice_macs[route].mean(),
        }
        for k, w in enumerate(self.model.widths):
            out[f"route@{w:g}"] = (route == k).float().mean()
        return out
