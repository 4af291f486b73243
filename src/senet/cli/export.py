"""``senet export``: a model or checkpoint to ONNX or a torch.export program, checked against PyTorch."""

from __future__ import annotations

import argparse
import json
from typing import Any

FORMATS = ("onnx", "exported-program")
_SUFFIX = {"onnx": ".onnx", "exported-program": ".pt2"}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "export",
        help="export a model or checkpoint to ONNX / torch.export (dynamic batch, checked against PyTorch)",
        description=(
            "Export MODEL (a registered name: random weights) or CHECKPOINT (a senet training checkpoint, a "
            "safetensors file or a published checkpoint) in eval mode with a dynamic batch axis, then run the file "
            "(onnxruntime for ONNX, torch.export.load for a program) on random inputs and print the max difference "
            "from PyTorch. The last line is JSON."
        ),
    )
    p.add_argument("source", metavar="MODEL|CHECKPOINT", help="registered model name or checkpoint file")
    p.add_argument("--format", choices=FORMATS, default="onnx", help="output format (default: onnx)")
    p.add_argument("--opset", type=int, default=17, metavar="N", help="ONNX opset version (default: 17)")
    p.add_argument("--fold-bn", action="store_true", help="fold BatchNorm into the convolutions (default: off)")
    p.add_argument(
        "--input-size",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="one sample's shape, e.g. 3 224 224 (default: the model's default_input_size, else 3 224 224)",
    )
    p.add_argument("--model", default=None, metavar="NAME", help="architecture of a checkpoint that does not name it")
    p.add_argument(
        "--num-classes", type=int, default=None, metavar="K", help="classes of a fresh model (default: model's)"
    )
    p.add_argument("--static-batch", action="store_true", help="export a fixed batch axis (default: dynamic)")
    p.add_argument("--atol", type=float, default=1e-4, metavar="TOL", help="fail above this max diff (default: 1e-4)")
    p.add_argument("--output", "-o", default=None, metavar="PATH", help="output file (default: <name>.onnx / .pt2)")
    return p


def run(args: argparse.Namespace) -> int:
    from senet.errors import SenetError
    from senet.export import export_onnx, export_program, load_model

    kwargs = {"num_classes": args.num_classes} if args.num_classes is not None else {}
    model, name = load_model(args.source, model_name=args.model, **kwargs)
    size = tuple(args.input_size or getattr(model, "default_input_size", (3, 224, 224)))
    if not 2 <= len(size) <= 4 or any(s <= 0 for s in size):
        raise SenetError(f"--input-size must be 2 to 4 positive ints (C then spatial dims), got {list(size)}")
    output = args.output or f"{name}{_SUFFIX[args.format]}"
    common = dict(dynamic_batch=not args.static_batch, fold_bn=args.fold_bn, atol=args.atol)
    if args.format == "onnx":
        result = export_onnx(model, output, size, opset=args.opset, **common)
    else:
        result = export_program(model, output, size, **common)
    print(
        f"exported {name} to {result.path} ({result.format}, {result.size_bytes / 1e6:.1f} MB, input "
        f"{'batch' if not args.static_batch else 2} x {' x '.join(map(str, size))}); max |diff| vs PyTorch "
        f"{result.max_abs_diff:.3g} on batches {result.checked_batches}"
    )
    print(json.dumps({"model": name, "input_size": list(size), **result.as_dict()}))
    return 0
