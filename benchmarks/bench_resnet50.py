"""ResNet-50 family inference latency side by side in one run: senet (eager / optimized / compiled), timm, onnxruntime.

For each (dtype, batch) every entry is timed once per repeat, in rotating order, and the median over repeats is
reported, so load from other processes on a shared machine hits all entries alike. Ratios are against senet
``resnet50`` in the same variant and against timm ``seresnet50``.

Variants of the senet models:
    eager     the model as built (eval mode)
    opt       senet.export.optimize_for_inference: conv-BN folded, relu(x * s + shortcut) fused
    compiled  torch.compile(opt model) (Inductor, default mode)
    optimized senet.optimize(model, x): the measured fastest checked form (eager / channels_last / Inductor with
              freezing / onnxruntime; the chosen backend and its compile seconds are printed)
    int8      onnxruntime INT8 (QDQ, gate path fp32) of the BN-folded export, calibrated on random inputs (the
              timing does not depend on the calibration; benchmarks/quant_accuracy.py measures accuracy)
    pt2e      PT2E INT8 (torchao X86InductorQuantizer, gate fp32) compiled by Inductor with freezing

A GEMM micro-benchmark (fp32 matmul, same threads) in the same run gives the machine's peak; each row's achieved
GFLOP/s (2 x MACs / CPU time) is reported as a fraction of it.

    python benchmarks/bench_resnet50.py                                   # batch 1 and 32, fp32 and bf16
    python benchmarks/bench_resnet50.py --batches 1 --dtypes fp32 --repeats 40 --variants eager,opt
    python benchmarks/bench_resnet50.py --batches 1 --dtypes fp32 --threads 1 --models resnet50,se_resnet50 \
        --variants eager,optimized,int8 --timm seresnet50 --onnx resnet50,se_resnet50      # issue 20's rows
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import torch

from senet import __version__
from senet.utils.table import markdown_table

SENET_MODELS = ("resnet50", "se_resnet50", "se_resnet50_caffe", "eca_resnet50", "cbam_resnet50")
TIMM_MODELS = ("resnet50", "seresnet50")
HEADERS = [
    "model",
    "wall ms",
    "CPU ms",
    "% of GEMM peak (CPU)",
    "CPU / senet resnet50 (same variant)",
    "CPU / timm seresnet50",
    "wall / senet resnet50",
    "wall / timm seresnet50",
]
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def _csv(s: str) -> list[str]:
    return [v for v in s.split(",") if v]


def gemm_peak_gflops(dtype: torch.dtype, n: int = 1024, seconds: float = 1.0) -> float:
    """Best-of GFLOP/s of an ``n x n`` matmul in ``dtype`` (this thread's CPU time, so other jobs don't count)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b  # oneDNN / MKL pick and JIT their kernel on the first call
    best, t_end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < t_end or best == float("inf"):
        c0 = time.thread_time()
        a @ b
        best = min(best, max(time.thread_time() - c0, 1e-9))
    return 2 * n**3 / best / 1e9


