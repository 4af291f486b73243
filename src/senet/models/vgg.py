"""VGG-16 with batch norm, with optional attention after each of its five conv stages (SENet paper, Table 2).

Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition", ICLR 2015,
arXiv:1409.1556; Ioffe & Szegedy's BN after every conv (torchvision's ``vgg16_bn``).

Keys follow torchvision's ``vgg16_bn`` exactly (``features.{i}``, ``classifier.{0,3,6}``), so its weights load as
they are. The attention blocks live in ``attn.{0..4}`` and act on the output of the last ReLU of each stage, before
its max-pool; they are named ``SE_<stage>_1`` with stages 1-5 (VGG's conv1..conv5).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from senet.layers import create_attn

from ._base import ClassifierModel, attn_name, check_positive_classes
from ._registry import register_model

__all__ = ["VGG"]

# VGG-16 ("configuration D"): channels of each conv, "M" a 2x2 max-pool closing a stage.
_CFG_16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG(ClassifierModel):
    """VGG with BN (torchvision layout) and attention after each conv stage.

    Args:
        num_classes: classifier outputs (0: none; ``forward`` returns the 4096-d fc7 features).
        in_chans: input channels.
        attn_layer: attention kind after each stage (``None``, ``"se"``, ...).
        attn_kwargs: its options.
        drop_rate: dropout after fc6 and fc7 (0.5 as the paper).

    The head keeps VGG's 7x7 adaptive pooling and two 4096-wide FC layers (so any input size works and the MACs
    match the paper's 15.5 G); ``num_features`` is 4096, the width before the last FC.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        *,
        cfg: tuple[int | str, ...] = _CFG_16,
        attn_layer: Any = None,
        attn_kwargs: Mapping[str, Any] | None = None,
        drop_rate: float = 0.5,
    ) -> None:
        super().__init__()
        self.num_classes = check_positive_classes(num_classes)
        layers: list[nn.Module] = []
        attn: list[nn.Module] = []
        self._attn_after: list[int] = []  # index in `features` of the ReLU each attention block follows
        prev = in_chans
        for v in cfg:
            if v == "M":
                block = create_attn(attn_layer, prev, **dict(attn_kwargs or {}))
                if block is not None:
                    attn.append(block)
                    self._attn_after.append(len(layers) - 1)
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(prev, int(v), 3, padding=1), nn.BatchNorm2d(int(v)), nn.ReLU(inplace=True)]
                prev = int(v)
        self.features = nn.Sequential(*layers)
        self.attn = nn.ModuleList(attn)
        self.num_stages = cfg.count("M")
        self.num_features = 4096
        self.global_pool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(prev * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(drop_rate),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(drop_rate),
            nn.Linear(4096, num_classes) if num_classes > 0 else nn.Identity(),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.classifier:
            self._init_linear(m)

    @staticmethod
    def _init_linear(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last conv feature map (512 channels, after the 5th max-pool)."""
        blocks = iter(self.attn)
        after = set(self._attn_after)
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in after:
                x = next(blocks)(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """7x7 adaptive pooling, fc6, fc7 (``pre_logits`` stops here), fc8."""
        x = self.classifier[:6](self.global_pool(x).flatten(1))
        return x if pre_logits else self.classifier[6](x)

    def get_classifier(self) -> nn.Module:
        return self.classifier[6]

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = check_positive_classes(num_classes)
        self.classifier[6] = self._new_classifier(self.num_features, num_classes)
        self._init_linear(self.classifier[6])

    def _attention_sites(self) -> Iterator[tuple[str, nn.Module | None]]:
        for s, block in enumerate(self.attn, 1):
            yield attn_name(s, 1), block


@register_model
def vgg16_bn(**kwargs: Any) -> VGG:
    """VGG-16 with BN (torchvision layout; 138.4M parameters, 15.5 GMACs)."""
    return VGG(**kwargs)


@register_model
def se_vgg16_bn(**kwargs: Any) -> VGG:
    """VGG-16-BN + SE (r = 16) after each of the five conv stages (SENet paper, Table 2)."""
    return VGG(**{"attn_layer": "se", **kwargs})
