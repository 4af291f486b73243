"""The one "spec -> model" resolver: a zoo name, ``package.module:callable``, a retrofitted network, a weights file,
or a trained run. Training, evaluation, analysis and export all build their models here.
"""

from __future__ import annotations

import dataclasses
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
    * an existing weights file (senet safetensors, or any published layout :func:`senet.weights.convert_checkpoint`
      recognises); ``arch`` forces the architecture when the file does not name it, ``kwargs`` are the model's
      options on top of those the file records. A ``num_classes`` other than the file's classifier replaces it by
      a zero-initialised head;
    * a ``senet train`` checkpoint: its run's model, built as ``senet eval`` builds it (:func:`model_from_run`:
      the run's ``model_kwargs``, EMA weights when the run kept them), ``kwargs`` on top of the run's options.

    With ``retrofit`` (``torchvision:resnet18``, ...), the network named there gets attention inserted by
    :func:`senet.retrofit.build_retrofit_model` (``kwargs`` are its options, ``weights`` the original weights) and
    ``name`` is ignored.

    Raises:
        SenetError: an unknown name, an unimportable callable, or weights that do not load.
    """
    kwargs = dict(kwargs or {})
    if "num_classes" in kwargs:
        # Callers that forward a flag set (``senet export --num-classes``) put it among the model options.
        given = kwargs.pop("num_classes")
        if num_classes is not None and given is not None and given != num_classes:
            raise SenetError(f"num_classes={num_classes} and model option num_classes={given} disagree; pass one")
        num_classes = num_classes if given is None else given
    if retrofit:
        model, _ = build_retrofit_model(retrofit, weights=weights, num_classes=num_classes, **kwargs)
        return model
    if os.path.exists(name) and not is_model(name):
        return _from_weights_file(name, arch, num_classes, kwargs)
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
        load_pretrained(model, weights, replace_head=num_classes is not None)
    except SenetError as exc:
        raise SenetError(f"--weights {weights!r} do not load into {name}: {exc}") from exc
    if num_classes is not None:
        set_num_classes(model, num_classes)
    return model


def _from_weights_file(path: str, arch: str | None, num_classes: int | None, kwargs: dict[str, Any]) -> nn.Module:
    """A model from a weights file; the architecture comes from ``arch`` or the file's own metadata."""
    ckpt = read_checkpoint(path)
    if ckpt.run is not None:
        return _from_run_checkpoint(ckpt.run, path, arch, num_classes, kwargs)
    hint = arch
    if hint is None:
        meta = ckpt.metadata
        hint = next((meta[k] for k in _ARCH_KEYS if isinstance(meta.get(k), str) and is_model(meta[k])), None)
    if num_classes is not None:
        kwargs = {**kwargs, "num_classes": num_classes}
    converted = convert_checkpoint(path, model_name=hint, model_kwargs=kwargs or None)
    model = converted.model
    model.model_name = converted.model_name  # what export names its files after
    return model


def _from_run_checkpoint(
    run: Run, path: str, arch: str | None, num_classes: int | None, kwargs: dict[str, Any]
) -> nn.Module:
    """A ``senet train`` checkpoint's model as ``senet eval`` sees it; ``kwargs`` on top of the run's options and a
    different ``num_classes`` give a fresh head."""
    cfg = run.config
    if arch is not None and arch != run.model_name and not cfg.get("retrofit"):
        raise SenetError(f"{path} is a `senet train` checkpoint of {run.model_name}, not {arch}: drop the model name")
    if kwargs:
        run = dataclasses.replace(run, config={**cfg, "model_kwargs": {**(cfg.get("model_kwargs") or {}), **kwargs}})
    model = model_from_run(run)
    if num_classes is not None and num_classes != run.num_classes:
        set_num_classes(model, num_classes)
    # Export names its files after the model; a retrofitted run's network is its ``retrofit`` spec.
    model.model_name = str(cfg.get("retrofit") or run.model_name).rpartition(":")[2]
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
