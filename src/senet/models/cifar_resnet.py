"""CIFAR ResNets (He et al. 2016, Sec. 4.2), pre-activation ResNets and Wide-ResNet-16-8, with attention twins.

All are :class:`senet.models.resnet.ResNet` with a 3x3 stem of 16 channels, no max-pool and three stages of
16 / 32 / 64 planes (stages numbered 2-4 in attention names). Defaults: 10 classes, 32x32 inputs (any size works).

Choices, stated once:

* **Shortcuts**: projection (1x1 conv + BN, "option B") wherever the shape changes, not the zero-padding identity
  ("option A") of the original CIFAR paper. It adds 2 projections (about 0.5 % of ResNet-20's parameters) and is
  what torchvision-style code and the checkpoint layouts senet reads use.
* **SE width on CIFAR**: ``max(C // 16, 4)`` (``rd_ratio=1/16, rd_min=4``, :data:`CIFAR_RD_MIN`): r = 16 as the
  paper, but a 16-channel stage gets 4 hidden units (r = 4, the common SE-ResNet-20 choice) instead of collapsing
  to 1. Override with ``attn_kwargs={"rd_ratio": 1/8, "rd_min": 1}`` etc. The default applies to every kind that
  has an ``rd_min`` knob (SE, CBAM, scSE, ...); ECA needs none.
* ``resnet164`` is the original post-activation bottleneck net; ``preact_resnet164`` is He et al.'s
  pre-activation ResNet-164 (the "ResNet-164" of the SENet paper's CIFAR table, 5.46 % error on CIFAR-10).
"""

from __future__ import annotations

from typing import Any

from senet.layers import merge_attn_kwargs

from ._registry import register_model
from .resnet import ResNet

__all__ = ["CIFAR_RD_MIN"]

#: Smallest SE/CBAM hidden width on CIFAR (see the module docstring).
CIFAR_RD_MIN = 4

_CIFAR = dict(stem="cifar", stem_width=16, widths=(16, 32, 64), num_classes=10)


def _blocks(depth: int, bottleneck: bool) -> tuple[int, int, int]:
    per = 9 if bottleneck else 6
    if (depth - 2) % per:
        raise ValueError(f"a CIFAR ResNet with {'bottleneck' if bottleneck else 'basic'} blocks has depth {per}n+2")
    n = (depth - 2) // per
    return (n, n, n)


def _create_cifar(kwargs: dict[str, Any], **defaults: Any) -> ResNet:
    """Entry defaults updated with the user's ``kwargs``; applies :data:`CIFAR_RD_MIN` to kinds that take it."""
    default_attn = defaults.pop("attn_layer", None)
    attn_layer = kwargs.pop("attn_layer", default_attn)
    attn_kwargs = merge_attn_kwargs(attn_layer, kwargs.pop("attn_kwargs", None), {"rd_min": CIFAR_RD_MIN})
    return ResNet(**{**_CIFAR, **defaults, **kwargs}, attn_layer=attn_layer, attn_kwargs=attn_kwargs)


def _register_cifar(depth: int) -> None:
    bottleneck = depth == 164
    layers = _blocks(depth, bottleneck)
    plain = "bottleneck" if bottleneck else "basic"

    def make(name: str, block: str, attn: str | None, doc: str) -> None:
        def entry(**kwargs: Any) -> ResNet:
            return _create_cifar(kwargs, block=block, layers=layers, attn_layer=attn)

        entry.__name__ = entry.__qualname__ = name
        entry.__doc__ = doc
        register_model(entry)

    what = f"CIFAR ResNet-{depth} ({plain} blocks {list(layers)}, 16/32/64 planes)"
    make(f"resnet{depth}", plain, None, what + ".")
    make(f"se_resnet{depth}", plain, "se", what + " + SE (width max(C // 16, 4)).")
    make(f"eca_resnet{depth}", plain, "eca", what + " + ECA (adaptive k).")
    make(f"cbam_resnet{depth}", plain, "cbam", what + " + CBAM (width max(C // 16, 4)).")
    pre = f"Pre-activation CIFAR ResNet-{depth} (He et al. 2016, identity mappings)"
    make(f"preact_resnet{depth}", "preact_" + plain, None, pre + ".")
    make(f"se_preact_resnet{depth}", "preact_" + plain, "se", pre + " + SE.")


for _d in (20, 32, 44, 56, 110, 164):
    _register_cifar(_d)
del _d

# WRN-16-8: depth 16 = 6n + 4 with n = 2 pre-activation basic blocks per stage, widths 16k / 32k / 64k with k = 8.
_WRN16_8 = dict(block="preact_basic", layers=(2, 2, 2), widths=(128, 256, 512))


@register_model
def wrn16_8(**kwargs: Any) -> ResNet:
    """Wide-ResNet-16-8 (Zagoruyko & Komodakis 2016): 11.0M parameters, no dropout."""
    return _create_cifar(kwargs, **_WRN16_8)


@register_model
def se_wrn16_8(**kwargs: Any) -> ResNet:
    """Wide-ResNet-16-8 + SE (r = 16) on every block."""
    return _create_cifar(kwargs, **_WRN16_8, attn_layer="se")
