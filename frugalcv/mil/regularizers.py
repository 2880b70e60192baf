"""Self-paced regularisers f(v; age) and their closed-form reliability minimisers.

Self-paced learning (SPL) gives every training instance a reliability (weight) v in [0, 1] and
minimises ``sum_i v_i * l_i + f(v; age)`` jointly over the model and v. For a fixed model the
v-step separates over instances (or over groups, for the group regulariser) and has a closed form.
The "age" parameters (lambda, gamma) grow during training, so that easy (low-loss) instances are
admitted first and harder ones later: a curriculum.

MED-MIL (Luo et al., "Reliable Shot Identification for Complex Event Detection via Visual-Semantic
Embedding", CVIU 2021, arXiv 2110.08063) names its regulariser a "negative elastic-net". Only the
abstract is public; the exact form is unknown. This module ships every reading in the research
notes (shared/research/tracking_mil.md section 2.4) as a strategy object with the same interface:

================================  ==============================  ==================================
class                             f(v) per instance               v*(l) = argmin_v v*l + f(v)
================================  ==============================  ==================================
:class:`HardSPL` (Kumar 2010)     ``-lam*v``                      ``1[l < lam]``
:class:`LinearSPL` (Jiang 2014a)  ``lam*(v^2/2 - v)``             ``max(0, 1 - l/lam)``
:class:`MixtureSPL` (Jiang 2015)  ``-zeta*log(v + zeta/lam)``     1 if l <= gamma, 0 if l >= lam,
                                  ``zeta = gamma*lam/(lam-gamma)``  else ``zeta*(lam - l)/(l*lam)``
:class:`NegativeElasticNetSPL`    ``-lam*v + gamma/2*v^2``        ``clip((lam - l)/gamma, 0, 1)``
:class:`ConcaveElasticNetSPL`     ``-lam*v - gamma*v^2``          ``1[l < lam + gamma]``
:class:`GroupSPL` (SPLD,          ``-lam*|v|_1 - gamma*           per group, r-th smallest loss
Jiang 2014b)                      sum_g |v_g|_2``                 kept iff
                                                                  ``l < lam + gamma/(sqrt r +
                                                                  sqrt(r-1))``
================================  ==============================  ==================================

:class:`NegativeElasticNetSPL` is the default reading (a reconstruction): an elastic net
``lam*|v|_1 + gamma/2*|v|_2^2`` whose l1 part enters with a negative sign (the term that rewards
admitting instances, as in every SPL regulariser) and whose l2 part keeps the weights soft. It
interpolates the rows above: gamma -> 0 gives :class:`HardSPL`, gamma = lam gives
:class:`LinearSPL`. :class:`ConcaveElasticNetSPL` is the literal all-negative reading; it is
concave, so its minimiser over the box is binary.

Every closed form is checked against brute-force grid minimisation in ``tests/mil``.

Interface: ``weights(losses, groups=None) -> v``, ``penalty(v, groups=None) -> float`` (the total
``sum f``), ``objective(losses, v, groups=None)``, ``threshold`` (v > 0 exactly when
``l < threshold``; for :class:`GroupSPL` the rank-1 threshold), ``scaled(factor)`` (the same
regulariser at a grown age) and ``with_threshold(t)``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "REGULARIZERS",
    "ConcaveElasticNetSPL",
    "GroupSPL",
    "HardSPL",
    "LinearSPL",
    "MixtureSPL",
    "NegativeElasticNetSPL",
    "SelfPacedRegularizer",
    "make_regularizer",
]


def _as_losses(losses) -> np.ndarray:
    arr = np.asarray(losses, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"losses must be a 1-D array (N,), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("losses contain NaN or inf; check the classifier's decision values")
    return arr


def _check_v(v) -> np.ndarray:
    arr = np.asarray(v, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"v must be a 1-D array (N,), got shape {arr.shape}")
    if np.any(arr < 0) or np.any(arr > 1):
        raise ValueError("reliabilities v must lie in [0, 1]")
    return arr


@dataclass(frozen=True)
class SelfPacedRegularizer:
    """Base class: ``lam`` (and ``gamma`` where used) are the age parameters, both > 0."""

    lam: float = 1.0

    def __post_init__(self) -> None:
        if not (isinstance(self.lam, (int, float)) and math.isfinite(self.lam) and self.lam > 0):
            raise ValueError(
                f"{type(self).__name__}: lam must be a positive number, got {self.lam}"
            )

    # -- per-instance interface; subclasses implement _v and _f
    def _v(self, losses: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _f(self, v: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @property
    def threshold(self) -> float:
        """The loss below which an instance gets v > 0."""
        return float(self.lam)

    def weights(self, losses, groups=None) -> np.ndarray:
        """Closed-form ``argmin_{v in [0,1]^N} sum_i v_i l_i + f(v)``.

        Args:
            losses: (N,) instance losses.
            groups: (N,) group ids; only :class:`GroupSPL` uses them.

        Returns:
            (N,) float64 reliabilities in [0, 1].
        """
        return self._v(_as_losses(losses))

    def penalty(self, v, groups=None) -> float:
        """``sum_i f(v_i)``, the regulariser's value at v."""
        return float(np.sum(self._f(_check_v(v))))

    def objective(self, losses, v, groups=None) -> float:
        """``sum_i v_i l_i + f(v)``: what :meth:`weights` minimises."""
        losses, v = _as_losses(losses), _check_v(v)
        if losses.shape != v.shape:
            raise ValueError(f"losses {losses.shape} and v {v.shape} must have the same shape")
        return float(np.dot(v, losses)) + self.penalty(v, groups)

    def scaled(self, factor: float) -> SelfPacedRegularizer:
        """The same regulariser with every age parameter multiplied by ``factor`` (> 0)."""
        if not factor > 0:
            raise ValueError(f"age factor must be positive, got {factor}")
        changes = {f.name: getattr(self, f.name) * factor for f in dataclasses.fields(self)}
        return dataclasses.replace(self, **changes)

    def with_threshold(self, threshold: float) -> SelfPacedRegularizer:
        """Rescale the age so that :attr:`threshold` equals ``threshold`` (> 0)."""
        if not threshold > 0:
            raise ValueError(f"threshold must be positive, got {threshold}")
        return self.scaled(threshold / self.threshold)


