"""Evaluation rows of the ``dsnet`` recipe: sub-networks, dynamic net, random gate, static."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from frugalcv.core.measure import module_device, to_module
from frugalcv.core.recipe import derived_row
from frugalcv.slim.cost import macs_per_width
from frugalcv.slim.dsnet_recipe.config import LatencyConfig
from frugalcv.slim.dsnet_recipe.latency import interleaved_latency
from frugalcv.slim.supernet import SlimSupernet, grouped_forward

__all__ = ["evaluate_rows", "gate_macs", "interpolate_static"]


def gate_macs(model: SlimSupernet) -> int:
    """MACs per image of the gate's slimming head (its two linear layers)."""
    g = model.gate
    return g.reduce.in_features * g.reduce.out_features + g.slim_head.in_features * (
        g.slim_head.out_features
    )


@torch.no_grad()
def evaluate_rows(
    model: SlimSupernet,
    test: Any,
    *,
    input_shape: Sequence[int],
    latency: LatencyConfig,
    seed: int,
) -> dict[str, dict]:
    """Accuracy, mean MACs and latency of the sub-networks, the dynamic net and a random gate.

    The random gate routes each test image to the width the trained gate gave another, randomly
    chosen test image (a seeded permutation of the routes): the same histogram of widths, so
    exactly the same mean MACs, but no information about the input.

    Returns:
        ``{"sub_w<w>": ..., "dynamic": ..., "random_gate": ...}``, each with ``acc``, ``macs``,
        ``latency_b<B>_ms`` and ``speedup_b<B>`` (over the full width) for each batch size;
        the dynamic row also has ``route_pct_w<100 w>``, the fraction of test images routed
        to each width (no dot in the key: summary keys are read as dotted paths).
    """
    model.eval()
    widths = model.widths
    macs = macs_per_width(model, input_shape=input_shape)
    choice_macs = torch.tensor([float(macs[w]) for w in widths])
    correct = {w: 0 for w in widths}
    xs, ys, routes, dyn_ok = [], [], [], 0
    for batch in test:
        x, y = batch[0].cpu(), batch[-1].cpu()  # kept on the CPU; each forward moves a copy
        xd = to_module(x, model)  # the model's device (where Fabric left it)
        for w in widths:
            correct[w] += int((model(xd, width=w).argmax(-1).cpu() == y).sum())
        logits, route = model.forward_dynamic(xd, return_route=True)
        dyn_ok += int((logits.argmax(-1).cpu() == y).sum())
        xs.append(x)
        ys.append(y)
        routes.append(route.cpu())
    n = sum(len(y) for y in ys)
    route_all = torch.cat(routes)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    rand_route = route_all[perm]
    rand_ok, start = 0, 0
    for x, y in zip(xs, ys, strict=True):
        r = rand_route[start : start + len(y)]
        start += len(y)
        xd = to_module(x, model)
        logits = grouped_forward(model, model.forward_trunk(xd), r.to(xd.device))
        rand_ok += int((logits.argmax(-1).cpu() == y).sum())
    gate = gate_macs(model)
    dyn_macs = float(choice_macs[route_all].mean()) + gate
    rows: dict[str, dict] = {
        f"sub_w{w:g}": {"acc": correct[w] / n, "macs": macs[w], "width": w} for w in widths
    }
    frac = torch.bincount(route_all, minlength=len(widths)).float() / n
    rows["dynamic"] = {
        "acc": dyn_ok / n,
        "macs": dyn_macs,
        **{f"route_pct_w{round(100 * w)}": float(frac[k]) for k, w in enumerate(widths)},
    }
    # Same routes as the dynamic row, shuffled; no gate head is run.
    rows["random_gate"] = {"acc": rand_ok / n, "macs": float(choice_macs[rand_route].mean())}

    # Latency is CPU latency (the benchmark's column): the model is timed on the CPU and moved
    # back to its device afterwards.
    home = module_device(model)
    model.cpu()
    x_all = to_module(torch.cat(xs), model)
    try:
        _latency_rows(model, rows, x_all, route_all, frac, widths=widths, n=n, latency=latency)
    finally:
        model.to(home)
    for r in rows.values():
        r["num_threads"] = torch.get_num_threads()
    return rows


