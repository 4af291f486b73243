"""Every registered model: forward + backward on a small input, and the model contract."""

from __future__ import annotations

import pytest
import torch

from senet.layers import CBAM, SCSE, EffectiveSE, EfficientChannelAttn, NoSqueeze, SqueezeExcite
from senet.models import create_model, list_models

ATTN_TYPES = (SqueezeExcite, EfficientChannelAttn, CBAM, SCSE, EffectiveSE, NoSqueeze)

# Forward + backward of these costs several seconds each on 2 cores (60M+ parameters or 100+ layers): CI runs
# them (marked slow); the quick run still builds them and checks shapes and the head on the meta device below.
SLOW = {n for n in list_models() if "101" in n or "152" in n or "wide_" in n or "vgg" in n} | {"senet154"}
ALL = list_models(exclude="*denoiser")  # image-to-image models, not classifiers: tests/models/test_denoiser.py
NUM_CLASSES = 7


def _input(model: torch.nn.Module) -> torch.Tensor:
    c, h, _ = model.default_input_size
    # 64x64 for ImageNet nets (5 stride-2 stages leave 2x2), 32x32 for CIFAR nets.
    size = 32 if h == 32 else 64
    return torch.randn(2, c, size, size)


def test_registry_is_complete() -> None:
    expected = (
        [f"resnet{d}" for d in (18, 34, 50, 101, 152)]
        + [f"se_resnet{d}" for d in (18, 34, 50, 101, 152)]
        + [f"se_resnet{d}_caffe" for d in (50, 101, 152)]
        + ["resnext50_32x4d", "resnext101_32x4d", "se_resnext50_32x4d", "se_resnext101_32x4d", "senet154"]
        + [f"eca_resnet{d}" for d in (50, 101, 152)]
        + ["cbam_resnet50", "cbam_resnet101"]
        + [f"{p}resnet{d}" for p in ("", "se_", "eca_", "cbam_") for d in (20, 32, 44, 56, 110, 164)]
        + [f"preact_resnet{d}" for d in (20, 32, 44, 56, 110, 164)]
        + ["wrn16_8", "se_wrn16_8", "mobilenet_v2", "se_mobilenet_v2", "eca_mobilenet_v2", "vgg16_bn", "se_vgg16_bn"]
        + ["mobilenet_v3_large", "mobilenet_v3_small"]
        + [f"efficientnet_b{i}" for i in range(4)]
        + [f"efficientnet_lite{i}" for i in range(3)]
    )
    assert sorted(set(expected) - set(ALL)) == []


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in ALL])
def test_forward_backward(name: str) -> None:
    model = create_model(name, num_classes=NUM_CLASSES)
    model.train()
    x = _input(model)
    out = model(x)
    assert out.shape == (2, NUM_CLASSES)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    # Frozen parameters (SpeedNet's whitening filters and BN scales) are meant to get none.
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == [], f"parameters without gradient: {no_grad[:5]}"
    assert model.num_classes == NUM_CLASSES

    model.eval()
    with torch.no_grad():
        feats = model.forward_features(x)
        pre = model.forward_head(feats, pre_logits=True)
        logits = model.forward_head(feats)
        assert pre.shape == (2, model.num_features)
        torch.testing.assert_close(logits, model.get_classifier()(pre))
        model.reset_classifier(0)
        assert model.num_classes == 0
        pooled = model(x)
        assert pooled.shape == (2, model.num_features)
        torch.testing.assert_close(pooled, pre)
        model.reset_classifier(3)
        assert model(x).shape == (2, 3)


@pytest.mark.parametrize("name", sorted(SLOW))
def test_slow_models_build_and_run_on_meta(name: str) -> None:
    # The cheap check of the big nets in the quick run: structure, shapes and the head contract, no arithmetic.
    with torch.device("meta"):
        model = create_model(name, num_classes=NUM_CLASSES)
        x = torch.empty(2, 3, 64, 64)
    assert model(x).shape == (2, NUM_CLASSES)
    model.reset_classifier(0)
    assert model(x).shape == (2, model.num_features)


@pytest.mark.parametrize("name", ALL)
def test_attention_modules_match_the_model(name: str) -> None:
    with torch.device("meta"):
        model = create_model(name)
    blocks = list(model.attention_modules())
    names = [n for n, _ in blocks]
    assert len(set(names)) == len(names)
    assert all(n.startswith("SE_") for n in names)
    # Every attention block of the model is listed, and nothing else.
    listed = {id(m) for _, m in blocks}
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, ATTN_TYPES)]
    outer = {id(m) for n, m in found if not any(n.startswith(p + ".") for p, _ in found)}
    assert listed == outer
    # MobileNetV3 and EfficientNet-B* have SE by default, as in their papers (EfficientNet-Lite has none).
    se_default = name.startswith(("mobilenet_v3", "efficientnet_b"))
    has_attn = name.split("_")[0] in ("se", "eca", "cbam") or name == "senet154" or se_default
    assert bool(blocks) == has_attn
    stages = [int(n.split("_")[1]) for n in names]
    assert stages == sorted(stages)