@dataclass(frozen=True)
class HardSPL(SelfPacedRegularizer):
    """Hard SPL (Kumar, Packer, Koller, NeurIPS 2010): ``f(v) = -lam*v``, ``v* = 1[l < lam]``."""

    def _v(self, losses):
        return (losses < self.lam).astype(np.float64)

    def _f(self, v):
        return -self.lam * v


@dataclass(frozen=True)
class LinearSPL(SelfPacedRegularizer):
    """Linear soft SPL (Jiang et al., ACM MM 2014, self-paced reranking).

    ``f(v) = lam*(v^2/2 - v)``; ``v* = max(0, 1 - l/lam)`` for l >= 0.
    """

    def _v(self, losses):
        return np.clip(1.0 - losses / self.lam, 0.0, 1.0)

    def _f(self, v):
        return self.lam * (0.5 * v**2 - v)


def _check_gamma(reg: SelfPacedRegularizer, gamma: float) -> None:
    if not (isinstance(gamma, (int, float)) and math.isfinite(gamma) and gamma > 0):
        raise ValueError(f"{type(reg).__name__}: gamma must be a positive number, got {gamma}")


@dataclass(frozen=True)
class MixtureSPL(SelfPacedRegularizer):
    """Mixture SPL (Jiang et al., AAAI 2015, self-paced curriculum learning), lam > gamma > 0.

    ``f(v) = -zeta*log(v + zeta/lam)`` with ``zeta = gamma*lam/(lam - gamma)``. Setting the
    derivative ``l - zeta/(v + zeta/lam)`` to zero gives ``v = zeta/l - zeta/lam``, which is 1 at
    l = gamma and 0 at l = lam; outside [gamma, lam] the box clips it.
    """

    gamma: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_gamma(self, self.gamma)
        if not self.gamma < self.lam:
            raise ValueError(
                f"MixtureSPL needs lam > gamma > 0, got lam={self.lam}, gamma={self.gamma}"
            )

    @property
    def zeta(self) -> float:
        return self.gamma * self.lam / (self.lam - self.gamma)

    def _v(self, losses):
        v = np.zeros_like(losses)
        v[losses <= self.gamma] = 1.0
        mid = (losses > self.gamma) & (losses < self.lam)
        v[mid] = self.zeta * (self.lam - losses[mid]) / (losses[mid] * self.lam)
        return np.clip(v, 0.0, 1.0)

    def _f(self, v):
        return -self.zeta * np.log(v + self.zeta / self.lam)


