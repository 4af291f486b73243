"""``senet convert``: detect, convert, verify, write safetensors with metadata; one summary line + a JSON line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _weights_refs import randomize_

from senet.cli import main
from senet.weights import read_checkpoint


@pytest.fixture(scope="module")
def timm_seresnet18(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    timm = pytest.importorskip("timm")
    ref = randomize_(timm.create_model("seresnet18", num_classes=7)).eval()
    path = tmp_path_factory.mktemp("ckpt") / "seresnet18.pth.tar"
    torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in ref.state_dict().items()}}, path)
    return path, ref


def test_convert_writes_verified_safetensors(timm_seresnet18, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src, ref = timm_seresnet18
    names = tmp_path / "classes.txt"
    names.write_text("\n".join(f"class {i}" for i in range(7)))
    out = tmp_path / "se18.safetensors"
    assert main(["convert", str(src), str(out), "--class-names", str(names)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and "layout timm -> se_resnet18" in lines[0]
    info = json.loads(lines[1])
    assert info["layout"] == "timm" and info["model"] == "se_resnet18" and info["num_classes"] == 7
    assert info["model_kwargs"]["attn_kwargs"]["rd_divisor"] == 8  # timm rounds SE widths to 8
    meta = read_checkpoint(out).metadata
    assert meta["model"] == "se_resnet18" and meta["source_layout"] == "timm" and meta["layout"] == "senet"
    assert meta["class_names"][6] == "class 6" and meta["input_size"] == [3, 224, 224]
    assert meta["mean"] == [0.485, 0.456, 0.406] and meta["interpolation"] == "bilinear"

    from senet import create_model

    model = create_model("se_resnet18", num_classes=7, pretrained=str(out), **meta["model_kwargs"]).eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert (model(x) - ref(x)).abs().max() <= 1e-5


def test_convert_errors_are_one_line(timm_seresnet18, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src, _ = timm_seresnet18
    assert main(["convert", str(src), str(tmp_path / "x.pth")]) == 2
    assert "must end in .safetensors" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "missing.pth"), str(tmp_path / "x.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err
    assert main(["convert", str(src), str(tmp_path / "y.safetensors"), "--model", "resnet50"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "layout timm" in err and "does not fit resnet50" in err
    out = tmp_path / "z.safetensors"
    out.write_bytes(b"")
    assert main(["convert", str(src), str(out)]) == 2
    assert "--force" in capsys.readouterr().err


def test_convert_senet_training_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A `senet train` checkpoint names its model, classes and preprocessing: convert carries them over."""
    from senet import create_model

    model = randomize_(create_model("se_resnet20", num_classes=3, attn_kwargs={"rd_min": 2}))
    ckpt = {
        "format": "senet.train/1",
        "model": model.state_dict(),
        "ema": None,
        "config": {"model": "se_resnet20", "model_kwargs": {"attn_kwargs": {"rd_min": 2}}},
        "classes": ["a", "b", "c"],
        "preprocess": {"kind": "tensor", "img_size": 32, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
        "optimizer": {"state": {}, "param_groups": []},
        "rng": {"python": (3, tuple(range(5)), None), "torch": torch.get_rng_state()},
    }
    src = tmp_path / "last.pt"
    torch.save(ckpt, src)
    out = tmp_path / "run.safetensors"
    assert main(["convert", str(src), str(out)]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["model"] == "se_resnet20" and info["model_kwargs"]["attn_kwargs"] == {"rd_min": 2}
    meta = read_checkpoint(out).metadata
    assert meta["class_names"] == ["a", "b", "c"] and meta["input_size"] == [3, 32, 32]
    assert meta["mean"] == [0.5, 0.5, 0.5] and meta["std"] == [0.25, 0.25, 0.25]
    again = create_model("se_resnet20", num_classes=3, pretrained=str(out), **meta["model_kwargs"])
    for k, v in model.state_dict().items():
        assert torch.equal(again.state_dict()[k], v), k
