"""benchmarks/airbench_reference.py (the public recipe, standalone) and benchmarks/speedrun.py's sweep bookkeeping."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def ab() -> ModuleType:
    return _script("airbench_reference")


def test_reference_network_is_the_airbench_layout(ab: ModuleType) -> None:
    from senet.models import create_model

    net = ab.make_net(ab.Hyp())
    # Same layout as senet's plain SpeedNet, which was checked against the public code (1,972,792 parameters).
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in create_model("speednet").parameters())
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert "0.bias" in trainable and "0.weight" not in trainable
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(not m.weight.requires_grad and m.momentum == pytest.approx(0.4) and m.eps == 1e-12 for m in bns)


def test_whitening_filters_decorrelate_the_patches(ab: ModuleType) -> None:
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(3, 3, generator=g)
    x = torch.einsum("ij,njhw->nihw", mix, torch.randn(64, 3, 16, 16, generator=g))  # correlated channels
    conv = nn.Conv2d(3, 24, 2)
    ab.init_whitening(conv, x, eps=1e-6)
    w = conv.weight.detach()
    assert torch.equal(w[12:], -w[:12])
    out = nn.functional.conv2d(x, w[:12]).permute(0, 2, 3, 1).reshape(-1, 12)
    cov = out.T @ out / out.shape[0]  # uncentred, as the filters were made
    torch.testing.assert_close(cov, torch.eye(12), atol=2e-3, rtol=0)


def test_alternating_flip_loader(ab: ModuleType) -> None:
    n = 64
    imgs = torch.zeros(n, 3, 8, 8, dtype=torch.uint8)
    imgs[..., :4] = 200  # bright left half: a flip shows in the left column
    hyp = ab.Hyp(batch_size=16, translate=0)
    loader = ab.AlternatingFlipLoader(imgs, torch.arange(n), hyp, torch.Generator().manual_seed(1), torch.float32)
    flipped = torch.zeros(3, n, dtype=torch.bool)
    for e in range(3):
        for x, y in loader.epoch(e):
            assert x.shape == (16, 3, 8, 8) and x.is_contiguous(memory_format=torch.channels_last)
            flipped[e, y] = x[:, 0, 0, 0] < x[:, 0, 0, -1]
    assert torch.equal(flipped[1], ~flipped[0]) and torch.equal(flipped[2], flipped[0])
    assert 16 < int(flipped[0].sum()) < 48
    # With translation: every crop is a window of the reflect-padded image at an offset in [-2, 2]^2.
    ramp = torch.arange(8, dtype=torch.uint8).mul(20).view(1, 1, 1, 8).expand(n, 3, 8, 8).contiguous()
    hyp = ab.Hyp(batch_size=64, translate=2)
    loader = ab.AlternatingFlipLoader(ramp, torch.arange(n), hyp, torch.Generator().manual_seed(2), torch.float32)
    (x, _), *_ = list(loader.epoch(0))
    raw = (x * torch.tensor(ab.CIFAR_STD).view(1, 3, 1, 1) + torch.tensor(ab.CIFAR_MEAN).view(1, 3, 1, 1)) * 255
    padded = nn.functional.pad(ramp[:1].float(), (2, 2, 2, 2), mode="reflect")[0, 0, 0]
    windows = [padded[o : o + 8] for o in range(5)] + [padded[o : o + 8].flip(0) for o in range(5)]
    for row in raw.round()[:, 0, 0]:
        assert any(torch.equal(row, w) for w in windows)


def test_lr_schedule_is_the_public_triangle(ab: ModuleType) -> None:
    hyp = ab.Hyp()
    assert [ab.lr_factor(s, 476, hyp) for s in (0, 109, 476)] == pytest.approx([0.2, 1.0, 0.07])


def test_tiny_run_learns_and_prints_one_json_row(
    ab: ModuleType, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    ledger = tmp_path / "speedrun.jsonl"
    assert ab.main(["--tiny", "--device", "cpu", "--ledger", str(ledger)]) == 0
    out, err = capsys.readouterr()
    (line,) = out.strip().splitlines()
    row = json.loads(line)
    assert row["model"] == "airbench94-reference" and row["kind"] == "none" and row["amp"] == "bf16"
    assert row["steps"] == 16 and row["exact_recipe"] is False and row["train_images"] == 512
    assert row["top1"] > 40.0  # 10 tinted-noise classes, chance is 10 %
    assert row["train_s"] > 0 and row["eval_s"] > 0 and row["machine"]
    try:
        import senet.train.ledger  # noqa: F401
    except ImportError:
        assert "rows are printed, not appended" in err and not ledger.exists()
    else:
        assert json.loads(ledger.read_text())["top1"] == row["top1"]
        ab.main(["--tiny", "--device", "cpu", "--ledger", str(ledger)])
        assert "already in" in capsys.readouterr().err  # a ledger row is not run twice


def test_speedrun_sweep_records_nothing_for_an_interrupted_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    import senet.train.trainer

    calls = []

    def fake_train(cfg):  # noqa: ANN001, ANN202 - stopped before its first epoch: no metrics.jsonl exists
        calls.append(cfg.model)
        return {"status": "interrupted" if cfg.model == "se_speednet" else "non_finite_loss", "epoch": 1, "step": 3}

    monkeypatch.setattr(senet.train.trainer, "train", fake_train)
    sr = _script("speedrun")
    out = tmp_path / "sweep.jsonl"
    sr.main(
        ["--seeds", "0-1", "--models", "speednet", "se_speednet", "--ledger", str(out), "--runs-dir", str(tmp_path)]
    )
    text = capsys.readouterr().out
    assert not out.exists()
    assert calls == ["speednet", "se_speednet"]  # a failed run moves on; an interrupted one ends the sweep
    assert "ended 'non_finite_loss', not recorded" in text and "interrupted, not recorded" in text and "resume" in text


def test_bench_mobile_prints_ratios_to_the_plain_net(capsys: pytest.CaptureFixture) -> None:
    rows = _script("bench_mobile").main(
        ["--models", "mobilenet_v3_small", "--size", "32", "--repeats", "1", "--calls", "1"]
    )
    assert [r[1] for r in rows] == ["none", "se", "eca"] and rows[0][3] == "1.000"
    assert all(float(r[2]) > 0 for r in rows)
    assert "| mobilenet_v3_small | se |" in capsys.readouterr().out


def test_script_user_error_is_one_line(tmp_path: Path) -> None:
    import subprocess

    cmd = [sys.executable, str(BENCH / "speedrun.py"), "--models", "resnet20", "--seeds", "0"]
    cmd += ["--ledger", str(tmp_path / "l.jsonl"), "--runs-dir", str(tmp_path / "runs")]
    for extra, message in [
        (["--set", "channels_last=maybe"], "channels_last must be one of auto, true, false, not 'maybe'"),
        (["--config", str(tmp_path / "nope.yaml")], "nope.yaml' does not exist"),
    ]:
        r = subprocess.run(cmd + extra, capture_output=True, text=True, timeout=300)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("speedrun.py: error: ")
        assert message in r.stderr


def test_layout_benchmark_prints_both_layouts(capsys: pytest.CaptureFixture[str]) -> None:
    assert _script("layout").main(["--models", "resnet20", "--batch-size", "4", "--steps", "1", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "| resnet20 |" in out and "channels_last / contiguous" in out
