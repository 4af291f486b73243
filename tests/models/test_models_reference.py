"""Parameter counts and MACs at 224 against reference-numbers.md section 1, and parity with timm / torchvision.

Counting runs on the meta device (shapes only, no arithmetic), so even SENet-154 costs about a second.
"""

from __future__ import annotations

import re

import pytest
import torch

from senet.bench.flops import count_macs, count_params
from senet.models import create_model

# reference-numbers.md section 1: (model, overrides, params in M, GMACs at 224), to the digits shown there.
REFERENCE = [
    ("resnet50", {}, 25.557, 4.089),
    ("se_resnet50", {}, 28.088, 4.092),
    ("se_resnet50_caffe", {}, 28.088, 3.860),
    ("se_resnet101_caffe", {}, 49.327, 7.575),
    ("se_resnet152_caffe", {}, 66.822, 11.289),
    ("se_resnext50_32x4d", {}, 27.560, 4.233),
    ("se_resnext101_32x4d", {}, 48.955, 7.975),
    ("senet154", {}, 115.089, 20.688),
    ("se_resnet18", {}, 11.779, 1.814),
    ("se_resnet34", {}, 21.959, 3.664),
    ("eca_resnet50", {}, 25.557, 4.089),
    ("cbam_resnet50", {}, 28.074, 4.096),
    # timm's rounding of SE widths to a multiple of 8 (the "11.780M / 21.960M" notes).
    ("se_resnet18", {"attn_kwargs": {"rd_divisor": 8}}, 11.780, None),
    ("se_resnet34", {"attn_kwargs": {"rd_divisor": 8}}, 21.960, None),
]


def _meta(name: str, **kw) -> torch.nn.Module:
    with torch.device("meta"):
        return create_model(name, **kw)


@pytest.mark.parametrize(("name", "kw", "params_m", "gmacs"), REFERENCE)
def test_reference_params_and_macs(name: str, kw: dict, params_m: float, gmacs: float | None) -> None:
    model = _meta(name, **kw)
    assert round(count_params(model) / 1e6, 3) == params_m
    if gmacs is not None:
        with torch.device("meta"):
            x = torch.empty(1, 3, 224, 224)
        assert round(count_macs(model, x, elementwise=False).macs / 1e9, 3) == gmacs


def test_paper_cost_statements() -> None:
    # Paper Sec. 4: SE-ResNet-50 adds ~2.5M parameters (~10 %), and the last stage holds most of them.
    base, se = count_params(_meta("resnet50")), count_params(_meta("se_resnet50"))
    assert 2.4e6 < se - base < 2.6e6
    no_last = count_params(_meta("se_resnet50", attn_stages=(2, 3, 4)))
    assert (no_last - base) / base < 0.04 + 0.005  # "cuts the increase to about 4 %"


def _copy_state(dst: torch.nn.Module, src: torch.nn.Module, rename=lambda k: k) -> None:
    own = dst.state_dict()
    sd = {rename(k): v for k, v in src.state_dict().items()}
    sd = {k: v.reshape(own[k].shape) if k in own else v for k, v in sd.items()}  # 1x1 conv SE weights -> Linear
    dst.load_state_dict(sd, strict=True)


def _assert_same_output(ours: torch.nn.Module, ref: torch.nn.Module, size: int = 64) -> None:
    ours.eval()
    ref.eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-4, atol=1e-5)


def _timm_se(k: str) -> str:
    return k.replace(".se.", ".attn.")


def _cadene(k: str) -> str:
    k = k.replace(".se_module.", ".attn.").replace("last_linear.", "fc.")
    return re.sub(r"^layer0\.(conv|bn)1\.", r"\g<1>1.", k)


def _cadene_deep(k: str) -> str:
    return _cadene(re.sub(r"^layer0\.", "stem.", k))


TIMM = [
    ("se_resnet50", {}, "seresnet50", {}, _timm_se),
    # timm's SE-ResNeXt uses torchvision's padded stem pool; senet's follows the original release (ceil_mode).
    ("se_resnext50_32x4d", {"stem_pool": "pad"}, "seresnext50_32x4d", {}, _timm_se),
    ("eca_resnet50", {}, "resnet50", {"block_args": {"attn_layer": "eca"}}, _timm_se),
    ("se_resnet50_caffe", {}, "legacy_seresnet50", {}, _cadene),
    ("se_resnext50_32x4d", {}, "legacy_seresnext50_32x4d", {}, _cadene),
    ("se_resnet18", {"attn_kwargs": {"rd_divisor": 8}}, "seresnet18", {}, _timm_se),
    pytest.param("senet154", {}, "legacy_senet154", {}, _cadene_deep, marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("name", "kw", "timm_name", "timm_kw", "rename"), TIMM)
def test_timm_parity(name: str, kw: dict, timm_name: str, timm_kw: dict, rename) -> None:
    timm = pytest.importorskip("timm")
    ref = timm.create_model(timm_name, pretrained=False, **timm_kw)
    ours = create_model(name, **kw)
    assert count_params(ours) == count_params(ref)
    _copy_state(ours, ref, rename)
    _assert_same_output(ours, ref)


TORCHVISION = [
    ("resnet18", "resnet18"),
    ("resnet50", "resnet50"),
    ("resnext50_32x4d", "resnext50_32x4d"),
    ("mobilenet_v2", "mobilenet_v2"),
    pytest.param("wide_resnet50_2", "wide_resnet50_2", marks=pytest.mark.slow),
    pytest.param("vgg16_bn", "vgg16_bn", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("name", "tv_name"), TORCHVISION)
def test_torchvision_keys_and_outputs(name: str, tv_name: str) -> None:
    import torchvision

    ref = getattr(torchvision.models, tv_name)()
    ours = create_model(name)
    assert list(ours.state_dict()) == list(ref.state_dict())  # same names, same order
    _copy_state(ours, ref)
    _assert_same_output(ours, ref)


def test_attention_twins_keep_the_baseline_keys() -> None:
    # An SE/ECA twin is its baseline plus keys under `attn`: baseline weights load with strict=False and only
    # attention keys missing.
    for base, twin in [
        ("mobilenet_v2", "se_mobilenet_v2"),
        ("resnet50", "cbam_resnet50"),
        ("vgg16_bn", "se_vgg16_bn"),
    ]:
        b, t = _meta(base).state_dict(), _meta(twin).state_dict()
        assert set(b) <= set(t)
        extra = set(t) - set(b)
        assert extra and all(".attn." in k or k.startswith("attn.") or ".3." in k for k in extra), sorted(extra)[:3]
