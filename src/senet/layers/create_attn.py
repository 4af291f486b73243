"""The attention factory: one name per kind, used by every senet model, the CLI and configs."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from .cbam import CBAM, SCSE
from .eca import EfficientChannelAttn
from .squeeze_excite import EffectiveSE, NoSqueeze, SqueezeExcite

__all__ = ["create_attn", "get_attn", "list_attn", "attn_knobs", "attn_kind", "AttnType"]

AttnType = str | type[nn.Module] | Callable[..., nn.Module] | None

# Ordered roughly by cost (parameters and extra passes over the feature map), cheapest first.
_ATTN: dict[str, Callable[..., nn.Module]] = {
    "eca": EfficientChannelAttn,
    "ese": EffectiveSE,
    "se": SqueezeExcite,
    # MobileNetV3 form: width from the block's input channels (pass rd_base_channels), hard-sigmoid gate.
    "se_hs": functools.partial(SqueezeExcite, gate_layer="hard_sigmoid"),
    "scse": SCSE,
    "cbam": CBAM,
    "nosqueeze": NoSqueeze,
}

_NONE = (None, "", "none")


def list_attn() -> list[str]:
    """Names accepted by :func:`create_attn` (``"none"`` means no attention)."""
    return list(_ATTN)


def attn_kind(module: nn.Module) -> str | None:
    """The factory name of an attention block built by :func:`create_attn` (``se_hs`` reads as ``se``), or ``None``
    for any other module."""
    for name, ctor in _ATTN.items():
        cls = ctor.func if isinstance(ctor, functools.partial) else ctor
        if type(module) is cls:
            return name
    return None


def get_attn(kind: AttnType) -> Callable[..., nn.Module] | None:
    """Resolve a name, class or partial to a constructor; ``None``/``"none"`` gives ``None``.

    Raises:
        ValueError: unknown name (the message lists the valid ones) or an unsupported type.
    """
    if isinstance(kind, str):
        key = kind.lower().replace("-", "_")
        if key in _NONE:
            return None
        if key not in _ATTN:
            raise ValueError(f"unknown attention kind {kind!r}; choose one of: none, {', '.join(_ATTN)}")
        return _ATTN[key]
    if kind is None:
        return None
    if callable(kind):
        return kind
    raise ValueError(f"attention kind must be a name, a class or a callable, got {type(kind).__name__}")


def create_attn(kind: AttnType, channels: int, **kwargs: Any) -> nn.Module | None:
    """Build an attention block for ``channels`` channels, or return ``None`` for no attention.

    Args:
        kind: a name from :func:`list_attn`, an ``nn.Module`` class, a ``functools.partial`` or ``None``/``"none"``.
        channels: C, the channels being gated.
        **kwargs: the block's knobs (``rd_ratio``, ``rd_channels``, ``rd_divisor``, ``act_layer``, ``gate_layer``...).

    Raises:
        ValueError: unknown kind, unknown knob for that kind, or impossible settings.

    >>> create_attn("se", 256, rd_ratio=1 / 8).rd_channels
    32
    >>> create_attn("none", 256) is None
    True
    """
    ctor = get_attn(kind)
    if ctor is None:
        return None
    knobs = attn_knobs(ctor)
    unknown = sorted(set(kwargs) - set(knobs)) if knobs is not None else []
    if unknown:
        name = getattr(ctor, "__name__", None) or getattr(getattr(ctor, "func", None), "__name__", repr(ctor))
        raise ValueError(f"{name} has no option {', '.join(unknown)}; valid options: {', '.join(knobs)}")
    return ctor(channels, **kwargs)


def attn_knobs(kind: AttnType) -> dict[str, Any] | None:
    """The keyword options of an attention kind and their defaults (``None`` if the signature is opaque)."""
    ctor = get_attn(kind) if isinstance(kind, str) else kind
    if ctor is None:
        return {}
    try:
        sig = inspect.signature(ctor)
    except (TypeError, ValueError):
        return None
    params = list(sig.parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name: p.default for p in params if p.name != "channels" and p.kind is not p.VAR_POSITIONAL}
