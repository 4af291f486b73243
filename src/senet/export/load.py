"""Resolve ``MODEL|CHECKPOINT`` (the argument of ``senet export``) to a model in eval mode."""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from senet.errors import SenetError

__all__ = ["load_model"]


def load_model(spec: str, model_name: str | None = None, **model_kwargs: Any) -> tuple[nn.Module, str]:
    """A registered model name (random weights) or a checkpoint file; returns ``(model, name)`` in eval mode.

    A checkpoint may be a senet training checkpoint (a dict with the ``model`` name and a ``state_dict``), a
    safetensors file written by :func:`senet.weights.save_pretrained`, or any published layout that
    :func:`senet.weights.convert_checkpoint` recognises; pickles are read with ``weights_only=True``.
    ``model_name`` forces the architecture when the file does not name it.
    """
    from senet.models import create_model, is_model

    if is_model(spec) and not os.path.exists(spec):
        return create_model(spec, **model_kwargs).eval(), spec
    if not os.path.exists(spec):
        from senet.models import list_models

        raise SenetError(
            f"{spec!r} is neither a registered model ({len(list_models())} models: `senet models` or "
            "senet.models.list_models()) nor an existing checkpoint file"
        )
    from senet.weights import convert_checkpoint, read_checkpoint

    hint = model_name
    if hint is None:
        meta = read_checkpoint(spec).metadata
        for key in ("model_name", "model", "arch_hint", "arch"):
            if isinstance(meta.get(key), str) and is_model(meta[key]):
                hint = meta[key]
                break
    converted = convert_checkpoint(spec, model_name=hint, model_kwargs=model_kwargs or None)
    return converted.model.eval(), converted.model_name
