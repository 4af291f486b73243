"""senet.retrofit: every family keeps its function under init="identity", parameter counts match closed forms,
positions/stages/targets put blocks where the paper says, and the result trains, copies and reports."""

from __future__ import annotations

import copy
import functools
import io
import json

import pytest
import torch
import torchvision.models as tvm
from torch import nn

import senet
from senet import SenetError
from senet.layers import eca_kernel_size
from senet.retrofit import IdentityInitAttn, attention_modules, retrofit

X = (1, 3, 64, 64)

# Independent ground truth: the channels each site gates, read off the published architectures.
RESNET18_C = [64] * 2 + [128] * 2 + [256] * 2 + [512] * 2
RESNET50_C = [256] * 3 + [512] * 4 + [1024] * 6 + [2048] * 3
RESNET50_WIDTH = [64] * 3 + [128] * 4 + [256] * 6 + [512] * 3  # 3x3 conv width (the "inner" position)
RESNET50_IN = [64, 256, 256] + [256, 512, 512, 512] + [512] + [1024] * 5 + [1024, 2048, 2048]  # block inputs ("pre")
MOBILENETV2_HIDDEN = [32, 96, 144, 144, 192, 192, 192, 384, 384, 384, 384, 576, 576, 576, 960, 960, 960]
VGG11_C = [64, 128, 256, 512, 512]


