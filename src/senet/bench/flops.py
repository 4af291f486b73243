"""Counting multiply-accumulates with ``torch.utils.flop_counter``.

Conventions (the papers call MACs "FLOPs"):

* ``macs`` — what :class:`torch.utils.flop_counter.FlopCounterMode` counts (convolutions, linear layers, matmuls),
  divided by 2. This is the convention of ``reference-numbers.md`` section 1 (e.g. SE-ResNet-50 3.860 GMACs).
* ``elementwise`` — the operations FlopCounterMode ignores but attention adds: the squeeze reductions (mean / amax),
  the gate (sigmoid, hard-sigmoid, tanh, relu) and the channel-wise multiply, one op per output element
  (per input element for reductions). Reported separately so the totals stay comparable with the papers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["MacCount", "count_macs", "count_params"]

_aten = torch.ops.aten


def _numel(shape: Any) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _per_output(*args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    # FlopCounterMode halves nothing itself; we store 2x so that "flops / 2" gives one op per element.
    return 2 * _numel(out_shape)


def _per_input(*args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    return 2 * _numel(args[0])


# Ops that attention blocks add on top of the conv/linear work (keys are overload packets, as FlopCounterMode's).
_ELEMENTWISE: dict[Any, Callable[..., int]] = {
    _aten.mean: _per_input,
    _aten.amax: _per_input,
    _aten.sigmoid: _per_output,
    _aten.hardsigmoid: _per_output,
    _aten.tanh: _per_output,
    _aten.mul: _per_output,
}


@dataclass
class MacCount:
    """Result of :func:`count_macs`. All numbers are counts (not giga-)."""

    macs: int
    elementwise: int
    by_module: dict[str, int] = field(default_factory=dict)

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (BatchNorm affine and biases included, buffers excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_macs(model: nn.Module, *inputs: torch.Tensor, elementwise: bool = True) -> MacCount:
    """Count MACs of one forward pass of ``model`` on ``inputs`` (eval mode, no grad).

    Args:
        model: any module.
        *inputs: example inputs (their batch size is counted: use batch 1 for per-image numbers).
        elementwise: also count the elementwise ops attention adds (see module docstring).

    Returns:
        :class:`MacCount` with conv/linear MACs, elementwise ops and the MACs of each top-level child.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False, depth=1) as conv_counter:
            model(*inputs)
        total = conv_counter.get_total_flops() // 2
        by_module = {
            name.removeprefix("Global."): sum(v.values()) // 2
            for name, v in conv_counter.get_flop_counts().items()
            if name != "Global"
        }
        extra = 0
        if elementwise:
            with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=_ELEMENTWISE) as all_counter:
                model(*inputs)
            extra = all_counter.get_total_flops() // 2 - total
    finally:
        model.train(was_training)
    return MacCount(macs=int(total), elementwise=int(extra), by_module=by_module)
