"""SpeedNet: the small, wide CIFAR network of the fast-training records, with attention as an argument.

The layout follows the public CIFAR-10 speedrun networks (Keller Jordan's airbench94, itself after Page's and
tysam-code's): a frozen 2x2 patch-whitening convolution, three conv groups of widths 64 / 256 / 256 (each
conv - max-pool - BN - GELU - conv - BN - GELU), a 3x3 max-pool to 1x1 and a bias-free linear head scaled by 1/9.
What differs from airbench is only what senet needs: the attention block (``attn_layer``) after each group, named
``SE_<group>_1`` (groups 1-3), and the standard :class:`~senet.models.ClassifierModel` head contract.

Speed-recipe details that live in the model (why each is there):

* The whitening conv's weights are *not* trained: :meth:`SpeedNet.init_whitening` sets them from the eigenvectors of
  the training set's 2x2-patch covariance (both signs, so 2 x 12 = 24 filters), which decorrelates the input and lets
  a high learning rate work from step 0. Its bias is trained.
* BatchNorm scales are frozen at 1 (only shifts train): with GELU after every BN, a learned scale only duplicates the
  next conv's weight norm and slows the first epochs. ``eps=1e-12`` and ``momentum=0.4`` (PyTorch convention, the
  weight of the new batch; airbench writes it as the decay 0.6), so eval statistics follow the last few steps.
* Convolutions start as partial identities (Dirac) where shapes allow: each conv passes its first ``in_channels``
  inputs through unchanged at step 0.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from senet.layers import create_attn, merge_attn_kwargs

from ._base import ClassifierModel, attn_name, check_positive_classes
from ._registry import register_model

__all__ = ["SpeedNet"]

#: Smallest SE/CBAM hidden width, as for the CIFAR ResNets (senet.models.cifar_resnet.CIFAR_RD_MIN): with the default
#: widths r = 16 already gives >= 4 units; the floor matters for narrower ``widths``.
_RD_MIN = 4


class _ConvGroup(nn.Sequential):
    """conv3x3 -> max-pool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU (airbench's ConvGroup)."""

    def __init__(self, in_chs: int, out_chs: int, bn_momentum: float) -> None:
        super().__init__(
            nn.Conv2d(in_chs, out_chs, 3, padding=1, bias=False),
            nn.MaxPool2d(2),
            _frozen_scale_bn(out_chs, bn_momentum),
            nn.GELU(),
            nn.Conv2d(out_chs, out_chs, 3, padding=1, bias=False),
            _frozen_scale_bn(out_chs, bn_momentum),
            nn.GELU(),
        )


class _ScaledLinear(nn.Linear):
    """A bias-free linear layer whose output is multiplied by a constant (airbench's 1/9 logit scale)."""

    def __init__(self, in_features: int, out_features: int, scale: float, **kw: Any) -> None:
        super().__init__(in_features, out_features, bias=False, **kw)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * self.scale


def _frozen_scale_bn(channels: int, momentum: float) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels, eps=1e-12, momentum=momentum)
    bn.weight.requires_grad_(False)
    return bn


