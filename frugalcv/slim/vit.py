"""DS-ViT: a slice-able vision transformer (embedding dim, number of heads, MLP hidden size).

DS-Net++ (Li et al., arXiv 2109.10060) extends weight slicing to transformers: the first ``h``
heads, the first ``d`` embedding dims and the first ``m`` MLP hidden units are used. Here a
width is a ratio for all three or a mapping ``{"embed": r_e, "heads": r_h, "mlp": r_m}``.

Differences from the paper (reconstruction; no DS-ViT++ code was released): the trunk (patch
embedding and the first block) runs at ``trunk_width``; the body starts by truncating (or zero
padding) the token features to its embedding width, i.e. the dims past it are left idle for
the rest of the network. Mean pooling over tokens replaces the class token. The paper's
"dynamic idle slicing" details could not be checked here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from frugalcv.layers.slimmable import (
    SlimConv2d,
    SlimLayerNorm,
    SlimLinear,
    SlimMultiheadAttention,
    _ratio_for,
    scaled_channels,
)
from frugalcv.slim.gate import DynamicGate
from frugalcv.slim.supernet import SlimSupernet

__all__ = ["DSViT", "SlimTransformerBlock", "ds_vit_cifar"]


class SlimTransformerBlock(nn.Module):
    """Pre-norm block ``x + MHSA(LN(x))``, then ``x + MLP(LN(x))`` with sliced heads / hidden.

    Shapes: ``x: (B, N, d)`` -> ``(B, N, d)``.
    """

    def __init__(self, *, embed_dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        hidden = int(embed_dim * mlp_ratio)
        self.norm1 = SlimLayerNorm(normalized_dim=embed_dim, eps=1e-6)
        self.attn = SlimMultiheadAttention(embed_dim=embed_dim, num_heads=num_heads)
        self.norm2 = SlimLayerNorm(normalized_dim=embed_dim, eps=1e-6)
        self.fc1 = SlimLinear(in_features=embed_dim, out_features=hidden, role="mlp")
        self.fc2 = SlimLinear(in_features=hidden, out_features=embed_dim, role="embed")

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class _PatchEmbed(nn.Module):
    def __init__(self, *, in_channels: int, embed_dim: int, patch: int, num_tokens: int) -> None:
        super().__init__()
        self.proj = SlimConv2d(
            in_channels=in_channels,
            out_channels=embed_dim,
            kernel_size=patch,
            stride=patch,
            role="embed",
        )
        self.pos = nn.Parameter(torch.zeros(1, num_tokens, embed_dim))
        nn.init.trunc_normal_(self.pos, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        t = self.proj(x).flatten(2).transpose(1, 2)  # (B, N, d)
        if t.shape[1] != self.pos.shape[1]:
            raise ValueError(
                f"got {t.shape[1]} patches; this DS-ViT was built for "
                f"{self.pos.shape[1]} (image_size / patch)^2"
            )
        return t + self.pos[:, :, : t.shape[-1]]


class _FitDim(nn.Module):
    """Truncate or zero-pad the token features to this module's embedding width."""

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.active = embed_dim

    def forward(self, x: Tensor) -> Tensor:
        d = x.shape[-1]
        if d >= self.active:
            return x[..., : self.active]
        return F.pad(x, (0, self.active - d))


class _ViTHead(nn.Module):
    def __init__(self, embed_dim: int, num_classes: int) -> None:
        super().__init__()
        self.norm = SlimLayerNorm(normalized_dim=embed_dim, eps=1e-6)
        self.fc = SlimLinear(in_features=embed_dim, out_features=num_classes, role=None)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.norm(x).mean(dim=1))  # (B, N, d) -> (B, num_classes)


class DSViT(SlimSupernet):
    """Slice-able ViT supernet for small images (trunk = patch embedding + first block).

    Args:
        image_size, patch: ``(image_size / patch)^2`` tokens.
        embed_dim, depth, num_heads, mlp_ratio: the largest network.
        widths: routing ratios (applied to embed, heads and MLP alike in routed forwards).
        trunk_width: embedding/heads/MLP ratio of the trunk.

    Shapes: ``x: (B, in_channels, image_size, image_size)`` -> ``(B, num_classes)``;
    ``forward(x, width={"embed": .., "heads": .., "mlp": ..})`` slices each dimension apart.
    """

    def __init__(
        self,
        *,
        image_size: int = 32,
        patch: int = 4,
        in_channels: int = 3,
        num_classes: int = 10,
        embed_dim: int = 64,
        depth: int = 4,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        widths: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
        trunk_width: float | None = 1.0,
        gate_attention: bool = False,
    ) -> None:
        super().__init__(widths=widths, trunk_width=trunk_width)
        if image_size % patch:
            raise ValueError(f"image_size {image_size} must be a multiple of patch {patch}")
        if depth < 2:
            raise ValueError(f"depth must be >= 2 (one trunk block, one body block); got {depth}")
        n = (image_size // patch) ** 2
        blocks = [
            SlimTransformerBlock(embed_dim=embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio)
            for _ in range(depth)
        ]
        self.trunk = nn.Sequential(
            _PatchEmbed(in_channels=in_channels, embed_dim=embed_dim, patch=patch, num_tokens=n),
            blocks[0],
        )
        self.fit = _FitDim(embed_dim)
        self.body = nn.Sequential(self.fit, *blocks[1:], _ViTHead(embed_dim, num_classes))
        self.gate = DynamicGate(
            in_channels=scaled_channels(embed_dim, trunk_width or 1.0),
            num_choices=len(self.widths),
            attention=gate_attention,
        )
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def set_body_width(self, width) -> None:
        self.fit.active = scaled_channels(self.fit.embed_dim, _ratio_for(width, "embed"))
        super().set_body_width(width)


def ds_vit_cifar(
    *,
    num_classes: int = 10,
    in_channels: int = 3,
    image_size: int = 32,
    widths: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
    trunk_width: float | None = 1.0,
) -> DSViT:
    """A ViT-tiny-like supernet for 28-32 px: patch 4, dim 64, depth 4, 4 heads, MLP x4."""
    patch = 4 if image_size % 4 == 0 else 7 if image_size % 7 == 0 else 0
    if not patch:
        raise ValueError(f"image_size {image_size} must be a multiple of 4 or 7")
    return DSViT(
        image_size=image_size,
        patch=patch,
        in_channels=in_channels,
        num_classes=num_classes,
        widths=widths,
        trunk_width=trunk_width,
    )
