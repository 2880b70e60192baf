"""Training-free proxies scored at initialisation, and BaLeNAS-TF selection with them.

Sign convention: every proxy here is returned so that **higher = better** (the convention of the
zero-cost proxy literature, SamsungLabs/zero-cost-nas issues 4 and 14); a degenerate case that
carries no information (a singular NASWOT kernel, a constant Jacobian) scores ``-inf``.

- :func:`naswot_score` (Mellor et al., "Neural Architecture Search without Training", ICML 2021,
  v2): binary codes c = 1[x > 0] of every ReLU's input per sample; kernel
  K = sum_relu (c c^T + (1 - c)(1 - c)^T) (the number of units where two samples agree);
  score = log |det K|.
- :func:`jacob_cov_score` (NASWOT v1): J = d(sum of outputs)/dx per sample, C = corrcoef(J),
  eigenvalues v of C; score = -sum_i [log(v_i + k) + 1 / (v_i + k)], k = 1e-5.
- :func:`synflow_score` (Tanaka et al., NeurIPS 2020, as a proxy by Abdelfattah et al., ICLR
  2021): weights replaced by |theta|, BN removed, float64, input all ones (1, C, H, W),
  R = sum(output); score = sum |theta * dR/dtheta| over Conv2d/Linear weights.
- :func:`snip_score` (Lee et al., ICLR 2019): sum |theta * dL/dtheta| over Conv2d/Linear weights.
- :func:`grad_norm_score`: sum over Conv2d/Linear layers of ||dL/dW||_2.

Definitions follow the descriptions of SamsungLabs/zero-cost-nas (``foresight/pruners/measures``)
and automl/NASLib (``nwot.py``) in the research notes (section 1.7); no code was copied. Every
proxy works on a deep copy in train mode (BN uses batch statistics, as the references call
``net.train()``), so the network passed in is left untouched.

BaLeNAS-TF (:func:`balenas_tf_select`) samples K architectures from q(alpha) = N(mu, sigma^2),
discretises each, and keeps the candidate with the best proxy at initialisation.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from frugalcv.nas.vadam import _randn_like

__all__ = [
    "PROXIES",
    "TFSelection",
    "balenas_tf_select",
    "grad_norm_score",
    "jacob_cov_score",
    "naswot_kernel",
    "naswot_score",
    "sample_architectures",
    "snip_score",
    "synflow_score",
]

# zero-cost-nas jacob_cov.py: the constant added to the correlation eigenvalues.
JACOB_COV_K = 1e-5


def _prunable(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _train_copy(net: nn.Module) -> nn.Module:
    net = copy.deepcopy(net)
    net.train()
    for p in net.parameters():
        p.requires_grad_(True)
    return net


def naswot_kernel(net: nn.Module, x: Tensor) -> Tensor:
    """The NASWOT kernel K (B, B), float64: agreements of the ReLU-input sign codes.

    K[a, b] = number of ReLU units (over every ``nn.ReLU`` module and position) whose input is
    > 0 for both samples or <= 0 for both.
    """
    net = _train_copy(net)
    b = x.shape[0]
    k = torch.zeros(b, b, dtype=torch.float64, device=x.device)
    handles = []

    def hook(_module, inputs):
        c = (inputs[0].detach().reshape(b, -1) > 0).double()  # (B, units)
        k.add_(c @ c.T + (1 - c) @ (1 - c).T)

    for m in net.modules():
        if isinstance(m, nn.ReLU):
            handles.append(m.register_forward_pre_hook(hook))
    if not handles:
        raise ValueError("naswot needs a network with nn.ReLU modules (it hooks their inputs)")
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    return k


def naswot_score(net: nn.Module, x: Tensor, y: Tensor | None = None) -> float:
    """log |det K| of :func:`naswot_kernel`; ``-inf`` when K is singular (e.g. repeated inputs).

    Args:
        x: (B, C, H, W) one minibatch; y is ignored.
    """
    sign, logabsdet = torch.linalg.slogdet(naswot_kernel(net, x))
    return float(logabsdet) if float(sign) > 0 else float("-inf")


def jacob_cov_score(net: nn.Module, x: Tensor, y: Tensor | None = None) -> float:
    """NASWOT v1 score from the correlation of input Jacobians; ``-inf`` if a row is constant.

    Args:
        x: (B, C, H, W); y is ignored.
    """
    net = _train_copy(net)
    x = x.detach().clone().requires_grad_(True)
    out = net(x)
    (jac,) = torch.autograd.grad(out, x, torch.ones_like(out), allow_unused=True)
    if jac is None:
        return float("-inf")  # the output does not depend on the input
    jac = jac.reshape(x.shape[0], -1).double()  # (B, C*H*W)
    corr = torch.corrcoef(jac)
    if not torch.isfinite(corr).all():
        return float("-inf")  # a sample with a constant Jacobian: no information
    v = torch.linalg.eigvalsh(corr)
    return float(-(torch.log(v + JACOB_COV_K) + 1.0 / (v + JACOB_COV_K)).sum())


def _remove_batchnorm(net: nn.Module) -> None:
    for name, child in list(net.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(net, name, nn.Identity())
        else:
            _remove_batchnorm(child)


def synflow_score(net: nn.Module, x: Tensor, y: Tensor | None = None) -> float:
    """SynFlow at initialisation: data-free, only ``x.shape[1:]`` is used.

    Args:
        x: (B, C, H, W) (only the shape is read); y is ignored.
    """
    net = copy.deepcopy(net).double()
    _remove_batchnorm(net)  # zero-cost-nas scores synflow on a copy built with bn=False
    net.train()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    layers = _prunable(net)
    if not layers:
        raise ValueError("synflow needs Conv2d or Linear layers")
    out = net(torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device))
    weights = [m.weight for m in layers]
    grads = torch.autograd.grad(out.sum(), weights, allow_unused=True)
    return float(
        sum(
            (w * g).detach().abs().sum()
            for w, g in zip(weights, grads, strict=True)
            if g is not None
        )
    )


def _loss_grads(net: nn.Module, x: Tensor, y: Tensor, loss_fn) -> tuple[list[Tensor], list]:
    net = _train_copy(net)
    layers = _prunable(net)
    if not layers:
        raise ValueError("snip / grad_norm need Conv2d or Linear layers")
    weights = [m.weight for m in layers]
    grads = torch.autograd.grad(loss_fn(net(x), y), weights, allow_unused=True)
    return weights, [
        torch.zeros_like(w) if g is None else g for w, g in zip(weights, grads, strict=True)
    ]


def snip_score(net: nn.Module, x: Tensor, y: Tensor, *, loss_fn=F.cross_entropy) -> float:
    """SNIP saliency sum_layers sum |W * dL/dW| on one labelled minibatch.

    Args:
        x: (B, C, H, W); y: (B,) targets for ``loss_fn`` (cross-entropy by default).
    """
    weights, grads = _loss_grads(net, x, y, loss_fn)
    return float(sum((w.detach() * g).abs().sum() for w, g in zip(weights, grads, strict=True)))


def grad_norm_score(net: nn.Module, x: Tensor, y: Tensor, *, loss_fn=F.cross_entropy) -> float:
    """Sum over Conv2d/Linear layers of the L2 norm of dL/dW on one labelled minibatch."""
    _, grads = _loss_grads(net, x, y, loss_fn)
    return float(sum(g.norm() for g in grads))


# Name -> proxy(net, x, y) -> float (higher = better). A plain dict so an editor can jump to each.
PROXIES: dict[str, Callable[[nn.Module, Tensor, Tensor], float]] = {
    "naswot": naswot_score,
    "jacob_cov": jacob_cov_score,
    "synflow": synflow_score,
    "snip": snip_score,
    "grad_norm": grad_norm_score,
}


def sample_architectures(
    mu: Sequence[Tensor],
    sigma: Sequence[Tensor],
    *,
    num_samples: int,
    generator: torch.Generator | None = None,
) -> list[list[Tensor]]:
    """Draw ``num_samples`` alpha ~ N(mu, diag sigma^2), one tensor per arch parameter each."""
    if len(mu) != len(sigma) or any(m.shape != s.shape for m, s in zip(mu, sigma, strict=True)):
        raise ValueError("mu and sigma must be lists of tensors of matching shapes")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1; got {num_samples}")
    return [
        [m + s * _randn_like(m, generator) for m, s in zip(mu, sigma, strict=True)]
        for _ in range(num_samples)
    ]


@dataclass
class TFSelection:
    """BaLeNAS-TF result: the chosen architecture, its proxy score, every distinct candidate's
    score (in first-drawn order) and how often each was drawn."""

    arch: Any
    score: float
    scores: dict[Any, float] = field(default_factory=dict)
    counts: dict[Any, int] = field(default_factory=dict)


def balenas_tf_select(
    mu: Sequence[Tensor],
    sigma: Sequence[Tensor],
    *,
    decode: Callable[[list[Tensor]], Any],
    build_network: Callable[[Any], nn.Module],
    x: Tensor,
    y: Tensor,
    proxy: str | Callable[[nn.Module, Tensor, Tensor], float] = "naswot",
    num_samples: int = 100,
    generator: torch.Generator | None = None,
    init_seed: int = 0,
) -> TFSelection:
    """BaLeNAS-TF: sample K architectures from q(alpha) and keep the best by a training-free proxy.

    Steps: alpha^(k) ~ N(mu, sigma^2) (k = 1..K); ``decode`` turns each sample into a discrete,
    hashable architecture (e.g. ``lambda a: nb201_derive(a[0])``, or ``lambda a:
    darts_genotype(*a)``); duplicates are scored once; each distinct candidate is built with
    ``build_network`` under ``torch.manual_seed(init_seed)`` (so candidates share one
    initialisation seed and RNG state is restored afterwards) and scored with ``proxy`` on
    (x, y); the maximum wins (ties: the earlier draw).

    Args:
        mu, sigma: q(alpha), e.g. ``BaLeNASTask.arch_distribution(vadam)``.
        decode: list of sampled alpha tensors -> architecture key.
        build_network: architecture key -> freshly initialised network.
        x, y: one minibatch for the proxy.
        proxy: a name in :data:`PROXIES` or a callable (net, x, y) -> float, higher = better.
        num_samples: K.

    Differences from the paper: which proxy and which K BaLeNAS-TF used could not be verified
    (research notes 1.6); the defaults (NASWOT, K = 100) are a reconstruction.
    """
    if isinstance(proxy, str):
        if proxy not in PROXIES:
            raise ValueError(f"unknown proxy {proxy!r}; valid proxies are {', '.join(PROXIES)}")
        proxy_fn = PROXIES[proxy]
    else:
        proxy_fn = proxy
    samples = sample_architectures(mu, sigma, num_samples=num_samples, generator=generator)
    scores: dict[Any, float] = {}
    counts: dict[Any, int] = {}
    for alpha in samples:
        arch = decode(alpha)
        counts[arch] = counts.get(arch, 0) + 1
        if arch in scores:
            continue
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            net = build_network(arch).to(x.device)
            s = float(proxy_fn(net, x, y))
        scores[arch] = float("-inf") if math.isnan(s) else s
    best = max(scores, key=lambda a: scores[a])  # max keeps the first of equal scores
    return TFSelection(arch=best, score=scores[best], scores=scores, counts=counts)
