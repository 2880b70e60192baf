"""Stability diagnostics of a differentiable search.

- :func:`hessian_max_eigenvalue`: the dominant eigenvalue of the Hessian of a loss w.r.t. some
  parameters, by power iteration on Hessian-vector products (double backward, no Hessian is
  formed). Applied to the validation loss w.r.t. alpha (:func:`arch_hessian_max_eigenvalue`) it is
  the quantity Zela et al. ("Understanding and Robustifying Differentiable Architecture Search",
  ICLR 2020) track: it grows as DARTS degenerates, and BaLeNAS argues that sampling alpha from
  N(mu, sigma^2) implicitly penalises the Hessian (E_q[L] ~ L(mu) + 1/2 sum_i sigma_i^2 H_ii).
- :func:`skip_share`: the share of ``skip_connect`` in a derived architecture (DARTS' collapse).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from frugalcv.nas.darts_space import Genotype, darts_skip_share
from frugalcv.nas.nb201 import nb201_skip_share

__all__ = ["arch_hessian_max_eigenvalue", "hessian_max_eigenvalue", "skip_share"]


def hessian_max_eigenvalue(
    loss_fn: Callable[[], Tensor],
    params: Sequence[Tensor],
    *,
    num_iters: int = 100,
    tol: float = 1e-6,
    generator: torch.Generator | None = None,
) -> float:
    """Dominant (largest-magnitude) eigenvalue of d^2 loss / d params^2, by power iteration.

    v <- H v / ||H v|| from a random unit v; the estimate is the Rayleigh quotient v^T H v (signed).
    Stops when two successive estimates differ by less than ``tol * |estimate|``.

    Args:
        loss_fn: () -> scalar loss computed from ``params`` (called once; the graph is reused).
        params: the tensors the Hessian is taken w.r.t. (requires_grad); treated as one vector.
        num_iters: maximum number of Hessian-vector products.
        tol: relative convergence tolerance.
        generator: for the start vector.
    """
    params = list(params)
    if not params or not all(p.requires_grad for p in params):
        raise ValueError("params must be a non-empty list of tensors with requires_grad=True")
    loss = loss_fn()
    grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
    live = [i for i, g in enumerate(grads) if g is not None and g.requires_grad]
    if not live:
        return 0.0  # the gradient does not depend on params: the Hessian is zero
    v = [torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device) for p in params]
    norm = torch.sqrt(sum((x * x).sum() for x in v))
    v = [x / norm for x in v]
    estimate = 0.0
    for _ in range(num_iters):
        hv = torch.autograd.grad(
            [grads[i] for i in live],
            params,
            grad_outputs=[v[i] for i in live],
            retain_graph=True,
            allow_unused=True,
        )
        hv = [
            torch.zeros_like(p) if h is None else h.detach()
            for p, h in zip(params, hv, strict=True)
        ]
        new = float(sum((a * b).sum() for a, b in zip(v, hv, strict=True)))  # v^T H v
        norm = torch.sqrt(sum((h * h).sum() for h in hv))
        if float(norm) == 0.0:
            return 0.0  # H v = 0 from a random start: H is zero (or v fell in its null space)
        v = [h / norm for h in hv]
        if abs(new - estimate) <= tol * max(abs(new), 1e-12):
            return new
        estimate = new
    return estimate


def arch_hessian_max_eigenvalue(
    supernet: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
    num_iters: int = 100,
    tol: float = 1e-6,
    generator: torch.Generator | None = None,
) -> float:
    """Dominant eigenvalue of the Hessian of L_val(w, alpha) w.r.t. all architecture weights.

    Args:
        supernet: has ``arch_parameters()``; evaluated in its current mode (Zela et al. use the
            search-time train mode).
        x, y: a validation minibatch.
    """
    return hessian_max_eigenvalue(
        lambda: loss_fn(supernet(x), y),
        supernet.arch_parameters(),
        num_iters=num_iters,
        tol=tol,
        generator=generator,
    )


def skip_share(arch: Any) -> float:
    """Share of ``skip_connect`` ops: over the 6 edges of an NB201 arch string, or over the 8
    kept edges of a DARTS :class:`Genotype`'s normal cell."""
    if isinstance(arch, str):
        return nb201_skip_share(arch)
    if isinstance(arch, Genotype):
        return darts_skip_share(arch)
    raise ValueError(f"skip_share takes an NB201 arch string or a DARTS Genotype; got {type(arch)}")
