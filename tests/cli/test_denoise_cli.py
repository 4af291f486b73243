"""`senet train --task denoise`, `senet eval` and `senet denoise` end to end on generated images, and exact resume."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from _tiny_data import write_tar, write_tree  # noqa: E402

from senet.cli import main  # noqa: E402
from senet.train import load_config, train  # noqa: E402
from senet.train.ledger import read_rows  # noqa: E402

pytest.importorskip("torchmetrics")


def _args(data: Path, out: Path, cache: Path) -> list[str]:
    return [
        "train",
        "--task", "denoise",
        "--model", "se_denoiser",
        "--model-kwargs", "{width: 8, blocks: 1}",
        "--data", str(data),
        "--epochs", "2",
        "--batch-size", "16",
        "--optimizer", "adamw",
        "--lr", "0.003",
        "--weight-decay", "0",
        "--crop", "12",
        "--noise-sigma", "15-50",
        "--output", str(out),
        "--progress", "none",
        "--cache-dir", str(cache),
        "--threads", "1",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("denoise")
    write_tree(root / "tree", n_train=16, n_test=4, size=16)  # 48 / 12 images: 3 steps per epoch
    archive = write_tar(root / "tree", root / "tiny.tar.gz")
    ledger = root / "denoise.jsonl"
    out = root / "run"
    assert main([*_args(archive, out, root / "cache"), "--ledger", str(ledger)]) == 0
    return {"root": root, "archive": archive, "out": out, "ledger": ledger}


def test_train_reports_psnr_ssim_at_each_sigma_and_fills_the_ledger(run: dict) -> None:
    result = json.loads((run["out"] / "result.json").read_text())
    assert result["status"] == "done" and result["task"] == "denoise" and "top1" not in result
    assert set(result["by_sigma"]) == {"15", "25", "50"} and result["sigma"] == "25"  # middle of 15-50
    for s, m in result["by_sigma"].items():
        assert 0 < m["ssim"] <= 1 and m["psnr"] > 5
        # Unclipped Gaussian noise of sigma s on [0, 1] images: 20 log10(255 / s) dB.
        assert m["psnr_noisy"] == pytest.approx(20 * torch.log10(torch.tensor(255 / float(s))).item(), abs=0.5)
    assert result["psnr_gain"] == pytest.approx(result["psnr"] - result["psnr_noisy"], abs=1e-3)
    header = (run["out"] / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train_psnr", "eval_psnr", "eval_psnr_noisy", "eval_ssim", "eval_psnr_s50"} <= set(header)
    (row,) = read_rows(run["ledger"])
    assert row["task"] == "denoise" and row["kind"] == "se" and row["psnr"] == result["psnr"]
    assert row["psnr_gain"] == result["psnr_gain"] and "top1" not in row


def test_eval_reproduces_the_training_evaluation(run: dict, capsys: pytest.CaptureFixture) -> None:
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(run["out"]), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    r = json.loads(out.strip().splitlines()[-1])
    result = json.loads((run["out"] / "result.json").read_text())
    assert r["n"] == 12 and "noisy PSNR dB" in out
    for s, m in result["by_sigma"].items():
        assert r["by_sigma"][s]["psnr"] == pytest.approx(m["psnr"], abs=2e-4)
        assert r["by_sigma"][s]["ssim"] == pytest.approx(m["ssim"], abs=2e-4)
    assert main(["eval", "--checkpoint", str(run["out"]), "--device", "cpu", "--sigmas", "5"]) == 0
    assert set(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["by_sigma"]) == {"5"}


def test_denoise_writes_pngs(run: dict, capsys: pytest.CaptureFixture) -> None:
    from torchvision.io import decode_png, read_file

    images = sorted((run["root"] / "tree" / "test").rglob("*.png"))[:2]
    dest = run["root"] / "clean"
    capsys.readouterr()
    argv = ["denoise", *map(str, images), "--checkpoint", str(run["out"] / "last.pt"), "--out", str(dest)]
    assert main([*argv, "--sigma", "25"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [Path(x["out"]).name for x in r["images"]] == [p.name for p in images]
    for item, src in zip(r["images"], images):
        for key in ("out", "noisy"):
            img = decode_png(read_file(item[key]))
            assert img.shape == decode_png(read_file(str(src))).shape and img.dtype == torch.uint8
        assert item["psnr_noisy"] == pytest.approx(20.17, abs=1.0)
    assert main(argv) == 0 and "psnr" not in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["images"][0]
    assert main(["predict", str(images[0]), "--checkpoint", str(run["out"])]) == 2
    assert "is a denoiser, not a classifier" in capsys.readouterr().err


def test_denoise_refuses_to_overwrite_inputs_or_its_own_outputs(
    run: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import shutil

    src = sorted((run["root"] / "tree" / "test").rglob("*.png"))[0]
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        shutil.copy(src, tmp_path / d / "x.png")
    shutil.copy(src, tmp_path / "a" / "x_noisy.png")
    ckpt = ["--checkpoint", str(run["out"] / "last.pt")]
    a, b, a_noisy = (str(tmp_path / p) for p in ("a/x.png", "b/x.png", "a/x_noisy.png"))
    before = (tmp_path / "a" / "x.png").read_bytes()
    capsys.readouterr()
    cases = [
        ([a, b, "--out", str(tmp_path / "o1")], "would both be written to"),  # same stem, two folders
        ([b, a_noisy, "--out", str(tmp_path / "o2"), "--sigma", "25"], "would both be written to"),  # x_noisy.png
        ([a, "--out", str(tmp_path / "a")], "would overwrite the input"),  # --out is the input's folder
    ]
    for argv, message in cases:
        assert main(["denoise", *argv, *ckpt]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "a" / "x.png").read_bytes() == before
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_interrupted_run_resumes_exactly(run: dict) -> None:
    root = run["root"]
    args = _args(run["archive"], root / "cut", root / "cache")
    overrides = {args[i][2:].replace("-", "_"): args[i + 1] for i in range(1, len(args), 2)}
    r = train(load_config(None, overrides), stop_after_steps=4, print_fn=lambda *a: None)  # mid-epoch 2
    assert r["status"] == "interrupted" and r["step"] == 1
    assert main([*args, "--resume"]) == 0
    a = torch.load(run["out"] / "last.pt", weights_only=True)["model"]
    b = torch.load(root / "cut" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((root / "cut" / "result.json").read_text())["psnr"] == pytest.approx(
        json.loads((run["out"] / "result.json").read_text())["psnr"]
    )
