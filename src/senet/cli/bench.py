"""``senet bench``: params, MACs, latency and throughput of models, with the SE overhead against the baseline twin."""

from __future__ import annotations

import argparse
import functools
import json
from typing import Any

import torch

from senet.bench.report import BENCH_HEADERS, bench_optimized, bench_table, write_bench_report
from senet.bench.speed import bench_models, model_input_size, twin_name
from senet.errors import SenetError
from senet.export.fast import optimize
from senet.models import create_model, list_models
from senet.utils.table import print_table


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "bench",
        help="params, MACs, latency/throughput of models and the attention overhead",
        description=(
            "Time inference (and training with --train) of each model at each batch size / dtype / memory format. "
            "Warm-up iterations are excluded, CUDA timings are synchronised, latency is the median. The overhead "
            "column compares each attention model with its baseline twin (se_resnet50 -> resnet50), benchmarked "
            "automatically when it exists."
        ),
    )
    p.add_argument("--models", required=True, metavar="A,B,...", help="comma-separated model names")
    p.add_argument("--batch-sizes", default="1,32", metavar="N,...", help="batch sizes (default: 1,32)")
    p.add_argument("--dtypes", default="fp32", metavar="D,...", help="fp32, bf16, fp16 (autocast) (default: fp32)")
    p.add_argument("--channels-last", action="store_true", help="also time channels_last (default: contiguous only)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile'd models (default: eager only)")
    p.add_argument(
        "--optimized",
        action="store_true",
        help="also time senet.optimize's choice per model and batch (fp32 inference; prints the compile cost)",
    )
    p.add_argument(
        "--optimize-backends",
        default="auto",
        metavar="B,...",
        help="candidates for --optimized: auto or any of eager, eager_cl, inductor, onnxruntime (default: auto)",
    )
    p.add_argument("--train", action="store_true", help="also time a training step (default: inference only)")
    p.add_argument("--device", default="auto", metavar="DEV", help="cpu, cuda, cuda:1, auto (default: auto)")
    p.add_argument("--input-size", type=int, default=None, metavar="S", help="input S x S (default: the model's)")
    p.add_argument("--warmup", type=int, default=3, metavar="N", help="untimed warm-up iterations (default: 3)")
    p.add_argument("--iters", type=int, default=10, metavar="N", help="timed iterations (default: 10)")
    p.add_argument("--no-twins", action="store_true", help="do not add baseline twins (default: add them)")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads (default: torch's)")
    p.add_argument("--out", default=None, metavar="FILE", help="also write FILE.json and FILE.md (default: none)")
    return p


def run(args: argparse.Namespace) -> int:
    names = _csv(args.models)
    if not names:
        raise SenetError("--models needs at least one model name")
    known = set(list_models())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SenetError(f"unknown model(s) {', '.join(unknown)}; see `senet models` for the list")
    try:
        batch_sizes = [int(b) for b in _csv(args.batch_sizes)]
    except ValueError:
        raise SenetError(f"--batch-sizes must be integers, got {args.batch_sizes!r}") from None
    if not batch_sizes or min(batch_sizes) < 1:
        raise SenetError(f"--batch-sizes must be positive integers, got {args.batch_sizes!r}")
    dtypes = _csv(args.dtypes)
    bad = [d for d in dtypes if d not in ("fp32", "bf16", "fp16")]
    if bad or not dtypes:
        raise SenetError(f"--dtypes takes fp32, bf16, fp16; got {args.dtypes!r}")
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SenetError(f"--device {device} asked for but CUDA is not available; use --device cpu")
    if args.threads:
        torch.set_num_threads(args.threads)

    twins: dict[str, str | None] = {}
    order = list(names)
    if not args.no_twins:
        for n in names:
            twins[n] = twin_name(n, known)
            if twins[n] and twins[n] not in order:
                order.insert(order.index(n), twins[n])  # type: ignore[arg-type]
    models = {n: create_model(n) for n in order}
    sizes = {n: model_input_size(m, n, args.input_size) for n, m in models.items()}
    rows = bench_models(
        models,
        sizes,
        batch_sizes=batch_sizes,
        dtypes=dtypes,
        channels_last=(False, True) if args.channels_last else (False,),
        compile=(False, True) if args.compile else (False,),
        modes=("infer", "train") if args.train else ("infer",),
        device=device,
        warmup=args.warmup,
        iters=args.iters,
        twins=twins,
    )
    if args.optimized:
        opt = functools.partial(optimize, backend=args.optimize_backends, dtype="fp32")
        rows += bench_optimized(models, sizes, rows, batch_sizes, device, opt, warmup=args.warmup, iters=args.iters)
    meta = {"device": device, "torch": torch.__version__, "threads": torch.get_num_threads()}
    title = f"senet bench on {device} (torch {torch.__version__}, {meta['threads']} threads)"
    print_table(BENCH_HEADERS, bench_table(rows), title=title)
    if args.out:
        write_bench_report(args.out, title, meta, rows)
    print(json.dumps({"meta": meta, "rows": rows}))
    return 0
