"""decode_rgb scales 16-bit greyscale files to 8 bits and applies EXIF orientation, in both decoding paths."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from senet.data import decode
from senet.data.decode import decode_rgb
from senet.errors import SenetError


@pytest.mark.parametrize("fmt", ["TIFF", "PPM", "PNG"])  # PPM writes a 16-bit PGM (P5, maxval 65535)
def test_16bit_greyscale_is_scaled_not_clipped(fmt: str) -> None:
    ramp = np.linspace(0, 65535, 64 * 64).round().astype(np.uint16).reshape(64, 64)
    buf = io.BytesIO()
    Image.fromarray(ramp).save(buf, fmt)
    img = decode_rgb(buf.getvalue(), f"ramp.{fmt.lower()}")
    assert img.shape == (3, 64, 64)
    assert abs(img.float().mean().item() - 127.5) < 1.0  # clipping made it ~255
    assert img[:, 0, 0].tolist() == [0, 0, 0] and img[:, -1, -1].tolist() == [255, 255, 255]


def test_32bit_integer_beyond_16_bits_is_refused() -> None:
    buf = io.BytesIO()
    Image.fromarray(np.full((4, 4), 1 << 20, np.int32)).save(buf, "TIFF")
    with pytest.raises(SenetError, match="big.tif.*16-bit range"):
        decode_rgb(buf.getvalue(), "big.tif")


def _rejecting_decoder(*args: object, **kwargs: object) -> None:
    raise RuntimeError("unsupported by torchvision")


@pytest.mark.parametrize("path", ["torchvision", "pillow"])
def test_exif_orientation_is_applied(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if path == "pillow":  # a JPEG torchvision rejects goes to Pillow
        monkeypatch.setattr(decode, "decode_image", _rejecting_decoder)
    # 32 wide x 16 high, red left half, blue right half; tag 6 = rotate 90 degrees clockwise for display.
    pixels = np.zeros((16, 32, 3), np.uint8)
    pixels[:, :16, 0] = 255
    pixels[:, 16:, 2] = 255
    im = Image.fromarray(pixels)
    exif = im.getexif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif, quality=95)
    img = decode_rgb(buf.getvalue(), "phone.jpg")
    assert img.shape == (3, 32, 16)  # portrait, as displayed
    top, bottom = img[:, 4, 8].tolist(), img[:, 28, 8].tolist()
    assert top[0] > 200 > top[2] and bottom[2] > 200 > bottom[0]  # the red half is on top
