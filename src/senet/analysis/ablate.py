"""Reports of the paper's ablation sweeps: one row per grid cell (mean ± std error over seeds, cost, paper numbers).

The grids live in :mod:`senet.train.grids` and the runner in :mod:`senet.train.sweep` (``run_grid``: the same runner
that serves the speed-run sweep and the GPU suite); this module summarises their records into
``OUT/<grid>.csv``, ``OUT/<grid>.md`` and ``OUT/<grid>.png``. The runner's names stay importable from here
(``run_sweep`` here is :func:`senet.train.sweep.run_grid`, ``config_key`` is :func:`senet.train.sweep.run_key`).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from senet.bench.flops import count_macs, count_params
from senet.bench.speed import model_input_size, time_model
from senet.errors import SenetError
from senet.models import create_model, is_model
from senet.train.checkpoint import build_model
from senet.train.grids import GRIDS, Cell, Grid, load_grid, named_grid
from senet.train.sweep import TrainFn, senet_train_fn
from senet.train.sweep import run_grid as run_sweep
from senet.train.sweep import run_key as config_key
from senet.utils.io import atomic_write_text
from senet.utils.optional import optional
from senet.utils.table import markdown_table

from .plots import plot_ablation
from .recorder import parse_block_name

__all__ = [
    "Cell",
    "Grid",
    "GRIDS",
    "named_grid",
    "load_grid",
    "run_sweep",
    "summarize",
    "write_tables",
    "TrainFn",
    "config_key",
    "senet_train_fn",
    "cell_cost",
    "select_grids",
    "filter_cells",
    "ablate",
]


def _mean_std(values: Iterable[float]) -> tuple[float | None, float | None]:
    v = [float(x) for x in values if x is not None and not math.isnan(float(x))]
    if not v:
        return None, None
    m = sum(v) / len(v)
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
    return m, sd


def _err(metrics: Mapping[str, Any], k: int) -> float | None:
    # Trainers report accuracy or error, in % or as a fraction; normalise to error in %.
    for key in (f"top{k}_err", f"top{k}_error", f"val_top{k}_err"):
        if metrics.get(key) is not None:
            return float(metrics[key])
    for key in (f"top{k}", f"acc{k}", f"top{k}_acc", f"val_top{k}", f"val_acc{k}", f"test_top{k}"):
        if metrics.get(key) is not None:
            acc = float(metrics[key])
            return 100.0 - (100.0 * acc if acc <= 1.0 else acc)
    return None


def summarize(
    grid: Grid,
    records: Sequence[Mapping[str, Any]],
    cost: Mapping[str, Mapping[str, Any]] | None = None,
    seeds: int | None = None,
) -> list[dict[str, Any]]:
    """One row per cell: seeds ok/total, mean ± std top-1/top-5 error (%), cost columns, paper numbers, errors.

    ``cost[label]`` may hold ``params``, ``macs`` and ``throughput`` (images/s) for that cell's model. ``seeds`` is
    the number of seeds asked for (default: the runs recorded), so unfinished runs show as missing.
    """
    cost = cost or {}
    rows = []
    for cell in grid.cells:
        recs = [r for r in records if r["cell"] == cell.label]
        ok = [r for r in recs if r.get("status") == "ok"]
        t1 = _mean_std(_err(r["metrics"], 1) for r in ok)
        t5 = _mean_std(_err(r["metrics"], 5) for r in ok)
        errors = sorted({str(r.get("error")) for r in recs if r.get("status") != "ok"})
        c = cost.get(cell.label, {})
        rows.append(
            {
                "cell": cell.label,
                "seeds_ok": len(ok),
                "seeds": seeds if seeds is not None else len(recs),
                "top1_err_mean": t1[0],
                "top1_err_std": t1[1],
                "top5_err_mean": t5[0],
                "top5_err_std": t5[1],
                "params": c.get("params"),
                "macs": c.get("macs"),
                "throughput": c.get("throughput"),
                "paper_top1_err": cell.paper[0] if cell.paper else None,
                "paper_top5_err": cell.paper[1] if cell.paper else None,
                "error": "; ".join(errors),
            }
        )
    return rows


def _pm(m: float | None, s: float | None) -> str:
    return "–" if m is None else f"{m:.2f} ± {s:.2f}"


def _n(v: Any, fmt: str) -> str:
    return "–" if v is None else format(v, fmt)


def write_tables(
    grid: Grid, rows: Sequence[Mapping[str, Any]], out_dir: str | os.PathLike[str], plot: bool = True
) -> dict[str, Path]:
    """Write ``<grid>.csv``, ``<grid>.md`` and (``plot=True``) ``<grid>.png`` into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["cell"])
    writer.writeheader()
    writer.writerows(rows)
    paths["csv"] = out / f"{grid.name}.csv"
    atomic_write_text(paths["csv"], buf.getvalue())
    headers = [
        grid.swept,
        "seeds",
        "top-1 err % (ours)",
        "top-5 err % (ours)",
        "params",
        "MACs",
        "img/s",
        "paper top-1 / top-5 err % (ImageNet)",
        "error",
    ]
    table_rows = [
        [
            r["cell"],
            f"{r['seeds_ok']}/{r['seeds']}",
            _pm(r["top1_err_mean"], r["top1_err_std"]),
            _pm(r["top5_err_mean"], r["top5_err_std"]),
            _n(r["params"], ","),
            _n(r["macs"], ","),
            _n(r["throughput"], ".0f"),
            "–" if r["paper_top1_err"] is None else f"{r['paper_top1_err']:.2f} / {r['paper_top5_err']:.2f}",
            r["error"] or "",
        ]
        for r in rows
    ]
    md = f"### {grid.name}\n\n" + markdown_table(headers, table_rows) + "\n"
    if grid.paper_source:
        md += f"\nPaper column: {grid.paper_source}.\n"
    paths["md"] = out / f"{grid.name}.md"
    atomic_write_text(paths["md"], md)
    if plot and rows:
        # The tables are the result of a long grid: a missing matplotlib skips the figure with a warning, never
        # the tables.
        if optional("matplotlib", "the ablation figure", "senet ablate") is None:
            return paths

        paths["png"] = plot_ablation(
            [r["cell"] for r in rows],
            [r["top1_err_mean"] for r in rows],
            [r["top1_err_std"] for r in rows],
            out / f"{grid.name}.png",
            title=f"{grid.name}: top-1 error vs {grid.swept}",
            reference=[r["paper_top1_err"] for r in rows],
        )
    return paths


