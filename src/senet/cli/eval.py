"""``senet eval``: top-1/top-5 error, per-class accuracy and a confusion-matrix plot for a trained checkpoint; PSNR and
SSIM at several noise levels for a denoising checkpoint (``senet train --task denoise``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from senet.analysis.plots import plot_confusion
from senet.data import LoaderConfig, create_loaders
from senet.data.splits import eval_source
from senet.errors import SenetError
from senet.resolve import model_from_run
from senet.runs import load_run
from senet.train import evaluate
from senet.train.config import load_config
from senet.train.evaluate import top_confusions
from senet.train.tasks import DenoiseTask
from senet.train.trainer import resolve_amp, resolve_device
from senet.utils.optional import MissingDependency, warn_skipped
from senet.utils.table import print_table


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "eval",
        help="evaluate a checkpoint: top-1/top-5 error, per-class accuracy, confusion matrix",
        description=(
            "Evaluate a `senet train` checkpoint on the val/ or test/ split of a dataset, on the images the run held "
            "out (--val-fraction / --val-split runs, read from the run's split.json), or on every image of a "
            "split-less class folder (--data FOLDER of <class>/<image>, classes matched by name)."
        ),
    )
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="last.pt of a run, or the run folder")
    p.add_argument(
        "--data",
        metavar="PATH",
        help="dataset, or a folder of <class>/<image> (default: the run's own evaluation images)",
    )
    p.add_argument("--batch-size", type=int, default=500, metavar="N", help="batch size (default: 500)")
    p.add_argument("--device", default="auto", metavar="DEV", help="auto, cpu or cuda (default: auto)")
    p.add_argument(
        "--workers", type=int, metavar="N", help="loader workers, large images (default: 4, at most the CPU cores)"
    )
    p.add_argument("--no-ema", action="store_true", help="use the raw weights even if the run kept an EMA")
    p.add_argument(
        "--tta",
        choices=("none", "flip", "flip_translate"),
        help="test-time augmentation (default: the run's `tta` setting)",
    )
    p.add_argument(
        "--skip-bad-images",
        action="store_true",
        help="leave out undecodable image files and list them (default: stop)",
    )
    p.add_argument(
        "--sigmas",
        type=float,
        nargs="+",
        metavar="S",
        help="denoising runs: the noise levels to evaluate at, 0-255 units (default: the run's eval_sigmas, 15 25 50)",
    )
    p.add_argument(
        "--plot", metavar="PNG", help="confusion matrix image (default: confusion.png beside CKPT; 'none' to skip)"
    )
    return p


def run(args: argparse.Namespace) -> int:
    if args.batch_size <= 0:
        raise SenetError(f"--batch-size must be positive, got {args.batch_size}")
    trained = load_run(args.checkpoint)
    cfg = trained.config
    device = resolve_device(args.device)
    model = model_from_run(trained, use_ema=not args.no_ema).to(device)
    ck = Path(args.checkpoint)
    source = eval_source(args.data, cfg, trained.classes, trained.path)
    path = getattr(source, "path", source)
    denoise = trained.task == "denoise"
    loaders = LoaderConfig.from_run(
        trained,
        args.batch_size,
        device=device,
        workers=args.workers,
        cache_dir=cfg.get("cache_dir"),
        skip_bad_images=args.skip_bad_images,
        # The run's own held-out subset, so the numbers reproduce its end-of-training evaluation.
        eval_subset=int(cfg.get("eval_subset", 0)) if args.data is None else 0,
    )
    data = create_loaders(source, loaders)
    if data.skipped:
        print(f"skipped {len(data.skipped)} undecodable image(s): {', '.join(data.skipped)}", file=sys.stderr)
    if denoise:
        return _eval_denoise(args, trained.config, model, data, device, str(path))
    if data.classes != trained.classes:
        raise SenetError(
            f"{str(path)!r} has classes {data.classes[:5]}..., the checkpoint {trained.classes[:5]}...: "
            "evaluate on the dataset it was trained on"
        )
    amp = resolve_amp("auto", device)
    tta = args.tta or cfg.get("tta", "none")
    r = evaluate(model, data.eval, len(data.classes), device=device, amp=amp, tta=tta)
    names = trained.class_names
    # A class without images here (a subset folder, a domain lacking it) has no accuracy, not 0 %.
    per_class = [a if sum(row) else None for a, row in zip(r["per_class"], r["confusion"])]
    print_table(
        ["class", "accuracy %", "images"],
        [[n, "-" if a is None else f"{a:.2f}", sum(row)] for n, a, row in zip(names, per_class, r["confusion"])],
        title=f"{cfg['model']} on {path} ({r['n']} images)",
    )
    confused = top_confusions(r["confusion"], names, k=10)
    if confused:
        print_table(
            ["true class", "predicted as", "images", "% of true class"],
            [[c["true"], c["predicted"], c["count"], f"{c['share']:.2f}"] for c in confused],
            title="most confused pairs",
        )
    print(f"top-1 error {100 - r['top1']:.2f}%  top-5 error {100 - r['top5']:.2f}%  (top-1 accuracy {r['top1']:.2f}%)")
    plot = None
    if (args.plot or "").lower() != "none":
        plot = Path(args.plot) if args.plot else (ck if ck.is_dir() else ck.parent) / "confusion.png"
        try:
            plot_confusion(r["confusion"], names, plot, f"{cfg['model']}: top-1 error {100 - r['top1']:.2f}%")
            print(f"confusion matrix: {plot}")
        except MissingDependency as exc:  # the numbers above are the result; the image is a side feature
            warn_skipped(exc, "senet eval")
            plot = None
    print(
        json.dumps(
            {
                "model": cfg["model"],
                "checkpoint": str(args.checkpoint),
                "data": str(path),
                "n": r["n"],
                "tta": tta,
                "top1": round(r["top1"], 4),
                "top5": round(r["top5"], 4),
                "top1_err": round(100 - r["top1"], 4),
                "top5_err": round(100 - r["top5"], 4),
                "loss": round(r["loss"], 5),
                "per_class": {n: None if a is None else round(a, 3) for n, a in zip(names, per_class)},
                "top_confusions": confused,
                "confusion_png": str(plot) if plot else None,
            }
        )
    )
    return 0


def _eval_denoise(
    args: argparse.Namespace, run_config: dict[str, Any], model: Any, data: Any, device: Any, path: str
) -> int:
    """PSNR / SSIM of a denoiser at each noise level, beside the noisy input's PSNR (no classes, no plot)."""

    cfg = load_config(base=run_config, overrides={"eval_sigmas": args.sigmas} if args.sigmas else None)
    task = DenoiseTask(cfg)
    r = task.evaluate(model, data.eval, device=device, amp=resolve_amp("auto", device))
    rows = r["sigmas"]
    print_table(
        ["sigma", "noisy PSNR dB", "denoised PSNR dB", "gain dB", "SSIM"],
        [
            [
                s,
                f"{m['psnr_noisy']:.2f}",
                f"{m['psnr']:.2f}",
                f"{m['psnr'] - m['psnr_noisy']:+.2f}",
                f"{m['ssim']:.4f}",
            ]
            for s, m in rows.items()
        ],
        title=f"{cfg.model} on {path} ({r['n']} images, Gaussian noise, trained at sigma {cfg.noise_sigma})",
    )
    out = {
        "model": cfg.model,
        "checkpoint": str(args.checkpoint),
        "data": path,
        "n": r["n"],
        "task": "denoise",
        "by_sigma": {s: {k: round(v, 4) for k, v in m.items()} for s, m in rows.items()},
    }
    print(json.dumps(out))
    return 0
