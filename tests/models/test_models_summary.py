"""senet.models.summary and the ``senet summary`` command."""

from __future__ import annotations

import json

import pytest
import torch

from senet.bench.flops import count_macs, count_params
from senet.cli import main
from senet.errors import SenetError
from senet.models import create_model, summary


def test_totals_match_count_macs_and_attention_is_the_difference() -> None:
    se, plain = create_model("se_resnet20"), create_model("resnet20")
    s, p = summary(se, (3, 32, 32)), summary(plain, (3, 32, 32))
    x = torch.randn(1, 3, 32, 32)
    ref = count_macs(se, x)
    assert (s.macs, s.elementwise, s.params) == (ref.macs, ref.elementwise, count_params(se))
    # SE twin = baseline + attention: the attention share is exactly the difference.
    assert s.attn_params == s.params - p.params > 0
    assert s.attn_macs == s.macs - p.macs > 0
    assert s.attn_elementwise == s.elementwise - p.elementwise > 0
    assert s.attn_blocks == 9 and s.attn_names[0] == "SE_2_1"
    assert p.attn_blocks == 0 and p.attn_params == 0 and p.attn_mac_share == 0
    assert 0 < s.attn_param_share < 0.05 and 0 < s.attn_mac_share < 0.05


def test_rows_depth_shapes_and_attention_rows() -> None:
    model = create_model("se_resnet20")
    rows = {r.name: r for r in summary(model, (3, 32, 32)).rows}
    assert rows["conv1"].output_shape == (1, 16, 32, 32)
    assert rows["layer3"].output_shape == (1, 64, 8, 8)
    assert rows["fc"].output_shape == (1, 10) and rows["fc"].macs == 640
    attn = rows["layer1.0.attn"]
    assert attn.is_attention and attn.is_leaf and attn.params == count_params(model.layer1[0].attn)
    assert "layer1.0.attn.fc1" not in rows  # attention blocks are one row
    assert attn.elementwise > 0
    # The leaf rows add up to the totals (containers repeat their children).
    s = summary(model, (3, 32, 32))
    leaves = [r for r in s.rows if r.is_leaf]
    assert sum(r.params for r in leaves) == s.params
    assert sum(r.macs for r in leaves) == s.macs
    top = summary(model, (3, 32, 32), depth=1).rows
    assert all(r.depth == 1 for r in top) and sum(r.params for r in top) == s.params


def test_any_module_and_batch_size() -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU())
    s = summary(net, (3, 10, 10), batch_size=2)
    assert s.rows[0].output_shape == (2, 8, 8, 8)
    assert s.macs == 2 * 8 * 8 * 8 * 27
    assert s.attn_blocks == 0


@pytest.mark.parametrize(("kw", "match"), [({"input_size": (3, 0, 4)}, "input size"), ({"depth": 0}, "depth")])
def test_bad_arguments(kw: dict, match: str) -> None:
    with pytest.raises(SenetError, match=match):
        summary(torch.nn.Conv2d(3, 3, 1), **{"input_size": (3, 4, 4), **kw})


def test_cli_summary_prints_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "se_resnet20", "--depth", "3"]) == 0
    out = capsys.readouterr().out
    assert "layer1.0.attn *" in out and "attention: 9 blocks" in out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["model"] == "se_resnet20" and result["input_size"] == [3, 32, 32]
    assert result["params"] == count_params(create_model("se_resnet20"))
    assert result["attn_blocks"] == 9


def test_cli_summary_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            ["summary", "se_resnet20", "--attn-layer", "none", "--num-classes", "100", "--input-size", "3", "16", "16"]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["attn_blocks"] == 0 and result["input_size"] == [3, 16, 16]
    assert main(["summary", "wrn*"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"models": ["wrn16_8"]}


def test_cli_summary_user_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "se_resnt20"]) == 2
    err = capsys.readouterr().err
    assert "se_resnet20" in err and "Traceback" not in err
    assert main(["summary", "zzz*"]) == 2


def test_cli_costs_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "*wrn16_8", "--costs"]) == 0
    out = capsys.readouterr().out
    costs = json.loads(out.strip().splitlines()[-1])["costs"]
    assert [c["model"] for c in costs] == ["se_wrn16_8", "wrn16_8"]
    for c in costs:
        model = create_model(c["model"])
        assert c["params"] == count_params(model)
        assert c["macs"] == count_macs(model, torch.randn(1, 3, 32, 32)).macs
    assert "| wrn16_8 | 32x32 | 10.961 |" in out
