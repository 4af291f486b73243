"""Time senet's attention blocks against timm's equivalents, side by side in one run.

For each (block, dtype, memory format) the two implementations are timed alternately, repeat by repeat, and the
median is reported, so load from other processes hits both sides alike. Prints a Markdown table with the ratio
senet / timm (< 1 means senet is faster).

    python benchmarks/bench_blocks.py                      # N=32, C=256, 56x56, forward (inference) and train step
    python benchmarks/bench_blocks.py --repeats 30 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import torch
from timm.layers import EcaModule, SEModule
from timm.layers.cbam import CbamModule

from senet import __version__
from senet.layers import CBAM, EfficientChannelAttn, SqueezeExcite
from senet.utils.table import markdown_table


def pairs(c: int) -> dict[str, tuple[torch.nn.Module, torch.nn.Module]]:
    # Same widths on both sides: C/16 = 16 for C=256 with either rounding rule.
    return {
        "se": (SqueezeExcite(c), SEModule(c, rd_ratio=1 / 16)),
        "eca": (EfficientChannelAttn(c), EcaModule(c)),
        "cbam": (CBAM(c), CbamModule(c, rd_ratio=1 / 16)),
    }


def step(m: torch.nn.Module, x: torch.Tensor, mode: str) -> Callable[[], object]:
    """One inference forward, or one training forward + backward, of ``m`` on ``x``."""
    m.train(mode != "forward")
    if mode == "forward":

        def run() -> object:
            with torch.no_grad():
                return m(x)

        return run
    xg = x.detach().requires_grad_(True)

    def run_train() -> object:
        m.zero_grad(set_to_none=True)
        m(xg).sum().backward()
        return None

    return run_train


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall, this thread's CPU) seconds of one call; with --threads 1 the CPU time ignores waiting for a core."""
    t0, c0 = time.perf_counter(), time.thread_time()
    fn()
    return time.perf_counter() - t0, time.thread_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--channels", type=int, default=256)
    ap.add_argument("--size", type=int, default=56)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    worst = worst_cpu = 0.0
    for dtype in (torch.float32, torch.bfloat16):
        for fmt_name, fmt in (("contiguous", torch.contiguous_format), ("channels_last", torch.channels_last)):
            x = torch.randn(args.batch, args.channels, args.size, args.size, dtype=dtype)
            x = x.contiguous(memory_format=fmt)
            for kind, (ours, theirs) in pairs(args.channels).items():
                ours, theirs = ours.to(dtype).eval(), theirs.to(dtype).eval()
                for mode in ("forward", "fwd+bwd"):
                    fo, ft = step(ours, x, mode), step(theirs, x, mode)
                    for _ in range(args.warmup):
                        fo(), ft()
                    to, tt = [], []
                    for _ in range(args.repeats):  # alternate so both sides see the same machine load
                        to.append(timed(fo))
                        tt.append(timed(ft))
                    mo, mt = statistics.median(w for w, _ in to) * 1e3, statistics.median(w for w, _ in tt) * 1e3
                    co, ct = statistics.median(c for _, c in to) * 1e3, statistics.median(c for _, c in tt) * 1e3
                    ratio = mo / mt
                    worst = max(worst, ratio)
                    worst_cpu = max(worst_cpu, co / ct)
                    rows.append(
                        [
                            kind,
                            str(dtype).removeprefix("torch."),
                            fmt_name,
                            mode,
                            f"{mo:.2f}",
                            f"{mt:.2f}",
                            f"{ratio:.2f}",
                            f"{co:.2f}",
                            f"{ct:.2f}",
                            f"{co / ct:.2f}",
                        ]
                    )
                    print(" | ".join(rows[-1]), flush=True)
    print()
    print(
        f"senet {__version__}, timm {__import__('timm').__version__}, torch {torch.__version__}, "
        f"threads {args.threads}, N={args.batch}, C={args.channels}, {args.size}x{args.size}, "
        f"median of {args.repeats} alternating repeats"
    )
    headers = ["block", "dtype", "layout", "pass", "senet ms", "timm ms", "senet / timm"]
    headers += ["senet CPU ms", "timm CPU ms", "CPU senet / timm"]
    print(markdown_table(headers, rows))
    print(f"\nworst ratio senet/timm: wall {worst:.2f}, CPU {worst_cpu:.2f}")


if __name__ == "__main__":
    from senet.cli import run_script

    sys.exit(run_script("bench_blocks.py", main))
