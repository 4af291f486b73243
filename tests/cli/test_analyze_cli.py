"""``senet analyze`` end to end on a tiny folder and checkpoint: npz, three figures, JSON line."""

from __future__ import annotations

import json

import numpy as np
from _research_fixtures import CLASSES, tiny_checkpoint, tiny_folder

from senet.analysis import load_stats
from senet.cli import main


def test_analyze_cli(tmp_path, capsys) -> None:
    data = tiny_folder(tmp_path / "data")
    ckpt = tiny_checkpoint(tmp_path / "ck.pt", data)
    out = tmp_path / "an"
    rc = main(["analyze", "--checkpoint", str(ckpt), "--out", str(out), "--device", "cpu", "--batch-size", "5"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["images"] == 12
    assert res["plotted"] == ["SE_2_3", "SE_3_3", "SE_4_1", "SE_4_2", "SE_4_3"]
    for f in res["figures"]:
        assert open(f, "rb").read(4) == b"\x89PNG"
    stats = load_stats(out / "excitations.npz")
    assert stats.class_names == CLASSES and len(stats.blocks) == 9
    assert all(int(s.count.sum()) == 12 for s in stats.blocks.values())
    spec = [b["specificity"] for b in res["blocks"]]
    assert all(0.0 <= v <= 1.0 for v in spec) and max(spec) > 0  # classes differ in colour: some block notices
    assert np.all(stats.blocks["SE_4_3"].mean > 0)


def test_analyze_cli_max_images_and_errors(tmp_path, capsys) -> None:
    data = tiny_folder(tmp_path / "data")
    ckpt = tiny_checkpoint(tmp_path / "ck.pt", data)
    args = ["analyze", "--checkpoint", str(ckpt), "--out", str(tmp_path / "a"), "--device", "cpu"]
    assert main([*args, "--max-images", "6", "--blocks", "SE_2_1,SE_4_3", "--classes", "dog,frog"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["images"] == 6 and res["plotted"] == ["SE_2_1", "SE_4_3"]
    stats = load_stats(tmp_path / "a" / "excitations.npz")
    assert stats.blocks["SE_2_1"].count.tolist() == [2, 2, 2]  # a per-class quota, not the first 6 files
    assert main([*args, "--blocks", "SE_9_9"]) == 2
    assert "unknown block(s) SE_9_9" in capsys.readouterr().err
    assert main([*args, "--classes", "whale"]) == 2
    assert main(["analyze", "--checkpoint", str(tmp_path / "missing.pt")]) == 2
    assert "missing.pt" in capsys.readouterr().err


def test_analyze_reports_how_far_retrofitted_blocks_moved_from_identity(tmp_path, capsys) -> None:
    import torch

    from senet.retrofit import build_retrofit_model
    from senet.train.checkpoint import save_checkpoint

    data = tiny_folder(tmp_path / "data")
    ckpt = tiny_checkpoint(tmp_path / "ck.pt", data)
    blob = torch.load(ckpt, weights_only=True)
    model, _ = build_retrofit_model("senet:resnet20", num_classes=3, attn_layer="se", init="identity")
    with torch.no_grad():
        model.layer1[0].attn.gamma.fill_(0.5)  # one site has moved halfway to its SE block
    cfg = dict(blob["config"], model="resnet20", retrofit="senet:resnet20", model_kwargs={"attn_layer": "se"})
    save_checkpoint(dict(blob, model=model.state_dict(), config=cfg), tmp_path / "rf.pt")
    out = tmp_path / "an"
    args = ["analyze", "--checkpoint", str(tmp_path / "rf.pt"), "--out", str(out), "--device", "cpu"]
    assert main([*args, "--batch-size", "6"]) == 0
    blocks = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["blocks"]
    moved = [b for b in blocks if b["gamma"]]
    assert len(moved) == 1 and moved[0]["gamma"] == 0.5
    assert abs(moved[0]["scale_dev"] - 0.5 * (1 - moved[0]["gate_mean"])) < 1e-9 and moved[0]["scale_dev"] > 0
    assert all(b["gamma"] == 0.0 and b["scale_dev"] == 0.0 for b in blocks if b is not moved[0])
