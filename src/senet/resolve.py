"""The one "spec -> model" resolver: a zoo name, ``package.module:callable``, a retrofitted network, a weights file,
or a trained run. Training, evaluation, analysis and export all build their models here.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from torch import nn

from senet.errors import SenetError
from senet.models import create_model, is_model
from senet.retrofit import build_retrofit_model, set_num_classes
from senet.runs import Run
from senet.weights import convert_checkpoint, load_pretrained, read_checkpoint

__all__ = ["resolve_model", "model_from_run"]

# Keys a checkpoint's metadata may name its architecture under, most specific first.
_ARCH_KEYS = ("model_name", "model", "arch_hint", "arch")


def resolve_model(
    name: str,
    num_classes: int | None = None,
    kwargs: dict[str, Any] | None = None,
    retrofit: str | None = None,
    weights: str | None = None,
    *,
    arch: str | None = None,
) -> nn.Module:
    """Build the model ``name`` names (train mode, CPU).

    ``name`` is one of:

    * a zoo model (:func:`senet.models.create_model`, with ``num_classes`` and ``kwargs``). ``weights`` (any layout
      :func:`senet.weights.load_pretrained` reads) load strictly into its default head, which is then replaced by a
      fresh one of ``num_classes`` outputs when the sizes differ;
    * ``package.module:callable``, called with ``num_classes`` and ``kwargs`` (your own model; no ``weights``);
    * an existing weights file (senet safetensors, a training checkpoint, or any published layout
      :func:`senet.weights.convert_checkpoint` recognises); ``arch`` forces the architecture when the file does not
      name it, ``kwargs`` are the model's options.

    With ``retrofit`` (``torchvision:resnet18``, ...), the network named there gets attention inserted by
    :func:`senet.retrofit.build_retrofit_model` (``kwargs`` are its options, ``weights`` the original weights) and
    ``name`` is ignored.

    Raises:
        SenetError: an unknown name, an unimportable callable, or weights that do not load.
    """
    kwargs = dict(kwargs or {})
    if retrofit:
        model, _ = build_retrofit_model(retrofit, weights=weights, num_classes=num_classes, **kwargs)
        return model
    if os.path.exists(name) and not is_model(name):
        return _from_weights_file(name, arch, kwargs)
    if ":" in name:
        if weights is not None:
            raise SenetError(f"--weights needs a zoo model or --retrofit; load weights inside {name} instead")
        mod_name, _, attr = name.partition(":")
        try:
            fn = getattr(importlib.import_module(mod_name), attr)
        except (ImportError, AttributeError) as exc:
            raise SenetError(f"cannot import model {name!r}: {exc}") from exc
        return fn(num_classes=num_classes, **kwargs)
    if weights is None:
        return create_model(name, num_classes=num_classes, **kwargs)
    # Pretrained weights come with their own head (ImageNet's 1000 classes): load into the model's default head,
    # strictly, then give it a fresh one for this dataset.
    model = create_model(name, **kwargs)
    try:
        load_pretrained(model, weights)
    except SenetError as exc:
        raise SenetError(f"--weights {weights!r} do not load into {name}: {exc}") from exc
    set_num_classes(model, num_classes)
    return model


def _from_weights_file(path: str, arch: str | None, kwargs: dict[str, Any]) -> nn.Module:
    """A model from a weights file; the architecture comes from ``arch`` or the file's own metadata."""
    hint = arch
    if hint is None:
        meta = read_checkpoint(path).metadata
        hint = next((meta[k] for k in _ARCH_KEYS if isinstance(meta.get(k), str) and is_model(meta[k])), None)
    converted = convert_checkpoint(path, model_name=hint, model_kwargs=kwargs or None)
    model = converted.model
    model.model_name = converted.model_name  # what export names its files after
    return model


def model_from_run(run: Run, use_ema: bool = True) -> nn.Module:
    """Rebuild a run's trained model (EMA weights when present and ``use_ema``) in eval mode on CPU.

    A retrofitted run is rebuilt without the original weights: the checkpoint holds all of them.
    """
    cfg = run.config
    model = resolve_model(run.model_name, run.num_classes, cfg.get("model_kwargs"), cfg.get("retrofit"))
    try:
        model.load_state_dict(run.state_dict(use_ema))
    except RuntimeError as exc:
        raise SenetError(
            f"checkpoint weights do not fit model {run.model_name!r}: {str(exc).splitlines()[0][:200]}"
        ) from exc
    return model.eval()
