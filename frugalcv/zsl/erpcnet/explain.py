"""ERPCNet explainability: pixel boxes of the chosen cells and a PNG that draws them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = ["draw_localities", "locality_boxes"]


def locality_boxes(
    actions: Tensor, *, grid: tuple[int, int], image_size: tuple[int, int]
) -> Tensor:
    """Pixel boxes (x0, y0, x1, y1) of chosen cells, taking the feature map to span the image.

    Args:
        actions: (T,) cell indices.
        image_size: (H, W) of the image.

    Returns:
        (T, 4) float boxes.
    """
    gh, gw = grid
    h, w = image_size
    i, j = (actions // gw).float(), (actions % gw).float()
    return torch.stack([j * w / gw, i * h / gh, (j + 1) * w / gw, (i + 1) * h / gh], 1)


def draw_localities(
    image: Tensor,
    actions: Tensor,
    path: str | Path,
    *,
    grid: tuple[int, int],
    title: str | None = None,
    dpi: int = 100,
) -> dict:
    """Draw the cells an episode chose, step by step, over the input image into a PNG.

    Each chosen cell is outlined and numbered by its step (1..T); colours follow the step.

    Args:
        image: (1, H, W) or (3, H, W) in [0, 1].
        actions: (T,) cells in the order the policy chose them (``ERPCNetOutput.actions[i]``).
        path: PNG file to write (parent folders are created).

    Returns:
        ``{"path": Path, "boxes": (T, 4) pixel boxes, "num_boxes_drawn": int}``.
    """
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    img = torch.as_tensor(image).detach().float().cpu()
    if img.ndim != 3 or img.shape[0] not in (1, 3):
        raise ValueError(f"image must be (1, H, W) or (3, H, W); got {tuple(img.shape)}")
    actions = torch.as_tensor(actions).detach().cpu().long().reshape(-1)
    if len(actions) and (actions.min() < 0 or actions.max() >= grid[0] * grid[1]):
        raise ValueError(f"actions must be cells in 0..{grid[0] * grid[1] - 1} of grid {grid}")
    h, w = img.shape[1:]
    boxes = locality_boxes(actions, grid=grid, image_size=(h, w))
    arr = img[0].numpy() if img.shape[0] == 1 else img.permute(1, 2, 0).numpy()
    fig = Figure(figsize=(4, 4 * h / w), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(np.clip(arr, 0, 1), cmap="gray" if arr.ndim == 2 else None, vmin=0, vmax=1)
    cmap = colormaps["autumn"]
    drawn = 0
    for t, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
        colour = cmap(t / max(1, len(boxes) - 1))
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec=colour, lw=2))
        ax.text(x0, y0, str(t + 1), color=colour, fontsize=10, va="top", weight="bold")
        drawn += 1
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return {"path": path, "boxes": boxes, "num_boxes_drawn": drawn}
