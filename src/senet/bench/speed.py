"""Latency and throughput of models: inference and training, CPU or GPU, fp32/bf16, NCHW/channels_last, eager/compiled.

Timing rules: warm-up iterations (which include ``torch.compile``'s tracing and cuDNN autotuning) are excluded; on
CUDA every timed region is bracketed by ``torch.cuda.synchronize()`` so the clock measures kernels, not launches;
the reported latency is the median over timed iterations (robust to a noisy shared machine), throughput is
``batch / median``.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from senet.layers import list_attn

from .flops import count_macs, count_params

__all__ = [
    "SpeedResult",
    "time_model",
    "bench_models",
    "twin_name",
    "model_input_size",
    "ATTN_PREFIXES",
    "attn_prefixes",
]


def attn_prefixes() -> tuple[str, ...]:
    """Name prefixes that mark an attention variant of a baseline model: every registered kind, with an underscore
    (``se_resnet50`` -> ``resnet50``) and without (timm's ``seresnext50_32x4d``, ``ecaresnet50d``); longest first."""
    kinds = sorted(list_attn(), key=len, reverse=True)
    return tuple(f"{k}_" for k in kinds) + tuple(kinds)


#: The prefixes of the kinds registered at import (kept for callers of the old constant; :func:`twin_name` asks
#: :func:`attn_prefixes` each time, so kinds registered later count too).
ATTN_PREFIXES = attn_prefixes()

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class SpeedResult:
    """One timed configuration. Times in milliseconds per batch; throughput in images per second."""

    model: str
    mode: str
    batch_size: int
    dtype: str
    channels_last: bool
    compiled: bool
    device: str
    latency_ms: float
    latency_p90_ms: float
    throughput: float
    iters: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def twin_name(name: str, known: Iterable[str]) -> str | None:
    """The baseline twin of an attention model: strip an attention prefix and keep it if the model exists."""
    known = set(known)
    for prefix in attn_prefixes():
        if name.startswith(prefix) and name[len(prefix) :] in known and name[len(prefix) :] != name:
            return name[len(prefix) :]
    return None


def model_input_size(model: nn.Module, name: str, override: int | None = None) -> tuple[int, int, int]:
    """``(C, H, W)`` the model expects: ``override``, else its pretrained/default cfg, else 32 for CIFAR nets, 224."""
    if override:
        return (3, override, override)
    for attr in ("pretrained_cfg", "default_cfg", "cfg"):
        cfg = getattr(model, attr, None)
        size = cfg.get("input_size") if isinstance(cfg, dict) else getattr(cfg, "input_size", None)
        if size:
            return tuple(int(s) for s in size)  # type: ignore[return-value]
    size = getattr(model, "input_size", None)
    if size:
        return tuple(int(s) for s in size) if not isinstance(size, int) else (3, size, size)  # type: ignore[return-value]
    cifar = getattr(model, "num_classes", None) in (10, 100) or "cifar" in name
    return (3, 32, 32) if cifar else (3, 224, 224)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_model(
    model: nn.Module,
    input_shape: tuple[int, ...],
    *,
    name: str = "model",
    mode: str = "infer",
    dtype: str = "fp32",
    channels_last: bool = False,
    compile: bool = False,
    device: str | torch.device = "cpu",
    warmup: int = 3,
    iters: int = 10,
    num_classes: int | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> SpeedResult:
    """Time ``model`` on random inputs of ``input_shape`` (batch first).

    ``mode="infer"`` times a no-grad forward in eval mode; ``mode="train"`` times forward + cross-entropy backward +
    an SGD step in train mode (on a deep copy, so the caller's weights are untouched). ``dtype="bf16"``/``"fp16"``
    uses autocast, the usual way to run mixed precision.
    """
    if mode not in ("infer", "train"):
        raise ValueError(f"mode must be 'infer' or 'train', got {mode!r}")
    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of: {', '.join(_DTYPES)}")
    if warmup < 0 or iters < 1:
        raise ValueError(f"need warmup >= 0 and iters >= 1, got {warmup} and {iters}")
    dev = torch.device(device)
    model = copy.deepcopy(model).to(dev)
    fmt = torch.channels_last if channels_last and len(input_shape) == 4 else torch.contiguous_format
    model = model.to(memory_format=fmt)
    x = torch.randn(*input_shape, device=dev).contiguous(memory_format=fmt)
    run_model: Callable[[torch.Tensor], torch.Tensor] = torch.compile(model) if compile else model
    amp_dtype = _DTYPES[dtype]
    use_amp = amp_dtype != torch.float32

    if mode == "infer":
        model.eval()

        def step() -> None:
            with torch.no_grad(), torch.autocast(dev.type, dtype=amp_dtype, enabled=use_amp):
                run_model(x)

    else:
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        with torch.no_grad():
            n_out = num_classes or int(model.eval()(x[:1]).shape[-1])
        model.train()
        y = torch.randint(0, n_out, (input_shape[0],), device=dev)

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            with torch.autocast(dev.type, dtype=amp_dtype, enabled=use_amp):
                loss = nn.functional.cross_entropy(run_model(x), y)
            loss.backward()
            opt.step()

    for _ in range(warmup):
        step()
    _sync(dev)
    times = []
    for _ in range(iters):
        t0 = clock()
        step()
        _sync(dev)
        times.append(clock() - t0)
    med = statistics.median(times)
    p90 = sorted(times)[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))]
    return SpeedResult(
        model=name,
        mode=mode,
        batch_size=int(input_shape[0]),
        dtype=dtype,
        channels_last=bool(channels_last),
        compiled=bool(compile),
        device=str(dev),
        latency_ms=1000 * med,
        latency_p90_ms=1000 * p90,
        throughput=input_shape[0] / med if med > 0 else float("inf"),
        iters=iters,
    )


