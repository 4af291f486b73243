"""Shared test set-up: deterministic seeds, one thread per worker (xdist runs two workers on two cores)."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch

# Decoded-dataset caches go to a throw-away folder, never into the user's ~/.cache/senet.
os.environ.setdefault("SENET_CACHE_DIR", tempfile.mkdtemp(prefix="senet-test-cache-"))

torch.set_num_threads(int(os.environ.get("SENET_TEST_THREADS", "1")))


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
