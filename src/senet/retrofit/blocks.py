"""Modules that retrofitting puts into a network.

* :class:`IdentityInitAttn` — the ``init="identity"`` wrapper: ``y = base(x) + gamma * (attn(x) - base(x))`` with a
  learnable scalar ``gamma`` starting at 0, so the network computes exactly the same function right after insertion
  (``base`` is the identity for an inserted block, the replaced SE for a swap).
* :class:`RetrofitBasicBlock` / :class:`RetrofitBottleneck` — torchvision's residual blocks with an ``attn`` child
  applied at one of the paper's positions (Hu et al., TPAMI 2019, Sec. 6.5 and Fig. 5; Table 15 for "inner").
  A retrofitted block keeps every original parameter name; only ``<block>.attn.*`` is new.

Why a zero-initialised scale rather than a gate initialised to 1: a sigmoid gate equals 1 only in saturation, where
its gradient vanishes (``σ(20) == 1.0`` in fp32 but ``σ'(20) ≈ 2e-9``), so an "exact" gate would not train. With the
scale, the output is bit-exact at insertion, ``gamma`` receives a gradient from the first step
(``∂L/∂gamma = Σ ∂L/∂y · (attn(x) − base(x))``) and the attention block's own parameters start receiving gradient as
soon as ``gamma`` moves away from 0 (the ReZero / LayerScale recipe). ``init="paper"`` inserts the plain block.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from senet.layers.base import AttentionBlock, attn_gate, attn_kind

# RetrofitBasicBlock / RetrofitBottleneck are built on first access (module __getattr__ below).
__all__ = ["IdentityInitAttn", "POSITIONS", "unwrap"]

#: Where an attention block can sit in a residual unit (paper names; "inner" is Table 15's SE_3x3).
POSITIONS = ("standard", "pre", "post", "identity", "inner")


class IdentityInitAttn(AttentionBlock):
    """``y = base(x) + gamma * (attn(x) - base(x))``, ``gamma`` a learnable scalar initialised to 0.

    Args:
        attn: the new attention block.
        base: what the site computed before (``None`` = identity, i.e. an inserted block; an existing SE module
            when swapping). It is kept and trained along; at ``gamma = 1`` the site computes ``attn(x)`` alone.

    ``gate``, ``excitation`` and ``kind`` forward to the wrapped block, so gate hooks, analysis code and the ledger
    keep working (they see the block's own gate, before the blend). The blend is not a plain gate: the fused
    inference path leaves the wrapper alone.
    """

    def __init__(self, attn: nn.Module, base: nn.Module | None = None) -> None:
        super().__init__()
        self.attn = attn
        self.base = base
        self.gamma = nn.Parameter(torch.zeros(()))

    @property
    def gate(self) -> nn.Module:
        return self.attn.gate

    @property
    def kind(self) -> str | None:
        return attn_kind(self.attn)

    def gate_module(self) -> nn.Module:
        return attn_gate(self.attn)

    def excitation(self, x: torch.Tensor) -> torch.Tensor:
        """The wrapped block's excitation (its own gate, not the blended one)."""
        return self.attn.excitation(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = x if self.base is None else self.base(x)
        # Written as base + gamma * (attn - base) so gamma == 0 returns base bit-exactly.
        return base + self.gamma.to(x.dtype) * (self.attn(x) - base)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma.item():.4g}"


def unwrap(module: nn.Module) -> nn.Module:
    """The attention block itself, whether or not it sits in an :class:`IdentityInitAttn`."""
    return module.attn if isinstance(module, IdentityInitAttn) else module


def _build_resnet_blocks() -> dict[str, type]:
    # torchvision is imported on first use only: `import senet` must stay cheap for the CLI.

    class RetrofitBasicBlock(BasicBlock):
        """torchvision ``BasicBlock`` with ``attn`` applied at ``attn_position``.

        Positions: ``standard`` (after ``bn2``, before the sum), ``pre`` (on the residual branch's input), ``post``
        (after the sum and ReLU), ``identity`` (on the shortcut, in parallel to the residual branch) and ``inner``
        (after the first 3x3 conv's ReLU).
        """

        attn: nn.Module
        attn_position: str

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            pos = self.attn_position
            identity = x
            out = self.attn(x) if pos == "pre" else x
            out = self.relu(self.bn1(self.conv1(out)))
            if pos == "inner":
                out = self.attn(out)
            out = self.bn2(self.conv2(out))
            if pos == "standard":
                out = self.attn(out)
            if self.downsample is not None:
                identity = self.downsample(x)
            if pos == "identity":
                identity = self.attn(identity)
            out += identity
            out = self.relu(out)
            if pos == "post":
                out = self.attn(out)
            return out

    class RetrofitBottleneck(Bottleneck):
        """torchvision ``Bottleneck`` with ``attn`` applied at ``attn_position``.

        Positions as :class:`RetrofitBasicBlock`; ``inner`` is after the 3x3 conv's ReLU (the paper's SE_3x3),
        where the block sees ``width`` channels instead of ``4 * planes``.
        """

        attn: nn.Module
        attn_position: str

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            pos = self.attn_position
            identity = x
            out = self.attn(x) if pos == "pre" else x
            out = self.relu(self.bn1(self.conv1(out)))
            out = self.relu(self.bn2(self.conv2(out)))
            if pos == "inner":
                out = self.attn(out)
            out = self.bn3(self.conv3(out))
            if pos == "standard":
                out = self.attn(out)
            if self.downsample is not None:
                identity = self.downsample(x)
            if pos == "identity":
                identity = self.attn(identity)
            out += identity
            out = self.relu(out)
            if pos == "post":
                out = self.attn(out)
            return out

    for cls in (RetrofitBasicBlock, RetrofitBottleneck):
        cls.__module__ = __name__
        cls.__qualname__ = cls.__name__
    return {"RetrofitBasicBlock": RetrofitBasicBlock, "RetrofitBottleneck": RetrofitBottleneck}


def __getattr__(name: str) -> type:
    # PEP 562: build the torchvision subclasses when first asked for (also how pickle finds them).
    if name in ("RetrofitBasicBlock", "RetrofitBottleneck"):
        globals().update(_build_resnet_blocks())
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
