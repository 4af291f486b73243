"""MobileNetV2 with optional attention after the depthwise conv of each inverted residual.

Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018, arXiv:1801.04381.
SE (r = 8) and ECA sit after the depthwise 3x3 conv and its ReLU6, as in the ECA paper's MobileNetV2 experiments
(Wang et al., CVPR 2020, arXiv:1910.03151, Table 2) and the issue this zoo implements. The ECA release's code
(BangguWu/ECANet ``eca_mobilenetv2.py``) instead appends ECA after the projection's BN, on the block output; that
placement is ``attn_position="out"`` (it is also the one consistent with the ECA paper's +0.06M for SE, r = 8).

Keys follow torchvision's ``mobilenet_v2`` exactly (``features.{i}.conv.{j}.{0,1}``, ``classifier.1``), so its
weights load into ``mobilenet_v2`` as they are; the attention block is appended to the depthwise conv-BN-ReLU6
sequence as its 4th element (``features.{i}.conv.{j}.3``), or with ``attn_position="out"`` to the block's ``conv``
sequence as its last element, which leaves every torchvision key in place.
Attention names are ``SE_<row>_<block>`` with ``row`` the 1-based row of the paper's Table 2 (t, c, n, s).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from senet.errors import SenetError
from senet.layers import create_attn, merge_attn_kwargs

from ._base import ClassifierModel, attn_name, check_positive_classes, init_conv_bn
from ._registry import register_model

__all__ = ["MobileNetV2", "InvertedResidual", "ATTN_POSITIONS"]

#: ``dw``: after the depthwise conv and its ReLU6 (default); ``out``: after the projection's BN (the ECA release).
ATTN_POSITIONS = ("dw", "out")

# (expansion t, output channels c, repeats n, first stride s): the paper's Table 2.
_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _make_divisible(v: float, divisor: int = 8) -> int:
    # torchvision's rounding of widths (keeps every width a multiple of 8, never 10 % below v).
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def _conv_bn_act(inp: int, out: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """Expand 1x1 -> depthwise 3x3 -> [attention] -> project 1x1 (linear), residual when shapes match."""

    def __init__(
        self,
        inp: int,
        oup: int,
        stride: int,
        expand_ratio: int,
        attn_layer: Any = None,
        attn_kwargs: Mapping[str, Any] | None = None,
        attn_position: str = "dw",
    ) -> None:
        super().__init__()
        if attn_position not in ATTN_POSITIONS:
            raise SenetError(f"unknown attn_position {attn_position!r}; choose one of: {', '.join(ATTN_POSITIONS)}")
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(_conv_bn_act(inp, hidden, kernel=1))
        dw = _conv_bn_act(hidden, hidden, stride=stride, groups=hidden)
        attn = create_attn(attn_layer, hidden if attn_position == "dw" else oup, **dict(attn_kwargs or {}))
        if attn is not None and attn_position == "dw":
            dw.append(attn)
        self._dw_index = len(layers)
        layers += [dw, nn.Conv2d(hidden, oup, 1, bias=False), nn.BatchNorm2d(oup)]
        if attn is not None and attn_position == "out":
            layers.append(attn)
        self.attn_position = attn_position
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup

    @property
    def attn(self) -> nn.Module | None:
        """The attention block (``conv.<dw>.3`` or ``conv.<last>``), or ``None``.

        A property rather than a second registration, so each state_dict key stays unique.
        """
        if self.attn_position == "out":
            return self.conv[-1] if len(self.conv) > self._dw_index + 3 else None
        dw = self.conv[self._dw_index]
        return dw[3] if len(dw) > 3 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(ClassifierModel):
    """MobileNetV2 (torchvision layout) with attention after each depthwise conv.

    Args:
        num_classes: classifier outputs (0: none).
        in_chans: input channels.
        width_mult: width multiplier.
        attn_layer: attention kind after each depthwise conv (``None``, ``"se"``, ``"eca"``, ...).
        attn_kwargs: its options (SE default here: ``rd_ratio=1/8``).
        attn_position: ``"dw"`` (after the depthwise conv) or ``"out"`` (after the projection BN).
        drop_rate: dropout before the classifier (0.2 as torchvision).
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        *,
        width_mult: float = 1.0,
        attn_layer: Any = None,
        attn_kwargs: Mapping[str, Any] | None = None,
        attn_position: str = "dw",
        drop_rate: float = 0.2,
    ) -> None:
        super().__init__()
        self.num_classes = check_positive_classes(num_classes)
        inp = _make_divisible(32 * width_mult)
        self.num_features = _make_divisible(1280 * max(1.0, width_mult))
        features: list[nn.Module] = [_conv_bn_act(in_chans, inp, stride=2)]
        self._rows: list[list[int]] = []  # feature indices of each table row
        for t, c, n, s in _SETTINGS:
            out = _make_divisible(c * width_mult)
            row = []
            for i in range(n):
                row.append(len(features))
                features.append(
                    InvertedResidual(inp, out, s if i == 0 else 1, t, attn_layer, attn_kwargs, attn_position)
                )
                inp = out
            self._rows.append(row)
        features.append(_conv_bn_act(inp, self.num_features, kernel=1))
        self.features = nn.Sequential(*features)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Dropout(drop_rate),
            nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity(),
        )
        init_conv_bn(self)
        self._init_classifier()

    def _init_classifier(self) -> None:
        fc = self.classifier[1]
        if isinstance(fc, nn.Linear):
            nn.init.normal_(fc.weight, 0, 0.01)
            nn.init.zeros_(fc.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map (1280 channels at width 1.0), before global pooling."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.classifier[0](self.global_pool(x).flatten(1))
        return x if pre_logits else self.classifier[1](x)

    def get_classifier(self) -> nn.Module:
        return self.classifier[1]

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = check_positive_classes(num_classes)
        self.classifier[1] = self._new_classifier(self.num_features, num_classes)
        self._init_classifier()

    def _attention_sites(self) -> Iterator[tuple[str, nn.Module | None]]:
        for r, row in enumerate(self._rows, 1):
            for b, idx in enumerate(row, 1):
                yield attn_name(r, b), self.features[idx].attn


def _create(kwargs: dict[str, Any], attn_layer: str | None = None, **attn_defaults: Any) -> MobileNetV2:
    kind = kwargs.get("attn_layer", attn_layer)
    attn_kwargs = merge_attn_kwargs(kind, kwargs.pop("attn_kwargs", None), attn_defaults, tuned_for=attn_layer)
    return MobileNetV2(**{"attn_layer": attn_layer, **kwargs}, attn_kwargs=attn_kwargs)


@register_model
def mobilenet_v2(**kwargs: Any) -> MobileNetV2:
    """MobileNetV2 1.0 (torchvision layout; 3.5M parameters, 0.30 GMACs)."""
    return _create(kwargs)


@register_model
def se_mobilenet_v2(**kwargs: Any) -> MobileNetV2:
    """MobileNetV2 + SE (r = 8, width hidden // 8) after each depthwise conv, as the ECA paper's baseline."""
    return _create(kwargs, "se", rd_ratio=1 / 8)


@register_model
def eca_mobilenet_v2(**kwargs: Any) -> MobileNetV2:
    """MobileNetV2 + ECA (adaptive k) after each depthwise conv (ECA paper)."""
    return _create(kwargs, "eca")
