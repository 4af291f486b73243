"""One image, preprocessed exactly as a run's evaluation saw it (``senet predict``, ONNX calibration batches).

``pre`` is the run's preprocessing record (as a checkpoint stores it): ``kind`` (``"tensor"`` for the in-memory
small-image loader, else the file loader), ``img_size``, ``mean``, ``std`` and, for file loaders, ``crop_pct``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torchvision.transforms import v2

from .imagenet import eval_transform

__all__ = ["preprocess"]


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
