"""``senet predict``: top-k class names and probabilities for image files, from a trained checkpoint."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from senet.data.decode import decode_rgb
from senet.data.preprocess import preprocess
from senet.errors import SenetError
from senet.export import OnnxPredictor
from senet.export.fast import optimize
from senet.resolve import model_from_run
from senet.runs import load_run
from senet.train.trainer import resolve_device
from senet.utils.table import print_table


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "predict",
        help="classify image files with a trained checkpoint",
        description="Print the top-k classes and probabilities for each image (preprocessed as in training eval).",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="last.pt of a run, or the run folder")
    p.add_argument("--top-k", type=int, default=5, metavar="K", help="classes to show per image (default: 5)")
    p.add_argument("--device", default="cpu", metavar="DEV", help="cpu or cuda (default: cpu)")
    p.add_argument("--no-ema", action="store_true", help="use the raw weights even if the run kept an EMA")
    p.add_argument(
        "--onnx",
        default=None,
        metavar="FILE",
        help="run this ONNX export (of the --checkpoint run) with onnxruntime instead of PyTorch; the checkpoint "
        "still supplies class names and preprocessing (default: off)",
    )
    p.add_argument(
        "--optimized",
        action="store_true",
        help="run senet.optimize's fastest checked form (measured on the first image's shape; compile cost printed "
        "to stderr) instead of the eager model (default: off)",
    )
    p.add_argument(
        "--optimize-backends",
        default="auto",
        metavar="B,...",
        help="candidates for --optimized: auto or any of eager, eager_cl, inductor, onnxruntime (default: auto)",
    )
    return p


def run(args: argparse.Namespace) -> int:
    if args.top_k <= 0:
        raise SenetError(f"--top-k must be positive, got {args.top_k}")
    if args.optimized and args.onnx:
        raise SenetError("--optimized and --onnx exclude each other (--optimized already tries onnxruntime)")
    trained = load_run(args.checkpoint)
    if trained.task == "denoise":
        raise SenetError(f"{args.checkpoint!r} is a denoiser, not a classifier: use `senet denoise IMAGE ...`")
    device = resolve_device(args.device)
    if args.onnx:
        onnx_model = OnnxPredictor(args.onnx)

        def model(x: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(onnx_model(x.cpu()))

        device = torch.device("cpu")
    else:
        model = model_from_run(trained, use_ema=not args.no_ema).to(device)
    names = trained.class_names
    k = min(args.top_k, len(names))
    results = []
    for path in args.images:
        p = Path(path)
        if not p.is_file():
            raise SenetError(f"image {path!r} does not exist")
        img = decode_rgb(p.read_bytes(), str(path))  # one-line SenetError naming the file when undecodable
        x = preprocess(img, trained.preprocess).unsqueeze(0).to(device)
        if args.optimized and not hasattr(model, "report"):
            model = optimize(model, x, backend=args.optimize_backends)
            rep = model.report
            print(
                f"senet predict: optimized to {rep.backend} ({rep.dtype}; "
                f"{'cached decision' if rep.cache_hit else 'measured'}), compile {rep.compile_s:.1f} s, "
                f"max |diff| vs eager {rep.max_abs_diff:.2g}",
                file=sys.stderr,
                flush=True,
            )
        with torch.no_grad():
            prob = model(x).float().softmax(1)[0]
        top = prob.topk(k)
        preds = [{"class": names[i], "prob": round(float(v), 5)} for v, i in zip(top.values, top.indices.tolist())]
        results.append({"image": str(path), "top": preds})
        print_table(
            ["rank", "class", "probability"],
            [[r + 1, d["class"], f"{d['prob']:.4f}"] for r, d in enumerate(preds)],
            title=str(path),
        )
    extra = {"optimized": model.report.as_dict()} if hasattr(model, "report") else {}
    print(json.dumps({"checkpoint": str(args.checkpoint), "onnx": args.onnx, "predictions": results, **extra}))
    return 0