def build_entries(args: argparse.Namespace, dtype: torch.dtype, batch: int) -> dict[str, Callable[[], object]]:
    """name -> a zero-argument callable running one inference batch."""
    import timm

    from senet.export import optimize_for_inference
    from senet.models import create_model

    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    x = torch.randn(batch, 3, args.size, args.size).to(dtype).contiguous(memory_format=fmt)
    entries: dict[str, Callable[[], object]] = {}

    def add(name: str, model: torch.nn.Module) -> None:
        model = model.eval().to(dtype).to(memory_format=fmt)

        def run(m: torch.nn.Module = model) -> object:
            with torch.inference_mode():
                return m(x)

        entries[name] = run

    for name in _csv(args.models):
        base = create_model(name).eval()
        if "eager" in args.variants:
            add(f"senet {name} eager", base)
        if "opt" in args.variants or "compiled" in args.variants:
            opt = optimize_for_inference(base)
            if "opt" in args.variants:
                add(f"senet {name} opt", opt)
            if "compiled" in args.variants and name in _csv(args.compile_models):
                add(f"senet {name} compiled", torch.compile(opt.to(dtype).to(memory_format=fmt)))
        if "optimized" in args.variants and dtype == torch.float32:
            import senet

            fast = senet.optimize(base, x, backend=args.optimize_backends, dtype="fp32", budget_s=args.optimize_budget)
            print(f"\n[{name}, batch {batch}] {fast.report}", flush=True)
            args.optimize_reports[f"senet {name} optimized"] = fast.report.as_dict()

            def run_fast(f=fast) -> object:
                return f(x)

            entries[f"senet {name} optimized"] = run_fast
        if "int8" in args.variants and dtype == torch.float32:
            entries[f"senet {name} int8"] = _int8_entry(args, base, x)
        if "pt2e" in args.variants and dtype == torch.float32:
            entries[f"senet {name} pt2e-int8"] = _pt2e_entry(base, x)
    for name in _csv(args.timm):
        add(f"timm {name} eager", timm.create_model(name, pretrained=False))
    if args.onnx and dtype == torch.float32:
        import onnxruntime as ort

        from senet.export import export_onnx

        for name in _csv(args.onnx):
            path = os.path.join(args.tmpdir, f"{name}.onnx")
            if not os.path.exists(path):
                export_onnx(create_model(name), path, (3, args.size, args.size), fold_bn=True, atol=1e-3)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = args.threads
            sess = ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
            xn = x.float().contiguous().numpy()

            def run_ort(s: ort.InferenceSession = sess, xn=xn) -> object:
                return s.run(None, {"input": xn})

            entries[f"onnxruntime {name}"] = run_ort
    return entries


def _int8_entry(args: argparse.Namespace, model: torch.nn.Module, x: torch.Tensor) -> Callable[[], object]:
    import onnxruntime as ort

    from senet.export.quantize import quantize_onnx

    path = os.path.join(args.tmpdir, f"int8-{id(model)}.onnx")
    quantize_onnx(model, path, torch.randn(8, *x.shape[1:]), keep_gate=True)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    sess = ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
    xn = x.float().contiguous().numpy()

    def run(s: ort.InferenceSession = sess) -> object:
        return s.run(None, {"input": xn})

    return run


def _pt2e_entry(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], object]:
    """PT2E INT8 (X86InductorQuantizer, gate fp32) compiled by Inductor with freezing (int8 oneDNN kernels)."""
    import torch._inductor.config as inductor_config

    from senet.export.quantize import quantize_pt2e

    q = quantize_pt2e(model, torch.randn(8, *x.shape[1:]), keep_gate=True)
    compiled = torch.compile(q)
    t = time.perf_counter()
    with inductor_config.patch(freezing=True), torch.no_grad():
        compiled(x)
    print(f"pt2e-int8 compile {time.perf_counter() - t:.1f} s", flush=True)

    def run() -> object:
        with inductor_config.patch(freezing=True), torch.no_grad():
            return compiled(x)

    return run


def _macs(name: str, size: int) -> int:
    """Multiply-accumulates of one image through the network an entry runs (timm / ONNX rows: the senet twin)."""
    from senet.bench.flops import count_macs
    from senet.models import create_model

    arch = name.split(" ")[1]
    arch = {"seresnet50": "se_resnet50"}.get(arch, arch)
    return count_macs(create_model(arch).eval(), torch.randn(1, 3, size, size)).macs


