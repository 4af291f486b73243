"""A residual denoiser built from :class:`senet.layers.SEResidualBlock`, with attention as an argument.

DnCNN-style (Zhang et al., "Beyond a Gaussian Denoiser: Residual Learning of Deep CNN for Image Denoising", IEEE TIP
2017, arXiv:1608.03981): a head conv3x3 + ReLU, ``blocks`` residual blocks (each conv-BN-ReLU-conv-BN, attention,
identity add, ReLU; RIDNet's channel-attention unit, Anwar & Barnes, ICCV 2019, arXiv:1904.07396), a tail conv3x3
back to the image channels. The network predicts the **noise residual** and returns ``noisy - residual``, the clean
estimate: DnCNN's residual learning. For Gaussian noise the residual is a simple, zero-mean, image-independent signal,
so the body does not have to carry the whole image through every layer, and the identity is the network's starting
point; the paper shows this trains faster and ends better than predicting the clean image.

Every model returns the clean estimate, so the loss and PSNR are computed on images, whichever is predicted inside.
Attention names are ``SE_1_<block>`` (one stage), as in every senet family.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from senet.layers import SEResidualBlock
from senet.layers.create_attn import AttnType

from ._base import attn_name
from ._registry import register_model

__all__ = ["ResidualDenoiser"]


class ResidualDenoiser(nn.Module):
    """Head conv, ``blocks`` :class:`SEResidualBlock`, tail conv; ``forward(noisy)`` returns the denoised image.

    Args:
        in_chans: image channels (3 for RGB, 1 for grayscale).
        width: channels of the body (64 as DnCNN).
        blocks: residual blocks (8: 2 + 16 convs, about DnCNN-S's 17 layers).
        attn_layer: attention kind in every block (``None`` -> the plain denoiser).
        attn_kwargs: the attention block's knobs (SE: r = 16 by default).
        res_scale: scale of every block's residual branch (EDSR's residual scaling; 1.0 = none).
        residual: ``True`` (default) predicts the noise and returns ``x - f(x)``; ``False`` returns ``f(x)``.
        num_classes: accepted (and ignored) so the model factory's contract holds; a denoiser has no classes.
    """

    default_input_size = (3, 40, 40)  # DnCNN's training patches

    def __init__(
        self,
        in_chans: int = 3,
        width: int = 64,
        blocks: int = 8,
        attn_layer: AttnType = None,
        attn_kwargs: dict[str, Any] | None = None,
        residual: bool = True,
        res_scale: float = 1.0,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        self.in_chans, self.width, self.residual = in_chans, width, residual
        self.num_classes = 0  # not a classifier; the trainer's denoise task builds it without classes
        self.head = nn.Sequential(nn.Conv2d(in_chans, width, 3, padding=1), nn.ReLU(inplace=True))
        self.body = nn.Sequential(
            *[SEResidualBlock(width, attn_layer, attn_kwargs, res_scale=res_scale) for _ in range(blocks)]
        )
        self.tail = nn.Conv2d(width, in_chans, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.tail(self.body(self.head(x)))
        return x - out if self.residual else out

    def attention_modules(self) -> Iterator[tuple[str, nn.Module]]:
        """``(SE_1_<block>, attention module)`` for every block that has attention."""
        for i, blk in enumerate(self.body, 1):
            if not isinstance(blk.attn, nn.Identity):
                yield attn_name(1, i), blk.attn


def _create(kwargs: dict[str, Any], attn_layer: str | None) -> ResidualDenoiser:
    return ResidualDenoiser(**{"attn_layer": attn_layer, **kwargs})


@register_model
def denoiser(**kwargs: Any) -> ResidualDenoiser:
    """DnCNN-style residual denoiser, 64 wide, 8 plain residual blocks (no attention)."""
    return _create(kwargs, None)


@register_model
def se_denoiser(**kwargs: Any) -> ResidualDenoiser:
    """The residual denoiser with SE (r = 16) in every block."""
    return _create(kwargs, "se")


@register_model
def eca_denoiser(**kwargs: Any) -> ResidualDenoiser:
    """The residual denoiser with ECA in every block."""
    return _create(kwargs, "eca")


@register_model
def cbam_denoiser(**kwargs: Any) -> ResidualDenoiser:
    """The residual denoiser with CBAM in every block."""
    return _create(kwargs, "cbam")
