"""Configs and command lines with mistakes: unknown keys, wrong types, impossible values, and checkpoints whose
classes or architecture differ from what is asked. Each is a one-line error (exit status 2, no traceback) saying
what to change."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rel import assert_main_error, assert_one_line_error, senet, write_tree  # noqa: E402


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tree(tmp_path_factory.mktemp("rel") / "ds", n=4)


def _train(ds: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--model", "_rel:tiny_net", "--data", str(ds), "--epochs", "1", "--batch-size", "4",
            "--device", "cpu", "--progress", "none", "--output", str(out), "--cache-dir", str(out.parent / "c"),
            *extra]  # fmt: skip


@pytest.mark.parametrize(
    "extra,needles",
    [
        (["--batchsize", "4"], ["unknown config key 'batchsize'", "did you mean 'batch_size'"]),
        (["--epochs-total", "3"], ["unknown config key"]),
        (["--weight-decay", "lots"], ["weight_decay must be a number", "'lots'"]),
        (["--flip", "sometimes"], ["flip must be true or false"]),
        (["--milestones", "30"], ["milestones must be a list"]),
        (["--lr", "-0.1"], ["lr must be positive", "-0.1"]),
        (["--batch-size", "0"], ["batch_size must be positive", "0"]),
        (["--ema", "1.5"], ["ema must be in [0, 1)"]),
        (["--optimizer", "adam"], ["optimizer must be one of sgd, adamw", "'adam'"]),
    ],
    ids=["typo", "unknown", "wrong-type", "bool", "list", "negative-lr", "batch-0", "ema", "choice"],
)
def test_bad_config_values_are_one_line(
    ds: Path, tmp_path: Path, capsys: pytest.CaptureFixture, extra: list[str], needles: list[str]
) -> None:
    assert_main_error(capsys, _train(ds, tmp_path / "run", *extra), *needles)
    assert not (tmp_path / "run").exists()  # nothing started


def test_unknown_key_in_yaml_names_the_file(ds: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = tmp_path / "recipe.yaml"
    cfg.write_text("epochs: 1\nbatchsize: 4\n")
    assert_main_error(capsys, [*_train(ds, tmp_path / "run"), "--config", str(cfg)], str(cfg), "'batchsize'")
    cfg.write_text("epochs: [oops\n")
    assert_main_error(capsys, [*_train(ds, tmp_path / "run"), "--config", str(cfg)], "not valid YAML")


def test_reduction_larger_than_channels(ds: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # r < 1 (rd_ratio > 1) is impossible: one line. r larger than the channel count is clamped to rd_min channels.
    bad = _train(ds, tmp_path / "r1", "--model", "se_resnet20", "--model-kwargs", "{attn_kwargs: {rd_ratio: 2.0}}")
    assert_main_error(capsys, bad, "rd_ratio must be in (0, 1]")
    from senet.models import create_model

    m = create_model("se_resnet20", num_classes=2, attn_kwargs={"rd_ratio": 1 / 1000})
    widths = {mod.fc1.out_features for mod in m.modules() if hasattr(mod, "fc1")}
    assert widths == {4}  # the CIFAR rd_min


def test_checkpoint_of_another_architecture_or_class_set(
    ds: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from senet.cli import main

    run = tmp_path / "run"
    capsys.readouterr()
    assert main(_train(ds, run)) == 0
    # Resume asking for another architecture: the saved weights do not fit it.
    assert_main_error(capsys, [*_train(ds, run, "--resume"), "--model", "resnet20", "--epochs", "2"], "does not fit")
    # Evaluate on a dataset with other classes.
    other = write_tree(tmp_path / "other", n=4, classes=["car", "bus"])
    assert_main_error(
        capsys, ["eval", "--checkpoint", str(run), "--data", str(other), "--device", "cpu"], "classes", "car"
    )
    # A file that is not a training checkpoint at all.
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    assert_main_error(capsys, ["eval", "--checkpoint", str(junk), "--device", "cpu"], str(junk))
    assert_main_error(capsys, ["predict", "--checkpoint", str(tmp_path / "nope.pt"), "x.png"], "does not exist")


def test_real_process_exit_status_and_stderr(ds: Path, tmp_path: Path) -> None:
    # The console entry point itself (not just main()): exit status 2, one stderr line, no traceback.
    p = senet(*_train(ds, tmp_path / "run", "--batch-size", "0"))
    assert_one_line_error(p, "batch_size must be positive")
    p = senet("eval", "--checkpoint", str(tmp_path / "missing.pt"))
    assert_one_line_error(p, "missing.pt", "does not exist")
