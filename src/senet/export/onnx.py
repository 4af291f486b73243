"""ONNX export (dynamic batch, checked in onnxruntime) and ONNX inference.

The export uses the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``): on this project's CPU it is
~20x faster than the dynamo exporter and gives the same ops for these networks. Global pooling inside the attention
blocks is a ReduceMean (the blocks squeeze with ``mean``, not adaptive pooling); the classifier's
``AdaptiveAvgPool2d(1)`` is swapped for the same mean before export, so the graph holds no adaptive pooling at all.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from senet.errors import SenetError
from senet.utils.io import atomic_path
from senet.utils.optional import require

from .optimize import fold_bn as _fold_bn

__all__ = ["export_onnx", "OnnxPredictor", "ExportResult", "onnx_ops", "COMMON_ONNX_OPS", "GlobalMean"]

#: ONNX ops accepted by the common runtimes (onnxruntime, TensorRT, OpenVINO, TFLite converters, CoreML tools).
COMMON_ONNX_OPS = frozenset(
    {
        "Add", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "Constant", "Conv", "Div", "Flatten",
        "Gather", "Gemm", "GlobalAveragePool", "HardSigmoid", "HardSwish", "Identity", "MatMul", "Max", "MaxPool",
        "Mul", "Pad", "ReduceMax", "ReduceMean", "Relu", "Reshape", "Shape", "Sigmoid", "Slice", "Squeeze", "Sub",
        "Tanh", "Transpose", "Unsqueeze",
    }
)  # fmt: skip


class GlobalMean(nn.Module):
    """``AdaptiveAvgPool{1,2,3}d(1)`` as a mean over the spatial dims (exports as ReduceMean, any input size)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(tuple(range(2, x.dim())), keepdim=True)


def _swap_adaptive_pool(model: nn.Module) -> int:
    n = 0
    for name, m in list(model.named_modules()):
        if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)):
            size = m.output_size if isinstance(m.output_size, tuple) else (m.output_size,)
            if all(s == 1 for s in size):
                model.set_submodule(name, GlobalMean())
                n += 1
    return n


@dataclass
class ExportResult:
    """What an export produced and how well it matches PyTorch."""

    path: str
    format: str
    max_abs_diff: float | None = None
    checked_batches: list[int] = field(default_factory=list)
    ops: list[str] = field(default_factory=list)
    size_bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "max_abs_diff": self.max_abs_diff,
            "checked_batches": self.checked_batches,
            "ops": self.ops,
            "size_bytes": self.size_bytes,
        }


def onnx_ops(path: str | os.PathLike[str]) -> list[str]:
    """Sorted op types used by an ONNX file (its main graph)."""
    onnx = require("onnx", "ONNX export")
    return sorted({n.op_type for n in onnx.load(os.fspath(path), load_external_data=False).graph.node})


def _input_tensor(input_size: Sequence[int], batch: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, *input_size, generator=g)


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    input_size: Sequence[int] = (3, 224, 224),
    *,
    opset: int = 17,
    dynamic_batch: bool = True,
    fold_bn: bool = False,
    check: bool = True,
    check_batches: Sequence[int] = (1, 3),
    atol: float | None = 1e-4,
) -> ExportResult:
    """Export ``model`` (a copy, in eval mode) to ONNX and check it against PyTorch in onnxruntime.

    Args:
        model: the network; it is not modified.
        path: the ``.onnx`` file to write (atomically: a temporary file renamed into place).
        input_size: one sample's shape ``(C, H, W)`` (or ``(C, L)``, ``(C, D, H, W)``).
        opset: ONNX opset version.
        dynamic_batch: export the batch axis as dynamic (``batch``).
        fold_bn: fold BatchNorm into the convs first (:func:`senet.export.fold_bn`).
        check: run the file in onnxruntime on random inputs of each of ``check_batches`` and compare.
        atol: raise :class:`SenetError` when the max abs difference exceeds this (``None``: only report).

    Returns:
        An :class:`ExportResult` with the max difference and the op list.
    """
    # Fail before any work: the export needs onnx (the op list) and, to check it, onnxruntime.
    require("onnx", "ONNX export")
    if check:
        require("onnxruntime", "checking the ONNX export")
    if opset < 13:
        raise SenetError(f"--opset {opset} is too old: senet exports need opset >= 13 (ReduceMean with axes input)")
    model = copy.deepcopy(model).eval()
    if fold_bn:
        model = _fold_bn(model, inplace=True)
    _swap_adaptive_pool(model)
    model = model.float()
    x = _input_tensor(input_size, 2)
    out_path = Path(path)
    dynamic_axes = {"input": {0: "batch"}, "logits": {0: "batch"}} if dynamic_batch else None
    with atomic_path(out_path, suffix=out_path.suffix) as tmp, torch.no_grad():
        torch.onnx.export(
            model,
            (x,),
            str(tmp),
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    result = ExportResult(str(out_path), "onnx", ops=onnx_ops(out_path), size_bytes=out_path.stat().st_size)
    if check:
        predictor = OnnxPredictor(out_path)
        worst = 0.0
        for i, batch in enumerate(check_batches if dynamic_batch else (2,)):
            xb = _input_tensor(input_size, batch, seed=i + 1)
            with torch.no_grad():
                ref = model(xb).numpy()
            worst = max(worst, float(np.abs(predictor(xb) - ref).max()))
            result.checked_batches.append(batch)
        result.max_abs_diff = worst
        if atol is not None and worst > atol:
            raise SenetError(f"{out_path}: onnxruntime output differs from PyTorch by {worst:.3g} (> {atol:g})")
    return result


class OnnxPredictor:
    """Run an exported senet ONNX model with onnxruntime: ``OnnxPredictor(path)(images) -> logits``.

    Args:
        path: the ``.onnx`` file (one input ``(N, C, *S)`` float32, one output).
        threads: intra-op threads for onnxruntime (default: its own choice).
        providers: execution providers (default: CPU).

    ``__call__`` takes a float ``torch.Tensor`` or numpy array (any batch size when exported with a dynamic batch)
    and returns the first output as a float32 numpy array. :attr:`input_shape` is the exported shape with the batch
    axis as a string (``'batch'``) when dynamic.
    """

    def __init__(
        self, path: str | os.PathLike[str], threads: int | None = None, providers: Sequence[str] | None = None
    ) -> None:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise SenetError(f"ONNX file {path} does not exist; export one with `senet export MODEL --format onnx`")

        ort = require("onnxruntime", "running ONNX files")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(
                path, sess_options=opts, providers=list(providers or ["CPUExecutionProvider"])
            )
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise SenetError(f"{path}: onnxruntime cannot load it ({str(exc).splitlines()[0]})") from None
        self.path = path
        inp = self.session.get_inputs()[0]
        self.input_name: str = inp.name
        self.input_shape: list[int | str] = list(inp.shape)
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, x: torch.Tensor | np.ndarray) -> np.ndarray:
        arr = x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float32)
        want = len(self.input_shape)
        if arr.ndim != want:
            raise SenetError(f"{self.path} takes {want}-D input {self.input_shape}, got shape {tuple(arr.shape)}")
        return self.session.run(self.output_names[:1], {self.input_name: np.ascontiguousarray(arr)})[0]

    def __repr__(self) -> str:
        return f"OnnxPredictor({self.path!r}, input={self.input_name}{self.input_shape})"
