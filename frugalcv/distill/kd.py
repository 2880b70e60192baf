"""Hinton knowledge distillation on logits.

Geoffrey Hinton, Oriol Vinyals, Jeff Dean, "Distilling the Knowledge in a Neural Network",
NIPS 2014 Deep Learning Workshop, arXiv 1503.02531.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["kd_loss"]


def kd_loss(logits_s: Tensor, logits_t: Tensor, *, temperature: float = 4.0) -> Tensor:
    """Temperature-softened KL divergence from the teacher to the student, times T^2.

    ``T^2 * mean_b sum_k p_t[b, k] * (log p_t[b, k] - log p_s[b, k])`` with
    ``p = softmax(logits / T)``: KL(p_t || p_s) summed over classes and averaged over the batch.
    The T^2 factor keeps the gradient scale roughly independent of T (Hinton et al., section 2).
    This is RepDistiller's ``DistillKL`` (``kl_div(..., reduction="sum") * T^2 / B``), which the
    ICKD CIFAR code uses with T = 4 (``--kd_T 4``, the default here).

    The function is only the soft term. Weights come from the recipe (see
    ``frugalcv.distill.ickd.DistillWeights``). For reference, torchdistill's ``KDLoss(T, alpha)``,
    used by the ICKD ImageNet config (T = 1, alpha = 0.5), combines
    ``alpha * CE(logits_s, y) + (1 - alpha) * kd_loss(logits_s, logits_t, temperature=T)``.

    The teacher logits are used as given: pass them detached.

    Args:
        logits_s: (B, K) student logits.
        logits_t: (B, K) teacher logits.
        temperature: softmax temperature T > 0.

    Returns:
        Scalar loss.
    """
    if logits_s.dim() != 2 or logits_s.shape != logits_t.shape:
        raise ValueError(
            f"logits_s and logits_t must both be (B, K) with the same shape; "
            f"got {tuple(logits_s.shape)} and {tuple(logits_t.shape)}"
        )
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0; got {temperature}")
    log_p_s = torch.log_softmax(logits_s / temperature, dim=1)  # (B, K)
    log_p_t = torch.log_softmax(logits_t / temperature, dim=1)  # (B, K)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1)  # (B,)
    return kl.mean() * temperature**2
