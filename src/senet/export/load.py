"""Resolve ``MODEL|CHECKPOINT`` (the argument of ``senet export``) to a model in eval mode."""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from senet.data.imagenet import IMAGENET_MEAN, IMAGENET_STD
from senet.errors import SenetError
from senet.models import is_model, list_models
from senet.resolve import resolve_model
from senet.runs import load_run

__all__ = ["load_model", "preprocess_for"]


def load_model(spec: str, model_name: str | None = None, **model_kwargs: Any) -> tuple[nn.Module, str]:
    """A registered model name (random weights) or a checkpoint file; returns ``(model, name)`` in eval mode.

    A checkpoint may be a ``senet train`` checkpoint (rebuilt as ``senet eval`` does: the run's model options, its
    EMA weights when it kept them), a safetensors file written by :func:`senet.weights.save_pretrained`, or any
    published layout that :func:`senet.weights.convert_checkpoint` recognises; pickles are read with
    ``weights_only=True``. A ``num_classes`` other than the checkpoint's gives a fresh, zero-initialised head.
    ``model_name`` forces the architecture when the file does not name it. Both go through
    :func:`senet.resolve.resolve_model`.
    """
    if not (is_model(spec) or os.path.exists(spec)):
        raise SenetError(
            f"{spec!r} is neither a registered model ({len(list_models())} models: `senet models` or "
            "senet.models.list_models()) nor an existing checkpoint file"
        )
    # num_classes is the resolver's own argument: left among the options it would reach create_model twice.
    num_classes = model_kwargs.pop("num_classes", None)
    if is_model(spec) and not os.path.exists(spec):
        return resolve_model(spec, num_classes, kwargs=model_kwargs).eval(), spec
    model = resolve_model(spec, num_classes, kwargs=model_kwargs, arch=model_name)
    return model.eval(), str(model.model_name)


def preprocess_for(source: str, size: tuple[int, ...]) -> dict[str, Any]:
    """How inputs of the model from ``source`` are prepared: a training run's own eval preprocessing when ``source``
    is a `senet train` checkpoint or run folder, else resize to ``size[-1]`` + ImageNet normalisation."""
    if os.path.exists(source):
        try:
            pre = load_run(source).preprocess
        except SenetError:
            pre = None
        if pre:
            return pre
    return {"kind": "tensor", "img_size": size[-1], "mean": IMAGENET_MEAN, "std": IMAGENET_STD}
