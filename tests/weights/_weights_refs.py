"""Reference implementations and synthetic release checkpoints shared by the weights tests.

* ``cadene()`` imports Cadene's ``pretrainedmodels/models/senet.py`` straight from its file: the package's
  ``__init__`` pulls in ``six`` (not installed, not needed), the model file itself only needs torch.
* ``randomize_(model)`` gives every parameter and every BatchNorm running statistic random values, scaled so a
  152-layer network still produces logits of order 1 (the parity bound is absolute: 1e-5).
* ``eca_release_sd`` / ``cbam_release_sd`` / ``mmpretrain_sd`` / ``moskomule_sd`` build state_dicts with the key
  names and shapes of releases that have no installable package (from their published model code).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import site
import sys
from types import ModuleType

import torch
from torch import nn


@functools.cache
def cadene() -> ModuleType:
    for root in [*site.getsitepackages(), os.path.dirname(os.path.dirname(torch.__file__))]:
        path = os.path.join(root, "pretrainedmodels", "models", "senet.py")
        if os.path.exists(path):
            spec = importlib.util.spec_from_file_location("_cadene_senet", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules["_cadene_senet"] = module
            spec.loader.exec_module(module)
            return module
    import pytest

    pytest.skip("pretrainedmodels (Cadene) is not installed")


@torch.no_grad()
def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights and BN statistics; residual-closing BNs get small gains so deep nets stay finite."""
    g = torch.Generator().manual_seed(seed)

    def rand(t: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
        return torch.rand(t.shape, generator=g) * (hi - lo) + lo

    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(rand(m.running_var, 0.5, 1.5))
            m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=g)))
            if m.affine:
                m.weight.copy_(rand(m.weight, 0.5, 1.5))
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        elif isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            if m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    # Damp the last BN of every residual branch (and the projection's) like a trained net's small gains.
    for name, m in model.named_modules():
        last = name.rsplit(".", 1)[-1]
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and (last in ("bn3",) or name.endswith("downsample.1")):
            m.weight.mul_(0.2)
    for m in model.modules():
        own = list(m.named_parameters(recurse=False)) + list(m.named_buffers(recurse=False))
        if own and not isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.Conv1d, nn.Conv2d, nn.Linear)):
            raise AssertionError(f"randomize_ does not know {type(m).__name__}: its tensors would stay uninitialised")
    return model


def torchvision_backbone(seed: int = 0) -> dict[str, torch.Tensor]:
    """A randomized torchvision ResNet-50 state_dict (the backbone every release below shares); a fresh dict of
    shared, read-only tensors (built once per seed)."""
    return dict(_backbone(seed))


@functools.cache
def _backbone(seed: int) -> dict[str, torch.Tensor]:
    import torchvision

    with torch.device("meta"):
        model = torchvision.models.resnet50()
    return dict(randomize_(model.to_empty(device="cpu"), seed).state_dict())


def _blocks(sd: dict[str, torch.Tensor]) -> list[tuple[int, int, int]]:
    """(stage, index, out channels) of every bottleneck block in a torchvision-named state_dict."""
    out = []
    for k, v in sd.items():
        parts = k.split(".")
        if parts[0].startswith("layer") and k.endswith(".bn3.weight"):
            out.append((int(parts[0][5:]), int(parts[1]), int(v.shape[0])))
    return out


def eca_release_sd(ks: tuple[int, ...] = (3, 5, 5, 7), seed: int = 1) -> dict[str, torch.Tensor]:
    """BangguWu/ECANet ``eca_resnet50`` keys: ``layerX.Y.eca.conv.weight`` of shape (1, 1, k_stage)."""
    sd = torchvision_backbone(seed=seed)
    g = torch.Generator().manual_seed(seed)
    for s, i, _ in _blocks(sd):
        sd[f"layer{s}.{i}.eca.conv.weight"] = torch.randn(1, 1, ks[s - 1], generator=g)
    return sd


def cbam_release_sd(seed: int = 2) -> dict[str, torch.Tensor]:
    """Jongchan/attention-module ResNet-50 + CBAM keys (ChannelGate.mlp.{1,3} Linear with bias; SpatialGate)."""
    sd = torchvision_backbone(seed=seed)
    g = torch.Generator().manual_seed(seed)
    for s, i, c in _blocks(sd):
        p = f"layer{s}.{i}.cbam."
        r = c // 16
        sd[p + "ChannelGate.mlp.1.weight"] = torch.randn(r, c, generator=g) / c**0.5
        sd[p + "ChannelGate.mlp.1.bias"] = torch.randn(r, generator=g) * 0.1
        sd[p + "ChannelGate.mlp.3.weight"] = torch.randn(c, r, generator=g) / r**0.5
        sd[p + "ChannelGate.mlp.3.bias"] = torch.randn(c, generator=g) * 0.1
        sd[p + "SpatialGate.spatial.conv.weight"] = torch.randn(1, 2, 7, 7, generator=g) / 7
        sd[p + "SpatialGate.spatial.bn.weight"] = torch.rand(1, generator=g) + 0.5
        sd[p + "SpatialGate.spatial.bn.bias"] = torch.randn(1, generator=g) * 0.1
        sd[p + "SpatialGate.spatial.bn.running_mean"] = torch.randn(1, generator=g) * 0.1
        sd[p + "SpatialGate.spatial.bn.running_var"] = torch.rand(1, generator=g) + 0.5
        sd[p + "SpatialGate.spatial.bn.num_batches_tracked"] = torch.tensor(7)
    return sd


def mmpretrain_sd(seed: int = 3) -> dict[str, torch.Tensor]:
    """mmpretrain ``SEResNet(depth=50)`` + ``LinearClsHead``: ``backbone.*``, ``se_layer.conv1.conv``, ``head.fc``."""
    base = torchvision_backbone(seed=seed)
    g = torch.Generator().manual_seed(seed)
    sd = {("head." + k if k.startswith("fc.") else "backbone." + k): v for k, v in base.items()}
    for s, i, c in _blocks(base):
        p = f"backbone.layer{s}.{i}.se_layer."
        r = max(8, int(c // 16 + 4) // 8 * 8)  # make_divisible(c // 16, 8)
        sd[p + "conv1.conv.weight"] = torch.randn(r, c, 1, 1, generator=g) / c**0.5
        sd[p + "conv1.conv.bias"] = torch.randn(r, generator=g) * 0.1
        sd[p + "conv2.conv.weight"] = torch.randn(c, r, 1, 1, generator=g) / r**0.5
        sd[p + "conv2.conv.bias"] = torch.randn(c, generator=g) * 0.1
    return sd


def moskomule_sd(seed: int = 4) -> dict[str, torch.Tensor]:
    """moskomule/senet.pytorch ``se_resnet50``: ``se.fc.0`` / ``se.fc.2`` Linear without bias."""
    sd = torchvision_backbone(seed=seed)
    g = torch.Generator().manual_seed(seed)
    for s, i, c in _blocks(sd):
        p = f"layer{s}.{i}.se.fc."
        sd[p + "0.weight"] = torch.randn(c // 16, c, generator=g) / c**0.5
        sd[p + "2.weight"] = torch.randn(c, c // 16, generator=g) / (c // 16) ** 0.5
    return sd
