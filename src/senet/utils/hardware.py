"""What the machine can do, and the precision / memory layout that trains fastest on it.

CPUs differ by more than a factor of six in bf16 throughput (measured with a 2048x2048 matmul, torch 2.14.1):

============================================  ===========  ===========  ==========================
CPU (2 cores)                                 fp32 GFLOP/s bf16 GFLOP/s choice
============================================  ===========  ===========  ==========================
Intel Xeon with AMX (amx_bf16, amx_tile)      314          2,017        bf16 autocast, channels_last
AMD EPYC with AVX-512 BF16, no AMX            162          408          bf16 autocast, channels_last
AMD EPYC, AVX2 only                           ~90          ~4x slower   fp32, channels_last
============================================  ===========  ===========  ==========================

The capability comes from torch's own CPU probes (``torch.cpu._is_amx_tile_supported`` and friends), falling back
to the ``flags`` line of ``/proc/cpuinfo``; where neither says anything (a non-x86 CPU), a 0.1-second matmul timing
decides. Every decision carries its reason, which the trainer writes to ``meta.json`` and its first log line.
"""

from __future__ import annotations

import functools
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "CAPABILITIES",
    "Precision",
    "cpu_capability",
    "cpu_model",
    "machine_info",
    "machine_label",
    "auto_precision",
]

#: CPU capability classes, fastest bf16 first. ``unknown``: no x86 flags to read (e.g. an ARM CPU).
CAPABILITIES = ("amx", "avx512_bf16", "avx512", "avx2", "baseline", "unknown")


def _cpuinfo_field(name: str) -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == name:
                return value.strip()
    except OSError:
        pass
    return ""


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or what :func:`platform.processor` says elsewhere."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine() or "unknown CPU"


def _probe(name: str) -> bool | None:
    fn = getattr(torch.cpu, name, None)
    if fn is None:
        return None
    try:
        return bool(fn())
    except Exception:  # a probe that exists but cannot run on this build says nothing
        return None


@functools.lru_cache(maxsize=1)
def cpu_capability() -> str:
    """One of :data:`CAPABILITIES` for this CPU (cached for the process)."""
    probes = {k: _probe(f"_is_{k}_supported") for k in ("amx_tile", "avx512_bf16", "avx512", "avx2")}
    flags = set(_cpuinfo_field("flags").split())
    if not flags and all(v is None for v in probes.values()):
        return "unknown"
    if not flags and platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return "unknown"

    def has(probe: str, *flag_names: str) -> bool:
        got = probes[probe]
        return got if got is not None else all(f in flags for f in flag_names)

    if has("amx_tile", "amx_tile", "amx_bf16"):
        return "amx"
    if has("avx512_bf16", "avx512_bf16"):
        return "avx512_bf16"
    if has("avx512", "avx512f", "avx512bw", "avx512vl"):
        return "avx512"
    if has("avx2", "avx2"):
        return "avx2"
    return "baseline"


def machine_info(device: torch.device | str = "cpu") -> dict[str, Any]:
    """The facts a timing or a result needs beside it: CPU model and capability, GPU name, thread count."""
    device = torch.device(device)
    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cpu_capability": cpu_capability(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
    }
    if device.type == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def machine_label(info: dict[str, Any]) -> str:
    """One line naming the machine of a :func:`machine_info` dict (or a run's ``meta.json``): the GPU, else the CPU
    model and capability (``AMD EPYC (avx2)``)."""
    if info.get("gpu"):
        return str(info["gpu"])
    if info.get("cpu_model"):
        return f"{info['cpu_model']} ({info.get('cpu_capability', '?')})"
    return "unknown"


@dataclass(frozen=True)
class Precision:
    """The resolved training precision and memory layout, with the reason for each."""

    amp: str
    channels_last: bool
    capability: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _bf16_speedup(n: int = 512, repeats: int = 5) -> float:
    """bf16 over fp32 matmul speed on this CPU, timed for ~0.1 s: for CPUs whose flags say nothing."""
    a = torch.randn(n, n)
    times = {}
    for dt in (torch.float32, torch.bfloat16):
        x = a.to(dt)
        x @ x  # warm-up: oneDNN picks and JITs its kernel on the first call
        t = time.perf_counter()
        for _ in range(repeats):
            x @ x
        times[dt] = time.perf_counter() - t
    return times[torch.float32] / max(times[torch.bfloat16], 1e-12)


def auto_precision(
    device: torch.device | str, amp: str = "auto", channels_last: str = "auto", capability: str | None = None
) -> Precision:
    """Resolve ``amp`` (auto | bf16 | fp16 | fp32) and ``channels_last`` (auto | true | false) for ``device``.

    ``auto`` follows the device: bf16 + channels_last on CUDA and on CPUs with AMX or AVX-512 BF16 (bf16 matmul
    2.5-6x fp32 there); fp32 + channels_last on AVX-512 CPUs without BF16 (channels_last measured 1.37x for
    resnet20 in fp32 on AVX-512); fp32, contiguous on AVX2-only CPUs (bf16 ~4x slower than fp32); and where the CPU
    cannot be classified, a short matmul timing decides. An explicit value is kept as given.
    """
    device = torch.device(device)
    if device.type == "cuda":
        cap = "cuda"
        auto_amp, auto_cl, why = "bf16", True, "CUDA device: bf16 autocast, channels_last"
    else:
        cap = capability or cpu_capability()
        if cap in ("amx", "avx512_bf16"):
            auto_amp, auto_cl = "bf16", True
            why = f"CPU has {'AMX' if cap == 'amx' else 'AVX-512 BF16'}: bf16 autocast, channels_last"
        elif cap == "avx512":
            auto_amp, auto_cl, why = "fp32", True, "CPU has AVX-512 without BF16: fp32, channels_last"
        elif cap == "unknown":
            speedup = _bf16_speedup()
            auto_amp = "bf16" if speedup > 1.3 else "fp32"
            auto_cl = auto_amp == "bf16"
            why = f"CPU capability unknown; measured bf16/fp32 matmul speed {speedup:.2f}x: {auto_amp}"
        elif cap == "avx2":
            # fp32 channels_last measured 1.01-1.31x contiguous on AVX2 (benchmarks/layout.py; docs/training.md).
            auto_amp, auto_cl = "fp32", True
            why = "CPU is avx2 (no bf16 units: bf16 would be ~4x slower): fp32, channels_last"
        else:
            auto_amp, auto_cl, why = "fp32", False, f"CPU is {cap} (no bf16 units, layout unmeasured): fp32"
    chosen_amp = auto_amp if amp == "auto" else amp
    if channels_last == "auto":
        # With an explicitly chosen bf16, channels_last is what oneDNN/cuDNN's bf16 kernels want.
        chosen_cl = auto_cl or chosen_amp != "fp32"
    else:
        chosen_cl = channels_last == "true"
    if amp != "auto" or channels_last != "auto":
        why += f"; asked for amp {amp}, channels_last {channels_last}"
    return Precision(chosen_amp, chosen_cl, cap, why)
