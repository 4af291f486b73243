"""ONNX / torch.export parity on every model family (dynamic batch), the op list, OnnxPredictor, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from senet.cli import main
from senet.errors import SenetError
from senet.export import COMMON_ONNX_OPS, OnnxPredictor, export_onnx, export_program, load_model, onnx_ops
from senet.models import create_model

from .conftest import FAMILIES, build

pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("name", list(FAMILIES))
def test_onnx_parity_dynamic_batch(name: str, tmp_path) -> None:
    model, size = build(name)
    path = tmp_path / f"{name}.onnx"
    result = export_onnx(model, path, size, fold_bn=name.endswith("50"), check_batches=(1, 3), atol=1e-4)
    assert result.checked_batches == [1, 3] and result.max_abs_diff <= 1e-4
    # Check once more here, independently of export_onnx's own check, at a batch it never saw.
    pred = OnnxPredictor(path)
    assert pred.input_shape[0] == "batch"
    x = torch.randn(5, *size)
    with torch.no_grad():
        ref = model(x).numpy()
    out = pred(x)
    assert out.shape == ref.shape and np.abs(out - ref).max() <= 1e-4
    ops = set(onnx_ops(path))
    assert ops <= COMMON_ONNX_OPS, ops - COMMON_ONNX_OPS
    assert not ops & {"GlobalAveragePool", "AdaptiveAvgPool", "ATen"}  # squeezes and head pool are ReduceMean
    assert "ReduceMean" in ops


def test_onnx_of_optimized_model_has_no_batchnorm(tmp_path) -> None:
    model, size = build("se_resnet50")
    result = export_onnx(model, tmp_path / "m.onnx", size, fold_bn=True, opset=13)
    assert "BatchNormalization" not in result.ops and result.max_abs_diff <= 1e-4


def test_onnx_static_batch_and_bad_opset(tmp_path) -> None:
    model, size = build("se_resnet20")
    result = export_onnx(model, tmp_path / "s.onnx", size, dynamic_batch=False)
    assert OnnxPredictor(result.path).input_shape[0] == 2
    with pytest.raises(SenetError, match="opset"):
        export_onnx(model, tmp_path / "o.onnx", size, opset=11)


def test_onnx_predictor_errors(tmp_path) -> None:
    with pytest.raises(SenetError, match="does not exist"):
        OnnxPredictor(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(SenetError, match="cannot load"):
        OnnxPredictor(bad)
    model, size = build("se_resnet20")
    path = export_onnx(model, tmp_path / "m.onnx", size).path
    with pytest.raises(SenetError, match="4-D input"):
        OnnxPredictor(path)(np.zeros((3, 16, 16), dtype=np.float32))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["se_resnet20", "cbam_resnet50"])
def test_exported_program_dynamic_batch(name: str, tmp_path) -> None:
    model, size = build(name)
    result = export_program(model, tmp_path / f"{name}.pt2", size, fold_bn=True)
    assert result.checked_batches == [1, 3] and result.max_abs_diff <= 1e-4
    loaded = torch.export.load(result.path).module()
    x = torch.randn(6, *size)
    torch.testing.assert_close(loaded(x), model(x), rtol=1e-4, atol=1e-4)


def test_load_model_from_training_checkpoint_and_safetensors(tmp_path) -> None:
    model = create_model("se_resnet20", num_classes=7).eval()
    ckpt = tmp_path / "last.pt"
    torch.save({"model": "se_resnet20", "state_dict": model.state_dict(), "epoch": 3}, ckpt)
    loaded, name = load_model(str(ckpt))
    assert name == "se_resnet20"
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(loaded(x), model(x))
    from senet.weights import save_pretrained

    st = tmp_path / "w.safetensors"
    save_pretrained(model, st, model_name="se_resnet20")
    loaded, name = load_model(str(st))
    assert name == "se_resnet20"
    torch.testing.assert_close(loaded(x), model(x))
    with pytest.raises(SenetError, match="neither a registered model"):
        load_model(str(tmp_path / "nope.pt"))


def test_cli_export_checkpoint_to_onnx(tmp_path, capsys) -> None:
    model = create_model("se_resnet20", num_classes=5).eval()
    ckpt = tmp_path / "ckpt.pt"
    torch.save({"model": "se_resnet20", "state_dict": model.state_dict()}, ckpt)
    out = tmp_path / "m.onnx"
    assert main(["export", str(ckpt), "--output", str(out), "--fold-bn", "--input-size", "3", "24", "24"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    report = json.loads(lines[-1])
    assert report["model"] == "se_resnet20" and report["input_size"] == [3, 24, 24]
    assert report["max_abs_diff"] <= 1e-4 and "max |diff|" in lines[-2]
    x = torch.randn(4, 3, 24, 24)
    with torch.no_grad():
        np.testing.assert_allclose(OnnxPredictor(out)(x), model(x).numpy(), atol=1e-4)


def test_cli_export_errors(tmp_path, capsys) -> None:
    assert main(["export", str(tmp_path / "missing.pt")]) == 2
    assert "neither a registered model" in capsys.readouterr().err
    assert main(["export", "se_resnet20", "--input-size", "3", "0", "0", "-o", str(tmp_path / "x.onnx")]) == 2
    assert "--input-size" in capsys.readouterr().err
