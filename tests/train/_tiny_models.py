"""Small models importable as ``_tiny_models:<name>`` (the trainer's ``module:callable`` form)."""

from __future__ import annotations

import torch
from torch import nn


def tiny_cnn(num_classes: int = 3) -> nn.Module:
    """No BatchNorm: so 2 DDP ranks of B/2 compute exactly the single-process gradients of B."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, num_classes),
    )


class Bomb(nn.Module):
    """Returns NaN logits from its ``after``-th training call on."""

    def __init__(self, num_classes: int = 3, after: int = 5) -> None:
        super().__init__()
        self.body = tiny_cnn(num_classes)
        self.after, self.calls = after, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.calls += 1
        y = self.body(x)
        return y * float("nan") if self.training and self.calls >= self.after else y


def tiny_bn_cnn(num_classes: int = 3) -> nn.Module:
    """With BatchNorm (running statistics are part of what a resume must restore)."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, num_classes),
    )
