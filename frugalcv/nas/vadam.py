"""Vadam: natural-gradient variational inference in Adam form (BaLeNAS' alpha optimiser).

Mohammad Emtiyaz Khan, Didrik Nielsen, Voot Tangkaratt, Wu Lin, Yarin Gal, Akash Srivastava,
"Fast and Scalable Bayesian Deep Learning by Weight-Perturbation in Adam", ICML 2018 (Vadam).
BaLeNAS (Miao Zhang et al., CVPR 2022, arXiv 2111.13204) replaces DARTS' Adam on the architecture
weights with this optimiser: the parameters become the means mu of a diagonal Gaussian
q(alpha) = N(mu, sigma^2), and the optimiser's squared-gradient average s gives the precision.

Re-implemented from the equations in shared/research/nas_sgn.md section 1.2 (which were read from
the reference ``emtiyaz/vadam`` ``pytorch/vadam/optimizers.py``; that repository has no license,
so nothing was copied). Per tensor mu, with lambda = prior_prec, N = train_set_size,
lambda~ = lambda / N, state m = 0, s = (prec_init - lambda) / N, t = 0::

    for k in 1..S:                          # Monte Carlo samples
        eps_k ~ N(0, I)
        alpha_k = mu + eps_k / sqrt(N * s + lambda)      # sigma = 1 / sqrt(N s + lambda), raw s
        g_k = grad L(alpha_k)                # the closure's loss, e.g. mean val cross-entropy
    g = mean_k g_k ;  g2 = mean_k g_k^2
    t = t + 1
    m = beta1 m + (1 - beta1) (g + lambda~ mu)         # the prior acts as weight decay
    s = beta2 s + (1 - beta2) g2
    mu = mu - lr * (m / (1 - beta1^t)) / (sqrt(s / (1 - beta2^t)) + lambda~)

After ``step`` the parameters hold mu again (the perturbation is only used for the gradients).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor

__all__ = ["Vadam"]


def _randn_like(p: Tensor, generator: torch.Generator | None) -> Tensor:
    """N(0, I) noise shaped like p, drawn on the generator's device (a CPU generator also serves
    CUDA parameters)."""
    device = generator.device if generator is not None else p.device
    return torch.randn(p.shape, generator=generator, dtype=p.dtype, device=device).to(p.device)


class Vadam(torch.optim.Optimizer):
    """Vadam (Khan et al. 2018) as a ``torch.optim.Optimizer``; ``step`` requires a closure.

    The closure must compute the loss at the *current* parameter values and leave the gradient in
    each parameter's ``.grad`` (``loss.backward()`` or assigning ``.grad``); it is called
    ``num_samples`` times per step at perturbed parameters. ``.grad`` is set to None before each
    call, so the k-th gradient is that of sample k alone.

    Args:
        params: tensors (the means mu) or param groups.
        train_set_size: N, the number of examples the loss is a mean over; scales the precision.
            BaLeNAS: 25000 (the CIFAR-10 half used to fit alpha).
        lr: step size (Vadam default 1e-3; BaLeNAS 3e-4, DARTS' arch lr).
        betas: (beta1, beta2) (Vadam default (0.9, 0.999); BaLeNAS (0.5, 0.999), DARTS' values).
        prior_prec: lambda, the precision of the N(0, 1/lambda) prior (default 1.0, not changed by
            BaLeNAS).
        prec_init: initial posterior precision; >= prior_prec. With prec_init = prior_prec = 1
            the initial sigma is exactly 1 (BaLeNAS' setting).
        num_samples: S Monte Carlo samples per step (BaLeNAS NB201 notebook: 1).
        generator: optional ``torch.Generator`` for the noise (reproducible tests).

    Differences from the reference: ``.grad`` is cleared before each Monte Carlo sample (the
    BaLeNAS fragment's closure never zeroes gradients, so with S > 1 its k-th sample gradient is a
    running sum); constructor arguments other than ``params`` are keyword-only.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        *,
        train_set_size: int,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        prior_prec: float = 1.0,
        prec_init: float = 1.0,
        num_samples: int = 1,
        generator: torch.Generator | None = None,
    ) -> None:
        if train_set_size < 1:
            raise ValueError(
                f"train_set_size must be >= 1 (examples in the data); got {train_set_size}"
            )
        if lr < 0:
            raise ValueError(f"lr must be >= 0; got {lr}")
        if not all(0.0 <= b < 1.0 for b in betas) or len(betas) != 2:
            raise ValueError(f"betas must be two values in [0, 1); got {betas}")
        if prior_prec <= 0:
            raise ValueError(f"prior_prec must be > 0; got {prior_prec}")
        if prec_init < prior_prec:
            raise ValueError(
                f"prec_init ({prec_init}) must be >= prior_prec ({prior_prec}): the initial "
                f"squared-gradient state (prec_init - prior_prec) / N would be negative"
            )
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1; got {num_samples}")
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            prior_prec=prior_prec,
            prec_init=prec_init,
            train_set_size=train_set_size,
            num_samples=num_samples,
        )
        super().__init__(params, defaults)
        self.generator = generator

    def _state(self, p: Tensor, group: dict) -> dict:
        state = self.state[p]
        if len(state) == 0:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            s0 = (group["prec_init"] - group["prior_prec"]) / group["train_set_size"]
            state["exp_avg_sq"] = torch.full_like(p, s0, memory_format=torch.preserve_format)
        return state

    @torch.no_grad()
    def precision(self) -> list[Tensor]:
        """Posterior precision N * s + lambda per parameter (in param-group order)."""
        return [
            group["train_set_size"] * self._state(p, group)["exp_avg_sq"] + group["prior_prec"]
            for group in self.param_groups
            for p in group["params"]
        ]

    @torch.no_grad()
    def sigma(self) -> list[Tensor]:
        """Posterior standard deviation 1 / sqrt(N * s + lambda) per parameter."""
        return [prec.rsqrt() for prec in self.precision()]

    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor:  # type: ignore[override]
        """One Vadam step; returns the (detached) loss of the last Monte Carlo sample."""
        if closure is None:
            raise ValueError(
                "Vadam.step needs a closure that recomputes the loss and its gradients: the "
                "loss is evaluated at sampled parameters (e.g. opt.step(lambda: f().backward()))"
            )
        params = [(p, g) for g in self.param_groups for p in g["params"]]
        with torch.no_grad():
            means = [p.detach().clone() for p, _ in params]
            sigmas = self.sigma()
        num_samples = self.param_groups[0]["num_samples"]
        grad_sum = [torch.zeros_like(m) for m in means]
        grad_sq_sum = [torch.zeros_like(m) for m in means]
        loss = None
        try:
            for _ in range(num_samples):
                with torch.no_grad():
                    for (p, _), mu, sigma in zip(params, means, sigmas, strict=True):
                        eps = _randn_like(p, self.generator)
                        p.copy_(mu + eps * sigma)  # alpha_k = mu + eps / sqrt(N s + lambda)
                        p.grad = None
                with torch.enable_grad():
                    loss = closure()
                with torch.no_grad():
                    for i, (p, _) in enumerate(params):
                        if p.grad is not None:
                            grad_sum[i] += p.grad
                            grad_sq_sum[i] += p.grad * p.grad
        finally:  # the model is left at the mean, also when the closure raises
            with torch.no_grad():
                for (p, _), mu in zip(params, means, strict=True):
                    p.copy_(mu)
        with torch.no_grad():
            for i, ((p, group), mu) in enumerate(zip(params, means, strict=True)):
                state = self._state(p, group)
                beta1, beta2 = group["betas"]
                decay = group["prior_prec"] / group["train_set_size"]  # lambda~
                g = grad_sum[i] / num_samples
                g2 = grad_sq_sum[i] / num_samples
                state["step"] += 1
                t = state["step"]
                state["exp_avg"].mul_(beta1).add_(g + decay * mu, alpha=1 - beta1)
                state["exp_avg_sq"].mul_(beta2).add_(g2, alpha=1 - beta2)
                m_hat = state["exp_avg"] / (1 - beta1**t)
                s_hat = state["exp_avg_sq"] / (1 - beta2**t)
                p.sub_(group["lr"] * m_hat / (s_hat.sqrt() + decay))
                p.grad = g.clone()  # the averaged gradient, for logging
        return None if loss is None else loss.detach()  # type: ignore[return-value]
