"""The typed run format (senet.runs): save / load_run round trips, old checkpoints without the newer fields, and the
one spec -> model resolver (senet.resolve) behind eval, predict, analysis and export."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from senet.errors import SenetError  # noqa: E402
from senet.models import create_model  # noqa: E402
from senet.resolve import model_from_run, resolve_model  # noqa: E402
from senet.runs import CHECKPOINT_FORMAT, Run, is_run_checkpoint, load_run  # noqa: E402
from senet.train import load_checkpoint, model_from_checkpoint, save_checkpoint  # noqa: E402
from senet.train.checkpoint import build_model  # noqa: E402

CLASSES = ["cat", "dog", "frog"]
PRE = {"kind": "tensor", "img_size": 32, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}


def _run(folder: Path, **kw) -> Run:  # noqa: ANN003
    meta = {"senet": "1.0", "torch": "2.x", "git_commit": "abc", "device": "cpu"}
    base = dict(
        path=folder,
        config={"model": "resnet20", "model_kwargs": {}, "task": "classify"},
        classes=CLASSES,
        class_names=["Cat", "Dog", "Frog"],
        preprocess=PRE,
        meta=meta,
        version=Run.version_of(meta),
    )
    base.update(kw)
    return Run(**base)


def test_save_and_checkpoint_round_trip(tmp_path: Path) -> None:
    run = _run(tmp_path)
    run.save()
    assert json.loads((tmp_path / "meta.json").read_text())["git_commit"] == "abc"
    head = load_run(tmp_path, checkpoint=False)
    assert head.config == run.config and head.meta == run.meta and head.checkpoint is None
    model = create_model("resnet20", num_classes=3)
    save_checkpoint({"model": model.state_dict(), "ema": None, **run.checkpoint_fields()}, tmp_path / "last.pt")
    back = load_run(tmp_path / "last.pt")
    assert (back.classes, back.class_names, back.preprocess, back.version) == (
        run.classes,
        run.class_names,
        run.preprocess,
        {"senet": "1.0", "torch": "2.x", "git_commit": "abc"},
    )
    assert back.meta == run.meta and back.path == tmp_path and back.num_classes == 3 and back.input_size == (3, 32, 32)
    rebuilt = model_from_run(back)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(rebuilt(x), model.eval()(x))
    assert is_run_checkpoint(load_checkpoint(tmp_path))


def test_old_checkpoints_still_load(tmp_path: Path) -> None:
    # Written before class_names, preprocess and version existed: the names fall back to the class folders.
    model = create_model("resnet20", num_classes=3)
    old = {
        "format": CHECKPOINT_FORMAT,
        "model": model.state_dict(),
        "config": {"model": "resnet20"},
        "classes": CLASSES,
    }
    torch.save(old, tmp_path / "old.pt")
    run = load_run(tmp_path / "old.pt")
    assert run.class_names == CLASSES and run.preprocess == {} and run.version == {} and run.meta == {}
    assert run.task == "classify" and run.input_size == (3, 32, 32)
    assert isinstance(model_from_checkpoint(run.checkpoint), torch.nn.Module)
    torch.save({"model": model.state_dict()}, tmp_path / "foreign.pt")
    with pytest.raises(SenetError, match="not a `senet train` checkpoint"):
        load_run(tmp_path / "foreign.pt")
    with pytest.raises(SenetError, match="no config.yaml"):
        load_run(tmp_path, checkpoint=False)


def test_metrics_and_result_beside_the_run(tmp_path: Path) -> None:
    run = _run(tmp_path)
    assert run.metrics() == [] and run.result() == {}
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1}\n\n{"epoch": 2}\n')
    (tmp_path / "result.json").write_text('{"status": "done"}')
    assert [r["epoch"] for r in run.metrics()] == [1, 2] and run.result()["status"] == "done"


def test_a_denoiser_has_no_classes(tmp_path: Path) -> None:
    run = _run(tmp_path, config={"model": "denoiser", "task": "denoise"})
    assert run.num_classes is None and run.task == "denoise"


def test_one_resolver(tmp_path: Path) -> None:
    assert build_model is resolve_model
    assert resolve_model("resnet20", 5).fc.out_features == 5
    assert isinstance(resolve_model("_tiny_models:tiny_cnn", 4), torch.nn.Sequential)
    with pytest.raises(SenetError, match="cannot import model"):
        resolve_model("_tiny_models:nope", 4)
    model = create_model("se_resnet20", num_classes=7).eval()
    f = tmp_path / "w.pt"
    torch.save({"model": "se_resnet20", "state_dict": model.state_dict()}, f)
    loaded = resolve_model(str(f)).eval()
    assert loaded.model_name == "se_resnet20"
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(loaded(x), model(x))
