"""The inverted-residual (MBConv) block shared by MobileNetV3 and EfficientNet, and the backbone built from it.

One block, one backbone, three families (``mobilenetv3.py``, ``efficientnet.py``): expand 1x1 -> depthwise kxk ->
[attention] -> project 1x1 (linear), residual with stochastic depth when shapes match. The attention site is the
one the papers use for SE (after the depthwise conv and its activation); any senet attention kind fits there.

Module names follow timm's ``EfficientNet`` / ``MobileNetV3`` (``conv_stem``, ``bn1``, ``blocks.{stage}.{i}``
with ``conv_pw``, ``bn1``, ``conv_dw``, ``bn2``, ``attn``, ``conv_pwl``, ``bn3``, ``conv_head``, ``bn2``), with
the attention block under ``attn`` and the classifier ``fc`` as in every senet model; torchvision, timm and
``efficientnet_pytorch`` checkpoints convert to these names (:mod:`senet.weights.layouts`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import StochasticDepth

from senet.errors import SenetError
from senet.layers import SqueezeExcite, create_attn, get_attn, merge_attn_kwargs
from senet.layers.helpers import create_act, make_divisible

from ._base import ClassifierModel, attn_name, check_positive_classes, init_conv_bn

__all__ = ["BlockCfg", "Conv2dSame", "InvertedResidual", "MBConvNet", "PAD_TYPES", "is_se_kind"]

#: ``""``: symmetric padding ``k // 2`` (torchvision, timm); ``"same"``: TensorFlow's SAME, computed per input
#: (the ``efficientnet_pytorch`` family and TF-ported weights pad stride-2 convs more on the bottom/right).
PAD_TYPES = ("", "same")


@dataclass(frozen=True)
class BlockCfg:
    """One inverted-residual block: input, expanded and output channels, kernel, stride, activation, attention."""

    in_chs: int
    exp_chs: int
    out_chs: int
    kernel: int
    stride: int
    act: str
    attn: bool  # an attention site (SE in the paper's model)
    se_base: int  # channels the paper's SE width is computed from (expanded for MobileNetV3, input for EfficientNet)


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow's SAME padding, computed for each input size (output = ceil(input / stride))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s, d in zip(x.shape[-2:], self.kernel_size, self.stride, self.dilation):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        if top or bottom or left or right:
            x = F.pad(x, [left, right, top, bottom])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _conv(in_chs: int, out_chs: int, kernel: int, stride: int = 1, groups: int = 1, pad_type: str = "") -> nn.Conv2d:
    if pad_type == "same" and (stride > 1 or kernel > 1):
        return Conv2dSame(in_chs, out_chs, kernel, stride, 0, groups=groups, bias=False)
    return nn.Conv2d(in_chs, out_chs, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False)


def is_se_kind(kind: Any) -> bool:
    """Whether ``kind`` builds senet's ``SqueezeExcite`` (``"se"``, ``"se_hs"``, the class or a partial of it)."""
    try:
        ctor = get_attn(kind)
    except ValueError:
        return False
    return ctor is SqueezeExcite or getattr(ctor, "func", None) is SqueezeExcite


