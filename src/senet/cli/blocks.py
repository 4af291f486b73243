"""``senet blocks``: list the attention kinds, their knobs, and their cost at a given width."""

from __future__ import annotations

import argparse
from typing import Any

from senet.bench.costs import block_costs
from senet.utils.table import print_table


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "blocks",
        help="list the attention kinds with their knobs and cost",
        description="List every attention kind, its options and defaults, and params / MACs at one width.",
    )
    p.add_argument("--channels", type=int, default=256, metavar="C", help="channels for the cost table (default: 256)")
    p.add_argument("--size", type=int, default=56, metavar="S", help="spatial size S x S (default: 56)")
    p.add_argument("--knobs", action="store_true", help="also print every knob and its default")
    return p


def run(args: argparse.Namespace) -> int:
    rows = block_costs(args.channels, args.size)
    print_table(
        ["kind", "class", "params", "MACs (FC/conv)", "elementwise ops", "knobs"],
        [
            [
                r["kind"],
                r["class"],
                f"{r['params']:,}",
                f"{r['macs']:,}",
                f"{r['elementwise']:,}",
                ", ".join(f"{k}={_fmt(v)}" for k, v in r["knobs"].items()) if args.knobs else ", ".join(r["knobs"]),
            ]
            for r in rows
        ],
        title=f"attention blocks at C={args.channels}, {args.size}x{args.size}, batch 1",
    )
    return 0


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else repr(v)
