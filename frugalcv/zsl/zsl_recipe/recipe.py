"""The ``zsl`` run: validation stage, final model, reference rows and the locality drawing."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from frugalcv.core.jsonio import write_json
from frugalcv.core.measure import to_module
from frugalcv.core.recipe import RunContext, start_run, write_rows
from frugalcv.zsl.zsl_recipe.config import CLOSED_FORM, Config
from frugalcv.zsl.zsl_recipe.data import View, load_data, split_views
from frugalcv.zsl.zsl_recipe.methods import (
    _backbone_features,
    _default_params,
    _features_of,
    _fit_closed_form,
    _grid,
    _trained,
)
from frugalcv.zsl.zsl_recipe.scoring import batched, choose_gamma, zsl_metrics

__all__ = ["draw_episode", "reference_rows", "run"]


def _row(ctx: RunContext, name: str, final: dict, *, steps: int, wall_s: float, **extra) -> dict:
    final = {k: round(float(v), 6) for k, v in final.items()}
    return {
        "recipe": ctx.recipe,
        "preset": ctx.preset,
        "name": name,
        "seed": ctx.seed,
        "final": final,
        "final_step": steps,
        # evaluated once, after training: the best is the final value (no test-set selection)
        "best": {**final, "step": steps},
        "steps": steps,
        "wall_s": round(wall_s, 3),
        **extra,
    }


def run(cfg: Config, *, preset: str = "custom") -> dict:
    """Fit ``cfg.zsl.method`` (validation stage, then the final model); returns rows.json's dict.

    The method's row is named after the method; its ``final`` holds ``zsl_top1``,
    ``gzsl_unseen``, ``gzsl_seen``, ``gzsl_h``, ``gamma`` and ``seen_acc`` (held-out seen).
    """
    t0 = time.time()
    ctx = start_run(cfg, recipe="zsl", preset=preset)
    data = load_data(cfg.data, seed=cfg.train.seed)
    val_view, view = split_views(data, cfg)
    method, rows = cfg.zsl.method, []
    closed = method in CLOSED_FORM
    params = _default_params(method, cfg.baseline) if closed else {}
    gamma, val_h = 0.0, None
    if val_view is not None:
        if closed:
            fn, b_summary = _backbone_features(ctx, cfg, data, val_view, "val/")
            feats = _features_of(fn, val_view)
            best = None
            for p in _grid(method, cfg.baseline):  # the papers' validation of the regularisers
                _, s_s, s_u = _fit_closed_form(
                    method, cfg.baseline, p, feats, val_view, data.semantics
                )
                top1 = zsl_metrics(s_s, val_view, s_u, gamma=0.0)["zsl_top1"]
                if best is None or top1 > best[0]:
                    best = (top1, p, s_s, s_u)
            assert best is not None
            _, params, s_s, s_u = best
            rows.append(b_summary)
        else:
            task, v_summary = _trained(ctx, cfg, data, val_view, "val/")
            s_s, s_u = (
                batched(task.scores, val_view.x_seen, module=task),
                batched(task.scores, val_view.x_unseen, module=task),
            )
            rows.append(v_summary)
        gamma, g = choose_gamma(s_s, val_view, s_u)
        val_h = g["h"]

    if closed:
        t_fit = time.time()
        fn, b_summary = _backbone_features(ctx, cfg, data, view, "")
        rows.append(b_summary)
        feats = _features_of(fn, view)
        est, s_s, s_u = _fit_closed_form(method, cfg.baseline, params, feats, view, data.semantics)
        pred = est.predict(batched(fn, view.x_val).double(), classes=view.seen)
        val_acc = float((pred == view.y_val).float().mean())  # held-out seen, among seen
        final = {**zsl_metrics(s_s, view, s_u, gamma=gamma), "gamma": gamma, "seen_acc": val_acc}
        summary = _row(
            ctx,
            method,
            final,
            steps=int(b_summary.get("steps", 0)),
            wall_s=time.time() - t_fit,
            regularisers={k: float(v) for k, v in params.items()},
            val_h=val_h,
            **{k: b_summary.get(k) for k in ("params", "macs") if k in b_summary},
        )
        rows.append(summary)
        if cfg.zsl.references:
            rows += reference_rows(ctx, data, view, feats)
    else:
        task, summary = _trained(ctx, cfg, data, view, "")
        s_s = batched(task.scores, view.x_seen, module=task)
        s_u = batched(task.scores, view.x_unseen, module=task)
        metrics = zsl_metrics(s_s, view, s_u, gamma=gamma)
        summary["final"] = {**summary["final"], **metrics, "gamma": gamma}
        summary["val_h"] = val_h
        if method == "erpcnet" and cfg.erpcnet.draw and cfg.erpcnet.use_localities:
            summary["localities_png"] = draw_episode(task, view, ctx.out_dir) if ctx.is_main else ""
        if ctx.is_main:
            write_json(ctx.out_dir / method / "summary.json", summary)
        rows.append(summary)
    out = write_rows(ctx, dataset=data.name, rows=rows)
    if ctx.is_main:
        _say(rows, data, time.time() - t0)
    return out


def reference_rows(ctx: RunContext, data, view: View, feats: dict) -> list[dict]:
    """``chance`` (uniform guessing) and ``oracle`` (ridge given every test label) rows."""
    from frugalcv.zsl.metrics import chance_accuracy, oracle_gzsl

    c_all = chance_accuracy(len(view.seen) + len(view.unseen))
    chance = {
        "zsl_top1": chance_accuracy(len(view.unseen)),
        "gzsl_unseen": c_all,
        "gzsl_seen": c_all,
        "gzsl_h": c_all,
    }
    t = time.time()
    oracle = oracle_gzsl(feats["seen"], view.y_seen, feats["unseen"], view.y_unseen, seed=ctx.seed)
    return [
        _row(ctx, "chance", chance, steps=0, wall_s=0.0),
        _row(ctx, "oracle", oracle, steps=0, wall_s=time.time() - t),
    ]


def draw_episode(task, view: View, out_dir: Path) -> str:
    """``<run>/localities.png``: the cells ERPCNet chooses (greedy) on the first unseen image."""
    from frugalcv.zsl.erpcnet import draw_localities

    x = view.x_unseen[:1]
    with torch.no_grad():
        out = task.model(to_module(x, task), task.semantics, greedy=True)
    path = Path(out_dir) / "localities.png"
    actions = out.actions[0].cpu()
    draw_localities(x[0], actions, path, grid=task.model.grid, title="ERPCNet localities")
    return path.name


def _say(rows: list[dict], data, wall_s: float) -> None:
    for r in rows:
        f = r.get("final") or {}
        if "gzsl_h" not in f:
            continue
        print(
            f"{r['name']:>16}: ZSL top-1 {f['zsl_top1']:.3f}  U {f['gzsl_unseen']:.3f}  "
            f"S {f['gzsl_seen']:.3f}  H {f['gzsl_h']:.3f}"
            + (f"  (gamma {f['gamma']:.3g})" if "gamma" in f else "")
        )
    print(
        f"notice: ZSL chance is {1 / len(data.unseen_classes):.3f} and GZSL chance "
        f"{1 / data.num_classes:.3f}; H far above chance means the method transfers to the "
        f"unseen classes ({wall_s:.0f} s)."
    )
