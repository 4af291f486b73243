"""MobileNetV3-Large / -Small with the attention kind as an argument (SE with a hard-sigmoid gate by default).

Howard et al., "Searching for MobileNetV3", ICCV 2019, arXiv:1905.02244, Tables 1-2. SE sits after the depthwise
conv and its activation of the blocks the paper marks, with the reduced width ``make_divisible(expanded / 4, 8)``,
ReLU between the FCs and a hard-sigmoid gate (senet's ``se`` block with ``rd_ratio=1/4, rd_divisor=8,
gate_layer="hard_sigmoid"``). Another kind (``"eca"``, ``"cbam"``) takes the same sites; ``attn_layer=None`` (or
``"none"``) gives the network without SE. Widths, BatchNorm epsilon (1e-3), dropout (0.2) and the hidden FC
follow torchvision's ``mobilenet_v3_large/small``, whose parameter counts these match exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._mbconv import BlockCfg, MBConvNet, round_chs
from ._registry import register_model

__all__ = ["mobilenet_v3_large", "mobilenet_v3_small", "mobilenet_v3"]

RE, HS = "relu", "hard_swish"

# Rows of the paper's Tables 1-2 as (kernel, expanded, out, SE, activation, stride), grouped into timm's stages.
_LARGE = (
    ((3, 16, 16, False, RE, 1),),
    ((3, 64, 24, False, RE, 2), (3, 72, 24, False, RE, 1)),
    ((5, 72, 40, True, RE, 2), (5, 120, 40, True, RE, 1), (5, 120, 40, True, RE, 1)),
    ((3, 240, 80, False, HS, 2), (3, 200, 80, False, HS, 1), (3, 184, 80, False, HS, 1), (3, 184, 80, False, HS, 1)),
    ((3, 480, 112, True, HS, 1), (3, 672, 112, True, HS, 1)),
    ((5, 672, 160, True, HS, 2), (5, 960, 160, True, HS, 1), (5, 960, 160, True, HS, 1)),
)
_SMALL = (
    ((3, 16, 16, True, RE, 2),),
    ((3, 72, 24, False, RE, 2), (3, 88, 24, False, RE, 1)),
    ((5, 96, 40, True, HS, 2), (5, 240, 40, True, HS, 1), (5, 240, 40, True, HS, 1)),
    ((5, 120, 48, True, HS, 1), (5, 144, 48, True, HS, 1)),
    ((5, 288, 96, True, HS, 2), (5, 576, 96, True, HS, 1), (5, 576, 96, True, HS, 1)),
)
_ARCHS = {"large": (_LARGE, 1280), "small": (_SMALL, 1024)}


def _se_defaults(cfg: BlockCfg) -> dict[str, Any]:
    return {"rd_ratio": 1 / 4, "rd_divisor": 8, "gate_layer": "hard_sigmoid"}


def mobilenet_v3(
    arch: str = "large",
    num_classes: int = 1000,
    in_chans: int = 3,
    *,
    width_mult: float = 1.0,
    attn_layer: Any = "se",
    attn_kwargs: Mapping[str, Any] | None = None,
    drop_rate: float = 0.2,
    drop_path_rate: float = 0.0,
    pad_type: str = "",
    bn_eps: float = 1e-3,
) -> MBConvNet:
    """Build MobileNetV3-``arch`` (``"large"`` or ``"small"``).

    Args:
        width_mult: width multiplier (channels rounded to multiples of 8, as torchvision).
        attn_layer: attention kind at the paper's SE sites (``"se"`` default; ``None``/``"none"``: plain).
        attn_kwargs: its options (for SE they update the paper's ``rd_ratio=1/4, rd_divisor=8`` hard-sigmoid form).
        drop_rate: dropout before the classifier (0.2); drop_path_rate: stochastic depth (0, as torchvision).
        pad_type: ``""`` (PyTorch) or ``"same"`` (TF-ported weights); bn_eps: 1e-3 (torchvision), 1e-5 (timm).
    """
    rows, last = _ARCHS[arch]
    stages = []
    inp = round_chs(16, width_mult)
    stem = inp
    for stage in rows:
        cfgs = []
        for k, exp, out, se, act, s in stage:
            exp_c, out_c = round_chs(exp, width_mult), round_chs(out, width_mult)
            cfgs.append(BlockCfg(inp, exp_c, out_c, k, s, act, se, exp_c))
            inp = out_c
        stages.append(cfgs)
    return MBConvNet(
        stages,
        num_classes=num_classes,
        in_chans=in_chans,
        stem_chs=stem,
        stem_act=HS,
        head_chs=6 * inp,
        head_act=HS,
        hidden_chs=round_chs(last, width_mult),
        attn_layer=attn_layer,
        attn_kwargs=attn_kwargs,
        attn_defaults=_se_defaults,
        drop_rate=drop_rate,
        drop_path_rate=drop_path_rate,
        pad_type=pad_type,
        bn_eps=bn_eps,
        linear_init="normal",
    )


@register_model
def mobilenet_v3_large(**kwargs: Any) -> MBConvNet:
    """MobileNetV3-Large 1.0 with SE (torchvision layout and count: 5,483,032 parameters, 0.217 GMACs)."""
    return mobilenet_v3("large", **kwargs)


@register_model
def mobilenet_v3_small(**kwargs: Any) -> MBConvNet:
    """MobileNetV3-Small 1.0 with SE (2,542,856 parameters, 0.057 GMACs)."""
    return mobilenet_v3("small", **kwargs)
