"""``senet summary``: per-layer output shape, parameters and MACs of a zoo model, with the attention share."""

from __future__ import annotations

import argparse
from typing import Any


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
    import json

    from senet.errors import SenetError
    from senet.models import create_model, list_models
    from senet.models._summary import summary
    from senet.utils.table import print_table

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
    """Params and MACs of many models, built on the meta device (shapes only: seconds even for SENet-154)."""
    import json

    import torch

    from senet.bench.flops import count_macs, count_params
    from senet.models import create_model
    from senet.utils.table import print_table

    rows, results = [], []
    for name in names:
        with torch.device("meta"):
            model = create_model(name, num_classes=args.num_classes)
            size = tuple(args.input_size or model.default_input_size)
            cost = count_macs(model, torch.empty(1, *size))
        attn = list(model.attention_modules())
        attn_params = sum(count_params(m) for _, m in attn)
        params = count_params(model)
        rows.append(
            [
                name,
                "x".join(map(str, size[1:])),
                f"{params / 1e6:.3f}",
                f"{cost.macs / 1e9:.3f}",
                f"{cost.elementwise / 1e6:.2f}",
                len(attn),
                f"{100 * attn_params / params:.2f}",
            ]
        )
        results.append(
            {"model": name, "input": list(size), "params": params, "macs": cost.macs, "elementwise": cost.elementwise}
        )
    print_table(
        ["model", "input", "params (M)", "GMACs", "elementwise (M)", "attn blocks", "attn params %"],
        rows,
        title=f"{len(names)} models, batch 1",
    )
    print(json.dumps({"costs": results}))
    return 0
