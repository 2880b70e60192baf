"""The ``medmil`` run: every row of ``medmil.rows`` fitted on the same bags."""

from __future__ import annotations

from frugalcv.core.recipe import start_run, write_rows
from frugalcv.mil.medmil_recipe.attention import fit_attention_row
from frugalcv.mil.medmil_recipe.config import ROW_NOTES, Config
from frugalcv.mil.medmil_recipe.data import load_data, resolve_semantics
from frugalcv.mil.medmil_recipe.rows import fit_estimator_row

__all__ = ["run"]


def run(cfg: Config, *, preset: str = "custom") -> dict:
    """Fit every row of ``cfg.medmil.rows`` on the same bags; returns the rows summary."""
    ctx = start_run(cfg, recipe="medmil", preset=preset)
    train, test = load_data(cfg.data, seed=cfg.train.seed)
    train, test, semantics = resolve_semantics(train, test, cfg.medmil.semantics)
    rows = []
    for row in cfg.medmil.rows:
        if row == "attention_mil":
            rows.append(fit_attention_row(ctx, cfg, train, test))
        else:
            rows.append(fit_estimator_row(ctx, cfg, row, train, test, semantics))
    for r in rows:
        r.update(dataset=train.name, data_source=train.source)
    out = write_rows(ctx, dataset=train.name, rows=rows)
    if ctx.is_main:
        print(
            f"[medmil] {train.name}: {train.num_bags}/{test.num_bags} train/test bags, "
            f"{train.num_events} event(s); semantic vectors: {semantics}; metric: test mAP"
        )
        for r in rows:
            note = ROW_NOTES.get(r["name"], "the full method with this self-paced regulariser")
            mAP, secs = r["final"]["map"], r["wall_s"]
            print(f"  {r['name']:>24}  mAP {mAP:.3f}  fit {secs:6.2f} s  {note}")
        if (ctx.out_dir / "admitted.png").is_file():
            print(f"  curriculum plot: {ctx.out_dir / 'admitted.png'}")
    return out