def cell_cost(
    model: str,
    model_kwargs: Mapping[str, Any],
    num_classes: int = 10,
    throughput_batch: int = 64,
    iters: int = 3,
    throughput: bool = True,
    retrofit: str | None = None,
    img_size: int | None = None,
) -> dict[str, Any]:
    """Params, MACs (one image) and, with ``throughput``, measured fp32 inference images/s of one cell's model
    (``retrofit``: the cell's network is ``retrofit`` with attention inserted, as the training run builds it;
    ``img_size``: the runs' input size, else the model's default one)."""
    net = build_model(model, num_classes, dict(model_kwargs), retrofit=retrofit)
    size = model_input_size(net, model, img_size)
    speed = time_model(net, (throughput_batch, *size), warmup=1, iters=iters).throughput if throughput else None
    return {"params": count_params(net), "macs": count_macs(net, torch.randn(1, *size)).macs, "throughput": speed}


def select_grids(spec: str, model: str, cells: str | None = None) -> list[Grid]:
    """The named grids of ``spec`` (``"reduction,gate"``) for ``model``, keeping only ``cells`` (labels) if given.

    The ``stages`` grid uses the model's own stage numbers (read from its paper-style attention names). A grid none
    of whose cells is listed in ``cells`` keeps them all.

    Raises:
        SenetError: unknown model, grid or cell label.
    """
    if not is_model(model):
        raise SenetError(f"unknown model {model!r}; see `senet summary --list` or senet.models.list_models()")
    probe = create_model(model, attn_layer="se")
    stages = sorted({p[0] for p in (parse_block_name(n) for n, _ in probe.attention_modules()) if p})
    return filter_cells([named_grid(g.strip(), stages) for g in spec.split(",") if g.strip()], cells)


def filter_cells(grids: list[Grid], cells: str | None) -> list[Grid]:
    """Keep only the cells labelled in ``cells`` (comma-separated); a grid with none of them keeps them all."""
    if not cells:
        return grids
    known = {c.label for g in grids for c in g.cells}
    wanted = set(_split_labels(cells, known))
    if wanted - known:
        unknown = ", ".join(repr(w) for w in sorted(wanted - known))
        raise SenetError(f"--cells: unknown cell(s) {unknown}; known: {', '.join(repr(k) for k in sorted(known))}")
    for g in grids:
        g.cells = [c for c in g.cells if c.label in wanted] or g.cells
    return grids


def _split_labels(spec: str, known: set[str]) -> list[str]:
    """Split a comma-separated ``--cells`` value, keeping labels that contain commas (``SE, identity init``) whole:
    at each position the longest run of pieces that joins to a known label wins."""
    parts = [p.strip() for p in spec.split(",")]
    labels, i = [], 0
    while i < len(parts):
        j = next((j for j in range(len(parts), i, -1) if ", ".join(parts[i:j]) in known), i + 1)
        labels.append(", ".join(parts[i:j]))
        i = j
    return [label for label in labels if label]


def ablate(
    grid: Grid,
    base: Mapping[str, Any],
    out_dir: str | os.PathLike[str],
    *,
    cost: bool = True,
    throughput: bool = True,
    **sweep: Any,
) -> tuple[list[dict[str, Any]], dict[str, Path]]:
    """``senet ablate`` for one grid: train what is missing (:func:`senet.train.sweep.run_grid`, ``**sweep`` are its
    options), measure each cell's cost, write the tables; returns the rows and the written files."""
    records = run_sweep(grid, senet_train_fn, out_dir, base, **sweep)
    costs: dict[str, dict[str, Any]] = {}
    for cell in grid.cells if cost else []:
        try:
            kwargs = {**(base.get("model_kwargs") or {}), **cell.model_kwargs}
            run = {**base, **cell.train}
            where = {"retrofit": run.get("retrofit"), "img_size": run.get("img_size")}
            costs[cell.label] = cell_cost(base["model"], kwargs, throughput=throughput, **where)
        except Exception as exc:  # noqa: BLE001 - a cost failure must not lose the sweep's table
            costs[cell.label] = {"error": str(exc)}
    seeds = sweep.get("seeds", 3)
    rows = summarize(grid, records, costs, seeds=seeds if isinstance(seeds, int) else len(list(seeds)))
    return rows, write_tables(grid, rows, out_dir)
