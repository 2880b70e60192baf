"""BGSNet: balancing generalization and specialization in zero-shot learning (reconstruction).

Yun Li, Zhe Liu, Xiaojun Chang, Julian McAuley, Lina Yao, "Balancing Generalization and
Specialization in Zero-shot Learning", arXiv 2201.01961 (journal version: "Diversity-boosted
Generalization-Specialization Balancing for Zero-shot Learning", IEEE TMM 2023). No official code
exists and only the abstract is public, so everything below the abstract's level is a
reconstruction (listed in docs/methods/bgsnet.md). The abstract's parts and their code:

- GNet, episodic meta-learning for generalization: :class:`GNet` (cosine visual-semantic
  compatibility), :func:`sample_episode`, :func:`episode_loss` (first-order MAML: one inner step on
  the support of the pseudo-seen classes, loss on a query that also holds pseudo-unseen classes).
- BSNet, several attentive extractors: :class:`AttentiveExtractors` (K spatial-attention heads over
  a feature map, or K channel-attention heads over a feature vector, each scored against the
  class semantics).
- Self-adjusted diversity loss: :func:`diversity_loss` (pairwise cosine of the attention maps,
  each pair weighted by its own detached similarity).
- Instance-level balance: :class:`InstanceBalance` (a per-sample gate mixing GNet and BSNet).
- Differentiable dataset-level balance, linearly annealed to simulate pruning:
  :class:`DatasetBalance` and :func:`linear_anneal`; :meth:`BGSNet.pruned` removes the annealed
  extractors and :func:`pruning_report` states the cost saving.
- :class:`BGSNet` (the deployable model) and :class:`BGSNetTask` (training, ablation switches).

Scores everywhere are ``scale * cos(visual embedding, semantic embedding)`` (B, num_classes) over
global class ids, so they feed :func:`frugalcv.zsl.evaluate_zsl` directly.
"""

from frugalcv.zsl.bgsnet.components import (
    ATTENTION_OPTIONS,
    BRANCH_OPTIONS,
    AttentiveExtractors,
    DatasetBalance,
    Episode,
    GNet,
    InstanceBalance,
    attention_similarity,
    diversity_loss,
    eligible_classes,
    episode_loss,
    linear_anneal,
    sample_episode,
)
from frugalcv.zsl.bgsnet.model import BGSNet, pruning_report
from frugalcv.zsl.bgsnet.task import BGSNetTask

__all__ = [
    "ATTENTION_OPTIONS",
    "BRANCH_OPTIONS",
    "AttentiveExtractors",
    "BGSNet",
    "BGSNetTask",
    "DatasetBalance",
    "Episode",
    "GNet",
    "InstanceBalance",
    "attention_similarity",
    "diversity_loss",
    "eligible_classes",
    "episode_loss",
    "linear_anneal",
    "pruning_report",
    "sample_episode",
]
