"""Squeeze-and-Excitation and its close relatives.

* ``SqueezeExcite`` — Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018 / TPAMI 2019, arXiv:1709.01507.
  Eq. 2-4: ``z = F_sq(u)`` (global average), ``s = σ(W2 δ(W1 z))``, ``x̃ = s · u`` (channel-wise).
  Also the MobileNetV3 / EfficientNet form (Howard et al., arXiv:1905.02244; Tan & Le, arXiv:1905.11946), where the
  reduced width is taken from another channel count (``rd_base_channels``) and the gate is hard-sigmoid or the
  activation SiLU.
* ``NoSqueeze`` — the paper's Table 16 ablation: no pooling, the two FCs become 1x1 convolutions on the full map.
* ``EffectiveSE`` — Lee & Park, "CenterMask: Real-Time Anchor-Free Instance Segmentation", arXiv:1911.06667
  (VoVNetV2): one C -> C FC, hard-sigmoid gate.

Deviations from the original release, all opt-in: ``squeeze="max"|"avgmax"`` (Table 11), other gates (Table 12),
``rd_divisor=8`` (timm's rounding; the paper uses ``C // r``). The FCs are ``nn.Linear`` on the pooled ``(N, C)``
vector, which is exactly the paper's FC and works for any number of spatial dims.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import AttentionBlock
from .fused import gate_mul, spatial_mean, squeeze_excite
from .helpers import (
    SQUEEZES,
    LayerType,
    check_channels,
    create_act,
    expand_gate,
    global_pool,
    resolve_rd_channels,
    spatial_dims,
)

__all__ = ["SqueezeExcite", "NoSqueeze", "EffectiveSE"]


def _check_squeeze(squeeze: str) -> str:
    if squeeze not in SQUEEZES:
        raise ValueError(f"unknown squeeze {squeeze!r}; choose one of: {', '.join(SQUEEZES)}")
    return squeeze


class SqueezeExcite(AttentionBlock):
    """Squeeze-and-Excitation block for ``(N, C, L)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)`` inputs.

    Args:
        channels: C, the channels gated.
        rd_ratio: 1/r (default 1/16, the paper's r = 16).
        rd_channels: explicit reduced width (overrides ``rd_ratio``).
        rd_divisor: round the reduced width to a multiple of this (1 = ``C // r`` as the paper; 8 = timm).
        rd_min: minimum reduced width (keeps tiny stages from collapsing to 0).
        rd_base_channels: compute the width from this channel count instead of C (MobileNetV3/EfficientNet form).
        bias: biases on the two FCs (the paper's release has them; moskomule/senet.pytorch has none).
        act_layer: δ, the activation between the FCs (``"relu"``; ``"silu"`` for EfficientNet).
        gate_layer: σ, the gate (``"sigmoid"``, ``"hard_sigmoid"``, ``"tanh"``, ``"relu"``; Table 12).
        squeeze: ``"avg"`` (paper), ``"max"`` or ``"avgmax"`` (Table 11).

    The gate is the named submodule ``gate``: a forward hook on it sees the excitation ``s`` with shape ``(N, C)``.
    """

    fused_tail = True

    def __init__(
        self,
        channels: int,
        rd_ratio: float = 1.0 / 16,
        rd_channels: int | None = None,
        rd_divisor: int = 1,
        rd_min: int = 1,
        rd_base_channels: int | None = None,
        bias: bool = True,
        act_layer: LayerType = "relu",
        gate_layer: LayerType = "sigmoid",
        squeeze: str = "avg",
    ) -> None:
        super().__init__()
        self.channels = check_channels(channels)
        self.rd_channels = resolve_rd_channels(channels, rd_ratio, rd_channels, rd_divisor, rd_min, rd_base_channels)
        self.squeeze = _check_squeeze(squeeze)
        self.fc1 = nn.Linear(channels, self.rd_channels, bias=bias)
        self.act = create_act(act_layer)
        self.fc2 = nn.Linear(self.rd_channels, channels, bias=bias)
        self.gate = create_act(gate_layer, gate=True, what="gate_layer")

    def excitation(self, x: torch.Tensor) -> torch.Tensor:
        """The per-channel gate ``s`` of shape ``(N, C)`` (eq. 3)."""
        z = spatial_mean(x) if self.squeeze == "avg" else global_pool(x, self.squeeze)
        return self.excite(z)

    @property
    def linear_squeeze(self) -> bool:
        """Only the paper's average squeeze commutes with a preceding 1x1 conv."""
        return self.squeeze == "avg"

    def excite(self, z: torch.Tensor) -> torch.Tensor:
        """The gate from the pooled ``(N, C)`` vector."""
        return self.gate(self.fc2(self.act(self.fc1(z))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.squeeze == "avg":
            # One autograd node with a cheap backward in training, a fast squeeze in inference (senet.layers.fused).
            return squeeze_excite(x, self.excite, tuple(self.parameters()))
        return gate_mul(x, expand_gate(self.excitation(x), x))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, rd_channels={self.rd_channels}, squeeze={self.squeeze!r}"


class NoSqueeze(AttentionBlock):
    """The paper's NoSqueeze ablation (Table 16): the excitation FCs as 1x1 convolutions on the full map.

    There is no global pooling, so the gate is per position: ``s`` has the input's full shape. Same knobs as
    :class:`SqueezeExcite` (minus ``squeeze``). Works on 1-D/2-D/3-D maps: the 1x1 convs are applied as pointwise
    linear maps over the channel dimension.
    """

    def __init__(
        self,
        channels: int,
        rd_ratio: float = 1.0 / 16,
        rd_channels: int | None = None,
        rd_divisor: int = 1,
        rd_min: int = 1,
        bias: bool = True,
        act_layer: LayerType = "relu",
        gate_layer: LayerType = "sigmoid",
    ) -> None:
        super().__init__()
        self.channels = check_channels(channels)
        self.rd_channels = resolve_rd_channels(channels, rd_ratio, rd_channels, rd_divisor, rd_min)
        # Stored as Linear so a checkpoint's Conv 1x1 weight converts with a reshape and the same module
        # serves every spatial rank.
        self.fc1 = nn.Linear(channels, self.rd_channels, bias=bias)
        self.act = create_act(act_layer)
        self.fc2 = nn.Linear(self.rd_channels, channels, bias=bias)
        self.gate = create_act(gate_layer, gate=True, what="gate_layer")

    @staticmethod
    def _pointwise(x: torch.Tensor, fc: nn.Linear) -> torch.Tensor:
        nd = len(spatial_dims(x))
        weight = fc.weight.view(*fc.weight.shape, *([1] * nd))
        conv = (F.conv1d, F.conv2d, F.conv3d)[nd - 1]
        return conv(x, weight, fc.bias)

    def excitation(self, x: torch.Tensor) -> torch.Tensor:
        """The per-position gate, same shape as ``x``."""
        return self.gate(self._pointwise(self.act(self._pointwise(x, self.fc1)), self.fc2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.excitation(x)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, rd_channels={self.rd_channels}"


class EffectiveSE(AttentionBlock):
    """Effective Squeeze-Excitation (VoVNetV2): one C -> C FC, no reduction, hard-sigmoid gate.

    Args:
        channels: C.
        add_maxpool: squeeze with ``0.5 * (avg + max)`` instead of ``avg`` (timm's option).
        gate_layer: the gate (default ``"hard_sigmoid"`` as the paper).
    """

    fused_tail = True

    def __init__(self, channels: int, add_maxpool: bool = False, gate_layer: LayerType = "hard_sigmoid") -> None:
        super().__init__()
        self.channels = check_channels(channels)
        self.add_maxpool = add_maxpool
        self.fc = nn.Linear(channels, channels)
        self.gate = create_act(gate_layer, gate=True, what="gate_layer")

    def excitation(self, x: torch.Tensor) -> torch.Tensor:
        """The per-channel gate of shape ``(N, C)``."""
        if self.add_maxpool:
            # The mean of the two pools, as timm's EffectiveSEModule and the SE "avgmax" squeeze, not their sum.
            return self.excite(global_pool(x, "avgmax"))
        return self.excite(spatial_mean(x))

    @property
    def linear_squeeze(self) -> bool:
        """The ``avg``/``max`` mix does not commute with a preceding conv; the plain mean does."""
        return not self.add_maxpool

    def excite(self, z: torch.Tensor) -> torch.Tensor:
        """The gate from the pooled ``(N, C)`` vector."""
        return self.gate(self.fc(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.add_maxpool:
            return squeeze_excite(x, self.excite, tuple(self.parameters()))
        return gate_mul(x, expand_gate(self.excitation(x), x))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, add_maxpool={self.add_maxpool}"
