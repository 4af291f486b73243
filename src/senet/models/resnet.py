"""ResNet / ResNeXt / SENet-154 with attention as an argument, for ImageNet and CIFAR.

Papers:

* He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, arXiv:1512.03385 (ResNet, CIFAR ResNets).
* He et al., "Identity Mappings in Deep Residual Networks", ECCV 2016, arXiv:1603.05027 (pre-activation).
* Xie et al., "Aggregated Residual Transformations for Deep Neural Networks", CVPR 2017, arXiv:1611.05431 (ResNeXt).
* Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016, arXiv:1605.07146 (WRN-16-8).
* Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018 / TPAMI 2019, arXiv:1709.01507 (SE-ResNet, SENet-154,
  the integration strategies of Fig. 5 / Table 14 and SE_3x3 of Table 15, SE per stage of Table 13).

One backbone (:class:`ResNet`) covers every variant; a baseline and its SE / ECA / CBAM twins differ by one string.
Module names follow torchvision so published weights map by renaming keys::

    conv1 bn1 act1 maxpool                       7x7 stem (CIFAR: 3x3 conv1, no pool)
    stem.{conv1,bn1,act1,conv2,bn2,act2,conv3,bn3,act3} maxpool      deep 3x3 stem (SENet-154)
    layer{1..4}.{i}.conv1 bn1 conv2 bn2 [conv3 bn3]    residual branch (pre-activation blocks: bn{k} precedes conv{k})
    layer{1..4}.{i}.downsample.0 (conv) .1 (BN)   projection shortcut
    layer{1..4}.{i}.attn                          the attention block (SE / ECA / CBAM / ...), wherever it sits
    [final_bn final_act]                          pre-activation nets only
    global_pool head_drop fc

The attention module is always ``attn`` (not timm's ``se``): the name does not depend on the kind.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from senet.errors import SenetError
from senet.layers import create_attn, get_attn, merge_attn_kwargs

from ._base import ClassifierModel, attn_name, check_positive_classes
from ._registry import register_model

__all__ = [
    "ResNet",
    "BasicBlock",
    "Bottleneck",
    "PreActBasicBlock",
    "PreActBottleneck",
    "ATTN_POSITIONS",
    "STEMS",
]

#: Where a block puts its attention (paper Fig. 5 and Table 15):
#: ``standard`` after the last BN of the residual branch, before the addition; ``pre`` at the start of the branch;
#: ``post`` after the addition (and its ReLU); ``identity`` on the shortcut branch (after the projection, if any);
#: ``inner`` after the (first) 3x3 conv and its activation, the paper's SE_3x3.
ATTN_POSITIONS = ("standard", "pre", "post", "identity", "inner")

#: Stems: ``conv7`` (7x7/2 conv + 3x3/2 max-pool), ``deep`` (three 3x3 convs, SENet-154), ``cifar`` (one 3x3/1 conv).
STEMS = ("conv7", "deep", "cifar")

#: Stem max-pool: ``pad`` = 3x3/2 with padding 1 (torchvision); ``caffe`` = 3x3/2, no padding, ``ceil_mode``
#: (the original SENet release); ``none``.
STEM_POOLS = ("pad", "caffe", "none")


def _check_choice(value: str, choices: Sequence[str], what: str) -> str:
    if value not in choices:
        raise SenetError(f"unknown {what} {value!r}; choose one of: {', '.join(choices)}")
    return value


_BASIC_ONLY = "basic blocks support only groups=1, base_width=64, conv1_ratio=1 (use bottleneck blocks)"


class _AttnBlock(nn.Module):
    """Shared attention plumbing of the residual blocks."""

    expansion = 1
    attn: nn.Module | None

    def _make_attn(
        self,
        attn_layer: Any,
        attn_kwargs: Mapping[str, Any] | None,
        position: str,
        *,
        in_channels: int,
        mid_channels: int,
        out_channels: int,
    ) -> None:
        self.attn_position = _check_choice(position, ATTN_POSITIONS, "attn_position")
        channels = {"pre": in_channels, "inner": mid_channels}.get(position, out_channels)
        self.attn = create_attn(attn_layer, channels, **dict(attn_kwargs or {}))

    def _maybe_attn(self, x: torch.Tensor, position: str) -> torch.Tensor:
        if self.attn is not None and self.attn_position == position:
            return self.attn(x)
        return x


class BasicBlock(_AttnBlock):
    """Two 3x3 convs (ResNet-18/34, CIFAR ResNet-20..110). ``inner`` puts attention after the first conv."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        conv1_ratio: float = 1.0,
        stride_in_1x1: bool = False,
        attn_layer: Any = None,
        attn_kwargs: Mapping[str, Any] | None = None,
        attn_position: str = "standard",
    ) -> None:
        super().__init__()
        if groups != 1 or base_width != 64 or conv1_ratio != 1.0:
            raise SenetError(_BASIC_ONLY)
        del stride_in_1x1  # a basic block has no 1x1 conv; the stride sits on conv1 either way
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act2 = nn.ReLU(inplace=True)
        self.downsample = downsample
        self._make_attn(
            attn_layer, attn_kwargs, attn_position, in_channels=inplanes, mid_channels=planes, out_channels=planes
        )

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        out = self._maybe_attn(x, "pre")
        out = self.act1(self.bn1(self.conv1(out)))
        out = self._maybe_attn(out, "inner")
        out = self.bn2(self.conv2(out))
        out = self._maybe_attn(out, "standard")
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        shortcut = self._maybe_attn(shortcut, "identity")
        out = self.act2(out + shortcut)
        return self._maybe_attn(out, "post")


