"""The fused kernels of senet.layers.fused agree with the unfused PyTorch chain (values and gradients)."""

from __future__ import annotations

import pytest
import torch

from senet.layers import create_attn, fused

FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


def _unfused(x, gate, shortcut, relu=True):
    out = x * gate + shortcut
    return torch.relu(out) if relu else out


def _leaves(*ts):
    return [t.detach().clone().requires_grad_(True) for t in ts]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("gate_kind", ["channel", "spatial", "pooled"])
@pytest.mark.parametrize("relu", [True, False])
def test_scale_add_relu_matches_unfused(fmt: str, gate_kind: str, relu: bool) -> None:
    n, c, h, w = 3, 16, 7, 5
    x = torch.randn(n, c, h, w).contiguous(memory_format=FORMATS[fmt])
    sc = torch.randn(n, c, h, w).contiguous(memory_format=FORMATS[fmt])
    gates = {"channel": (n, c, 1, 1), "spatial": (n, 1, h, w), "pooled": (n, c)}
    gate = torch.rand(gates[gate_kind])
    ref_gate = gate.view(n, c, 1, 1) if gate_kind == "pooled" else gate

    xa, ga, sa = _leaves(x, gate, sc)
    out = fused.scale_add_relu(xa, ga, sa, relu=relu)
    xb, gb, sb = _leaves(x, ref_gate, sc)
    ref = _unfused(xb, gb, sb, relu)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)
    assert out.is_contiguous(memory_format=FORMATS[fmt])
    if relu:
        assert (out >= 0).all() and (out == 0).any()  # the ReLU really ran and really clipped

    grad_out = torch.randn_like(ref)
    ga_all = torch.autograd.grad(out, (xa, ga, sa), grad_out)
    gb_all = torch.autograd.grad(ref, (xb, gb, sb), grad_out)
    for name, a, b in zip(("x", "gate", "shortcut"), ga_all, gb_all):
        torch.testing.assert_close(a.reshape(b.shape), b, rtol=1e-5, atol=1e-5, msg=lambda m, n=name: f"{n}: {m}")


def test_scale_add_relu_no_grad_and_bf16() -> None:
    x, sc = torch.randn(2, 8, 4, 4), torch.randn(2, 8, 4, 4)
    s = torch.rand(2, 8)
    with torch.no_grad():
        out = fused.scale_add_relu(x.bfloat16(), s.bfloat16(), sc.bfloat16())
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), _unfused(x, s.view(2, 8, 1, 1), sc), rtol=2e-2, atol=2e-2)


def test_scale_add_relu_rejects_mismatched_shortcut() -> None:
    with pytest.raises(ValueError, match="shortcut shape"):
        fused.scale_add_relu(torch.randn(2, 8, 4, 4), torch.rand(2, 8), torch.randn(2, 8, 2, 2))


def test_scale_add_relu_gradcheck_double() -> None:
    x = torch.randn(2, 3, 4, 3, dtype=torch.double, requires_grad=True)
    s = torch.rand(2, 3, 1, 1, dtype=torch.double, requires_grad=True)
    sc = torch.randn(2, 3, 4, 3, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, c: fused.ScaleAddReLU.apply(a, b, c, True), (x, s, sc))
    assert torch.autograd.gradcheck(fused.GateMul.apply, (x, s))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", ["se", "eca", "ese", "cbam"])
def test_blocks_fast_path_matches_plain_autograd(kind: str, fmt: str, monkeypatch) -> None:
    """The blocks' fused training path (one autograd node, batched-dot gate grads) equals plain autograd."""
    block = create_attn(kind, 32).train()
    x0 = torch.randn(2, 32, 6, 5).contiguous(memory_format=FORMATS[fmt])
    params = list(block.parameters())

    def run():
        x = x0.detach().clone().requires_grad_(True)
        out = block(x)
        grads = torch.autograd.grad(out.square().sum(), [x, *params])
        return out, grads

    out, grads = run()
    monkeypatch.setattr(fused, "use_fast_path", lambda x: False)
    ref, ref_grads = run()
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)
    assert out.is_contiguous(memory_format=FORMATS[fmt])
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_squeeze_excite_frozen_params_and_hooks() -> None:
    """Frozen excitation weights get no grad; a hook on the gate still sees the excitation in training."""
    se = create_attn("se", 16).train()
    se.fc1.weight.requires_grad_(False)
    seen = []
    se.gate.register_forward_hook(lambda m, i, o: seen.append(o.detach()))
    x = torch.randn(2, 16, 4, 4, requires_grad=True)
    se(x).sum().backward()
    assert se.fc1.weight.grad is None and se.fc2.weight.grad is not None and x.grad is not None
    assert len(seen) == 1 and seen[0].shape == (2, 16)


@pytest.mark.parametrize("fmt", FORMATS)
def test_spatial_mean_bf16_fast_path(fmt: str) -> None:
    x = torch.randn(3, 16, 9, 7).contiguous(memory_format=FORMATS[fmt])
    ref = x.mean((2, 3))
    out = fused.spatial_mean(x.bfloat16(), fast=True)
    assert out.dtype == torch.bfloat16 and out.shape == (3, 16)
    torch.testing.assert_close(out.float(), ref, rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(fused.spatial_mean(x, fast=True), ref)


@pytest.mark.slow
def test_scale_add_relu_under_torch_compile() -> None:
    torch._dynamo.reset()
    fn = torch.compile(fused.scale_add_relu, fullgraph=True)
    x, sc = torch.randn(2, 8, 5, 5, requires_grad=True), torch.randn(2, 8, 5, 5, requires_grad=True)
    s = torch.rand(2, 8, requires_grad=True)
    out = fn(x, s, sc)
    ref = _unfused(x, s.view(2, 8, 1, 1), sc)
    torch.testing.assert_close(out, ref)
    g = torch.autograd.grad(out.sum(), (x, s, sc))
    gr = torch.autograd.grad(ref.sum(), (x, s, sc))
    for a, b in zip(g, gr):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_overwrite_x_reuses_storage_only_in_inference() -> None:
    x, sc, s = torch.randn(2, 8, 4, 4), torch.randn(2, 8, 4, 4), torch.rand(2, 8)
    ref = _unfused(x, s.view(2, 8, 1, 1), sc)
    xc = x.clone()
    with torch.no_grad():
        out = fused.scale_add_relu(xc, s, sc, overwrite_x=True)
        assert out.data_ptr() == xc.data_ptr()
        torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)
        xc = x.clone()
        out = fused.add_relu(xc, sc, overwrite_x=True)
        assert out.data_ptr() == xc.data_ptr()
        torch.testing.assert_close(out, torch.relu(x + sc))
    xg = x.clone().requires_grad_(True)
    out = fused.scale_add_relu(xg, s, sc, overwrite_x=True)  # autograd records: never in place
    assert out.data_ptr() != xg.data_ptr() and torch.equal(xg.detach(), x)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)
