"""Where attention goes in each supported architecture: one planner per family.

A planner walks a model and returns :class:`Site` records — the module path the new block will have, the channels it
gates, its stage and index (for paper-style names) and an ``install`` function that puts a module there. Planners never
modify the model; :func:`senet.retrofit.retrofit` builds the blocks and calls ``install``.

Families are recognised by their building blocks (``isinstance`` on torchvision/timm classes), not by the model class,
so a user network assembled from torchvision ``Bottleneck`` blocks is handled like a ResNet.
"""

from __future__ import annotations

import fnmatch
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torchvision.models.mobilenetv2 import InvertedResidual as TvInvertedResidual
from torchvision.models.regnet import ResBottleneckBlock
from torchvision.models.resnet import BasicBlock, Bottleneck
from torchvision.models.vgg import VGG
from torchvision.ops.misc import SqueezeExcitation

from ..errors import SenetError
from ..models._mbconv import InvertedResidual as MBConvBlock
from ..models._mbconv import MBConvNet
from ..models.mobilenet import InvertedResidual as SenetInvertedResidual
from ..models.resnet import ResNet, _AttnBlock
from . import blocks as _blocks
from .blocks import POSITIONS

__all__ = ["Site", "Plan", "plan_model", "plan_targets", "SUPPORTED"]

#: Human-readable list for error messages and docs.
SUPPORTED = (
    "torchvision ResNet/ResNeXt/Wide-ResNet (BasicBlock, Bottleneck)",
    "torchvision and senet MobileNetV2 (after each depthwise conv)",
    "torchvision VGG (before each MaxPool)",
    "torchvision RegNet (replace or add the block's SE)",
    "torchvision EfficientNet/MobileNetV3 and timm EfficientNet-style models (replace their SE)",
    "timm ResNet/ResNeXt (the block's `se` slot)",
    "senet ResNets (the block's `attn` slot)",
    "senet MobileNetV3/EfficientNet/EfficientNet-Lite (the MBConv block's `attn` slot, after the depthwise conv)",
)

# Attribute under which the generic rule hangs the block on its target (a name unlikely to clash).
TARGET_ATTR = "retrofit_attn"


@dataclass
class Site:
    """One place that receives an attention block."""

    path: str  # module path the attention module will have, e.g. "layer1.0.attn"
    channels: int  # C, the channels it gates
    stage: int  # stage number as the family counts them (paper numbering 2-5 for ResNets)
    index: int  # 1-based block index within the stage
    install: Callable[[nn.Module], None] = field(repr=False)
    replaced: nn.Module | None = field(default=None, repr=False)  # the module a swap removes
    name: str = ""  # paper-style name, filled in by the caller
    se_defaults: dict = field(default_factory=dict)  # the family's SE knobs at this site (senet MBConv nets)


@dataclass
class Plan:
    family: str
    sites: list[Site]
    stages: list[int]  # every stage number this family has, for error messages


def _stage_index(paths: Sequence[str]) -> list[tuple[int, int]]:
    """(stage, index) for block paths, stage = ordinal of the parent container, index = ordinal within it (1-based)."""
    out, parents, counts = [], {}, {}
    for p in paths:
        parent = p.rpartition(".")[0]
        stage = parents.setdefault(parent, len(parents) + 1)
        counts[parent] = counts.get(parent, 0) + 1
        out.append((stage, counts[parent]))
    return out


def _check_position(family: str, position: str, allowed: Sequence[str]) -> None:
    if position not in allowed:
        raise SenetError(
            f"position {position!r} is not available for {family}; choose one of: {', '.join(allowed)} "
            "(the five residual positions need a torchvision ResNet block)"
        )


# --------------------------------------------------------------------------------------------------------- ResNets
def _plan_tv_resnet(model: nn.Module, position: str) -> Plan | None:
    kinds = (BasicBlock, Bottleneck, _blocks.RetrofitBasicBlock, _blocks.RetrofitBottleneck)
    blocks = [(n, m) for n, m in model.named_modules() if type(m) in kinds]
    if not blocks:
        return None
    _check_position("torchvision ResNet", position, POSITIONS)
    sites = []
    for (path, block), (stage, index) in zip(blocks, _stage_index([n for n, _ in blocks])):
        if "attn" in block._modules:
            raise SenetError(f"block {path!r} already has an `attn` module; retrofit a fresh model")
        basic = isinstance(block, BasicBlock)
        out = block.bn2.num_features if basic else block.bn3.num_features
        channels = {
            "pre": block.conv1.in_channels,
            "inner": block.bn1.num_features if basic else block.bn2.num_features,
        }.get(position, out)

        def install(m: nn.Module, block: nn.Module = block, basic: bool = basic) -> None:
            block.attn = m
            block.attn_position = position
            block.__class__ = _blocks.RetrofitBasicBlock if basic else _blocks.RetrofitBottleneck

        # ResNet stages are numbered as in the paper: layer1 = conv2_x = stage 2.
        sites.append(Site(f"{path}.attn", channels, stage + 1, index, install))
    return Plan("torchvision-resnet", sites, sorted({s.stage for s in sites}))


