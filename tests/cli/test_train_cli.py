"""`senet train / eval / predict / compare` end to end on a tiny dataset, and their one-line errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from _tiny_data import write_tar, write_tree  # noqa: E402

from senet.cli import main  # noqa: E402


def _json_line(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("cli")
    write_tree(root / "tree", n_train=20, n_test=10)
    archive = write_tar(root / "tree", root / "tiny.tar.gz")
    runs = {}
    for model, epochs in (("resnet20", "2"), ("se_resnet20", "1")):
        out = root / model
        rc = main(
            [
                "train",
                "--model",
                model,
                "--data",
                str(archive),
                "--epochs",
                epochs,
                "--batch-size",
                "30",
                "--lr",
                "0.05",
                "--output",
                str(out),
                "--progress",
                "none",
                "--cache-dir",
                str(root / "cache"),
                "--eval-batch-size",
                "64",
            ]
        )
        assert rc == 0
        runs[model] = out
    return {"root": root, "archive": archive, "runs": runs}


def test_train_writes_a_run(trained: dict, capsys: pytest.CaptureFixture) -> None:
    run = trained["runs"]["se_resnet20"]
    result = json.loads((run / "result.json").read_text())
    assert result["status"] == "done" and result["epochs_done"] == 1 and 0 <= result["top1"] <= 100
    lines = (run / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,") and len(lines) == 2


def test_eval_reports_errors_per_class_and_plot(trained: dict, capsys: pytest.CaptureFixture) -> None:
    run = trained["runs"]["resnet20"]
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(run / "last.pt"), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    r = _json_line(out)
    assert r["n"] == 30 and set(r["per_class"]) == {"cat", "dog", "frog"}
    assert r["top1_err"] == pytest.approx(100 - r["top1"]) and "top-1 error" in out
    assert Path(r["confusion_png"]).read_bytes()[:4] == b"\x89PNG"
    train_top1 = json.loads((run / "result.json").read_text())["top1"]
    assert r["top1"] == pytest.approx(train_top1, abs=1e-6), "eval must reproduce the end-of-training test accuracy"


def test_eval_tta_defaults_to_the_run_and_can_be_chosen(trained: dict, capsys: pytest.CaptureFixture) -> None:
    run = trained["runs"]["resnet20"]
    base = ["eval", "--checkpoint", str(run), "--device", "cpu", "--plot", "none"]
    capsys.readouterr()
    assert main(base) == 0
    plain = _json_line(capsys.readouterr().out)
    assert plain["tta"] == "none"
    assert main([*base, "--tta", "flip_translate"]) == 0
    tta = _json_line(capsys.readouterr().out)
    assert tta["tta"] == "flip_translate" and tta["n"] == plain["n"]
    assert tta["loss"] != plain["loss"], "six averaged views cannot give the very same loss as one"


def test_predict_prints_topk(trained: dict, capsys: pytest.CaptureFixture) -> None:
    img = next((trained["root"] / "tree" / "test" / "dog").glob("*.png"))
    capsys.readouterr()
    assert main(["predict", str(img), str(img), "--checkpoint", str(trained["runs"]["resnet20"]), "--top-k", "2"]) == 0
    r = _json_line(capsys.readouterr().out)
    assert len(r["predictions"]) == 2 and len(r["predictions"][0]["top"]) == 2
    probs = [p["prob"] for p in r["predictions"][0]["top"]]
    assert probs == sorted(probs, reverse=True) and all(0 <= p <= 1 for p in probs)
    assert {p["class"] for p in r["predictions"][0]["top"]} <= {"cat", "dog", "frog"}


def test_predict_optimized_matches_eager(trained: dict, capsys: pytest.CaptureFixture) -> None:
    img = next((trained["root"] / "tree" / "test" / "dog").glob("*.png"))
    run = str(trained["runs"]["se_resnet20"])
    capsys.readouterr()
    assert main(["predict", str(img), "--checkpoint", run, "--top-k", "3"]) == 0
    plain = _json_line(capsys.readouterr().out)
    argv = ["predict", str(img), "--checkpoint", run, "--top-k", "3", "--optimized"]
    assert main([*argv, "--optimize-backends", "eager,eager_cl"]) == 0
    captured = capsys.readouterr()
    fast = _json_line(captured.out)
    assert "compile" in captured.err and fast["optimized"]["backend"] in ("eager", "eager_cl")
    assert [p["class"] for p in fast["predictions"][0]["top"]] == [p["class"] for p in plain["predictions"][0]["top"]]
    for a, b in zip(fast["predictions"][0]["top"], plain["predictions"][0]["top"]):
        assert abs(a["prob"] - b["prob"]) < 1e-4
    assert main([*argv, "--onnx", "x.onnx"]) == 2


def test_compare_table_and_plot(trained: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    capsys.readouterr()
    plot = tmp_path / "c.png"
    assert main(["compare", *map(str, trained["runs"].values()), "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    r = _json_line(out)
    assert [x["model"] for x in r["runs"]] == ["resnet20", "se_resnet20"] and plot.read_bytes()[:4] == b"\x89PNG"
    assert "se_resnet20" in out


def test_resume_extends_a_finished_run(trained: dict, capsys: pytest.CaptureFixture) -> None:
    run = trained["runs"]["resnet20"]
    assert main(["train", "--output", str(run), "--resume", "--epochs", "3"]) == 0
    assert json.loads((run / "result.json").read_text())["epochs_done"] == 3


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["train", "--data", "/nonexistent/x", "--epochs", "1"], "does not exist"),
        (["train", "--epochs", "1", "--warmup", "2"], "unknown config key 'warmup'"),
        (["train", "--lr", "0.1", "--schedule", "triangle"], "schedule must be one of"),
        (["eval", "--checkpoint", "/nonexistent.pt"], "does not exist"),
        (["compare", "/nonexistent"], "not a run folder"),
    ],
)
def test_user_errors_are_one_line(argv: list[str], needle: str, capsys: pytest.CaptureFixture) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_predict_bad_image(trained: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert main(["predict", str(bad), "--checkpoint", str(trained["runs"]["resnet20"])]) == 2
    assert "cannot decode image" in capsys.readouterr().err


def test_predict_with_the_onnx_export_matches_pytorch(trained: dict, tmp_path: Path, capsys) -> None:
    run = trained["runs"]["se_resnet20"]
    onnx_file = tmp_path / "se_resnet20.onnx"
    assert main(["export", str(run / "last.pt"), "--format", "onnx", "--output", str(onnx_file)]) == 0
    img = next((trained["root"] / "tree" / "test" / "cat").glob("*.png"))
    capsys.readouterr()
    assert main(["predict", str(img), "--checkpoint", str(run), "--top-k", "3"]) == 0
    torch_top = _json_line(capsys.readouterr().out)["predictions"][0]["top"]
    assert main(["predict", str(img), "--checkpoint", str(run), "--top-k", "3", "--onnx", str(onnx_file)]) == 0
    onnx_top = _json_line(capsys.readouterr().out)["predictions"][0]["top"]
    assert [p["class"] for p in onnx_top] == [p["class"] for p in torch_top]
    assert all(abs(a["prob"] - b["prob"]) <= 1e-4 for a, b in zip(onnx_top, torch_top))
