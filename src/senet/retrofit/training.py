"""Hooks for training a retrofitted network: build one from a spec + weights, freeze/unfreeze the backbone.

The training loop (``senet train``) calls :func:`build_retrofit_model` and, for the two-phase recipe (new attention +
classifier first, then everything), :func:`freeze_backbone` / :func:`unfreeze`. Nothing here runs a training loop.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
import torchvision
from safetensors.torch import load_file
from torch import nn

from senet.utils.optional import require

from ..errors import SenetError
from ..models import create_model
from .core import RetrofitReport, retrofit, retrofit_param_names

__all__ = [
    "build_retrofit_model",
    "create_base_model",
    "load_state_dict_file",
    "classifier_name",
    "freeze_backbone",
    "freeze_all_but_classifier",
    "set_num_classes",
    "unfreeze",
    "trainable_parameter_names",
]

_SOURCES = ("torchvision", "timm", "senet")


def create_base_model(spec: str, num_classes: int | None = None, **base_kwargs: Any) -> nn.Module:
    """Build the network named by ``spec`` (``torchvision:resnet18``, ``timm:resnet50``, ``senet:resnet50`` or a bare
    senet model name) with random weights; never downloads anything. ``base_kwargs`` go to its constructor (e.g.
    ``bn_eps=0.001, pad_type="same"`` for weights converted from a TensorFlow-style EfficientNet-Lite release)."""
    source, sep, name = spec.partition(":")
    if not sep:
        source, name = "senet", spec
    kw = dict(base_kwargs) if num_classes is None else dict(base_kwargs, num_classes=num_classes)
    if source == "torchvision":
        if name not in torchvision.models.list_models():
            raise SenetError(f"unknown torchvision model {name!r} in {spec!r}; see torchvision.models.list_models()")
        return torchvision.models.get_model(name, weights=None, **kw)
    if source == "timm":
        timm = require("timm", spec)
        if not timm.is_model(name):
            raise SenetError(f"unknown timm model {name!r} in {spec!r}; see timm.list_models()")
        return timm.create_model(name, pretrained=False, **kw)
    if source == "senet":
        return create_model(name, **kw)
    raise SenetError(f"unknown model source {source!r} in {spec!r}; write one of {', '.join(_SOURCES)}:NAME")


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state_dict from ``.pt``/``.pth`` (plain, or a checkpoint with a ``model``/``state_dict`` entry) or
    ``.safetensors``. Loads with ``weights_only=True``; strips ``module.`` (DDP) and ``_orig_mod.`` (compile)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise SenetError(f"weights file {path!r} does not exist; give the path of a .pt/.pth/.safetensors file")
    try:
        if path.endswith(".safetensors"):
            sd: Any = load_file(path)
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any loader failure means the file is not a usable checkpoint
        raise SenetError(f"cannot read weights {path!r} ({type(e).__name__}: {e}); is it a PyTorch checkpoint?") from e
    if isinstance(sd, dict):
        for key in ("model", "state_dict", "model_state_dict", "model_state"):
            if isinstance(sd.get(key), dict):
                sd = sd[key]
                break
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise SenetError(f"{path!r} holds no state_dict (a mapping of names to tensors)")
    out = {}
    for k, v in sd.items():
        for prefix in ("module.", "_orig_mod."):
            if k.startswith(prefix):
                k = k[len(prefix) :]
        out[k] = v
    return out


def classifier_name(model: nn.Module) -> str | None:
    """Module path of the classifier head (``fc``, ``classifier``, ``head``... or ``get_classifier()``)."""
    get = getattr(model, "get_classifier", None)
    if callable(get):
        head = get()
        for n, m in model.named_modules():
            if n and m is head:
                return n
    for name in ("fc", "classifier", "head", "last_linear"):
        if isinstance(getattr(model, name, None), nn.Module):
            return name
    return None


def _final_linear(model: nn.Module) -> tuple[str, nn.Linear] | None:
    head = classifier_name(model)
    if head is None:
        return None
    mod = model.get_submodule(head)
    linears = [(f"{head}.{n}" if n else head, m) for n, m in mod.named_modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


def set_num_classes(model: nn.Module, num_classes: int) -> None:
    """Give ``model`` a new, zero-initialised classifier for ``num_classes`` (``reset_classifier`` where the model has
    one, else its final ``nn.Linear`` replaced); nothing changes when the head already has that size.

    Zero, as BiT does for transfer: the pretrained features then start from a uniform prediction. A from-scratch
    init is far too large on them (EfficientNet's uniform +-1/sqrt(classes) gave Lite0's 1280 features on Imagenette
    logits of std ~7 and a first-step loss of 15 instead of 2.3, and the warm-up never recovered).
    """
    found = _final_linear(model)
    if found is not None and found[1].out_features == num_classes:
        return
    if hasattr(model, "reset_classifier"):
        model.reset_classifier(num_classes)
    else:
        if found is None:
            raise SenetError(f"cannot find the classifier of {type(model).__name__} to give it {num_classes} classes")
        path, lin = found
        model.set_submodule(path, nn.Linear(lin.in_features, num_classes, bias=lin.bias is not None))
    found = _final_linear(model)
    if found is not None:
        with torch.no_grad():
            found[1].weight.zero_()
            if found[1].bias is not None:
                found[1].bias.zero_()


def build_retrofit_model(
    spec: str,
    weights: str | os.PathLike | None = None,
    num_classes: int | None = None,
    attn_layer: Any = "se",
    position: str = "standard",
    stages: Sequence[int] | None = None,
    init: str = "identity",
    targets: Sequence[str] | None = None,
    base_kwargs: dict[str, Any] | None = None,
    **attn_kwargs: Any,
) -> tuple[nn.Module, RetrofitReport]:
    """Build ``spec``, load ``weights`` into it, then :func:`~senet.retrofit.retrofit` it — the hook ``senet train
    --retrofit`` calls.

    Args:
        spec: ``torchvision:NAME``, ``timm:NAME`` or ``senet:NAME`` (bare names are senet models).
        weights: state_dict or checkpoint of the *original* (un-retrofitted) network; ``None`` = random init.
        num_classes: classes of the new task. When the weights' classifier has another size, it is loaded and then
            replaced by a freshly initialised one of this size (fine-tuning a pretrained network on a new dataset).
        attn_layer, position, stages, init, targets, **attn_kwargs: as :func:`~senet.retrofit.retrofit`.
        base_kwargs: constructor options of the original network (:func:`create_base_model`), so that its weights
            fit: ``--model-kwargs '{attn_layer: se, base_kwargs: {bn_eps: 0.001, pad_type: same}}'``.

    Returns:
        ``(model, report)``. To resume a run, build with ``weights=None`` and load the run's own checkpoint into the
        result (its keys include the attention blocks).
    """
    sd = load_state_dict_file(weights) if weights is not None else None
    ckpt_classes = None
    if sd is not None:
        probe = create_base_model(spec, **(base_kwargs or {}))  # only to learn the classifier's key
        found = _final_linear(probe)
        if found is not None and f"{found[0]}.weight" in sd:
            ckpt_classes = int(sd[f"{found[0]}.weight"].shape[0])
    model = create_base_model(spec, ckpt_classes if ckpt_classes is not None else num_classes, **(base_kwargs or {}))
    if sd is not None:
        own = model.state_dict()
        wrong = next((k for k, v in sd.items() if k in own and tuple(v.shape) != tuple(own[k].shape)), None)
        if wrong is not None:
            # load_state_dict would raise a multi-line RuntimeError listing every mismatch.
            raise SenetError(
                f"weights {os.fspath(weights)!r} do not fit {spec}: {wrong} is {tuple(sd[wrong].shape)} in the file "
                f"but {tuple(own[wrong].shape)} in the model (give weights of the original network, with the "
                "base_kwargs it was built with)"
            )
        result = model.load_state_dict(sd, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise SenetError(
                f"weights {os.fspath(weights)!r} do not fit {spec}: missing {result.missing_keys[:4]}, unexpected "
                f"{result.unexpected_keys[:4]} (give weights of the original network, before retrofitting)"
            )
        if num_classes is not None and ckpt_classes is not None and num_classes != ckpt_classes:
            set_num_classes(model, num_classes)
    return retrofit(model, attn_layer, position=position, stages=stages, init=init, targets=targets, **attn_kwargs)


def freeze_backbone(model: nn.Module, train_classifier: bool = True) -> list[str]:
    """Freeze every parameter except those :func:`retrofit` added (and the classifier when ``train_classifier``).

    Only ``requires_grad`` changes: BatchNorm running statistics still update in ``train()`` mode (call
    ``m.eval()`` on the BN layers after ``model.train()`` if you want them fixed too). Build the optimizer after
    freezing, or pass it only ``p.requires_grad`` parameters. Returns the names left trainable.

    Raises:
        SenetError: the model has no retrofitted blocks (nothing would train).
    """
    keep = set(retrofit_param_names(model))
    if not keep:
        raise SenetError(f"{type(model).__name__} has no retrofitted attention to train; call senet.retrofit() first")
    head = classifier_name(model) if train_classifier else None
    for n, p in model.named_parameters():
        p.requires_grad_(n in keep or (head is not None and n.startswith(head + ".")))
    return trainable_parameter_names(model)


def freeze_all_but_classifier(model: nn.Module) -> list[str]:
    """Freeze every parameter except the classifier's (a linear probe, or the warm-up of a pretrained network's new
    head). Returns the names left trainable.

    Raises:
        SenetError: no classifier found (nothing would train).
    """
    head = classifier_name(model)
    if head is None:
        raise SenetError(f"cannot find the classifier of {type(model).__name__}: nothing would train with it frozen")
    for n, p in model.named_parameters():
        p.requires_grad_(n.startswith(head + "."))
    return trainable_parameter_names(model)


def unfreeze(model: nn.Module) -> None:
    """Make every parameter trainable again (phase two of the recipe)."""
    for p in model.parameters():
        p.requires_grad_(True)


def trainable_parameter_names(model: nn.Module) -> list[str]:
    """Names of parameters with ``requires_grad``."""
    return [n for n, p in model.named_parameters() if p.requires_grad]
