"""Cost tables: params, MACs and elementwise ops of whole models (``senet summary --costs``) and of every attention
block at one feature-map size (``senet blocks``).

Models are counted on the meta device (shapes only: seconds even for SENet-154). The model is built by a callable
the caller passes (``functools.partial(senet.models.create_model, name)``), so this package stays below
:mod:`senet.models`, which uses :mod:`senet.bench.flops` for its summaries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from senet.layers import attn_knobs, create_attn, list_attn

from .flops import count_macs, count_params

__all__ = ["model_cost", "block_costs"]


def model_cost(build: Callable[[], nn.Module], input_size: Sequence[int] | None = None) -> dict[str, Any]:
    """``input`` (C, H, W), ``params``, ``macs``, ``elementwise``, ``attn_blocks`` and ``attn_params`` of one image
    through the model ``build()`` returns, built on the meta device.

    ``input_size`` defaults to the model's ``default_input_size``.
    """
    with torch.device("meta"):
        model = build()
        size = tuple(input_size or model.default_input_size)
        cost = count_macs(model, torch.empty(1, *size))
    attn = list(model.attention_modules())
    return {
        "input": list(size),
        "params": count_params(model),
        "macs": cost.macs,
        "elementwise": cost.elementwise,
        "attn_blocks": len(attn),
        "attn_params": sum(count_params(m) for _, m in attn),
    }


def block_costs(channels: int, size: int, kinds: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """For each attention kind (default: :func:`senet.layers.list_attn`): ``kind``, ``class``, ``params``,
    ``macs``, ``elementwise`` (one ``channels`` x ``size`` x ``size`` feature map) and its ``knobs`` with defaults.

    Raises:
        ValueError: ``channels`` or ``size`` is not positive.
    """
    if channels <= 0 or size <= 0:
        raise ValueError(f"--channels and --size must be positive, got {channels} and {size}")
    x = torch.randn(1, channels, size, size)
    rows = []
    for kind in kinds or list_attn():
        block = create_attn(kind, channels)
        cost = count_macs(block, x)
        rows.append(
            {
                "kind": kind,
                "class": type(block).__name__,
                "params": count_params(block),
                "macs": cost.macs,
                "elementwise": cost.elementwise,
                "knobs": attn_knobs(kind) or {},
            }
        )
    return rows
