"""MobileNetV3 / EfficientNet / EfficientNet-Lite: exact torchvision/timm counts, MACs, attention as an argument."""

from __future__ import annotations

import pytest
import torch

from senet.bench.flops import count_macs, count_params
from senet.layers import CBAM, EfficientChannelAttn, SqueezeExcite
from senet.models import create_model
from senet.models._mbconv import Conv2dSame, InvertedResidual

# torchvision's published parameter counts and GFLOPS (its weights' ``num_params`` / ``_ops`` metadata, which
# count MACs) at the evaluation crop; timm's for EfficientNet-Lite.
REFERENCE = {
    "mobilenet_v3_large": (5_483_032, 0.217, 224),
    "mobilenet_v3_small": (2_542_856, 0.057, 224),
    "efficientnet_b0": (5_288_548, 0.386, 224),
    "efficientnet_b1": (7_794_184, 0.687, 240),
    "efficientnet_b2": (9_109_994, 1.088, 288),
    "efficientnet_b3": (12_233_232, 1.827, 300),
    "efficientnet_lite0": (4_652_008, None, 224),
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_params_and_macs_equal_torchvision(name: str) -> None:
    params, gmacs, size = REFERENCE[name]
    model = create_model(name)
    assert count_params(model) == params
    if gmacs is not None:
        assert round(count_macs(model, torch.randn(1, 3, size, size), elementwise=False).gmacs, 3) == gmacs


@pytest.mark.parametrize("name", ["mobilenet_v3_large", "mobilenet_v3_small", "efficientnet_b0", "efficientnet_b2"])
def test_counts_equal_installed_torchvision(name: str) -> None:
    torchvision = pytest.importorskip("torchvision")
    with torch.device("meta"):
        ref = getattr(torchvision.models, name)()
        ours = create_model(name)
    assert count_params(ours) == count_params(ref)


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_lite_counts_equal_timm(name: str) -> None:
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        ref = timm.create_model(name)
        ours = create_model(name)
    assert count_params(ours) == count_params(ref)


def test_se_is_where_and_as_the_papers_put_it() -> None:
    m = create_model("mobilenet_v3_large")
    blocks = [b for b in m.modules() if isinstance(b, InvertedResidual)]
    se = [b for b in blocks if b.attn is not None]
    assert len(blocks) == 15 and len(se) == 8  # the paper's Table 1 marks 8 of the 15 bnecks
    first = se[0]  # 72 expanded channels -> make_divisible(72 / 4, 8) = 24, hard-sigmoid gate
    assert isinstance(first.attn, SqueezeExcite) and first.attn.channels == 72 and first.attn.rd_channels == 24
    assert isinstance(first.attn.gate, torch.nn.Hardsigmoid) and isinstance(first.attn.act, torch.nn.ReLU)
    e = create_model("efficientnet_b0")
    blk = e.blocks[1][0]  # 16 -> 96 expanded: SE width 0.25 * 16 input channels = 4, SiLU
    assert blk.attn.channels == 96 and blk.attn.rd_channels == 4 and isinstance(blk.attn.act, torch.nn.SiLU)
    assert isinstance(blk.attn.gate, torch.nn.Sigmoid)


def test_attention_is_one_string_away() -> None:
    from senet.models.mobilenetv3 import mobilenet_v3_large

    # create_model drops None overrides (unset CLI flags), so "none" is its spelling; the entrypoint takes None.
    assert list(mobilenet_v3_large(attn_layer=None).attention_modules()) == []
    plain = create_model("mobilenet_v3_large", attn_layer="none")
    assert list(plain.attention_modules()) == []
    eca = create_model("mobilenet_v3_large", attn_layer="eca")
    kinds = {type(m) for _, m in eca.attention_modules()}
    assert kinds == {EfficientChannelAttn} and len(list(eca.attention_modules())) == 8
    cbam = create_model("efficientnet_b0", attn_layer="cbam")
    assert {type(m) for _, m in cbam.attention_modules()} == {CBAM}
    assert count_params(plain) < count_params(eca) < count_params(create_model("mobilenet_v3_large"))
    lite = create_model("efficientnet_lite0")
    assert list(lite.attention_modules()) == []
    lite_se = create_model("efficientnet_lite0", attn_layer="se")
    assert len(list(lite_se.attention_modules())) == 16
    # user options update the paper's SE form rather than replacing it
    wide = create_model("efficientnet_b0", attn_kwargs={"rd_ratio": 0.5})
    assert wide.blocks[1][0].attn.rd_channels == 8
    with pytest.raises(ValueError, match="choose one of"):
        create_model("efficientnet_b0", attn_layer="nope")


def test_stochastic_depth_and_dropout_as_torchvision() -> None:
    torchvision = pytest.importorskip("torchvision")
    ref = torchvision.models.efficientnet_b2()
    ours = create_model("efficientnet_b2")
    ref_p = [m.p for m in ref.modules() if type(m).__name__ == "StochasticDepth"]
    # torchvision gives every block a StochasticDepth (a no-op without a residual); ours only where there is one.
    ours_p = [b.drop_path.p if b.has_skip else None for b in ours.modules() if isinstance(b, InvertedResidual)]
    assert len(ref_p) == len(ours_p)
    assert all(o is None or o == pytest.approx(r) for o, r in zip(ours_p, ref_p))
    assert ours.head_drop.p == ref.classifier[0].p == 0.3
    assert create_model("mobilenet_v3_large").head_drop.p == 0.2


def test_same_padding_is_tensorflows() -> None:
    conv = Conv2dSame(1, 1, 3, 2, bias=False)
    torch.nn.init.ones_(conv.weight)
    x = torch.ones(1, 1, 4, 4)
    y = conv(x)
    # SAME with stride 2 on 4 pixels pads 1 at the bottom/right only (PyTorch's padding=1 pads both sides): the
    # top-left window is all image (9), the bottom-right one has a padded row and column (4).
    assert y.shape == (1, 1, 2, 2)
    assert y[0, 0].tolist() == [[9.0, 6.0], [6.0, 4.0]]
    m = create_model("efficientnet_lite0", pad_type="same")
    assert any(isinstance(c, Conv2dSame) for c in m.modules())
    assert m(torch.randn(1, 3, 67, 67)).shape == (1, 1000)