def _plan_senet_resnet(model: nn.Module, position: str) -> Plan | None:
    if not isinstance(model, ResNet):
        return None
    _check_position("senet ResNet", position, POSITIONS)
    blocks = [(n, m) for n, m in model.named_modules() if isinstance(m, _AttnBlock)]
    sites = []
    for (path, block), (stage, index) in zip(blocks, _stage_index([n for n, _ in blocks])):
        bottleneck = hasattr(block, "conv3")
        last = block.conv3 if bottleneck else block.conv2
        mid = block.conv2 if bottleneck else block.conv1
        channels = {"pre": block.conv1.in_channels, "inner": mid.out_channels}.get(position, last.out_channels)
        old = block.attn

        def install(m: nn.Module, block: nn.Module = block) -> None:
            # senet blocks already have the slot: the same keys as a model built with attn_layer.
            block.attn = m
            block.attn_position = position

        sites.append(Site(f"{path}.attn", channels, stage + model.first_stage - 1, index, install, replaced=old))
    return Plan("senet-resnet", sites, sorted({s.stage for s in sites}))


def _timm_resnet_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    try:
        from timm.models.resnet import BasicBlock as TBasic
        from timm.models.resnet import Bottleneck as TBottle
    except ImportError:  # timm is optional
        return []
    return [(n, m) for n, m in model.named_modules() if type(m) in (TBasic, TBottle)]


def _plan_timm_resnet(model: nn.Module, position: str) -> Plan | None:
    blocks = _timm_resnet_blocks(model)
    if not blocks:
        return None
    # timm's blocks call `self.se` after the last BN, before the sum: the standard position and no other.
    _check_position("timm ResNet", position, ("standard",))
    sites = []
    for (path, block), (stage, index) in zip(blocks, _stage_index([n for n, _ in blocks])):
        last_bn = getattr(block, "bn3", None) or block.bn2
        old = block.se

        def install(m: nn.Module, block: nn.Module = block) -> None:
            block.se = m

        sites.append(Site(f"{path}.se", last_bn.num_features, stage + 1, index, install, replaced=old))
    return Plan("timm-resnet", sites, sorted({s.stage for s in sites}))


# ------------------------------------------------------------------------------------------------------- MobileNetV2
def _is_depthwise(m: nn.Module) -> bool:
    conv = m[0] if isinstance(m, nn.Sequential) and len(m) and isinstance(m[0], nn.Conv2d) else None
    return conv is not None and conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels


def _mobilenetv2_block_types() -> tuple[type, ...]:
    return TvInvertedResidual, SenetInvertedResidual


def _plan_mobilenetv2(model: nn.Module, position: str) -> Plan | None:
    kinds = _mobilenetv2_block_types()
    blocks = [(n, m) for n, m in model.named_modules() if type(m) in kinds]
    if not blocks:
        return None
    _check_position("MobileNetV2", position, ("standard",))
    sites, stage, prev_out, index = [], 0, None, 0
    for path, block in blocks:
        # Stages are the paper's bottleneck sequences (Table 2 rows): consecutive blocks with the same output width.
        if block.out_channels != prev_out:
            stage, index, prev_out = stage + 1, 0, block.out_channels
        index += 1
        dw_i = next(i for i, m in enumerate(block.conv) if _is_depthwise(m))
        dw = block.conv[dw_i]
        # The block goes at index 3 of the depthwise Conv-BN-ReLU6 (senet's se_mobilenet_v2 layout), so no existing
        # parameter name changes and a retrofitted torchvision model loads into senet's.
        old = dw[3] if len(dw) > 3 else None

        def install(m: nn.Module, dw: nn.Module = dw) -> None:
            if len(dw) > 3:
                dw[3] = m
            else:
                dw.append(m)

        sites.append(Site(f"{path}.conv.{dw_i}.3", dw[0].out_channels, stage, index, install, replaced=old))
    return Plan("mobilenetv2", sites, sorted({s.stage for s in sites}))


