"""EfficientNet-B0..B3 (SE with SiLU) and EfficientNet-Lite0..2 (no SE), the attention kind as an argument.

Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", ICML 2019, arXiv:1905.11946,
Table 1. SE sits after the depthwise conv of every MBConv block, with the reduced width ``0.25 x`` the block's
*input* channels and SiLU between the FCs (senet's ``se`` block with ``rd_base_channels`` = input channels).
Widths, depths (``ceil``), dropout and stochastic depth (0.2, linear in the block index) follow torchvision's
``efficientnet_b0..b3``, whose parameter counts these match exactly.

EfficientNet-Lite (the TensorFlow release's ``efficientnet/lite``; timm ``efficientnet_lite0..2``) drops SE,
uses ReLU6 and keeps the stem (32), the head (1280) and the first and last stages' depths unscaled. It is plain
by default; ``attn_layer="se"`` puts the EfficientNet SE into it, ``"eca"`` ECA. Its published weights were
trained with inputs scaled to [-1, 1] (mean = std = 0.5; see :mod:`senet.weights.pretrained`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ._mbconv import BlockCfg, MBConvNet, round_chs
from ._registry import register_model

__all__ = ["efficientnet"]

# The paper's Table 1 (stages 2-8): expansion, kernel, stride, input, output channels, repeats.
_B0 = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)

# (width, depth, dropout) of the compound scaling.
_SCALES = {
    "b0": (1.0, 1.0, 0.2),
    "b1": (1.0, 1.1, 0.2),
    "b2": (1.1, 1.2, 0.3),
    "b3": (1.2, 1.4, 0.3),
    "lite0": (1.0, 1.0, 0.2),
    "lite1": (1.0, 1.1, 0.2),
    "lite2": (1.1, 1.2, 0.3),
}


def _se_defaults(cfg: BlockCfg) -> dict[str, Any]:
    return {"rd_ratio": 0.25, "rd_base_channels": cfg.se_base, "rd_divisor": 1, "act_layer": "silu"}


def efficientnet(
    variant: str = "b0",
    num_classes: int = 1000,
    in_chans: int = 3,
    *,
    attn_layer: Any = None,
    attn_kwargs: Mapping[str, Any] | None = None,
    drop_rate: float | None = None,
    drop_path_rate: float = 0.2,
    pad_type: str = "",
    bn_eps: float = 1e-5,
) -> MBConvNet:
    """Build EfficientNet-``variant`` (``"b0"``..``"b3"``, ``"lite0"``..``"lite2"``).

    Args:
        attn_layer: attention kind after each depthwise conv (``None``/``"none"``: plain; the entrypoints pass
            ``"se"`` for B0-B3); for SE, ``attn_kwargs`` update the paper's ``0.25 x input, SiLU`` form.
        drop_rate: dropout before the classifier (``None``: the variant's, 0.2 or 0.3).
        drop_path_rate: stochastic depth of the last block (0.2), linear in the block index from 0.
        pad_type: ``""`` (PyTorch) or ``"same"`` (TF-ported weights, the ``efficientnet_pytorch`` layout);
        bn_eps: BatchNorm epsilon (1e-5 as torchvision/timm; 1e-3 for TF-ported weights).
    """
    width, depth, dropout = _SCALES[variant]
    lite = variant.startswith("lite")
    act = "relu6" if lite else "silu"
    stem = 32 if lite else round_chs(32, width)
    inp = stem
    stages = []
    for i, (e, k, s, _, c, n) in enumerate(_B0):
        out = round_chs(c, width)
        fixed = lite and i in (0, len(_B0) - 1)
        reps = n if fixed else int(math.ceil(n * depth))
        cfgs = []
        for j in range(reps):
            cfgs.append(BlockCfg(inp, round_chs(inp, e), out, k, s if j == 0 else 1, act, True, inp))
            inp = out
        stages.append(cfgs)
    return MBConvNet(
        stages,
        num_classes=num_classes,
        in_chans=in_chans,
        stem_chs=stem,
        stem_act=act,
        head_chs=1280 if lite else 4 * inp,
        head_act=act,
        attn_layer=attn_layer,
        attn_kwargs=attn_kwargs,
        attn_defaults=_se_defaults,
        drop_rate=dropout if drop_rate is None else drop_rate,
        drop_path_rate=drop_path_rate,
        pad_type=pad_type,
        bn_eps=bn_eps,
        linear_init="uniform",
    )


def _se(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {"attn_layer": "se", **kwargs}


@register_model
def efficientnet_b0(**kwargs: Any) -> MBConvNet:
    """EfficientNet-B0 with SE (torchvision count: 5,288,548 parameters, 0.39 GMACs at 224 px)."""
    return efficientnet("b0", **_se(kwargs))


@register_model
def efficientnet_b1(**kwargs: Any) -> MBConvNet:
    """EfficientNet-B1 with SE (7,794,184 parameters; 240 px)."""
    return efficientnet("b1", **_se(kwargs))


@register_model
def efficientnet_b2(**kwargs: Any) -> MBConvNet:
    """EfficientNet-B2 with SE (9,109,994 parameters; 260 px)."""
    return efficientnet("b2", **_se(kwargs))


@register_model
def efficientnet_b3(**kwargs: Any) -> MBConvNet:
    """EfficientNet-B3 with SE (12,233,232 parameters; 300 px)."""
    return efficientnet("b3", **_se(kwargs))


@register_model
def efficientnet_lite0(**kwargs: Any) -> MBConvNet:
    """EfficientNet-Lite0, plain (timm count: 4,652,008 parameters); ``attn_layer="se"`` adds SE."""
    return efficientnet("lite0", **kwargs)


@register_model
def efficientnet_lite1(**kwargs: Any) -> MBConvNet:
    """EfficientNet-Lite1, plain (240 px)."""
    return efficientnet("lite1", **kwargs)


@register_model
def efficientnet_lite2(**kwargs: Any) -> MBConvNet:
    """EfficientNet-Lite2, plain (260 px)."""
    return efficientnet("lite2", **kwargs)
