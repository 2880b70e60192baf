"""Searchers: DARTS (first and second order), BaLeNAS (Vadam on alpha), random search.

DARTS: Hanxiao Liu, Karen Simonyan, Yiming Yang, ICLR 2019, Algorithm 1 and eqs. 3-8.
BaLeNAS: Miao Zhang et al., CVPR 2022 (arXiv 2111.13204); as the authors' only code does it
(``miaozhang0525/iDARTS`` ``NAS-Bench-1Shot1-codes/optimizers/idarts_v2/architect.py``, research
notes section 1.4): DARTS with the architecture optimiser swapped for :class:`Vadam`, so alpha
becomes the mean mu of q(alpha) = N(mu, sigma^2) and the supernet weights train at alpha = mu.

Both searchers are :class:`frugalcv.core.task.Task` subclasses with a bilevel :meth:`step`:

1. architecture step on the validation half: ``optimizers[1].step(closure)`` where the closure
   puts dL_val/dalpha into ``alpha.grad`` (first order: at the current weights w; second order:
   at the unrolled weights w' = w - eta * grad_w L_train, plus DARTS' finite-difference
   Hessian-vector term, eqs. 7-8). Vadam calls the closure at sampled alpha.
2. weight step on the training half: ``optimizers[0]`` (SGD) on L_train(w, alpha).

Batch format: a 4-tuple ``(x_train, y_train, x_val, y_val)``: a minibatch of the half that trains
the weights and one of the half that fits alpha (DARTS splits the CIFAR-10 train set 50/50).
:func:`make_search_batches` builds such batches from tensors. ``validation_step`` accepts the
4-tuple (scores the val half) or a plain ``(x, y)`` pair.

The supernet is any module with ``arch_parameters()``, ``weight_parameters()`` and ``derive()``
(:class:`~frugalcv.nas.nb201.NB201Supernet`, :class:`~frugalcv.nas.darts_space.DartsSupernet`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from frugalcv.core.task import Task, check_finite
from frugalcv.nas.vadam import Vadam

__all__ = [
    "SEARCH_ORDERS",
    "BaLeNASTask",
    "DartsSearchTask",
    "RandomSearchResult",
    "make_search_batches",
    "random_search",
    "unrolled_arch_grads",
]

SEARCH_ORDERS = ("first", "second")
# DARTS cnn/architect.py: R = 0.01 / ||grad_w' L_val|| for the finite-difference Hessian term.
UNROLL_EPS = 0.01


def make_search_batches(
    x_train: Tensor,
    y_train: Tensor,
    x_val: Tensor,
    y_val: Tensor,
    *,
    batch_size: int,
    generator: torch.Generator | None = None,
) -> list[tuple[Tensor, Tensor, Tensor, Tensor]]:
    """Shuffle both halves and pair their minibatches: ``[(x_train, y_train, x_val, y_val), ...]``.

    ``min(len(train), len(val)) // batch_size`` batches (the last partial batch is dropped).
    """
    if len(x_train) != len(y_train) or len(x_val) != len(y_val):
        raise ValueError("x and y of each half must have the same length")
    n = min(len(x_train), len(x_val)) // batch_size
    if n == 0:
        raise ValueError(
            f"batch_size {batch_size} exceeds the smaller half ({min(len(x_train), len(x_val))})"
        )
    pt = torch.randperm(len(x_train), generator=generator)
    pv = torch.randperm(len(x_val), generator=generator)
    out = []
    for i in range(n):
        it = pt[i * batch_size : (i + 1) * batch_size]
        iv = pv[i * batch_size : (i + 1) * batch_size]
        out.append((x_train[it], y_train[it], x_val[iv], y_val[iv]))
    return out


def _split(batch: Any) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    if not isinstance(batch, (tuple, list)) or len(batch) != 4:
        raise ValueError(
            "a search batch is the 4-tuple (x_train, y_train, x_val, y_val); build it with "
            "frugalcv.nas.make_search_batches"
        )
    return tuple(batch)  # type: ignore[return-value]


def _named_split(net: nn.Module) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    arch_ids = {id(p) for p in net.arch_parameters()}
    weights, arch = {}, {}
    for name, p in net.named_parameters():
        (arch if id(p) in arch_ids else weights)[name] = p
    return weights, arch


def _grads(loss: Tensor, inputs: Sequence[Tensor]) -> list[Tensor]:
    gs = torch.autograd.grad(loss, list(inputs), allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, gs, strict=True)]


def unrolled_arch_grads(
    net: nn.Module,
    batch: tuple[Tensor, Tensor, Tensor, Tensor],
    *,
    lr: float,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    momentum_buffers: dict[str, Tensor] | None = None,
    loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
    eps: float = UNROLL_EPS,
) -> tuple[list[Tensor], Tensor]:
    """DARTS' second-order architecture gradient (eqs. 7-8) at the current alpha.

    w' = w - lr * (momentum * buf + grad_w L_train(w, alpha) + weight_decay * w)  (one virtual
    SGD step, as DARTS ``_compute_unrolled_model``), then

        grad_alpha = dL_val(w', alpha)/dalpha
                     - lr * (grad_alpha L_train(w+, alpha) - grad_alpha L_train(w-, alpha)) / (2 R)

    with w+- = w +- R * dL_val(w', alpha)/dw' and R = eps / ||dL_val/dw'||.

    The network's parameters are not changed (``torch.func.functional_call`` with substituted
    weights); BN running statistics are updated only in clones.

    Args:
        net: supernet with ``arch_parameters()``.
        batch: (x_train, y_train, x_val, y_val).
        lr, momentum, weight_decay: the weight optimiser's (SGD) values; DARTS uses its lr.
        momentum_buffers: SGD momentum buffers by parameter name (absent entries count as 0).

    Returns:
        (one gradient per arch parameter, L_val(w', alpha) detached).
    """
    x_t, y_t, x_v, y_v = _split(batch)
    weights, arch = _named_split(net)
    buffers = {n: b.clone() for n, b in net.named_buffers()}
    arch_list = list(arch.values())

    def loss_at(w: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        return loss_fn(functional_call(net, {**w, **arch, **buffers}, (x,)), y)

    g_w = _grads(loss_at(weights, x_t, y_t), list(weights.values()))
    buffers_m = momentum_buffers or {}
    with torch.no_grad():
        unrolled = {}
        for (n, p), g in zip(weights.items(), g_w, strict=True):
            step = g + weight_decay * p
            if n in buffers_m:
                step = step + momentum * buffers_m[n]
            unrolled[n] = (p - lr * step).detach().requires_grad_(True)
    loss_val = loss_at(unrolled, x_v, y_v)
    grads = _grads(loss_val, arch_list + list(unrolled.values()))
    d_alpha, d_w = grads[: len(arch_list)], grads[len(arch_list) :]
    norm = torch.cat([g.flatten() for g in d_w]).norm()
    r = eps / norm.clamp_min(1e-12)
    with torch.no_grad():
        w_plus = {n: p + r * g for (n, p), g in zip(weights.items(), d_w, strict=True)}
        w_minus = {n: p - r * g for (n, p), g in zip(weights.items(), d_w, strict=True)}
    g_plus = _grads(loss_at(w_plus, x_t, y_t), arch_list)
    g_minus = _grads(loss_at(w_minus, x_t, y_t), arch_list)
    out = [
        da - lr * (gp - gm) / (2 * r) for da, gp, gm in zip(d_alpha, g_plus, g_minus, strict=True)
    ]
    return [g.detach() for g in out], loss_val.detach()


class DartsSearchTask(Task):
    """DARTS bilevel search (Algorithm 1): alternate an alpha step and a weight step per batch.

    ``optimizers[0]`` updates the supernet weights (SGD in DARTS), ``optimizers[1]`` the
    architecture weights (Adam, lr 3e-4, betas (0.5, 0.999), weight decay 1e-3 in DARTS; any
    optimizer whose ``step`` accepts a closure). :meth:`make_optimizers` builds DARTS' pair.

    Order within a step as in DARTS (quark0/darts ``train_search.py``): alpha first, then w. The
    loop's learning-rate factor applies to both optimizers.

    Args:
        supernet: module with ``arch_parameters()``, ``weight_parameters()``, ``derive()``.
        order: ``"first"`` (DARTS-V1, alpha gradient at the current w) or ``"second"`` (DARTS-V2,
            unrolled, :func:`unrolled_arch_grads`).
        loss_fn: (logits, targets) -> scalar; cross-entropy in DARTS.

    Batch: ``(x_train, y_train, x_val, y_val)``; see the module docstring.

    Differences from the paper: the second-order unrolling ignores Nesterov momentum (DARTS' SGD
    has none); under DDP the alpha gradients are averaged over processes with ``fabric.all_reduce``
    (DARTS is single-GPU).
    """

    def __init__(
        self,
        *,
        supernet: nn.Module,
        order: str = "first",
        loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
    ) -> None:
        super().__init__()
        if order not in SEARCH_ORDERS:
            raise ValueError(f"order must be one of {SEARCH_ORDERS}; got {order!r}")
        for name in ("arch_parameters", "weight_parameters", "derive"):
            if not callable(getattr(supernet, name, None)):
                raise ValueError(
                    f"supernet must provide {name}() (see NB201Supernet / DartsSupernet); "
                    f"{type(supernet).__name__} does not"
                )
        self.supernet = supernet
        self.order = order
        self.loss_fn = loss_fn

    # ------------------------------------------------------------------ plain Task API
    def trainable_parameters(self):
        return iter(self.supernet.weight_parameters())

    def training_step(self, batch: Any) -> dict[str, Tensor]:
        x, y, _, _ = _split(batch)
        logits = self.supernet(x)
        return {
            "loss": self.loss_fn(logits, y),
            "acc": (logits.argmax(1) == y).float().mean().detach(),
        }

    def validation_step(self, batch: Any) -> dict[str, Tensor]:
        x, y = (batch[2], batch[3]) if len(batch) == 4 else (batch[0], batch[1])
        logits = self.supernet(x)
        return {"loss": self.loss_fn(logits, y), "acc": (logits.argmax(1) == y).float().mean()}

    def batch_size(self, batch: Any) -> int:
        return int((batch[2] if len(batch) == 4 else batch[0]).shape[0])

    def derive(self) -> Any:
        """The discrete architecture of the current alpha (arch string or Genotype)."""
        return self.supernet.derive()

    def make_optimizers(
        self,
        *,
        lr: float = 0.025,
        momentum: float = 0.9,
        weight_decay: float = 3e-4,
        nesterov: bool = False,
        arch_lr: float = 3e-4,
        arch_betas: tuple[float, float] = (0.5, 0.999),
        arch_weight_decay: float = 1e-3,
    ) -> list[torch.optim.Optimizer]:
        """[SGD on weights, Adam on alpha] with DARTS' CIFAR values (quark0/darts train_search.py;
        NB201's DARTS config uses weight_decay 5e-4 with Nesterov)."""
        return [
            torch.optim.SGD(
                self.supernet.weight_parameters(),
                lr=lr,
                momentum=momentum,
                weight_decay=weight_decay,
                nesterov=nesterov,
            ),
            torch.optim.Adam(
                self.supernet.arch_parameters(),
                lr=arch_lr,
                betas=arch_betas,
                weight_decay=arch_weight_decay,
            ),
        ]

    # ------------------------------------------------------------------ bilevel step
    def arch_closure(
        self, batch: Any, *, weight_optimizer: torch.optim.Optimizer, fabric: Any = None
    ) -> Callable[[], Tensor]:
        """A closure that writes the alpha gradient into ``alpha.grad`` and returns L_val."""
        arch = self.supernet.arch_parameters()

        def closure() -> Tensor:
            if self.order == "first":
                _, _, x_v, y_v = _split(batch)
                loss = self.loss_fn(self.supernet(x_v), y_v)
                check_finite({"loss": loss})
                grads = _grads(loss, arch)
            else:
                group = weight_optimizer.param_groups[0]
                weights, _ = _named_split(self.supernet)
                bufs = {
                    n: weight_optimizer.state[p]["momentum_buffer"]
                    for n, p in weights.items()
                    if "momentum_buffer" in weight_optimizer.state.get(p, {})
                    and weight_optimizer.state[p]["momentum_buffer"] is not None
                }
                grads, loss = unrolled_arch_grads(
                    self.supernet,
                    _split(batch),
                    lr=group["lr"],
                    momentum=group.get("momentum", 0.0),
                    weight_decay=group.get("weight_decay", 0.0),
                    momentum_buffers=bufs,
                    loss_fn=self.loss_fn,
                )
                check_finite({"loss": loss})
            if fabric is not None and getattr(fabric, "world_size", 1) > 1:
                grads = [fabric.all_reduce(g, reduce_op="mean") for g in grads]
            for a, g in zip(arch, grads, strict=True):
                a.grad = g.detach()
            return loss.detach()

        return closure

    def _check_optimizers(self, optimizers: Sequence[torch.optim.Optimizer]) -> None:
        if len(optimizers) != 2:
            raise ValueError(
                f"{type(self).__name__}.step needs two optimizers [weights, architecture]; got "
                f"{len(optimizers)}. Build them with task.make_optimizers()."
            )

    def step(
        self,
        batch: Any,
        *,
        forward: Any,
        optimizers: Sequence[torch.optim.Optimizer],
        fabric: Any = None,
        grad_clip: float = 0.0,
    ) -> dict[str, Tensor]:
        """Alpha step on the val half, then weight step on the train half (DARTS Algorithm 1).

        ``fabric`` may be None for a plain torch loop (then ``loss.backward()`` and
        ``clip_grad_norm_`` are used). Returns the weight-step losses plus ``arch_loss``.
        """
        self._check_optimizers(optimizers)
        w_opt, a_opt = optimizers
        arch_loss = a_opt.step(self.arch_closure(batch, weight_optimizer=w_opt, fabric=fabric))
        w_opt.zero_grad(set_to_none=True)
        losses = forward(batch)
        check_finite(losses)
        if fabric is None:
            losses["loss"].backward()
            if grad_clip > 0:
                nn.utils.clip_grad_norm_(self.supernet.weight_parameters(), grad_clip)
        else:
            fabric.backward(losses["loss"])
            if grad_clip > 0:
                fabric.clip_gradients(forward, w_opt, max_norm=grad_clip)
        w_opt.step()
        for a in self.supernet.arch_parameters():
            a.grad = None  # the weight loss also reached alpha; that gradient is not used
        return {**losses, "arch_loss": arch_loss}


class BaLeNASTask(DartsSearchTask):
    """BaLeNAS: DARTS whose architecture optimiser is :class:`Vadam` (NGVI on q(alpha)).

    ``optimizers[1]`` must be a :class:`Vadam` over ``supernet.arch_parameters()``: each alpha
    step draws alpha ~ N(mu, sigma^2), takes dL_val/dalpha there (first or second order) and
    updates mu and the precision; the weights then train at alpha = mu (as the authors' code:
    Vadam restores mu after its closure). Derive with :meth:`derive` (argmax of mu) or sample
    and score with :func:`frugalcv.nas.balenas_tf_select` (BaLeNAS-TF) using
    :meth:`arch_distribution`.

    Args: as :class:`DartsSearchTask`.

    Differences from the authors' code: in second-order mode the authors build the unrolled
    copy before Vadam perturbs alpha, so their main term is taken at mu and only the
    Hessian-vector term at the sample (research notes 1.4, quirk A); here both are at the sample.
    """

    def make_optimizers(  # type: ignore[override]
        self,
        *,
        lr: float = 0.025,
        momentum: float = 0.9,
        weight_decay: float = 3e-4,
        nesterov: bool = False,
        arch_lr: float = 3e-4,
        arch_betas: tuple[float, float] = (0.5, 0.999),
        prior_prec: float = 1.0,
        prec_init: float = 1.0,
        train_set_size: int = 25000,
        num_samples: int = 1,
        generator: torch.Generator | None = None,
    ) -> list[torch.optim.Optimizer]:
        """[SGD on weights, Vadam on alpha]; alpha values from the authors' architect.py
        (lr 3e-4, betas (0.5, 0.999), prec_init 1, train_set_size 25000; num_samples 1 in the
        NB201 notebook), prior_prec 1 = Vadam's default; SGD values as DARTS."""
        return [
            torch.optim.SGD(
                self.supernet.weight_parameters(),
                lr=lr,
                momentum=momentum,
                weight_decay=weight_decay,
                nesterov=nesterov,
            ),
            Vadam(
                self.supernet.arch_parameters(),
                lr=arch_lr,
                betas=arch_betas,
                prior_prec=prior_prec,
                prec_init=prec_init,
                train_set_size=train_set_size,
                num_samples=num_samples,
                generator=generator,
            ),
        ]

    def _check_optimizers(self, optimizers: Sequence[torch.optim.Optimizer]) -> None:
        super()._check_optimizers(optimizers)
        if not isinstance(optimizers[1], Vadam):
            raise ValueError(
                f"BaLeNASTask needs optimizers[1] to be frugalcv.nas.Vadam over the architecture "
                f"weights; got {type(optimizers[1]).__name__}. Use task.make_optimizers()."
            )

    @staticmethod
    def arch_distribution(optimizer: Vadam) -> tuple[list[Tensor], list[Tensor]]:
        """(means mu, standard deviations sigma) of q(alpha), one pair per arch parameter."""
        if not isinstance(optimizer, Vadam):
            raise ValueError(f"need the Vadam architecture optimizer; got {type(optimizer)}")
        mus = [p.detach().clone() for g in optimizer.param_groups for p in g["params"]]
        return mus, optimizer.sigma()


@dataclass
class RandomSearchResult:
    """Best architecture, its score, and every (arch, score) in sampling order."""

    best: Any
    best_score: float
    history: list[tuple[Any, float]] = field(default_factory=list)


def random_search(
    *,
    sample: Callable[[torch.Generator], Any],
    score: Callable[[Any], float],
    num_samples: int,
    seed: int = 0,
) -> RandomSearchResult:
    """Random search: draw ``num_samples`` architectures, score each, keep the best (max score).

    The budget is the number of ``score`` calls; give it what the compared searcher spent (e.g.
    the number of architectures a benchmark lookup or a short training could evaluate in the
    same wall time). Repeated draws are scored once (cached). NaN scores count as -inf; ties keep
    the earlier draw.

    Args:
        sample: generator -> architecture (e.g. :func:`frugalcv.nas.sample_nb201_arch`); the
            architecture must be hashable.
        score: architecture -> float, higher is better (e.g. a lookup's accuracy, a proxy).
        num_samples: number of draws.
        seed: seed of the ``torch.Generator`` passed to ``sample``.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1; got {num_samples}")
    gen = torch.Generator().manual_seed(seed)
    cache: dict[Any, float] = {}
    history: list[tuple[Any, float]] = []
    best, best_score = None, float("-inf")
    for _ in range(num_samples):
        arch = sample(gen)
        if arch not in cache:
            s = float(score(arch))
            cache[arch] = float("-inf") if s != s else s  # NaN -> -inf
        s = cache[arch]
        history.append((arch, s))
        if best is None or s > best_score:
            best, best_score = arch, s
    return RandomSearchResult(best=best, best_score=best_score, history=history)
