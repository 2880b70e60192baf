"""The ``alt`` run: round 0 on frame 0 of each sequence, then score the pool, add frames and
retrain from the same initialisation (:func:`frugalcv.core.stages.run_rounds`), one row per
round."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from frugalcv.core.checkpoint import load_model
from frugalcv.core.jsonio import write_json
from frugalcv.core.loader import TensorLoader
from frugalcv.core.recipe import start_run, train_model, write_rows
from frugalcv.core.stages import run_rounds
from frugalcv.data.base import stream_generator
from frugalcv.track.alt_recipe.config import MODEL_BASED, SELECTOR_NOTES, Config
from frugalcv.track.alt_recipe.data import load_sequences
from frugalcv.track.alt_recipe.figure import plot_frames
from frugalcv.track.alt_recipe.model import evaluate_ope, make_task, make_tracker, score_pool
from frugalcv.track.alt_recipe.selection import extend_selection, initial_selection, round_counts
from frugalcv.track.crops import make_pairs
from frugalcv.track.selection import frame_budget
from frugalcv.track.tracker import IdentityTracker

__all__ = ["run"]


def _pairs_loader(pairs: dict[str, Tensor], *, batch_size: int, seed: int, train: bool):
    tensors = (pairs["template"], pairs["search"], pairs["box"])
    return TensorLoader(tensors, batch_size=batch_size, shuffle=train, seed=seed, drop_last=train)


def run(cfg: Config, *, preset: str = "custom") -> dict:
    """Train the tracker round by round on the frames ``cfg.alt.selector`` labels.

    Returns the ``rows.json`` dict: one row per round (``round0``, ...), the last one trained on
    the full budget.
    """
    ctx = start_run(cfg, recipe="alt", preset=preset)
    a, seed = cfg.alt, cfg.train.seed
    train_seqs, test_seqs, dataset = load_sequences(cfg.data, seed=seed)
    lengths = [len(s) for s in train_seqs]
    budgets = lengths if a.selector == "all" else [frame_budget(t, a.budget) for t in lengths]
    num_rounds = a.num_rounds if a.selector in MODEL_BASED else 1
    val_pairs = make_pairs(test_seqs, num_pairs=a.num_val_pairs, seed=10_000 + seed)
    val_loader = _pairs_loader(val_pairs, batch_size=cfg.train.eval_batch_size, seed=0, train=False)
    identity, _ = evaluate_ope(IdentityTracker(), test_seqs)
    state: dict[str, Any] = {}
    # loaded before any training, so a missing or foreign checkpoint fails first
    scorer = load_model(make_task(a).model, a.scorer_ckpt).eval() if a.scorer_ckpt else None

    def train_round(r: int, out_dir: Path, selection: list[list[int]]) -> dict:
        labelled = [torch.tensor(s, dtype=torch.long) for s in selection]
        pairs = make_pairs(
            train_seqs, num_pairs=a.num_pairs, seed=seed, labelled=labelled, max_gap=a.max_gap
        )
        torch.manual_seed(seed)  # every round and every selector start from the same init
        task = make_task(a)
        num_labelled = sum(len(s) for s in selection)
        summary = train_model(
            ctx,
            cfg,
            task=task,
            loaders=(
                _pairs_loader(pairs, batch_size=cfg.train.batch_size, seed=seed, train=True),
                val_loader,
            ),
            name=f"round{r}",
            out_dir=out_dir,
        )
        t0 = time.perf_counter()
        scores, boxes = evaluate_ope(make_tracker(task.model, a), test_seqs)
        summary["final"].update(scores)
        summary.update(
            selector=a.selector,
            budget=1.0 if a.selector == "all" else a.budget,
            box_loss=a.box_loss,
            round=r,
            num_rounds=num_rounds,
            labelled_frames=num_labelled,
            labelled_fraction=num_labelled / sum(lengths),
            pool_frames=sum(lengths),
            identity_auc=identity["success_auc"],
            identity_precision=identity["precision"],
            params=sum(p.numel() for p in task.model.parameters()),
            dataset=dataset,
            eval_s=round(time.perf_counter() - t0, 2),
        )
        if ctx.is_main:
            write_json(out_dir / "summary.json", summary)
        state.update(model=task.model, boxes=boxes)
        return summary

    def select(r: int, summary: dict, selection: list[list[int]]) -> list[list[int]]:
        features, confidence = score_pool(scorer or state["model"], a, train_seqs)
        counts = round_counts(budgets, round_index=r + 1, num_rounds=num_rounds)
        return [
            extend_selection(
                a.selector,
                torch.tensor(selection[i], dtype=torch.long),
                counts[i],
                num_frames=lengths[i],
                features=None if features is None else features[i],
                confidence=None if confidence is None else confidence[i],
                generator=stream_generator(seed + 1000 * (r + 1), i),
                window=a.window,
                k=a.k,
                tau=a.tau,
            ).tolist()
            for i in range(len(train_seqs))
        ]

    history = run_rounds(
        ctx,
        num_rounds=num_rounds,
        train_round=train_round,
        select=select,
        initial=initial_selection(a, budgets, lengths=lengths, seed=seed),
    )
    rows = [{k: v for k, v in h.items() if k != "selection"} for h in history]
    out = write_rows(ctx, dataset=dataset, rows=rows)
    if ctx.is_main:
        last = rows[-1]
        path = plot_frames(
            test_seqs,
            state["boxes"],
            ctx.out_dir / "frames.png",
            title=f"selector {a.selector}, {last['labelled_frames']} labelled frames",
        )
        print(
            f"[alt] {dataset}: pool {sum(lengths)} frames in {len(train_seqs)} sequences, "
            f"{len(test_seqs)} test sequences; selector {a.selector}, box loss {a.box_loss}; "
            f"IdentityTracker floor: success AUC {identity['success_auc']:.3f}, precision "
            f"{identity['precision']:.3f}"
        )
        for row in rows:
            f = row["final"]
            print(
                f"  round{row['round']}: {row['labelled_frames']:5d} labelled frames "
                f"({100 * row['labelled_fraction']:.1f} %)  success AUC {f['success_auc']:.3f}  "
                f"precision@20 {f['precision']:.3f}  {f['fps'] or float('nan'):.0f} fps"
            )
        print(f"  notice: {SELECTOR_NOTES[a.selector]}; AUC vs the floor above. Frames: {path}")
    return out
