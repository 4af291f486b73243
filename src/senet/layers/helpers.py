"""Shared helpers for the attention blocks: width rounding, activation/gate factories, N-d pooling.

Every block accepts ``act_layer`` / ``gate_layer`` as a string (``"relu"``, ``"hard_sigmoid"``, ...), an
``nn.Module`` subclass, or a zero-argument callable returning a module, and resolves it through
:func:`create_act`, so configs and the CLI can name activations as plain strings.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = [
    "LayerType",
    "make_divisible",
    "resolve_rd_channels",
    "create_act",
    "list_acts",
    "GATES",
    "spatial_dims",
    "global_pool",
    "conv_nd",
    "batchnorm_nd",
    "check_channels",
    "check_odd_kernel",
]

LayerType = str | type[nn.Module] | Callable[[], nn.Module] | None


# Names accepted for ``act_layer`` and ``gate_layer``. Values build a fresh module.
_ACTS: dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(inplace=True),
    "relu6": lambda: nn.ReLU6(inplace=True),
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "gelu": nn.GELU,
    "hard_swish": nn.Hardswish,
    "leaky_relu": lambda: nn.LeakyReLU(0.1, inplace=True),
    "prelu": nn.PReLU,
    "sigmoid": nn.Sigmoid,
    "hard_sigmoid": nn.Hardsigmoid,
    "tanh": nn.Tanh,
    "identity": nn.Identity,
}

#: Gates studied in the paper's Table 12 plus the MobileNetV3 hard-sigmoid. A gate must not act in place:
#: hooks read its output and the input (the excitation logits) is needed for the backward pass.
GATES: dict[str, Callable[[], nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "hard_sigmoid": nn.Hardsigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "identity": nn.Identity,
}


def list_acts() -> list[str]:
    """Names accepted by ``act_layer``."""
    return sorted(_ACTS)


def create_act(layer: LayerType, *, gate: bool = False, what: str = "act_layer") -> nn.Module:
    """Build an activation (or gate) module from a name, class, callable or ``None`` (identity).

    Raises:
        ValueError: ``layer`` is an unknown name; the message lists the valid ones.
    """
    if layer is None:
        return nn.Identity()
    if isinstance(layer, str):
        table = GATES if gate else _ACTS
        key = layer.lower().replace("-", "_")
        if key not in table:
            raise ValueError(f"unknown {what} {layer!r}; choose one of: {', '.join(sorted(table))}")
        return table[key]()
    if isinstance(layer, nn.Module):
        raise ValueError(f"{what} must be a name, a class or a factory, not a module instance ({layer!r})")
    if callable(layer):
        return layer()
    raise ValueError(f"{what} must be a string, an nn.Module class or a callable, got {type(layer).__name__}")


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9) -> int:
    """Round ``v`` to the nearest multiple of ``divisor`` (never below ``min_value`` nor 10 % below ``v``).

    With ``divisor=1`` this is ``int(v)`` (the paper's ``C // r``), which is what the original release does.
    """
    if divisor <= 1:
        return max(int(v), min_value or 0)
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:  # rounding down must not remove more than 10 %
        new_v += divisor
    return new_v


def check_channels(channels: int, what: str = "channels") -> int:
    """Validate a channel count (a positive int) and return it."""
    if isinstance(channels, bool) or not isinstance(channels, int) or channels <= 0:
        raise ValueError(f"{what} must be a positive integer, got {channels!r}")
    return channels


def resolve_rd_channels(
    channels: int,
    rd_ratio: float = 1.0 / 16,
    rd_channels: int | None = None,
    rd_divisor: int = 1,
    rd_min: int = 1,
    rd_base_channels: int | None = None,
) -> int:
    """Width of the bottleneck between the two excitation FCs.

    Args:
        channels: channels being gated (C).
        rd_ratio: 1 / r. The paper uses r = 16.
        rd_channels: explicit width; overrides ``rd_ratio``.
        rd_divisor: round the width to a multiple of this (1 = the paper's ``C // r``; 8 = timm's rounding).
        rd_min: smallest allowed width (the ``C // r`` of a 16-channel CIFAR stage with r = 16 is 1).
        rd_base_channels: take the reduction from this channel count instead of ``channels`` (the
            MobileNetV3/EfficientNet form, where the SE width follows the block's input, not its expanded width).

    Raises:
        ValueError: the ratio is not in (0, 1], or the width rounds to 0.
    """
    check_channels(channels)
    if rd_channels is not None:
        if isinstance(rd_channels, bool) or not isinstance(rd_channels, int) or rd_channels <= 0:
            raise ValueError(f"rd_channels must be a positive integer, got {rd_channels!r}")
        return rd_channels
    if not (isinstance(rd_ratio, (int, float)) and 0 < rd_ratio <= 1):
        raise ValueError(f"rd_ratio must be in (0, 1] (it is 1/r, e.g. 0.0625 for r=16), got {rd_ratio!r}")
    base = channels if rd_base_channels is None else check_channels(rd_base_channels, "rd_base_channels")
    width = make_divisible(base * rd_ratio, rd_divisor, min_value=None if rd_divisor > 1 else 0)
    width = max(width, rd_min or 0)
    if width <= 0:
        raise ValueError(
            f"the reduced width of {base} channels * rd_ratio {rd_ratio:g} rounds to 0; "
            f"lower r, or pass rd_min=1 or rd_channels explicitly"
        )
    return width


def check_odd_kernel(kernel_size: int, what: str = "kernel_size") -> int:
    """Validate an odd, positive kernel size (even kernels cannot keep the length with symmetric padding)."""
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"{what} must be a positive odd integer (1, 3, 5, 7, ...), got {kernel_size!r}")
    return kernel_size


def spatial_dims(x: torch.Tensor) -> tuple[int, ...]:
    """The non-channel, non-batch dims of an ``(N, C, *spatial)`` tensor."""
    if x.dim() < 3:
        raise ValueError(f"expected an (N, C, L), (N, C, H, W) or (N, C, D, H, W) tensor, got shape {tuple(x.shape)}")
    return tuple(range(2, x.dim()))


SQUEEZES = ("avg", "max", "avgmax")


def global_pool(x: torch.Tensor, mode: str = "avg") -> torch.Tensor:
    """Squeeze ``(N, C, *S)`` to ``(N, C)`` with a reduction over all spatial dims.

    A mean/amax reduction rather than adaptive pooling: cheaper, dimension-agnostic, exports to ONNX
    ReduceMean/ReduceMax and is deterministic on GPU (PyTorch accumulates half-precision means in fp32).
    """
    dims = spatial_dims(x)
    if mode == "avg":
        return x.mean(dims)
    if mode == "max":
        return x.amax(dims)
    if mode == "avgmax":
        return 0.5 * (global_pool(x, "avg") + x.amax(dims))
    raise ValueError(f"unknown squeeze {mode!r}; choose one of: {', '.join(SQUEEZES)}")


def conv_nd(nd: int) -> type[nn.Module]:
    """``nn.Conv1d`` / ``nn.Conv2d`` / ``nn.Conv3d`` for ``nd`` spatial dims."""
    try:
        return {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[nd]
    except KeyError:
        raise ValueError(f"spatial dims must be 1, 2 or 3, got {nd!r}") from None


def batchnorm_nd(nd: int) -> type[nn.Module]:
    """``nn.BatchNorm1d/2d/3d`` for ``nd`` spatial dims."""
    try:
        return {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[nd]
    except KeyError:
        raise ValueError(f"spatial dims must be 1, 2 or 3, got {nd!r}") from None


def expand_gate(gate: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """View an ``(N, C)`` gate as ``(N, C, 1, ...)`` so it broadcasts over ``x``'s spatial dims."""
    return gate.view(gate.shape[0], gate.shape[1], *([1] * (x.dim() - 2)))
