"""``senet.optimize``: the fastest *checked* inference form of a model on this machine, chosen by measuring.

>>> fast = senet.optimize(model, torch.randn(1, 3, 224, 224))   # doctest: +SKIP
>>> print(fast.report)                                           # backend, per-candidate latency, compile s, diff
>>> logits = fast(images)                                        # same shape as the example inputs

Candidates (each built from the eval-mode model with BatchNorm folded into the convs, :func:`fold_bn`):

``eager``
    :func:`optimize_for_inference` (folded BN, fused attention tails), contiguous memory.
``eager_cl``
    the same in channels_last (4-D inputs only).
``inductor``
    ``torch.compile`` (Inductor) with ``freezing`` on: weights become constants, so Inductor folds and pre-packs them
    for oneDNN. Costs tens of seconds of compilation on the first call, which the report shows.
``onnxruntime``
    the ONNX export (:func:`export_onnx`, static shape) in an onnxruntime session; CPU, single input only, skipped
    when onnxruntime is not installed.
``*_bf16``
    ``eager`` / ``inductor`` with bf16 weights and inputs; only tried with ``dtype="bf16"`` or, under ``"auto"``,
    where bf16 pays: on CUDA and on CPUs with AMX or AVX-512 BF16 (:func:`senet.utils.hardware.cpu_capability`).
    On AVX2-only CPUs bf16 matmuls are ~4x slower than fp32, so ``auto`` never tries it there.

Every candidate's output on the example inputs is compared with the eval-mode model's (fp32): a candidate whose max
abs difference exceeds ``tolerance`` (default :data:`TOLERANCE` times ``max(1, max |reference|)``) is rejected. The
fastest accepted one wins (best of a few alternating timing rounds, so load from other processes hits every candidate
alike). The decision is cached on disk per (model architecture, input shapes, dtype, backend request, machine, torch
version) under ``<cache dir>/optimize/``: a second call builds only the chosen form, checks it again and skips the
measuring. The compiled object itself lives in memory only.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import tempfile
import time
import types
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from senet.data.sources import default_cache_dir
from senet.errors import SenetError
from senet.utils.hardware import cpu_capability, machine_info
from senet.utils.io import atomic_write_text
from senet.utils.optional import MissingDependency, require

from .onnx import OnnxPredictor, export_onnx
from .optimize import fold_bn, optimize_for_inference

__all__ = ["optimize", "OptimizedModel", "OptimizeReport", "CandidateResult", "TOLERANCE", "BACKENDS"]

#: Backends ``optimize`` knows; ``"auto"`` tries every one that applies.
BACKENDS = ("eager", "eager_cl", "inductor", "onnxruntime")
#: Relative tolerance of the output check, per dtype: ``max |out - ref| <= TOLERANCE[dtype] * max(1, max |ref|)``.
#: fp32 allows for reassociation in folded / fused / compiled kernels; bf16 has an 8-bit mantissa (~0.4 % per op).
TOLERANCE = {"fp32": 1e-3, "bf16": 6e-2}
_CACHE_VERSION = 1


@dataclass
class CandidateResult:
    """One candidate: how long one call took, how long it took to build, and how far it is from eager."""

    name: str
    dtype: str
    latency_ms: float | None = None
    compile_s: float = 0.0
    max_abs_diff: float | None = None
    ok: bool = False
    reason: str = ""


@dataclass
class OptimizeReport:
    """What :func:`optimize` chose and why."""

    backend: str
    dtype: str
    tolerance: float
    cache_hit: bool
    cache_path: str | None
    compile_s: float
    max_abs_diff: float | None
    candidates: list[CandidateResult] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        lines = [
            f"senet.optimize: chose {self.backend} ({self.dtype}) "
            f"{'from the cache' if self.cache_hit else 'by measuring'}; build/compile {self.compile_s:.1f} s, "
            f"max |diff| vs eager {_fmt(self.max_abs_diff)} (tolerance {self.tolerance:.3g})"
        ]
        for c in self.candidates:
            lat = f"{c.latency_ms:.2f} ms" if c.latency_ms is not None else "-"
            status = "ok" if c.ok else f"rejected: {c.reason}"
            lines.append(
                f"  {c.name:<16} {lat:>12}  compile {c.compile_s:6.1f} s  diff {_fmt(c.max_abs_diff):>9}  {status}"
            )
        return "\n".join(lines)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"


class OptimizedModel:
    """The chosen inference form: call it like the model (no grad; inputs cast to its dtype, outputs to fp32).

    Attributes:
        report: the :class:`OptimizeReport`.
        module: the underlying ``nn.Module`` (compiled or not), ``None`` for onnxruntime.
    """

    def __init__(self, fn: Callable[..., torch.Tensor], report: OptimizeReport, module: nn.Module | None) -> None:
        self._fn = fn
        self.report = report
        self.module = module

    @property
    def backend(self) -> str:
        return self.report.backend

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self._fn(*inputs)

    def __repr__(self) -> str:
        return f"OptimizedModel(backend={self.report.backend!r}, dtype={self.report.dtype!r})"


# ------------------------------------------------------------------------------------------------------------------
# building the candidates


def _to_dtype(inputs: Sequence[torch.Tensor], dtype: torch.dtype, cl: bool) -> list[torch.Tensor]:
    out = []
    for x in inputs:
        x = x.to(dtype) if x.is_floating_point() else x
        out.append(x.contiguous(memory_format=torch.channels_last) if cl and x.dim() == 4 else x)
    return out


def _wrap(module: Callable[..., Any], dtype: torch.dtype, cl: bool) -> Callable[..., torch.Tensor]:
    def fn(*inputs: torch.Tensor) -> torch.Tensor:
        out = module(*_to_dtype(inputs, dtype, cl))
        return out.float() if isinstance(out, torch.Tensor) else out

    return fn


def _build(
    name: str, model: nn.Module, inputs: Sequence[torch.Tensor]
) -> tuple[Callable[..., torch.Tensor], nn.Module | None]:
    """``(callable, module)`` for candidate ``name`` (compilation happens lazily, on the first call)."""
    base = name.removesuffix("_bf16")
    dtype = torch.bfloat16 if name.endswith("_bf16") else torch.float32
    if base in ("eager", "eager_cl"):
        m = optimize_for_inference(model)
        cl = base == "eager_cl"
        m = m.to(dtype)
        if cl:
            m = m.to(memory_format=torch.channels_last)
        return _wrap(m, dtype, cl), m
    if base == "inductor":
        m = fold_bn(model).to(dtype)
        compiled = torch.compile(m, backend="inductor")

        def frozen(*inputs: torch.Tensor) -> torch.Tensor:
            # freezing: parameters become constants of the graph, so Inductor folds them and pre-packs the conv /
            # linear weights for oneDNN with fused ReLUs (only under no_grad, which OptimizedModel guarantees). It
            # must be the global config while (re)compiling: torch.compile(options={"freezing": True}) does not
            # enable it (checked with torch 2.14.1: no frozen params, aten convolutions, separate ReLU kernels).
            import torch._inductor.config as inductor_config

            with inductor_config.patch(freezing=True):
                return compiled(*inputs)

        return _wrap(frozen, dtype, False), compiled
    if base == "onnxruntime":
        return _build_onnxruntime(model, inputs), None
    raise SenetError(f"unknown backend {name!r}; choose auto or one of: {', '.join(BACKENDS)}")


def _build_onnxruntime(model: nn.Module, inputs: Sequence[torch.Tensor]) -> Callable[..., torch.Tensor]:
    require("onnxruntime", "the onnxruntime backend of senet.optimize")

    if len(inputs) != 1 or inputs[0].device.type != "cpu":
        raise SenetError("the onnxruntime backend takes one CPU input tensor")
    x = inputs[0]
    with tempfile.TemporaryDirectory(prefix="senet-optimize-") as tmp:
        path = os.path.join(tmp, "model.onnx")
        export_onnx(model, path, tuple(x.shape[1:]), fold_bn=True, check=False)
        pred = OnnxPredictor(path, threads=torch.get_num_threads())  # the session holds the graph in memory

    def fn(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(pred(x))

    return fn


# ------------------------------------------------------------------------------------------------------------------
# machine, fingerprint, cache


def _machine(device: torch.device) -> dict[str, Any]:
    info = machine_info(device)
    info.update(torch=torch.__version__, python=platform.python_version(), device=device.type)
    return info


def _fingerprint(model: nn.Module) -> str:
    """Architecture and parameter shapes (latency does not depend on the weights' values; the check runs anyway)."""
    h = hashlib.sha256(f"{type(model).__module__}.{type(model).__qualname__}\n{model!r}".encode())
    # The repr misses options kept as plain attributes (a ResNet block's attn_position "post" vs "standard": same
    # modules, same weights, other forward), so hash every module's class and simple public attributes too.
    for name, m in model.named_modules():
        attrs = {k: _plain(v) for k, v in vars(m).items() if not k.startswith("_") and k != "training"}
        simple = sorted((k, v) for k, v in attrs.items() if v is not None)
        h.update(f"{name}={type(m).__module__}.{type(m).__qualname__}{simple};".encode())
    for k, v in model.state_dict().items():
        h.update(f"{k}:{tuple(v.shape)}:{v.dtype};".encode())
    return h.hexdigest()[:20]


def _plain(v: Any) -> str | None:
    # A stable text for values that mean the same in every process; None for the rest (their repr may hold an id).
    if v is None or isinstance(v, (str, int, float, bool, torch.dtype)):
        return repr(v)
    if isinstance(v, (tuple, list)):
        items = [_plain(i) for i in v]
        return None if None in items else f"[{','.join(items)}]"  # type: ignore[arg-type]
    if isinstance(v, (types.FunctionType, types.BuiltinFunctionType, type)):
        return f"{v.__module__}.{v.__qualname__}"
    return None


def _cache_file(cache_dir: str | os.PathLike[str] | None, key: dict[str, Any]) -> Path:
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "optimize"
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    return root / f"{digest}.json"


def _read_cache(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("key") == key and data.get("backend") else None


def _write_cache(path: Path, data: dict[str, Any]) -> None:
    try:
        atomic_write_text(path, json.dumps(data, indent=1))
    except OSError as exc:  # a read-only cache only costs a re-measure next time
        warnings.warn(f"senet.optimize: cannot write the cache {path}: {exc}", stacklevel=3)


# ------------------------------------------------------------------------------------------------------------------
# measuring


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _check(
    fn: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor], ref: torch.Tensor, tol: float
) -> tuple[float, str]:
    with torch.no_grad():
        out = fn(*inputs)
    if not isinstance(out, torch.Tensor) or out.shape != ref.shape:
        return float("inf"), f"output shape {getattr(out, 'shape', type(out))} != {tuple(ref.shape)}"
    diff = float((out.float().cpu() - ref.float().cpu()).abs().max()) if ref.numel() else 0.0
    if not diff <= tol:  # also catches NaN
        return diff, f"max |diff| {diff:.3g} > tolerance {tol:.3g}"
    return diff, ""


def _time_candidates(
    fns: dict[str, Callable[..., torch.Tensor]],
    inputs: Sequence[torch.Tensor],
    device: torch.device,
    rounds: int,
    budget_s: float,
) -> dict[str, float]:
    """Best-of-rounds seconds per call, candidates alternating within each round (rotating start)."""
    names = list(fns)
    per_call = {}
    with torch.no_grad():
        for n in names:  # one untimed call each (caches warm), also sizes the inner loop
            t = time.perf_counter()
            fns[n](*inputs)
            _sync(device)
            per_call[n] = time.perf_counter() - t
    slowest = max(per_call.values()) if per_call else 1.0
    inner = max(1, min(20, int(budget_s / max(rounds * len(names) * slowest, 1e-9))))
    best = {n: float("inf") for n in names}
    with torch.no_grad():
        for r in range(rounds):
            for n in names[r % len(names) :] + names[: r % len(names)]:
                _sync(device)
                t = time.perf_counter()
                for _ in range(inner):
                    fns[n](*inputs)
                _sync(device)
                best[n] = min(best[n], (time.perf_counter() - t) / inner)
    return best


def _parse_backends(backend: str | Sequence[str]) -> list[str]:
    names = [b.strip() for b in backend.split(",")] if isinstance(backend, str) else [str(b) for b in backend]
    names = [b for b in names if b]
    if names == ["auto"]:
        return names
    bad = [b for b in names if b not in BACKENDS]
    if bad or not names:
        raise SenetError(f"unknown backend {backend!r}; choose auto or any of: {', '.join(BACKENDS)}")
    return list(dict.fromkeys(names))


def _candidates(requested: list[str], dtype: str, device: torch.device, n_inputs: int, dim: int) -> list[str]:
    if requested == ["auto"]:
        bases = ["eager", "eager_cl", "inductor", "onnxruntime"]
        if dim != 4:
            bases.remove("eager_cl")
        if device.type != "cpu" or n_inputs != 1:
            bases.remove("onnxruntime")
    else:
        bases = list(requested)
    if dtype == "auto":
        bf16_pays = device.type == "cuda" or cpu_capability() in ("amx", "avx512_bf16")
        dtypes = ["fp32", "bf16"] if bf16_pays else ["fp32"]
    else:
        dtypes = [dtype]
    names = []
    for d in dtypes:
        for b in bases:
            if d == "bf16" and b == "onnxruntime":
                continue  # the ONNX export is fp32
            names.append(b if d == "fp32" else f"{b}_bf16")
    return names


def _normalize_inputs(example_inputs: Any) -> list[torch.Tensor]:
    if isinstance(example_inputs, torch.Tensor):
        inputs = [example_inputs]
    elif isinstance(example_inputs, (tuple, list)) and example_inputs:
        inputs = list(example_inputs)
    else:
        raise SenetError(
            f"example_inputs must be a tensor or a non-empty tuple of tensors, got {type(example_inputs).__name__}"
        )
    for x in inputs:
        if not isinstance(x, torch.Tensor):
            raise SenetError(f"example_inputs must be tensors, got {type(x).__name__}")
    if not any(x.is_floating_point() for x in inputs):
        raise SenetError("example_inputs need at least one floating-point tensor (an image batch, N x C x H x W)")
    devices = {x.device for x in inputs}
    if len(devices) != 1:
        raise SenetError(f"example_inputs are on several devices: {sorted(map(str, devices))}")
    return [x.detach() for x in inputs]


def optimize(
    model: nn.Module,
    example_inputs: torch.Tensor | Sequence[torch.Tensor],
    backend: str | Sequence[str] = "auto",
    dtype: str = "auto",
    *,
    tolerance: float | None = None,
    cache: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    rounds: int = 3,
    budget_s: float = 3.0,
) -> OptimizedModel:
    """The fastest inference form of ``model`` for inputs shaped like ``example_inputs`` whose outputs match eager.

    Args:
        model: an ``nn.Module`` (senet, timm or torchvision models); it is not modified (candidates work on copies,
            in eval mode).
        example_inputs: a tensor (or tuple of tensors) of the shape the model will be called with, on its device.
        backend: ``"auto"`` (measure every candidate that applies), one of :data:`BACKENDS`, or several of them
            (a list or a comma-separated string) to choose among. Named backends that cannot be used here
            (onnxruntime not installed, a compile error, a failed check) fall back to ``eager`` with a warning.
        dtype: ``"auto"`` (fp32, plus bf16 on CUDA and on CPUs with AMX / AVX-512 BF16), ``"fp32"`` or ``"bf16"``.
        tolerance: max abs difference from the eval-mode fp32 model allowed on the example inputs (default:
            ``TOLERANCE[dtype] * max(1, max |reference|)``).
        cache: reuse / store the decision under ``cache_dir`` (default ``<senet cache>/optimize``).
        rounds: alternating timing rounds (the best round counts).
        budget_s: rough wall-clock budget of the timing rounds, after compilation.

    Returns:
        An :class:`OptimizedModel`: call it like the model (no grad, fp32 outputs); ``.report`` says what was chosen,
        each candidate's latency, compile seconds and max abs difference.

    Raises:
        SenetError: ``model`` is not a module, the inputs are not tensors, or the model cannot run on them.
    """
    if not isinstance(model, nn.Module):
        raise SenetError(f"senet.optimize needs a torch.nn.Module, got {type(model).__name__}")
    requested = _parse_backends(backend)
    if dtype not in ("auto", "fp32", "bf16"):
        raise SenetError(f"unknown dtype {dtype!r}; choose auto, fp32 or bf16")
    inputs = _normalize_inputs(example_inputs)
    device = inputs[0].device
    model, ref = _eager_reference(model, inputs)
    scale = max(1.0, float(ref.abs().max())) if ref.numel() else 1.0

    def tol_for(name: str) -> float:
        if tolerance is not None:
            return float(tolerance)
        return TOLERANCE["bf16" if name.endswith("_bf16") else "fp32"] * scale

    machine = _machine(device)
    key = {
        "v": _CACHE_VERSION,
        "model": _fingerprint(model),
        "shapes": [[*x.shape, str(x.dtype)] for x in inputs],
        "backend": requested,
        "dtype": dtype,
        "tolerance": tolerance,
        "machine": machine,
    }
    cache_path = _cache_file(cache_dir, key) if cache else None
    cached = _read_cache(cache_path, key) if cache_path else None
    if cached:
        name = cached["backend"]
        fn, module, cand = _try(name, model, inputs, ref, tol_for(name))
        if fn is not None:
            cand.latency_ms = cached.get("latency_ms")
            report = _report(cand, [cand], tol_for(name), machine, cache_path, cache_hit=True)
            return OptimizedModel(fn, report, module)
        # the cached choice no longer passes (new weights?): measure again below

    names = _candidates(requested, dtype, device, len(inputs), inputs[0].dim())
    built, results = _build_candidates(names, requested, backend, model, inputs, ref, tol_for)
    timings = _time_candidates(
        {n: f for n, (f, _) in built.items()},
        inputs,
        device,
        rounds if len(built) > 1 else 1,
        budget_s if len(built) > 1 else budget_s / 3,
    )
    for c in results:
        if c.name in timings:
            c.latency_ms = 1e3 * timings[c.name]
    best = min(timings, key=timings.get)  # type: ignore[arg-type]
    chosen = next(c for c in results if c.name == best)
    report = _report(chosen, results, tol_for(best), machine, cache_path, cache_hit=False)
    if cache_path:
        _write_cache(
            cache_path,
            {
                "key": key,
                "backend": best,
                "latency_ms": chosen.latency_ms,
                "candidates": [asdict(c) for c in results],
                "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        )
    return OptimizedModel(built[best][0], report, built[best][1])


def _eager_reference(model: nn.Module, inputs: Sequence[torch.Tensor]) -> tuple[nn.Module, torch.Tensor]:
    """An fp32 eval-mode copy of ``model`` and its output on ``inputs`` (what every candidate must match).

    Raises:
        SenetError: the model is on another device than the inputs, cannot run on them, or returns no float tensor.
    """
    device = inputs[0].device
    model = copy.deepcopy(model).eval()
    param = next(model.parameters(), None)
    if param is not None and param.device != device:
        raise SenetError(f"model is on {param.device} but example_inputs are on {device}; move one of them")
    model = model.float()
    try:
        with torch.no_grad():
            ref = model(*inputs)
    except Exception as exc:  # noqa: BLE001 - any failure here means the inputs do not fit the model
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        shapes = ", ".join(str(tuple(x.shape)) for x in inputs)
        raise SenetError(f"the model cannot run on example_inputs of shape {shapes}: {msg}") from None
    if not isinstance(ref, torch.Tensor) or not ref.is_floating_point():
        raise SenetError(f"senet.optimize supports models that return one float tensor, got {type(ref).__name__}")
    return model, ref


def _build_candidates(
    names: Sequence[str],
    requested: list[str],
    backend: Any,
    model: nn.Module,
    inputs: Sequence[torch.Tensor],
    ref: torch.Tensor,
    tol_for: Callable[[str], float],
) -> tuple[dict[str, tuple[Callable[..., torch.Tensor], nn.Module | None]], list[CandidateResult]]:
    """Build and check each candidate; named backends that all fail fall back to eager with a warning.

    Raises:
        SenetError: not even eager matched the reference.
    """
    built: dict[str, tuple[Callable[..., torch.Tensor], nn.Module | None]] = {}
    results: list[CandidateResult] = []

    def attempt(name: str) -> None:
        fn, module, cand = _try(name, model, inputs, ref, tol_for(name))
        results.append(cand)
        if fn is not None:
            built[name] = (fn, module)

    for name in names:
        attempt(name)
    if requested != ["auto"] and not built:
        why = "; ".join(f"{c.name}: {c.reason}" for c in results) or "not applicable"
        warnings.warn(f"senet.optimize: backend {backend!r} unusable ({why}); falling back to eager", stacklevel=3)
        attempt("eager")
    if not built:
        raise SenetError(
            "senet.optimize: no candidate matched the eager model: "
            + "; ".join(f"{c.name}: {c.reason}" for c in results)
        )
    return built, results


def _report(
    chosen: CandidateResult,
    candidates: list[CandidateResult],
    tolerance: float,
    machine: dict[str, Any],
    cache_path: Path | None,
    *,
    cache_hit: bool,
) -> OptimizeReport:
    return OptimizeReport(
        backend=chosen.name,
        dtype="bf16" if chosen.name.endswith("_bf16") else "fp32",
        tolerance=tolerance,
        cache_hit=cache_hit,
        cache_path=str(cache_path) if cache_path else None,
        compile_s=chosen.compile_s,
        max_abs_diff=chosen.max_abs_diff,
        candidates=candidates,
        machine=machine,
    )


def _try(
    name: str, model: nn.Module, inputs: Sequence[torch.Tensor], ref: torch.Tensor, tol: float
) -> tuple[Callable[..., torch.Tensor] | None, nn.Module | None, CandidateResult]:
    """Build candidate ``name``, run it once (compiling it) and check it. ``fn`` is None when rejected."""
    cand = CandidateResult(name=name, dtype="bf16" if name.endswith("_bf16") else "fp32")
    t = time.perf_counter()
    try:
        fn, module = _build(name, model, inputs)
        diff, why = _check(fn, inputs, ref, tol)  # the first call compiles
    except MissingDependency as exc:
        cand.reason = str(exc)
        return None, None, cand
    except Exception as exc:  # noqa: BLE001 - a backend failing on this model is a rejected candidate, not an error
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        cand.reason = f"{type(exc).__name__}: {first[:200]}"
        return None, None, cand
    cand.compile_s = time.perf_counter() - t
    cand.max_abs_diff = diff
    cand.reason = why
    cand.ok = not why
    return (fn, module, cand) if cand.ok else (None, None, cand)
