"""MBConv families with the rest of senet: retrofit, optimize_for_inference, summary."""

from __future__ import annotations

import torch

from senet.bench.flops import count_macs, count_params
from senet.export.optimize import optimize_for_inference
from senet.layers import EfficientChannelAttn, SqueezeExcite
from senet.models import create_model, summary
from senet.retrofit import attention_modules, retrofit


def _with_bn_stats(model: torch.nn.Module) -> torch.nn.Module:
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model.eval()


def test_retrofit_se_into_plain_mobilenet_v3_gives_the_paper_model() -> None:
    plain = create_model("mobilenet_v3_large", attn_layer="none")
    model, report = retrofit(plain, "se", init="paper")
    assert report.family == "senet-mbconv"
    # The paper's SE form at the paper's sites: the same parameter count and names as the SE entrypoint.
    ref = create_model("mobilenet_v3_large")
    assert report.params_after == count_params(ref) == 5_483_032
    assert [n for n, _ in model.attention_modules()] == [n for n, _ in ref.attention_modules()]
    assert set(model.state_dict()) == set(ref.state_dict())
    blk = model.blocks[2][0].attn
    assert isinstance(blk, SqueezeExcite) and isinstance(blk.gate, torch.nn.Hardsigmoid)


def test_retrofit_replaces_se_and_identity_init_keeps_outputs() -> None:
    model = _with_bn_stats(create_model("efficientnet_b0"))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
    model, report = retrofit(model, "eca", init="identity")
    assert {s.action for s in report.sites} == {"replace"} and len(report.sites) == 16
    with torch.no_grad():
        torch.testing.assert_close(model(x), before)
    assert {type(m) for _, m in attention_modules(model)} == {EfficientChannelAttn}
    lite, rep = retrofit(create_model("efficientnet_lite0"), "se", init="paper")
    assert {s.action for s in rep.sites} == {"insert"}
    assert count_params(lite) == count_params(create_model("efficientnet_lite0", attn_layer="se"))


def test_optimize_for_inference_folds_bn_and_keeps_outputs() -> None:
    for name, kw in [("mobilenet_v3_small", {}), ("efficientnet_lite0", {"pad_type": "same"})]:
        model = _with_bn_stats(create_model(name, **kw))
        x = torch.randn(1, 3, 45, 45)
        with torch.no_grad():
            want = model(x)
            fast = optimize_for_inference(model)
            got = fast(x)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules()), name
        assert ((want - got).abs().max() / want.abs().max()).item() < 1e-5, name


def test_summary_reports_the_se_share() -> None:
    s = summary(create_model("mobilenet_v3_small"), input_size=(3, 224, 224))
    plain = create_model("mobilenet_v3_small", attn_layer="none")
    # SE's share is exactly what removing it takes away (params) and what the MAC counter sees inside it.
    assert s.attn_params == s.params - count_params(plain)
    assert s.attn_macs == s.macs - count_macs(plain, torch.randn(1, 3, 224, 224)).macs
    assert 0.15 < s.attn_param_share < 0.25 and s.attn_mac_share < 0.05  # SE: many params, few MACs
