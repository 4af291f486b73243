"""Convolutional Block Attention Module, and the concurrent spatial & channel SE (scSE).

* ``CBAM`` — Woo et al., "CBAM: Convolutional Block Attention Module", ECCV 2018, arXiv:1807.06521.
  Channel attention: a shared MLP on the average- and max-pooled descriptors, summed, sigmoid (eq. 2).
  Spatial attention: channel-wise mean and max maps, concatenated, k x k conv (+BN), sigmoid (eq. 3).
  Applied channel first, then spatial.
  Layout note: the spatial conv's input order is ``[mean, max]`` (timm's); the official release concatenates
  ``[max, mean]`` — the checkpoint converter swaps the two input channels of its weight.
* ``SCSE`` — Roy et al., "Concurrent Spatial and Channel Squeeze & Excitation in Fully Convolutional Networks",
  MICCAI 2018, arXiv:1803.02579: ``x * cSE(x) + x * sSE(x)`` (or the element-wise max of the two).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import AttentionBlock
from .fused import gate_mul, spatial_mean
from .helpers import (
    LayerType,
    batchnorm_nd,
    check_channels,
    check_odd_kernel,
    conv_nd,
    create_act,
    expand_gate,
    global_pool,
    resolve_rd_channels,
    spatial_dims,
)
from .squeeze_excite import SqueezeExcite

__all__ = ["CBAM", "ChannelAttn", "SpatialAttn", "SCSE"]


def _check_dims(module: nn.Module, x: torch.Tensor) -> None:
    nd = len(spatial_dims(x))
    if nd != module.dims:
        raise ValueError(
            f"{type(module).__name__} was built for {module.dims}-D maps but got a {nd}-D input of shape "
            f"{tuple(x.shape)}; build it with dims={nd}"
        )


class ChannelAttn(AttentionBlock):
    """CBAM's channel attention: ``σ(MLP(avg(x)) + MLP(max(x)))``. The gate output is ``(N, C)``."""

    fused_tail = True

    def __init__(
        self,
        channels: int,
        rd_ratio: float = 1.0 / 16,
        rd_channels: int | None = None,
        rd_divisor: int = 1,
        rd_min: int = 1,
        mlp_bias: bool = False,
        act_layer: LayerType = "relu",
        gate_layer: LayerType = "sigmoid",
    ) -> None:
        super().__init__()
        self.channels = check_channels(channels)
        self.rd_channels = resolve_rd_channels(channels, rd_ratio, rd_channels, rd_divisor, rd_min)
        self.fc1 = nn.Linear(channels, self.rd_channels, bias=mlp_bias)
        self.act = create_act(act_layer)
        self.fc2 = nn.Linear(self.rd_channels, channels, bias=mlp_bias)
        self.gate = create_act(gate_layer, gate=True, what="gate_layer")

    def mlp(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(z)))

    def excitation(self, x: torch.Tensor) -> torch.Tensor:
        """The per-channel gate of shape ``(N, C)``."""
        return self.gate(self.mlp(spatial_mean(x)) + self.mlp(global_pool(x, "max")))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gate_mul(x, expand_gate(self.excitation(x), x))


