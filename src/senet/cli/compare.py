"""``senet compare``: one table of several runs' final metrics, and a plot of their training curves."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from senet import runs
from senet.analysis.plots import plot_curves
from senet.errors import SenetError
from senet.utils.optional import MissingDependency, warn_skipped
from senet.utils.table import print_table


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "compare",
        help="compare training runs: final-metrics table and training-curve plot",
        description="Read RUN_DIR/metrics.jsonl (and result.json) of each run; print a table and plot the curves.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders written by `senet train`")
    p.add_argument(
        "--plot", metavar="PNG", help="curve plot path (default: compare.png in the current folder; 'none' to skip)"
    )
    return p


def load_run(path: Any) -> dict[str, Any]:
    """A run folder's config, per-epoch rows and final result."""

    d = Path(path)
    if not (d / runs.METRICS_FILE).is_file():
        raise SenetError(f"{str(d)!r} is not a run folder (no metrics.jsonl): pass folders written by `senet train`")
    run = runs.load_run(d, checkpoint=False) if (d / runs.CONFIG_FILE).is_file() else runs.Run(d, {})
    return {"dir": str(d), "rows": run.metrics(), "config": run.config, "result": run.result()}


def run(args: argparse.Namespace) -> int:
    runs = [load_run(r) for r in args.runs]
    table, out = [], []
    for r in runs:
        last = r["rows"][-1] if r["rows"] else {}
        best = max((x["eval_top1"] for x in r["rows"] if "eval_top1" in x), default=float("nan"))
        item = {
            "run": r["dir"],
            "model": r["config"].get("model", "?"),
            "seed": r["config"].get("seed"),
            "epochs": last.get("epoch", 0),
            "top1": last.get("eval_top1"),
            "top5": last.get("eval_top5"),
            "best_top1": best,
            "train_loss": last.get("train_loss"),
            "wall_time_s": last.get("wall_time_s"),
        }
        out.append(item)
        table.append(
            [
                item["run"],
                item["model"],
                item["seed"],
                item["epochs"],
                _f(item["top1"]),
                _f(100 - item["top1"] if item["top1"] is not None else None),
                _f(item["top5"]),
                _f(best),
                _f(item["train_loss"], 4),
                _f(item["wall_time_s"], 0),
            ]
        )
    print_table(
        [
            "run",
            "model",
            "seed",
            "epochs",
            "top-1 %",
            "top-1 err %",
            "top-5 %",
            "best top-1 %",
            "train loss",
            "wall s",
        ],
        table,
        title="runs",
    )
    plot = None if (args.plot or "").lower() == "none" else (args.plot or "compare.png")
    if plot:
        try:
            plot_curves(runs, plot)
            print(f"curves: {plot}")
        except MissingDependency as exc:  # the table above is the result; the plot is a side feature
            warn_skipped(exc, "senet compare")
            plot = None
    print(json.dumps({"runs": out, "plot": plot}))
    return 0


def _f(v: Any, nd: int = 2) -> str:
    return "-" if v is None or v != v else f"{v:.{nd}f}"