@dataclass(frozen=True)
class NegativeElasticNetSPL(SelfPacedRegularizer):
    """Negative elastic net (default reading, a reconstruction): ``f(v) = -lam*v + gamma/2*v^2``.

    The objective ``v*l - lam*v + gamma/2*v^2`` is a convex parabola in v with vertex
    ``(lam - l)/gamma``; clipping to the box gives ``v* = clip((lam - l)/gamma, 0, 1)``.
    Instances with ``l <= lam - gamma`` get full weight, those with ``l >= lam`` are left out, and
    weights fall linearly in between. gamma -> 0 recovers :class:`HardSPL`; gamma = lam recovers
    :class:`LinearSPL`.
    """

    gamma: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_gamma(self, self.gamma)

    def _v(self, losses):
        return np.clip((self.lam - losses) / self.gamma, 0.0, 1.0)

    def _f(self, v):
        return -self.lam * v + 0.5 * self.gamma * v**2


@dataclass(frozen=True)
class ConcaveElasticNetSPL(SelfPacedRegularizer):
    """Literal negative elastic net ``f(v) = -lam*v - gamma*v^2`` (a reconstruction).

    ``v*l + f(v)`` is concave in v, so its minimum over [0, 1] is at an end point: 0 at v = 0 and
    ``l - lam - gamma`` at v = 1; hence ``v* = 1[l < lam + gamma]``, a hard threshold.
    """

    gamma: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_gamma(self, self.gamma)

    @property
    def threshold(self) -> float:
        return float(self.lam + self.gamma)

    def _v(self, losses):
        return (losses < self.lam + self.gamma).astype(np.float64)

    def _f(self, v):
        return -self.lam * v - self.gamma * v**2


@dataclass(frozen=True)
class GroupSPL(SelfPacedRegularizer):
    """Self-paced learning with diversity (SPLD; Jiang et al., NeurIPS 2014), groups = bags.

    ``f(v) = -lam*sum_i v_i - gamma*sum_g ||v_g||_2``. The objective is concave in v, so the
    minimiser is binary. With m instances chosen in a group, the best choice is its m smallest
    losses, and the r-th one changes the objective by ``l_(r) - lam - gamma*(sqrt r - sqrt(r-1))``,
    which increases with r; so keep ranks while ``l_(r) < lam + gamma/(sqrt r + sqrt(r-1))``.
    The negative group norm spreads the selection over many groups (diversity).
    """

    gamma: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_gamma(self, self.gamma)

    @property
    def threshold(self) -> float:
        return float(self.lam + self.gamma)  # rank 1: gamma / (1 + 0)

    @staticmethod
    def _groups(groups, n: int) -> np.ndarray:
        if groups is None:
            raise ValueError("GroupSPL needs groups: pass groups=(N,) group ids (e.g. bag index)")
        g = np.asarray(groups)
        if g.shape != (n,):
            raise ValueError(f"groups must have shape ({n},), got {g.shape}")
        return g

    def weights(self, losses, groups=None) -> np.ndarray:
        losses = _as_losses(losses)
        g = self._groups(groups, len(losses))
        v = np.zeros_like(losses)
        for gid in np.unique(g):
            idx = np.flatnonzero(g == gid)
            order = idx[np.argsort(losses[idx], kind="stable")]
            r = np.arange(1, len(order) + 1, dtype=np.float64)
            keep = losses[order] < self.lam + self.gamma / (np.sqrt(r) + np.sqrt(r - 1))
            v[order[keep]] = 1.0
        return v

    def penalty(self, v, groups=None) -> float:
        v = _check_v(v)
        g = self._groups(groups, len(v))
        group_norms = sum(float(np.linalg.norm(v[g == gid])) for gid in np.unique(g))
        return float(-self.lam * v.sum() - self.gamma * group_norms)


REGULARIZERS: dict[str, type[SelfPacedRegularizer]] = {
    "hard": HardSPL,
    "linear": LinearSPL,
    "mixture": MixtureSPL,
    "negative_elastic_net": NegativeElasticNetSPL,
    "concave_elastic_net": ConcaveElasticNetSPL,
    "group": GroupSPL,
}


def make_regularizer(name: str, *, lam: float = 1.0, gamma: float = 0.5) -> SelfPacedRegularizer:
    """A regulariser by name (see :data:`REGULARIZERS`); hard and linear ignore ``gamma``."""
    cls = REGULARIZERS.get(name)
    if cls is None:
        raise ValueError(
            f"unknown self-paced regulariser {name!r}; valid names: {', '.join(REGULARIZERS)}"
        )
    if cls in (HardSPL, LinearSPL):
        return cls(lam=lam)
    return cls(lam=lam, gamma=gamma)
