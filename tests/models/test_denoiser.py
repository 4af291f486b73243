"""The residual denoiser family: registry entries, attention kinds, and the residual output equation."""

from __future__ import annotations

import torch
from torch import nn

from senet.layers import CBAM, EfficientChannelAttn, SqueezeExcite
from senet.models import ResidualDenoiser, create_model, list_models


def test_registered_with_and_without_attention() -> None:
    assert list_models("*denoiser") == ["cbam_denoiser", "denoiser", "eca_denoiser", "se_denoiser"]
    kinds = {"denoiser": None, "se_denoiser": SqueezeExcite, "eca_denoiser": EfficientChannelAttn}
    kinds["cbam_denoiser"] = CBAM
    for name, kind in kinds.items():
        m = create_model(name, width=16, blocks=2)
        attn = dict(m.attention_modules())
        assert list(attn) == ([] if kind is None else ["SE_1_1", "SE_1_2"])
        assert all(isinstance(a, kind) for a in attn.values())
    # Attention adds parameters only inside the blocks: the SE twin = plain + 2 x SE(64, r=16).
    plain = sum(p.numel() for p in create_model("denoiser").parameters())
    se = sum(p.numel() for p in create_model("se_denoiser").parameters())
    assert se - plain == 8 * (64 * 4 + 4 + 4 * 64 + 64)


def test_predicts_the_noise_residual() -> None:
    torch.manual_seed(0)
    m = create_model("se_denoiser", width=8, blocks=2, num_classes=10).eval()  # num_classes is ignored
    x = torch.rand(2, 3, 13, 21)
    with torch.no_grad():
        y = m(x)
        torch.testing.assert_close(y, x - m.tail(m.body(m.head(x))))
    assert y.shape == x.shape
    direct = ResidualDenoiser(width=8, blocks=1, residual=False).eval()
    with torch.no_grad():
        torch.testing.assert_close(direct(x), direct.tail(direct.body(direct.head(x))))
    assert isinstance(m.head[1], nn.ReLU)