def se_params(cs, r=16, bias=True):
    return sum(2 * c * (c // r) + ((c // r) + c if bias else 0) for c in cs)


def eca_params(cs):
    return sum(eca_kernel_size(c) for c in cs)


def cbam_params(cs, r=16, k=7):
    return sum(2 * c * (c // r) + 2 * k * k + 2 for c in cs)  # MLP without bias, 2->1 conv without bias, BN(1)


@functools.cache
def _vgg() -> nn.Module:
    # ~2 s to build, mostly the 120M-parameter classifier: build once per worker and keep a small head.
    model = tvm.vgg11_bn(num_classes=10, init_weights=False)
    model.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, 10))
    return model


FAMILIES = {
    "resnet18": lambda: tvm.resnet18(num_classes=10),
    "resnet50": lambda: tvm.resnet50(num_classes=10),
    "resnext50_32x4d": lambda: tvm.resnext50_32x4d(num_classes=10),
    "wide_resnet50_2": lambda: tvm.wide_resnet50_2(num_classes=10),
    "mobilenet_v2": lambda: tvm.mobilenet_v2(num_classes=10),
    "vgg11_bn": lambda: copy.deepcopy(_vgg()),
    "regnet_y_400mf": lambda: tvm.regnet_y_400mf(num_classes=10),
    "regnet_x_400mf": lambda: tvm.regnet_x_400mf(num_classes=10),
    "efficientnet_b0": lambda: tvm.efficientnet_b0(num_classes=10),
    "mobilenet_v3_small": lambda: tvm.mobilenet_v3_small(num_classes=10),
    "timm_resnet18": lambda: pytest.importorskip("timm").create_model("resnet18", num_classes=10),
    "timm_efficientnet_b0": lambda: pytest.importorskip("timm").create_model("efficientnet_b0", num_classes=10),
}


def _randomize_bn(model: nn.Module) -> nn.Module:
    # Fresh BNs are identities in eval mode; random statistics make "same output" a real check.
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            # timm zero-initialises each block's last BN, which would hide anything on the residual branch.
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model


_SMALL = ("resnet18", "mobilenet_v2", "vgg11_bn", "regnet_x_400mf", "efficientnet_b0")
IDENTITY_CASES = [(f, "se") for f in FAMILIES if f != "wide_resnet50_2"] + [
    (f, k) for f in _SMALL for k in ("eca", "cbam")
]


@pytest.mark.parametrize(("family", "kind"), IDENTITY_CASES)
def test_identity_init_keeps_outputs(family, kind):
    model = _randomize_bn(FAMILIES[family]()).eval()
    twin = copy.deepcopy(model)
    x = torch.randn(X)
    with torch.no_grad():
        before = model(x)
    model, report = retrofit(model, kind, init="identity")
    with torch.no_grad():
        after = model(x)
    assert report.sites, "nothing inserted"
    torch.testing.assert_close(after, before, rtol=0, atol=1e-5)
    assert all(isinstance(model.get_submodule(s.path), IdentityInitAttn) for s in report.sites)
    names = [n for n, _ in attention_modules(model)]
    assert names == [s.name for s in report.sites] and len(set(names)) == len(names)
    # With paper init the same insertion changes the function (the check above is not vacuous).
    paper, _ = retrofit(twin, kind, init="paper")
    with torch.no_grad():
        assert not torch.allclose(paper(x), before, atol=1e-5)


@pytest.mark.parametrize(
    ("family", "kind", "closed_form"),
    [
        ("resnet18", "se", se_params(RESNET18_C)),
        ("resnet50", "se", se_params(RESNET50_C)),
        ("resnet50", "eca", eca_params(RESNET50_C)),
        ("resnet50", "cbam", cbam_params(RESNET50_C)),
        ("resnext50_32x4d", "se", se_params(RESNET50_C)),
        ("wide_resnet50_2", "se", se_params(RESNET50_C)),
        ("mobilenet_v2", "se", se_params(MOBILENETV2_HIDDEN, r=8)),
        ("mobilenet_v2", "eca", eca_params(MOBILENETV2_HIDDEN)),
        ("vgg11_bn", "se", se_params(VGG11_C)),
        # Swapping an SE for one of the same reduced width adds nothing (torchvision's SE has the same 2 FCs+biases).
        ("efficientnet_b0", "se", 0),
        ("regnet_y_400mf", "se", 0),
        ("mobilenet_v3_small", "se", 0),
        ("timm_resnet18", "se", se_params(RESNET18_C)),
    ],
)
@pytest.mark.parametrize("init", ["paper", "identity"])
def test_added_params_closed_form(family, kind, closed_form, init):
    model = FAMILIES[family]()
    n0 = sum(p.numel() for p in model.parameters())
    model, report = retrofit(model, kind, init=init)
    n1 = sum(p.numel() for p in model.parameters())
    assert report.params_before == n0 and report.params_after == n1
    if init == "paper":
        assert n1 - n0 == closed_form
    else:
        # One gamma per site; a swap keeps the old SE inside the wrapper, so nothing is removed.
        removed = sum(s.removed for s in report.sites)
        assert n1 - n0 == closed_form + len(report.sites) + removed


def test_swap_with_eca_removes_old_se():
    model = tvm.efficientnet_b0()
    from torchvision.ops.misc import SqueezeExcitation

    old = sum(p.numel() for m in model.modules() if isinstance(m, SqueezeExcitation) for p in m.parameters())
    model, report = retrofit(model, "eca", init="paper")
    assert all(s.action == "replace" for s in report.sites) and len(report.sites) == 16
    new = sum(eca_kernel_size(s.channels) for s in report.sites)
    assert report.params_added == new - old


RESNET50_CHANNELS = {
    "standard": RESNET50_C,
    "post": RESNET50_C,
    "identity": RESNET50_C,
    "inner": RESNET50_WIDTH,
    "pre": RESNET50_IN,
}


@pytest.mark.parametrize("position", list(RESNET50_CHANNELS))
def test_resnet_positions(position):
    x = torch.randn(X)
    base = _randomize_bn(tvm.resnet50(num_classes=10)).eval()
    with torch.no_grad():
        y0 = base(x)
    model, report = retrofit(copy.deepcopy(base), "se", position=position, init="identity")
    assert [s.channels for s in report.sites] == RESNET50_CHANNELS[position]
    with torch.no_grad():
        torch.testing.assert_close(model(x), y0, rtol=0, atol=1e-5)
    assert report.params_added == se_params(RESNET50_CHANNELS[position]) + 16


def _paper_output(position: str, x: torch.Tensor) -> torch.Tensor:
    torch.manual_seed(0)
    model = _randomize_bn(tvm.resnet18(num_classes=10)).eval()
    torch.manual_seed(1)
    retrofit(model, "se", position=position, init="paper")
    with torch.no_grad():
        return model(x)


def test_positions_compute_different_functions():
    x = torch.randn(2, 3, 64, 64)
    outs = {p: _paper_output(p, x) for p in ("standard", "pre", "post", "identity", "inner")}
    keys = list(outs)
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            assert not torch.allclose(outs[a], outs[b], atol=1e-4), (a, b)


def test_resnet_standard_matches_timm_seresnet50():
    """Retrofitted torchvision resnet50 (SE, standard, paper init) == timm's seresnet50, weight for weight."""
    timm = pytest.importorskip("timm")
    ref = _randomize_bn(timm.create_model("seresnet50", num_classes=10)).eval()
    model, _ = retrofit(tvm.resnet50(num_classes=10), "se", init="paper", rd_divisor=8)
    model.eval()
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ref.parameters())
    sd = {k.replace(".se.", ".attn."): v.flatten(1) if ".se.fc" in k and v.ndim == 4 else v
          for k, v in ref.state_dict().items()}  # fmt: skip
    model.load_state_dict(sd, strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), rtol=1e-4, atol=1e-5)


