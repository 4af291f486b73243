"""examples/keras_cifar10.py runs end to end on a tiny CIFAR-10-layout archive made here (no real data needed)."""

from __future__ import annotations

import importlib.util
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "keras_cifar10.py"


def load_example():
    spec = importlib.util.spec_from_file_location("keras_cifar10_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_archive(path: Path, classes: tuple[str, ...], per_class: int) -> Path:
    """A gzip'd tar in the shared archive's layout, each class a distinct solid colour plus noise."""
    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as tar:
        for split in ("test", "train"):  # the real archive lists test/ first
            for i, cls in enumerate(classes):
                for n in range(per_class):
                    pixels = np.clip(rng.normal(25 * i, 10, size=(32, 32, 3)), 0, 255).astype("uint8")
                    buf = io.BytesIO()
                    Image.fromarray(pixels).save(buf, format="JPEG")
                    info = tarfile.TarInfo(f"cifar10/{split}/{cls}/{n:04d}.jpg")
                    info.size = buf.tell()
                    buf.seek(0)
                    tar.addfile(info, buf)
    return path


def test_example_runs_and_prints_json(tmp_path, capsys) -> None:
    example = load_example()
    archive = fake_archive(tmp_path / "cifar10-jpeg.tar.gz", example.CLASSES, per_class=3)
    data = example.load_slice(archive, {"train": 2, "test": 1})
    x, y = data["train"]
    assert x.shape == (20, 32, 32, 3) and x.dtype == np.uint8
    assert np.bincount(y).tolist() == [2] * 10
    argv = ["--data", str(archive), "--train-images", "20", "--test-images", "10", "--batch-size", "10"]
    assert example.main([*argv, "--attn", "se"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["attn"] == "se" and result["train_images"] == 20 and result["test_images"] == 10
    assert result["backend"] == "torch" and 0.0 <= result["test_acc"] <= 1.0
    # SE adds its FCs' parameters: (2*32*8 + 8 + 32) + (2*64*16 + 16 + 64) + (2*128*32 + 32 + 128).
    plain = example.build_model("none").count_params()
    assert result["params"] - plain == 552 + 2128 + 8352


def test_example_reports_a_missing_archive(tmp_path) -> None:
    example = load_example()
    with pytest.raises(SystemExit, match="not found"):
        example.load_slice(tmp_path / "nope.tar.gz", {"train": 1})
