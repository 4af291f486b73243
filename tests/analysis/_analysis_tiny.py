"""A tiny network with SE, CBAM and ECA blocks and paper-style names, so analysis tests need no model zoo."""

from __future__ import annotations

import torch
from torch import nn

from senet.layers import CBAM, EfficientChannelAttn, SqueezeExcite


class TinyAttnNet(nn.Module):
    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.se = SqueezeExcite(8, rd_ratio=0.5)
        self.conv2 = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
        self.cbam = CBAM(16, rd_ratio=0.25)
        self.eca = EfficientChannelAttn(16)
        self.fc = nn.Linear(16, num_classes)

    def attention_modules(self):
        yield "SE_1_1", self.se
        yield "SE_2_1", self.cbam
        yield "SE_2_2", self.eca

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The input of every attention block (for direct computations in tests)."""
        x1 = self.stem(x)
        x2 = self.conv2(self.se(x1))
        x3 = self.cbam(x2)
        return {"SE_1_1": x1, "SE_2_1": x2, "SE_2_2": x3}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.eca(self.cbam(self.conv2(self.se(self.stem(x)))))
        return self.fc(x.mean((2, 3)))
