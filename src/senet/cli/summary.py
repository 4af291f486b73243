"""``senet summary``: per-layer output shape, parameters and MACs of a zoo model, with the attention share."""

from __future__ import annotations

import argparse
import functools
import json
from typing import Any

from senet.bench.costs import model_cost
from senet.errors import SenetError
from senet.models import create_model, list_models, summary
from senet.utils.table import print_table


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "summary",
        help="per-layer shapes, parameters and MACs of a model, with the attention blocks' share",
        description=(
            "Build MODEL (a name of senet.models.list_models(); globs like 'se_resnet*' list names) and print, per "
            "layer, its output shape, parameters and MACs for one image, then the totals and the attention blocks' "
            "share. MACs = conv/linear multiply-accumulates (FlopCounterMode / 2); 'elementwise' counts the ops "
            "attention adds (pools, gates, scaling). Ends with one JSON line."
        ),
    )
    p.add_argument("model", metavar="MODEL", help="model name, or a glob to list matching names")
    p.add_argument(
        "--input-size",
        type=int,
        nargs=3,
        default=None,
        metavar=("C", "H", "W"),
        help="input size without batch (default: the model's, 3 224 224 or 3 32 32 for CIFAR nets)",
    )
    p.add_argument(
        "--depth", type=int, default=2, metavar="N", help="list modules down to this nesting depth (default: 2)"
    )
    p.add_argument("--all", action="store_true", help="list every module down to the leaves (overrides --depth)")
    p.add_argument(
        "--costs",
        action="store_true",
        help="with a glob MODEL: a table of params / MACs of every matching model (counted on the meta device)",
    )
    p.add_argument(
        "--num-classes", type=int, default=None, metavar="N", help="classifier outputs (default: the model's)"
    )
    p.add_argument(
        "--attn-layer",
        default=None,
        metavar="KIND",
        help="override the attention kind, e.g. eca or none (default: the model's)",
    )
    return p


def run(args: argparse.Namespace) -> int:
    if any(ch in args.model for ch in "*?["):
        names = list_models(args.model)
        if not names:
            raise SenetError(f"no model matches {args.model!r}; see `senet summary '*'`")
        if args.costs:
            return _costs(names, args)
        print("\n".join(names))
        print(json.dumps({"models": names}))
        return 0
    overrides = {}
    if args.attn_layer is not None:
        overrides["attn_layer"] = args.attn_layer  # "none" removes attention (None would mean "unset")
    model = create_model(args.model, num_classes=args.num_classes, **overrides)
    input_size = tuple(args.input_size or getattr(model, "default_input_size", (3, 224, 224)))
    s = summary(model, input_size, depth=None if args.all else args.depth)
    rows = []
    for r in s.rows:
        shape = "x".join(map(str, r.output_shape[1:])) if r.output_shape else "-"
        rows.append(
            [
                "  " * (r.depth - 1) + r.name + (" *" if r.is_attention else ""),
                r.type,
                shape,
                f"{r.params:,}",
                f"{r.macs:,}",
                f"{r.elementwise:,}" if r.elementwise else "",
            ]
        )
    print_table(
        ["layer", "type", "output", "params", "MACs", "elementwise"],
        rows,
        title=f"{args.model} at {'x'.join(map(str, input_size))}, batch 1 (* = attention block)",
    )
    print(f"total params: {s.params:,} ({s.params / 1e6:.3f}M), trainable {s.trainable_params:,}")
    print(f"total MACs: {s.macs:,} ({s.macs / 1e9:.3f} G) + {s.elementwise:,} elementwise ops")
    if s.attn_blocks:
        print(
            f"attention: {s.attn_blocks} blocks, {s.attn_params:,} params ({100 * s.attn_param_share:.2f} %), "
            f"{s.attn_macs:,} MACs + {s.attn_elementwise:,} elementwise ops "
            f"({100 * s.attn_mac_share:.2f} % of MACs + elementwise)"
        )
    else:
        print("attention: none")
    print(json.dumps({"model": args.model, **s.as_dict()}))
    return 0


def _costs(names: list[str], args: argparse.Namespace) -> int:
    """Params and MACs of many models (senet.bench.costs.model_cost: built on the meta device, shapes only)."""
    rows, results = [], []
    for name in names:
        c = model_cost(functools.partial(create_model, name, num_classes=args.num_classes), args.input_size)
        rows.append(
            [
                name,
                "x".join(map(str, c["input"][1:])),
                f"{c['params'] / 1e6:.3f}",
                f"{c['macs'] / 1e9:.3f}",
                f"{c['elementwise'] / 1e6:.2f}",
                c["attn_blocks"],
                f"{100 * c['attn_params'] / c['params']:.2f}",
            ]
        )
        results.append({"model": name, **{k: c[k] for k in ("input", "params", "macs", "elementwise")}})
    print_table(
        ["model", "input", "params (M)", "GMACs", "elementwise (M)", "attn blocks", "attn params %"],
        rows,
        title=f"{len(names)} models, batch 1",
    )
    print(json.dumps({"costs": results}))
    return 0
