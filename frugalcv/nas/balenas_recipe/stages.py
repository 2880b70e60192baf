"""Stage 1 of ``balenas``: the gradient searches (with BaLeNAS-TF's selection) and random search."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import torch

from frugalcv.classify import ClassifyTask
from frugalcv.core.checkpoint import load_checkpoint, load_model
from frugalcv.core.jsonio import finite_or_none, read_json, write_json
from frugalcv.core.loader import TensorLoader
from frugalcv.core.stages import train_stage
from frugalcv.nas.balenas_recipe.config import Config
from frugalcv.nas.balenas_recipe.data import SearchLoader, _augment, _stage_cfg, cosine_floor
from frugalcv.nas.balenas_recipe.diagnostics import SearchDiagnostics
from frugalcv.nas.balenas_recipe.tasks import make_search_task
from frugalcv.nas.nb201 import NB201Network, nb201_derive, sample_nb201_arch
from frugalcv.nas.proxies import balenas_tf_select
from frugalcv.nas.search import BaLeNASTask, random_search


def _net(cfg: Config, arch: str, data) -> NB201Network:
    s = cfg.search
    return NB201Network(
        arch=arch,
        channels=s.channels,
        num_cells=s.num_cells,
        num_classes=data.num_classes,
        in_channels=data.in_chans,
    )


def _search_dir(path: str) -> Path:
    p = Path(path)
    folder = p.parent if p.is_file() else p
    if not (folder / "last.pt").is_file():
        raise FileNotFoundError(
            f"search.ckpt={path}: no last.pt there. Pass the search folder of an earlier balenas "
            f"or balenas_tf run (runs/balenas/<preset>/search) or its last.pt."
        )
    return folder


def _gradient_search(ctx, cfg: Config, data, halves) -> tuple[str, dict, dict]:
    """Stage 1 of the gradient searchers; returns (arch, search summary, retrain extras)."""
    s = cfg.search
    x_w, y_w, x_a, y_a = halves
    torch.manual_seed(cfg.train.seed)  # every searcher starts from the same supernet
    task, optimizers = make_search_task(
        s, num_classes=data.num_classes, in_channels=data.in_chans, alpha_set_size=len(y_a)
    )
    hook = SearchDiagnostics(
        x=x_a[: s.hessian_batch],
        y=y_a[: s.hessian_batch],
        every=s.hessian_every,
        num_iters=s.hessian_iters,
        tol=s.hessian_tol,
    )
    transform = _augment(cfg, data.image_size)
    loader = SearchLoader(
        TensorLoader(
            (x_w, y_w),
            batch_size=s.batch_size,
            shuffle=True,
            seed=cfg.train.seed,
            drop_last=True,
            transform=transform,
        ),
        TensorLoader(
            (x_a, y_a),
            batch_size=s.batch_size,
            shuffle=True,
            seed=cfg.train.seed + 1,
            drop_last=True,
            transform=transform,
        ),
    )
    val = TensorLoader((x_a[: s.eval_size], y_a[: s.eval_size]), batch_size=256)
    if s.ckpt:
        folder = _search_dir(s.ckpt)
        load_model(task, folder)
        state = load_checkpoint(folder / "last.pt")
        vadam_state = state["optimizers"][1]
        if "prior_prec" not in vadam_state["param_groups"][0]:
            raise ValueError(
                f"search.ckpt={s.ckpt} was not written by a balenas search (its alpha optimizer "
                f"is not Vadam): pass the search folder of a balenas or balenas_tf run."
            )
        optimizers[1].load_state_dict(vadam_state)
        search_summary = {**read_json(folder / "summary.json"), "loaded_from": str(folder)}
        records = read_json(folder / "diagnostics.json")["records"]
        step_s = search_summary.get("step_s")
    else:
        stage = _stage_cfg(cfg, epochs=s.epochs)
        sched = functools.partial(cosine_floor, floor=s.lr_min / s.lr)
        _, search_summary = train_stage(
            ctx,
            stage,
            name="search",
            task=task,
            loaders=(loader, val),
            optimizers=optimizers,
            schedules=[sched, None],  # the alpha lr stays fixed (DARTS, BaLeNAS)
            hooks=[hook],
        )
        records, step_s = hook.records, hook.step_seconds()
        if step_s is not None and ctx.is_main:  # the timing, for runs that reuse this search
            search_summary = {**search_summary, "step_s": step_s}
            write_json(ctx.out_dir / "search" / "summary.json", search_summary)
    last = records[-1]
    extra: dict[str, Any] = {
        "argmax_arch": task.derive(),
        "skip_share_argmax": last["skip_share"],
        "hessian_first": next((r["hessian"] for r in records if "hessian" in r), None),
        "hessian_final": next((r["hessian"] for r in reversed(records) if "hessian" in r), None),
        "search_s": search_summary.get("wall_s"),
        "search_s_per_epoch": None if step_s is None else step_s * len(loader),
        "search_steps": search_summary.get("steps"),
        "supernet_val_acc": search_summary.get("final", {}).get("acc"),
    }
    if "sigma_mean" in last:
        extra.update(sigma_mean=last["sigma_mean"], sigma_min=last["sigma_min"])
    arch = extra["argmax_arch"]
    if s.searcher == "balenas_tf":
        t0 = time.perf_counter()
        sel_path = ctx.out_dir / "tf_selection.json"
        if sel_path.is_file():  # a resumed run: the saved selection, not a recomputed one
            sel = read_json(sel_path)
        else:
            mu, sigma = BaLeNASTask.arch_distribution(optimizers[1])
            with torch.random.fork_rng(devices=[]):
                chosen = balenas_tf_select(
                    mu,
                    sigma,
                    decode=lambda a: nb201_derive(a[0]),
                    build_network=lambda a: _net(cfg, a, data),
                    x=x_w[: s.tf_batch].to(ctx.fabric.device),
                    y=y_w[: s.tf_batch].to(ctx.fabric.device),
                    proxy=s.tf_proxy,
                    num_samples=s.tf_samples,
                    generator=torch.Generator().manual_seed(cfg.train.seed),
                    init_seed=cfg.train.seed,
                )
            # a proxy gives -inf to a cell it cannot tell apart (singular kernel, constant
            # output): such a score is written as None
            sel = {
                "arch": chosen.arch,
                "score": finite_or_none(chosen.score),
                "proxy": s.tf_proxy,
                "num_samples": s.tf_samples,
                "seconds": round(time.perf_counter() - t0, 2),
                "candidates": [
                    {"arch": a, "score": finite_or_none(sc), "count": chosen.counts[a]}
                    for a, sc in chosen.scores.items()
                ],
            }
            if ctx.is_main:
                write_json(sel_path, sel)
        arch = sel["arch"]
        extra.update(
            tf_score=sel["score"],
            tf_distinct=len(sel["candidates"]),
            tf_select_s=sel["seconds"],
        )
    return arch, search_summary, extra


def _random_search(ctx, cfg: Config, data, halves) -> tuple[str, dict, dict]:
    """Stage 1 of random search: train each drawn cell briefly, keep the best on the alpha half."""
    s = cfg.search
    x_w, y_w, x_a, y_a = halves
    epochs = s.epochs / s.random_samples  # all candidates together: the supernet's weight steps
    stage = _stage_cfg(cfg, epochs=epochs)
    train = TensorLoader(
        (x_w, y_w),
        batch_size=s.batch_size,
        shuffle=True,
        seed=cfg.train.seed,
        drop_last=True,
        transform=_augment(cfg, data.image_size),
    )
    val = TensorLoader((x_a, y_a), batch_size=256)
    sched = functools.partial(cosine_floor, floor=s.lr_min / s.lr)
    t0 = time.perf_counter()
    summaries: list[dict] = []

    def score(arch: str) -> float:
        torch.manual_seed(cfg.train.seed)
        task = ClassifyTask(model=_net(cfg, arch, data))
        opt = torch.optim.SGD(
            task.model.parameters(),
            lr=s.lr,
            momentum=s.momentum,
            weight_decay=s.weight_decay,
            nesterov=s.nesterov,
        )
        _, summary = train_stage(
            ctx,
            stage,
            name=f"search/cand{len(summaries)}",
            task=task,
            loaders=(train, val),
            optimizers=[opt],
            schedules=[sched],
        )
        summaries.append({**summary, "arch": arch})
        return summary["final"]["acc"]

    result = random_search(
        sample=sample_nb201_arch, score=score, num_samples=s.random_samples, seed=cfg.train.seed
    )
    seconds = time.perf_counter() - t0
    search_summary = {
        "name": "search",
        "searcher": "random",
        "chosen": result.best,
        "chosen_val_acc": result.best_score,
        "candidates": [{"arch": a, "val_acc": v} for a, v in result.history],
        "wall_s": round(seconds, 2),
    }
    if ctx.is_main:
        write_json(ctx.out_dir / "search" / "summary.json", search_summary)
    steps = sum(int(x["steps"]) for x in summaries)
    extra = {
        "skip_share_argmax": None,
        "hessian_first": None,
        "hessian_final": None,
        "search_s": round(seconds, 2),
        "search_s_per_epoch": seconds / s.epochs,
        "search_steps": steps,
        "random_val_acc": result.best_score,
    }
    return result.best, search_summary, extra
