"""senet.cli.main: unknown ``--key value`` tokens go to a command that takes them (``senet train``), else an error."""

from __future__ import annotations

import pytest
import yaml

from senet.cli import main


def test_train_takes_config_overrides(capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "--epochs", "2", "--label-smoothing", "0.1", "--amp=fp32", "--print-config"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert (cfg["epochs"], cfg["label_smoothing"], cfg["amp"]) == (2, 0.1, "fp32")


def test_other_commands_reject_unknown_arguments(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["blocks", "--bogus"])
    assert exc.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err
