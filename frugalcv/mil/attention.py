"""Attention-based deep MIL (Ilse, Tomczak, Welling, ICML 2018), gated attention, as a baseline.

A bag of K instances is embedded instance by instance, ``h_k = g(x_k)`` (L,), then pooled with
learned weights (their Eq. 9, gated attention):

    a_k = exp(w^T (tanh(V h_k) * sigm(U h_k))) / sum_j exp(w^T (tanh(V h_j) * sigm(U h_j)))
    z = sum_k a_k h_k,          P(Y = 1 | bag) = sigm(c^T z + b)

and trained with the Bernoulli log-likelihood of the bag label. Bags of different sizes are
batched by padding: ``x`` (B, N, *instance_shape) with a boolean ``mask`` (B, N) that is True on
real instances (``frugalcv.data.mil.collate_bags`` builds both); padded slots get zero attention.

Defaults from the paper's MNIST-bags set-up as we recall it ([mem], not checked against the
paper text here): L = 500, attention hidden size D = 128, a LeNet-5-like instance encoder
(:class:`LeNetEncoder`), Adam lr 5e-4, betas (0.9, 0.999), weight decay 1e-4.

Differences from the paper: batches of several padded bags (the paper used one bag per step);
the classifier returns a logit and the loss is ``binary_cross_entropy_with_logits`` (the same
likelihood, numerically stable).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from frugalcv.core.task import Task

__all__ = ["AttentionMIL", "AttentionMILTask", "GatedAttentionPool", "LeNetEncoder"]


class GatedAttentionPool(nn.Module):
    """Gated attention pooling (Ilse et al. 2018, Eq. 9).

    Args:
        dim: L, size of the instance embeddings.
        hidden: D, size of the attention's hidden layer.
        gated: False gives the plain attention of their Eq. 8 (no sigmoid gate).
    """

    def __init__(self, *, dim: int, hidden: int = 128, gated: bool = True) -> None:
        super().__init__()
        self.V = nn.Linear(dim, hidden)
        self.U = nn.Linear(dim, hidden) if gated else None
        self.w = nn.Linear(hidden, 1)

    def forward(self, h: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Pool instance embeddings.

        Args:
            h: (B, N, L) instance embeddings.
            mask: (B, N) bool, True on real instances; None means all real.

        Returns:
            z: (B, L) bag embeddings; a: (B, N) attention weights, summing to 1 over real
            instances and 0 on padding.
        """
        if h.dim() != 3:
            raise ValueError(f"h must be (B, N, L), got shape {tuple(h.shape)}")
        gate = torch.tanh(self.V(h))  # (B, N, D)
        if self.U is not None:
            gate = gate * torch.sigmoid(self.U(h))
        logits = self.w(gate).squeeze(-1)  # (B, N)
        if mask is not None:
            if mask.shape != logits.shape:
                raise ValueError(
                    f"mask must be (B, N) = {tuple(logits.shape)}, got {tuple(mask.shape)}"
                )
            if not bool(mask.any(dim=1).all()):
                raise ValueError("every bag needs at least one real instance (mask row all False)")
            logits = logits.masked_fill(~mask, float("-inf"))
        a = torch.softmax(logits, dim=1)  # (B, N)
        z = torch.einsum("bn,bnl->bl", a, h)  # (B, L)
        return z, a


class LeNetEncoder(nn.Module):
    """Instance encoder for 28x28 digits used by Ilse et al. on MNIST-bags ([mem]).

    conv5(20) - ReLU - maxpool2 - conv5(50) - ReLU - maxpool2 - linear(800 -> L) - ReLU.
    Input (M, 1, 28, 28), output (M, L).
    """

    def __init__(self, *, dim: int = 500) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 20, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(20, 50, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.fc = nn.Sequential(nn.Linear(50 * 4 * 4, dim), nn.ReLU())
        self.out_features = dim

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x).flatten(1))  # (M, 800) -> (M, L)


