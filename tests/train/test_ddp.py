"""DDP: 2 gloo processes on CPU (torchrun) train to the same metrics and weights as 1 process on the same global
batch. The model has no BatchNorm, whose per-rank statistics would legitimately differ."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from _tiny_data import write_tree  # noqa: E402

HERE = Path(__file__).resolve().parent


def _run(args: list[str], tmp: Path) -> None:
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        OMP_NUM_THREADS="1",
        SENET_CACHE_DIR=str(tmp / "cache"),
    )
    r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path: Path) -> None:
    write_tree(tmp_path / "ds", n_train=16, n_test=6)
    common = [
        "-m",
        "senet",
        "train",
        "--model",
        "_tiny_models:tiny_cnn",
        "--data",
        str(tmp_path / "ds"),
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--lr",
        "0.1",
        "--deterministic",
        "true",
        "--device",
        "cpu",
        "--progress",
        "none",
        "--threads",
        "1",
        "--amp",
        "fp32",  # the comparison is of DDP vs one process; bf16 (auto on AMX CPUs) rounds them apart
    ]
    _run([sys.executable, *common, "--output", str(tmp_path / "one")], tmp_path)
    _run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            *common,
            "--output",
            str(tmp_path / "two"),
        ],
        tmp_path,
    )
    rows = {
        k: [json.loads(x) for x in (tmp_path / k / "metrics.jsonl").read_text().splitlines()] for k in ("one", "two")
    }
    assert len(rows["one"]) == len(rows["two"]) == 2
    for a, b in zip(rows["one"], rows["two"]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["train_top1"] == pytest.approx(b["train_top1"])
        assert a["eval_top1"] == pytest.approx(b["eval_top1"]) and a["eval_loss"] == pytest.approx(
            b["eval_loss"], rel=1e-5
        )
    assert json.loads((tmp_path / "two" / "meta.json").read_text())["world_size"] == 2
    w1 = torch.load(tmp_path / "one" / "last.pt", weights_only=True)["model"]
    w2 = torch.load(tmp_path / "two" / "last.pt", weights_only=True)["model"]
    for k in w1:
        torch.testing.assert_close(w1[k], w2[k], atol=1e-5, rtol=1e-5)
