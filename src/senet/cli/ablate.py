"""``senet ablate``: the paper's ablation grids (or your own) as resumable sweeps of ordinary training runs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from senet.analysis.ablate import GRIDS, ablate, filter_cells, load_grid, select_grids
from senet.errors import SenetError
from senet.train import load_config
from senet.train.config import parse_sets


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "ablate",
        help="run the paper's ablations (reduction, squeeze, gate, stages, position, ...) as a sweep",
        description=(
            "Train every cell of one or more grids once per seed with the same code as `senet train`, then write "
            "OUT/<grid>.md/.csv (mean ± std top-1/top-5 error, params, MACs, measured throughput, and the paper's "
            "ImageNet number beside ours) and OUT/<grid>.png. Finished runs are skipped when started again; a "
            f"failing run puts its error in its row. Named grids: {', '.join(GRIDS)}; or a YAML file (see "
            "configs/ablate/)."
        ),
    )
    p.add_argument(
        "--grid", required=True, metavar="NAME[,NAME]|FILE.yaml", help="grid name(s) or a YAML grid (required)"
    )
    p.add_argument("--model", default=None, metavar="BASE", help="base model, e.g. resnet20 (default: resnet20)")
    p.add_argument("--data", default=None, metavar="PATH", help="dataset (default: as senet train)")
    p.add_argument("--seeds", type=int, default=3, metavar="N", help="seeds per cell, 0..N-1 (default: 3)")
    p.add_argument("--epochs", type=int, default=None, metavar="N", help="epochs per run (default: the config's)")
    p.add_argument(
        "--config", default=None, metavar="YAML", help="training recipe applied to every run (default: none)"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any training-config override for every run, repeatable, e.g. --set train_subset=5000 (default: none)",
    )
    p.add_argument(
        "--cells",
        default=None,
        metavar="LABEL,...",
        help="run only these cells (a grid none of whose cells is listed runs them all) (default: every cell)",
    )
    p.add_argument("--out", default="ablations", metavar="DIR", help="sweep folder (default: ablations)")
    p.add_argument("--jobs", type=int, default=1, metavar="K", help="runs in parallel processes (default: 1)")
    p.add_argument(
        "--devices",
        default=None,
        metavar="D,...",
        help="devices given round-robin, e.g. cuda:0,cuda:1 (default: the config's)",
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: write the tables from the runs finished so far (default: train what is missing)",
    )
    p.add_argument(
        "--no-throughput",
        action="store_true",
        help="skip the throughput column (timing is meaningless on a busy machine) (default: measure)",
    )
    p.add_argument(
        "--ledger",
        metavar="JSONL",
        help="results ledger: each finished run appends a row; runs already there are skipped (default: none)",
    )
    p.add_argument("--no-cost", action="store_true", help="skip params/MACs/throughput columns (default: measure)")
    return p


def run(args: argparse.Namespace) -> int:
    if args.seeds < 1 or args.jobs < 1:
        raise SenetError(f"--seeds and --jobs must be >= 1, got {args.seeds} and {args.jobs}")
    base: dict[str, Any] = parse_sets(args.set)
    if args.grid.endswith((".yaml", ".yml")):
        grid, defaults = load_grid(args.grid)
        base = {**defaults, **base}
        model = args.model or base.get("model") or "resnet20"
        grids = filter_cells([grid], args.cells)
    else:
        model = args.model or base.get("model") or "resnet20"
        grids = select_grids(args.grid, model, args.cells)
    base["model"] = model
    if args.config:
        base["config_file"] = args.config
    if args.epochs is not None:
        base["epochs"] = args.epochs
    if args.data:
        base["data"] = args.data
    # Fail on a bad key or value now, not in every cell.
    load_config(args.config, {k: v for k, v in base.items() if k != "config_file"})
    devices = [d.strip() for d in args.devices.split(",")] if args.devices else None
    summary = {}
    for grid in grids:
        rows, paths = ablate(
            grid,
            base,
            args.out,
            cost=not args.no_cost,
            throughput=not args.no_throughput,
            seeds=args.seeds,
            jobs=args.jobs,
            devices=devices,
            train=not args.report_only,
            ledger=args.ledger,
        )
        print(paths["md"].read_text())
        summary[grid.name] = {"rows": rows, "files": {k: str(v) for k, v in paths.items()}}
    print(json.dumps({"out": str(Path(args.out)), "grids": summary}, default=str))
    return 0
