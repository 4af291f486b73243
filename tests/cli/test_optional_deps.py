"""Every subcommand with only the base install: the optional packages (matplotlib, onnx, onnxruntime, tensorboard,
keras, timm) are made unimportable in a subprocess. A side feature (a plot, TensorBoard logs) is skipped with one
warning line naming the extra and the command still succeeds; a command that *is* the optional feature (ONNX export)
fails with one line naming the extra. No traceback anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "data"))
from _tiny_data import write_tree  # noqa: E402

REPO = HERE.parents[1]


@pytest.fixture(scope="module")
def blocked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    tmp = tmp_path_factory.mktemp("blocked")
    data = tmp / "tiny"
    write_tree(data, n_train=4, n_test=2, size=16)
    run = tmp / "run"
    image = data / "test" / "cat" / "0000.png"
    onnx_file = tmp / "m.onnx"
    onnx_file.write_bytes(b"not used: onnxruntime is missing")
    train = ["train", "--model", "se_resnet20", "--data", str(data), "--epochs", "1", "--batch-size", "4",
             "--device", "cpu", "--progress", "none", "--output", str(run), "--cache-dir", str(tmp / "c")]  # fmt: skip
    commands = {
        "train": [*train, "--tensorboard", "true"],
        "eval": ["eval", "--checkpoint", str(run), "--device", "cpu"],
        "compare": ["compare", str(run), "--plot", str(tmp / "curves.png")],
        "analyze": ["analyze", "--checkpoint", str(run), "--device", "cpu", "--out", str(tmp / "analysis")],
        "ablate": [*"ablate --grid reduction --seeds 1 --report-only --no-cost --out".split(), str(tmp / "abl")],
        "predict": ["predict", str(image), "--checkpoint", str(run)],
        "predict_onnx": ["predict", str(image), "--checkpoint", str(run), "--onnx", str(onnx_file)],
        "export_onnx": ["export", "resnet20", "--output", str(tmp / "r.onnx")],
        "export_program": ["export", "resnet20", "--format", "exported-program", "--output", str(tmp / "r.pt2")],
        "retrofit_timm": [*train[:-4], "--output", str(tmp / "rt"), "--model", "x", "--retrofit", "timm:resnet18"],
        "blocks": ["blocks"],
        "summary": ["summary", "se_resnet20"],
        "keras": ["import", "senet.keras"],
    }
    spec = tmp / "commands.json"
    spec.write_text(json.dumps(list(commands.values())))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    env.pop("SENET_DEBUG", None)
    p = subprocess.run(
        [sys.executable, str(HERE / "_blocked_run.py"), str(spec)],
        capture_output=True,
        text=True,
        env={**env, "OMP_NUM_THREADS": "1"},
        cwd=tmp,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    results = json.loads(p.stdout.strip().splitlines()[-1])
    return {"tmp": tmp, **dict(zip(commands, results))}


def _no_traceback(r: dict) -> None:
    assert "Traceback" not in r["err"] and "Traceback" not in r["out"], r["err"][-3000:]


@pytest.mark.parametrize(
    ("name", "extra"),
    [("train", "tensorboard"), ("eval", "plot"), ("compare", "plot"), ("analyze", "plot"), ("ablate", "plot")],
)
def test_side_features_warn_and_the_command_succeeds(blocked: dict, name: str, extra: str) -> None:
    r = blocked[name]
    _no_traceback(r)
    assert r["rc"] == 0, r["err"][-2000:]
    warnings = [line for line in r["err"].splitlines() if "warning:" in line]
    assert len(warnings) == 1 and f"pip install 'senet[{extra}]'" in warnings[0], r["err"]
    assert "skipped" in warnings[0]


def test_results_are_written_without_the_plots(blocked: dict) -> None:
    tmp = blocked["tmp"]
    assert json.loads(blocked["eval"]["out"].strip().splitlines()[-1])["confusion_png"] is None
    assert json.loads(blocked["compare"]["out"].strip().splitlines()[-1])["plot"] is None
    assert not (tmp / "curves.png").exists() and not (tmp / "run" / "confusion.png").exists()
    assert (tmp / "analysis" / "excitations.npz").is_file() and not list((tmp / "analysis").glob("*.png"))
    assert (tmp / "abl" / "reduction.md").is_file() and not (tmp / "abl" / "reduction.png").exists()
    assert (tmp / "run" / "metrics.csv").is_file() and not (tmp / "run" / "tb").exists()


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("export_onnx", "onnx is needed for ONNX export: pip install 'senet[export]'"),
        ("predict_onnx", "onnxruntime is needed for running ONNX files: pip install 'senet[export]'"),
        ("retrofit_timm", "timm is needed for timm:resnet18: pip install timm"),
    ],
)
def test_commands_that_are_the_optional_feature_fail_in_one_line(blocked: dict, name: str, needle: str) -> None:
    r = blocked[name]
    _no_traceback(r)
    assert r["rc"] == 2 and r["err"].strip().count("\n") == 0 and needle in r["err"], r["err"]


@pytest.mark.parametrize("name", ["predict", "export_program", "blocks", "summary"])
def test_commands_without_optional_packages_just_work(blocked: dict, name: str) -> None:
    r = blocked[name]
    _no_traceback(r)
    assert r["rc"] == 0 and not r["err"].strip(), r["err"][-2000:]


def test_senet_keras_import_names_the_extra(blocked: dict) -> None:
    r = blocked["keras"]
    # An ImportError (what `try: import senet.keras` expects), with the install line instead of "No module named".
    needle = "MissingDependency: keras is needed for senet.keras: pip install 'senet[keras]'"
    assert r["rc"] == 1 and needle in r["err"], r["err"][-2000:]