def measure(
    entries: dict[str, Callable[[], object]], repeats: int, warmup: int, inner: int
) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds per call, entries alternated within each repeat (rotating start).

    CPU time is this thread's (``time.thread_time``): with ``--threads 1`` it is the work done, without the time spent
    waiting for a core on a shared machine, which is the more stable number there.
    """
    names = list(entries)
    for name in names:
        for _ in range(warmup):
            entries[name]()
    times: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for r in range(repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            t0, c0 = time.perf_counter(), time.thread_time()
            for _ in range(inner):
                entries[name]()
            times[name].append(((time.perf_counter() - t0) / inner, (time.thread_time() - c0) / inner))
    return {n: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t)) for n, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(SENET_MODELS), help="senet models (comma-separated)")
    ap.add_argument("--variants", default="eager,opt,compiled", help="eager, opt, compiled")
    ap.add_argument("--compile-models", default="resnet50,se_resnet50", help="senet models also run compiled")
    ap.add_argument("--timm", default=",".join(TIMM_MODELS), help="timm models (comma-separated, may be empty)")
    ap.add_argument("--onnx", default="resnet50,se_resnet50", help="senet models run in onnxruntime (fp32 only)")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--dtypes", default="fp32,bf16")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--inner", type=int, default=0, help="calls per timing (default: 3 at batch 1, else 1)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    ap.add_argument("--json", default="", help="also write the results to this JSON file")
    ap.add_argument("--optimize-backends", default="auto", help="candidates of the `optimized` variant")
    ap.add_argument("--optimize-budget", type=float, default=4.0, help="seconds senet.optimize may spend timing")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.variants = _csv(args.variants)
    args.optimize_reports = {}
    peaks = {d: gemm_peak_gflops(DTYPES[d]) for d in _csv(args.dtypes)}
    for d, g in peaks.items():
        print(f"GEMM peak ({d}, 1024^3 matmul, {args.threads} threads): {g:.1f} GFLOP/s (CPU time)", flush=True)
    macs_cache: dict[str, int] = {}

    results = []
    with tempfile.TemporaryDirectory() as tmpdir:
        args.tmpdir = tmpdir
        for dname in _csv(args.dtypes):
            for batch in (int(b) for b in _csv(args.batches)):
                entries = build_entries(args, DTYPES[dname], batch)
                med = measure(entries, args.repeats, args.warmup, args.inner or (3 if batch == 1 else 1))
                rows = []
                for name, (sec, cpu) in med.items():
                    key = " ".join(name.split(" ")[:2])
                    if key not in macs_cache:
                        macs_cache[key] = _macs(name, args.size)
                    gflops = 2 * macs_cache[key] * batch / cpu / 1e9
                    variant = name.rsplit(" ", 1)[-1] if name.startswith("senet") else ""
                    plain = med.get(f"senet resnet50 {variant}")
                    timm_se = med.get("timm seresnet50 eager")
                    row = {
                        "dtype": dname,
                        "batch": batch,
                        "model": name,
                        "wall_ms": sec * 1e3,
                        "cpu_ms": cpu * 1e3,
                        "gflops_cpu": gflops,
                        "peak_fraction": gflops / peaks[dname],
                        "vs_resnet50_wall": sec / plain[0] if plain else None,
                        "vs_resnet50_cpu": cpu / plain[1] if plain else None,
                        "vs_timm_seresnet50_wall": sec / timm_se[0] if timm_se else None,
                        "vs_timm_seresnet50_cpu": cpu / timm_se[1] if timm_se else None,
                    }
                    results.append(row)
                    rows.append(
                        [name, f"{row['wall_ms']:.1f}", f"{row['cpu_ms']:.1f}", f"{100 * row['peak_fraction']:.0f}"]
                        + [f"{row[k]:.3f}" if row[k] else "" for k in ("vs_resnet50_cpu", "vs_timm_seresnet50_cpu")]
                        + [f"{row[k]:.3f}" if row[k] else "" for k in ("vs_resnet50_wall", "vs_timm_seresnet50_wall")]
                    )
                print(f"\n### {dname}, batch {batch}\n", flush=True)
                print(markdown_table(HEADERS, rows), flush=True)
    import timm

    print(
        f"\nsenet {__version__}, torch {torch.__version__}, timm {timm.__version__}, threads {args.threads}, "
        f"{'channels_last' if args.channels_last else 'contiguous'}, {args.size}x{args.size}, "
        f"median of {args.repeats} rotating repeats"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": results, "gemm_peak_gflops": peaks, "optimize": args.optimize_reports}, f, indent=1)


if __name__ == "__main__":
    from senet.cli import run_script

    sys.exit(run_script("bench_resnet50.py", main))
