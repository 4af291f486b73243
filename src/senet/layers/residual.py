"""The residual block with channel attention used by image-restoration networks.

conv3x3-BN-ReLU-conv3x3-BN, then channel attention (SE by default: squeeze = global average, FC C -> C/16, ReLU,
FC -> C, sigmoid, scale), then the block input is added and a ReLU applied — the unit of SE-augmented denoisers
(RIDNet's residual blocks, the "SE-ResNet block" of DnCNN variants).

Two bugs of a widely copied version of this block are guarded against here, and tested: its "global" pool was
``nn.AvgPool2d(1)`` — a 1x1 window with stride 1 pools nothing, so the ``.view(b, c)`` after it fails on any map larger
than 1x1 — and it returned ``nn.ReLU(x + y)``, constructing a module instead of applying one. The squeeze here is the
attention block's own reduction over all spatial dims (:func:`senet.layers.global_pool`), whatever the map size.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .create_attn import AttnType, create_attn
from .helpers import LayerType, check_channels, create_act

__all__ = ["SEResidualBlock"]


class SEResidualBlock(nn.Module):
    """``act(x + res_scale * attn(bn2(conv2(act(bn1(conv1(x)))))))`` with ``channels`` in and out, any spatial size.

    Args:
        channels: C, the channels of the input, the two 3x3 convs and the output.
        attn_layer: the attention kind (a :func:`senet.layers.create_attn` name, class or partial; ``"se"`` by
            default; ``None``/``"none"`` gives the plain residual block).
        attn_kwargs: knobs of the attention block (``rd_ratio``, ``rd_channels``, ...); SE's default is r = 16.
        act_layer: the activation after BN1 and after the addition (``"relu"``).
        norm: batch norm after each conv (``False``: convs with biases, as EDSR-style blocks).
        res_scale: multiply the (gated) branch by this before the addition (EDSR's residual scaling, Lim et al.,
            CVPRW 2017); 1.0 (default) leaves it as is.
    """

    def __init__(
        self,
        channels: int,
        attn_layer: AttnType = "se",
        attn_kwargs: dict[str, Any] | None = None,
        act_layer: LayerType = "relu",
        norm: bool = True,
        res_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.channels = check_channels(channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=not norm)
        self.bn1 = nn.BatchNorm2d(channels) if norm else nn.Identity()
        self.act1 = create_act(act_layer)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=not norm)
        self.bn2 = nn.BatchNorm2d(channels) if norm else nn.Identity()
        self.attn = create_attn(attn_layer, channels, **(attn_kwargs or {})) or nn.Identity()
        self.act2 = create_act(act_layer)
        self.res_scale = float(res_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act1(self.bn1(self.conv1(x)))
        y = self.attn(self.bn2(self.conv2(y)))
        if self.res_scale != 1.0:
            y = y * self.res_scale
        return self.act2(x + y)
