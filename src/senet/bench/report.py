"""Tables of ``senet bench`` results, and rows for ``senet.optimize``'s choice timed like the others.

Rows are the dicts of :func:`senet.bench.speed.bench_models` (``model``, ``mode``, ``batch_size``, ``dtype``,
``channels_last``, ``compiled``, ``params``, ``macs``, ``latency_ms``, ``throughput``, ``overhead_pct``, ``twin``).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from senet.utils.io import atomic_write_text
from senet.utils.table import markdown_table

__all__ = ["BENCH_HEADERS", "bench_table", "write_bench_report", "bench_optimized"]

BENCH_HEADERS = ["model", "mode", "batch", "dtype", "layout", "compiled", "params", "GMACs", "ms/batch", "img/s",
                 "vs twin"]  # fmt: skip


def bench_table(rows: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """The printed cells of each row, in :data:`BENCH_HEADERS` order."""
    return [
        [
            r["model"],
            r["mode"],
            r["batch_size"],
            r["dtype"],
            "NHWC" if r["channels_last"] else "NCHW",
            r["compiled"] if isinstance(r["compiled"], str) else ("yes" if r["compiled"] else "no"),
            f"{r['params'] / 1e6:.3f}M",
            f"{r['macs'] / 1e9:.3f}",
            f"{r['latency_ms']:.2f}",
            f"{r['throughput']:.1f}",
            "–" if r["overhead_pct"] is None else f"{r['overhead_pct']:+.1f}% ({r['twin']})",
        ]
        for r in rows
    ]


def write_bench_report(
    out: str | os.PathLike[str], title: str, meta: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]
) -> tuple[Path, Path]:
    """``OUT.json`` (meta and rows) and ``OUT.md`` (the table under ``title``), each written atomically.

    Any suffix of ``out`` is replaced (``bench.md`` -> ``bench.json`` + ``bench.md``).
    """
    base = Path(os.path.splitext(os.path.abspath(out))[0])
    json_path, md_path = base.with_name(base.name + ".json"), base.with_name(base.name + ".md")
    atomic_write_text(json_path, json.dumps({"meta": dict(meta), "rows": list(rows)}, indent=1))
    atomic_write_text(md_path, f"{title}\n\n{markdown_table(BENCH_HEADERS, bench_table(rows))}\n")
    return json_path, md_path


def _time_calls(fn: Callable[[torch.Tensor], Any], x: torch.Tensor, warmup: int, iters: int) -> list[float]:
    for _ in range(warmup):
        fn(x)
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn(x)
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return times


def bench_optimized(
    models: Mapping[str, nn.Module],
    sizes: Mapping[str, tuple[int, ...]],
    rows: Sequence[Mapping[str, Any]],
    batch_sizes: Sequence[int],
    device: str,
    optimize: Callable[[nn.Module, torch.Tensor], Any],
    *,
    warmup: int = 3,
    iters: int = 10,
) -> list[dict[str, Any]]:
    """One row per (model, batch): ``optimize(model, x)``'s result (a module with a ``report``, as
    :func:`senet.optimize` returns), timed like the eager rows (median of ``iters`` calls).

    ``optimize`` is passed in (``senet bench`` gives ``senet.optimize`` with its backends) so this package stays
    below :mod:`senet.export`. The compile cost of each choice goes to stderr.
    """
    out: list[dict[str, Any]] = []
    eager = {(r["model"], r["batch_size"]): r for r in rows if r["mode"] == "infer" and not r["compiled"]}
    for bs in batch_sizes:
        timed: dict[str, float] = {}
        for name, model in models.items():
            x = torch.randn(bs, *sizes[name], device=device)
            t0 = time.perf_counter()
            fast = optimize(model.to(device), x)
            total = time.perf_counter() - t0
            rep = fast.report
            print(
                f"senet bench: optimized {name} batch {bs}: {rep.backend} "
                f"({'cached decision' if rep.cache_hit else 'measured'}), compile {rep.compile_s:.1f} s, "
                f"optimize() total {total:.1f} s, max |diff| vs eager {rep.max_abs_diff:.2g}",
                file=sys.stderr,
                flush=True,
            )
            times = _time_calls(fast, x, warmup, iters)
            med = timed[name] = statistics.median(times)
            out.append(
                {
                    **eager.get((name, bs), {}),
                    "model": name,
                    "mode": "infer",
                    "batch_size": bs,
                    "dtype": rep.dtype,
                    "channels_last": rep.backend.startswith("eager_cl"),
                    "compiled": f"opt:{rep.backend}",
                    "latency_ms": 1e3 * med,
                    "latency_p90_ms": 1e3 * sorted(times)[int(round(0.9 * (len(times) - 1)))],
                    "throughput": bs / med if med > 0 else float("inf"),
                    "iters": iters,
                    "optimize": {"backend": rep.backend, "compile_s": rep.compile_s, "total_s": total,
                                 "cache_hit": rep.cache_hit, "max_abs_diff": rep.max_abs_diff},
                }
            )  # fmt: skip
        for row in out[-len(models) :]:
            twin = row.get("twin")
            row["overhead_pct"] = 100.0 * (row["latency_ms"] / (1e3 * timed[twin]) - 1.0) if twin in timed else None
    return out
