"""Pruning replaces exactly the chosen attention blocks by identity."""

from __future__ import annotations

import pytest
import torch
from _analysis_tiny import TinyAttnNet

from senet.analysis import prune_attention, select_blocks
from senet.bench.flops import count_params
from senet.errors import SenetError


def test_select_by_stage_and_specificity() -> None:
    names = ["SE_1_1", "SE_2_1", "SE_2_2"]
    assert select_blocks(names, stages=[2]) == ["SE_2_1", "SE_2_2"]
    spec = {"SE_1_1": 0.01, "SE_2_1": 0.3, "SE_2_2": 0.05}
    assert select_blocks(names, max_specificity=0.1, specificity=spec) == ["SE_1_1", "SE_2_2"]
    assert select_blocks(names, stages=[2], max_specificity=0.1, specificity=spec) == ["SE_2_2"]
    with pytest.raises(SenetError, match="stages"):
        select_blocks(names, stages=[5])
    with pytest.raises(SenetError, match="choose blocks"):
        select_blocks(names)


def test_prune_replaces_by_identity() -> None:
    model = TinyAttnNet().eval()
    x = torch.randn(2, 3, 8, 8)
    before = count_params(model)
    cbam_params = count_params(model.cbam)
    paths = prune_attention(model, ["SE_2_1"])
    assert paths == ["cbam"]
    assert isinstance(model.cbam, torch.nn.Identity)
    assert count_params(model) == before - cbam_params
    with torch.no_grad():
        expected = model.fc(model.eca(model.conv2(model.se(model.stem(x)))).mean((2, 3)))
        assert torch.equal(model(x), expected)
    with pytest.raises(ValueError, match="unknown attention block"):
        prune_attention(TinyAttnNet(), ["nope"])


def test_prune_inside_sequential() -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 1), TinyAttnNet().se.__class__(8))
    prune_attention(net, ["1"])
    assert isinstance(net[1], torch.nn.Identity)
