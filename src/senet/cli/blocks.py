"""``senet blocks``: list the attention kinds, their knobs, and their cost at a given width."""

from __future__ import annotations

import argparse
from typing import Any


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
    import torch

    from senet.bench.flops import count_macs, count_params
    from senet.layers import attn_knobs, create_attn, list_attn
    from senet.utils.table import print_table

    if args.channels <= 0 or args.size <= 0:
        raise ValueError(f"--channels and --size must be positive, got {args.channels} and {args.size}")
    x = torch.randn(1, args.channels, args.size, args.size)
    rows = []
    for kind in list_attn():
        block = create_attn(kind, args.channels)
        cost = count_macs(block, x)
        knobs = attn_knobs(kind) or {}
        rows.append(
            [
                kind,
                type(block).__name__,
                f"{count_params(block):,}",
                f"{cost.macs:,}",
                f"{cost.elementwise:,}",
                ", ".join(f"{k}={_fmt(v)}" for k, v in knobs.items()) if args.knobs else ", ".join(knobs),
            ]
        )
    print_table(
        ["kind", "class", "params", "MACs (FC/conv)", "elementwise ops", "knobs"],
        rows,
        title=f"attention blocks at C={args.channels}, {args.size}x{args.size}, batch 1",
    )
    return 0


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else repr(v)