# --------------------------------------------------------------------------------------------------------------- VGG
def _plan_vgg(model: nn.Module, position: str) -> Plan | None:
    if not isinstance(model, VGG):
        return None
    _check_position("VGG", position, ("standard",))
    sites, channels, stage = [], None, 0
    for i, m in enumerate(model.features):
        if isinstance(m, nn.Conv2d):
            channels = m.out_channels
        elif isinstance(m, nn.MaxPool2d) and channels is not None:
            stage += 1

            def install(a: nn.Module, i: int = i, pool: nn.Module = m) -> None:
                # The pool has no parameters, so wrapping it keeps every existing key.
                model.features[i] = nn.Sequential(OrderedDict(attn=a, pool=pool))

            sites.append(Site(f"features.{i}.attn", channels, stage, 1, install))
    return Plan("torchvision-vgg", sites, sorted({s.stage for s in sites}))


# ------------------------------------------------------------------------------------------------------------ RegNet
def _plan_regnet(model: nn.Module, position: str) -> Plan | None:
    blocks = [(n, m) for n, m in model.named_modules() if type(m) is ResBottleneckBlock]
    if not blocks:
        return None
    _check_position("RegNet", position, ("standard",))
    sites = []
    for (path, block), (stage, index) in zip(blocks, _stage_index([n for n, _ in blocks])):
        f = block.f
        old = f._modules.get("se")

        def install(m: nn.Module, f: nn.Module = f) -> None:
            # Keep the Sequential order a -> b -> se -> c (RegNetY's place for SE), adding the slot if absent.
            mods = [(k, v) for k, v in f._modules.items() if k != "se"]
            f._modules.clear()
            for k, v in mods:
                f._modules[k] = v
                if k == "b":
                    f._modules["se"] = m

        sites.append(Site(f"{path}.f.se", f.b[0].out_channels, stage, index, install, replaced=old))
    return Plan("torchvision-regnet", sites, sorted({s.stage for s in sites}))


# ------------------------------------------------------------------------------------- existing SE (EfficientNet...)
def _se_channels(m: nn.Module) -> int | None:
    """Channels of a known SE implementation, or None if ``m`` is not one."""
    if isinstance(m, SqueezeExcitation):
        return m.fc1.in_channels
    try:
        from timm.layers.squeeze_excite import SEModule
        from timm.models._efficientnet_blocks import SqueezeExcite
    except ImportError:
        return None
    if isinstance(m, SqueezeExcite):
        return m.conv_reduce.in_channels
    if isinstance(m, SEModule):
        return m.fc1.in_channels
    return None


def _enclosing_block(model: nn.Module, path: str) -> str:
    """The innermost numbered ancestor of ``path`` that is a real block (not a Sequential/ModuleList)."""
    parts = path.split(".")
    for i in range(len(parts) - 2, -1, -1):
        if parts[i].isdigit():
            p = ".".join(parts[: i + 1])
            if not isinstance(model.get_submodule(p), (nn.Sequential, nn.ModuleList)):
                return p
    return path.rpartition(".")[0]


def _plan_swap(model: nn.Module, position: str) -> Plan | None:
    found = [(n, m, c) for n, m in model.named_modules() if n and (c := _se_channels(m)) is not None]
    if not found:
        return None
    _check_position("a model with existing SE blocks", position, ("standard",))
    # Stage = the container holding the block that holds the SE (EfficientNet's features.<k>, timm's blocks.<k>).
    block_paths = [_enclosing_block(model, n) for n, _, _ in found]
    sites = []
    for (path, old, channels), (stage, index) in zip(found, _stage_index(block_paths)):

        def install(m: nn.Module, path: str = path) -> None:
            model.set_submodule(path, m)

        sites.append(Site(path, channels, stage, index, install, replaced=old))
    return Plan("swap-existing-se", sites, sorted({s.stage for s in sites}))


