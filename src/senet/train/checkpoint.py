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
from senet.utils.io import atomic_torch_save

__all__ = ["save_checkpoint", "load_checkpoint", "rng_state", "set_rng_state", "model_from_checkpoint"]

FORMAT = "senet.train/1"


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
    """Load a senet training checkpoint safely (``weights_only=True``); a run folder means its ``last.pt``."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "last.pt"
    if not p.is_file():
        raise SenetError(
            f"checkpoint {str(p)!r} does not exist: pass a .pt written by `senet train` or its run folder"
        )
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle/zip errors come in many types; all mean "not our file"
        raise SenetError(f"cannot read checkpoint {str(p)!r}: {str(exc).splitlines()[0][:200]}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise SenetError(f"{str(p)!r} is not a `senet train` checkpoint (no {FORMAT!r} format tag)")
    return ckpt


def build_model(
    name: str,
    num_classes: int | None,
    kwargs: dict[str, Any] | None = None,
    retrofit: str | None = None,
    weights: str | None = None,
) -> nn.Module:
    """A zoo model by name, or ``package.module:callable`` for your own (called with ``num_classes`` and kwargs).

    With ``retrofit`` (``torchvision:resnet18``, ...), the network named there gets attention inserted by
    :func:`senet.retrofit.build_retrofit_model` (``kwargs`` are its options, ``weights`` the original weights) and
    ``name`` is ignored. Without it, ``weights`` are loaded into the zoo model ``name`` (any layout
    :func:`senet.weights.load_pretrained` reads) and the classifier is replaced when its size is not ``num_classes``.
    """
    kwargs = dict(kwargs or {})
    if retrofit:
        from senet.retrofit import build_retrofit_model

        model, _ = build_retrofit_model(retrofit, weights=weights, num_classes=num_classes, **kwargs)
        return model
    if ":" in name:
        import importlib

        if weights is not None:
            raise SenetError(f"--weights needs a zoo model or --retrofit; load weights inside {name} instead")

        mod_name, _, attr = name.partition(":")
        try:
            fn = getattr(importlib.import_module(mod_name), attr)
        except (ImportError, AttributeError) as exc:
            raise SenetError(f"cannot import model {name!r}: {exc}") from exc
        return fn(num_classes=num_classes, **kwargs)
    from senet.models import create_model

    if weights is None:
        return create_model(name, num_classes=num_classes, **kwargs)
    # Pretrained weights come with their own head (ImageNet's 1000 classes): load into the model's default head,
    # strictly, then give it a fresh one for this dataset.
    from senet.retrofit import set_num_classes
    from senet.weights import load_pretrained

    model = create_model(name, **kwargs)
    try:
        load_pretrained(model, weights)
    except SenetError as exc:
        raise SenetError(f"--weights {weights!r} do not load into {name}: {exc}") from exc
    set_num_classes(model, num_classes)
    return model


def model_from_checkpoint(ckpt: dict[str, Any], use_ema: bool = True) -> nn.Module:
    """Rebuild the trained model (EMA weights when present and ``use_ema``) in eval mode on CPU."""
    cfg = ckpt["config"]
    # A retrofitted run is rebuilt without the original weights: the checkpoint holds all of them.
    # A denoiser has no classes (the run's data folder had some; they are not the model's outputs).
    num_classes = None if cfg.get("task") == "denoise" else len(ckpt["classes"])
    model = build_model(cfg["model"], num_classes, cfg.get("model_kwargs"), cfg.get("retrofit"))
    state = ckpt["ema"] if use_ema and ckpt.get("ema") is not None else ckpt["model"]
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise SenetError(
            f"checkpoint weights do not fit model {cfg['model']!r}: {str(exc).splitlines()[0][:200]}"
        ) from exc
    return model.eval()
