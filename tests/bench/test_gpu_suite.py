"""benchmarks/gpu_suite.py: the prepared GPU run works end to end (--tiny, on the CPU) before a GPU is spent on it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SUITE = [sys.executable, str(ROOT / "benchmarks" / "gpu_suite.py")]


@pytest.mark.slow
def test_tiny_suite_runs_every_stage_into_the_ledger() -> None:
    out = subprocess.run([*SUITE, "--tiny"], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    for stage in ("== speedrun", "== paper", "== throughput", "== done"):
        assert stage in out.stdout
    assert out.stdout.count("result appended to the ledger") == 0  # trainer messages go to stderr
    assert out.stderr.count("result appended to the ledger") == 6  # 4 speedrun kinds + 2 paper models
    assert '"se_over_plain"' in out.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU refusal")
def test_without_a_gpu_it_says_so_in_one_line() -> None:
    out = subprocess.run([*SUITE], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 2 and "no CUDA device" in out.stderr and "Traceback" not in out.stderr


def test_unknown_stage_is_refused() -> None:
    out = subprocess.run([*SUITE, "--tiny", "--stages", "warp"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "unknown stage 'warp'" in out.stderr
