"""``senet denoise``: clean image files with a denoiser trained by ``senet train --task denoise``; writes PNGs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from senet.data.decode import decode_rgb
from senet.data.preprocess import to_png
from senet.errors import SenetError
from senet.resolve import model_from_run
from senet.runs import load_run
from senet.train.tasks import psnr
from senet.train.trainer import resolve_device
from senet.utils.io import atomic_write_bytes


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "denoise",
        help="denoise image files with a `senet train --task denoise` checkpoint (writes PNGs)",
        description=(
            "Run a denoising checkpoint on each image (whole image, any size), write <OUT>/<name>.png. With --sigma "
            "the clean image is first corrupted with Gaussian noise of that level (0-255 units, seeded), the noisy "
            "input is written too (<name>_noisy.png), and the PSNR of both against the original is printed."
        ),
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="last.pt of a denoising run, or the run folder")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the denoised PNGs (created if missing)")
    p.add_argument("--sigma", type=float, metavar="S", help="add Gaussian noise of this sigma first (default: none)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the --sigma noise (default: 0)")
    p.add_argument("--device", default="cpu", metavar="DEV", help="cpu or cuda (default: cpu)")
    p.add_argument("--no-ema", action="store_true", help="use the raw weights even if the run kept an EMA")
    return p


def _check_outputs(images: list[str], out_dir: Path, noisy: bool) -> None:
    """Refuse, before anything is written, a run where one output would overwrite another output or an input."""
    inputs = {Path(p).resolve(): p for p in images}
    written: dict[Path, tuple[Path, str]] = {}
    for path in images:
        src, stem = Path(path).resolve(), Path(path).stem
        for name in (f"{stem}.png", f"{stem}_noisy.png") if noisy else (f"{stem}.png",):
            out = (out_dir / name).resolve()
            if out in inputs:
                raise SenetError(
                    f"--out {str(out_dir)!r} would overwrite the input {inputs[out]!r}: choose another --out folder"
                )
            if out in written and written[out][0] != src:  # the same file named twice is harmless
                raise SenetError(
                    f"inputs {written[out][1]!r} and {path!r} would both be written to {str(out)!r}: "
                    "rename one or denoise them in separate runs"
                )
            written[out] = (src, path)


def run(args: argparse.Namespace) -> int:
    trained = load_run(args.checkpoint)
    if trained.task != "denoise":
        raise SenetError(
            f"{args.checkpoint!r} is not a denoising run (task {trained.config.get('task')!r}): "
            "train one with `senet train --task denoise`"
        )
    if args.sigma is not None and args.sigma < 0:
        raise SenetError(f"--sigma must not be negative, got {args.sigma}")
    out_dir = Path(args.out)
    _check_outputs(args.images, out_dir, noisy=args.sigma is not None)
    device = resolve_device(args.device)
    model = model_from_run(trained, use_ema=not args.no_ema).to(device)
    out_dir.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(args.seed)
    results = []
    for path in args.images:
        p = Path(path)
        if not p.is_file():
            raise SenetError(f"image {path!r} does not exist")
        clean = decode_rgb(p.read_bytes(), str(path)).float().div(255).unsqueeze(0)
        x = clean
        if args.sigma is not None:
            x = clean + torch.randn(clean.shape, generator=g) * (args.sigma / 255.0)
        with torch.no_grad():
            y = model(x.to(device)).float().cpu().clamp(0, 1)
        row: dict[str, Any] = {"image": str(path), "out": str(out_dir / f"{p.stem}.png")}
        atomic_write_bytes(out_dir / f"{p.stem}.png", to_png(y[0]))
        if args.sigma is not None:
            noisy_png = out_dir / f"{p.stem}_noisy.png"
            atomic_write_bytes(noisy_png, to_png(x[0].clamp(0, 1)))
            row.update(
                noisy=str(noisy_png),
                psnr_noisy=round(float(psnr(x, clean).mean()), 4),
                psnr=round(float(psnr(y, clean).mean()), 4),
            )
            print(f"{path}: {row['psnr_noisy']:.2f} dB noisy -> {row['psnr']:.2f} dB denoised  {row['out']}")
        else:
            print(f"{path} -> {row['out']}")
        results.append(row)
    print(json.dumps({"checkpoint": str(args.checkpoint), "sigma": args.sigma, "images": results}))
    return 0
