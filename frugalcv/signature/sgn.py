"""SGN classifiers: a CNN backbone whose pooled features are fused with signature-graph spectra.

Ali Hamdi, Flora Salim, Du Yong Kim, Xiaojun Chang, "Signature-Graph Networks", arXiv 2110.11551.
Only the abstract is public: SGN "augments the feature representation of CNNs" with the Laplacian
eigenvalues of signature graphs built on the CNN's feature maps, and an SGN + multi-head attention
(MHA) variant is reported. How the two are fused, and where attention sits, is our reconstruction
(``docs/methods/sgn.md``):

- ``cnn``:      ``z = [GAP(F)]``
- ``cnn_mha``:  ``z = [GAP(F), mean_tokens(MHA(T))]`` with patch tokens ``T`` (no graph)
- ``sgn``:      ``z = [GAP(F), E(λ)]``
- ``sgn_mha``:  ``z = [GAP(F), E(λ), mean_tokens(MHA(T + node embeddings))]``

and ``logits = Linear(Dropout(z))``. Here ``F = backbone.forward_features(x): (B, C, H, W)``,
``λ = `` :class:`SignatureSpectrum` ``(F)``, ``E`` = BatchNorm1d -> Linear -> ReLU, and the
tokens are one per patch (the same patches the graph uses): the patch-mean of ``F`` projected to
``embed_dim`` plus a projection of the patch centre; in ``sgn_mha`` each token also receives a
projection of its patch's graph nodes (normalised value and in-patch position of the max and min
of every channel group). The four variants share the backbone and differ only in the head, so a
benchmark compares them on equal terms.
"""

from __future__ import annotations

import difflib

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from frugalcv.signature.graph import (
    LAPLACIAN_OPTIONS,
    _check_option,
    _nodes_per_patch,
    _pair,
    group_channels,
    laplacian_spectrum,
    patch_grid,
    signature_graph,
)

__all__ = [
    "AGGREGATE_OPTIONS",
    "SGN_VARIANTS",
    "SGNHead",
    "SGNModel",
    "SignatureSpectrum",
    "create_sgn_model",
]

AGGREGATE_OPTIONS = ("concat", "mean")

# variant -> (graph, attention)
SGN_VARIANTS: dict[str, tuple[bool, bool]] = {
    "cnn": (False, False),
    "cnn_mha": (False, True),
    "sgn": (True, False),
    "sgn_mha": (True, True),
}


