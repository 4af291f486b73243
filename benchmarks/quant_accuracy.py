"""Top-1 of a trained senet checkpoint in fp32 and INT8 (onnxruntime QDQ, PT2E), gate path fp32 or int8, and speed.

Calibrates on ``--calibration-images`` training images (evenly spaced), evaluates every form on the whole test split
(preprocessed exactly as ``senet predict`` / ``senet eval`` do), and times onnxruntime fp32 vs INT8 at each batch size
(alternating repeats, best of each; one intra-op thread by default: this benchmark runs on shared machines).

    python benchmarks/quant_accuracy.py runs/se_resnet20-s0 --data ../shared/data/cifar10-jpeg.tar.gz
    python benchmarks/quant_accuracy.py RUN --data DATA --pt2e      # also PT2E (slow: torch.export + calibration)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch


def load_split(data: str, pre: dict, split: str | None, limit: int) -> tuple[torch.Tensor, torch.Tensor]:
    from senet.data.decode import decode_rgb
    from senet.data.preprocess import preprocess
    from senet.data.sources import detect_source, eval_split, read_split

    src = detect_source(data)
    raw = read_split(src, split or eval_split(src))
    n = len(raw.labels)
    idx = range(n) if not limit or limit >= n else range(0, n, n // limit)
    xs, ys = [], []
    for i in list(idx)[: limit or None]:
        img = decode_rgb(raw.encoded[i], str(i)) if raw.encoded else torch.from_numpy(raw.pixels[i])
        xs.append(preprocess(img, pre))
        ys.append(raw.labels[i])
    return torch.stack(xs), torch.tensor(ys)


def top1(fn, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out = fn(x[i : i + batch])
            out = torch.as_tensor(np.asarray(out)) if not isinstance(out, torch.Tensor) else out
            correct += int((out.argmax(1) == y[i : i + batch]).sum())
    return 100.0 * correct / len(x)


def best_times(entries: dict, repeats: int, inner: int) -> dict[str, float]:
    for f in entries.values():
        f()
    best = {n: float("inf") for n in entries}
    names = list(entries)
    for r in range(repeats):
        for n in names[r % len(names) :] + names[: r % len(names)]:
            t = time.perf_counter()
            for _ in range(inner):
                entries[n]()
            best[n] = min(best[n], (time.perf_counter() - t) / inner)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="a `senet train` run folder or last.pt")
    ap.add_argument("--data", required=True, help="the dataset the run was trained on")
    ap.add_argument("--calibration-images", type=int, default=256)
    ap.add_argument("--test-limit", type=int, default=0, help="evaluate on this many test images (0: all)")
    ap.add_argument("--pt2e", action="store_true", help="also evaluate PT2E INT8 (X86InductorQuantizer)")
    ap.add_argument("--batches", default="1,64", help="batch sizes for the onnxruntime timing")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from senet.export import OnnxPredictor, export_onnx
    from senet.export.quantize import quantize_onnx, quantize_pt2e
    from senet.resolve import model_from_run
    from senet.runs import load_run
    from senet.utils.hardware import cpu_capability, cpu_model

    trained = load_run(args.checkpoint)
    model = model_from_run(trained).eval()
    pre = trained.preprocess
    calib, _ = load_split(args.data, pre, "train", args.calibration_images)
    x, y = load_split(args.data, pre, None, args.test_limit)
    size = tuple(x.shape[1:])
    res: dict = {"checkpoint": str(args.checkpoint), "test_images": len(x), "calibration_images": len(calib)}
    forms: dict = {"pytorch fp32 (eager)": model}
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = os.path.join(tmp, "fp32.onnx")
        export_onnx(model, fp32, size, fold_bn=True)
        forms["onnxruntime fp32"] = OnnxPredictor(fp32, threads=args.threads)
        for keep in (True, False):
            path = os.path.join(tmp, f"int8-{keep}.onnx")
            quantize_onnx(model, path, calib, keep_gate=keep)
            forms[f"onnxruntime int8 (gate {'fp32' if keep else 'int8'})"] = OnnxPredictor(path, threads=args.threads)
        if args.pt2e:
            for keep in (True, False):
                forms[f"pt2e int8 (gate {'fp32' if keep else 'int8'}, eager)"] = quantize_pt2e(
                    model, calib, keep_gate=keep
                )
        acc = {}
        for name, fn in forms.items():
            acc[name] = top1(fn, x, y)
            print(f"{name:<40} top-1 {acc[name]:6.2f} %  (drop {acc['pytorch fp32 (eager)'] - acc[name]:+.2f})",
                  flush=True)  # fmt: skip
        res["top1"] = acc
        speed = {}
        for b in (int(v) for v in args.batches.split(",")):
            xb = x[:b].contiguous()
            entries = {n: (lambda f=f, xb=xb: f(xb)) for n, f in forms.items() if n.startswith("onnxruntime")}
            entries["pytorch fp32 (eager)"] = lambda xb=xb: model(xb)
            with torch.no_grad():
                t = best_times(entries, args.repeats, 5 if b == 1 else 1)
            speed[b] = {n: 1e3 * s for n, s in t.items()}
            base = t["onnxruntime fp32"]
            for n, s in t.items():
                print(
                    f"batch {b:<4} {n:<40} {1e3 * s:8.3f} ms  (onnxruntime fp32 / this: {base / s:.2f}x)", flush=True
                )
        res["latency_ms"] = speed
    res["machine"] = {"cpu": cpu_model(), "capability": cpu_capability(), "threads": args.threads,
                      "torch": torch.__version__}  # fmt: skip
    print(json.dumps(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    from senet.cli import run_script

    sys.exit(run_script("quant_accuracy.py", main))
