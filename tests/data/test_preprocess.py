"""senet.data.preprocess: one image as a run's evaluation saw it, and an output image back to PNG."""

from __future__ import annotations

import torch
from torchvision.io import decode_png

from senet.data.preprocess import preprocess, to_png


def test_tensor_kind_resizes_and_normalises() -> None:
    img = torch.full((3, 8, 8), 255, dtype=torch.uint8)
    x = preprocess(img, {"kind": "tensor", "img_size": 4, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)})
    assert x.shape == (3, 4, 4) and x.dtype == torch.float32
    torch.testing.assert_close(x, torch.ones(3, 4, 4))


def test_file_kind_centre_crops() -> None:
    img = torch.randint(0, 256, (3, 40, 50), dtype=torch.uint8)
    pre = {"kind": "folder", "img_size": 16, "crop_pct": 0.875, "mean": (0.0,) * 3, "std": (1.0,) * 3}
    x = preprocess(img, pre)
    assert x.shape == (3, 16, 16) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_to_png_round_trip() -> None:
    img = torch.rand(3, 5, 7)
    back = decode_png(torch.frombuffer(bytearray(to_png(img)), dtype=torch.uint8))
    assert torch.equal(back, img.mul(255).round().to(torch.uint8))
