"""Helpers for the reliability tests: bad inputs generated at test time (no binary fixtures), a tiny model importable
as ``_rel:tiny_net`` by a training subprocess, and a CLI runner that checks the one-line-error contract."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PY = sys.executable
CLASSES = ["cat", "dog"]


def encode(img, fmt: str, **kw) -> bytes:  # noqa: ANN001
    """``img`` (a PIL image) encoded as ``fmt`` bytes."""
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def rgb_image(size: int = 16, seed: int = 0):  # noqa: ANN201
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def bad_images() -> dict[str, bytes]:
    """Every kind of file a messy dataset holds that cannot be decoded."""
    jpeg = encode(rgb_image(), "JPEG")
    png = encode(rgb_image(), "PNG")
    return {
        "zero_byte": b"",
        "truncated_jpeg": jpeg[: len(jpeg) // 3],
        "truncated_png": png[:60],
        "corrupt_jpeg": jpeg[:20] + bytes(range(256)) * 4,
        "not_an_image": b"this is a text file that someone named cat.jpg\n" * 10,
    }


def convertible_images() -> dict[str, bytes]:
    """Files that are images but not 8-bit RGB: each must decode to 3 x H x W uint8."""
    from PIL import Image

    base = rgb_image(16)
    rng = np.random.default_rng(1)
    return {
        "greyscale_png": encode(base.convert("L"), "PNG"),
        "greyscale_jpeg": encode(base.convert("L"), "JPEG"),
        "cmyk_jpeg": encode(base.convert("CMYK"), "JPEG"),
        "rgba_png": encode(base.convert("RGBA"), "PNG"),
        "palette_png": encode(base.convert("P"), "PNG"),
        "png_16bit": encode(Image.fromarray(rng.integers(0, 65536, (16, 16), dtype=np.uint16)), "PNG"),
        "bmp": encode(base, "BMP"),
        "tiff": encode(base, "TIFF"),
        "one_by_one": encode(Image.new("RGB", (1, 1), (10, 20, 30)), "PNG"),
    }


def write_tree(root: Path, n: int = 16, size: int = 16, splits=("train", "val"), classes=CLASSES) -> Path:  # noqa: ANN001
    """``root/<split>/<class>/NNN.png`` with class-dependent brightness (learnable), ``n`` images per class."""
    from PIL import Image

    for s_i, split in enumerate(splits):
        for c_i, c in enumerate(classes):
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            rng = np.random.default_rng(100 * s_i + c_i)
            for i in range(n):
                px = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                px[..., c_i % 3] //= 4
                Image.fromarray(px).save(d / f"{i:03d}.png")
    return root


def tiny_net(num_classes: int = 2) -> nn.Module:
    """A few hundred parameters with BatchNorm (its running stats are part of what a resume must restore)."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, num_classes),
    )


class NanAfter(nn.Module):
    """``tiny_net`` whose training outputs turn NaN from the 3rd training call on."""

    def __init__(self, num_classes: int = 2) -> None:
        super().__init__()
        self.body = tiny_net(num_classes)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.calls += 1
        y = self.body(x)
        return y * float("nan") if self.training and self.calls >= 3 else y


def nan_net(num_classes: int = 2) -> nn.Module:
    return NanAfter(num_classes)


def env() -> dict[str, str]:
    """Subprocess environment: this folder importable (``_rel:tiny_net``), one thread, no debug tracebacks."""
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(HERE), str(REPO / "src"), e.get("PYTHONPATH", "")])
    e.pop("SENET_DEBUG", None)
    e["OMP_NUM_THREADS"] = "1"
    return e


def senet(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``python -m senet ARGS`` (never through a shell) and return the completed process."""
    return subprocess.run(
        [PY, "-m", "senet", *args], capture_output=True, text=True, env=env(), cwd=cwd, timeout=timeout
    )


def assert_one_line_error(p: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit status 2, stderr exactly one line (no traceback) containing every needle; returns that line."""
    err = p.stderr.strip()
    assert p.returncode == 2, (p.returncode, p.stdout[-500:], err[-2000:])
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, (n, err)
    return err


def assert_main_error(capsys, argv: list[str], *needles: str) -> str:  # noqa: ANN001
    """In-process ``senet.cli.main(argv)``: same contract as :func:`assert_one_line_error` (cheaper: no startup)."""
    from senet.cli import main

    capsys.readouterr()
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2, (rc, err[-2000:])
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, (n, err)
    return err


class SignalAt(nn.Module):
    """``tiny_net`` that sends its own process SIGTERM during its ``at``-th training call (an in-process stand-in
    for ``kill -TERM`` arriving mid-step)."""

    def __init__(self, num_classes: int = 2, at: int = 6) -> None:
        super().__init__()
        self.body = tiny_net(num_classes)
        self.calls, self.at = 0, at

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import signal

        if self.training:
            self.calls += 1
            if self.calls == self.at:
                os.kill(os.getpid(), signal.SIGTERM)
        return self.body(x)
