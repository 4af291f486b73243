"""SEResidualBlock: its equations computed by hand from the submodules' weights, on maps larger than 1x1."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from senet.layers import CBAM, EfficientChannelAttn, SEResidualBlock, SqueezeExcite


def _randomise(block: nn.Module) -> None:
    # Non-trivial BN statistics and affine terms, so an eval-mode BN is not the identity.
    g = torch.Generator().manual_seed(0)
    for m in block.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def _bn(x: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    shape = (1, -1, 1, 1)
    return (x - bn.running_mean.view(shape)) / torch.sqrt(bn.running_var.view(shape) + bn.eps) * bn.weight.view(
        shape
    ) + bn.bias.view(shape)


def _by_hand(block: SEResidualBlock, x: torch.Tensor, gate: bool = True, scale: float = 1.0) -> torch.Tensor:
    u = F.relu(_bn(F.conv2d(x, block.conv1.weight, padding=1), block.bn1))
    u = _bn(F.conv2d(u, block.conv2.weight, padding=1), block.bn2)
    if gate:
        se = block.attn
        z = u.sum(dim=(2, 3)) / (u.shape[2] * u.shape[3])  # the squeeze: a mean over every position of the map
        s = torch.sigmoid(F.linear(F.relu(F.linear(z, se.fc1.weight, se.fc1.bias)), se.fc2.weight, se.fc2.bias))
        u = u * s[:, :, None, None]
    return torch.clamp(x + scale * u, min=0)  # the ReLU applied to the sum


@pytest.mark.parametrize("hw", [(1, 1), (8, 8), (5, 9), (12, 3)])
def test_se_block_matches_its_equations(hw: tuple[int, int]) -> None:
    torch.manual_seed(0)
    block = SEResidualBlock(32).eval()
    _randomise(block)
    assert isinstance(block.attn, SqueezeExcite) and block.attn.rd_channels == 2  # C/16
    x = torch.randn(3, 32, *hw)
    with torch.no_grad():
        torch.testing.assert_close(block(x), _by_hand(block, x), rtol=1e-5, atol=1e-5)


def test_squeeze_is_global_not_a_1x1_pool() -> None:
    # A change at one far corner must move the gate (a 1x1 AvgPool2d "squeeze" would not even give an (N, C) vector).
    torch.manual_seed(1)
    block = SEResidualBlock(16, attn_kwargs={"rd_ratio": 0.5}).eval()
    x = torch.randn(1, 16, 10, 14)
    seen = []
    block.attn.gate.register_forward_hook(lambda m, i, o: seen.append(o.detach().clone()))
    with torch.no_grad():
        block(x)
        x2 = x.clone()
        x2[..., -1, -1] += 5.0
        block(x2)
    assert seen[0].shape == (1, 16)
    assert (seen[0] - seen[1]).abs().max() > 1e-4


def test_training_mode_uses_batch_statistics_and_backpropagates() -> None:
    torch.manual_seed(2)
    block = SEResidualBlock(16).train()
    x = torch.randn(4, 16, 6, 7, requires_grad=True)
    y = block(x)
    assert y.shape == x.shape and (y >= 0).all()
    y.sum().backward()
    assert all(p.grad is not None for p in block.parameters())


def test_plain_and_other_kinds() -> None:
    torch.manual_seed(3)
    plain = SEResidualBlock(16, attn_layer=None).eval()
    _randomise(plain)
    assert isinstance(plain.attn, nn.Identity)
    x = torch.randn(2, 16, 6, 5)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), _by_hand(plain, x, gate=False), rtol=1e-5, atol=1e-5)
    half = SEResidualBlock(16, None, res_scale=0.5).eval()
    _randomise(half)
    with torch.no_grad():
        torch.testing.assert_close(half(x), _by_hand(half, x, gate=False, scale=0.5), rtol=1e-5, atol=1e-5)
    assert isinstance(SEResidualBlock(16, "eca").attn, EfficientChannelAttn)
    assert isinstance(SEResidualBlock(16, "cbam").attn, CBAM)
    assert SEResidualBlock(64, "se", {"rd_ratio": 0.25}).attn.rd_channels == 16
    with pytest.raises(ValueError, match="unknown attention kind 'nope'.*se"):
        SEResidualBlock(16, "nope")
