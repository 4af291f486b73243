"""Pruning replaces exactly the chosen attention blocks by identity."""

from __future__ import annotations

from pathlib import Path

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


def _se_checkpoint(path: Path) -> Path:
    """A ``senet train``-format checkpoint of a freshly initialised se_resnet20 (3 classes, 32x32 input)."""
    from senet.train import config_to_dict, load_config, save_checkpoint
    from senet.train.checkpoint import build_model

    torch.manual_seed(0)
    model = build_model("se_resnet20", 3)
    cfg = config_to_dict(load_config(None, {"model": "se_resnet20", "data": str(path.parent / "data")}))
    state = {
        "model": model.state_dict(),
        "ema": None,
        "config": cfg,
        "classes": ["a", "b", "c"],
        "class_names": ["a", "b", "c"],
        "preprocess": {"kind": "tensor", "img_size": 32, "mean": [0.5] * 3, "std": [0.25] * 3},
        "epoch": 1,
    }
    return save_checkpoint(state, path)


def test_save_pruned_every_block_loads_as_plain_network(tmp_path) -> None:
    from senet.analysis import attention_blocks
    from senet.analysis._runtime import load_model, save_pruned
    from senet.resolve import model_from_run
    from senet.runs import load_run

    model, info = load_model(_se_checkpoint(tmp_path / "ck.pt"))
    names = [n for n, _ in attention_blocks(model)]
    prune_attention(model, names)
    out = save_pruned(model, info, names, tmp_path / "pruned.pt")
    # The plain `senet eval` path must build the network without attention, not the default SE.
    plain = model_from_run(load_run(out))
    again, _ = load_model(out)
    assert list(attention_blocks(plain)) == []
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(plain(x), model(x)) and torch.equal(again(x), model(x))
