"""Post-training static INT8 quantization for the CPU, calibrated on the user's images.

Two routes, both keeping the squeeze-and-excitation *gate path* (squeeze, the two small excitation FCs, the sigmoid and
the gate multiply) in fp32 by default (``keep_gate=True``): those FCs are tiny, so INT8 saves nothing there, while
their rounding error reaches every channel of the block through the gate.

* :func:`quantize_onnx`: the fp32 ONNX export (BN folded) through ``onnxruntime.quantization.quantize_static`` (QDQ
  format, per-channel symmetric int8 weights, uint8 activations calibrated by MinMax on the images); the gate nodes are
  passed as ``nodes_to_exclude``. Runs in any onnxruntime.
* :func:`quantize_pt2e`: PyTorch 2 export quantization with torchao's ``X86InductorQuantizer`` (``prepare_pt2e`` ->
  calibration -> ``convert_pt2e``); the attention modules get no quantization config. The result is a ``GraphModule``
  with quantize/dequantize ops; ``torch.compile`` (Inductor, freezing) turns those patterns into oneDNN int8 kernels.

:func:`calibration_batch` reads N images from a folder of images, an ImageFolder tree or a ``.tar.gz`` dataset and
preprocesses them as the model was evaluated.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from senet.data.decode import decode_rgb
from senet.data.sources import IMG_EXTENSIONS, detect_source, eval_split, read_split
from senet.errors import SenetError
from senet.layers.base import iter_attention
from senet.utils.optional import require

from .onnx import export_onnx
from .optimize import fold_bn

__all__ = ["calibration_batch", "gate_modules", "quantize_onnx", "quantize_pt2e", "QuantizeResult"]


@dataclass
class QuantizeResult:
    """An INT8 file and how it was made."""

    path: str
    method: str
    calibration_images: int
    kept_fp32: list[str] = field(default_factory=list)
    size_bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "method": self.method,
            "calibration_images": self.calibration_images,
            "kept_fp32": self.kept_fp32,
            "size_bytes": self.size_bytes,
        }


def gate_modules(model: nn.Module) -> list[str]:
    """Qualified names of the attention blocks (:func:`senet.layers.iter_attention`), the parts kept in fp32."""
    return [site.name for site in iter_attention(model) if site.name]


def calibration_batch(
    data: str | os.PathLike[str],
    preprocess: Callable[[torch.Tensor], torch.Tensor],
    n: int = 256,
) -> torch.Tensor:
    """``n`` images (evenly spaced over the files, so every class is seen) from ``data``, preprocessed, stacked.

    ``data``: a folder of image files (searched recursively), an ImageFolder dataset (its train split) or an archive
    of one. ``preprocess`` maps a uint8 ``C x H x W`` image to the model's input tensor.
    """
    if n < 1:
        raise SenetError(f"--calibration-images must be positive, got {n}")
    path = Path(data).expanduser()
    if not path.exists():
        raise SenetError(f"calibration data {str(path)!r} does not exist")
    blobs: list[tuple[str, Any]] = []
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMG_EXTENSIONS) if path.is_dir() else []
    if files:
        step = max(1, len(files) // n)
        blobs = [(str(f), f.read_bytes) for f in files[::step][:n]]
    else:
        src = detect_source(path)
        raw = read_split(src, "train" if "train" in src.splits else eval_split(src))
        total = len(raw.encoded) if raw.encoded else (0 if raw.pixels is None else len(raw.pixels))
        step = max(1, total // n)
        idx = list(range(0, total, step))[:n]
        if raw.encoded:
            blobs = [(f"{path}[{i}]", (lambda b=raw.encoded[i]: b)) for i in idx]
        else:
            return torch.stack([preprocess(torch.from_numpy(raw.pixels[i])) for i in idx])
    if not blobs:
        raise SenetError(f"no images found in {str(path)!r} for calibration")
    return torch.stack([preprocess(decode_rgb(read(), name)) for name, read in blobs])


def _batches(x: torch.Tensor, batch: int) -> list[torch.Tensor]:
    return [x[i : i + batch] for i in range(0, len(x), batch)]


def quantize_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    calibration: torch.Tensor,
    *,
    keep_gate: bool = True,
    per_channel: bool = True,
    opset: int = 17,
    batch: int = 32,
) -> QuantizeResult:
    """Export ``model`` to ONNX (BN folded) and quantize it to INT8 (QDQ) with onnxruntime, calibrated on
    ``calibration`` (``N x C x H x W`` preprocessed images). Writes ``path``; dynamic batch axis."""
    require("onnx", "INT8 ONNX export")
    require("onnxruntime", "INT8 ONNX export")
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fp32 = out.with_name(out.stem + ".fp32-tmp.onnx")
    pre = out.with_name(out.stem + ".pre-tmp.onnx")
    export_onnx(model, fp32, tuple(calibration.shape[1:]), fold_bn=True, check=False, opset=opset)
    try:
        # onnxruntime's recommended pre-pass (graph optimisation + shape inference): turns the exporter's shared
        # initializers back into constants, so every conv bias is quantized as int32 with its conv.
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        fp32.unlink()
        pre.rename(fp32)
        gates = gate_modules(model) if keep_gate else []
        # TorchScript-exported node names are scopes like "/layer1/layer1.0/attn/fc1/Gemm".
        marks = []
        for g in gates:
            parent, _, leaf = g.rpartition(".")
            marks.append(f"/{parent}/{leaf}/" if parent else f"/{leaf}/")
        graph = onnx.load(str(fp32), load_external_data=False).graph
        exclude = [node.name for node in graph.node if any(m in node.name for m in marks)]
        if gates and not exclude:
            raise SenetError("could not find the attention gate nodes in the ONNX graph; pass keep_gate=False")

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self._it = iter(_batches(calibration.float(), batch))

            def get_next(self) -> dict[str, Any] | None:
                b = next(self._it, None)
                return None if b is None else {"input": b.contiguous().numpy()}

        quantize_static(
            str(fp32),
            str(out),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=exclude,
            # 7-bit weights: AVX2 / AVX-512 without VNNI compute u8 x s8 with vpmaddubsw, which saturates int16 sums.
            reduce_range=True,
            extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
        )
    finally:
        fp32.unlink(missing_ok=True)
        pre.unlink(missing_ok=True)
    return QuantizeResult(str(out), "onnxruntime-qdq", len(calibration), gates, out.stat().st_size)


def quantize_pt2e(
    model: nn.Module, calibration: torch.Tensor, *, keep_gate: bool = True, batch: int = 32
) -> torch.fx.GraphModule:
    """PT2E static INT8 with torchao's ``X86InductorQuantizer``: the converted ``GraphModule`` (q/dq ops; run it
    under ``torch.compile`` with freezing for int8 kernels). The model is not modified."""
    require("torchao", "INT8 quantization with PT2E (X86InductorQuantizer)")
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    model = fold_bn(copy.deepcopy(model).eval().float(), inplace=True)
    example = calibration[: min(batch, len(calibration))].float()
    batch_dim = torch.export.Dim("batch", min=1, max=1024)
    exported = torch.export.export(model, (example,), dynamic_shapes=({0: batch_dim},)).module()
    quantizer = xiq.X86InductorQuantizer()
    quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
    if keep_gate:
        for name in gate_modules(model):
            quantizer.set_module_name_qconfig(name, None)
    prepared = prepare_pt2e(exported, quantizer)
    with torch.no_grad():
        for b in _batches(calibration.float(), batch):
            prepared(b)
    return convert_pt2e(prepared)
