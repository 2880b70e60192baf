"""DDS-Net Stage 1: random channel configurations and sandwich training of the supernet."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from frugalcv.core.task import Task, accumulate_pass, clip_and_step
from frugalcv.slim.ddsnet.metrics import denoise_loss, psnr_per_image
from frugalcv.slim.ddsnet.supernet import Config, SlimDnCNN

__all__ = ["RANDOM_MODES", "DenoiseSupernetTask", "random_config", "sandwich_configs"]

RANDOM_MODES = ("layerwise", "uniform")


def random_config(
    choices: Sequence[int],
    num_layers: int,
    *,
    mode: str = "layerwise",
    rng: random.Random | None = None,
) -> Config:
    """A random configuration: every layer's count drawn independently and uniformly from
    ``choices`` (``"layerwise"``, the space tailoring searches) or one count for all layers
    (``"uniform"``, Slimmable Networks' width multiplier)."""
    draw = (rng or random).choice
    if mode == "layerwise":
        return tuple(draw(list(choices)) for _ in range(num_layers))
    if mode == "uniform":
        return (draw(list(choices)),) * num_layers
    raise ValueError(f"unknown random mode {mode!r}; use one of {RANDOM_MODES}")


def sandwich_configs(
    supernet: SlimDnCNN,
    num_random: int,
    *,
    mode: str = "layerwise",
    rng: random.Random | None = None,
) -> list[Config]:
    """Sandwich rule (Yu & Huang, ICCV 2019): ``[largest, smallest] + num_random`` random
    configurations."""
    return [supernet.largest_config, supernet.smallest_config] + [
        random_config(supernet.choices, supernet.num_layers, mode=mode, rng=rng)
        for _ in range(num_random)
    ]


def _pair(batch: Any) -> tuple[Tensor, Tensor]:
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise ValueError("a denoising batch is (noisy, clean), each (B, C, H, W)")
    return batch[0], batch[1]


class DenoiseSupernetTask(Task):
    """Stage 1: train the weight-shared supernet with the sandwich rule.

    Per batch ``(y, x)`` (noisy, clean), for the configurations of :func:`sandwich_configs`:
    ``L_cfg = mean (f_cfg(y) - x)^2``, plus, with ``distill_weight > 0``,
    ``distill_weight * mean (f_cfg(y) - sg(f_max(y)))^2`` for the non-largest ones (in-place
    distillation from the live largest). Gradients are summed over the configurations, then one
    optimizer step (:meth:`step`).

    Args:
        model: the supernet.
        num_random: random configurations per batch (2: four passes as in DS-Net's sandwich).
        random_mode: ``"layerwise"`` (default) or ``"uniform"`` (see :func:`random_config`).
        loss: ``"l2"`` (DnCNN) or ``"l1"``.
        distill_weight: in-place distillation weight (0: every configuration learns from the
            clean image only).

    Differences from the paper: the paper's training loss, sampling of configurations and any
    distillation are not public; this is the sandwich rule of DS-Net Stage I with the ground
    truth as target (a regression task has an exact target, so DS-Net's bootstrapping from an
    EMA teacher is off by default).
    """

    monitor = ("psnr", "max")

    def __init__(
        self,
        *,
        model: SlimDnCNN,
        num_random: int = 2,
        random_mode: str = "layerwise",
        loss: str = "l2",
        distill_weight: float = 0.0,
    ) -> None:
        super().__init__()
        if random_mode not in RANDOM_MODES:
            raise ValueError(f"unknown random_mode {random_mode!r}; use one of {RANDOM_MODES}")
        if loss not in ("l2", "l1"):
            raise ValueError(f"unknown loss {loss!r}; use 'l2' or 'l1'")
        if num_random < 0 or distill_weight < 0:
            raise ValueError("num_random and distill_weight must be >= 0")
        self.model = model
        self.num_random, self.random_mode = num_random, random_mode
        self.loss, self.distill_weight = loss, distill_weight

    def forward(
        self, batch: Any, config: Sequence[int] | None = None, target: Tensor | None = None
    ) -> dict[str, Tensor]:
        return self.training_step(batch, config=config, target=target)

    def training_step(
        self, batch: Any, *, config: Sequence[int] | None = None, target: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Loss of one configuration (default the largest); ``target`` is the detached largest
        output for in-place distillation. Returns ``{"loss", "output"}`` (output detached)."""
        noisy, clean = _pair(batch)
        out = self.model(noisy, config=config or self.model.largest_config)
        loss = denoise_loss(out, clean, kind=self.loss)
        if target is not None and self.distill_weight > 0:
            loss = loss + self.distill_weight * denoise_loss(out, target, kind=self.loss)
        return {"loss": loss, "output": out.detach()}

    def step(
        self,
        batch: Any,
        *,
        forward: Any,
        optimizers: Sequence[torch.optim.Optimizer],
        fabric: Any,
        grad_clip: float = 0.0,
    ) -> dict[str, Tensor]:
        """One sandwich step; ``fabric=None`` runs plain torch (``loss.backward()``). Under DDP
        the gradient all-reduce runs only after the last configuration's backward."""
        opt = optimizers[0]
        opt.zero_grad(set_to_none=True)
        configs = sandwich_configs(self.model, self.num_random, mode=self.random_mode)
        total, target, logs = 0.0, None, {}
        for i, cfg in enumerate(configs):
            out = accumulate_pass(
                forward, batch, fabric=fabric, last=i == len(configs) - 1, config=cfg, target=target
            )
            if i == 0 and self.distill_weight > 0:
                target = out["output"]
            total = total + out["loss"].detach()
            if i < 2:
                logs["loss_largest" if i == 0 else "loss_smallest"] = out["loss"].detach()
        clip_and_step(
            opt,
            forward=forward,
            fabric=fabric,
            grad_clip=grad_clip,
            parameters=self.model.parameters(),
        )
        return {"loss": total / len(configs), **logs}

    def validation_step(self, batch: Any) -> dict[str, Tensor]:
        """Mean PSNR (dB) of the largest (``psnr``) and smallest (``psnr@min``) configurations
        and of the noisy input (``psnr_noisy``)."""
        noisy, clean = _pair(batch)
        m = self.model
        return {
            "psnr": psnr_per_image(m(noisy, config=m.largest_config), clean).mean(),
            "psnr@min": psnr_per_image(m(noisy, config=m.smallest_config), clean).mean(),
            "psnr_noisy": psnr_per_image(noisy, clean).mean(),
        }