class SignatureSpectrum(nn.Module):
    """Parameter-free layer: channel groups -> signature graphs -> Laplacian eigenvalues.

    Args:
        in_channels: ``C`` of the feature map.
        feature_size: ``(H, W)`` of the feature map (fixes the grid, hence the output length).
        patch_size: ``p`` or ``(p_h, p_w)``.
        groups: channel groups, one graph each (``groups == in_channels``: one per channel).
        aggregate: ``"concat"`` the ``G`` spectra (``G * N`` numbers) or take their ``"mean"``
            (``N`` numbers; invariant to the order of the groups).
        nodes, pairs, weight, sigma_value, sigma_position, normalize_values, ceil_mode,
            laplacian: graph options of :func:`frugalcv.signature.graph.signature_spectrum`.

    Shapes: ``f: (B, C, H, W) -> (B, out_dim)``; :meth:`graph` returns the graphs themselves.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        feature_size: tuple[int, int],
        patch_size: int | tuple[int, int] = 2,
        groups: int = 4,
        aggregate: str = "concat",
        nodes: str = "maxmin",
        pairs: str = "same",
        weight: str = "bilateral",
        sigma_value: float = 0.5,
        sigma_position: float = 1.0,
        normalize_values: bool = True,
        ceil_mode: bool = False,
        laplacian: str = "normalized",
    ) -> None:
        super().__init__()
        _check_option("aggregate", aggregate, AGGREGATE_OPTIONS)
        _check_option("laplacian", laplacian, LAPLACIAN_OPTIONS)
        if groups < 1 or in_channels % groups:
            raise ValueError(f"groups={groups} must be a positive divisor of {in_channels=}")
        self.in_channels = in_channels
        self.feature_size = _pair(feature_size, "feature_size")
        self.patch_size = _pair(patch_size, "patch_size")
        self.grid = patch_grid(self.feature_size, self.patch_size, ceil_mode=ceil_mode)
        self.groups = groups
        self.aggregate = aggregate
        self.laplacian = laplacian
        self.nodes_per_patch = _nodes_per_patch(nodes)
        self.num_nodes = self.grid[0] * self.grid[1] * self.nodes_per_patch
        self.out_dim = self.num_nodes * (groups if aggregate == "concat" else 1)
        self.graph_kwargs = dict(
            patch_size=self.patch_size,
            nodes=nodes,
            pairs=pairs,
            weight=weight,
            sigma_value=sigma_value,
            sigma_position=sigma_position,
            normalize_values=normalize_values,
            ceil_mode=ceil_mode,
        )
        # validate the remaining options now rather than at the first batch
        signature_graph(torch.zeros(1, 1, *self.feature_size), **self.graph_kwargs)

    def _check(self, f: Tensor) -> None:
        if (
            f.dim() != 4
            or f.shape[1] != self.in_channels
            or tuple(f.shape[-2:]) != self.feature_size
        ):
            raise ValueError(
                f"expected a feature map (B, {self.in_channels}, {self.feature_size[0]}, "
                f"{self.feature_size[1]}), got {tuple(f.shape)}; build the layer with the "
                "feature_size and in_channels of your backbone at this input size"
            )

    def graph(self, f: Tensor):
        """The :class:`~frugalcv.signature.graph.SignatureGraph` of every group map of ``f``."""
        self._check(f)
        return signature_graph(group_channels(f, self.groups), **self.graph_kwargs)

    def forward(self, f: Tensor) -> Tensor:
        spec = laplacian_spectrum(self.graph(f).adjacency, laplacian=self.laplacian)  # (B, G, N)
        spec = spec.to(f.dtype) if f.dtype in (torch.float32, torch.float64) else spec
        return spec.flatten(1) if self.aggregate == "concat" else spec.mean(1)

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, grid={self.grid}, groups={self.groups}, "
            f"num_nodes={self.num_nodes}, out_dim={self.out_dim}, laplacian={self.laplacian!r}, "
            f"{self.graph_kwargs}"
        )


def _patch_centres(
    size: tuple[int, int], patch_size: tuple[int, int], grid: tuple[int, int]
) -> Tensor:
    """Patch centres in [0, 1]^2, row-major: ``(P_h * P_w, 2)`` (last patches may be short)."""
    axes = []
    for n, p, g in zip(size, patch_size, grid, strict=True):
        start = torch.arange(g) * p
        length = torch.clamp(n - start, max=p)
        axes.append((start + (length - 1) / 2) / max(n - 1, 1))
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2)


class SGNHead(nn.Module):
    """Classifier head on a CNN feature map: GAP, optional signature spectrum, optional MHA.

    Args:
        in_channels: ``C`` of the feature map.
        num_classes: classifier outputs.
        feature_size: ``(H, W)`` of the feature map.
        graph: add the embedded signature spectrum (SGN).
        attention: add a multi-head self-attention block over patch tokens (MHA).
        patch_size: patch of the graph and of the tokens.
        groups: channel groups of the graph (one graph each).
        aggregate: how group spectra are combined (see :class:`SignatureSpectrum`).
        spectral_dim: width of the spectrum embedding ``E``.
        embed_dim: token width of the attention block.
        num_heads: attention heads (divides ``embed_dim``).
        dropout: before the classifier.
        detach_graph: build the graph on ``f.detach()``: the classifier learns from the
            spectrum (and the node tokens), but no gradient reaches the backbone through the
            graph; False lets it through the selected values, weights and ``eigvalsh``
            (a reconstruction, see ``docs/methods/sgn.md``: on 16 px digits the gradient
            through the graph slowed training markedly).
        nodes, pairs, weight, sigma_value, sigma_position, normalize_values, ceil_mode,
            laplacian: graph options (see :func:`frugalcv.signature.graph.signature_graph`).

    Shapes: ``f: (B, C, H, W) -> (B, num_classes)``; ``pre_logits: (B, head_hidden_size)``.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        num_classes: int,
        feature_size: tuple[int, int],
        graph: bool = True,
        attention: bool = False,
        patch_size: int | tuple[int, int] = 2,
        groups: int = 4,
        aggregate: str = "concat",
        spectral_dim: int = 64,
        embed_dim: int = 64,
        num_heads: int = 4,
        dropout: float = 0.0,
        detach_graph: bool = True,
        nodes: str = "maxmin",
        pairs: str = "same",
        weight: str = "bilateral",
        sigma_value: float = 0.5,
        sigma_position: float = 1.0,
        normalize_values: bool = True,
        ceil_mode: bool = False,
        laplacian: str = "normalized",
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if attention and embed_dim % num_heads:
            raise ValueError(f"embed_dim={embed_dim} must be a multiple of num_heads={num_heads}")
        self.num_classes = num_classes
        self.feature_size = _pair(feature_size, "feature_size")
        self.patch_size = _pair(patch_size, "patch_size")
        self.grid = patch_grid(self.feature_size, self.patch_size, ceil_mode=ceil_mode)
        self.ceil_mode = ceil_mode
        self.use_graph, self.use_attention = graph, attention
        self.detach_graph = detach_graph
        # The spectrum layer also serves sgn_mha's node tokens, so it exists whenever graph is on.
        self.spectrum: SignatureSpectrum | None = None
        self.spectral: nn.Module | None = None
        hidden = in_channels
        if graph:
            self.spectrum = SignatureSpectrum(
                in_channels=in_channels,
                feature_size=self.feature_size,
                patch_size=self.patch_size,
                groups=groups,
                aggregate=aggregate,
                nodes=nodes,
                pairs=pairs,
                weight=weight,
                sigma_value=sigma_value,
                sigma_position=sigma_position,
                normalize_values=normalize_values,
                ceil_mode=ceil_mode,
                laplacian=laplacian,
            )
            self.spectral = nn.Sequential(
                nn.BatchNorm1d(self.spectrum.out_dim),  # eigenvalues differ in scale per index
                nn.Linear(self.spectrum.out_dim, spectral_dim),
                nn.ReLU(inplace=True),
            )
            hidden += spectral_dim
        self.tokens: nn.Linear | None = None
        self.node_tokens: nn.Linear | None = None
        self.pos: nn.Linear | None = None
        self.block: nn.Module | None = None
        self.norm: nn.Module | None = None
        if attention:
            self.tokens = nn.Linear(in_channels, embed_dim)
            self.pos = nn.Linear(2, embed_dim)  # patch centre in [0, 1]^2 -> position embedding
            if graph:
                assert self.spectrum is not None
                node_dim = groups * self.spectrum.nodes_per_patch * 3  # (value, dr, dc) per node
                self.node_tokens = nn.Linear(node_dim, embed_dim)
            self.block = nn.TransformerEncoderLayer(
                d_model=embed_dim,
                nhead=num_heads,
                dim_feedforward=2 * embed_dim,
                dropout=0.0,
                batch_first=True,
                norm_first=True,
            )
            self.norm = nn.LayerNorm(embed_dim)
            hidden += embed_dim
        self.head_hidden_size = hidden
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, num_classes)
        centres = _patch_centres(self.feature_size, self.patch_size, self.grid)  # (P, 2)
        self.register_buffer("centres", centres.float(), persistent=False)  # (P, 2)

    def _attend(self, f: Tensor, graph) -> Tensor:
        """Mean of the attended patch tokens: ``(B, embed_dim)``."""
        assert self.tokens is not None and self.pos is not None
        assert self.block is not None and self.norm is not None
        b = f.shape[0]
        pooled = F.avg_pool2d(f, self.patch_size, ceil_mode=self.ceil_mode)  # (B, C, P_h, P_w)
        tok = self.tokens(pooled.flatten(2).transpose(1, 2))  # (B, P, D)
        tok = tok + self.pos(self.centres.to(tok.dtype))
        if self.node_tokens is not None:
            in_patch = graph.positions - graph.positions.floor()  # (B, G, N, 2) in [0, 1)
            attrs = torch.cat((graph.values.unsqueeze(-1), in_patch), -1)  # (B, G, N, 3)
            p = tok.shape[1]
            attrs = attrs.reshape(b, attrs.shape[1], p, -1).transpose(1, 2).reshape(b, p, -1)
            tok = tok + self.node_tokens(attrs.to(tok.dtype))  # (B, P, D)
        return self.norm(self.block(tok)).mean(1)

    def forward_parts(self, f: Tensor) -> dict[str, Tensor]:
        """The fused vector's parts, in order: ``"cnn"`` ``(B, C)``, then ``"graph"``
        ``(B, spectral_dim)`` and ``"attention"`` ``(B, embed_dim)`` when the variant has them.

        ``torch.cat(list(parts.values()), 1)`` is ``forward(f, pre_logits=True)``.
        """
        parts = {"cnn": f.mean((2, 3))}  # (B, C)
        graph = None
        if self.spectrum is not None:
            assert self.spectral is not None
            graph = self.spectrum.graph(f.detach() if self.detach_graph else f)
            spec = laplacian_spectrum(graph.adjacency, laplacian=self.spectrum.laplacian)
            spec = spec.flatten(1) if self.spectrum.aggregate == "concat" else spec.mean(1)
            parts["graph"] = self.spectral(spec.to(parts["cnn"].dtype))  # (B, spectral_dim)
        elif tuple(f.shape[-2:]) != self.feature_size:
            raise ValueError(
                f"expected a feature map of size {self.feature_size}, got {tuple(f.shape)}"
            )
        if self.block is not None:
            parts["attention"] = self._attend(f, graph)  # (B, embed_dim)
        return parts

    def forward(self, f: Tensor, *, pre_logits: bool = False) -> Tensor:
        z = torch.cat(list(self.forward_parts(f).values()), 1)  # (B, head_hidden_size)
        return z if pre_logits else self.fc(self.drop(z))


