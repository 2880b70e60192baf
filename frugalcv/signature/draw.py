"""Draw a signature graph over the image it was built from (matplotlib Agg, PNG file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from frugalcv.signature.graph import SignatureGraph, signature_graph

__all__ = ["draw_signature_graph"]


def _as_image(image: Tensor | np.ndarray) -> np.ndarray:
    """(H, W), (1, H, W) or (3, H, W) in [0, 1] -> (H, W) or (H, W, 3) float array for imshow."""
    x = torch.as_tensor(image).detach().float().cpu()
    if x.dim() == 3 and x.shape[0] in (1, 3):
        x = x[0] if x.shape[0] == 1 else x.permute(1, 2, 0)
    if x.dim() not in (2, 3) or (x.dim() == 3 and x.shape[-1] != 3):
        raise ValueError(f"image must be (H, W), (1, H, W) or (3, H, W), got {tuple(x.shape)}")
    return x.clamp(0, 1).numpy()


def draw_signature_graph(
    image: Tensor | np.ndarray,
    path: str | Path,
    *,
    response: Tensor | None = None,
    patch_size: int | tuple[int, int] = 2,
    nodes: str = "maxmin",
    pairs: str = "same",
    weight: str = "bilateral",
    sigma_value: float = 0.5,
    sigma_position: float = 1.0,
    normalize_values: bool = True,
    ceil_mode: bool = False,
    title: str | None = None,
    dpi: int = 100,
) -> dict:
    """Build the signature graph of ``response`` and draw it over ``image`` into a PNG.

    Maxima are drawn as red upward triangles, minima as blue downward triangles, edges as white
    lines whose width grows with their weight, and the patch borders as thin grey lines. When the
    response map is smaller than the image (a CNN feature map), node positions are scaled to image
    pixels (pixel centres mapped onto pixel centres).

    Args:
        image: ``(H, W)``, ``(1, H, W)`` or ``(3, H, W)`` in [0, 1].
        path: PNG file to write (parent folders are created).
        response: ``(h, w)`` map the graph is built on (e.g. a channel-group mean of a feature
            map); default: the image itself (channel mean).
        patch_size, nodes, pairs, weight, sigma_value, sigma_position, normalize_values,
            ceil_mode: graph options
            (see :func:`frugalcv.signature.graph.signature_graph`).
        title: figure title.
        dpi: resolution of the PNG.

    Returns:
        ``{"graph": SignatureGraph (B = G = 1), "num_nodes_drawn": int, "num_edges_drawn": int,
        "path": Path}``; the counts are read back from the drawn matplotlib artists.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure

    img = _as_image(image)
    h_img, w_img = img.shape[:2]
    if response is None:
        response = torch.as_tensor(img).float()
        response = response.mean(-1) if response.dim() == 3 else response
    response = torch.as_tensor(response).detach().float().cpu()
    if response.dim() != 2:
        raise ValueError(f"response must be one (h, w) map, got {tuple(response.shape)}")
    graph: SignatureGraph = signature_graph(
        response[None, None],
        patch_size=patch_size,
        nodes=nodes,
        pairs=pairs,
        weight=weight,
        sigma_value=sigma_value,
        sigma_position=sigma_position,
        normalize_values=normalize_values,
        ceil_mode=ceil_mode,
    )
    h, w = response.shape
    sy, sx = h_img / h, w_img / w
    rows = (graph.nodes[0, 0, :, 1].numpy() + 0.5) * sy - 0.5  # (N,) image pixels
    cols = (graph.nodes[0, 0, :, 2].numpy() + 0.5) * sx - 0.5
    k = 2 if nodes == "maxmin" else 1
    kind = np.arange(len(rows)) % k  # 0 max, 1 min

    fig = Figure(figsize=(4, 4 * h_img / w_img), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
    ph, pw = graph.patch_size
    for i in range(1, graph.grid[0]):
        ax.axhline(i * ph * sy - 0.5, color="0.6", lw=0.5)
    for j in range(1, graph.grid[1]):
        ax.axvline(j * pw * sx - 0.5, color="0.6", lw=0.5)
    e = graph.edges.numpy()
    segments = np.stack(
        [np.stack([cols[e[:, 0]], rows[e[:, 0]]], 1), np.stack([cols[e[:, 1]], rows[e[:, 1]]], 1)],
        1,
    )  # (E, 2 ends, (x, y))
    widths = 0.5 + 2.5 * graph.weights[0, 0].numpy()
    lines = LineCollection(segments, colors="white", linewidths=widths, alpha=0.8)
    ax.add_collection(lines)
    maxima = ax.scatter(cols[kind == 0], rows[kind == 0], c="red", marker="^", s=30, zorder=3)
    drawn = [maxima]
    if k == 2:
        drawn.append(
            ax.scatter(cols[kind == 1], rows[kind == 1], c="tab:blue", marker="v", s=30, zorder=3)
        )
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return {
        "graph": graph,
        "num_nodes_drawn": int(sum(len(s.get_offsets()) for s in drawn)),
        "num_edges_drawn": len(lines.get_segments()),
        "path": path,
    }
