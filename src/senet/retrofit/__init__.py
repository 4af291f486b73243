"""Retrofit: put SE / ECA / CBAM into an existing network without changing what it computes.

>>> import senet, torchvision
>>> model, report = senet.retrofit(torchvision.models.resnet50(), "se")   # init="identity": same outputs
>>> report.params_added                                                    # print(report) shows where each went
2531008
>>> from senet.retrofit import attention_modules
>>> [name for name, _ in attention_modules(model)][:2]
['SE_2_1', 'SE_2_2']

``senet.retrofit`` (the attribute of the ``senet`` package, ``from senet import retrofit``) is the function
:func:`retrofit`; the helpers are imported from this package (``from senet.retrofit import build_retrofit_model``).

Supported families and where the blocks go are listed in :data:`SUPPORTED`; anything else takes ``targets=[globs]``.
See ``docs/retrofit.md``.
"""

from __future__ import annotations

from typing import Any

from .blocks import POSITIONS, IdentityInitAttn, unwrap
from .core import INITS, RetrofitReport, RetrofitSite, attention_modules, retrofit, retrofit_param_names
from .families import SUPPORTED
from .training import (
    build_retrofit_model,
    classifier_name,
    create_base_model,
    freeze_all_but_classifier,
    freeze_backbone,
    load_state_dict_file,
    set_num_classes,
    trainable_parameter_names,
    unfreeze,
)

__all__ = [
    "INITS",
    "POSITIONS",
    "SUPPORTED",
    "IdentityInitAttn",
    "RetrofitBasicBlock",
    "RetrofitBottleneck",
    "RetrofitReport",
    "RetrofitSite",
    "attention_modules",
    "build_retrofit_model",
    "classifier_name",
    "create_base_model",
    "freeze_all_but_classifier",
    "freeze_backbone",
    "set_num_classes",
    "load_state_dict_file",
    "retrofit",
    "retrofit_param_names",
    "trainable_parameter_names",
    "unfreeze",
    "unwrap",
]


def __getattr__(name: str) -> Any:
    # The torchvision block subclasses are built on first use (see blocks.py); `import senet` stays cheap.
    if name in ("RetrofitBasicBlock", "RetrofitBottleneck"):
        from . import blocks

        return getattr(blocks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
