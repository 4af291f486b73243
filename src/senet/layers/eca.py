"""Efficient Channel Attention.

Wang et al., "ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks", CVPR 2020,
arXiv:1910.03151. Global average -> 1-D convolution of kernel ``k`` across the channel axis (no bias, no
dimensionality reduction) -> sigmoid -> channel-wise scale.

``k`` follows the paper's rule ``|log2(C)/γ + b/γ|`` rounded to the nearest odd (γ=2, b=1: C=64 -> 3,
128..1024 -> 5, 2048 -> 7) unless given; the released ECA-ResNet checkpoints use a fixed k per stage (3, 5, 5, 7).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import AttentionBlock
from .fused import spatial_mean, squeeze_excite
from .helpers import LayerType, check_channels, check_odd_kernel, create_act

__all__ = ["EfficientChannelAttn", "eca_kernel_size"]


def eca_kernel_size(channels: int, gamma: float = 2, beta: float = 1) -> int:
    """The paper's adaptive kernel size: ``t = int(|log2(C) + b| / γ)``, made odd by adding 1 when even."""
    check_channels(channels)
    t = int(abs((math.log2(channels) + beta) / gamma))
    return max(t if t % 2 else t + 1, 1)


class EfficientChannelAttn(AttentionBlock):
    """ECA block for 1-D/2-D/3-D maps.

    Args:
        channels: C (needed only when ``kernel_size`` is not given).
        kernel_size: odd kernel of the channel convolution; default from :func:`eca_kernel_size`.
        gamma, beta: the paper's γ and b for the adaptive kernel size.
        gate_layer: the gate (``"sigmoid"`` as the paper).

    The channel conv is the submodule ``conv`` (``Conv1d(1, 1, k, bias=False)``, the released checkpoints' key);
    the gate is the submodule ``gate``, whose output is the ``(N, C)`` excitation.
    """

    fused_tail = True
    linear_squeeze = True  # type: ignore[assignment]  # always the plain mean

    def __init__(
        self,
        channels: int | None = None,
        kernel_size: int | None = None,
        gamma: float = 2,
        beta: float = 1,
        gate_layer: LayerType = "sigmoid",
    ) -> None:
        super().__init__()
        if kernel_size is None:
            if channels is None:
                raise ValueError("ECA needs channels (for the adaptive kernel size) or an explicit kernel_size")
            kernel_size = eca_kernel_size(channels, gamma, beta)
        elif channels is not None:
            check_channels(channels)
        check_odd_kernel(kernel_size, "ECA kernel_size")
        self.channels = channels
        self.kernel_size = kernel_size
        self.conv = nn.Conv1d(1, 1, kernel_size, padding=(kernel_size - 1) // 2, bias=False)
        self.gate = create_act(gate_layer, gate=True, what="gate_layer")

    def excitation(self, x: torch.Tensor) -> torch.Tensor:
        """The per-channel gate of shape ``(N, C)``."""
        return self.excite(spatial_mean(x))

    def excite(self, z: torch.Tensor) -> torch.Tensor:
        """The gate from the pooled ``(N, C)`` vector."""
        return self.gate(self.conv(z.unsqueeze(1)).squeeze(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # One autograd node with a cheap backward in training, a fast squeeze in inference (senet.layers.fused).
        return squeeze_excite(x, self.excite, tuple(self.parameters()))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernel_size={self.kernel_size}"
