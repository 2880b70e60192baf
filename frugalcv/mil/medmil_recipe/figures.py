"""The curriculum plot of the full MED-MIL row (`plot_admitted`)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["plot_admitted"]


def plot_admitted(
    histories: list[list[dict]],
    events: list[str],
    path: Path,
    *,
    key_share: list[float] | None = None,
) -> Path:
    """PNG of the curriculum: share of each event's uncertain segments (segments of positive
    videos) admitted (v > 0, solid) and at full weight (v = 1, dashed) per round; with
    ``key_share``, each event's true share of key segments (thin horizontal line)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for e, (event, hist) in enumerate(zip(events, histories, strict=True)):
        rounds = [h["round"] for h in hist]
        admitted = [h["fraction_admitted"] for h in hist]
        total = hist[0]["num_admitted"] / max(hist[0]["fraction_admitted"], 1e-12)
        full = [h["num_full"] / total for h in hist]
        color = f"C{e % 10}"
        ax.plot(rounds, admitted, "-o", color=color, ms=3, label=f"{event} v > 0")
        ax.plot(rounds, full, "--", color=color, label=f"{event} v = 1")
        if key_share is not None:
            ax.axhline(key_share[e], color=color, lw=0.8, alpha=0.6)
    target = [h["fraction_target"] for h in histories[0]]
    ax.plot([h["round"] for h in histories[0]], target, ":", color="gray", label="age target")
    ax.set_xlabel("self-paced round (age)")
    ax.set_ylabel("share of positive-video segments")
    title = "MED-MIL curriculum: admitted segments"
    ax.set_title(title + ("\n(thin lines: true share of key segments)" if key_share else ""))
    ax.set_ylim(0, max(0.05, max(max(h["fraction_admitted"] for h in x) for x in histories)) * 1.1)
    ax.legend(fontsize=7, ncol=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
