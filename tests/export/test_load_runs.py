"""``senet export``'s loader on ``senet train`` checkpoints and ``--num-classes``: the model it rebuilds is the one
``senet eval`` evaluates (the run's model options, its EMA weights)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from senet.export.load import load_model
from senet.models import create_model
from senet.resolve import model_from_run
from senet.runs import Run, load_run
from senet.train.checkpoint import save_checkpoint
from senet.weights import convert_checkpoint

KWARGS = {"attn_position": "post"}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _randomize(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.25)
    return model


@pytest.fixture(scope="module")
def run_ckpt(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module, torch.nn.Module]:
    """A run's ``last.pt`` as the trainer writes it: raw and EMA weights differ, a non-default attention position."""
    folder = tmp_path_factory.mktemp("se_resnet20-s0")
    raw = _randomize(create_model("se_resnet20", num_classes=3, **KWARGS), 0).eval()
    ema = _randomize(create_model("se_resnet20", num_classes=3, **KWARGS), 1).eval()
    run = Run(
        path=folder,
        config={"model": "se_resnet20", "model_kwargs": dict(KWARGS), "ema": 0.999},
        classes=["a", "b", "c"],
        class_names=["a", "b", "c"],
        preprocess={"kind": "tensor", "img_size": 16, "mean": [0.5] * 3, "std": [0.25] * 3},
    )
    state = {"model": raw.state_dict(), "ema": ema.state_dict(), "ema_updates": 1, "epoch": 1}
    path = save_checkpoint({**state, **run.checkpoint_fields()}, folder / "last.pt")
    return path, raw, ema


def _out(model: torch.nn.Module) -> torch.Tensor:
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        return model.eval()(x)


def test_export_loader_rebuilds_the_run_model(run_ckpt) -> None:
    path, raw, ema = run_ckpt
    model, name = load_model(str(path))
    assert name == "se_resnet20" and not model.training
    assert {m.attn_position for m in model.modules() if hasattr(m, "attn_position")} == {"post"}
    assert torch.equal(_out(model), _out(ema))
    assert not torch.equal(_out(model), _out(raw))
    # ... the very model `senet eval` evaluates.
    assert torch.equal(_out(model), _out(model_from_run(load_run(path))))


def test_convert_ships_the_run_model(run_ckpt) -> None:
    path, _, ema = run_ckpt
    conv = convert_checkpoint(path)
    assert conv.model_name == "se_resnet20" and conv.model_kwargs["attn_position"] == "post"
    assert torch.equal(_out(conv.model), _out(ema))


def test_num_classes_replaces_the_run_head(run_ckpt) -> None:
    path, _, ema = run_ckpt
    model, _ = load_model(str(path), num_classes=5)
    assert model.fc.out_features == 5 and torch.count_nonzero(model.fc.weight) == 0
    assert all(torch.equal(v, ema.state_dict()[k]) for k, v in model.state_dict().items() if not k.startswith("fc."))


def test_zoo_model_with_num_classes() -> None:
    model, name = load_model("resnet20", num_classes=5)
    assert name == "resnet20" and model.num_classes == 5 and _out(model).shape == (2, 5)


def test_export_cli_num_classes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from senet.cli import main

    out = tmp_path / "r20.pt2"
    argv = [
        "export",
        "resnet20",
        "--num-classes",
        "5",
        "--format",
        "exported-program",
        "--input-size",
        "3",
        "16",
        "16",
    ]
    assert main([*argv, "--output", str(out)]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["model"] == "resnet20" and out.is_file()