class Bottleneck(_AttnBlock):
    """1x1 - 3x3 (grouped for ResNeXt) - 1x1 bottleneck. ``inner`` puts attention after the 3x3 conv (SE_3x3).

    Args beyond torchvision's: ``conv1_ratio`` scales the first 1x1's output (SENet-154 halves it),
    ``stride_in_1x1`` puts the stride on the first 1x1 conv (the original Caffe ResNet / SENet release) instead of
    the 3x3 (torchvision's "v1.5").
    """

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        conv1_ratio: float = 1.0,
        stride_in_1x1: bool = False,
        attn_layer: Any = None,
        attn_kwargs: Mapping[str, Any] | None = None,
        attn_position: str = "standard",
    ) -> None:
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        first = int(width * conv1_ratio)
        if first <= 0 or first % groups:
            raise SenetError(f"conv1_ratio {conv1_ratio} gives {first} channels, not a multiple of groups={groups}")
        out = planes * self.expansion
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = nn.Conv2d(inplanes, first, 1, s1, bias=False)
        self.bn1 = nn.BatchNorm2d(first)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(first, width, 3, s3, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.act2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(width, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.act3 = nn.ReLU(inplace=True)
        self.downsample = downsample
        self._make_attn(
            attn_layer, attn_kwargs, attn_position, in_channels=inplanes, mid_channels=width, out_channels=out
        )

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        out = self._maybe_attn(x, "pre")
        out = self.act1(self.bn1(self.conv1(out)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self._maybe_attn(out, "inner")
        out = self.bn3(self.conv3(out))
        out = self._maybe_attn(out, "standard")
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        shortcut = self._maybe_attn(shortcut, "identity")
        out = self.act3(out + shortcut)
        return self._maybe_attn(out, "post")


class PreActBasicBlock(_AttnBlock):
    """Pre-activation basic block (BN-ReLU-conv x2). A projection shortcut takes the pre-activated input.

    Positions: ``standard`` after the last conv, ``pre`` on the pre-activated input of the branch only, ``post``
    after the addition (there is no ReLU after it in a pre-activation net), ``identity`` on the shortcut,
    ``inner`` after the first conv.
    """

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        conv1_ratio: float = 1.0,
        stride_in_1x1: bool = False,
        attn_layer: Any = None,
        attn_kwargs: Mapping[str, Any] | None = None,
        attn_position: str = "standard",
    ) -> None:
        super().__init__()
        if groups != 1 or base_width != 64 or conv1_ratio != 1.0:
            raise SenetError(_BASIC_ONLY)
        del stride_in_1x1
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.act1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.downsample = downsample
        self._make_attn(
            attn_layer, attn_kwargs, attn_position, in_channels=inplanes, mid_channels=planes, out_channels=planes
        )

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.conv2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.act1(self.bn1(x))
        shortcut = self.downsample(pre) if self.downsample is not None else x
        out = self.conv1(self._maybe_attn(pre, "pre"))
        out = self._maybe_attn(out, "inner")
        out = self.conv2(self.act2(self.bn2(out)))
        out = self._maybe_attn(out, "standard")
        out = out + self._maybe_attn(shortcut, "identity")
        return self._maybe_attn(out, "post")


class PreActBottleneck(_AttnBlock):
    """Pre-activation bottleneck (BN-ReLU-conv x3, ResNet-164 of He et al. 2016). ``inner`` = after the 3x3 conv."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        conv1_ratio: float = 1.0,
        stride_in_1x1: bool = False,
        attn_layer: Any = None,
        attn_kwargs: Mapping[str, Any] | None = None,
        attn_position: str = "standard",
    ) -> None:
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        first = int(width * conv1_ratio)
        out = planes * self.expansion
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.act1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(inplanes, first, 1, s1, bias=False)
        self.bn2 = nn.BatchNorm2d(first)
        self.act2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(first, width, 3, s3, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.act3 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(width, out, 1, bias=False)
        self.downsample = downsample
        self._make_attn(
            attn_layer, attn_kwargs, attn_position, in_channels=inplanes, mid_channels=width, out_channels=out
        )

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.conv3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.act1(self.bn1(x))
        shortcut = self.downsample(pre) if self.downsample is not None else x
        out = self.conv1(self._maybe_attn(pre, "pre"))
        out = self.conv2(self.act2(self.bn2(out)))
        out = self._maybe_attn(out, "inner")
        out = self.conv3(self.act3(self.bn3(out)))
        out = self._maybe_attn(out, "standard")
        out = out + self._maybe_attn(shortcut, "identity")
        return self._maybe_attn(out, "post")


_BLOCKS: dict[str, type[_AttnBlock]] = {
    "basic": BasicBlock,
    "bottleneck": Bottleneck,
    "preact_basic": PreActBasicBlock,
    "preact_bottleneck": PreActBottleneck,
}


class DeepStem(nn.Sequential):
    """Three 3x3 conv-BN-ReLU (SENet-154's ``layer0``): 3 -> w0 (stride 2) -> w1 -> w2."""

    def __init__(self, in_chans: int, widths: Sequence[int]) -> None:
        super().__init__()
        prev = in_chans
        for i, w in enumerate(widths, 1):
            self.add_module(f"conv{i}", nn.Conv2d(prev, w, 3, 2 if i == 1 else 1, 1, bias=False))
            self.add_module(f"bn{i}", nn.BatchNorm2d(w))
            self.add_module(f"act{i}", nn.ReLU(inplace=True))
            prev = w


class ResNet(ClassifierModel):
    """ResNet / ResNeXt / SE-ResNet / SENet-154 / CIFAR ResNet / pre-activation ResNet / WRN: one backbone.

    Args:
        block: ``"basic"``, ``"bottleneck"``, ``"preact_basic"`` or ``"preact_bottleneck"``.
        layers: blocks per stage (any number of stages; the paper numbers them 2, 3, ...).
        num_classes: classifier outputs (0: no classifier, ``forward`` returns pooled features).
        in_chans: input channels.
        widths: ``planes`` per stage (block output = planes x expansion). ImageNet: 64/128/256/512; CIFAR: 16/32/64.
        groups, base_width: ResNeXt cardinality and width per group (torchvision's ``width_per_group``).
        conv1_ratio: scale of each bottleneck's first 1x1 output (SENet-154: 0.5).
        stem: ``"conv7"``, ``"deep"`` (three 3x3 convs) or ``"cifar"`` (one 3x3/1 conv, no pool).
        stem_width: stem output channels; a 3-tuple for the deep stem (SENet-154: 64, 64, 128).
        stem_pool: ``"pad"`` (torchvision), ``"caffe"`` (no padding, ceil_mode: the SENet release) or ``"none"``.
        stride_in_1x1: stride on the first 1x1 conv of bottlenecks (original Caffe ResNet) instead of the 3x3.
        downsample_kernel: kernel of the projection shortcuts that downsample (1, or 3 as SENet-154); stride-1
            projections (the first stage) stay 1x1, as in the SENet release.
        attn_layer: attention kind (a name of :func:`senet.layers.list_attn`, a class, or ``None``).
        attn_kwargs: options of the attention block (``rd_ratio``, ``rd_divisor``, ``kernel_size``, ...).
        attn_position: one of :data:`ATTN_POSITIONS`.
        attn_stages: stages (paper numbering, 2..) that get attention; ``None`` = all (Table 13 ablation).
        eca_kernels: per-stage ``kernel_size`` for the attention (the ECA release uses 3, 5, 5, 7).
        drop_rate: dropout before the classifier (SENet-154: 0.2).
        zero_init_last: zero the last BN (or conv) of each residual branch.

    Global average pooling makes any input size work.
    """

    def __init__(
        self,
        block: str = "bottleneck",
        layers: Sequence[int] = (3, 4, 6, 3),
        num_classes: int = 1000,
        in_chans: int = 3,
        *,
        widths: Sequence[int] = (64, 128, 256, 512),
        groups: int = 1,
        base_width: int = 64,
        conv1_ratio: float = 1.0,
        stem: str = "conv7",
        stem_width: int | Sequence[int] = 64,
        stem_pool: str = "pad",
        stride_in_1x1: bool = False,
        downsample_kernel: int = 1,
        attn_layer: Any = None,
        attn_kwargs: Mapping[str, Any] | None = None,
        attn_position: str = "standard",
        attn_stages: Iterable[int] | None = None,
        eca_kernels: Sequence[int] | None = None,
        drop_rate: float = 0.0,
        zero_init_last: bool = False,
    ) -> None:
        super().__init__()
        block_cls = _BLOCKS[_check_choice(block, tuple(_BLOCKS), "block")]
        preact = block.startswith("preact")
        _check_choice(stem, STEMS, "stem")
        _check_choice(stem_pool, STEM_POOLS, "stem_pool")
        _check_choice(attn_position, ATTN_POSITIONS, "attn_position")
        if len(layers) != len(widths):
            raise SenetError(f"layers {list(layers)} and widths {list(widths)} must have one entry per stage")
        if downsample_kernel not in (1, 3):
            raise SenetError(f"downsample_kernel must be 1 or 3, got {downsample_kernel!r}")
        if not 0.0 <= drop_rate < 1.0:
            raise SenetError(f"drop_rate must be in [0, 1), got {drop_rate!r}")
        get_attn(attn_layer)  # fail early on an unknown kind
        stages = list(range(2, 2 + len(layers)))
        attn_stages = set(stages if attn_stages is None else attn_stages)
        if not attn_stages <= set(stages):
            raise SenetError(f"attn_stages {sorted(attn_stages)} must be a subset of the stages {stages}")
        if eca_kernels is not None and len(eca_kernels) != len(layers):
            raise SenetError(f"eca_kernels needs one kernel per stage ({len(layers)}), got {list(eca_kernels)}")
        self.num_classes = check_positive_classes(num_classes)
        self.attn_layer = attn_layer
        self.attn_position = attn_position
        self.attn_stages = tuple(sorted(attn_stages))
        self.first_stage = stages[0]

        # Stem
        if stem == "deep":
            sw = tuple(stem_width) if isinstance(stem_width, Sequence) else (stem_width // 2,) * 2 + (stem_width,)
            if len(sw) != 3:
                raise SenetError(f"the deep stem takes three widths, got {list(sw)}")
            self.stem = DeepStem(in_chans, sw)
            inplanes = sw[-1]
        else:
            if not isinstance(stem_width, int):
                raise SenetError(f"stem {stem!r} takes one stem_width, got {stem_width!r}")
            k, s = (3, 1) if stem == "cifar" else (7, 2)
            self.conv1 = nn.Conv2d(in_chans, stem_width, k, s, k // 2, bias=False)
            # A pre-activation net normalises inside its first block, so its stem is the bare conv.
            if not preact:
                self.bn1 = nn.BatchNorm2d(stem_width)
                self.act1 = nn.ReLU(inplace=True)
            inplanes = stem_width
        if stem == "cifar" or stem_pool == "none":
            self.maxpool = nn.Identity()
        elif stem_pool == "caffe":
            self.maxpool = nn.MaxPool2d(3, 2, padding=0, ceil_mode=True)
        else:
            self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        self._deep_stem = stem == "deep"
        self.default_input_size = (in_chans, 32, 32) if stem == "cifar" else (in_chans, 224, 224)
        self._stem_norm = stem != "deep" and not preact

        # Stages
        self._stage_names: list[str] = []
        for i, (n, planes) in enumerate(zip(layers, widths)):
            stride = 1 if i == 0 else 2
            out = planes * block_cls.expansion
            downsample = None
            if stride != 1 or inplanes != out:
                k = downsample_kernel if stride > 1 else 1
                parts: list[nn.Module] = [nn.Conv2d(inplanes, out, k, stride, k // 2, bias=False)]
                if not preact:
                    parts.append(nn.BatchNorm2d(out))
                downsample = nn.Sequential(*parts)
            kw = dict(attn_kwargs or {})
            if eca_kernels is not None:
                kw["kernel_size"] = eca_kernels[i]
            common = dict(
                groups=groups,
                base_width=base_width,
                conv1_ratio=conv1_ratio,
                stride_in_1x1=stride_in_1x1,
                attn_layer=attn_layer if stages[i] in attn_stages else None,
                attn_kwargs=kw,
                attn_position=attn_position,
            )
            blocks = [block_cls(inplanes, planes, stride, downsample, **common)]
            blocks += [block_cls(out, planes, 1, None, **common) for _ in range(1, n)]
            inplanes = out
            name = f"layer{i + 1}"
            self.add_module(name, nn.Sequential(*blocks))
            self._stage_names.append(name)
        if preact:
            self.final_bn = nn.BatchNorm2d(inplanes)
            self.final_act = nn.ReLU(inplace=True)
        self._preact = preact

        # Head
        self.num_features = inplanes
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.head_drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(inplanes, num_classes) if num_classes > 0 else nn.Identity()
        self._init_weights(zero_init_last)

    def _init_weights(self, zero_init_last: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_last:
            for m in self.modules():
                if isinstance(m, _AttnBlock):
                    m.zero_init_last()

    def stages(self) -> list[nn.Sequential]:
        """The residual stages in order (``layer1``, ``layer2``, ...)."""
        return [getattr(self, n) for n in self._stage_names]

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        if self._deep_stem:
            x = self.stem(x)
        else:
            x = self.conv1(x)
            if self._stem_norm:
                x = self.act1(self.bn1(x))
        return self.maxpool(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map, before global pooling."""
        x = self.forward_stem(x)
        for stage in self.stages():
            x = stage(x)
        if self._preact:
            x = self.final_act(self.final_bn(x))
        return x

    def _attention_sites(self) -> Iterator[tuple[str, nn.Module | None]]:
        for s, stage in enumerate(self.stages(), self.first_stage):
            for b, blk in enumerate(stage, 1):
                yield attn_name(s, b), blk.attn


# ---------------------------------------------------------------------------------------------------------------
# Entrypoints (ImageNet). Each is data: the defaults of one published network; user kwargs override them.
# ---------------------------------------------------------------------------------------------------------------


def _create_resnet(kwargs: dict[str, Any], **defaults: Any) -> ResNet:
    """``ResNet(**defaults)`` updated with the user's ``kwargs``; ``attn_kwargs`` are merged, not replaced.

    When the user picks another attention kind, the entrypoint's ``attn_kwargs`` (tuned for its own kind) are dropped.
    """
    own_kind = defaults.get("attn_layer")
    attn_kwargs = merge_attn_kwargs(
        kwargs.get("attn_layer", own_kind),
        kwargs.pop("attn_kwargs", None),
        defaults.pop("attn_kwargs", None),
        tuned_for=own_kind,
    )
    return ResNet(**{**defaults, **kwargs}, attn_kwargs=attn_kwargs)


_DEPTHS: dict[int, tuple[str, tuple[int, ...]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


def _depth(d: int) -> dict[str, Any]:
    block, layers = _DEPTHS[d]
    return dict(block=block, layers=layers)


# Paper SE: reduction 16, width C // 16 with no rounding, biases on both FCs (the release's 1x1 convs have them).
_SE = dict(attn_layer="se")
# The original (Caffe) release: stride on the first 1x1, stem max-pool 3x3/2 ceil_mode without padding.
_CAFFE = dict(stride_in_1x1=True, stem_pool="caffe")


@register_model
def resnet18(**kwargs: Any) -> ResNet:
    """ResNet-18 (torchvision layout)."""
    return _create_resnet(kwargs, **_depth(18))


@register_model
def resnet34(**kwargs: Any) -> ResNet:
    """ResNet-34 (torchvision layout)."""
    return _create_resnet(kwargs, **_depth(34))


@register_model
def resnet50(**kwargs: Any) -> ResNet:
    """ResNet-50 (torchvision layout, stride in the 3x3: "v1.5")."""
    return _create_resnet(kwargs, **_depth(50))


@register_model
def resnet101(**kwargs: Any) -> ResNet:
    """ResNet-101 (torchvision layout)."""
    return _create_resnet(kwargs, **_depth(101))


@register_model
def resnet152(**kwargs: Any) -> ResNet:
    """ResNet-152 (torchvision layout)."""
    return _create_resnet(kwargs, **_depth(152))


@register_model
def se_resnet18(**kwargs: Any) -> ResNet:
    """SE-ResNet-18, SE width C // 16 (paper; timm rounds to 8: pass ``attn_kwargs={"rd_divisor": 8}``)."""
    return _create_resnet(kwargs, **_depth(18), **_SE)


@register_model
def se_resnet34(**kwargs: Any) -> ResNet:
    """SE-ResNet-34, SE width C // 16."""
    return _create_resnet(kwargs, **_depth(34), **_SE)


@register_model
def se_resnet50(**kwargs: Any) -> ResNet:
    """SE-ResNet-50 in torchvision's layout (stride in the 3x3), as timm's ``seresnet50``."""
    return _create_resnet(kwargs, **_depth(50), **_SE)


@register_model
def se_resnet101(**kwargs: Any) -> ResNet:
    """SE-ResNet-101, torchvision layout."""
    return _create_resnet(kwargs, **_depth(101), **_SE)


@register_model
def se_resnet152(**kwargs: Any) -> ResNet:
    """SE-ResNet-152, torchvision layout."""
    return _create_resnet(kwargs, **_depth(152), **_SE)


@register_model
def se_resnet50_caffe(**kwargs: Any) -> ResNet:
    """SE-ResNet-50 of the original release (stride in the first 1x1, ceil-mode stem pool); loads its weights."""
    return _create_resnet(kwargs, **_depth(50), **_SE, **_CAFFE)


@register_model
def se_resnet101_caffe(**kwargs: Any) -> ResNet:
    """SE-ResNet-101 of the original release."""
    return _create_resnet(kwargs, **_depth(101), **_SE, **_CAFFE)


@register_model
def se_resnet152_caffe(**kwargs: Any) -> ResNet:
    """SE-ResNet-152 of the original release."""
    return _create_resnet(kwargs, **_depth(152), **_SE, **_CAFFE)


@register_model
def resnext50_32x4d(**kwargs: Any) -> ResNet:
    """ResNeXt-50 32x4d (torchvision layout)."""
    return _create_resnet(kwargs, **_depth(50), groups=32, base_width=4)


@register_model
def resnext101_32x4d(**kwargs: Any) -> ResNet:
    """ResNeXt-101 32x4d (torchvision layout)."""
    return _create_resnet(kwargs, **_depth(101), groups=32, base_width=4)


@register_model
def se_resnext50_32x4d(**kwargs: Any) -> ResNet:
    """SE-ResNeXt-50 32x4d of the original release (stride in the 3x3 as every ResNeXt, ceil-mode stem pool)."""
    return _create_resnet(kwargs, **_depth(50), groups=32, base_width=4, stem_pool="caffe", **_SE)


@register_model
def se_resnext101_32x4d(**kwargs: Any) -> ResNet:
    """SE-ResNeXt-101 32x4d of the original release."""
    return _create_resnet(kwargs, **_depth(101), groups=32, base_width=4, stem_pool="caffe", **_SE)


@register_model
def senet154(**kwargs: Any) -> ResNet:
    """SENet-154: deep 3x3 stem (64, 64, 128), 64x4d groups with the first 1x1 halved, 3x3 stride-2 projections,
    dropout 0.2 (the ILSVRC 2017 winner's backbone)."""
    return _create_resnet(
        kwargs,
        **_depth(152),
        groups=64,
        base_width=4,
        conv1_ratio=0.5,
        stem="deep",
        stem_width=(64, 64, 128),
        stem_pool="caffe",
        downsample_kernel=3,
        drop_rate=0.2,
        **_SE,
    )


@register_model
def wide_resnet50_2(**kwargs: Any) -> ResNet:
    """Wide ResNet-50-2 (torchvision layout: bottleneck 3x3 twice as wide)."""
    return _create_resnet(kwargs, **_depth(50), base_width=128)


@register_model
def wide_resnet101_2(**kwargs: Any) -> ResNet:
    """Wide ResNet-101-2 (torchvision layout)."""
    return _create_resnet(kwargs, **_depth(101), base_width=128)


@register_model
def eca_resnet50(**kwargs: Any) -> ResNet:
    """ResNet-50 + ECA, k from the paper's rule (the release's 3, 5, 5, 7: ``eca_kernels=(3, 5, 5, 7)``)."""
    return _create_resnet(kwargs, **_depth(50), attn_layer="eca")


@register_model
def eca_resnet101(**kwargs: Any) -> ResNet:
    """ResNet-101 + ECA."""
    return _create_resnet(kwargs, **_depth(101), attn_layer="eca")


@register_model
def eca_resnet152(**kwargs: Any) -> ResNet:
    """ResNet-152 + ECA."""
    return _create_resnet(kwargs, **_depth(152), attn_layer="eca")


@register_model
def cbam_resnet50(**kwargs: Any) -> ResNet:
    """ResNet-50 + CBAM (channel MLP without bias, r = 16; 7x7 spatial conv + BN), as the CBAM release."""
    return _create_resnet(kwargs, **_depth(50), attn_layer="cbam")


@register_model
def cbam_resnet101(**kwargs: Any) -> ResNet:
    """ResNet-101 + CBAM."""
    return _create_resnet(kwargs, **_depth(101), attn_layer="cbam")