def test_attention_modules_paper_names_and_gate_hooks():
    model, _ = retrofit(tvm.resnet50(), "se", init="identity")
    names = [n for n, _ in model.attention_modules()]
    expected = [f"SE_{s}_{b}" for s, n in zip((2, 3, 4, 5), (3, 4, 6, 3)) for b in range(1, n + 1)]
    assert names == expected
    assert [n for n, _ in attention_modules(model)] == expected
    gates = []
    for _, block in model.attention_modules():
        block.gate.register_forward_hook(lambda m, a, o: gates.append(o.shape))
    model.eval()(torch.randn(2, 3, 64, 64))
    assert gates == [(2, c) for c in RESNET50_C]


def test_stages_select_paper_stages():
    model, report = retrofit(tvm.resnet50(), "se", stages=[4], init="paper")
    assert [s.name for s in report.sites] == [f"SE_4_{i}" for i in range(1, 7)]
    assert all(s.path.startswith("layer3.") for s in report.sites)
    assert report.params_added == se_params([1024] * 6)
    with pytest.raises(SenetError, match=r"stages \[1\].*\[2, 3, 4, 5\]"):
        retrofit(tvm.resnet50(), "se", stages=[1, 2])


def test_targets_generic_rule():
    model = _randomize_bn(tvm.resnet18()).eval()
    x = torch.randn(X)
    with torch.no_grad():
        y0 = model(x)
    model, report = retrofit(model, "se", targets=["layer3.*"], init="identity")
    # "layer3.*" also matches layer3.0.conv1 etc.; only the outermost matches get a block.
    assert [s.path for s in report.sites] == ["layer3.0.retrofit_attn", "layer3.1.retrofit_attn"]
    assert [s.channels for s in report.sites] == [256, 256]
    with torch.no_grad():
        torch.testing.assert_close(model(x), y0, rtol=0, atol=0)
    # The hook applies the block: with gamma = 1 and a zero gate (fc2 bias -inf-ish) layer3's output is halved.
    wrapper = model.layer3[1].retrofit_attn
    with torch.no_grad():
        wrapper.gamma.fill_(1.0)
        wrapper.attn.fc2.weight.zero_()
        wrapper.attn.fc2.bias.zero_()  # gate = sigmoid(0) = 0.5
    feats = {}
    model.layer3.register_forward_hook(lambda m, a, o: feats.__setitem__("l3", o))
    model.layer3[1].register_forward_hook(lambda m, a, o: feats.__setitem__("b", o))
    with torch.no_grad():
        model(x)
    assert torch.equal(feats["l3"], feats["b"])
    # Survives deepcopy (the hook is a module-level function reading the module it is called on).
    clone = copy.deepcopy(model)
    with torch.no_grad():
        torch.testing.assert_close(clone(x), model(x))


def test_targets_on_custom_network():
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(SenetError, match=r"supported:.*targets=\[\.\.\.\].*0, 1, 2"):
        retrofit(net, "se")
    net, report = retrofit(net, "eca", targets=["0", "2"], init="paper")
    assert [s.channels for s in report.sites] == [8, 16]
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 16)
    with pytest.raises(SenetError, match="match no module"):
        retrofit(nn.Sequential(nn.Conv2d(3, 8, 3)), "se", targets=["layer9"])
    with pytest.raises(SenetError, match="feature map"):
        retrofit(nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten()), "se", targets=["1"])


def test_user_errors_are_senet_errors():
    with pytest.raises(SenetError, match="unknown init"):
        retrofit(tvm.resnet18(), "se", init="zeros")
    with pytest.raises(SenetError, match="unknown position"):
        retrofit(tvm.resnet18(), "se", position="middle")
    with pytest.raises(SenetError, match="unknown attention kind"):
        retrofit(tvm.resnet18(), "sse")
    with pytest.raises(SenetError, match="not available for MobileNetV2"):
        retrofit(tvm.mobilenet_v2(), "se", position="pre")
    with pytest.raises(SenetError, match="has no option"):
        retrofit(tvm.resnet18(), "eca", rd_ratio=0.5)
    model, _ = retrofit(tvm.resnet18(), "se")
    with pytest.raises(SenetError, match="already has"):
        retrofit(model, "se")
    with pytest.raises(SenetError, match="no attention"):
        attention_modules(tvm.resnet18())


