"""Small members of every registered model family, with random BN statistics so that folding is really tested."""

from __future__ import annotations

from typing import Any

import torch

from senet.models import create_model

# name -> (create_model overrides that shrink it, input size). One entry per family / block type / attention kind.
FAMILIES: dict[str, tuple[dict[str, Any], tuple[int, ...]]] = {
    "resnet18": ({"layers": (1, 1, 1, 1), "widths": (8, 8, 16, 16)}, (3, 32, 32)),
    "se_resnet18": ({"layers": (1, 1, 1, 1), "widths": (16, 16, 32, 32)}, (3, 32, 32)),
    "se_resnet50": ({"layers": (1, 1, 1, 1), "widths": (8, 16, 16, 32)}, (3, 32, 32)),
    "se_resnet50_caffe": ({"layers": (1, 1, 1, 1), "widths": (8, 16, 16, 32)}, (3, 33, 33)),
    "eca_resnet50": ({"layers": (1, 1, 1, 1), "widths": (8, 16, 16, 32)}, (3, 32, 32)),
    "cbam_resnet50": ({"layers": (1, 1, 1, 1), "widths": (8, 16, 16, 32)}, (3, 32, 32)),
    "se_resnext50_32x4d": ({"layers": (1, 1, 1, 1), "widths": (16, 16, 16, 16)}, (3, 32, 32)),
    "senet154": ({"layers": (1, 1, 1, 1), "widths": (32, 32, 32, 32), "stem_width": (8, 8, 16)}, (3, 32, 32)),
    "wide_resnet50_2": ({"layers": (1, 1, 1, 1), "widths": (8, 8, 16, 16)}, (3, 32, 32)),
    "se_resnet20": ({"layers": (1, 1, 1)}, (3, 16, 16)),
    "eca_resnet20": ({"layers": (1, 1, 1)}, (3, 16, 16)),
    "cbam_resnet20": ({"layers": (1, 1, 1)}, (3, 16, 16)),
    "se_resnet164": ({"layers": (1, 1, 1)}, (3, 16, 16)),
    "se_preact_resnet20": ({"layers": (1, 1, 1)}, (3, 16, 16)),
    "se_wrn16_8": ({"layers": (1, 1, 1), "widths": (16, 16, 32)}, (3, 16, 16)),
    "se_mobilenet_v2": ({"width_mult": 0.25}, (3, 32, 32)),
    "eca_mobilenet_v2": ({"width_mult": 0.25}, (3, 32, 32)),
    "se_vgg16_bn": ({"cfg": (8, "M", 16, "M")}, (3, 28, 28)),
}


def randomize_bn(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial BN statistics and affine parameters (fresh BNs are the identity in eval mode)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.data.copy_((torch.rand(n, generator=g) - 0.5) * 0.4)
    return model


def build(name: str) -> tuple[torch.nn.Module, tuple[int, ...]]:
    overrides, size = FAMILIES[name]
    return randomize_bn(create_model(name, num_classes=10, **overrides)).eval(), size
