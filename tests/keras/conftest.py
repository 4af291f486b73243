"""Keras tests run on the PyTorch backend, so they need no TensorFlow; the backend is fixed before Keras loads."""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "torch"

import pytest  # noqa: E402

keras = pytest.importorskip("keras")


@pytest.fixture(autouse=True)
def _keras_seed() -> None:
    keras.utils.set_random_seed(0)
