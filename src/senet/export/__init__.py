"""Deployment: inference transforms (conv-BN folding, fused attention tails), ONNX / torch.export, ONNX inference.

>>> from senet.export import optimize_for_inference, export_onnx, OnnxPredictor
>>> fast = optimize_for_inference(model)                       # eval, BN folded, relu(x*s + shortcut) fused
>>> export_onnx(model, "model.onnx", input_size=(3, 224, 224))  # dynamic batch, checked in onnxruntime
>>> logits = OnnxPredictor("model.onnx")(images)                # (N, num_classes) numpy array
>>> fast = senet.optimize(model, torch.randn(1, 3, 224, 224))   # fastest checked form, measured; fast.report

``senet.optimize`` lives in :mod:`senet.export.fast`; it is not re-exported here because the name would shadow the
:mod:`senet.export.optimize` submodule (``optimize_for_inference`` and friends).
"""

from .fast import OptimizedModel, OptimizeReport
from .load import load_model
from .onnx import COMMON_ONNX_OPS, ExportResult, GlobalMean, OnnxPredictor, export_onnx, onnx_ops
from .optimize import attn_tail, fold_bn, fold_conv_bn, fuse_attn_tails, fuse_plain_tails, optimize_for_inference
from .program import export_program

__all__ = [
    "COMMON_ONNX_OPS",
    "ExportResult",
    "GlobalMean",
    "OnnxPredictor",
    "OptimizeReport",
    "OptimizedModel",
    "attn_tail",
    "export_onnx",
    "export_program",
    "fold_bn",
    "fold_conv_bn",
    "fuse_attn_tails",
    "fuse_plain_tails",
    "load_model",
    "onnx_ops",
    "optimize_for_inference",
]
