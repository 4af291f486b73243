"""The attention-block contract: what every attention block tells the rest of senet, and the one enumerator.

Every block in :mod:`senet.layers` derives from :class:`AttentionBlock`. Code that treats attention specially —
excitation hooks (:mod:`senet.analysis`), the fused inference path (:mod:`senet.export.optimize`), quantization
(kept-fp32 gate list), checkpoint loading, the results ledger, the Keras converter — reads blocks only through this
contract and finds them only through :func:`iter_attention`, so a new kind (its own file plus one
:func:`~senet.layers.register_attn` line in the factory) is seen by all of them without touching them.

The contract, with the defaults a subclass inherits:

* ``excitation(x)`` — the channel gate ``s`` (``(N, C)``; a per-position gate may keep its spatial dims).
* ``gate_module()`` — the submodule whose forward output is that gate (``self.gate``), for forward hooks.
* ``kind`` — the factory name the class was registered under (``None`` for unregistered parts such as
  :class:`~senet.layers.ChannelAttn`).
* ``fused_tail`` — class flag: ``forward(x) == y * gate`` with ``(y, gate) = split_gate(x)``, so a residual tail
  ``relu(block(x) + shortcut)`` may run as one :func:`~senet.layers.fused.scale_add_relu` (default ``False``: the
  fused path leaves the block alone, which is always correct).
* ``split_gate(x)`` — ``(y, gate)`` with ``forward(x) == y * gate`` (default ``(x, excitation(x))``).
* ``linear_squeeze`` — ``True`` when the gate is ``excite(mean(x))``: the squeeze is a plain mean, which commutes with
  a preceding 1x1 conv (the fused path then squeezes the conv's narrow input). Such blocks implement ``excite(z)``.
* ``conv_bn_pairs()`` — ``(conv, bn)`` attribute names applied back to back inside the block, for BN folding.

Modules outside senet that merely have an ``excitation`` method are treated as attention blocks with these
defaults (their gate is read from ``gate`` or ``channel.gate``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, NamedTuple

import torch
from torch import nn

__all__ = ["AttentionBlock", "AttnSite", "iter_attention", "is_attention", "attn_gate", "attn_kind"]

# Class -> factory name, written by senet.layers.create_attn.register_attn (the first name registered for a class
# wins, so the variant "se_hs" — SqueezeExcite with a hard-sigmoid gate — reads as "se").
_CLASS_KIND: dict[type, str] = {}


class AttentionBlock(nn.Module):
    """Base class of senet's attention blocks: the contract described in :mod:`senet.layers.base`.

    It adds no parameters, buffers or submodules, so deriving from it leaves state-dict keys unchanged.
    """

    #: ``forward(x) == y * gate`` for ``(y, gate) = split_gate(x)``: the fused residual tail may replace the block.
    fused_tail: ClassVar[bool] = False

    def excitation(self, x: torch.Tensor) -> torch.Tensor:
        """The gate this block computes for ``x`` (``(N, C)`` for a channel gate)."""
        raise NotImplementedError(f"{type(self).__name__} must implement excitation(x)")

    def gate_module(self) -> nn.Module:
        """The submodule whose forward output is :meth:`excitation` (what recorders hook)."""
        gate = getattr(self, "gate", None)
        if not isinstance(gate, nn.Module):
            raise ValueError(f"{type(self).__name__} has no 'gate' submodule to record")
        return gate

    @property
    def kind(self) -> str | None:
        """The factory name this block's class is registered under, or ``None``."""
        for cls in type(self).__mro__:
            if cls in _CLASS_KIND:
                return _CLASS_KIND[cls]
        return None

    @property
    def linear_squeeze(self) -> bool:
        """Whether the gate is ``self.excite(mean(x))`` (a plain spatial mean, then :meth:`excite`)."""
        return False

    def excite(self, z: torch.Tensor) -> torch.Tensor:
        """The gate from the pooled ``(N, C)`` vector; only blocks with :attr:`linear_squeeze` implement it."""
        raise NotImplementedError(f"{type(self).__name__} has no linear squeeze")

    def split_gate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(y, gate)`` with ``forward(x) == y * gate``; ``y`` is ``x`` itself or a fresh tensor."""
        return x, self.excitation(x)

    def conv_bn_pairs(self) -> list[tuple[str, str]]:
        """``(conv, bn)`` attribute pairs applied back to back inside the block (BatchNorm folding reads them)."""
        return []


class AttnSite(NamedTuple):
    """One attention block in a model: its module path, the module and its kind (``None`` if unregistered)."""

    name: str
    module: nn.Module
    kind: str | None


def is_attention(module: nn.Module) -> bool:
    """An :class:`AttentionBlock`, or a foreign module with an ``excitation`` method."""
    return isinstance(module, AttentionBlock) or callable(getattr(module, "excitation", None))


def attn_kind(module: nn.Module) -> str | None:
    """The factory name of an attention block (``se_hs`` reads as ``se``), or ``None`` for any other module."""
    return module.kind if isinstance(module, AttentionBlock) else None


def attn_gate(block: nn.Module) -> nn.Module:
    """The submodule whose output is the excitation of ``block`` (for forward hooks).

    Raises:
        ValueError: ``block`` exposes no gate submodule.
    """
    if isinstance(block, AttentionBlock):
        return block.gate_module()
    # Foreign blocks: the senet naming (``gate``, or ``channel.gate`` for CBAM-style blocks) is all we can assume.
    channel = getattr(block, "channel", None)
    if isinstance(channel, nn.Module) and isinstance(getattr(channel, "gate", None), nn.Module):
        return channel.gate
    gate = getattr(block, "gate", None)
    if isinstance(gate, nn.Module):
        return gate
    raise ValueError(f"{type(block).__name__} has no 'gate' submodule to record")


def iter_attention(model: nn.Module, nested: bool = False) -> Iterator[AttnSite]:
    """Every attention block of ``model`` in module order, as :class:`AttnSite` ``(name, module, kind)``.

    Args:
        model: any module (``model`` itself is reported, with name ``""``, when it is an attention block).
        nested: also report blocks inside other blocks (CBAM's channel and spatial halves, the block a retrofit
            wrapper holds); by default only the outermost block of each site.
    """
    outer: list[str] = []
    for name, module in model.named_modules():
        if not is_attention(module):
            continue
        if not nested and any(name.startswith(p + ".") or p == "" for p in outer):
            continue
        outer.append(name)
        yield AttnSite(name, module, attn_kind(module))
