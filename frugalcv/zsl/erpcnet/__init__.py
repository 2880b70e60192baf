"""ERPCNet: entropy-guided reinforced partial convolution for zero-shot learning (reconstruction).

Yun Li, Zhe Liu, Lina Yao, Xianzhi Wang, Julian McAuley, Xiaojun Chang, "An Entropy-guided
Reinforced Partial Convolutional Network for Zero-Shot Learning", IEEE TCSVT 32(8), 2022,
arXiv 2111.02139. No official code exists and only the abstract could be read, so every detail
below the abstract's level is a reconstruction (listed in ``docs/methods/erpcnet.md``).

What the abstract states: a global-local representation that adds "localities" (small regions)
to the global feature; localities are extracted and aggregated progressively, chosen by semantic
relevance and visual correlation, without annotated regions; a reinforced partial convolution
(policy gradient) discovers them; an entropy guidance makes the policy-gradient optimisation
converge faster.

Reconstruction (one episode of ``T`` steps per image, on the backbone feature map ``F``):

- global: ``h_0 = tanh(W_g GAP(F))``; compatibility ``s_t(c) = h_t^T W a_c`` (bilinear head of
  ALE, :class:`frugalcv.zsl.baselines.BilinearCompatibility`).
- policy: ``pi(a_t | F, h_{t-1})`` over the cells of a ``grid`` laid over ``F`` (cells already
  chosen get probability 0); inputs detached, so only the policy loss trains it.
- locality: ``l_t = masked_mean(relu(PConv(F, M_t)), M_t)`` with ``M_t`` the chosen cell's mask
  and PConv the partial convolution of Liu et al. (ECCV 2018): the feature outside the cell
  cannot reach ``l_t`` (:class:`PartialConv2d`).
- aggregation: ``h_t = GRU(l_t, h_{t-1})``.
- reward: ``r_t = [rel(s_t, y) - rel(s_{t-1}, y)] - lambda_v * mean_{j<t} cos(l_t, l_j)``
  (semantic relevance gain minus a visual-redundancy penalty; :func:`erpc_rewards`).
- loss: ``mean_t CE(s_t, y) + w_pg * sum_t -(G_t - b_t) log pi(a_t) - beta * mean_t H(pi_t)``
  with returns ``G_t``, a moving-average baseline ``b_t`` and the entropy bonus ``beta``.

Components (no config, no trainer): :class:`PartialConv2d`, :func:`cell_masks`,
:func:`masked_mean`, :func:`policy_entropy`, :func:`sample_categorical`,
:func:`semantic_relevance`, :func:`visual_correlation`, :func:`erpc_rewards`,
:func:`discounted_returns`, :func:`reinforce_loss`, :class:`ERPCNet`; the training wrapper is
:class:`ERPCNetTask`; :func:`draw_localities` draws the chosen cells (explainability).
"""

from frugalcv.zsl.erpcnet.components import (
    BASELINE_OPTIONS,
    RELEVANCE_OPTIONS,
    PartialConv2d,
    cell_masks,
    discounted_returns,
    erpc_rewards,
    masked_mean,
    policy_entropy,
    reinforce_loss,
    sample_categorical,
    semantic_relevance,
    visual_correlation,
)
from frugalcv.zsl.erpcnet.explain import draw_localities, locality_boxes
from frugalcv.zsl.erpcnet.model import ERPCNet, ERPCNetOutput
from frugalcv.zsl.erpcnet.task import ERPCNetTask

__all__ = [
    "BASELINE_OPTIONS",
    "RELEVANCE_OPTIONS",
    "ERPCNet",
    "ERPCNetOutput",
    "ERPCNetTask",
    "PartialConv2d",
    "cell_masks",
    "discounted_returns",
    "draw_localities",
    "erpc_rewards",
    "locality_boxes",
    "masked_mean",
    "policy_entropy",
    "reinforce_loss",
    "sample_categorical",
    "semantic_relevance",
    "visual_correlation",
]
