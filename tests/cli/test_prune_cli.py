"""``senet prune-attention``: removes the last stage's blocks, reports cost and accuracy, saves a loadable model."""

from __future__ import annotations

import json

import torch
from _research_fixtures import tiny_checkpoint, tiny_folder

from senet.analysis import attention_blocks, prune_attention
from senet.analysis._runtime import load_model
from senet.bench.flops import count_params
from senet.cli import main
from senet.train import load_checkpoint, model_from_checkpoint


def test_prune_last_stage(tmp_path, capsys) -> None:
    data = tiny_folder(tmp_path / "data")
    ckpt = tiny_checkpoint(tmp_path / "ck.pt", data)
    out = tmp_path / "pruned.pt"
    rc = main(["prune-attention", "--checkpoint", str(ckpt), "--stages", "4", "--out", str(out), "--device", "cpu"])
    assert rc == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rep["pruned"] == ["SE_4_1", "SE_4_2", "SE_4_3"]
    orig, _ = load_model(ckpt)
    se_params = sum(count_params(m) for n, m in orig.attention_modules() if n.startswith("SE_4_"))
    assert rep["params_removed"] == se_params > 0 and rep["macs_removed"] > 0
    assert rep["images"] == 12 and 0 <= rep["top1_err_after"] <= 100

    pruned, info = load_model(out)
    assert [n for n, _ in attention_blocks(pruned)] == [f"SE_{s}_{b}" for s in (2, 3) for b in (1, 2, 3)]
    # Whole stages were pruned, so the file also loads the plain `senet eval` way (attn_stages narrowed).
    plain = model_from_checkpoint(load_checkpoint(out))
    x = torch.randn(2, 3, 32, 32)
    prune_attention(orig, ["SE_4_1", "SE_4_2", "SE_4_3"])  # the same surgery by hand on the original weights
    with torch.no_grad():
        assert torch.allclose(plain(x), pruned(x)) and torch.allclose(pruned(x), orig(x))
    assert count_params(plain) == rep["params_after"]


def test_prune_by_specificity_and_errors(tmp_path, capsys) -> None:
    data = tiny_folder(tmp_path / "data")
    ckpt = tiny_checkpoint(tmp_path / "ck.pt", data)
    out = tmp_path / "p.pt"
    base = ["prune-attention", "--checkpoint", str(ckpt), "--out", str(out), "--device", "cpu"]
    assert main([*base, "--max-specificity", "1.0"]) == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(rep["pruned"]) == 9 and set(rep["specificity"]) == set(rep["pruned"])
    pruned, _ = load_model(out)  # every block gone: rebuilt from the saved block list
    assert count_params(pruned) == rep["params_after"]
    assert main(base) == 2
    assert "--stages and/or --max-specificity" in capsys.readouterr().err
    assert main([*base, "--stages", "7"]) == 2
    assert main([*base, "--stages", "x"]) == 2
