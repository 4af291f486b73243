"""Loader workers default to at most the usable CPU cores: no PyTorch "suggested max number of worker" warning on a
2-core machine (the CI's), for training's config and for evaluation alike."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _tiny_data import write_tree  # noqa: E402

from senet.data import create_loaders  # noqa: E402
from senet.train import load_config  # noqa: E402
from senet.utils.system import default_workers, usable_cpus  # noqa: E402


@pytest.fixture
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    # Both senet and PyTorch's DataLoader ask os.sched_getaffinity (else os.cpu_count) how many cores there are.
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)


def test_defaults_fit_the_cores(two_cores: None) -> None:
    assert usable_cpus() == 2 and default_workers() == 2 and default_workers(cap=1) == 1
    assert load_config(None, {}).workers == 2
    assert load_config(None, {"workers": "3"}).workers == 3  # an explicit choice is kept


def test_no_worker_count_warning_on_two_cores(two_cores: None, tmp_path: Path) -> None:
    write_tree(tmp_path / "ds", n_train=2, n_test=2, size=16)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*worker", category=UserWarning)
        data = create_loaders(
            tmp_path / "ds", batch_size=3, loader="dataloader", img_size=16, with_train=False, cache_dir=tmp_path
        )
        assert data.eval.loader.num_workers == 2
        assert sum(len(y) for _, y in data.eval) == 6


def test_the_warning_is_real_above_the_core_count(two_cores: None, tmp_path: Path) -> None:
    # The check above could pass vacuously if PyTorch no longer warned: 3 workers on 2 cores must warn.
    write_tree(tmp_path / "ds", n_train=2, n_test=2, size=16)
    with pytest.warns(UserWarning, match="worker"):
        data = create_loaders(
            tmp_path / "ds",
            batch_size=3,
            loader="dataloader",
            img_size=16,
            workers=3,
            with_train=False,
            cache_dir=tmp_path,
        )
        sum(len(y) for _, y in data.eval)
