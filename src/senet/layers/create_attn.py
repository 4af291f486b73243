"""The attention factory: one name per kind, used by every senet model, the CLI and configs.

Adding a kind is its own file (a :class:`~senet.layers.AttentionBlock` subclass) plus one :func:`register_attn`
line below; everything that treats attention specially finds the new blocks through
:func:`~senet.layers.iter_attention` and reads them through the block contract (:mod:`senet.layers.base`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from .base import _CLASS_KIND, attn_kind
from .cbam import CBAM, SCSE
from .eca import EfficientChannelAttn
from .squeeze_excite import EffectiveSE, NoSqueeze, SqueezeExcite

__all__ = [
    "create_attn",
    "get_attn",
    "list_attn",
    "attn_knobs",
    "attn_kind",
    "register_attn",
    "unregister_attn",
    "merge_attn_kwargs",
    "AttnType",
]

AttnType = str | type[nn.Module] | Callable[..., nn.Module] | None

_ATTN: dict[str, Callable[..., nn.Module]] = {}

_NONE = (None, "", "none")


def _ctor_class(ctor: Callable[..., nn.Module]) -> Any:
    """The class a constructor builds (the class itself, or the class a ``functools.partial`` wraps)."""
    return ctor.func if isinstance(ctor, functools.partial) else ctor


def register_attn(name: str, ctor: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Make ``ctor`` (an attention class, or a ``functools.partial`` of one) buildable as ``create_attn(name, C)``.

    The first name registered for a class becomes the ``kind`` of its instances (a later partial of the same
    class is a variant: ``"se_hs"`` blocks read as ``"se"``). Returns ``ctor``.

    Raises:
        ValueError: ``name`` is taken, reserved for "no attention", or not lower-case snake case.
    """
    key = name.lower().replace("-", "_")
    if key != name or key in _NONE or not key.isidentifier():
        raise ValueError(f"attention kind names are lower-case identifiers other than 'none', got {name!r}")
    if key in _ATTN:
        raise ValueError(f"attention kind {name!r} is already registered (to {_ATTN[key]!r})")
    _ATTN[key] = ctor
    _CLASS_KIND.setdefault(_ctor_class(ctor), key)
    return ctor


def unregister_attn(name: str) -> None:
    """Remove a kind added with :func:`register_attn` (tests and plugins that clean up after themselves).

    Raises:
        KeyError: ``name`` is not registered.
    """
    ctor = _ATTN.pop(name)
    cls = _ctor_class(ctor)
    if _CLASS_KIND.get(cls) == name:
        del _CLASS_KIND[cls]
        # Another registered name of the same class (a variant) takes over as its kind.
        for other, c in _ATTN.items():
            if _ctor_class(c) is cls:
                _CLASS_KIND[cls] = other
                break


# Ordered roughly by cost (parameters and extra passes over the feature map), cheapest first.
register_attn("eca", EfficientChannelAttn)
register_attn("ese", EffectiveSE)
register_attn("se", SqueezeExcite)
# MobileNetV3 form: width from the block's input channels (pass rd_base_channels), hard-sigmoid gate.
register_attn("se_hs", functools.partial(SqueezeExcite, gate_layer="hard_sigmoid"))
register_attn("scse", SCSE)
register_attn("cbam", CBAM)
register_attn("nosqueeze", NoSqueeze)


def list_attn() -> list[str]:
    """Names accepted by :func:`create_attn` (``"none"`` means no attention)."""
    return list(_ATTN)


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


# An explicit width makes the other width knobs moot (resolve_rd_channels returns rd_channels as given).
_WIDTH_KNOBS = ("rd_ratio", "rd_divisor", "rd_min", "rd_base_channels")
_ANY = object()


def _tuned_for(kind: AttnType, target: Any) -> bool:
    """Whether defaults tuned for ``target`` apply to ``kind``.

    A class ``target`` matches every kind that builds it (``"se"``, ``"se_hs"``, a partial of it); any other target is
    compared as given (an entrypoint's own ``attn_layer`` value).
    """
    if target is _ANY:
        return True
    if isinstance(target, type):
        try:
            ctor = get_attn(kind)
        except ValueError:
            return False
        return ctor is not None and _ctor_class(ctor) is target
    return kind == target


def merge_attn_kwargs(
    kind: AttnType,
    given: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
    *,
    tuned_for: Any = _ANY,
) -> dict[str, Any]:
    """The options to build attention ``kind`` with: a model family's ``defaults`` updated with the user's ``given``.

    The one rule every senet model family follows for attention defaults:

    * ``defaults`` apply only when ``kind`` is what they were tuned for (``tuned_for``: an entrypoint's own
      ``attn_layer`` value, or a block class such as ``SqueezeExcite``; default: any kind);
    * a default the kind has no option for is dropped (``rd_min`` never reaches ECA), as are all of them when the
      kind's signature cannot be read;
    * an explicit ``rd_channels`` in ``given`` drops the width defaults (``rd_ratio``, ``rd_divisor``, ``rd_min``,
      ``rd_base_channels``);
    * ``given`` is passed through untouched (unknown options still fail in :func:`create_attn`).

    Raises:
        ValueError: ``kind`` is an unknown name (as :func:`get_attn`).

    >>> merge_attn_kwargs("se", {"rd_ratio": 0.25}, {"rd_min": 4})
    {'rd_min': 4, 'rd_ratio': 0.25}
    >>> merge_attn_kwargs("eca", None, {"rd_min": 4})
    {}
    """
    given = dict(given or {})
    if not defaults or get_attn(kind) is None or not _tuned_for(kind, tuned_for):
        return given
    knobs = attn_knobs(kind) or {}
    dropped = _WIDTH_KNOBS if "rd_channels" in given else ()
    kept = {k: v for k, v in defaults.items() if k in knobs and k not in dropped}
    return {**kept, **given}