def _plan_senet_mbconv(model: nn.Module, position: str) -> Plan | None:
    if not isinstance(model, MBConvNet):
        return None
    _check_position("senet MBConv net", position, ("standard",))
    # The paper's SE sites (every block for EfficientNet and Lite, the marked ones for MobileNetV3), so adding
    # attention to a plain net and replacing an SE net's both give a model with the entrypoint's keys.
    blocks = [(n, m) for n, m in model.named_modules() if isinstance(m, MBConvBlock) and m.cfg.attn]
    sites = []
    for path, block in blocks:
        # blocks.<s>.<i>: the same SE_<s+1>_<i+1> names as the model's own attention_modules().
        stage, index = (int(p) + 1 for p in path.split(".")[1:3])

        def install(m: nn.Module, block: nn.Module = block) -> None:
            block.attn = m

        se = model.attn_defaults(block.cfg) if model.attn_defaults else {}
        sites.append(Site(f"{path}.attn", block.cfg.exp_chs, stage, index, install, block.attn, se_defaults=se))
    return Plan("senet-mbconv", sites, sorted({s.stage for s in sites}))


_PLANNERS = (
    _plan_senet_resnet,
    _plan_senet_mbconv,
    _plan_tv_resnet,
    _plan_timm_resnet,
    _plan_mobilenetv2,
    _plan_vgg,
    _plan_regnet,
    _plan_swap,
)


def targetable(model: nn.Module, depth: int = 2, limit: int = 24) -> list[str]:
    """Module names up to ``depth`` dots deep: what ``targets`` globs can match, for error messages."""
    names = [n for n, _ in model.named_modules() if n and n.count(".") < depth]
    return names[:limit] + (["..."] if len(names) > limit else [])


def plan_model(model: nn.Module, position: str) -> Plan:
    """Find the attention sites of a supported architecture.

    Raises:
        SenetError: no supported family recognised (the message lists the families and the model's module names
            that ``targets`` can match), or a position the family does not have.
    """
    for planner in _PLANNERS:
        plan = planner(model, position)
        if plan is not None:
            return plan
    raise SenetError(
        f"don't know where to put attention in {type(model).__name__}; supported: {'; '.join(SUPPORTED)}. "
        f"For other networks pass targets=[...] (fnmatch globs on module names; the block goes after each match), "
        f"e.g. from: {', '.join(targetable(model))}"
    )


# ------------------------------------------------------------------------------------------------- generic targets
def _after_hook(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
    # A module-level function (not a closure) so deepcopy/pickle of the model keep working.
    return getattr(module, TARGET_ATTR)(output)


def plan_targets(model: nn.Module, targets: Sequence[str], position: str, example_input: torch.Tensor) -> Plan:
    """Sites after every module whose name matches one of ``targets`` (outermost match wins).

    The gated channels are read from the module's output on ``example_input`` (one no-grad forward in eval mode).
    """
    if isinstance(targets, str):
        targets = [targets]
    _check_position("targets", position, ("standard", "post"))
    matched: list[tuple[str, nn.Module]] = []
    for name, m in model.named_modules():
        if not name or not any(fnmatch.fnmatchcase(name, t) for t in targets):
            continue
        if any(name.startswith(p + ".") for p, _ in matched):
            continue  # "layer3.*" matches layer3.0 and layer3.0.conv1: keep the block, not its parts
        matched.append((name, m))
    if not matched:
        raise SenetError(
            f"targets {list(targets)} match no module of {type(model).__name__}; module names include: "
            f"{', '.join(targetable(model))}"
        )
    shapes: dict[str, tuple[int, ...]] = {}
    handles = [
        m.register_forward_hook(lambda mod, a, o, n=n: shapes.__setitem__(n, getattr(o, "shape", None)))
        for n, m in matched
    ]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example_input)
    except Exception as e:  # noqa: BLE001 - any failure here means the probe input does not fit the model
        raise SenetError(
            f"could not run {type(model).__name__} on an input of shape {tuple(example_input.shape)} to find the "
            f"channels of the targets ({type(e).__name__}: {e}); pass example_input= a tensor the model accepts"
        ) from e
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    sites = []
    for i, (name, m) in enumerate(matched, 1):
        shape = shapes.get(name)
        if shape is None or len(shape) < 3:
            raise SenetError(
                f"target {name!r} ({type(m).__name__}) "
                + ("was not called by forward" if name not in shapes else f"outputs shape {shape}")
                + "; attention needs an (N, C, ...) feature map: target a conv, a block or a stage"
            )
        if TARGET_ATTR in m._modules:
            raise SenetError(f"module {name!r} already has a retrofitted block; retrofit a fresh model")

        def install(a: nn.Module, m: nn.Module = m) -> None:
            m.add_module(TARGET_ATTR, a)
            m.register_forward_hook(_after_hook)

        sites.append(Site(f"{name}.{TARGET_ATTR}", int(shape[1]), 1, i, install))
    return Plan("targets", sites, [1])
