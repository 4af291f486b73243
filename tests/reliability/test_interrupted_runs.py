"""Interrupted and failing runs: SIGKILL at random moments then resume gives bit-identical weights; SIGINT finishes
the step, checkpoints and says how to resume; a full disk keeps the previous checkpoint; a non-finite loss stops
and keeps the last good checkpoint."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rel import PY, env, write_tree  # noqa: E402

from senet.errors import SenetError  # noqa: E402
from senet.train import load_checkpoint, load_config, train  # noqa: E402


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tree(tmp_path_factory.mktemp("rel") / "ds", n=32, size=16)


@pytest.fixture
def one_thread():  # noqa: ANN201
    # The run sets torch threads to 1 (``threads: 1``) so in-process and subprocess runs reduce in the same order.
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


EPOCHS = 24  # x 4 steps: long enough (about 2 s) for kills to land inside the training loop


def _args(ds: Path, out: Path, epochs: int = EPOCHS) -> list[str]:
    return ["train", "--model", "_rel:tiny_net", "--data", str(ds), "--output", str(out), "--epochs", str(epochs),
            "--batch-size", "16", "--lr", "0.05", "--device", "cpu", "--deterministic", "true", "--threads", "1",
            "--progress", "none", "--seed", "3", "--ema", "0.9", "--cache-dir", str(out.parent / "cache")]  # fmt: skip


def _state(run: Path) -> dict[str, torch.Tensor]:
    ck = load_checkpoint(run)
    return {**{f"model.{k}": v for k, v in ck["model"].items()}, **{f"ema.{k}": v for k, v in ck["ema"].items()}}


def _assert_bit_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [PY, "-m", "senet", *args], env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_until_training(p: subprocess.Popen, meta: Path, t0: int, limit: float = 120.0) -> bool:
    """Block until this process has written its run's meta.json (it is past startup and data loading)."""
    end = time.time() + limit
    while time.time() < end:
        if p.poll() is not None:
            return False
        if meta.is_file() and meta.stat().st_mtime_ns >= t0:
            return True
        time.sleep(0.01)
    raise AssertionError("training did not start in time")


def test_sigkill_at_random_points_then_resume_is_bit_identical(
    ds: Path, tmp_path: Path, capsys: pytest.CaptureFixture, one_thread: None
) -> None:
    from senet.cli import main

    ref = tmp_path / "ref"
    assert main(_args(ds, ref)) == 0
    t_ref = json.loads((ref / "result.json").read_text())["train_time_s"]  # the loop alone, after data loading
    reference = _state(ref)

    run = tmp_path / "run"
    log: list = []
    # SIGINT first, into a fresh run: finish the step, checkpoint, exit 130 with how to resume.
    t0 = time.time_ns()
    p = _start(_args(ds, run))
    assert _wait_until_training(p, run / "meta.json", t0), p.communicate()
    time.sleep(0.15 * t_ref)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    ck = load_checkpoint(run)
    log.append(("SIGINT", p.returncode, (ck["epoch"], ck["step_in_epoch"])))
    assert p.returncode == 130 and ck["epoch"] < EPOCHS, (log, err)
    assert f"Resume: senet train --output {run} --resume" in err and "Traceback" not in err, err

    # Then SIGKILL at 3 random moments, resuming each time. The delays add up to less than one run (about 0.15 +
    # 3 x 0.25 of the loop time), so each kill lands inside the training loop, before the end.
    rng = random.Random(int(os.environ.get("SENET_KILL_SEED", "9")))
    landed = 0
    for _ in range(3):
        t0 = time.time_ns()
        p = _start(_args(ds, run) + ["--resume"])
        started = _wait_until_training(p, run / "meta.json", t0)
        delay = rng.uniform(0.05, 0.25) * t_ref
        time.sleep(delay)
        if started and p.poll() is None:
            p.send_signal(signal.SIGKILL)
        p.communicate(timeout=60)
        ck = load_checkpoint(run)
        landed += p.returncode == -signal.SIGKILL and ck["epoch"] < EPOCHS
        log.append((round(delay, 2), p.returncode, (ck["epoch"], ck["step_in_epoch"])))
    assert landed >= 1, log  # at least one kill hit a running training loop

    # The last resume runs to the end in this process.
    capsys.readouterr()
    assert main(_args(ds, run) + ["--resume"]) == 0, capsys.readouterr().err
    _assert_bit_identical(_state(run), reference)
    assert load_checkpoint(run)["epoch"] == EPOCHS
    print("kill log (signal or delay s, exit status, checkpoint (epoch, step)):", log)


