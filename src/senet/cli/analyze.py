"""``senet analyze``: record the excitations of a trained model over a dataset, save statistics and the figures."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from senet.analysis import Recorder, add_identity_distance, default_blocks, save_stats
from senet.analysis._runtime import eval_batches, load_model, pick_device
from senet.analysis.plots import plot_excitation_figures
from senet.errors import SenetError
from senet.utils.optional import MissingDependency, warn_skipped
from senet.utils.table import print_table


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "analyze",
        help="excitation statistics and figures of a trained model (paper Sec. 7.2)",
        description=(
            "Run a checkpoint over a dataset with hooks on every attention gate, stream per-class mean/std of the "
            "excitations into OUT/excitations.npz, and draw the paper's figures: class-wise mean excitation per "
            "channel for chosen blocks, within-class mean ± std across depth, and class-specificity / saturation "
            "(share of values < 0.1 or > 0.9) of every block. The table also gives each block's mean gate and how "
            "far its channel scale is from identity on average (for blocks retrofitted with init=identity, with "
            "their learned gamma): did an inserted block learn anything?"
        ),
    )
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="checkpoint written by senet train")
    p.add_argument(
        "--data", default=None, metavar="PATH", help="dataset (folder or archive) (default: as senet train)"
    )
    p.add_argument("--blocks", default=None, metavar="A,B,...", help="blocks to plot (default: the paper's choice)")
    p.add_argument("--classes", default=None, metavar="A,B,...", help="classes to draw (default: first four)")
    p.add_argument("--max-images", type=int, default=None, metavar="N", help="use the first N images (default: all)")
    p.add_argument("--batch-size", type=int, default=256, metavar="N", help="batch size (default: 256)")
    p.add_argument("--device", default="auto", metavar="DEV", help="cpu, cuda, auto (default: auto)")
    p.add_argument("--out", default="analysis", metavar="DIR", help="output folder (default: analysis)")
    return p


def _pick_classes(spec: str | None, class_names: list[str]) -> list[int]:
    if not spec:
        return list(range(min(4, len(class_names))))
    out = []
    for c in (s.strip() for s in spec.split(",") if s.strip()):
        if c in class_names:
            out.append(class_names.index(c))
        elif c.isdigit() and int(c) < len(class_names):
            out.append(int(c))
        else:
            raise SenetError(f"--classes: unknown class {c!r}; this dataset has: {', '.join(class_names)}")
    return out


def _describe(info: dict[str, Any]) -> str:
    kwargs = (info.get("config") or {}).get("model_kwargs") or {}
    return info.get("model", "model") + (f" {kwargs}" if kwargs else "")


def run(args: argparse.Namespace) -> int:
    device = pick_device(args.device)
    model, info = load_model(args.checkpoint, device)
    batches, class_names = eval_batches(args.data, info, args.batch_size, args.max_images, device)
    out = Path(args.out)
    with Recorder(model, num_classes=len(class_names), class_names=class_names) as rec:
        seen = rec.run(model, batches, device)
    names = rec.names
    chosen = [b.strip() for b in args.blocks.split(",")] if args.blocks else default_blocks(names)
    unknown = [b for b in chosen if b not in names]
    if unknown:
        raise SenetError(f"--blocks: unknown block(s) {', '.join(unknown)}; this model has: {', '.join(names)}")
    stats = rec.stats
    npz = save_stats(stats, out / "excitations.npz")
    classes = _pick_classes(args.classes, class_names)
    summary = add_identity_distance(stats.summary(), model)
    try:
        figs = plot_excitation_figures(stats, chosen, out, classes=classes, class_names=class_names)
    except MissingDependency as exc:  # the statistics (npz, table) are the result; the figures are extra
        warn_skipped(exc, "senet analyze")
        figs = []
    print_table(
        ["block", "C", "class-specificity", "saturation (<0.1 | >0.9)", "mean gate", "gamma", "mean |scale - 1|"],
        [
            [
                r["block"],
                r["channels"],
                f"{r['specificity']:.3f}",
                f"{r['saturation']:.3f} ({r['saturation_low']:.3f} | {r['saturation_high']:.3f})",
                f"{r['gate_mean']:.3f}",
                "–" if r["gamma"] is None else f"{r['gamma']:.4f}",
                f"{r['scale_dev']:.4f}",
            ]
            for r in summary
        ],
        title=f"excitations of {_describe(info)} over {seen} images (evaluation split)",
    )
    print(
        json.dumps(
            {"images": seen, "npz": str(npz), "figures": [str(f) for f in figs], "plotted": chosen, "blocks": summary}
        )
    )
    return 0