class SpatialAttn(AttentionBlock):
    """CBAM's spatial attention: ``σ(BN(conv_k([mean_c(x), max_c(x)])))``. The gate output is ``(N, 1, *S)``."""

    def __init__(
        self,
        kernel_size: int = 7,
        dims: int = 2,
        norm: bool = True,
        gate_layer: LayerType = "sigmoid",
    ) -> None:
        super().__init__()
        check_odd_kernel(kernel_size, "spatial kernel_size")
        self.dims = dims
        self.conv = conv_nd(dims)(2, 1, kernel_size, padding=kernel_size // 2, bias=not norm)
        self.bn = batchnorm_nd(dims)(1) if norm else nn.Identity()
        self.gate = create_act(gate_layer, gate=True, what="gate_layer")

    def excitation(self, x: torch.Tensor) -> torch.Tensor:
        _check_dims(self, x)
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return self.gate(self.bn(self.conv(pooled)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gate_mul(x, self.excitation(x))

    def conv_bn_pairs(self) -> list[tuple[str, str]]:
        """The spatial conv and its BatchNorm (none when built with ``norm=False``)."""
        return [("conv", "bn")] if isinstance(self.bn, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)) else []


class CBAM(AttentionBlock):
    """CBAM: channel attention then spatial attention.

    Args:
        channels: C.
        rd_ratio, rd_channels, rd_divisor, rd_min: the channel MLP's reduction (paper: r = 16).
        mlp_bias: biases in the channel MLP (timm: no; the official release: yes).
        act_layer, gate_layer: as in :class:`~senet.layers.SqueezeExcite`.
        spatial_kernel_size: k of the spatial conv (paper: 7).
        spatial_norm: BatchNorm after the spatial conv (the paper's and the release's choice).
        dims: spatial rank the block is built for (1, 2 or 3); the spatial conv follows it.

    Its excitation (what recorders read) is the channel gate ``channel.gate``; the fused residual tail applies the
    channel half, then takes the spatial gate as the scale.
    """

    fused_tail = True

    def __init__(
        self,
        channels: int,
        rd_ratio: float = 1.0 / 16,
        rd_channels: int | None = None,
        rd_divisor: int = 1,
        rd_min: int = 1,
        mlp_bias: bool = False,
        act_layer: LayerType = "relu",
        gate_layer: LayerType = "sigmoid",
        spatial_kernel_size: int = 7,
        spatial_norm: bool = True,
        dims: int = 2,
    ) -> None:
        super().__init__()
        self.channel = ChannelAttn(
            channels, rd_ratio, rd_channels, rd_divisor, rd_min, mlp_bias, act_layer, gate_layer
        )
        self.spatial = SpatialAttn(spatial_kernel_size, dims, spatial_norm, gate_layer)

    def excitation(self, x: torch.Tensor) -> torch.Tensor:
        """The channel gate of shape ``(N, C)``."""
        return self.channel.excitation(x)

    def gate_module(self) -> nn.Module:
        return self.channel.gate

    def split_gate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(channel(x), spatial gate of it)``: the block is their product."""
        y = self.channel(x)
        return y, self.spatial.excitation(y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))


class SCSE(AttentionBlock):
    """Concurrent spatial and channel squeeze & excitation.

    Args:
        channels: C.
        rd_ratio, rd_channels, rd_divisor, rd_min: the cSE branch's reduction (Roy et al. use r = 2; default 1/16
            to match the rest of senet).
        act_layer, gate_layer: as in :class:`~senet.layers.SqueezeExcite`.
        combine: ``"add"`` (``x·cSE + x·sSE``, the common choice) or ``"max"`` (element-wise max of the two).

    Submodules: ``cse`` (a :class:`SqueezeExcite`) and ``sse`` (``Linear(C, 1)`` applied pointwise, its gate
    ``sse_gate``).
    """

    def __init__(
        self,
        channels: int,
        rd_ratio: float = 1.0 / 16,
        rd_channels: int | None = None,
        rd_divisor: int = 1,
        rd_min: int = 1,
        act_layer: LayerType = "relu",
        gate_layer: LayerType = "sigmoid",
        combine: str = "add",
    ) -> None:
        super().__init__()
        if combine not in ("add", "max"):
            raise ValueError(f"unknown combine {combine!r}; choose one of: add, max")
        self.combine = combine
        self.cse = SqueezeExcite(
            channels, rd_ratio, rd_channels, rd_divisor, rd_min, act_layer=act_layer, gate_layer=gate_layer
        )
        self.sse = nn.Linear(channels, 1)
        self.sse_gate = create_act(gate_layer, gate=True, what="gate_layer")

    def excitation(self, x: torch.Tensor) -> torch.Tensor:
        """The channel (cSE) gate of shape ``(N, C)``."""
        return self.cse.excitation(x)

    def gate_module(self) -> nn.Module:
        return self.cse.gate

    def spatial_excitation(self, x: torch.Tensor) -> torch.Tensor:
        """The per-position gate of shape ``(N, 1, *S)``."""
        nd = len(spatial_dims(x))
        weight = self.sse.weight.view(1, -1, *([1] * nd))
        conv = (F.conv1d, F.conv2d, F.conv3d)[nd - 1]
        return self.sse_gate(conv(x, weight, self.sse.bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x * expand_gate(self.excitation(x), x)
        s = x * self.spatial_excitation(x)
        return c + s if self.combine == "add" else torch.maximum(c, s)
