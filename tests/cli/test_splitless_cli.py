"""`senet train --val-fraction / --train-split / --val-split` and `senet eval --data FOLDER` on folders without
train/ and val/, end to end through the command line (tiny network, generated images)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "data"))
sys.path.insert(0, str(HERE.parent / "reliability"))
from _rel import assert_main_error  # noqa: E402
from _tiny_data import write_class_folder  # noqa: E402

from senet.cli import main  # noqa: E402


def _train(data: Path, out: Path, *flags: str) -> int:
    argv = ["train", "--model", "_rel:tiny_net", "--data", str(data), "--epochs", "1", "--batch-size", "4",
            "--device", "cpu", "--progress", "none", "--output", str(out), "--cache-dir", str(out.parent / "c"),
            *flags]  # fmt: skip
    return main(argv)


def _last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_val_fraction_run_eval_and_resume_share_one_split(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = write_class_folder(tmp_path / "my-photos", {"cat": 8, "dog": 8, "frog": 4})
    run = tmp_path / "run"
    assert _train(root, run, "--val-fraction", "0.25") == 0
    split = json.loads((run / "split.json").read_text())
    assert len(split["files"]["val"]) == 2 + 2 + 1
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["val_fraction"] == 0.25 and cfg["dataset"] == "my-photos"  # the folder read, not "cifar10"
    capsys.readouterr()

    assert main(["eval", "--checkpoint", str(run), "--plot", "none", "--device", "cpu"]) == 0
    r = _last_json(capsys.readouterr().out)
    assert r["n"] == 5 and set(r["per_class"]) == {"cat", "dog", "frog"}

    # New images in the folder change neither the resumed run's split nor what eval holds out.
    write_class_folder(root, {"cat": 12, "dog": 12, "frog": 8}, seed=7)
    assert _train(root, run, "--resume", "--epochs", "2") == 0
    assert json.loads((run / "split.json").read_text()) == split
    assert json.loads((run / "result.json").read_text())["epochs_done"] == 2
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(run / "last.pt"), "--plot", "none", "--device", "cpu"]) == 0
    assert _last_json(capsys.readouterr().out)["n"] == 5

    # Another split-less folder: every image, classes by name (a subset is fine), the top confusions by name.
    other = write_class_folder(tmp_path / "phone", {"dog": 3, "frog": 2}, seed=3)
    assert main(["eval", "--checkpoint", str(run), "--data", str(other), "--plot", "none", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    r = _last_json(out)
    assert r["n"] == 5 and r["per_class"]["cat"] is None
    wrong = sum(x["count"] for x in r["top_confusions"])
    assert wrong == round(5 * (100 - r["top1"]) / 100)
    assert all(x["true"] in ("dog", "frog") and x["predicted"] != x["true"] for x in r["top_confusions"])
    if wrong:
        assert "most confused pairs" in out

    write_class_folder(other, {"wolf": 1})
    assert_main_error(capsys, ["eval", "--checkpoint", str(run), "--data", str(other), "--device", "cpu"],
                      "class folder 'wolf'", "not one of the checkpoint's 3 classes")  # fmt: skip


def test_cross_domain_splits_with_differing_classes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pacs = tmp_path / "PACS"
    write_class_folder(pacs / "photo", {"dog": 4, "horse": 4, "house": 4})
    write_class_folder(pacs / "sketch", {"dog": 3, "horse": 3, "person": 2}, seed=1)
    run = tmp_path / "run"
    assert _train(pacs, run, "--train-split", "photo", "--val-split", "sketch") == 0
    err = capsys.readouterr().err
    assert "only in photo: ['house']" in err and "only in sketch: ['person']" in err
    result = json.loads((run / "result.json").read_text())
    assert result["status"] == "done"
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(run), "--plot", "none", "--device", "cpu"]) == 0
    r = _last_json(capsys.readouterr().out)
    assert r["n"] == 8 and r["per_class"]["house"] is None and r["per_class"]["person"] is not None


def test_split_less_folder_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = write_class_folder(tmp_path / "photos", {"cat": 3, "dog": 1})
    base = ["train", "--model", "_rel:tiny_net", "--data", str(root), "--device", "cpu", "--output",
            str(tmp_path / "run"), "--cache-dir", str(tmp_path / "c")]  # fmt: skip
    assert_main_error(capsys, base, "folder of class folders without train/ and val/", "--val-fraction")
    assert_main_error(capsys, [*base, "--val-fraction", "0.3", "--output", str(tmp_path / "r2")], "class 'dog'")
    assert_main_error(capsys, [*base, "--val-fraction", "1.2", "--output", str(tmp_path / "r3")], "val_fraction")
    assert_main_error(capsys, [*base, "--train-split", "cat", "--val-split", "bird", "--output", str(tmp_path / "r4")],
                      "bird")  # fmt: skip
    domains = tmp_path / "PACS"
    write_class_folder(domains / "art", {"dog": 2})
    write_class_folder(domains / "photo", {"dog": 2})
    base[base.index("--data") + 1] = str(domains)
    assert_main_error(capsys, base, "--train-split art --val-split photo")