def _latency_rows(
    model: SlimSupernet,
    rows: dict[str, dict],
    x_all: Tensor,
    route_all: Tensor,
    frac: Tensor,
    *,
    widths: Sequence[float],
    n: int,
    latency: LatencyConfig,
) -> None:
    """Add ``latency_b<B>_ms`` and ``speedup_b<B>`` to ``rows`` (see :func:`evaluate_rows`)."""
    for b in latency.batch_sizes:
        xb = x_all[: min(b, n)]
        variants: dict[str, Callable[[], Any]] = {
            f"sub_w{w:g}": (lambda w=w, xb=xb: model(xb, width=w)) for w in widths
        }
        if b == 1:
            # Per-image cost depends on the route: one test image per route taken, timed
            # through the whole dynamic path (trunk, gate, slice), weighted by route frequency.
            for k in range(len(widths)):
                idx = (route_all == k).nonzero()
                if len(idx):
                    xk = x_all[int(idx[0]) : int(idx[0]) + 1]
                    variants[f"dyn_route{k}"] = lambda xk=xk: model.forward_dynamic(xk)
        else:
            variants["dynamic"] = lambda xb=xb: model.forward_dynamic(xb)
        ms = interleaved_latency(variants, warmup=latency.warmup, repeats=latency.repeats)
        if b == 1:
            ms["dynamic"] = sum(
                float(frac[k]) * ms[f"dyn_route{k}"]
                for k in range(len(widths))
                if f"dyn_route{k}" in ms
            )
        full = ms[f"sub_w{widths[-1]:g}"]
        for name in [f"sub_w{w:g}" for w in widths] + ["dynamic"]:
            rows[name][f"latency_b{b}_ms"] = round(ms[name], 4)
            rows[name][f"speedup_b{b}"] = round(full / ms[name], 4)
        # The random gate runs the same widths as often (its latency is the dynamic path's,
        # less the negligible gate head): copied, not re-timed.
        rows["random_gate"][f"latency_b{b}_ms"] = rows["dynamic"][f"latency_b{b}_ms"]
        rows["random_gate"][f"speedup_b{b}"] = rows["dynamic"][f"speedup_b{b}"]


def interpolate_static(static: dict[float, tuple[float, float]], macs: float) -> tuple[float, str]:
    """Accuracy of the static curve at ``macs``: linear in MACs between the two trained widths
    that bracket it; clamped to the end point outside the curve.

    Args:
        static: width -> (MACs, accuracy) of the independently trained networks.

    Returns:
        ``(accuracy, how)`` with ``how`` naming the bracketing widths.

    Example: static ``{0.5: (10, 0.80), 1.0: (30, 0.90)}`` at 20 MACs gives 0.85.
    """
    pts = sorted(static.items(), key=lambda kv: kv[1][0])
    if macs <= pts[0][1][0]:
        return pts[0][1][1], f"clamped to w{pts[0][0]:g}"
    if macs >= pts[-1][1][0]:
        return pts[-1][1][1], f"clamped to w{pts[-1][0]:g}"
    for (w0, (m0, a0)), (w1, (m1, a1)) in zip(pts, pts[1:], strict=False):
        if m0 <= macs <= m1:
            t = (macs - m0) / (m1 - m0)
            return a0 + t * (a1 - a0), f"between w{w0:g} and w{w1:g}"
    raise AssertionError("unreachable")


def complete_rows(rows: list[dict], widths: Sequence[float]) -> list[dict]:
    """Add to a run's rows what needs the static rows and the evaluated ones together.

    Static networks have the sub-networks' shapes, so each ``static_w<w>`` row without a latency
    gets the ``latency_*``/``speedup_*`` values of ``sub_w<w>`` (timed once). With a static row
    at every width and a ``dynamic`` row, appends ``static_interp`` (the static curve at the
    dynamic net's mean MACs, :func:`interpolate_static`) and ``static_full_minus_1pt``. Used by
    the recipe and, for a run split into jobs (``Job.part_of``), by the benchmark on the joined
    rows, so both give the same rows. Rows already derived are not added twice.
    """
    rows = [dict(r) for r in rows]
    by = {r.get("name"): r for r in rows}
    static: dict[float, tuple[float, float]] = {}
    for w in widths:
        st, sub = by.get(f"static_w{w:g}"), by.get(f"sub_w{w:g}")
        if st is None:
            continue
        static[w] = (float(st["macs"]), float(st["final"]["acc"]))
        if sub is not None:
            for k, v in sub.items():
                if k.startswith(("latency_", "speedup_")):
                    st.setdefault(k, v)
    if set(static) != set(widths) or "dynamic" not in by or "static_interp" in by:
        return rows
    dyn = by["dynamic"]
    acc, how = interpolate_static(static, dyn["macs"])
    full_macs, full_acc = static[widths[-1]]
    for name, value, m, derived in (
        (
            "static_interp",
            acc,
            dyn["macs"],
            f"static curve at the dynamic net's mean MACs, linear, {how}",
        ),
        (
            "static_full_minus_1pt",
            full_acc - 0.01,
            full_macs,
            "full-width static accuracy minus 0.01 (the 1-point tolerance)",
        ),
    ):
        rows.append(derived_row(name, "acc", value, macs=m, how=derived))
    return rows


def _eval_summary(name: str, r: dict, *, steps: int, wall_s: float) -> dict:
    acc = r.pop("acc")
    return {
        "name": name,
        "final": {"acc": acc},
        "best": {"acc": acc, "step": steps},
        "steps": steps,
        "wall_s": round(wall_s, 2),
        **r,
    }