class AttentionMIL(nn.Module):
    """Attention MIL bag classifier: encoder -> (gated) attention pooling -> linear logit.

    Args:
        in_features: size of vector instances; builds an MLP encoder ``Linear(in, L) - ReLU``.
            Give either this or ``encoder``.
        encoder: a module mapping (M, *instance_shape) -> (M, L); must expose ``out_features``
            or pass ``dim``.
        dim: L, the instance embedding size.
        hidden: D, the attention hidden size.
        gated: gated (Eq. 9) or plain (Eq. 8) attention.
        dropout: dropout on the bag embedding before the classifier (0 in the paper).
    """

    def __init__(
        self,
        *,
        in_features: int | None = None,
        encoder: nn.Module | None = None,
        dim: int = 500,
        hidden: int = 128,
        gated: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if (in_features is None) == (encoder is None):
            raise ValueError("give exactly one of in_features (vector instances) or encoder")
        if encoder is None:
            encoder = nn.Sequential(nn.Linear(in_features, dim), nn.ReLU())
        else:
            dim = getattr(encoder, "out_features", dim)
        self.encoder = encoder
        self.pool = GatedAttentionPool(dim=dim, hidden=hidden, gated=gated)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(dim, 1)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Bag logits.

        Args:
            x: (B, N, *instance_shape) padded bags.
            mask: (B, N) bool, True on real instances.

        Returns:
            logits: (B,); attention: (B, N).
        """
        if x.dim() < 3:
            raise ValueError(f"x must be (B, N, *instance_shape), got shape {tuple(x.shape)}")
        b, n = x.shape[:2]
        h = self.encoder(x.flatten(0, 1))  # (B*N, L)
        h = h.view(b, n, -1)  # (B, N, L)
        z, a = self.pool(h, mask)
        return self.classifier(self.dropout(z)).squeeze(-1), a


def _unpack(batch: Any) -> tuple[Tensor, Tensor | None, Tensor]:
    if isinstance(batch, dict):
        missing = {"x", "y"} - set(batch)
        if missing:
            raise ValueError(f"an attention-MIL batch needs keys x, mask, y; missing {missing}")
        return batch["x"], batch.get("mask"), batch["y"]
    if isinstance(batch, (tuple, list)) and len(batch) == 3:
        return batch[0], batch[1], batch[2]
    raise ValueError(
        "an attention-MIL batch must be a dict {x, mask, y} or a tuple (x, mask, y); "
        "build it with frugalcv.data.mil.collate_bags"
    )


class AttentionMILTask(Task):
    """Bag classification with :class:`AttentionMIL` and the bag-label log-likelihood.

    Batch: ``{"x": (B, N, ...), "mask": (B, N) bool, "y": (B,) 0/1}`` (or that tuple).
    ``training_step`` returns ``loss`` (mean BCE over bags) and ``acc``; ``validation_step``
    returns the same per-batch means.
    """

    monitor = ("acc", "max")

    def __init__(self, *, model: AttentionMIL) -> None:
        super().__init__()
        self.model = model

    def _losses(self, batch: Any) -> dict[str, Tensor]:
        x, mask, y = _unpack(batch)
        logits, _ = self.model(x, mask)
        y = y.to(logits.dtype)
        if y.shape != logits.shape:
            raise ValueError(f"y must be (B,) = {tuple(logits.shape)}, got {tuple(y.shape)}")
        loss = F.binary_cross_entropy_with_logits(logits, y)
        acc = ((logits > 0).to(y.dtype) == y).float().mean()
        return {"loss": loss, "acc": acc.detach()}

    def training_step(self, batch: Any) -> dict[str, Tensor]:
        return self._losses(batch)

    @torch.no_grad()
    def validation_step(self, batch: Any) -> dict[str, Tensor]:
        return {k: v.detach() for k, v in self._losses(batch).items()}
