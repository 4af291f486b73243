"""Checkpoint layouts: how each published implementation names and shapes its tensors.

Every layout converts its state_dict to senet's *canonical* names, which are torchvision's ResNet names plus the
attention module under ``attn`` — the names of senet's own ResNet::

    conv1 bn1 | stem.conv{1,2,3} stem.bn{1,2,3}     (7x7 stem | SENet-154's three 3x3 convs)
    layer{1..4}.{i}.conv{1,2,3} .bn{1,2,3} .downsample.{0,1}
    layer{s}.{i}.attn.fc1 .fc2                      (SE, nn.Linear weights: 2-D)
    layer{s}.{i}.attn.conv                          (ECA, Conv1d(1, 1, k))
    layer{s}.{i}.attn.channel.fc{1,2} .spatial.conv .spatial.bn   (CBAM, spatial input order [mean, max])
    fc

:mod:`senet.weights.convert` loads canonical tensors into senet models. Layouts are detected from
key names and tensor shapes only (:func:`detect_layout`); what the weights cannot tell (where the stride sits, how
the stem max-pool rounds) is implied by the layout's name — e.g. the Caffe-converted SENet release always means
stride in the first 1x1 and a ``ceil_mode`` max-pool.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import torch

from senet.errors import SenetError

__all__ = [
    "Layout",
    "Detection",
    "Arch",
    "LAYOUTS",
    "list_layouts",
    "get_layout",
    "detect_layout",
    "strip_prefixes",
    "infer_arch",
]

StateDict = dict[str, torch.Tensor]

# Prefixes wrappers add: DataParallel/DDP ("module."), torch.compile ("_orig_mod."), mmpretrain ("backbone."),
# Lightning-style ("model.").
_PREFIXES = ("module.", "_orig_mod.", "model.")


def strip_prefixes(state_dict: Mapping[str, torch.Tensor]) -> tuple[StateDict, list[str]]:
    """Remove wrapper prefixes shared by every key. Returns the new dict and the prefixes removed."""
    sd = dict(state_dict)
    removed: list[str] = []
    changed = True
    while changed and sd:
        changed = False
        for p in _PREFIXES:
            if all(k.startswith(p) for k in sd):
                sd = {k[len(p) :]: v for k, v in sd.items()}
                removed.append(p)
                changed = True
    return sd, removed


@dataclass(frozen=True)
class Layout:
    """One published checkpoint layout.

    Attributes:
        name: short id used by ``--layout`` and stored in converted files.
        title: what it is, for humans.
        source: the code or release it comes from.
        signature: regexes over (prefix-stripped) keys; all must match some key for the layout to be detected.
        exclude: regexes that must match no key.
        to_canonical: state_dict (prefix-stripped) -> canonical senet names.
        caffe: the layout implies the original Caffe ResNet (stride in the first 1x1, ceil-mode stem pool).
        priority: when several signatures match, the highest wins (specific layouts over torchvision's).
    """

    name: str
    title: str
    source: str
    signature: tuple[str, ...]
    exclude: tuple[str, ...]
    to_canonical: Callable[[StateDict], StateDict]
    caffe: bool = False
    priority: int = 0  # higher wins when several layouts match
    #: MBConv layouts: ``create_model`` overrides the layout implies for weights of an :class:`Arch` (BatchNorm
    #: epsilon, TF SAME padding), which the tensors cannot show. ``None`` for the ResNet layouts.
    mbconv_kwargs: Callable[[Arch], dict] | None = None

    def evidence(self, keys: Iterable[str]) -> list[str] | None:
        """The keys that prove this layout, or None when it does not match."""
        keys = list(keys)
        found = []
        for pat in self.signature:
            rx = re.compile(pat)
            hit = next((k for k in keys if rx.search(k)), None)
            if hit is None:
                return None
            found.append(hit)
        for pat in self.exclude:
            rx = re.compile(pat)
            if any(rx.search(k) for k in keys):
                return None
        return found


@dataclass
class Detection:
    """What :func:`detect_layout` concluded, and why."""

    layout: str
    evidence: list[str]
    prefixes: list[str] = field(default_factory=list)
    candidates: list[str] = field(default_factory=list)  # every layout whose signature matched

    def __str__(self) -> str:
        pre = f" after stripping {'/'.join(self.prefixes)}" if self.prefixes else ""
        return f"{self.layout} (keys {', '.join(self.evidence)}{pre})"


# ---------------------------------------------------------------------------------------------------------------
# Conversion helpers
# ---------------------------------------------------------------------------------------------------------------


def _squeeze_1x1(t: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution weight (out, in, 1, 1) as the equivalent nn.Linear weight (out, in)."""
    return t.reshape(t.shape[0], t.shape[1]) if t.ndim == 4 else t


def _swap_max_mean(t: torch.Tensor) -> torch.Tensor:
    """CBAM release spatial conv takes [max, mean]; senet takes [mean, max]: swap the two input channels."""
    return t[:, [1, 0]].contiguous()


Rule = tuple[str, str, Callable[[torch.Tensor], torch.Tensor] | None]


def _apply_rules(sd: StateDict, rules: list[Rule]) -> StateDict:
    """Rename keys with the first matching regex rule (and transform its tensor); other keys pass unchanged."""
    compiled = [(re.compile(p), r, f) for p, r, f in rules]
    out: StateDict = {}
    for k, v in sd.items():
        for rx, repl, fn in compiled:
            if rx.search(k):
                k = rx.sub(repl, k)
                if fn is not None:
                    v = fn(v)
                break
        if k in out:
            raise SenetError(f"two checkpoint tensors map to the same senet key {k!r}")
        out[k] = v
    return out


def _identity(sd: StateDict) -> StateDict:
    return dict(sd)


def _timm_to_canonical(sd: StateDict) -> StateDict:
    return _apply_rules(
        sd,
        [
            (r"\.se\.spatial\.conv\.conv\.", ".attn.spatial.conv.", None),
            (r"\.se\.spatial\.conv\.bn\.", ".attn.spatial.bn.", None),
            (r"\.se\.channel\.(fc[12])\.weight$", r".attn.channel.\1.weight", _squeeze_1x1),
            (r"\.se\.channel\.(fc[12])\.bias$", r".attn.channel.\1.bias", None),
            (r"\.se\.(fc[12])\.weight$", r".attn.\1.weight", _squeeze_1x1),
            (r"\.se\.(fc[12])\.bias$", r".attn.\1.bias", None),
            (r"\.se\.conv\.weight$", ".attn.conv.weight", None),
        ],
    )


def _caffe_to_canonical(sd: StateDict) -> StateDict:
    deep = "layer0.conv2.weight" in sd
    stem = "stem." if deep else ""
    return _apply_rules(
        sd,
        [
            (r"^layer0\.(conv|bn)(\d)\.", rf"{stem}\1\2.", None),
            (r"\.se_module\.(fc[12])\.weight$", r".attn.\1.weight", _squeeze_1x1),
            (r"\.se_module\.(fc[12])\.bias$", r".attn.\1.bias", None),
            (r"^last_linear\.", "fc.", None),
        ],
    )


def _eca_release_to_canonical(sd: StateDict) -> StateDict:
    return _apply_rules(sd, [(r"\.eca\.conv\.weight$", ".attn.conv.weight", None)])


def _cbam_release_to_canonical(sd: StateDict) -> StateDict:
    return _apply_rules(
        sd,
        [
            (r"\.cbam\.ChannelGate\.mlp\.1\.", ".attn.channel.fc1.", None),
            (r"\.cbam\.ChannelGate\.mlp\.3\.", ".attn.channel.fc2.", None),
            (r"\.cbam\.SpatialGate\.spatial\.conv\.weight$", ".attn.spatial.conv.weight", _swap_max_mean),
            (r"\.cbam\.SpatialGate\.spatial\.bn\.", ".attn.spatial.bn.", None),
        ],
    )


def _mmpretrain_convert(sd: StateDict) -> StateDict:
    # Two passes: strip the wrapper names, then map the SE layer (rules match one key once).
    sd = _apply_rules(sd, [(r"^backbone\.", "", None), (r"^head\.fc\.", "fc.", None)])
    return _apply_rules(
        sd,
        [
            (r"\.se_layer\.conv([12])\.conv\.weight$", r".attn.fc\1.weight", _squeeze_1x1),
            (r"\.se_layer\.conv([12])\.conv\.bias$", r".attn.fc\1.bias", None),
        ],
    )


def _moskomule_to_canonical(sd: StateDict) -> StateDict:
    # SELayer.fc = Sequential(Linear(C, C//r, bias=False), ReLU, Linear(C//r, C, bias=False), Sigmoid)
    return _apply_rules(
        sd,
        [
            (r"\.se\.fc\.0\.", ".attn.fc1.", None),
            (r"\.se\.fc\.2\.", ".attn.fc2.", None),
        ],
    )


# ---------------------------------------------------------------------------------------------------------------
# MBConv families (MobileNetV3, EfficientNet, EfficientNet-Lite): every layout goes through one ordered block list
# ---------------------------------------------------------------------------------------------------------------

_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _take(sd: StateDict, out: StateDict, src: str, dst: str, squeeze: bool = False) -> None:
    """Move every tensor under module ``src`` to module ``dst`` (1x1 conv weights as Linear with ``squeeze``)."""
    for k in [k for k in sd if k.startswith(src + ".")]:
        v = sd.pop(k)
        out[dst + k[len(src) :]] = _squeeze_1x1(v) if squeeze and k.endswith(".weight") else v


def _mbconv_canonical(
    sd: StateDict,
    stem: tuple[str, str],
    blocks: list[dict[str, str]],
    head: tuple[str, str],
    fc: str,
    pre_fc: str = "",
) -> StateDict:
    """Canonical senet MBConv names from source module names.

    ``blocks`` lists, in forward order, each block's source modules by part: ``pw``/``bn1`` (expansion),
    ``dw``/``bn2``, ``se1``/``se2`` (the SE's reduce/expand), ``pwl``/``bn3`` (projection). Blocks are grouped into
    senet's stages by runs of equal output channels, which is where both papers' stages (and timm's) break.
    """
    sd = dict(sd)
    out: StateDict = {}
    _take(sd, out, stem[0], "conv_stem")
    _take(sd, out, stem[1], "bn1")
    stage, idx, prev = -1, 0, None
    names = {"pw": "conv_pw", "bn1": "bn1", "dw": "conv_dw", "bn2": "bn2", "pwl": "conv_pwl", "bn3": "bn3"}
    for parts in blocks:
        out_chs = int(sd[parts["pwl"] + ".weight"].shape[0])
        if out_chs != prev:
            stage, idx, prev = stage + 1, 0, out_chs
        p = f"blocks.{stage}.{idx}."
        for part, src in parts.items():
            if part in ("se1", "se2"):
                _take(sd, out, src, p + ("attn.fc1" if part == "se1" else "attn.fc2"), squeeze=True)
            else:
                _take(sd, out, src, p + names[part])
        idx += 1
    _take(sd, out, head[0], "conv_head")
    _take(sd, out, head[1], "bn2")
    if pre_fc:
        _take(sd, out, pre_fc, "pre_fc", squeeze=True)
    _take(sd, out, fc, "fc")
    out.update(sd)  # anything unrecognised stays, so the strict load names it
    return out


def _natural(key: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", key))


def _torchvision_mbconv_to_canonical(sd: StateDict) -> StateDict:
    # features.0 = stem; features.i(.j).block.{n} = the blocks (Conv2dNormActivation .0/.1, SE .fc1/.fc2);
    # the last features.L = head conv; classifier.0 (MobileNetV3's hidden FC) and the last Linear.
    prefixes = sorted(
        {m.group(1) for k in sd if (m := re.match(r"^(features\.\d+(?:\.\d+)?)\.block\.", k))}, key=_natural
    )
    blocks = []
    for p in prefixes:
        subs = sorted({int(m.group(1)) for k in sd if (m := re.match(re.escape(p) + r"\.block\.(\d+)\.", k))})
        convs = [j for j in subs if f"{p}.block.{j}.0.weight" in sd]
        dw = next(j for j in convs if sd[f"{p}.block.{j}.0.weight"].shape[1] == 1)
        parts = {"dw": f"{p}.block.{dw}.0", "bn2": f"{p}.block.{dw}.1"}
        if convs[0] != dw:
            parts.update(pw=f"{p}.block.{convs[0]}.0", bn1=f"{p}.block.{convs[0]}.1")
        parts.update(pwl=f"{p}.block.{convs[-1]}.0", bn3=f"{p}.block.{convs[-1]}.1")
        se = [j for j in subs if f"{p}.block.{j}.fc1.weight" in sd]
        if se:
            parts.update(se1=f"{p}.block.{se[0]}.fc1", se2=f"{p}.block.{se[0]}.fc2")
        blocks.append(parts)
    last = max((int(m.group(1)) for k in sd if (m := re.match(r"^features\.(\d+)\.0\.weight$", k))), default=0)
    linears = sorted({m.group(1) for k in sd if (m := re.match(r"^classifier\.(\d+)\.weight$", k))}, key=int)
    pre_fc = f"classifier.{linears[0]}" if len(linears) > 1 else ""
    return _mbconv_canonical(
        sd, ("features.0.0", "features.0.1"), blocks, (f"features.{last}.0", f"features.{last}.1"),
        f"classifier.{linears[-1]}", pre_fc,
    )  # fmt: skip


def _timm_mbconv_to_canonical(sd: StateDict) -> StateDict:
    # timm EfficientNet / MobileNetV3: blocks.s.i with conv_pw/bn1/conv_dw/bn2/se.conv_reduce/se.conv_expand/
    # conv_pwl/bn3; a depthwise-separable block (expansion 1) is conv_dw/bn1/se/conv_pw/bn2; MobileNetV3's last
    # stage is a ConvBnAct (conv, bn1) and its conv_head (with bias) is the hidden FC after pooling.
    prefixes = sorted({m.group(1) for k in sd if (m := re.match(r"^(blocks\.\d+\.\d+)\.", k))}, key=_natural)
    blocks = []
    head = ("conv_head", "bn2")
    pre_fc = ""
    for p in prefixes:
        if f"{p}.conv.weight" in sd:  # MobileNetV3's final 1x1 ConvBnAct stage
            head, pre_fc = (f"{p}.conv", f"{p}.bn1"), "conv_head"
            continue
        if f"{p}.conv_pwl.weight" in sd:
            parts = {"pw": f"{p}.conv_pw", "bn1": f"{p}.bn1", "dw": f"{p}.conv_dw", "bn2": f"{p}.bn2"}
            parts.update(pwl=f"{p}.conv_pwl", bn3=f"{p}.bn3")
        else:
            parts = {"dw": f"{p}.conv_dw", "bn2": f"{p}.bn1", "pwl": f"{p}.conv_pw", "bn3": f"{p}.bn2"}
        if f"{p}.se.conv_reduce.weight" in sd:
            parts.update(se1=f"{p}.se.conv_reduce", se2=f"{p}.se.conv_expand")
        blocks.append(parts)
    return _mbconv_canonical(sd, ("conv_stem", "bn1"), blocks, head, "classifier", pre_fc)


def _effnet_pytorch_to_canonical(sd: StateDict) -> StateDict:
    # lukemelas/EfficientNet-PyTorch and its forks (efficientnet-lite-pytorch): _blocks.N flat, _fc classifier.
    blocks = []
    for n in sorted({int(m.group(1)) for k in sd if (m := re.match(r"^_blocks\.(\d+)\.", k))}):
        p = f"_blocks.{n}"
        parts = {"dw": f"{p}._depthwise_conv", "bn2": f"{p}._bn1", "pwl": f"{p}._project_conv", "bn3": f"{p}._bn2"}
        if f"{p}._expand_conv.weight" in sd:
            parts.update(pw=f"{p}._expand_conv", bn1=f"{p}._bn0")
        if f"{p}._se_reduce.weight" in sd:
            parts.update(se1=f"{p}._se_reduce", se2=f"{p}._se_expand")
        blocks.append(parts)
    return _mbconv_canonical(sd, ("_conv_stem", "_bn0"), blocks, ("_conv_head", "_bn1"), "_fc")


_ATTN_ANY = r"\.(se|se_module|se_layer|eca|cbam|attn)\."

#: Every layout senet converts, most specific first.
LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in [
        Layout(
            "senet",
            "senet's own names (a converted file or a senet training checkpoint)",
            "senet",
            (r"^layer\d+\.\d+\.attn\.",),
            (),
            _identity,
            priority=10,
        ),
        Layout(
            "caffe_senet",
            "the official SENet release converted from Caffe (Cadene pretrainedmodels; timm legacy_se*)",
            "github.com/hujie-frank/SENet via Cadene/pretrainedmodels, timm legacy_seresnet*/legacy_senet154",
            (r"^layer0\.conv1\.weight$", r"\.se_module\.fc1\.weight$", r"^last_linear\.weight$"),
            (),
            _caffe_to_canonical,
            caffe=True,
            priority=9,
        ),
        Layout(
            "timm",
            "timm ResNet family with attention (seresnet*, seresnext*, resnet + attn_layer eca/cbam)",
            "github.com/huggingface/pytorch-image-models timm/models/resnet.py",
            (r"^layer\d+\.\d+\.se\.(fc1|conv|channel)\.",),
            (r"\.se\.fc\.0\.",),
            _timm_to_canonical,
            priority=8,
        ),
        Layout(
            "eca_release",
            "the ECA-Net release (eca_resnet*_k3557 .pth.tar, DataParallel prefix, optimizer alongside)",
            "github.com/BangguWu/ECANet models/eca_resnet.py",
            (r"^layer\d+\.\d+\.eca\.conv\.weight$",),
            (),
            _eca_release_to_canonical,
            priority=8,
        ),
        Layout(
            "cbam_release",
            "the official CBAM release (Linear MLP with bias, spatial conv input [max, mean])",
            "github.com/Jongchan/attention-module MODELS/cbam.py, model_resnet.py",
            (r"\.cbam\.ChannelGate\.mlp\.1\.weight$", r"\.cbam\.SpatialGate\.spatial\.conv\.weight$"),
            (),
            _cbam_release_to_canonical,
            priority=8,
        ),
        Layout(
            "mmpretrain",
            "OpenMMLab mmpretrain / mmcls SEResNet (backbone., se_layer.conv1.conv, head.fc)",
            "github.com/open-mmlab/mmpretrain mmpretrain/models/backbones/seresnet.py",
            (r"^backbone\.layer1\.0\.",),
            (),
            _mmpretrain_convert,
            priority=8,
        ),
        Layout(
            "moskomule",
            "moskomule/senet.pytorch (torchvision ResNet + Linear SE without bias)",
            "github.com/moskomule/senet.pytorch senet/se_resnet.py",
            (r"^layer\d+\.\d+\.se\.fc\.0\.weight$",),
            (),
            _moskomule_to_canonical,
            priority=8,
        ),
        Layout(
            "senet_mbconv",
            "senet's own MobileNetV3 / EfficientNet names (a converted file or a training checkpoint)",
            "senet",
            (r"^conv_stem\.weight$", r"^blocks\.0\.0\.conv_dw\.weight$", r"^fc\.weight$"),
            (r"^classifier\.", r"\.se\.conv_reduce\."),
            _identity,
            priority=10,
            mbconv_kwargs=lambda arch: {},
        ),
        Layout(
            "timm_mbconv",
            "timm EfficientNet / MobileNetV3 (efficientnet_b*, efficientnet_lite*, mobilenetv3_*_100)",
            "github.com/huggingface/pytorch-image-models timm/models/efficientnet.py, mobilenetv3.py",
            (r"^conv_stem\.weight$", r"^blocks\.0\.0\.conv_dw\.weight$"),
            (r"^fc\.",),
            _timm_mbconv_to_canonical,
            priority=8,
            mbconv_kwargs=lambda arch: {"bn_eps": 1e-5},
        ),
        Layout(
            "torchvision_mbconv",
            "torchvision mobilenet_v3_large/small and efficientnet_b0..b7",
            "github.com/pytorch/vision torchvision/models/mobilenetv3.py, efficientnet.py",
            (r"^features\.0\.0\.weight$", r"\.block\.\d+\.0\.weight$", r"^classifier\."),
            (),
            _torchvision_mbconv_to_canonical,
            priority=8,
            # torchvision's MobileNetV3 uses BatchNorm eps 1e-3, its EfficientNet-B0..B4 the default 1e-5.
            mbconv_kwargs=lambda arch: {"bn_eps": 1e-3 if arch.head_hidden else 1e-5},
        ),
        Layout(
            "efficientnet_pytorch",
            "lukemelas/EfficientNet-PyTorch, efficientnet-lite-pytorch (_blocks.N._depthwise_conv, TF SAME padding)",
            "github.com/lukemelas/EfficientNet-PyTorch, github.com/ml-illustrated/EfficientNet-Lite-PyTorch",
            (r"^_conv_stem\.weight$", r"^_blocks\.0\._depthwise_conv\.weight$"),
            (),
            _effnet_pytorch_to_canonical,
            priority=8,
            # TF-trained weights: BatchNorm eps 1e-3 and SAME padding (stride-2 convs pad bottom/right).
            mbconv_kwargs=lambda arch: {"bn_eps": 1e-3, "pad_type": "same"},
        ),
        Layout(
            "torchvision",
            "torchvision resnet*/resnext*/wide_resnet* (same names as timm's plain resnet*)",
            "github.com/pytorch/vision torchvision/models/resnet.py",
            (r"^conv1\.weight$", r"^layer1\.0\.conv1\.weight$", r"^fc\.weight$"),
            (_ATTN_ANY, r"^stem\."),
            _identity,
            priority=1,
        ),
    ]
}


def list_layouts() -> list[str]:
    """Names accepted by ``--layout`` / ``layout=``."""
    return list(LAYOUTS)


def get_layout(name: str) -> Layout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise SenetError(f"unknown layout {name!r}; choose one of: {', '.join(LAYOUTS)}") from None


def detect_layout(state_dict: Mapping[str, torch.Tensor]) -> Detection:
    """Identify which implementation wrote ``state_dict`` from its key names (after stripping wrapper prefixes).

    Returns a :class:`Detection` with the layout name and the keys that gave it away. Raises SenetError when no
    layout matches, quoting a few keys so the user can see what the file holds.
    """
    sd, prefixes = strip_prefixes(state_dict)
    keys = list(sd)
    matches = []
    for layout in LAYOUTS.values():
        ev = layout.evidence(keys)
        if ev is not None:
            matches.append((layout.priority, layout.name, ev))
    if not matches:
        sample = ", ".join(keys[:6]) + (", ..." if len(keys) > 6 else "")
        raise SenetError(
            f"unrecognised checkpoint layout ({len(keys)} tensors: {sample}); known layouts: "
            f"{', '.join(LAYOUTS)}. Pass --layout NAME if it is one of them with unusual names"
        )
    matches.sort(key=lambda m: -m[0])
    _, name, ev = matches[0]
    return Detection(name, ev, prefixes, [m[1] for m in matches])


# ---------------------------------------------------------------------------------------------------------------
# Architecture inference from canonical tensors
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Arch:
    """What the canonical tensors say about the network that produced them."""

    block: str  # "basic" or "bottleneck"
    depths: tuple[int, ...]  # blocks per stage
    deep_stem: bool  # three 3x3 stem convs (SENet-154) instead of one 7x7
    groups: int  # grouped 3x3 (ResNeXt cardinality)
    width: int  # channels of the first block's 3x3 conv in stage 1
    attn: str | None  # "se", "eca", "cbam" or None
    attn_channels: tuple[int, ...] = ()  # C gated per stage
    rd_channels: tuple[int, ...] = ()  # SE / CBAM reduced width per stage
    attn_bias: bool | None = None  # SE / CBAM MLP has biases
    eca_kernels: tuple[int, ...] = ()  # ECA kernel per stage
    downsample_kernel: int = 1  # projection shortcut kernel (SENet-154: 3 in stages 3-5)
    num_classes: int = 0
    head_hidden: int = 0  # MBConv nets: MobileNetV3's hidden FC width after pooling (0: none)

    @property
    def depth(self) -> int:
        per_block = 3 if self.block == "bottleneck" else 2
        return per_block * sum(self.depths) + 2

    planes: int = 64  # stage-1 planes (block output / expansion)

    @property
    def base_width(self) -> int:
        """torchvision's ``width_per_group`` (``width = planes * base_width / 64 * groups``); 64 for basic blocks."""
        if self.block != "bottleneck":
            return 64
        return self.width * 64 // (self.planes * self.groups)

    def describe(self) -> str:
        if self.block == "mbconv":
            att = self.attn or "no attention"
            hid = f", hidden FC {self.head_hidden}" if self.head_hidden else ""
            return f"MBConv blocks {list(self.depths)}, stem {self.width}, {att}{hid}, {self.num_classes} classes"
        parts = [f"{self.block} blocks {list(self.depths)} (depth {self.depth})"]
        if self.deep_stem:
            parts.append("deep 3x3 stem")
        if self.groups > 1:
            parts.append(f"{self.groups}x{self.base_width}d groups")
        elif self.base_width != 64:
            parts.append(f"width per group {self.base_width}")
        if self.attn:
            extra = f" k={list(self.eca_kernels)}" if self.attn == "eca" else f" rd={list(self.rd_channels)}"
            parts.append(f"{self.attn}{extra}")
        parts.append(f"{self.num_classes} classes")
        return ", ".join(parts)


def infer_arch(sd: Mapping[str, torch.Tensor]) -> Arch:
    """Read the architecture off canonical tensor names and shapes."""
    if "blocks.0.0.conv_dw.weight" in sd:
        return _infer_mbconv_arch(sd)
    stages: dict[int, set[int]] = {}
    for k in sd:
        m = re.match(r"^layer(\d+)\.(\d+)\.", k)
        if m:
            stages.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    if not stages or "layer1.0.conv1.weight" not in sd:
        raise SenetError("the weights hold no ResNet stages (no layer1.0.conv1.weight after conversion)")
    depths = tuple(len(stages[s]) for s in sorted(stages))
    bottleneck = "layer1.0.conv3.weight" in sd
    conv1, conv2 = sd["layer1.0.conv1.weight"], sd["layer1.0.conv2.weight"]
    groups = conv1.shape[0] // conv2.shape[1] if bottleneck else 1
    width = conv2.shape[0]  # the 3x3's output (SENet-154 halves its input, not its output)
    attn = None
    for kind, suffix in (
        ("cbam", ".attn.channel.fc1.weight"),
        ("se", ".attn.fc1.weight"),
        ("eca", ".attn.conv.weight"),
    ):
        if any(k.endswith(suffix) for k in sd):
            attn = kind
            break
    first = [f"layer{s}.0." for s in sorted(stages)]
    chans: list[int] = []
    rd: list[int] = []
    bias = None
    kernels: list[int] = []
    # Per stage, from its first block; 0 where a stage has no attention (attn_stages ablations).
    if attn in ("se", "cbam"):
        fc = "attn.fc1" if attn == "se" else "attn.channel.fc1"
        ws = [sd.get(p + fc + ".weight") for p in first]
        chans = [int(w.shape[1]) if w is not None else 0 for w in ws]
        rd = [int(w.shape[0]) if w is not None else 0 for w in ws]
        bias = any(k.endswith("." + fc + ".bias") for k in sd)
    elif attn == "eca":
        ws = [sd.get(p + "attn.conv.weight") for p in first]
        kernels = [int(w.shape[-1]) if w is not None else 0 for w in ws]
    ds = [sd[p + "downsample.0.weight"] for p in first if p + "downsample.0.weight" in sd]
    ds_kernel = int(ds[-1].shape[-1]) if ds else 1
    fc_w = sd.get("fc.weight")
    return Arch(
        block="bottleneck" if bottleneck else "basic",
        depths=depths,
        deep_stem="stem.conv1.weight" in sd,
        groups=int(groups),
        width=int(width),
        attn=attn,
        attn_channels=tuple(chans),
        rd_channels=tuple(rd),
        attn_bias=bias,
        eca_kernels=tuple(kernels),
        downsample_kernel=ds_kernel,
        num_classes=int(fc_w.shape[0]) if fc_w is not None else 0,
        planes=int(sd["layer1.0.conv3.weight"].shape[0] // 4 if bottleneck else conv2.shape[0]),
    )


def _infer_mbconv_arch(sd: Mapping[str, torch.Tensor]) -> Arch:
    stages: dict[int, set[int]] = {}
    for k in sd:
        m = re.match(r"^blocks\.(\d+)\.(\d+)\.", k)
        if m:
            stages.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    attn = None
    if any(k.endswith(".attn.fc1.weight") for k in sd):
        attn = "se"
    elif any(k.endswith(".attn.conv.weight") for k in sd):
        attn = "eca"
    fc_w, pre = sd.get("fc.weight"), sd.get("pre_fc.weight")
    return Arch(
        block="mbconv",
        depths=tuple(len(stages[s]) for s in sorted(stages)),
        deep_stem=False,
        groups=1,
        width=int(sd["conv_stem.weight"].shape[0]),
        attn=attn,
        num_classes=int(fc_w.shape[0]) if fc_w is not None else 0,
        head_hidden=int(pre.shape[0]) if pre is not None else 0,
    )
