"""The model registry and factory: one name per entrypoint, looked up by :func:`create_model`.

Registration is an import side effect: ``senet/models/__init__.py`` imports every model file, whose entrypoints are
decorated with :func:`register_model`. Unlike timm (which warns and overwrites), a duplicate name raises, as in
torchvision's ``register_model``: two families silently fighting over one name is always a bug.

The registry builds models and nothing more: loading published weights (``pretrained=``) is one level up, in
:func:`senet.create_model` (``senet/factory.py``), so ``models`` never imports ``weights`` (which imports ``models``
to infer architectures).
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from torch import nn

from senet.errors import SenetError

__all__ = ["register_model", "create_model", "list_models", "is_model", "model_entrypoint"]

_F = TypeVar("_F", bound=Callable[..., nn.Module])

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: _F) -> _F:
    """Register ``fn`` under its ``__name__`` as a model entrypoint.

    Raises:
        ValueError: a model of that name is already registered.
    """
    name = fn.__name__
    if name in _MODELS:
        raise ValueError(f"model {name!r} is already registered (by {_MODELS[name].__module__})")
    _MODELS[name] = fn
    return fn


def list_models(pattern: str | Iterable[str] = "*", exclude: str | Iterable[str] = ()) -> list[str]:
    """Sorted registered names matching any of the ``fnmatch`` glob(s) ``pattern`` and none of ``exclude``.

    >>> list_models("se_resnet5*")
    ['se_resnet50', 'se_resnet50_caffe', 'se_resnet56']
    """
    include = [pattern] if isinstance(pattern, str) else list(pattern)
    excl = [exclude] if isinstance(exclude, str) else list(exclude)
    return sorted(
        n
        for n in _MODELS
        if any(fnmatch.fnmatchcase(n, p) for p in include) and not any(fnmatch.fnmatchcase(n, p) for p in excl)
    )


def is_model(name: str) -> bool:
    """Whether ``name`` is a registered model."""
    return name in _MODELS


def model_entrypoint(name: str) -> Callable[..., nn.Module]:
    """The entrypoint function of ``name``.

    Raises:
        SenetError: unknown name; the message lists the closest registered names.
    """
    try:
        return _MODELS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_MODELS), n=5, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "see senet.models.list_models()"
        raise SenetError(f"unknown model {name!r}: {hint}") from None


def create_model(
    name: str,
    num_classes: int | None = None,
    **overrides: Any,
) -> nn.Module:
    """Build a registered model with fresh weights (:func:`senet.create_model` also loads ``pretrained=`` weights).

    Args:
        name: a name from :func:`list_models`.
        num_classes: classifier outputs; ``None`` keeps the model's default (1000 for ImageNet nets, 10 for the
            CIFAR nets); 0 builds the model without a classifier (``forward`` returns pooled features).
        **overrides: constructor arguments of the model (``attn_layer``, ``attn_position``, ``drop_rate``, ...).
            ``None`` values are dropped, so unset CLI flags never override a model default (to remove a model's
            attention pass ``attn_layer="none"``, not ``None``).

    Raises:
        SenetError: unknown model name, an option the model does not take, or ``pretrained=`` (weights are loaded by
            :func:`senet.create_model`, above this registry).

    >>> m = create_model("se_resnet20", num_classes=100, attn_position="pre")
    >>> m.num_classes, m.model_name
    (100, 'se_resnet20')
    """
    if overrides.get("pretrained"):
        raise SenetError(
            "senet.models.create_model builds fresh weights; load published ones with "
            f"senet.create_model({name!r}, pretrained=...)"
        )
    overrides.pop("pretrained", None)
    fn = model_entrypoint(name)
    kwargs = {k: v for k, v in overrides.items() if v is not None}
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    try:
        model = fn(**kwargs)
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc):
            raise SenetError(f"model {name!r} does not take that option: {exc}") from exc
        raise
    # Lets checkpoint code (senet.weights.model_name_of) and logs name the model; a plain attribute, not a buffer.
    model.model_name = name
    return model
