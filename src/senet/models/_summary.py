"""A per-layer cost summary (the Keras ``model.summary()`` of the seed, with MACs and the attention share).

One forward pass under :class:`torch.utils.flop_counter.FlopCounterMode` (which attributes every op to the modules
that ran it) with forward hooks recording output shapes. MACs follow :mod:`senet.bench.flops`: conv / linear /
matmul MACs (the papers' "FLOPs") plus, separately, the elementwise ops attention adds (squeeze reductions, gate,
channel-wise multiply).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from senet.bench.flops import _ELEMENTWISE
from senet.errors import SenetError
from senet.layers import iter_attention

__all__ = ["LayerRow", "ModelSummary", "summary", "attention_module_names"]


@dataclass
class LayerRow:
    """One module of the summary. Costs are for the whole module (children included), per forward pass."""

    name: str  # dotted path ("" is the model itself, not listed)
    type: str
    depth: int  # 1 = child of the model
    output_shape: tuple[int, ...] | None  # None when the module did not run or returned no tensor
    params: int
    macs: int  # conv / linear / matmul MACs
    elementwise: int  # elementwise ops counted by senet.bench.flops (pools, gates, channel-wise scales)
    is_attention: bool
    is_leaf: bool  # no listed children (attention blocks are leaves of the listing)


@dataclass
class ModelSummary:
    """Result of :func:`summary`."""

    input_size: tuple[int, ...]
    rows: list[LayerRow]
    params: int
    trainable_params: int
    macs: int
    elementwise: int
    attn_params: int
    attn_macs: int  # conv / linear MACs inside attention blocks
    attn_elementwise: int  # their elementwise ops
    attn_blocks: int
    attn_names: list[str] = field(default_factory=list)

    @property
    def attn_param_share(self) -> float:
        """Attention parameters / all parameters."""
        return self.attn_params / self.params if self.params else 0.0

    @property
    def attn_mac_share(self) -> float:
        """Attention (MACs + elementwise) / model (MACs + elementwise)."""
        total = self.macs + self.elementwise
        return (self.attn_macs + self.attn_elementwise) / total if total else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The totals, for the CLI's JSON line."""
        return {
            "input_size": list(self.input_size),
            "params": self.params,
            "trainable_params": self.trainable_params,
            "macs": self.macs,
            "gmacs": round(self.macs / 1e9, 4),
            "elementwise": self.elementwise,
            "attn_blocks": self.attn_blocks,
            "attn_params": self.attn_params,
            "attn_macs": self.attn_macs,
            "attn_elementwise": self.attn_elementwise,
            "attn_param_share": round(self.attn_param_share, 6),
            "attn_mac_share": round(self.attn_mac_share, 6),
        }


def attention_module_names(model: nn.Module) -> dict[str, str]:
    """``{module path: paper-style name}`` of the attention blocks (the model's own names, else module paths)."""
    paths = {id(m): n for n, m in model.named_modules()}
    if hasattr(model, "attention_modules"):
        return {paths[id(m)]: str(name) for name, m in model.attention_modules() if id(m) in paths}
    return {site.name: site.name for site in iter_attention(model)}


def summary(
    model: nn.Module,
    input_size: Sequence[int] = (3, 224, 224),
    depth: int | None = None,
    batch_size: int = 1,
) -> ModelSummary:
    """Per-module output shape, parameters and MACs of one forward pass, with the attention blocks' share.

    Args:
        model: any module taking one ``(N, *input_size)`` tensor.
        input_size: input shape without the batch dimension.
        depth: list modules down to this nesting depth (1 = the model's children); ``None`` = down to leaves.
            Attention blocks are listed as one row and not expanded.
        batch_size: N (costs scale with it; 1 gives per-image numbers).

    Raises:
        SenetError: a non-positive input size, depth or batch size.
    """
    input_size = tuple(int(s) for s in input_size)
    if not input_size or any(s <= 0 for s in input_size):
        raise SenetError(f"input size must be positive integers (e.g. 3 224 224), got {list(input_size)}")
    if depth is not None and depth < 1:
        raise SenetError(f"depth must be >= 1, got {depth}")
    if batch_size < 1:
        raise SenetError(f"batch size must be >= 1, got {batch_size}")
    attn = attention_module_names(model)
    attn_paths = tuple(p + "." for p in attn)

    listed: list[tuple[str, nn.Module]] = []
    for name, m in model.named_modules():
        if not name or name.startswith(attn_paths):
            continue  # the model itself, or inside an attention block (listed as one row)
        if depth is None or name.count(".") < depth:
            listed.append((name, m))
    listed_names = {n for n, _ in listed}

    shapes: dict[str, tuple[int, ...]] = {}

    def hook(name: str):
        def fn(_m: nn.Module, _inp: Any, out: Any) -> None:
            t = out[0] if isinstance(out, (tuple, list)) and out else out
            if isinstance(t, torch.Tensor):
                shapes[name] = tuple(t.shape)

        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in listed]
    param = next(model.parameters(), None)
    x = torch.randn(batch_size, *input_size, device=param.device if param is not None else None)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=_ELEMENTWISE) as counter:
            model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()

    # FlopCounterMode names modules "<RootClass>.<path>"; "Global" is the whole pass.
    macs: dict[str, int] = {}
    elem: dict[str, int] = {}
    for key, ops in counter.get_flop_counts().items():
        if key == "Global":
            path = ""
        else:
            path = key.split(".", 1)[1] if "." in key else ""
        e = sum(v for op, v in ops.items() if op in _ELEMENTWISE) // 2
        macs[path] = sum(v for op, v in ops.items() if op not in _ELEMENTWISE) // 2
        elem[path] = e
    global_ops = counter.get_flop_counts().get("Global", {})
    total_elem = sum(v for op, v in global_ops.items() if op in _ELEMENTWISE) // 2
    total_macs = sum(v for op, v in global_ops.items() if op not in _ELEMENTWISE) // 2

    rows = []
    for name, m in listed:
        is_attn = name in attn
        has_listed_child = any(n.startswith(name + ".") for n in listed_names)
        rows.append(
            LayerRow(
                name=name,
                type=type(m).__name__,
                depth=name.count(".") + 1,
                output_shape=shapes.get(name),
                params=sum(p.numel() for p in m.parameters()),
                macs=macs.get(name, 0),
                elementwise=elem.get(name, 0),
                is_attention=is_attn,
                is_leaf=is_attn or not has_listed_child,
            )
        )
    modules = dict(model.named_modules())
    attn_params = sum(p.numel() for path in attn for p in modules[path].parameters())
    return ModelSummary(
        input_size=input_size,
        rows=rows,
        params=sum(p.numel() for p in model.parameters()),
        trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        macs=total_macs,
        elementwise=total_elem,
        attn_params=attn_params,
        attn_macs=sum(macs.get(p, 0) for p in attn),
        attn_elementwise=sum(elem.get(p, 0) for p in attn),
        attn_blocks=len(attn),
        attn_names=list(attn.values()),
    )
