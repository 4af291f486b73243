"""SpeedNet: the speedrun CIFAR network -- registry twins, closed-form size, frozen pieces, whitening init."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from senet.models import SpeedNet, create_model

TWINS = {
    "speednet": None,
    "se_speednet": "SqueezeExcite",
    "eca_speednet": "EfficientChannelAttn",
    "cbam_speednet": "CBAM",
}


def _conv_params(widths: tuple[int, ...] = (64, 256, 256)) -> int:
    # whitening 24 x 3 x 2 x 2 + bias 24; per group two bias-free 3x3 convs and two BN (scale + shift); bias-free fc.
    n, prev = 24 * 12 + 24, 24
    for w in widths:
        n += prev * w * 9 + w * w * 9 + 4 * w
        prev = w
    return n + prev * 10


@pytest.mark.parametrize("name", list(TWINS))
def test_twins_differ_only_by_attention(name: str) -> None:
    m = create_model(name)
    base = create_model("speednet")
    attn = [type(a).__name__ for _, a in m.attention_modules()]
    assert attn == ([TWINS[name]] * 3 if TWINS[name] else [])
    assert [n for n, _ in m.attention_modules()] == (["SE_1_1", "SE_2_1", "SE_3_1"] if TWINS[name] else [])
    extra = sum(p.numel() for _, a in m.attention_modules() for p in a.parameters())
    assert sum(p.numel() for p in m.parameters()) == sum(p.numel() for p in base.parameters()) + extra
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_size_closed_form_and_se_width_floor() -> None:
    assert sum(p.numel() for p in create_model("speednet").parameters()) == _conv_params()
    se = create_model("se_speednet")
    # r = 16 with a floor of 4 hidden units: 64 -> 4, 256 -> 16; each SE has 2 C h + h + C parameters.
    assert [a.rd_channels for _, a in se.attention_modules()] == [4, 16, 16]
    extra = sum(2 * c * h + h + c for c, h in ((64, 4), (256, 16), (256, 16)))
    assert sum(p.numel() for p in se.parameters()) == _conv_params() + extra
    wide = create_model("speednet", widths=(32, 64, 64), num_classes=0)
    assert wide(torch.randn(1, 3, 32, 32)).shape == (1, 64)
    with pytest.raises(ValueError, match="3 entries"):
        SpeedNet(widths=(64, 256))


def test_frozen_parts_and_identity_init() -> None:
    m = create_model("speednet")
    assert not m.whiten.weight.requires_grad and m.whiten.bias.requires_grad
    bns = [b for b in m.modules() if isinstance(b, nn.BatchNorm2d)]
    assert len(bns) == 6 and all(not b.weight.requires_grad and b.bias.requires_grad for b in bns)
    conv = m.layers[1][0]  # 64 -> 256: its first 64 filters pass their inputs through
    x = torch.randn(1, 64, 8, 8)
    assert torch.equal(nn.functional.conv2d(x, conv.weight[:64], padding=1), x)


def test_whitening_init_decorrelates_patches() -> None:
    g = torch.Generator().manual_seed(0)
    # Strongly correlated channels and neighbours: a smoothed image with mixed colours.
    base = nn.functional.avg_pool2d(torch.randn(400, 1, 34, 34, generator=g), 3, 1)
    mix = torch.tensor([1.0, 0.8, 0.6])[None, :, None, None]
    imgs = base * mix + 0.1 * torch.randn(400, 3, 32, 32, generator=g)
    m = create_model("speednet")
    m.init_whitening(imgs, eps=0.0)
    out = m.whiten(imgs)[:, :12]  # the positive half; the other 12 filters are their negatives
    assert torch.allclose(m.whiten.weight[12:], -m.whiten.weight[:12])
    flat = out.permute(1, 0, 2, 3).reshape(12, -1).double()
    cov = torch.cov(flat)
    assert torch.allclose(cov, torch.eye(12, dtype=torch.float64), atol=0.02)
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        m.init_whitening(torch.randn(4, 1, 8, 8))
