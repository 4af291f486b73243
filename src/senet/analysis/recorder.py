"""Record the excitation (gate output) of attention blocks with removable forward hooks.

The hooks sit on each block's gate submodule (``block.gate_module()``: ``block.gate``, or ``block.channel.gate`` for
CBAM), detach its output, move it to the CPU as float32 and keep it only until :meth:`Recorder.update` folds the
batch into bounded per-class statistics (:class:`~senet.analysis.stats.ClassStats`). The model's outputs are
untouched: the hooks return ``None``.

Gates with spatial extent (NoSqueeze's per-position gate) are averaged over their spatial dims, so every block
yields one ``(N, C)`` vector per image.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from senet.layers.base import attn_gate, iter_attention

from .stats import ClassStats, ExcitationStats

__all__ = ["Recorder", "attention_blocks", "gate_module", "default_blocks", "parse_block_name"]

_NAME = re.compile(r"_(\d+)_(\d+)$")


def attention_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The attention blocks of ``model`` in forward order, as ``(name, module)``.

    Uses ``model.attention_modules()`` (paper-style names such as ``SE_4_6``) when the model has it; otherwise the
    blocks :func:`senet.layers.iter_attention` finds, named by their module path.
    """
    if hasattr(model, "attention_modules"):
        # Blocks replaced by identity (senet prune-attention) are no longer attention.
        return [(str(n), m) for n, m in model.attention_modules() if not isinstance(m, nn.Identity)]
    return [(site.name, site.module) for site in iter_attention(model)]


def identity_gammas(model: nn.Module) -> dict[str, float]:
    """``gamma`` of each attention block that sits in a retrofit identity-init wrapper
    (:class:`senet.retrofit.IdentityInitAttn`, ``y = x + gamma * (attn(x) - x)``), by block name.

    Such a site scales its input by ``1 + gamma * (g - 1)`` for a gate ``g``, so ``gamma`` says how far fine-tuning
    moved it from the identity it was inserted as.
    """
    out = {}
    for name, block in attention_blocks(model):
        gamma = getattr(block, "gamma", None)
        if isinstance(gamma, torch.Tensor) and gamma.ndim == 0:
            out[name] = float(gamma.detach())
    return out


def add_identity_distance(summary: list[dict[str, Any]], model: nn.Module) -> list[dict[str, Any]]:
    """Add ``gamma`` (:func:`identity_gammas`, None for a block built in) and ``scale_dev`` to each row of
    :meth:`ExcitationStats.summary`: the mean distance from identity of the block's channel scale, ``g`` for a block
    built in and ``1 + gamma * (g - 1)`` for an identity-init retrofit; a gate in [0, 1] makes it exactly
    ``|gamma| * (1 - mean gate)`` (``1 - mean gate`` without a wrapper)."""
    gammas = identity_gammas(model)
    for r in summary:
        r["gamma"] = gammas.get(str(r["block"]))
        r["scale_dev"] = (1.0 if r["gamma"] is None else abs(r["gamma"])) * (1.0 - float(r["gate_mean"]))
    return summary


def gate_module(block: nn.Module) -> nn.Module:
    """The submodule whose output is the channel excitation of ``block`` (:func:`senet.layers.attn_gate`)."""
    return attn_gate(block)


def parse_block_name(name: str) -> tuple[int, int] | None:
    """``"SE_4_6"`` -> ``(4, 6)`` (stage, block); ``None`` when the name is not paper-style."""
    m = _NAME.search(name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def default_blocks(names: Sequence[str]) -> list[str]:
    """The blocks the paper plots, or their equivalent in another net.

    SE-ResNet-50's SE_2_3, SE_3_4, SE_4_6, SE_5_1, SE_5_2, SE_5_3 are the last block of every stage but the last,
    then the first, second and last block of the last stage; the same rule is applied to any paper-style names.
    Names that are not paper-style give every block.
    """
    parsed = {n: parse_block_name(n) for n in names}
    if not names or any(p is None for p in parsed.values()):
        return list(names)
    stages: dict[int, list[str]] = {}
    for n in names:
        stages.setdefault(parsed[n][0], []).append(n)  # type: ignore[index]
    order = sorted(stages)
    picks = [stages[s][-1] for s in order[:-1]]
    last = stages[order[-1]]
    picks += [last[0], last[min(1, len(last) - 1)], last[-1]]
    return list(dict.fromkeys(picks))


class Recorder:
    """Forward hooks on the gates of chosen attention blocks, with streaming per-class statistics.

    Args:
        model: the network (any module with attention blocks, see :func:`attention_blocks`).
        num_classes: number of classes in the labels passed to :meth:`update`.
        blocks: names to record (default: every block).
        class_names: optional names stored with the statistics.

    Use as a context manager (hooks removed on exit) or call :meth:`remove`::

        with Recorder(model, num_classes=10) as rec:
            for x, y in loader:
                model(x)
                rec.update(y)
        stats = rec.stats
    """

    def __init__(
        self,
        model: nn.Module,
        num_classes: int,
        blocks: Iterable[str] | None = None,
        class_names: Sequence[str] | None = None,
    ) -> None:
        all_blocks = attention_blocks(model)
        if not all_blocks:
            raise ValueError(f"{type(model).__name__} has no attention blocks to record")
        by_name = dict(all_blocks)
        wanted = list(blocks) if blocks is not None else list(by_name)
        unknown = [b for b in wanted if b not in by_name]
        if unknown:
            raise ValueError(f"unknown attention block(s) {', '.join(unknown)}; this model has: {', '.join(by_name)}")
        self.num_classes = int(num_classes)
        self.names = [n for n in by_name if n in set(wanted)]
        self.stats = ExcitationStats(class_names=list(class_names or [str(i) for i in range(num_classes)]))
        self._pending: dict[str, list[torch.Tensor]] = {n: [] for n in self.names}
        self._handles = [gate_module(by_name[n]).register_forward_hook(self._hook(n)) for n in self.names]

    def _hook(self, name: str) -> Any:
        def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            s = output.detach()
            if s.dim() > 2:
                s = s.flatten(2).mean(-1)
            self._pending[name].append(s.float().cpu())

        return hook

    def update(self, labels: torch.Tensor | np.ndarray | Sequence[int]) -> None:
        """Fold the gates seen since the last call into the statistics, with ``labels`` for those images."""
        y = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
        for name in self.names:
            chunks = self._pending[name]
            if not chunks:
                raise RuntimeError(f"no excitation recorded for {name} since the last update(); run the model first")
            values = torch.cat(chunks).numpy()
            self._pending[name] = []
            if values.shape[0] != y.shape[0]:
                raise ValueError(f"{name}: {values.shape[0]} excitation rows but {y.shape[0]} labels")
            stats = self.stats.blocks.get(name)
            if stats is None:
                stats = self.stats.blocks[name] = ClassStats.zeros(self.num_classes, values.shape[1])
            stats.update(values, y)

    @torch.no_grad()
    def run(self, model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], device: Any = "cpu") -> int:
        """Run ``model`` in eval mode over ``(images, labels)`` batches, updating the stats; returns images seen."""
        was_training = model.training
        model.eval()
        seen = 0
        try:
            for x, y in batches:
                model(x.to(device))
                self.update(y)
                seen += int(y.shape[0])
        finally:
            model.train(was_training)
        return seen

    def remove(self) -> None:
        """Remove every hook this recorder registered (idempotent)."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)
