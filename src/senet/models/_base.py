"""What every senet model shares: the classifier contract and paper-style attention names."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from senet.errors import SenetError

__all__ = ["ClassifierModel", "attn_name", "check_positive_classes", "init_conv_bn"]


def attn_name(stage: int, block: int) -> str:
    """Paper-style name of the attention block of ``block`` (1-based) in ``stage``: ``SE_4_6``.

    The prefix is ``SE`` for every attention kind (SE, ECA, CBAM, ...), so the blocks of an SE net and of its ECA or
    CBAM twin share names and can be compared key by key.
    """
    return f"SE_{stage}_{block}"


def init_conv_bn(model: nn.Module) -> None:
    """torchvision's init of the mobile families: Kaiming-normal (fan_out) convs with zero bias, BN at (1, 0)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def check_positive_classes(num_classes: int) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise SenetError(f"num_classes must be a non-negative integer (0 = no classifier), got {num_classes!r}")
    return num_classes


class ClassifierModel(nn.Module):
    """Base of every senet model: ``forward = forward_head(forward_features(x))``.

    Subclasses set ``num_features``, ``num_classes``, ``global_pool``, ``head_drop`` and ``fc`` (or override the head
    methods) and implement ``forward_features`` and ``_attention_sites``.
    """

    num_features: int
    num_classes: int
    #: input size (C, H, W) the model was designed for; any size works (global pooling).
    default_input_size: tuple[int, int, int] = (3, 224, 224)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global pooling, dropout and the classifier; ``pre_logits=True`` stops before the classifier."""
        x = self.global_pool(x).flatten(1)
        x = self.head_drop(x)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        """The final classifier module (``nn.Identity`` once reset to 0 classes)."""
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier by a fresh one with ``num_classes`` outputs (0: none, the model returns features)."""
        self.num_classes = check_positive_classes(num_classes)
        self.fc = self._new_classifier(self.num_features, num_classes)

    def _new_classifier(self, in_features: int, num_classes: int) -> nn.Module:
        """A fresh ``nn.Linear`` on the model's device and dtype (``nn.Identity`` for 0 classes)."""
        if num_classes == 0:
            return nn.Identity()
        ref = next(self.parameters(), None)
        kw = {"device": ref.device, "dtype": ref.dtype} if ref is not None else {}
        return nn.Linear(in_features, num_classes, **kw)

    def _attention_sites(self) -> Iterator[tuple[str, nn.Module | None]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def attention_modules(self) -> Iterator[tuple[str, nn.Module]]:
        """``(name, module)`` for every attention block in forward order, named ``SE_<stage>_<block>``."""
        for name, module in self._attention_sites():
            if module is not None:
                yield name, module
