"""Checkpoints: written atomically every epoch, read back with ``torch.load(weights_only=True)``.

A checkpoint holds everything an exact resume needs — model, optimizer, LR schedule, grad scaler, EMA, RNG states,
epoch and position inside it, partial epoch metrics — plus what evaluation and prediction need without the training
data: the config, class names and the preprocessing (size, mean, std).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import torch
from torch import nn

from senet.errors import SenetError
from senet.resolve import model_from_run, resolve_model
from senet.runs import CHECKPOINT_FORMAT, Run, read_run_checkpoint
from senet.utils.io import atomic_torch_save

__all__ = [
    "build_model",
    "save_checkpoint",
    "load_checkpoint",
    "rng_state",
    "set_rng_state",
    "model_from_checkpoint",
]

FORMAT = CHECKPOINT_FORMAT


def rng_state() -> dict[str, Any]:
    """Torch CPU/CUDA and Python RNG states (numpy is not used by the trainer)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    v = state["python"]
    random.setstate((v[0], tuple(v[1]), v[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``state`` (plus a format tag) to ``path`` atomically: tmp file, fsync, rename."""
    path = Path(path)
    try:
        atomic_torch_save({"format": FORMAT, **state}, path)
    except OSError as exc:
        # The temporary file is removed and the rename never happened, so the previous checkpoint is intact.
        kept = (
            f"the previous checkpoint {str(path)!r} is intact" if path.is_file() else "there was no earlier checkpoint"
        )
        raise SenetError(
            f"cannot write checkpoint {str(path)!r}: {exc.strerror or exc}; {kept}. Free disk space (or pick "
            "another --output) and resume with --resume"
        ) from exc
    return path


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a senet training checkpoint safely (``weights_only=True``); a run folder means its ``last.pt``.

    The raw dict; :func:`senet.runs.load_run` gives the typed :class:`~senet.runs.Run` around it.
    """
    return read_run_checkpoint(path, map_location)


#: The model resolver under its historical name (see :func:`senet.resolve.resolve_model`).
build_model = resolve_model


def model_from_checkpoint(ckpt: dict[str, Any], use_ema: bool = True) -> nn.Module:
    """Rebuild the trained model of a loaded checkpoint (EMA weights when present and ``use_ema``), eval mode, CPU."""
    return model_from_run(Run.from_checkpoint(ckpt), use_ema)