def _cfg(ds: Path, out: Path, **kw):  # noqa: ANN003, ANN202
    base = dict(model="_rel:tiny_net", data=str(ds), output=str(out), epochs=1, batch_size=16, device="cpu",
                progress="none", cache_dir=str(out.parent / "cache"))  # fmt: skip
    return load_config(None, {**base, **kw})


def test_disk_full_keeps_the_previous_checkpoint(ds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    train(_cfg(ds, run), print_fn=lambda *a: None)
    before = (run / "last.pt").read_bytes()
    real_save = torch.save

    def full_disk(obj, f, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        real_save(obj, f, *a, **kw)  # half of it reaches the disk, then the device is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(SenetError) as e:
        train(_cfg(ds, run, epochs=2, resume=True), print_fn=lambda *a: None)
    msg = str(e.value)
    assert "No space left on device" in msg and "previous checkpoint" in msg and "intact" in msg and "\n" not in msg
    assert (run / "last.pt").read_bytes() == before
    assert load_checkpoint(run)["epoch"] == 1
    assert not [f for f in run.iterdir() if f.name.endswith(".tmp")]  # the partial file is removed


def test_disk_full_on_the_cli_is_one_line(
    ds: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(*a, **kw):  # noqa: ANN002, ANN003, ANN202
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    argv = ["train", "--model", "_rel:tiny_net", "--data", str(ds), "--output", str(tmp_path / "run"), "--epochs",
            "1", "--batch-size", "16", "--device", "cpu", "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    from senet.cli import main

    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    # The run's progress lines come first; the error is the last line, alone, without a traceback.
    assert "Traceback" not in err
    last = err.splitlines()[-1]
    assert last.startswith("senet train: error: cannot write checkpoint") and "No space left on device" in last
    assert "there was no earlier checkpoint" in last


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(
    ds: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from senet.cli import main

    run = tmp_path / "run"
    # 4 steps per epoch; the model's outputs turn NaN at its 3rd training call, i.e. in epoch 1 at step 2.
    args = ["train", "--model", "_rel:nan_net", "--data", str(ds), "--output", str(run), "--epochs", "2",
            "--batch-size", "16", "--device", "cpu", "--progress", "none",
            "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    capsys.readouterr()
    assert main(args) == 3
    out, err = capsys.readouterr()
    result = json.loads(out.strip().splitlines()[-1])
    assert result["status"] == "non_finite_loss" and result["step"] == 2
    assert "non-finite loss at step 2" in err and "no checkpoint was written yet" in err
    assert not (run / "last.pt").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_mid_step_finishes_the_step_then_resume_is_exact(ds: Path, tmp_path: Path) -> None:
    from _rel import SignalAt

    msgs: list[str] = []
    ref = tmp_path / "ref"
    train(_cfg(ds, ref, epochs=3, deterministic=True, seed=4), model=SignalAt(at=10**9), print_fn=msgs.append)
    run = tmp_path / "run"
    # SIGTERM arrives inside the 6th forward pass (epoch 2, step 2 of 4): that step completes, then it stops.
    r = train(_cfg(ds, run, epochs=3, deterministic=True, seed=4), model=SignalAt(at=6), print_fn=msgs.append)
    assert r["status"] == "interrupted" and (r["epoch"], r["step"]) == (2, 2), r
    ck = load_checkpoint(run)
    assert (ck["epoch"], ck["step_in_epoch"]) == (1, 2)
    assert any(f"Resume: senet train --output {run} --resume" in m for m in msgs), msgs
    r = train(_cfg(ds, run, epochs=3, deterministic=True, seed=4, resume=True), model=SignalAt(at=10**9))
    assert r["status"] == "done"
    a, b = load_checkpoint(ref)["model"], load_checkpoint(run)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