def bench_models(
    models: dict[str, nn.Module],
    input_size: dict[str, tuple[int, ...]],
    *,
    batch_sizes: Iterable[int] = (1, 32),
    dtypes: Iterable[str] = ("fp32",),
    channels_last: Iterable[bool] = (False,),
    compile: Iterable[bool] = (False,),
    modes: Iterable[str] = ("infer",),
    device: str = "cpu",
    warmup: int = 3,
    iters: int = 10,
    twins: dict[str, str | None] | None = None,
) -> list[dict[str, Any]]:
    """Params, MACs and timings for every model and configuration, with the overhead vs the baseline twin.

    ``input_size[name]`` is ``(C, H, W)``. ``twins[name]`` names the baseline model in ``models`` (or ``None``); its
    timing under the same configuration gives ``overhead_pct = 100 * (latency / twin latency - 1)`` and
    ``params_overhead_pct`` / ``macs_overhead_pct`` likewise.
    """
    twins = twins or {}
    static: dict[str, dict[str, int]] = {}
    for name, m in models.items():
        cost = count_macs(m, torch.randn(1, *input_size[name]))
        static[name] = {"params": count_params(m), "macs": cost.macs, "elementwise": cost.elementwise}
    rows: list[dict[str, Any]] = []
    timed: dict[tuple, float] = {}
    for mode in modes:
        for bs in batch_sizes:
            for dt in dtypes:
                for cl in channels_last:
                    for comp in compile:
                        for name, m in models.items():
                            r = time_model(
                                m, (bs, *input_size[name]), name=name, mode=mode, dtype=dt, channels_last=cl,
                                compile=comp, device=device, warmup=warmup, iters=iters,
                            )  # fmt: skip
                            timed[(name, mode, bs, dt, cl, comp)] = r.latency_ms
                            rows.append({**r.as_dict(), **static[name], "twin": twins.get(name)})
    for row in rows:
        twin = row["twin"]
        key = (twin, row["mode"], row["batch_size"], row["dtype"], row["channels_last"], row["compiled"])
        if twin and key in timed:
            row["overhead_pct"] = 100.0 * (row["latency_ms"] / timed[key] - 1.0)
            row["params_overhead_pct"] = 100.0 * (row["params"] / static[twin]["params"] - 1.0)
            row["macs_overhead_pct"] = 100.0 * (row["macs"] / static[twin]["macs"] - 1.0)
        else:
            row["overhead_pct"] = row["params_overhead_pct"] = row["macs_overhead_pct"] = None
    return rows
