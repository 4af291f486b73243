"""Conv-BN folding and fused attention tails: same function in eval mode, on every model family."""

from __future__ import annotations

import pytest
import torch
from torch import fx, nn

from senet.export import fold_bn, fuse_attn_tails, optimize_for_inference
from senet.layers import fused

from .conftest import FAMILIES, build

# Families whose blocks end in relu(attn(x) + shortcut): the tail fusion must find every one of them.
RESIDUAL_ATTN = {
    "se_resnet18": 4,
    "se_resnet50": 4,
    "se_resnet50_caffe": 4,
    "eca_resnet50": 4,
    "cbam_resnet50": 4,
    "se_resnext50_32x4d": 4,
    "senet154": 4,
    "se_resnet20": 3,
    "eca_resnet20": 3,
    "cbam_resnet20": 3,
    "se_resnet164": 3,
}


def _bns(model: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


@pytest.mark.parametrize("name", list(FAMILIES))
def test_optimize_for_inference_matches_eval_model(name: str) -> None:
    model, size = build(name)
    x = torch.randn(3, *size)
    opt = optimize_for_inference(model)
    with torch.no_grad():
        ref, out = model(x), opt(x)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    assert opt._senet_fused_tails == RESIDUAL_ATTN.get(name, 0)
    if name in ("resnet18", "se_resnet20"):  # plain residual tails: none left over in an attention net
        assert opt._senet_fused_plain_tails == (4 if name == "resnet18" else 0)
    assert opt._senet_folded_bn > 0 and _bns(opt) < _bns(model)
    assert _bns(model) == opt._senet_folded_bn + _bns(opt)  # the original is untouched (not inplace)


def test_fold_bn_leaves_preactivation_bn_alone() -> None:
    """A pre-activation block applies bn1 before conv1: only the conv -> BN edges of the graph are folded."""
    model, size = build("se_preact_resnet20")
    folded = fold_bn(model)
    kept = {n for n, m in folded.named_modules() if isinstance(m, nn.BatchNorm2d)}
    assert "layer1.0.bn1" in kept and "layer1.0.bn2" not in kept
    x = torch.randn(2, *size)
    torch.testing.assert_close(folded(x), model(x), rtol=1e-5, atol=1e-5)


def test_fused_tail_model_trains_with_exact_gradients() -> None:
    """The tail fusion also serves training: same loss gradients as the original model (train-mode BN)."""
    model, size = build("se_resnet20")
    model.train()
    fused_model = fuse_attn_tails(model)
    assert fused_model._senet_fused_tails == 3
    x = torch.randn(4, *size)
    out_ref, out = model(x), fused_model(x)
    torch.testing.assert_close(out, out_ref, rtol=1e-5, atol=1e-6)
    g_ref = torch.autograd.grad(out_ref.square().sum(), list(model.parameters()))
    g = torch.autograd.grad(out.square().sum(), list(fused_model.parameters()))
    assert len(g) == len(g_ref)
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_fused_blocks_call_the_fused_kernel_and_keep_names(monkeypatch) -> None:
    model, size = build("se_resnet50")
    opt = optimize_for_inference(model)
    block = opt.layer1[0]
    assert isinstance(block, fx.GraphModule) and "attn_tail" in block.code
    assert set(dict(block.named_parameters())) >= {"conv1.weight", "conv1.bias", "attn.fc1.weight", "attn.fc2.bias"}
    calls = []
    real = fused.scale_add_relu
    monkeypatch.setattr("senet.export.optimize.scale_add_relu", lambda *a, **k: calls.append(1) or real(*a, **k))
    with torch.no_grad():
        opt(torch.randn(1, *size))
    assert len(calls) == 4
    assert hasattr(opt, "forward_features") and type(opt).__name__ == "ResNet"  # the top-level model keeps its class


def test_squeeze_first_pushes_the_mean_through_conv3() -> None:
    """Bottleneck SE/ECA blocks squeeze conv3's input; early stages take that path, late ones the plain mean."""
    for name in ("se_resnet50", "eca_resnet50"):
        model, size = build(name)
        opt = optimize_for_inference(model)
        assert all("attn_tail_squeeze_first" in blk.code for stage in opt.stages() for blk in stage)
        assert "attn_tail_squeeze_first" not in optimize_for_inference(build("cbam_resnet50")[0]).layer1[0].code
        for batch in (1, 16):  # 16 x 8 x 8 pixels >= 2 x C/4 at every stage; batch 1 only early on
            x = torch.randn(batch, *size)
            with torch.no_grad():
                torch.testing.assert_close(opt(x), model(x), rtol=1e-5, atol=1e-5)


def test_inplace_tails_do_not_touch_inputs() -> None:
    """The in-place tails only write into conv outputs they own: the caller's input and the shortcut survive."""
    model, size = build("resnet18")
    opt = optimize_for_inference(model)
    with torch.no_grad():
        x = model.forward_stem(torch.randn(2, *size))
        x0 = x.clone()
        torch.testing.assert_close(opt.layer1(x), model.layer1(x), rtol=1e-5, atol=1e-5)
    assert torch.equal(x, x0)


def test_optimize_channels_last_bf16() -> None:
    model, size = build("se_resnet50")
    opt = optimize_for_inference(model, channels_last=True).to(torch.bfloat16)
    x = torch.randn(2, *size)
    with torch.no_grad():
        out = opt(x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last))
        ref = model(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, rtol=0.1, atol=0.1)


def test_fold_conv_bn_without_affine_and_with_conv_bias() -> None:
    conv, bn = nn.Conv2d(3, 4, 3, bias=True), nn.BatchNorm2d(4, affine=False)
    seq = nn.Sequential(conv, bn)
    seq.eval()
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 3, 8, 8)
    ref = seq(x)
    folded = fold_bn(seq)
    assert isinstance(folded[1], nn.Identity)
    torch.testing.assert_close(folded(x), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_optimized_model_under_torch_compile() -> None:
    torch._dynamo.reset()
    model, size = build("se_resnet20")
    opt = optimize_for_inference(model)
    x = torch.randn(2, *size)
    with torch.no_grad():
        torch.testing.assert_close(torch.compile(opt)(x), model(x), rtol=1e-4, atol=1e-4)