class SGNModel(nn.Module):
    """A zoo backbone with an :class:`SGNHead`, following the zoo contract (frugalcv.zoo).

    ``forward_features`` is the backbone's, ``forward_head(f, pre_logits=...)`` the SGN head;
    ``num_features`` is the backbone's channel count, ``head_hidden_size`` the fused width.

    Shapes: ``x: (B, in_chans, H, W) -> (B, num_classes)``.
    """

    def __init__(self, *, backbone: nn.Module, head: SGNHead) -> None:
        super().__init__()
        for attr in ("forward_features", "num_features"):
            if not hasattr(backbone, attr):
                raise ValueError(
                    f"backbone {type(backbone).__name__} lacks {attr!r}; use a frugalcv.zoo model"
                )
        self.backbone = backbone
        self.head = head
        self.num_classes = head.num_classes
        self.num_features = backbone.num_features
        self.stage_channels = list(getattr(backbone, "stage_channels", [backbone.num_features]))
        self.head_hidden_size = head.head_hidden_size

    def forward_features(self, x: Tensor) -> Tensor:
        return self.backbone.forward_features(x)

    def forward_intermediates(self, x: Tensor) -> list[Tensor]:
        return self.backbone.forward_intermediates(x)

    def forward_head(self, f: Tensor, *, pre_logits: bool = False) -> Tensor:
        return self.head(f, pre_logits=pre_logits)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def create_sgn_model(
    variant: str,
    *,
    num_classes: int,
    in_chans: int = 3,
    image_size: int | tuple[int, int] = 32,
    backbone: str | nn.Module = "tiny_cnn",
    patch_size: int | tuple[int, int] = 2,
    groups: int = 4,
    aggregate: str = "concat",
    spectral_dim: int = 64,
    embed_dim: int = 64,
    num_heads: int = 4,
    dropout: float = 0.0,
    detach_graph: bool = True,
    nodes: str = "maxmin",
    pairs: str = "same",
    weight: str = "bilateral",
    sigma_value: float = 0.5,
    sigma_position: float = 1.0,
    normalize_values: bool = True,
    ceil_mode: bool = False,
    laplacian: str = "normalized",
) -> SGNModel:
    """One of the four classifiers sharing a backbone: ``cnn``, ``cnn_mha``, ``sgn``, ``sgn_mha``.

    Args:
        variant: a key of ``SGN_VARIANTS``.
        num_classes: classifier outputs.
        in_chans: input channels.
        image_size: input side (or ``(H, W)``); fixes the feature-map size, hence the graph grid.
        backbone: a ``frugalcv.zoo`` model name (built without its classifier) or a module with
            ``forward_features`` and ``num_features``.
        Other arguments: see :class:`SGNHead`.

    Raises:
        ValueError: unknown variant, or a feature map that the patch size does not divide.
    """
    if variant not in SGN_VARIANTS:
        close = difflib.get_close_matches(variant, SGN_VARIANTS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown SGN variant {variant!r}.{hint} Valid: {', '.join(SGN_VARIANTS)}")
    graph, attention = SGN_VARIANTS[variant]
    if isinstance(backbone, str):
        from frugalcv.zoo import create_model

        backbone = create_model(backbone, num_classes=0, in_chans=in_chans)
    size = _pair(image_size, "image_size")
    was_training = backbone.training
    backbone.eval()
    with torch.no_grad():
        f = backbone.forward_features(torch.zeros(1, in_chans, *size))
    backbone.train(was_training)
    try:
        head = SGNHead(
            in_channels=f.shape[1],
            num_classes=num_classes,
            feature_size=tuple(f.shape[-2:]),
            graph=graph,
            attention=attention,
            patch_size=patch_size,
            groups=groups,
            aggregate=aggregate,
            spectral_dim=spectral_dim,
            embed_dim=embed_dim,
            num_heads=num_heads,
            dropout=dropout,
            detach_graph=detach_graph,
            nodes=nodes,
            pairs=pairs,
            weight=weight,
            sigma_value=sigma_value,
            sigma_position=sigma_position,
            normalize_values=normalize_values,
            ceil_mode=ceil_mode,
            laplacian=laplacian,
        )
    except ValueError as e:
        raise ValueError(
            f"{variant}: the backbone maps {size[0]}x{size[1]} inputs to "
            f"{tuple(f.shape[1:])} features: {e}"
        ) from e
    return SGNModel(backbone=backbone, head=head)
