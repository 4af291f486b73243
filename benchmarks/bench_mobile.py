"""Batch-1 CPU latency of MobileNetV3-Large / EfficientNet-B0 with SE vs no attention vs ECA, side by side.

Batch 1 is where SE costs most relative to its FLOPs: its squeeze is a reduction over the whole map and its two FCs
are tiny matrix-vector products, so per-call overhead and memory passes dominate. The variants of one model are
timed alternately, repeat by repeat, and the median is reported, so load from other processes hits all alike.
Prints a Markdown table with each variant's median and its ratio to the plain network.

    python benchmarks/bench_mobile.py                          # 1 thread, fp32, 224 px, 15 repeats of 10 calls
    python benchmarks/bench_mobile.py --threads 2 --repeats 30 --optimize
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import torch

from senet import __version__
from senet.models import create_model
from senet.utils.table import markdown_table

MODELS = ("mobilenet_v3_large", "efficientnet_b0")
VARIANTS = ("none", "se", "eca")


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def build(name: str, attn: str, optimize: bool) -> torch.nn.Module:
    model = create_model(name, attn_layer=attn).eval()
    if optimize:
        from senet.export.optimize import optimize_for_inference

        model = optimize_for_inference(model)
    return model


def measure(models: dict[str, torch.nn.Module], x: torch.Tensor, repeats: int, calls: int) -> dict[str, float]:
    """Median ms per call of each model, the models timed in turn within every repeat."""
    times: dict[str, list[float]] = {k: [] for k in models}
    with torch.inference_mode():
        for m in models.values():  # warm-up: allocator, oneDNN primitive caches
            for _ in range(3):
                m(x)
        for _ in range(repeats):
            for k, m in models.items():
                t = time.perf_counter()
                for _ in range(calls):
                    m(x)
                times[k].append((time.perf_counter() - t) * 1e3 / calls)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> list[list[str]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--calls", type=int, default=10)
    p.add_argument("--optimize", action="store_true", help="time senet.export.optimize_for_inference'd models")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x = torch.randn(1, 3, a.size, a.size)
    rows = []
    for name in a.models:
        med = measure({v: build(name, v, a.optimize) for v in VARIANTS}, x, a.repeats, a.calls)
        for v in VARIANTS:
            rows.append([name, v, f"{med[v]:.2f}", f"{med[v] / med['none']:.3f}"])
    print(
        f"senet {__version__}, torch {torch.__version__}, {_cpu()}, {a.threads} thread(s), fp32, batch 1, "
        f"{a.size}x{a.size}, median of {a.repeats} repeats x {a.calls} calls{', optimized' if a.optimize else ''}"
    )
    print(markdown_table(["model", "attention", "ms / image", "vs none"], rows))
    return rows


if __name__ == "__main__":
    from senet.cli import run_script

    sys.exit(run_script("bench_mobile.py", main))