class InvertedResidual(nn.Module):
    """MBConv: [expand 1x1 -BN-act] -> depthwise kxk -BN-act -> [attention] -> project 1x1 -BN (+ input).

    Args:
        cfg: the block's channels, kernel, stride and activation.
        attn_layer: attention kind at the block's attention site (``None``: none).
        attn_kwargs: its options.
        drop_path: stochastic-depth probability of the residual branch (torchvision's ``StochasticDepth``, "row").
        pad_type: ``""`` or ``"same"`` (see :data:`PAD_TYPES`).
        bn_eps: BatchNorm epsilon (1e-3 for MobileNetV3 and TF-ported weights, 1e-5 for torchvision EfficientNet).
    """

    def __init__(
        self,
        cfg: BlockCfg,
        attn_layer: Any = None,
        attn_kwargs: Mapping[str, Any] | None = None,
        drop_path: float = 0.0,
        pad_type: str = "",
        bn_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.exp_chs != cfg.in_chs:
            self.conv_pw: nn.Module | None = _conv(cfg.in_chs, cfg.exp_chs, 1)
            self.bn1: nn.Module | None = nn.BatchNorm2d(cfg.exp_chs, eps=bn_eps)
            self.act1: nn.Module | None = create_act(cfg.act)
        else:
            self.conv_pw = self.bn1 = self.act1 = None
        self.conv_dw = _conv(cfg.exp_chs, cfg.exp_chs, cfg.kernel, cfg.stride, cfg.exp_chs, pad_type)
        self.bn2 = nn.BatchNorm2d(cfg.exp_chs, eps=bn_eps)
        self.act2 = create_act(cfg.act)
        self.attn = create_attn(attn_layer, cfg.exp_chs, **dict(attn_kwargs or {})) if cfg.attn else None
        self.conv_pwl = _conv(cfg.exp_chs, cfg.out_chs, 1)
        self.bn3 = nn.BatchNorm2d(cfg.out_chs, eps=bn_eps)
        self.has_skip = cfg.stride == 1 and cfg.in_chs == cfg.out_chs
        self.drop_path = StochasticDepth(drop_path, "row") if self.has_skip and drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.conv_pw is not None:
            y = self.act1(self.bn1(self.conv_pw(y)))
        y = self.act2(self.bn2(self.conv_dw(y)))
        if self.attn is not None:
            y = self.attn(y)
        y = self.bn3(self.conv_pwl(y))
        return x + self.drop_path(y) if self.has_skip else y


class MBConvNet(ClassifierModel):
    """Stem conv -> stages of :class:`InvertedResidual` -> 1x1 head conv -> pool -> [hidden FC] -> classifier.

    Built by the family files from a list of stages (each a list of :class:`BlockCfg`); see
    :mod:`senet.models.mobilenetv3` and :mod:`senet.models.efficientnet` for the arguments users pass.

    Args:
        stages: the blocks, grouped by stage (attention names are ``SE_<stage>_<block>``, 1-based).
        stem_chs: stem conv output channels; ``stem_act`` its activation.
        head_chs: channels of the 1x1 conv after the last stage (the feature map's channels).
        head_act: activation of the head conv (and of the hidden FC).
        hidden_chs: MobileNetV3's hidden FC after pooling (0: none, EfficientNet).
        attn_layer / attn_kwargs / attn_defaults: attention at each attention site; ``attn_defaults`` is a function
            ``BlockCfg -> dict`` giving the paper's SE widths, applied only when the kind is SE.
        drop_rate: dropout before the classifier; drop_path_rate: stochastic depth, linear in the block index.
        pad_type, bn_eps: see :class:`InvertedResidual`.
        linear_init: ``"normal"`` (N(0, 0.01), MobileNetV3) or ``"uniform"`` (torchvision EfficientNet).
    """

    def __init__(
        self,
        stages: Sequence[Sequence[BlockCfg]],
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        stem_chs: int,
        stem_act: str,
        head_chs: int,
        head_act: str,
        hidden_chs: int = 0,
        attn_layer: Any = None,
        attn_kwargs: Mapping[str, Any] | None = None,
        attn_defaults: Any = None,
        drop_rate: float = 0.2,
        drop_path_rate: float = 0.0,
        pad_type: str = "",
        bn_eps: float = 1e-5,
        linear_init: str = "normal",
    ) -> None:
        super().__init__()
        if pad_type not in PAD_TYPES:
            raise SenetError(f"unknown pad_type {pad_type!r}; choose one of: {', '.join(map(repr, PAD_TYPES))}")
        self.num_classes = check_positive_classes(num_classes)
        self.drop_rate = drop_rate
        self.conv_stem = _conv(in_chans, stem_chs, 3, 2, pad_type=pad_type)
        self.bn1 = nn.BatchNorm2d(stem_chs, eps=bn_eps)
        self.act1 = create_act(stem_act)
        #: ``BlockCfg -> dict``: the paper's SE knobs at a block (also used by senet.retrofit).
        self.attn_defaults = attn_defaults
        total = sum(len(s) for s in stages)
        idx = 0
        blocks: list[nn.Module] = []
        for stage in stages:
            row = []
            for cfg in stage:
                # The paper's SE form at this block, for SqueezeExcite kinds only (another kind keeps its own).
                se_form = attn_defaults(cfg) if attn_defaults else None
                kw = merge_attn_kwargs(attn_layer, attn_kwargs, se_form, tuned_for=SqueezeExcite)
                row.append(InvertedResidual(cfg, attn_layer, kw, drop_path_rate * idx / total, pad_type, bn_eps))
                idx += 1
            blocks.append(nn.Sequential(*row))
        self.blocks = nn.Sequential(*blocks)
        last = stages[-1][-1].out_chs
        self.conv_head = _conv(last, head_chs, 1)
        self.bn2 = nn.BatchNorm2d(head_chs, eps=bn_eps)
        self.act2 = create_act(head_act)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        if hidden_chs:
            self.pre_fc: nn.Module = nn.Linear(head_chs, hidden_chs)
            self.act3: nn.Module = create_act(head_act)
        else:
            self.pre_fc = self.act3 = nn.Identity()
        self.num_features = hidden_chs or head_chs
        self.head_drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.linear_init = linear_init
        init_conv_bn(self)
        # The attention blocks' Linear layers keep PyTorch's default init (senet's SE everywhere).
        self._init_linear(self.pre_fc)
        self._init_linear(self.fc)

    def _init_linear(self, m: nn.Module) -> None:
        if not isinstance(m, nn.Linear):
            return
        if self.linear_init == "uniform":
            r = 1.0 / math.sqrt(m.out_features)
            nn.init.uniform_(m.weight, -r, r)
        else:
            nn.init.normal_(m.weight, 0, 0.01)
        nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The head conv's output map (before global pooling)."""
        x = self.act1(self.bn1(self.conv_stem(x)))
        x = self.blocks(x)
        return self.act2(self.bn2(self.conv_head(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.act3(self.pre_fc(self.global_pool(x).flatten(1)))
        x = self.head_drop(x)
        return x if pre_logits else self.fc(x)

    def reset_classifier(self, num_classes: int) -> None:
        super().reset_classifier(num_classes)
        self._init_linear(self.fc)

    def _attention_sites(self) -> Iterator[tuple[str, nn.Module | None]]:
        for s, stage in enumerate(self.blocks, 1):
            for b, block in enumerate(stage, 1):
                if block.cfg.attn:
                    yield attn_name(s, b), block.attn


def round_chs(c: float, mult: float = 1.0) -> int:
    """Width rounding of both papers' releases: ``c * mult`` to a multiple of 8, never 10 % below."""
    return make_divisible(c * mult, 8)
