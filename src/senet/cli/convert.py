"""``senet convert``: turn a published checkpoint into a senet safetensors file, verified by a strict load."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from senet.errors import SenetError
from senet.weights import convert_checkpoint, save_pretrained


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "convert",
        help="convert a published SE/ECA/CBAM checkpoint to senet safetensors",
        description=(
            "Detect the checkpoint's layout (timm, Cadene/Caffe SENet, torchvision, ECA-Net, CBAM, mmpretrain, "
            "senet.pytorch), convert it, load it strictly into the matching senet model and write safetensors "
            "with metadata. Pickles are read with weights_only=True."
        ),
    )
    p.add_argument(
        "checkpoint", metavar="CKPT", help="input checkpoint (.pth, .pth.tar, .pkl, .safetensors) or an http(s) URL"
    )
    p.add_argument("output", metavar="OUT.safetensors", help="output file (written atomically)")
    p.add_argument("--model", default=None, metavar="NAME", help="senet model to load into (default: inferred)")
    p.add_argument(
        "--layout", default=None, metavar="NAME", help="source layout, skipping detection (default: detected)"
    )
    p.add_argument(
        "--sha256", default=None, metavar="HEX", help="expected SHA-256 of a URL download (default: from the URL)"
    )
    p.add_argument(
        "--class-names",
        default=None,
        metavar="FILE",
        help="text file with one class name per line, stored in the metadata (default: none)",
    )
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists (default: refuse)")
    return p


def run(args: argparse.Namespace) -> int:
    if not str(args.output).endswith(".safetensors"):
        raise SenetError(f"output {args.output} must end in .safetensors")
    if os.path.exists(args.output) and not args.force:
        raise SenetError(f"output {args.output} exists; pass --force to overwrite it")
    class_names = None
    if args.class_names:
        if not os.path.isfile(args.class_names):
            raise SenetError(f"--class-names file {args.class_names} does not exist")
        with open(args.class_names, encoding="utf-8") as f:
            class_names = [line.strip() for line in f if line.strip()]
    conv = convert_checkpoint(args.checkpoint, model_name=args.model, layout=args.layout, sha256=args.sha256)
    if class_names is not None and len(class_names) != conv.arch.num_classes:
        raise SenetError(
            f"--class-names {args.class_names} lists {len(class_names)} names but the head has "
            f"{conv.arch.num_classes} classes"
        )
    src_meta = conv.checkpoint.metadata
    extra: dict[str, Any] = {}
    if src_meta.get("arch_hint"):
        extra["source_arch"] = str(src_meta["arch_hint"])
    # Preprocessing a senet training run (or a converted file) recorded wins over the registry defaults.
    extra.update({k: src_meta[k] for k in ("mean", "std", "input_size", "crop_pct", "interpolation") if k in src_meta})
    if class_names is None and isinstance(src_meta.get("class_names"), list):
        class_names = src_meta["class_names"]
    save_pretrained(
        conv.model,
        args.output,
        model_name=conv.model_name,
        layout_source=conv.detection.layout,
        model_kwargs={k: v for k, v in conv.model_kwargs.items() if k != "num_classes"} or None,
        class_names=class_names,
        extra={"num_classes": conv.arch.num_classes, **extra},
    )
    n_params = sum(t.numel() for t in conv.model.state_dict().values() if t.is_floating_point())
    adapted = f"; adapted: {'; '.join(conv.load.adapted)}" if conv.load.adapted else ""
    print(
        f"{args.checkpoint}: layout {conv.detection.layout} -> {conv.model_name} "
        f"({conv.arch.describe()}), {n_params:,} values loaded strictly -> {args.output}{adapted}"
    )
    print(
        json.dumps(
            {
                "input": str(args.checkpoint),
                "output": str(args.output),
                "layout": conv.detection.layout,
                "evidence": conv.detection.evidence,
                "model": conv.model_name,
                "model_kwargs": {k: v for k, v in conv.model_kwargs.items()},
                "num_classes": conv.arch.num_classes,
                "tensors": len(conv.model.state_dict()),
                "adapted": conv.load.adapted,
            }
        )
    )
    return 0
