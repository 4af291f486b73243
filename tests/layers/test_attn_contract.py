"""The attention-block contract: a kind defined here, registered once, is seen by every consumer unchanged.

The toy kind below lives only in this file. Registering it with ``senet.layers.register_attn`` is the whole of what
adding a kind takes; the recorder, the fused inference path, the quantizer's fp32 list, the ledger, retrofit and the
model families' default merging must all pick it up without knowing its name.
"""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from senet.analysis import Recorder, attention_blocks, gate_module
from senet.bench.speed import twin_name
from senet.export import optimize_for_inference
from senet.export.quantize import gate_modules
from senet.layers import (
    CBAM,
    SCSE,
    AttentionBlock,
    SqueezeExcite,
    attn_kind,
    create_attn,
    iter_attention,
    list_attn,
    merge_attn_kwargs,
    register_attn,
    unregister_attn,
)
from senet.layers.fused import spatial_mean
from senet.models import create_model
from senet.models.resnet import ResNet
from senet.train.ledger import attention_kind, model_attention


class ToyGate(AttentionBlock):
    """A per-channel affine gate on the pooled map: ``x * sigmoid(w * mean(x) + b)`` (linear squeeze, fusable)."""

    fused_tail = True
    linear_squeeze = True

    def __init__(self, channels: int, init_scale: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), float(init_scale)))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.gate = nn.Sigmoid()

    def excite(self, z: torch.Tensor) -> torch.Tensor:
        return self.gate(z * self.weight + self.bias)

    def excitation(self, x: torch.Tensor) -> torch.Tensor:
        return self.excite(spatial_mean(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.excitation(x).view(*x.shape[:2], *([1] * (x.dim() - 2)))


@pytest.fixture
def toy() -> str:
    register_attn("toy", ToyGate)
    yield "toy"
    unregister_attn("toy")


def _perturb(model: nn.Module) -> nn.Module:
    """Non-trivial BN statistics and gate weights, so that equal outputs mean equal functions."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            elif isinstance(m, ToyGate):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g))
    return model.eval()


def test_a_registered_kind_is_built_by_every_family_and_merges_defaults(toy: str) -> None:
    assert toy in list_attn() and isinstance(create_attn(toy, 8), ToyGate)
    # CIFAR ResNets default rd_min=4 for kinds that take it; the toy has no such option, so it is not passed.
    model = create_model("se_resnet20", attn_layer=toy)
    sites = list(iter_attention(model))
    assert len(sites) == 9 and {s.kind for s in sites} == {toy}
    assert all(isinstance(s.module, ToyGate) for s in sites)
    for name in ("speednet", "mobilenet_v3_small", "se_mobilenet_v2"):
        assert {s.kind for s in iter_attention(create_model(name, attn_layer=toy))} == {toy}


def test_recorder_quantizer_and_ledger_see_the_new_kind(toy: str) -> None:
    model = create_model("se_resnet20", attn_layer=toy, num_classes=3).eval()
    names = [n for n, _ in attention_blocks(model)]
    assert names[:2] == ["SE_2_1", "SE_2_2"] and len(names) == 9
    with Recorder(model, num_classes=3) as rec:
        model(torch.randn(4, 3, 16, 16))
        rec.update(torch.tensor([0, 1, 2, 0]))
    assert rec.stats.blocks[names[-1]].mean.shape == (3, 64)
    assert gate_modules(model) == [s.name for s in iter_attention(model)] and len(gate_modules(model)) == 9
    assert model_attention(model) == toy
    assert attention_kind(f"{toy}_resnet20") == toy  # a model name the ledger reads when meta has no kind
    assert twin_name(f"{toy}_resnet20", ["resnet20"]) == "resnet20"  # `senet bench` pairs it with its baseline


def test_fused_path_takes_the_new_kind(toy: str) -> None:
    model = _perturb(create_model("se_resnet20", attn_layer=toy))
    se = create_model("se_resnet20")
    opt = optimize_for_inference(model)
    assert opt._senet_fused_tails == optimize_for_inference(se)._senet_fused_tails > 0
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(opt(x), model(x), rtol=1e-5, atol=1e-5)


def test_squeeze_first_uses_the_declared_linear_squeeze(toy: str) -> None:
    bottleneck = dict(block="bottleneck", layers=(1, 1, 1), stem="cifar", stem_width=16, widths=(16, 32, 64))
    model = _perturb(ResNet(**bottleneck, num_classes=10, attn_layer=toy))
    opt = optimize_for_inference(model)
    assert "attn_tail_squeeze_first" in opt.layer1[0].code
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(opt(x), model(x), rtol=1e-4, atol=1e-5)


def test_retrofit_wrapper_reports_its_new_kind(toy: str) -> None:
    from senet.retrofit import IdentityInitAttn, retrofit

    model, _ = retrofit(create_model("resnet20"), toy)
    sites = list(iter_attention(model))
    assert sites and all(isinstance(s.module, IdentityInitAttn) and s.kind == toy for s in sites)
    assert gate_module(sites[0].module) is sites[0].module.attn.gate
    assert model_attention(model) == toy


def test_unknown_kind_and_bad_registrations() -> None:
    with pytest.raises(ValueError, match="choose one of: none, eca"):
        create_attn("toy_not_registered", 8)
    with pytest.raises(ValueError, match="already registered"):
        register_attn("se", ToyGate)
    with pytest.raises(ValueError, match="lower-case"):
        register_attn("none", ToyGate)


def test_unregistering_a_variant_keeps_the_class_kind() -> None:
    register_attn("se_sig2", functools.partial(SqueezeExcite, gate_layer="sigmoid"))
    try:
        assert attn_kind(create_attn("se_sig2", 16)) == "se"  # a variant: the class keeps its first name
    finally:
        unregister_attn("se_sig2")
    assert attn_kind(create_attn("se_hs", 16)) == "se" and attn_kind(nn.ReLU()) is None


def test_iter_attention_outermost_and_nested() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 1), CBAM(8, rd_ratio=0.5), SCSE(8, rd_ratio=0.5))
    assert [(s.name, s.kind) for s in iter_attention(net)] == [("1", "cbam"), ("2", "scse")]
    nested = [s.name for s in iter_attention(net, nested=True)]
    assert nested == ["1", "1.channel", "1.spatial", "2", "2.cse"]
    assert gate_module(net[2]) is net[2].cse.gate  # scSE records its channel (cSE) gate


def test_scse_models_record_and_fuse_like_the_others() -> None:
    """scSE derives the contract too: its gate is recorded (it used to have none) and optimization keeps outputs."""
    model = _perturb(create_model("resnet20", attn_layer="scse"))
    with Recorder(model, num_classes=2) as rec:
        model(torch.randn(2, 3, 16, 16))
        rec.update(torch.tensor([0, 1]))
    assert len(rec.stats.blocks) == 9
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(optimize_for_inference(model)(x), model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("kind", "given", "defaults", "tuned_for", "expected"),
    [
        ("se", None, {"rd_min": 4}, None, {}),  # tuned for a plain entrypoint (None): not for SE
        ("se", {"rd_min": 2}, {"rd_min": 4}, "se", {"rd_min": 2}),  # the user's value wins
        ("eca", None, {"rd_min": 4}, "eca", {}),  # no such option: dropped
        ("se", {"rd_channels": 8}, {"rd_min": 4, "act_layer": "silu"}, "se", {"act_layer": "silu", "rd_channels": 8}),
        ("eca", {"kernel_size": 3}, {"rd_ratio": 0.125}, "se", {"kernel_size": 3}),  # tuned for another kind
        ("se_hs", None, {"rd_ratio": 0.25}, SqueezeExcite, {"rd_ratio": 0.25}),  # a class matches its variants
        ("cbam", None, {"rd_ratio": 0.25}, SqueezeExcite, {}),
        ("none", {"x": 1}, {"rd_ratio": 0.25}, "none", {"x": 1}),  # no attention: the user's options as given
    ],
)
def test_merge_attn_kwargs(kind, given, defaults, tuned_for, expected) -> None:
    assert merge_attn_kwargs(kind, given, defaults, tuned_for=tuned_for) == expected
    assert merge_attn_kwargs("se", {"rd_ratio": 0.5}, {"rd_min": 4}) == {"rd_min": 4, "rd_ratio": 0.5}
