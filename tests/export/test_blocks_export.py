"""The blocks under torch.compile, torch.export and ONNX (checked against onnxruntime)."""

from __future__ import annotations

import pytest
import torch

from senet.layers import create_attn, list_attn

SHAPES = {1: (2, 32, 12), 2: (2, 32, 6, 5), 3: (2, 32, 3, 4, 5)}


def build(kind: str, dims: int) -> torch.nn.Module:
    kwargs = {"dims": dims} if kind == "cbam" else {}
    return create_attn(kind, 32, **kwargs).eval()


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("kind", list_attn())
def test_onnx_dynamic_batch_matches_onnxruntime(kind: str, dims: int, tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    block = build(kind, dims)
    x = torch.randn(SHAPES[dims])
    path = tmp_path / f"{kind}{dims}d.onnx"
    torch.onnx.export(
        block,
        (x,),
        str(path),
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 5):  # a different batch than the one traced: the axis really is dynamic
        xb = torch.randn(batch, *SHAPES[dims][1:])
        (out,) = sess.run(None, {"x": xb.numpy()})
        ref = block(xb).detach().numpy()
        assert abs(out - ref).max() <= 1e-5, f"{kind} {dims}-D batch {batch}: {abs(out - ref).max()}"
    ops = {n.op_type for n in __import__("onnx").load(str(path)).graph.node}
    assert not ops & {"GlobalAveragePool", "AdaptiveAvgPool", "ATen"} or kind == "nosqueeze", ops
    if kind in ("se", "eca", "ese", "scse", "cbam"):
        assert "ReduceMean" in ops


@pytest.mark.parametrize("kind", list_attn())
def test_torch_export(kind: str) -> None:
    block = build(kind, 2)
    x = torch.randn(SHAPES[2])
    batch = torch.export.Dim("batch", min=1, max=64)
    ep = torch.export.export(block, (x,), dynamic_shapes=({0: batch},))
    xb = torch.randn(3, *SHAPES[2][1:])
    torch.testing.assert_close(ep.module()(xb), block(xb))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["se", "eca", "cbam"])
def test_torch_compile_matches_eager_with_grads(kind: str) -> None:
    torch._dynamo.reset()
    block = build(kind, 2).train()
    compiled = torch.compile(block)
    x = torch.randn(SHAPES[2]).contiguous(memory_format=torch.channels_last)
    ref = block(x)
    g_ref = torch.autograd.grad(ref.square().sum(), list(block.parameters()))
    out = compiled(x)  # after the eager backward: a train-mode BN bumps its buffers' versions on each forward
    g_out = torch.autograd.grad(out.square().sum(), list(block.parameters()))
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    assert out.is_contiguous(memory_format=torch.channels_last)
    for a, b in zip(g_ref, g_out):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