class SpeedNet(ClassifierModel):
    """The speedrun CIFAR network (see the module docstring).

    Args:
        num_classes: classifier outputs (0: none, ``forward`` returns the pooled features).
        in_chans: input channels (the whitening conv has ``2 * in_chans * 4`` filters: every 2x2 patch direction and
            its negative).
        widths: the three conv-group widths.
        attn_layer: attention after each conv group (``None``/``"none"``, ``"se"``, ``"eca"``, ``"cbam"``, ...).
        attn_kwargs: its options; SE-like kinds default to ``rd_min=4``.
        bn_momentum: BatchNorm running-stat momentum (PyTorch convention: weight of the new batch).
        scale: the logit scale (airbench's 1/9).
    """

    default_input_size = (3, 32, 32)

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 3,
        *,
        widths: Sequence[int] = (64, 256, 256),
        attn_layer: Any = None,
        attn_kwargs: Mapping[str, Any] | None = None,
        bn_momentum: float = 0.4,
        scale: float = 1 / 9,
    ) -> None:
        super().__init__()
        self.num_classes = check_positive_classes(num_classes)
        if len(widths) != 3:
            raise ValueError(f"SpeedNet has three conv groups; widths must have 3 entries, got {list(widths)}")
        whiten = 2 * in_chans * 4
        self.whiten = nn.Conv2d(in_chans, whiten, 2, bias=True)
        self.whiten.weight.requires_grad_(False)
        self.act = nn.GELU()
        groups, attns, prev = [], [], whiten
        kwargs = merge_attn_kwargs(attn_layer, attn_kwargs, {"rd_min": _RD_MIN})
        for w in widths:
            groups.append(_ConvGroup(prev, int(w), bn_momentum))
            attns.append(create_attn(attn_layer, int(w), **kwargs) or nn.Identity())
            prev = int(w)
        self.layers = nn.ModuleList(groups)
        self.attn = nn.ModuleList(attns)
        self.num_features = prev
        self.global_pool = nn.Sequential(nn.MaxPool2d(3), nn.AdaptiveMaxPool2d(1))
        self.head_drop = nn.Identity()
        self.scale = scale
        self.fc = self._new_classifier(prev, num_classes)
        self._init_weights()

    def _new_classifier(self, in_features: int, num_classes: int) -> nn.Module:
        if num_classes == 0:
            return nn.Identity()
        ref = next(self.parameters(), None)
        kw = {"device": ref.device, "dtype": ref.dtype} if ref is not None else {}
        return _ScaledLinear(in_features, num_classes, self.scale, **kw)

    @torch.no_grad()
    def _init_weights(self) -> None:
        for group in self.layers:
            for m in group:
                if isinstance(m, nn.Conv2d):
                    # Dirac on the first min(in, out) filters: an identity path at step 0 (airbench's init).
                    n = min(m.in_channels, m.out_channels)
                    nn.init.dirac_(m.weight[:n])

    @torch.no_grad()
    def init_whitening(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the whitening conv from ``images`` (N x C x H x W, normalised as the model will see them).

        Filters are the eigenvectors of the 2x2-patch covariance scaled by ``1 / sqrt(eigenvalue + eps)``, and their
        negatives; the bias is reset to 0. Called by ``senet train`` on the first training images before step 0.
        """
        w = self.whiten.weight
        c = w.shape[1]
        if images.ndim != 4 or images.shape[1] != c:
            raise ValueError(f"init_whitening needs N x {c} x H x W images, got {tuple(images.shape)}")
        x = images.detach().float().contiguous()
        patches = x.unfold(2, 2, 1).unfold(3, 2, 1)  # N, C, H-1, W-1, 2, 2
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * 4).double()
        patches = patches - patches.mean(0)
        cov = patches.T @ patches / max(1, patches.shape[0] - 1)
        evals, evecs = torch.linalg.eigh(cov)
        filt = (evecs.T / torch.sqrt(evals.clamp_min(0) + eps)[:, None]).flip(0)  # largest eigenvalue first
        filt = filt.reshape(c * 4, c, 2, 2)
        w.copy_(torch.cat([filt, -filt]).to(w))
        if self.whiten.bias is not None:
            self.whiten.bias.zero_()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.whiten(x))
        for group, attn in zip(self.layers, self.attn):
            x = attn(group(x))
        return x

    def _attention_sites(self) -> Iterator[tuple[str, nn.Module | None]]:
        for i, a in enumerate(self.attn):
            yield attn_name(i + 1, 1), None if isinstance(a, nn.Identity) else a


def _create(attn_layer: str | None, kwargs: dict[str, Any]) -> SpeedNet:
    kwargs.setdefault("attn_layer", attn_layer)
    return SpeedNet(**kwargs)


@register_model
def speednet(**kwargs: Any) -> SpeedNet:
    """SpeedNet (airbench94 layout, 1.97M parameters), no attention."""
    return _create(None, kwargs)


@register_model
def se_speednet(**kwargs: Any) -> SpeedNet:
    """SpeedNet + SE (r = 16, at least 4 hidden units) after each conv group."""
    return _create("se", kwargs)


@register_model
def eca_speednet(**kwargs: Any) -> SpeedNet:
    """SpeedNet + ECA (adaptive k) after each conv group."""
    return _create("eca", kwargs)


@register_model
def cbam_speednet(**kwargs: Any) -> SpeedNet:
    """SpeedNet + CBAM (r = 16, at least 4 hidden units) after each conv group."""
    return _create("cbam", kwargs)
