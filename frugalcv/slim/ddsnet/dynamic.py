"""DDS-Net Stage 3: the gate on the noisy input, dynamic inference over rungs, gate training."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from frugalcv.core.measure import count_macs, to_module
from frugalcv.core.task import Task
from frugalcv.slim.ddsnet.metrics import _Call, config_macs, psnr_per_image
from frugalcv.slim.ddsnet.sandwich import _pair
from frugalcv.slim.ddsnet.supernet import Config, SlimDnCNN
from frugalcv.slim.ddsnet.tailor import Rung, _load_bn
from frugalcv.slim.gate import DynamicGate, GateOutput, complexity_loss

__all__ = [
    "GATE_RULES",
    "DenoiseGate",
    "DenoiseGateTask",
    "DynamicDenoiser",
    "estimate_sigma",
    "gate_targets",
    "haar_diagonal",
    "oracle_routes",
]

GATE_RULES = ("cheapest_within", "binary")


def haar_diagonal(x: Tensor) -> Tensor:
    """Finest diagonal Haar detail ``(a - b - c + d) / 2`` of each 2x2 block.

    For white noise of std ``s`` its entries have std ``s`` (orthonormal transform), and flat or
    linear image regions give 0. ``(B, C, H, W)`` -> ``(B, C, H // 2, W // 2)``.
    """
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    x = x[..., :h, :w]
    return (x[..., 0::2, 0::2] - x[..., 0::2, 1::2] - x[..., 1::2, 0::2] + x[..., 1::2, 1::2]) / 2


def estimate_sigma(x: Tensor) -> Tensor:
    """Noise std per image, on the 0-255 scale: ``median |HH| / 0.6745`` per channel, averaged
    over channels (Donoho & Johnstone 1994's MAD estimator, as ``skimage.restoration.
    estimate_sigma`` with ``average_sigmas=True`` but with the Haar instead of the db2 wavelet).

    Args:
        x: ``(B, C, H, W)`` in [0, 1]. Returns ``(B,)``.
    """
    hh = haar_diagonal(x).flatten(2).abs()  # (B, C, h*w)
    return (hh.median(dim=-1).values / 0.6745).mean(dim=1) * 255.0


class DenoiseGate(nn.Module):
    """A tiny gate on the noisy input: which rung to run.

    Input features at ``size x size``: the area-downsampled image and, with ``noise_feature``,
    the downsampled magnitude of its finest diagonal Haar detail ``|HH|`` (mean over channels;
    noise level and fine texture, which downsampling alone erases). Then
    ``conv3x3/2 -> ReLU -> conv3x3/2 -> ReLU`` and DS-Net's slimming head
    (:class:`~frugalcv.slim.gate.DynamicGate`: pool, MLP, Gumbel in training, argmax in eval).

    Args:
        in_channels: image channels.
        num_choices: K rungs.
        size: side of the downsampled input (32).
        hidden: channels of the two convs and of the head's hidden layer (16).

    Shapes: ``x: (B, C, H, W)`` with H, W >= 2 -> :class:`GateOutput` with ``(B, K)`` logits.

    Differences from the paper: the paper's gate is not public; this one is built to cost a
    negligible share of the denoiser's MACs (measured by :meth:`DynamicDenoiser.gate_macs`).
    """

    def __init__(
        self,
        *,
        in_channels: int,
        num_choices: int,
        size: int = 32,
        hidden: int = 16,
        noise_feature: bool = True,
        tau: float = 1.0,
    ) -> None:
        super().__init__()
        self.size, self.noise_feature = size, noise_feature
        feats = in_channels + int(noise_feature)
        self.conv1 = nn.Conv2d(feats, hidden, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, stride=2, padding=1)
        self.head = DynamicGate(in_channels=hidden, num_choices=num_choices, hidden=hidden, tau=tau)

    def features(self, x: Tensor) -> Tensor:
        z = F.adaptive_avg_pool2d(x, self.size)  # (B, C, s, s)
        if self.noise_feature:
            hh = haar_diagonal(x).abs().mean(dim=1, keepdim=True)  # (B, 1, H/2, W/2)
            # x 8: |HH| of sigma-25 noise averages ~0.08; bring it near the image's scale
            z = torch.cat([z, 8.0 * F.adaptive_avg_pool2d(hh, self.size)], dim=1)
        return F.relu(self.conv2(F.relu(self.conv1(z))))  # (B, hidden, s/4, s/4)

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None) -> GateOutput:
        return self.head(self.features(x), generator=generator)


class DynamicDenoiser(nn.Module):
    """A tailored supernet, K rungs and a gate: each image runs its rung's slice only.

    Rungs are sorted by MACs **ascending** (choice 0 the cheapest, K-1 the widest, DS-Net's
    convention). Each rung's configuration and BN statistics are buffers, so the whole thing
    saves and loads with ``state_dict``; :meth:`apply_rung` loads them into the supernet
    (a copy of ``2 * sum(c_i)`` floats).

    Args:
        supernet: trained in Stage 1.
        rungs: from :func:`tailor` (e.g. through :func:`pick_rungs`); at least 2.
        gate: default ``DenoiseGate(in_channels, K)``.

    Buffers: ``configs (K, L)``, ``bn_mean, bn_var (K, L - 1, C)`` (zero-padded past each
    count), ``rung_macs (K,)`` (at the tailoring images' size), ``rung_psnr (K,)``.
    """

    def __init__(
        self,
        *,
        supernet: SlimDnCNN,
        rungs: Sequence[Rung],
        gate: DenoiseGate | None = None,
    ) -> None:
        super().__init__()
        if len(rungs) < 2:
            raise ValueError(f"a dynamic denoiser needs at least 2 rungs; got {len(rungs)}")
        rungs = sorted(rungs, key=lambda r: r.macs)
        self.supernet = supernet
        self.gate = gate or DenoiseGate(in_channels=supernet.in_channels, num_choices=len(rungs))
        if self.gate.head.num_choices != len(rungs):
            raise ValueError(f"the gate has {self.gate.head.num_choices} choices, not {len(rungs)}")
        k, n, c = len(rungs), supernet.num_layers - 1, supernet.channels
        mean, var = torch.zeros(k, n, c), torch.ones(k, n, c)
        for i, r in enumerate(rungs):
            supernet.check_config(r.config)
            for j in range(n):
                mean[i, j, : r.config[j + 1]] = r.bn_mean[j]
                var[i, j, : r.config[j + 1]] = r.bn_var[j]
        self.register_buffer("configs", torch.tensor([list(r.config) for r in rungs]))
        self.register_buffer("bn_mean", mean)
        self.register_buffer("bn_var", var)
        self.register_buffer("rung_macs", torch.tensor([float(r.macs) for r in rungs]))
        self.register_buffer("rung_psnr", torch.tensor([float(r.psnr) for r in rungs]))

    @property
    def num_choices(self) -> int:
        return int(self.configs.shape[0])

    def config(self, k: int) -> Config:
        return tuple(int(c) for c in self.configs[k].tolist())

    def apply_rung(self, k: int) -> None:
        """Set rung ``k``'s configuration and BN statistics on the supernet."""
        cfg = self.config(k)
        self.supernet.set_config(cfg)
        means = [self.bn_mean[k, j, : cfg[j + 1]] for j in range(len(cfg) - 1)]
        var = [self.bn_var[k, j, : cfg[j + 1]] for j in range(len(cfg) - 1)]
        _load_bn(self.supernet, cfg, means, var)

    def forward_rung(self, x: Tensor, k: int) -> Tensor:
        """Denoise ``x`` with rung ``k`` (the supernet must be in eval mode for its statistics
        to be used)."""
        self.apply_rung(int(k))
        return self.supernet(x)

    def route(self, x: Tensor) -> GateOutput:
        return self.gate(x)

    def forward(self, x: Tensor, *, return_route: bool = False):
        """Grouped dynamic inference: the gate routes the batch, then :meth:`run_routes`.
        ``(B, C, H, W)`` -> same (and the ``(B,)`` route with ``return_route``)."""
        route = self.route(x).index
        out = self.run_routes(x, route)
        return (out, route) if return_route else out

    def run_routes(self, x: Tensor, route: Tensor) -> Tensor:
        """Run each group of samples at its rung (a dense, smaller forward), scatter back in
        input order. ``route: (B,)`` long in ``[0, K)``."""
        if route.shape != (x.shape[0],):
            raise ValueError(f"route must be (B,) = ({x.shape[0]},); got {tuple(route.shape)}")
        out = x.new_empty(x.shape)
        for k in torch.unique(route).tolist():
            idx = (route == k).nonzero(as_tuple=True)[0]
            out.index_copy_(0, idx, self.forward_rung(x.index_select(0, idx), int(k)))
        return out

    def denoise_each(self, images: Sequence[Tensor]) -> tuple[list[Tensor], list[int]]:
        """Per-image dynamic inference (any sizes): the gate and the chosen rung run on each
        ``(C, H, W)`` image alone. Returns the outputs and the routes."""
        outs, routes = [], []
        for im in images:
            x = to_module(im[None], self)  # the image's copy on the model's device
            k = int(self.route(x).index[0])
            outs.append(self.forward_rung(x, k)[0].to(im))  # back where the image was
            routes.append(k)
        return outs, routes

    def gate_macs(self, image_size: tuple[int, int]) -> int:
        """MACs of the gate for one image (``count_macs``: its convs and linear layers; the
        pooling and the Haar detail are elementwise, about 2 additions per input pixel, and are
        not counted by that convention)."""
        x = torch.zeros(1, self.supernet.in_channels, *image_size, device=self.configs.device)
        return count_macs(_Call(self.gate, lambda g, z: g(z).logits), x)

    def macs(self, image_size: tuple[int, int]) -> Tensor:
        """``(K,)`` MACs of each rung for one ``(H, W)`` image."""
        return torch.tensor(
            [
                float(config_macs(self.supernet, self.config(k), image_size=image_size))
                for k in range(self.num_choices)
            ]
        )


def gate_targets(psnr: Tensor, *, tolerance: float = 0.1, rule: str = "cheapest_within") -> Tensor:
    """Online easy/hard labels from the PSNR of every rung on each crop.

    ``"cheapest_within"``: the cheapest rung whose PSNR is within ``tolerance`` dB of the widest
    rung's on this crop (an easy crop goes low, a hard one high; intermediate rungs get crops
    too). ``"binary"``: rung 0 when ``psnr_widest - psnr_cheapest <= tolerance`` (easy), else
    K-1 (hard), the denoising analogue of DS-Net's sandwich gate sparsification.

    Args:
        psnr: ``(B, K)`` PSNR of rung k (MACs ascending) on each crop.

    Returns:
        ``(B,)`` long in ``[0, K)``.
    """
    if psnr.dim() != 2 or psnr.shape[1] < 2:
        raise ValueError(f"psnr must be (B, K) with K >= 2; got {tuple(psnr.shape)}")
    if rule not in GATE_RULES:
        raise ValueError(f"unknown gate rule {rule!r}; use one of {GATE_RULES}")
    k = psnr.shape[1]
    if rule == "binary":
        return ((psnr[:, -1] - psnr[:, 0]) > tolerance).long() * (k - 1)
    ok = psnr >= psnr[:, -1:] - tolerance  # (B, K); the widest is always ok
    return ok.float().argmax(dim=1)  # first True


class DenoiseGateTask(Task):
    """Stage 3: train the gate of a frozen, tailored supernet.

    Per batch ``(y, x)``: PSNR of every rung on every crop (no grad) -> targets
    ``t = gate_targets(...)``; ``loss = CE(gate_logits(y), t) + complexity_weight *
    (E[MACs] / MACs_widest)^2`` (DS-Net's complexity penalty, :func:`complexity_loss`, through
    the straight-through Gumbel weights).

    Args:
        model: a :class:`DynamicDenoiser`; its supernet is frozen and held in eval mode.
        rule, tolerance: see :func:`gate_targets` (reconstruction: ``"cheapest_within"``,
            0.1 dB).
        complexity_weight: 0 by default (the targets already trade quality for cost).

    Differences from the paper: the easy/hard criterion and the gate loss are not public.
    """

    monitor = ("psnr", "max")

    def __init__(
        self,
        *,
        model: DynamicDenoiser,
        rule: str = "cheapest_within",
        tolerance: float = 0.1,
        complexity_weight: float = 0.0,
    ) -> None:
        super().__init__()
        if rule not in GATE_RULES:
            raise ValueError(f"unknown gate rule {rule!r}; use one of {GATE_RULES}")
        self.model = model
        model.supernet.requires_grad_(False)
        self.rule, self.tolerance, self.complexity_weight = rule, tolerance, complexity_weight

    def train(self, mode: bool = True) -> DenoiseGateTask:
        super().train(mode)
        self.model.supernet.eval()  # frozen: each rung's recalibrated statistics are used
        return self

    @torch.no_grad()
    def rung_psnr(self, noisy: Tensor, clean: Tensor) -> Tensor:
        """``(B, K)`` PSNR of every rung on every image."""
        m = self.model
        return torch.stack(
            [psnr_per_image(m.forward_rung(noisy, k), clean) for k in range(m.num_choices)], 1
        )

    def training_step(self, batch: Any) -> dict[str, Tensor]:
        noisy, clean = _pair(batch)
        target = gate_targets(
            self.rung_psnr(noisy, clean), tolerance=self.tolerance, rule=self.rule
        )
        g = self.model.route(noisy)
        ce = F.cross_entropy(g.logits, target)
        macs = self.model.rung_macs
        cplx = complexity_loss(g.weights, macs, unit=float(macs[-1]))
        loss = ce + self.complexity_weight * cplx
        return {
            "loss": loss,
            "ce": ce.detach(),
            "gate_acc": (g.logits.argmax(-1) == target).float().mean(),
            "target_mean": target.float().mean(),
            "macs_frac": (g.weights.detach() * macs).sum(-1).mean() / macs[-1],
        }

    def validation_step(self, batch: Any) -> dict[str, Tensor]:
        """Routed PSNR (``psnr``), the widest and cheapest rungs' PSNR, the targets' PSNR
        (``psnr_oracle``), routed MACs as a fraction of the widest (``macs_frac``)."""
        noisy, clean = _pair(batch)
        per_rung = self.rung_psnr(noisy, clean)  # (B, K)
        target = gate_targets(per_rung, tolerance=self.tolerance, rule=self.rule)
        out, route = self.model(noisy, return_route=True)
        macs = self.model.rung_macs
        rows = torch.arange(len(route))
        return {
            "psnr": psnr_per_image(out, clean).mean(),
            "psnr_widest": per_rung[:, -1].mean(),
            "psnr_cheapest": per_rung[:, 0].mean(),
            "psnr_oracle": per_rung[rows, target].mean(),
            "macs_frac": (macs[route] / macs[-1]).mean(),
            "gate_acc": (route == target).float().mean(),
        }


def _lagrangian_routes(quality: Tensor, cost: Tensor, lam: float) -> Tensor:
    """Per sample, the choice maximising ``quality - lam * cost``; ties to the cheaper one."""
    score = quality - lam * cost
    best = score.max(dim=1, keepdim=True).values
    # among the (near-)tied best, the cheapest: a tie never spends more than it must
    tied = score >= best - 1e-12
    return torch.where(tied, cost, torch.full_like(cost, float("inf"))).argmin(dim=1)


def oracle_routes(quality: Tensor, cost: Tensor, budget: float, *, iters: int = 100) -> Tensor:
    """The routing that knows each sample's quality at every choice: the most mean quality for
    at most ``budget`` mean cost (an upper bound for any gate on the same choices).

    Lagrangian relaxation: each sample takes ``argmax_k quality[i, k] - lam * cost[i, k]``, the
    smallest ``lam >= 0`` whose mean cost fits the budget found by bisection. The result is
    optimal among routings of its own mean cost (a point of the convex hull of what routings can
    reach); between hull points a fractional mix could do slightly better, which ``N`` samples
    cannot realise exactly.

    Args:
        quality: ``(N, K)``, e.g. the PSNR of each rung on each image.
        cost: ``(K,)`` or ``(N, K)``, e.g. MACs of each rung (per image when sizes differ).
        budget: mean cost allowed. Below the cheapest routing's cost every sample takes its
            cheapest choice.

    Returns:
        ``(N,)`` long, the choice per sample.
    """
    if quality.dim() != 2 or quality.shape[1] < 1:
        raise ValueError(f"quality must be (N, K); got {tuple(quality.shape)}")
    q = quality.double()
    c = cost.double()
    if c.dim() == 1 and c.shape[0] == q.shape[1]:
        c = c.expand_as(q)
    if c.shape != q.shape:
        raise ValueError(f"cost must be (K,) or (N, K) = {tuple(q.shape)}; got {tuple(cost.shape)}")
    if not (torch.isfinite(q).all() and torch.isfinite(c).all()):
        raise ValueError("quality and cost must be finite")

    def spend(lam: float) -> float:
        r = _lagrangian_routes(q, c, lam)
        return float(c.gather(1, r[:, None]).mean())

    if spend(0.0) <= budget:
        return _lagrangian_routes(q, c, 0.0)
    hi = 1.0
    span = float((q.max() - q.min()) / (c.max() - c.min()).clamp_min(1e-12)) + 1.0
    while spend(hi) > budget and hi < span * 4:
        hi *= 2.0
    if spend(hi) > budget:  # the budget is below the cheapest routing
        return c.argmin(dim=1)
    lo = 0.0
    for _ in range(iters):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if spend(mid) > budget else (lo, mid)
    return _lagrangian_routes(q, c, hi)
