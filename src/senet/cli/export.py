"""``senet export``: a model or checkpoint to ONNX or a torch.export program, checked against PyTorch."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

import torch

from senet.data.preprocess import preprocess
from senet.errors import SenetError
from senet.export import OnnxPredictor, export_onnx, export_program, load_model
from senet.export.load import preprocess_for
from senet.export.quantize import calibration_batch, gate_modules, quantize_onnx, quantize_pt2e

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
    p.add_argument(
        "--quantize",
        choices=("int8",),
        default=None,
        help="post-training static INT8: onnxruntime QDQ for --format onnx, PT2E + X86InductorQuantizer for "
        "--format exported-program (default: fp32)",
    )
    p.add_argument(
        "--calibration",
        default=None,
        metavar="DATA",
        help="images to calibrate --quantize on: a folder of images, an ImageFolder tree or a .tar.gz dataset",
    )
    p.add_argument(
        "--calibration-images", type=int, default=256, metavar="N", help="images used to calibrate (default: 256)"
    )
    p.add_argument(
        "--quantize-gate",
        action="store_true",
        help="also quantize the attention gate path (squeeze, excitation FCs, sigmoid, scale); default: keep it fp32",
    )
    return p


def _run_quantized(args: argparse.Namespace, model: Any, name: str, size: tuple[int, ...]) -> int:
    if not args.calibration:
        raise SenetError("--quantize int8 needs --calibration DATA (a few hundred of your images)")
    if len(size) != 3:
        raise SenetError(f"--quantize takes image models (--input-size C H W), got {list(size)}")
    pre = preprocess_for(args.source, size)
    calib = calibration_batch(args.calibration, lambda img: preprocess(img, pre), args.calibration_images)
    if tuple(calib.shape[1:]) != tuple(size):
        raise SenetError(f"calibration images preprocess to {tuple(calib.shape[1:])}, the model takes {size}")
    keep = not args.quantize_gate
    output = args.output or f"{name}.int8{_SUFFIX[args.format]}"
    check = calib[: min(64, len(calib))]
    with torch.no_grad():
        ref = model.eval()(check)
    if args.format == "onnx":
        res = quantize_onnx(model, output, calib, keep_gate=keep, opset=args.opset)
        out = torch.from_numpy(OnnxPredictor(res.path)(check))
        info = res.as_dict()
    else:
        q = quantize_pt2e(model, calib, keep_gate=keep)
        with torch.no_grad():
            out = q(check)
        dim = torch.export.Dim("batch", min=1, max=1024)
        program = torch.export.export(q, (check[:2],), dynamic_shapes=({0: dim},))
        torch.export.save(program, output)
        info = {"path": output, "method": "pt2e-x86-inductor", "calibration_images": len(calib),
                "kept_fp32": gate_modules(model) if keep else [], "size_bytes": os.path.getsize(output)}  # fmt: skip
    agree = float((out.argmax(1) == ref.argmax(1)).float().mean())
    diff = float((out - ref).abs().max())
    print(
        f"quantized {name} to INT8 in {info['path']} ({info['method']}, {info['size_bytes'] / 1e6:.1f} MB, "
        f"calibrated on {len(calib)} images, gate path {'fp32' if keep else 'int8'}); on {len(check)} calibration "
        f"images: top-1 agreement with fp32 {100 * agree:.1f} %, max |logit diff| {diff:.3g}"
    )
    print(json.dumps({"model": name, "input_size": list(size), "quantize": "int8", **info,
                      "top1_agreement": agree, "max_abs_diff": diff}))  # fmt: skip
    return 0


def run(args: argparse.Namespace) -> int:
    kwargs = {"num_classes": args.num_classes} if args.num_classes is not None else {}
    model, name = load_model(args.source, model_name=args.model, **kwargs)
    size = tuple(args.input_size or getattr(model, "default_input_size", (3, 224, 224)))
    if not 2 <= len(size) <= 4 or any(s <= 0 for s in size):
        raise SenetError(f"--input-size must be 2 to 4 positive ints (C then spatial dims), got {list(size)}")
    if args.quantize:
        return _run_quantized(args, model, name, tuple(size))
    if args.calibration:
        raise SenetError("--calibration is only used with --quantize int8")
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
