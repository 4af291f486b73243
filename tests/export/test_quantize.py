"""INT8 post-training quantization: onnxruntime QDQ and PT2E, gate path kept in fp32, the export CLI's errors."""

from __future__ import annotations

import json

import pytest
import torch

from senet.cli import main
from senet.export.quantize import calibration_batch, gate_modules, quantize_onnx, quantize_pt2e

from .conftest import build


@pytest.fixture
def image_dir(tmp_path):
    from torchvision.io import write_png

    d = tmp_path / "imgs" / "some_class"
    d.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    for i in range(6):
        write_png((torch.rand(3, 20, 20, generator=g) * 255).to(torch.uint8), str(d / f"{i}.png"))
    return tmp_path / "imgs"


def test_calibration_batch_reads_and_preprocesses(image_dir) -> None:
    x = calibration_batch(image_dir, lambda img: img[:, :16, :16].float() / 255, n=4)
    assert x.shape == (4, 3, 16, 16) and 0 <= float(x.min()) and float(x.max()) <= 1
    with pytest.raises(ValueError, match="does not exist"):
        calibration_batch(image_dir / "nope", lambda img: img)


@pytest.mark.slow
def test_onnx_int8_close_to_fp32_with_gate_kept(tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    import onnx

    from senet.export import OnnxPredictor

    model, size = build("se_resnet20")
    calib = torch.randn(32, *size)
    res = quantize_onnx(model, tmp_path / "m.int8.onnx", calib)
    assert res.kept_fp32 == gate_modules(model) and len(res.kept_fp32) == 3
    nodes = onnx.load(res.path).graph.node
    quantized_inputs = {i for n in nodes if n.op_type == "DequantizeLinear" for i in n.output}
    gate_fc = [n for n in nodes if "/attn/fc1/" in n.name and n.op_type in ("Gemm", "MatMul")]
    convs = [n for n in nodes if n.op_type == "Conv"]
    assert gate_fc and not any(i in quantized_inputs for n in gate_fc for i in n.input)  # gate stays fp32
    assert any(i in quantized_inputs for n in convs for i in n.input)  # the convs are int8
    x = torch.randn(5, *size)
    with torch.no_grad():
        ref = model(x)
    out = torch.from_numpy(OnnxPredictor(res.path)(x))
    assert out.shape == ref.shape and float((out - ref).abs().max()) < 0.1 * max(1.0, float(ref.abs().max()))


@pytest.mark.slow
def test_pt2e_int8_close_to_fp32(tmp_path) -> None:
    pytest.importorskip("torchao")
    model, size = build("se_resnet20")
    q = quantize_pt2e(model, torch.randn(16, *size))
    names = {str(n.target) for n in q.graph.nodes}
    assert any("quantize_per_tensor" in n for n in names)
    x = torch.randn(3, *size)
    with torch.no_grad():
        ref, out = model(x), q(x)
    assert float((out - ref).abs().max()) < 0.1 * max(1.0, float(ref.abs().max()))


@pytest.mark.slow
def test_export_quantize_cli(image_dir, tmp_path, capsys) -> None:
    pytest.importorskip("onnxruntime")
    argv = ["export", "se_resnet20", "--input-size", "3", "16", "16", "--quantize", "int8"]
    assert main(argv) == 2
    assert "needs --calibration" in capsys.readouterr().err
    assert main(["export", "se_resnet20", "--calibration", str(image_dir)]) == 2
    assert "only used with --quantize" in capsys.readouterr().err
    out = tmp_path / "q.onnx"
    assert main([*argv, "--calibration", str(image_dir), "-o", str(out)]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["calibration_images"] == 6 and r["kept_fp32"] and out.is_file() and 0 <= r["top1_agreement"] <= 1
