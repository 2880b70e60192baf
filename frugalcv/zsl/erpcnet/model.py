"""The ERPCNet network: a global feature plus policy-chosen localities, and its output."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from frugalcv.zsl.baselines import BilinearCompatibility
from frugalcv.zsl.erpcnet.components import (
    PartialConv2d,
    _masked_logits,
    cell_masks,
    masked_mean,
    policy_entropy,
    sample_categorical,
)

__all__ = ["ERPCNet", "ERPCNetOutput"]


@dataclass
class ERPCNetOutput:
    """One episode. ``T`` = num_steps (0 for the global-only model).

    Attributes:
        scores: (B, C) final compatibility scores (of ``h_T``).
        step_scores: (T + 1, B, C) scores of ``h_0 .. h_T``.
        actions: (B, T) chosen cells (row-major).
        log_probs: (B, T) ``log pi(a_t)``.
        entropies: (B, T) policy entropies in nats.
        localities: (B, T, D) locality features.
    """

    scores: Tensor
    step_scores: Tensor
    actions: Tensor
    log_probs: Tensor
    entropies: Tensor
    localities: Tensor


class ERPCNet(nn.Module):
    """Global feature + T policy-chosen localities, scored against class semantics.

    Args:
        backbone: a frugalcv.zoo model (``forward_features`` -> (B, C, H, W), ``num_features``).
        semantic_dim: A, the width of the class semantics.
        hidden_dim: D, the width of ``h_t`` and of the locality features.
        num_steps: T localities per image (each cell at most once; T <= g_h * g_w).
        grid: (g_h, g_w) cells over the feature map (the policy's action space).
        use_localities: False gives the global-only baseline (same backbone, ``W_g``, head).
        policy_dim: hidden width of the policy network.

    Shapes: forward(x: (B, in_chans, H_img, W_img), semantics: (C, A)) -> :class:`ERPCNetOutput`.

    Differences from the paper: everything below the abstract is reconstructed (module
    docstring); no ResNet-101 / ImageNet weights here (any zoo backbone, trained from scratch).
    """

    def __init__(
        self,
        *,
        backbone: nn.Module,
        semantic_dim: int,
        hidden_dim: int = 128,
        num_steps: int = 3,
        grid: tuple[int, int] = (4, 4),
        use_localities: bool = True,
        policy_dim: int = 64,
    ) -> None:
        super().__init__()
        gh, gw = grid
        if gh < 1 or gw < 1:
            raise ValueError(f"grid must be two positive ints; got {grid}")
        if use_localities and not 1 <= num_steps <= gh * gw:
            raise ValueError(
                f"num_steps must be in 1..{gh * gw} (the cells of grid {grid}, each chosen at "
                f"most once); got {num_steps}. Use use_localities=False for the global-only model"
            )
        channels = int(backbone.num_features)
        self.backbone = backbone
        self.grid = (gh, gw)
        self.num_steps = num_steps if use_localities else 0
        self.use_localities = use_localities
        self.global_proj = nn.Linear(channels, hidden_dim)
        self.head = BilinearCompatibility(feature_dim=hidden_dim, semantic_dim=semantic_dim)
        if use_localities:
            self.pconv = PartialConv2d(in_channels=channels, out_channels=hidden_dim)
            self.gru = nn.GRUCell(hidden_dim, hidden_dim)
            self.policy_cell = nn.Conv2d(channels, policy_dim, 1)
            self.policy_state = nn.Linear(hidden_dim, policy_dim)
            self.policy_out = nn.Conv2d(policy_dim, 1, 1)

    def policy_logits(self, cells: Tensor, h: Tensor) -> Tensor:
        """Logits over cells from cells: (B, C, g_h, g_w) and the state h: (B, D) -> (B, K).

        ``pi(a | F, h) = softmax_a(w^T relu(U f_a + V h))`` (a reconstruction): each cell's
        pooled feature ``f_a`` is judged against what has been aggregated so far.
        """
        cells = F.normalize(cells, dim=1)  # unit-norm cells: logits do not grow with the map
        z = self.policy_cell(cells) + self.policy_state(h)[:, :, None, None]  # (B, P, g_h, g_w)
        return self.policy_out(torch.relu(z)).flatten(1)  # (B, g_h * g_w)

    def forward(
        self,
        x: Tensor,
        semantics: Tensor,
        *,
        generator: torch.Generator | None = None,
        greedy: bool = False,
    ) -> ERPCNetOutput:
        f = self.backbone.forward_features(x)  # (B, C, H, W)
        if f.ndim != 4:
            raise ValueError(f"backbone.forward_features must give (B, C, H, W); got {f.shape}")
        b, _, h_f, w_f = f.shape
        gh, gw = self.grid
        if gh > h_f or gw > w_f:
            raise ValueError(f"grid {self.grid} is finer than the {h_f}x{w_f} feature map")
        h = torch.tanh(self.global_proj(f.mean((2, 3))))  # (B, D) h_0
        step_scores = [self.head(h, semantics)]
        actions, log_probs, entropies, locs = [], [], [], []
        if self.use_localities:
            cells = F.adaptive_avg_pool2d(f, self.grid).detach()  # (B, C, g_h, g_w)
            visited = torch.zeros(b, gh * gw, dtype=torch.bool, device=f.device)
            for _ in range(self.num_steps):
                logits = _masked_logits(self.policy_logits(cells, h.detach()), ~visited)
                logp = torch.log_softmax(logits, -1)  # (B, K)
                a = sample_categorical(logp.exp(), generator=generator, greedy=greedy)
                mask = cell_masks(a, grid=self.grid, size=(h_f, w_f))  # (B, 1, H, W)
                out, _ = self.pconv(f, mask)
                loc = masked_mean(torch.relu(out), mask)  # (B, D) l_t
                h = self.gru(loc, h)
                visited = visited | F.one_hot(a, gh * gw).bool()
                step_scores.append(self.head(h, semantics))
                actions.append(a)
                log_probs.append(logp.gather(1, a[:, None])[:, 0])
                entropies.append(policy_entropy(logits))
                locs.append(loc)

        def stack(items: list[Tensor], shape: tuple[int, ...], dtype=None) -> Tensor:
            if items:
                return torch.stack(items, 1)
            return torch.zeros(shape, device=f.device, dtype=dtype or f.dtype)

        return ERPCNetOutput(
            scores=step_scores[-1],
            step_scores=torch.stack(step_scores),
            actions=stack(actions, (b, 0), torch.long),
            log_probs=stack(log_probs, (b, 0)),
            entropies=stack(entropies, (b, 0)),
            localities=stack(locs, (b, 0, h.shape[1])),
        )
