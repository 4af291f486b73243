"""``senet prune-attention``: replace chosen attention blocks by identity, save the smaller model, report the cost."""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch

from senet.analysis import Recorder, attention_blocks, prune_attention, select_blocks
from senet.analysis._runtime import eval_batches, evaluate, load_model, pick_device, save_pruned
from senet.bench.flops import count_macs, count_params
from senet.errors import SenetError
from senet.utils.table import print_table


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "prune-attention",
        help="remove attention blocks (by stage or class-specificity) and report params/MACs/accuracy change",
        description=(
            "Replace the attention blocks of the chosen stages, or those whose class-specificity is at most X, by "
            "identity (the paper: dropping the last stage's SE blocks costs < 0.1%% top-5 on ImageNet). Saves the "
            "pruned model and prints parameters and MACs removed and top-1/top-5 error before and after."
        ),
    )
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="checkpoint written by senet train")
    p.add_argument("--stages", default=None, metavar="S,...", help="stages whose blocks go, e.g. 5 (default: none)")
    p.add_argument(
        "--max-specificity",
        type=float,
        default=None,
        metavar="X",
        help="also/instead remove blocks with class-specificity <= X, measured on --data (default: off)",
    )
    p.add_argument("--data", default=None, metavar="PATH", help="dataset for accuracy (default: as senet train)")
    p.add_argument("--max-images", type=int, default=None, metavar="N", help="use the first N images (default: all)")
    p.add_argument("--batch-size", type=int, default=256, metavar="N", help="batch size (default: 256)")
    p.add_argument("--device", default="auto", metavar="DEV", help="cpu, cuda, auto (default: auto)")
    p.add_argument("--out", required=True, metavar="FILE", help="where to write the pruned checkpoint (.pt)")
    return p


def run(args: argparse.Namespace) -> int:
    stages = None
    if args.stages:
        try:
            stages = [int(s) for s in args.stages.split(",") if s.strip()]
        except ValueError:
            raise SenetError(f"--stages takes stage numbers such as 4 or 3,4; got {args.stages!r}") from None
    device = pick_device(args.device)
    model, info = load_model(args.checkpoint, device)
    batches, class_names = eval_batches(args.data, info, args.batch_size, args.max_images, device)
    batches = list(batches)  # evaluated twice (and recorded once): keep the decoded batches
    names = [n for n, _ in attention_blocks(model)]
    specificity = None
    if args.max_specificity is not None:
        with Recorder(model, num_classes=len(class_names)) as rec:
            rec.run(model, batches, device)
        specificity = {n: s.specificity() for n, s in rec.stats.blocks.items()}
    chosen = select_blocks(names, stages=stages, max_specificity=args.max_specificity, specificity=specificity)
    if not chosen:
        raise SenetError("no attention block matches the selection; nothing to prune")
    x1 = torch.zeros(1, *info["input_size"], device=device)
    before = {"params": count_params(model), "macs": count_macs(model, x1), "acc": evaluate(model, batches, device)}
    prune_attention(model, chosen)
    after = {"params": count_params(model), "macs": count_macs(model, x1), "acc": evaluate(model, batches, device)}
    save_pruned(model, info, chosen, args.out)

    report = {
        "pruned": chosen,
        "params_before": before["params"],
        "params_after": after["params"],
        "params_removed": before["params"] - after["params"],
        "macs_before": before["macs"].macs,
        "macs_after": after["macs"].macs,
        "macs_removed": before["macs"].macs - after["macs"].macs,
        "elementwise_removed": before["macs"].elementwise - after["macs"].elementwise,
        "top1_err_before": before["acc"]["top1_err"],
        "top1_err_after": after["acc"]["top1_err"],
        "top5_err_before": before["acc"]["top5_err"],
        "top5_err_after": after["acc"]["top5_err"],
        "images": before["acc"]["images"],
        "specificity": {n: specificity[n] for n in chosen} if specificity else None,
        "out": str(args.out),
    }
    print_table(
        ["", "before", "after", "change"],
        [
            [
                "params",
                f"{report['params_before']:,}",
                f"{report['params_after']:,}",
                f"-{report['params_removed']:,}",
            ],
            ["MACs", f"{report['macs_before']:,}", f"{report['macs_after']:,}", f"-{report['macs_removed']:,}"],
            [
                "elementwise ops",
                f"{before['macs'].elementwise:,}",
                f"{after['macs'].elementwise:,}",
                f"-{report['elementwise_removed']:,}",
            ],
            *[
                [
                    f"top-{k} err %",
                    f"{report[f'top{k}_err_before']:.2f}",
                    f"{report[f'top{k}_err_after']:.2f}",
                    f"{report[f'top{k}_err_after'] - report[f'top{k}_err_before']:+.2f}",
                ]
                for k in (1, 5)
            ],
        ],
        title=f"pruned {len(chosen)} attention block(s): {', '.join(chosen)} ({report['images']} images)",
    )
    print(json.dumps(report))
    return 0
