"""`senet train --retrofit`: start from an existing network's weights, attention inserted, backbone frozen first."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from _tiny_data import write_tree  # noqa: E402

from senet.cli import main  # noqa: E402
from senet.train import load_checkpoint, model_from_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("retrofit_train")
    write_tree(root / "tree", n_train=12, n_test=6)
    torch.manual_seed(0)
    weights = root / "resnet18.pt"
    torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), weights)
    return {"root": root, "data": root / "tree", "weights": weights}


def _train(setup: dict, out: Path, *extra: str) -> int:
    argv = ["train", "--retrofit", "torchvision:resnet18", "--weights", str(setup["weights"]), "--data"]
    argv += [str(setup["data"]), "--batch-size", "12", "--lr", "0.05", "--output", str(out), "--progress", "none"]
    argv += ["--cache-dir", str(setup["root"] / "cache"), *extra]
    return main(argv)


def test_frozen_epoch_trains_only_attention_and_classifier(setup: dict) -> None:
    out = setup["root"] / "frozen"
    assert _train(setup, out, "--epochs", "1", "--freeze-epochs", "1") == 0
    original = torch.load(setup["weights"], weights_only=True)
    trained = load_checkpoint(out)["model"]
    assert torch.equal(trained["conv1.weight"], original["conv1.weight"])  # the backbone did not move
    assert torch.equal(trained["layer4.1.conv2.weight"], original["layer4.1.conv2.weight"])
    assert not torch.equal(trained["fc.weight"], original["fc.weight"])  # the classifier did
    new = [k for k in trained if k not in original]
    assert new and any(not torch.equal(trained[k], torch.zeros_like(trained[k])) for k in new if "gamma" in k)


def test_then_everything_trains_and_the_run_reloads(setup: dict, capsys: pytest.CaptureFixture) -> None:
    out = setup["root"] / "full"
    assert _train(setup, out, "--epochs", "2", "--freeze-epochs", "1") == 0
    original = torch.load(setup["weights"], weights_only=True)
    ckpt = load_checkpoint(out)
    assert not torch.equal(ckpt["model"]["conv1.weight"], original["conv1.weight"])
    model = model_from_checkpoint(ckpt)  # rebuilt from the run alone, without the original weights file
    assert any(n.startswith("SE_") for n, _ in model.attention_modules())
    assert main(["eval", "--checkpoint", str(out), "--data", str(setup["data"])]) == 0


def test_weights_that_do_not_fit_the_model_are_a_one_line_error(setup: dict, capsys: pytest.CaptureFixture) -> None:
    # torchvision resnet18 weights given to the default zoo model (resnet20) without --retrofit.
    argv = ["train", "--weights", str(setup["weights"]), "--data", str(setup["data"]), "--batch-size", "12"]
    rc = main([*argv, "--output", str(setup["root"] / "misfit"), "--cache-dir", str(setup["root"] / "cache")])
    err = capsys.readouterr().err
    assert rc == 2 and "--weights" in err and "resnet20" in err and "Traceback" not in err
