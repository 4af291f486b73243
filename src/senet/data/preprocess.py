"""One image, preprocessed exactly as a run's evaluation saw it (``senet predict``, ONNX calibration batches), and
an output image encoded back to PNG (``senet denoise``).

``pre`` is the run's preprocessing record (as a checkpoint stores it): ``kind`` (``"tensor"`` for the in-memory
small-image loader, else the file loader), ``img_size``, ``mean``, ``std`` and, for file loaders, ``crop_pct``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torchvision.io import encode_png
from torchvision.transforms import v2

from .imagenet import eval_transform

__all__ = ["preprocess", "to_png"]


def preprocess(img: torch.Tensor, pre: Mapping[str, Any]) -> torch.Tensor:
    """A uint8 C x H x W image -> the normalised float tensor the model saw at evaluation."""
    if pre["kind"] == "tensor":
        size = int(pre["img_size"])
        if tuple(img.shape[-2:]) != (size, size):
            img = v2.functional.resize(img, [size, size], antialias=True)
        x = img.float().div(255)
        return v2.functional.normalize(x, pre["mean"], pre["std"])
    t = eval_transform(int(pre["img_size"]), float(pre.get("crop_pct", 0.875)), pre["mean"], pre["std"])
    return t(img).to(torch.float32)


def to_png(img: torch.Tensor) -> bytes:
    """A float C x H x W image in [0, 1] -> PNG bytes (rounded to uint8), e.g. a denoiser's output."""
    return bytes(encode_png(img.mul(255).round().to(dtype=torch.uint8)).numpy())
