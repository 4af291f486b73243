"""Decoding one image file to a ``3 x H x W`` uint8 RGB tensor, whatever the file holds.

torchvision's decoders handle JPEG/PNG/WebP/GIF (greyscale, CMYK, RGBA and palette images are converted to RGB); BMP,
TIFF and PPM/PGM fall back to Pillow. 16-bit images (PNG, TIFF, PGM) are scaled to 8 bits, and an EXIF orientation
tag (phone photos) is applied. Anything that still cannot be decoded (empty,
truncated, corrupt, not an image) raises a one-line :class:`~senet.errors.SenetError` naming the file, so a bad file
never surfaces as a C++ traceback from a DataLoader worker.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision.io import ImageReadMode, decode_image

from senet.errors import SenetError

__all__ = ["decode_rgb"]


def decode_rgb(data: bytes, name: str) -> torch.Tensor:
    """``data`` (an encoded image) as a ``3 x H x W`` uint8 RGB tensor; ``name`` is used in the error message."""
    if not data:
        raise SenetError(
            f"cannot decode image {name!r}: the file is empty (0 bytes); delete it or add --skip-bad-images"
        )
    try:
        img = decode_image(
            torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB, apply_exif_orientation=True
        )
    except RuntimeError as exc:
        img = _decode_pil(data, name, exc)
    if img.dtype != torch.uint8:
        # 16-bit PNGs decode to uint16: keep the top 8 bits (what Pillow and every viewer show).
        img = (img.to(torch.int32) >> 8).to(torch.uint8)
    if img.ndim != 3 or img.shape[0] != 3 or img.shape[1] == 0 or img.shape[2] == 0:
        raise SenetError(f"cannot decode image {name!r}: unexpected decoded shape {tuple(img.shape)}")
    return img


def _decode_pil(data: bytes, name: str, first: Exception) -> torch.Tensor:
    # Formats torchvision does not decode (BMP, TIFF, PPM) or ones it rejects; Pillow also detects truncation.
    try:
        with Image.open(io.BytesIO(data)) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode == "I" or im.mode.startswith("I;16"):
                arr = _grey16_to_rgb8(np.asarray(im), name)
            else:
                arr = np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except SenetError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises OSError, SyntaxError, ValueError... all mean "bad file"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "cannot identify image file" in reason:
            reason = "not an image (unknown or corrupt format)"
        raise SenetError(
            f"cannot decode image {name!r}: {reason[:160]}; delete or fix it, or add --skip-bad-images"
        ) from first
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def _grey16_to_rgb8(arr: np.ndarray, name: str) -> np.ndarray:
    # 16-bit TIFF/PGM open as "I;16" or "I" (Pillow scales any PGM maxval to 0..65535); convert("RGB") would clip
    # them to 255 (an almost white image), so keep the top 8 bits as for 16-bit PNGs.
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 65535):
        raise SenetError(
            f"cannot decode image {name!r}: 32-bit integer pixels beyond the 16-bit range; convert it to 8 or 16 bits"
        )
    grey = (arr.astype(np.int32) >> 8).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)