def test_bad_knob_leaves_model_untouched():
    model = tvm.resnet18()
    keys = list(model.state_dict())
    with pytest.raises(SenetError):
        retrofit(model, "se", rd_channels=0)
    assert list(model.state_dict()) == keys


def test_identity_init_trains():
    torch.manual_seed(0)
    model, report = retrofit(tvm.resnet18(num_classes=4), "se", init="identity")
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 4, (8,))
    fc1 = model.layer4[1].attn.attn.fc1.weight.detach().clone()
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    gammas = torch.stack([model.get_submodule(s.path).gamma for s in report.sites])
    assert (gammas != 0).all(), "gamma must receive gradient from the first step"
    assert not torch.equal(model.layer4[1].attn.attn.fc1.weight, fc1), "attention weights must train once gamma moves"


def test_report_printable_and_json():
    _, report = retrofit(tvm.resnet18(), "se", init="paper")
    text = str(report)
    assert "+89,080 params" in text and "| SE_5_2 | layer4.1.attn | 512 | insert | 33,312 |" in text
    d = json.loads(json.dumps(report.to_dict()))
    assert d["params_added"] == 89080 and len(d["sites"]) == 8


def test_callable_module_and_pickle():
    model, _ = senet.retrofit(tvm.resnet18(), "se", position="pre")
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    x = torch.randn(X)
    model.eval(), loaded.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    assert len(list(loaded.attention_modules())) == 8
    assert isinstance(loaded.layer1[0], tvm.resnet.BasicBlock)


def test_timm_resnet_only_standard():
    timm = pytest.importorskip("timm")
    with pytest.raises(SenetError, match="not available for timm ResNet"):
        retrofit(timm.create_model("resnet18"), "se", position="post")


# ------------------------------------------------------------------------------------------- parity with senet's zoo
def test_torchvision_resnet50_retrofit_equals_senet_se_resnet50():
    """The issue's requirement: SE in the standard position, paper init == senet.models se_resnet50."""
    from senet.models import create_model

    ref = create_model("se_resnet50", num_classes=10)
    model, report = retrofit(tvm.resnet50(num_classes=10), "se", position="standard", init="paper")
    assert (
        sum(p.numel() for p in model.parameters())
        == sum(p.numel() for p in ref.parameters())
        == 28_088_024 - (1000 - 10) * 2049
    )
    sd = model.state_dict()
    assert {k: v.shape for k, v in sd.items()} == {k: v.shape for k, v in ref.state_dict().items()}
    ref.load_state_dict(_randomize_bn(model).state_dict(), strict=True)
    assert [n for n, _ in ref.attention_modules()] == [n for n, _ in model.attention_modules()]
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ref.eval()(x), model.eval()(x), rtol=1e-5, atol=1e-5)


def test_torchvision_mobilenet_v2_retrofit_equals_senet_se_mobilenet_v2():
    from senet.models import create_model

    ref = create_model("se_mobilenet_v2", num_classes=10)
    model, _ = retrofit(tvm.mobilenet_v2(num_classes=10), "se", init="paper")
    ref.load_state_dict(_randomize_bn(model).state_dict(), strict=True)
    assert [n for n, _ in ref.attention_modules()] == [n for n, _ in model.attention_modules()]
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ref.eval()(x), model.eval()(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("position", ["standard", "inner", "pre"])
def test_senet_resnet_retrofit_fills_its_slots(position):
    from senet.models import create_model

    base = _randomize_bn(create_model("resnet20", num_classes=10)).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        y0 = base(x)
    model, report = retrofit(copy.deepcopy(base), "se", position=position, init="identity", rd_ratio=1 / 4)
    with torch.no_grad():
        torch.testing.assert_close(model(x), y0, rtol=0, atol=1e-5)
    names = [n for n, _ in model.attention_modules()]
    assert names == [s.name for s in report.sites] and names[0] == "SE_2_1" and names[-1] == "SE_4_3"
    # Paper init gives exactly the zoo's SE twin (same keys and shapes).
    paper, _ = retrofit(copy.deepcopy(base), "se", position=position, init="paper", rd_ratio=1 / 4)
    twin = create_model(
        "resnet20", num_classes=10, attn_layer="se", attn_position=position, attn_kwargs={"rd_ratio": 1 / 4}
    )
    assert {k: v.shape for k, v in paper.state_dict().items()} == {k: v.shape for k, v in twin.state_dict().items()}
    twin.load_state_dict(paper.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(twin.eval()(x), paper.eval()(x))
