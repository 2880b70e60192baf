"""The ``balenas`` run: search a cell (stage 1), train it from scratch (stage 2)."""

from __future__ import annotations

import torch

from frugalcv.classify import ClassifyTask, load_data, make_loaders, model_extra
from frugalcv.core.recipe import start_run, write_rows
from frugalcv.core.stages import train_stage
from frugalcv.nas.balenas_recipe.config import GRADIENT_SEARCHERS, Config
from frugalcv.nas.balenas_recipe.data import split_halves
from frugalcv.nas.balenas_recipe.stages import _gradient_search, _net, _random_search
from frugalcv.nas.balenas_recipe.tasks import search_step_cost
from frugalcv.nas.diagnostics import skip_share
from frugalcv.nas.lookup import NB201Lookup

__all__ = ["run"]


def run(cfg: Config, *, preset: str = "custom") -> dict:
    """Search a cell (stage 1), train it from scratch (stage 2); writes ``rows.json``.

    Returns:
        ``{"rows": [search summary, retrain summary], ...}`` as :func:`write_rows`; the retrain
        summary's ``final.acc`` is the test accuracy of the found cell.
    """
    ctx = start_run(cfg, recipe="balenas", preset=preset)
    s = cfg.search
    data = load_data(cfg.data, seed=cfg.train.seed)
    if data.image_size % 4:
        raise ValueError(
            f"The NAS-Bench-201 skeleton halves the resolution twice: image size "
            f"{data.image_size} must be divisible by 4 (pick another data.name)."
        )
    halves = split_halves(data, s, seed=cfg.train.seed)
    if s.searcher == "random":
        arch, search_summary, extra = _random_search(ctx, cfg, data, halves)
    else:
        arch, search_summary, extra = _gradient_search(ctx, cfg, data, halves)
    extra = {
        "searcher": s.searcher,
        "arch": arch,
        "skip_share": skip_share(arch),
        **extra,
        "dataset": data.name,
        "data_source": data.source,
        "data_fingerprint": data.fingerprint,
    }
    if s.nb201_csv:
        numbers = NB201Lookup.from_csv(s.nb201_csv).query(arch)
        extra.update({f"nb201_{k}": v for k, v in numbers.items()})
    torch.manual_seed(cfg.train.seed)  # the found cell's init depends on the seed only
    model = _net(cfg, arch, data)
    if s.searcher in GRADIENT_SEARCHERS:
        with torch.random.fork_rng(devices=[]):
            cost = search_step_cost(
                s,
                (halves[0][: s.batch_size], halves[1][: s.batch_size])
                + (halves[2][: s.batch_size], halves[3][: s.batch_size]),
                num_classes=data.num_classes,
                alpha_set_size=len(halves[3]),
                steps=0 if ctx.fabric.device.type == "cpu" else 3,
                device=ctx.fabric.device,
            )
        extra["search_peak_memory_bytes"] = cost["peak_memory_bytes"]
    _, retrain = train_stage(
        ctx,
        cfg,
        name="retrain",
        task=ClassifyTask(model=model),
        loaders=make_loaders(data, cfg),
        extra={**extra, **model_extra(model, data)},
    )
    rows = [search_summary, retrain]
    _print_notice(retrain, data.num_classes)
    return write_rows(ctx, dataset=data.name, rows=rows)


def _print_notice(r: dict, num_classes: int) -> None:
    h0, h1 = r.get("hessian_first"), r.get("hessian_final")
    hess = "" if h1 is None else f"; Hessian eigenvalue {h0:.3g} -> {h1:.3g} over the search"
    print(
        f"  search ({r['searcher']}): {r['arch']}  skip share {r['skip_share']:.2f}{hess} "
        f"(the paper: DARTS-1st's eigenvalue grows and its cell collapses to skip_connect, "
        f"BaLeNAS's does not; compare --search.searcher=darts1 on the same seed)"
    )
    print(
        f"  retrain: test acc {r['final']['acc']:.4f} (chance {1 / num_classes:.2f}) for the "
        f"found cell trained from scratch, {r['params']} parameters"
    )
