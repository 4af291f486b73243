"""The recorder leaves the model unchanged, removes its hooks, and its statistics match a direct computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _analysis_tiny import TinyAttnNet

from senet.analysis import Recorder, attention_blocks, default_blocks, gate_module


def _batches(n_batches: int = 3, bs: int = 7, k: int = 5):
    g = torch.Generator().manual_seed(1)
    return [
        (torch.randn(bs, 3, 12, 12, generator=g), torch.randint(0, k, (bs,), generator=g)) for _ in range(n_batches)
    ]


def _hook_count(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


def test_outputs_identical_and_hooks_removed() -> None:
    model = TinyAttnNet().eval()
    x, y = _batches(1)[0]
    with torch.no_grad():
        ref = model(x)
    with Recorder(model, num_classes=5) as rec:
        assert _hook_count(model) == 3
        with torch.no_grad():
            out = model(x)
        rec.update(y)
    assert torch.equal(out, ref)
    assert _hook_count(model) == 0
    with torch.no_grad():
        assert torch.equal(model(x), ref)


def test_stats_equal_direct_computation() -> None:
    model = TinyAttnNet().eval()
    batches = _batches()
    with Recorder(model, num_classes=5) as rec:
        assert rec.run(model, batches) == 21
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches]).numpy()
    with torch.no_grad():
        feats = model.features(x)
        direct = {
            "SE_1_1": model.se.excitation(feats["SE_1_1"]),
            "SE_2_1": model.cbam.channel.excitation(feats["SE_2_1"]),
            "SE_2_2": model.eca.excitation(feats["SE_2_2"]),
        }
    assert list(rec.stats.blocks) == ["SE_1_1", "SE_2_1", "SE_2_2"]
    for name, s in direct.items():
        s = s.double().numpy()
        st = rec.stats.blocks[name]
        for k in range(5):
            if (y == k).any():
                np.testing.assert_allclose(st.mean[k], s[y == k].mean(0), rtol=1e-5, atol=1e-6)
                np.testing.assert_allclose(st.std()[k], s[y == k].std(0), rtol=1e-4, atol=1e-6)
            assert st.count[k] == (y == k).sum()


def test_chosen_blocks_only_and_errors() -> None:
    model = TinyAttnNet()
    with Recorder(model, num_classes=5, blocks=["SE_2_2"]) as rec:
        assert rec.names == ["SE_2_2"] and _hook_count(model) == 1
        with pytest.raises(RuntimeError, match="run the model first"):
            rec.update(torch.tensor([0]))
        model(torch.randn(2, 3, 8, 8))
        with pytest.raises(ValueError, match="2 excitation rows but 3 labels"):
            rec.update(torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="unknown attention block"):
        Recorder(model, num_classes=5, blocks=["SE_9_9"])
    with pytest.raises(ValueError, match="no attention blocks"):
        Recorder(torch.nn.Linear(2, 2), num_classes=2)


def test_discovery_without_attention_modules() -> None:
    net = torch.nn.Sequential(TinyAttnNet().stem, TinyAttnNet().cbam.__class__(8, rd_ratio=0.5))
    names = [n for n, _ in attention_blocks(net)]
    assert names == ["1"]  # the outer CBAM, not its inner channel/spatial parts
    assert gate_module(net[1]) is net[1].channel.gate


def test_default_blocks_paper_rule() -> None:
    resnet50 = [f"SE_{s}_{b}" for s, n in zip((2, 3, 4, 5), (3, 4, 6, 3)) for b in range(1, n + 1)]
    assert default_blocks(resnet50) == ["SE_2_3", "SE_3_4", "SE_4_6", "SE_5_1", "SE_5_2", "SE_5_3"]
    resnet20 = [f"SE_{s}_{b}" for s in (1, 2, 3) for b in (1, 2, 3)]
    assert default_blocks(resnet20) == ["SE_1_3", "SE_2_3", "SE_3_1", "SE_3_2", "SE_3_3"]
    assert default_blocks(["layer1.se", "layer2.se"]) == ["layer1.se", "layer2.se"]
