"""The ``alt`` figure: test frames with the true and the tracked box (``<run>/frames.png``).

Drawn with matplotlib's Agg canvas, imported only when a figure is made.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from frugalcv.data.tracking import Sequence

__all__ = ["plot_frames"]


def plot_frames(
    sequences: list[Sequence], boxes: list[Tensor], path: Path, *, title: str, num: int = 4
) -> Path:
    """PNG of ``num`` test frames (spread over the first sequences) with the true box (green)
    and the tracker's box (red, dashed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    picks = []
    for i, seq in enumerate(sequences[: max(1, num // 2)]):
        for f in (0.45, 0.9):
            picks.append((i, min(len(seq) - 1, int(f * len(seq)))))
    picks = picks[:num]
    fig = Figure(figsize=(3.0 * len(picks), 2.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(picks), squeeze=False)[0]
    for ax, (i, t) in zip(axes, picks, strict=True):
        seq = sequences[i]
        ax.imshow(seq.frame(t).numpy())
        for box, colour, style in ((seq.boxes[t], "lime", "-"), (boxes[i][t], "red", "--")):
            if torch.isfinite(box).all():
                x, y, w, h = box.tolist()
                ax.add_patch(Rectangle((x, y), w, h, fill=False, ec=colour, ls=style, lw=1.5))
        ax.set_title(f"{seq.name} frame {t}", fontsize=8)
        ax.axis("off")
    fig.suptitle(f"{title} (green: ground truth, red dashed: tracker)", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
